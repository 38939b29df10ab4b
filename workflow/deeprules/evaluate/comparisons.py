"""How much better the CNN really is than the best baseline and every control (Tips 1, 2, 9),
and what the most interpretable tuned family gives up against the best model (Tip 8).

Paired bootstrap comparisons on the primary metric: every model was scored on
the same resamples, so the difference per resample is paired. Each comparison
carries an `outcome` code for programs (OUTCOMES), a `why` (WHY_*) saying which
question it answers, and a `verdict` in words.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deeprules.contracts import (
    INTERPRETABILITY,
    ROLE_BASELINE,
    ROLE_CNN,
    ROLE_CONTROL,
    ROLE_SCRATCH,
)
from deeprules.evaluate.bootstrap import interval
from deeprules.evaluate.panel import METRIC_NAMES, oriented

# The candidate is better (interval above 0), worse (below 0) or not distinguishable.
OUTCOME_BETTER, OUTCOME_WORSE, OUTCOME_NO_DIFFERENCE = "better", "worse", "no_difference"
OUTCOMES = (OUTCOME_BETTER, OUTCOME_WORSE, OUTCOME_NO_DIFFERENCE)
# The question a comparison answers: Tips 1 and 2 read the first two, Tip 8 the third.
WHY_BEST_BASELINE = "best baseline on tune"
WHY_CONTROL = "control"
WHY_INTERPRETABILITY = "most interpretable tuned family against the best model on test"
COMPARISON_COLUMNS = [
    "candidate",
    "reference",
    "reference_role",
    "why",
    "metric",
    "candidate_value",
    "reference_value",
    "difference",
    "ci_low",
    "ci_high",
    "p_value",
    "method",
    "outcome",
    "verdict",
]


PRETRAINING_WHY = "the same CNN search without the pre-trained trunk (Tip 5)"


def display_name(model: str, role: str) -> str:
    if role == ROLE_SCRATCH:
        return "the from-scratch CNN"
    return "the CNN" if role == ROLE_CNN else model.replace("_", " ")


def paired_p_value(difference: np.ndarray) -> float:
    """Two-sided: twice the smaller share of resamples on either side of zero (with the +1
    correction that keeps it above 0)."""
    n = len(difference)
    below = (1 + np.sum(difference <= 0)) / (n + 1)
    above = (1 + np.sum(difference >= 0)) / (n + 1)
    return min(1.0, 2 * min(below, above))


def _outcome(low: float | None, high: float | None) -> str:
    if low is not None and low > 0:
        return OUTCOME_BETTER
    if high is not None and high < 0:
        return OUTCOME_WORSE
    return OUTCOME_NO_DIFFERENCE


def _verdict(who: str, other: str, outcome: str, numbers: str) -> str:
    if outcome == OUTCOME_BETTER:
        return f"{who} is better than {other} here: {numbers}."
    if outcome == OUTCOME_WORSE:
        return f"{who} is worse than {other} here: {numbers}."
    return f"{who} is not better than {other} here: {numbers}; the interval includes no difference."


def compare(
    candidate: str,
    reference: str,
    roles: dict[str, str],
    metric: str,
    points: dict[str, dict[str, float]],
    distributions: dict[str, dict[str, np.ndarray]],
    level: float,
    why: str,
) -> dict[str, Any]:
    """Paired bootstrap comparison of two models on one metric: numbers, outcome, verdict.

    The difference is oriented so that positive means the candidate is better.
    """
    difference = oriented(
        metric, distributions[candidate][metric] - distributions[reference][metric]
    )
    difference = difference[~np.isnan(difference)]
    observed = oriented(metric, points[candidate][metric] - points[reference][metric])
    low, high = interval(difference, level)
    n = len(difference)
    p_value = paired_p_value(difference)
    who = display_name(candidate, roles[candidate])
    numbers = (
        f"{METRIC_NAMES.get(metric, metric)} "
        f"{points[candidate][metric]:.3f} vs {points[reference][metric]:.3f}, "
        f"difference {observed:+.3f} ({level:.0%} CI {low:+.3f} to {high:+.3f}, "
        f"p {'<' if p_value <= 2 / (n + 1) else '='} {max(p_value, 2 / (n + 1)):.2g})"
    )
    outcome = _outcome(low, high)
    return {
        "candidate": candidate,
        "reference": reference,
        "reference_role": roles[reference],
        "why": why,
        "metric": metric,
        "candidate_value": points[candidate][metric],
        "reference_value": points[reference][metric],
        "difference": observed,
        "ci_low": low,
        "ci_high": high,
        "p_value": p_value,
        "method": "paired stratified bootstrap",
        "outcome": outcome,
        "verdict": _verdict(
            who[0].upper() + who[1:], display_name(reference, roles[reference]), outcome, numbers
        ),
    }


def comparisons(
    roles: dict[str, str],
    best_baseline: str | None,
    metric: str,
    points: dict[str, dict[str, float]],
    distributions: dict[str, dict[str, np.ndarray]],
    level: float,
) -> list[dict[str, Any]]:
    """The CNN (else the best baseline) against the best baseline, the from-scratch CNN
    when the run pre-trained (what pre-training changed, Tip 5) and every control; then
    the best model on test against the most interpretable tuned family (Tip 8)."""
    cnn = [m for m, role in roles.items() if role == ROLE_CNN]
    candidate = cnn[0] if cnn else best_baseline
    if candidate is None:
        return []
    pairs = []
    if best_baseline and best_baseline != candidate:
        pairs.append((candidate, best_baseline, WHY_BEST_BASELINE))
    pairs += [(candidate, m, PRETRAINING_WHY) for m, role in roles.items() if role == ROLE_SCRATCH]
    pairs += [(candidate, m, WHY_CONTROL) for m, role in roles.items() if role == ROLE_CONTROL]
    tradeoff = interpretability_pair(roles, metric, points)
    if tradeoff and not any({a, b} == set(tradeoff) for a, b, _ in pairs):
        pairs.append((*tradeoff, WHY_INTERPRETABILITY))
    return [
        compare(first, second, roles, metric, points, distributions, level, why)
        for first, second, why in pairs
    ]


def interpretability_pair(
    roles: dict[str, str], metric: str, points: dict[str, dict[str, float]]
) -> tuple[str, str] | None:
    """(best model on test, most interpretable tuned family), or None when they coincide.

    Only tuned models compete (controls answer another question). The pair is
    chosen on test because Tip 8 asks what the reader gives up by preferring
    the readable model over the one that scored best, not which model to ship.
    """
    tuned = [
        m
        for m, role in roles.items()
        if role in (ROLE_BASELINE, ROLE_CNN, ROLE_SCRATCH)
        and not np.isnan(points[m].get(metric, np.nan))
    ]
    readable = [m for m in INTERPRETABILITY if m in tuned]
    if not readable:
        return None
    best = max(tuned, key=lambda m: oriented(metric, points[m][metric]))
    return None if best == readable[0] else (best, readable[0])
