"""Check 5: class sizes, and which metrics stay meaningful with them (Tip 7)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from deeprules.explore.verdicts import make_check, verdict


def class_balance_check(
    labels: pd.Series, settings: dict[str, Any]
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Check 5: class sizes, and which metrics stay meaningful with them."""
    counts = labels.value_counts().sort_index()
    prevalence = counts / counts.sum()
    ratio = float(counts.min() / counts.max())
    table = pd.DataFrame(
        {
            "label": counts.index,
            "count": counts.to_numpy(),
            "prevalence": prevalence.round(4).to_numpy(),
            "auprc_baseline": prevalence.round(4).to_numpy(),
        }
    )
    thresholds = {"warn": settings["balance_warn"], "fail": settings["balance_fail"]}
    # smaller is worse here, so the verdict is taken on the reciprocal
    result = verdict(1 / ratio, warn=1 / thresholds["warn"], fail=1 / thresholds["fail"])
    majority = float(prevalence.max())
    metrics = {
        "accuracy": "meaningful"
        if ratio >= 0.8
        else f"misleading: always predicting the largest class scores {majority:.2f}",
        "balanced_accuracy": "meaningful",
        "mcc": "meaningful",
        "auroc": "meaningful, but can look good while the smallest class is poorly found"
        if ratio < thresholds["warn"]
        else "meaningful",
        "auprc": "meaningful against its baseline, the class prevalence: "
        + ", ".join(f"{label} {p:.2f}" for label, p in prevalence.items()),
    }
    explanation = (
        f"The smallest class is {ratio:.2f} times the size of the largest: report balanced "
        "accuracy, MCC and AUPRC against its prevalence baseline, not accuracy."
        if result != "pass"
        else f"Classes are reasonably balanced (smallest / largest = {ratio:.2f}); AUPRC baselines "
        "are the class prevalences."
    )
    check = make_check(
        "class_balance",
        "class_balance",
        "smallest class size / largest class size",
        ratio,
        thresholds,
        result,
        explanation,
        counts={str(k): int(v) for k, v in counts.items()},
        prevalence={str(k): round(float(v), 4) for k, v in prevalence.items()},
        metrics=metrics,
    )
    check["direction"] = "smaller is worse"
    return check, table
