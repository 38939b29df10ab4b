"""From a number to pass / warn / fail, and the one shape of an entry of checks.json."""

from __future__ import annotations

from typing import Any

VERDICTS = ("pass", "warn", "fail")


def verdict(value: float, warn: float, fail: float) -> str:
    """pass below `warn`, warn from `warn`, fail from `fail` (larger is worse)."""
    return "fail" if value >= fail else "warn" if value >= warn else "pass"


def auroc_verdict(auroc: float, p_value: float, settings: dict[str, Any]) -> str:
    """AUROC above the thresholds counts only when shuffled labels rarely do as well.

    The issue's thresholds: pass <= 0.6 < warn <= 0.7 < fail (genomic-benchmarks-qc).
    """
    if p_value > settings["alpha"]:
        return "pass"
    if auroc > settings["auroc_fail"]:
        return "fail"
    return "warn" if auroc > settings["auroc_warn"] else "pass"


def make_check(
    name: str,
    kind: str,
    statistic: str,
    value: float,
    thresholds: dict[str, float],
    result: str,
    explanation: str,
    **details: Any,
) -> dict[str, Any]:
    """One entry of checks.json."""
    return {
        "name": name,
        "kind": kind,
        "statistic": statistic,
        "value": round(float(value), 4),
        "thresholds": thresholds,
        "verdict": result,
        "explanation": explanation,
        **details,
    }
