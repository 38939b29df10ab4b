"""Decisions made on tune, before test is opened: decision thresholds and the best baseline.

Nothing here may see test labels (Tip 7): each binary model's threshold comes
from its own tune predictions and the "best baseline" is the best on tune.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from deeprules.contracts import ROLE_BASELINE, Classes
from deeprules.evaluate.panel import (
    class_codes,
    oriented,
    point_metrics,
    ranking_curves,
    resolve_metric,
    safe_divide,
)
from deeprules.io import InputError

log = logging.getLogger("deeprules.evaluate")

# How a model's decision threshold was set (metrics.json `threshold_rule`).
THRESHOLD_TUNED = "tuned_on_tune"
THRESHOLD_DEFAULT = "default_0.5"
THRESHOLD_ARGMAX = "most_probable_class"


def partition_rows(stage_predictions: pd.DataFrame, model: str, partition: str) -> pd.DataFrame:
    """One model's predictions on one partition."""
    return stage_predictions[
        (stage_predictions["model"] == model) & (stage_predictions["partition"] == partition)
    ]


def prediction_arrays(table: pd.DataFrame, classes: Classes) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities in class order, class index) from a predictions table."""
    columns = [f"score_{name}" for name in classes.names]
    return table[columns].astype(float).to_numpy(), class_codes(classes, table["label"])


def choose_threshold(scores: np.ndarray, positive: np.ndarray, criterion: str) -> float:
    """Probability cut-off that maximises `criterion` (mcc, f1 or balanced_accuracy) on tune.

    Candidates lie halfway between consecutive distinct scores, so the cut does
    not sit exactly on a tune sequence; ties in the criterion go to the higher
    cut-off (fewer positive calls).
    """
    tp, fp = ranking_curves(scores, positive, np.ones((1, len(scores))))
    tp, fp = tp[0], fp[0]
    n_pos, n_neg = tp[-1], fp[-1]
    if n_pos == 0 or n_neg == 0:
        raise InputError(
            "the tune partition must contain both classes to choose a decision threshold"
        )
    fn, tn = n_pos - tp, n_neg - fp
    if criterion == "mcc":
        value = safe_divide(
            tp * tn - fp * fn, np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)), 0.0
        )
    elif criterion == "f1":
        value = safe_divide(2 * tp, 2 * tp + fp + fn, 0.0)
    elif criterion == "balanced_accuracy":
        value = (tp / n_pos + tn / n_neg) / 2
    else:
        raise InputError(f"config key 'evaluate.threshold_metric': unknown criterion '{criterion}'")
    best = int(np.argmax(value))
    distinct = np.unique(scores)[::-1]
    if best + 1 < len(distinct):
        return float((distinct[best] + distinct[best + 1]) / 2)
    return float(distinct[best])


def tune_thresholds(
    stage_predictions: pd.DataFrame, models: list[str], classes: Classes, criterion: str
) -> tuple[dict[str, float | None], dict[str, str], dict[str, str]]:
    """Each binary model's decision threshold, chosen on its own tune predictions.

    Returns the thresholds, how each was set in words (threshold_source) and
    as one of the THRESHOLD_* codes (threshold_rule).
    """
    thresholds: dict[str, float | None] = {}
    sources: dict[str, str] = {}
    rules: dict[str, str] = {}
    for model in models:
        tune = partition_rows(stage_predictions, model, "tune")
        if not classes.binary:
            thresholds[model], sources[model] = None, "most probable class (multi-class)"
            rules[model] = THRESHOLD_ARGMAX
        elif tune.empty:
            thresholds[model], sources[model] = 0.5, "0.5: no tune predictions for this model"
            rules[model] = THRESHOLD_DEFAULT
            log.warning("model %s has no tune predictions; using threshold 0.5", model)
        else:
            probs, truth = prediction_arrays(tune, classes)
            thresholds[model] = choose_threshold(
                probs[:, classes.positive_index], truth == classes.positive_index, criterion
            )
            sources[model], rules[model] = f"maximises {criterion} on tune", THRESHOLD_TUNED
    return thresholds, sources, rules


def tune_scores(
    stage_predictions: pd.DataFrame,
    candidates: list[str],
    classes: Classes,
    metric: str,
    thresholds: dict[str, float | None],
    bins: int,
) -> dict[str, float]:
    """`metric` of every candidate with tune predictions, on tune."""
    scores = {}
    for model in candidates:
        tune = partition_rows(stage_predictions, model, "tune")
        if len(tune):
            probs, truth = prediction_arrays(tune, classes)
            values = point_metrics(probs, truth, classes, thresholds[model], bins)
            scores[model] = values[metric]
    return scores


def best_on_tune(scores: dict[str, float], metric: str) -> str | None:
    """The baseline with the best tune score: chosen before test is looked at."""
    if not scores:
        return None
    return max(scores, key=lambda model: oriented(metric, scores[model]))


@dataclass(frozen=True)
class TuneDecisions:
    """Everything chosen before test is opened: thresholds, and the best baseline on tune."""

    primary: str  # the primary metric's name in this task's panel
    thresholds: dict[str, float | None]
    threshold_sources: dict[str, str]  # in words
    threshold_rules: dict[str, str]  # THRESHOLD_* codes
    best_baseline: str | None
    baseline_tune_scores: dict[str, float]  # the primary metric of every baseline on tune


def decide_on_tune(
    stage_predictions: pd.DataFrame,
    roles: dict[str, str],
    classes: Classes,
    settings: dict[str, Any],
) -> TuneDecisions:
    """Thresholds of every model and the best tuned baseline, from train/tune predictions only."""
    primary = resolve_metric(classes, settings["primary_metric"])
    thresholds, sources, rules = tune_thresholds(
        stage_predictions, list(roles), classes, settings["threshold_metric"]
    )
    baselines = [model for model, role in roles.items() if role == ROLE_BASELINE]
    scores = tune_scores(
        stage_predictions, baselines, classes, primary, thresholds, settings["calibration_bins"]
    )
    return TuneDecisions(primary, thresholds, sources, rules, best_on_tune(scores, primary), scores)
