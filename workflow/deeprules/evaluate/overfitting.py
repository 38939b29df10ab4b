"""The train / tune / test gap of every model: memorised training data, or a tuned-to-tune model.

train - tune large: the model memorised its training data. tune - test large:
choices made on tune (hyperparameters, threshold, early stopping) fitted its
noise, or test differs from tune.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from deeprules.contracts import Classes
from deeprules.evaluate.panel import metric_names, oriented, point_metrics
from deeprules.evaluate.thresholds import partition_rows, prediction_arrays

# Which gap exceeded `overfitting_gap` (column `flagged_gap`).
GAP_TRAIN_TUNE, GAP_TUNE_TEST, GAP_BOTH, GAP_NONE = (
    "train_minus_tune",
    "tune_minus_test",
    "both",
    "none",
)


def _flagged_gap(train_gap: float, tune_gap: float, limit: float) -> str:
    memorised, tuned = bool(train_gap > limit), bool(tune_gap > limit)  # NaN is never over
    if memorised and tuned:
        return GAP_BOTH
    if memorised:
        return GAP_TRAIN_TUNE
    return GAP_TUNE_TEST if tuned else GAP_NONE


def _partition_points(
    stage_predictions: pd.DataFrame,
    model: str,
    classes: Classes,
    threshold: float | None,
    bins: int,
) -> dict[str, dict[str, float]]:
    """The panel on train and on tune, where the model's stage predicted them."""
    values = {}
    for partition in ("train", "tune"):
        part = partition_rows(stage_predictions, model, partition)
        if len(part):
            probs, truth = prediction_arrays(part, classes)
            values[partition] = point_metrics(probs, truth, classes, threshold, bins)
    return values


def overfitting_table(
    stage_predictions: pd.DataFrame,
    test_points: dict[str, dict[str, float]],
    classes: Classes,
    thresholds: dict[str, float | None],
    gap: float,
    bins: int,
) -> pd.DataFrame:
    """Every metric on train, tune and test per model; gaps oriented so positive = worse later."""
    rows = []
    for model, test_values in test_points.items():
        values = {
            **_partition_points(stage_predictions, model, classes, thresholds[model], bins),
            "test": test_values,
        }
        for metric in metric_names(classes):
            if metric == "auprc_baseline":
                continue
            train, tune, test = (
                values.get(p, {}).get(metric, np.nan) for p in ("train", "tune", "test")
            )
            train_gap, tune_gap = oriented(metric, train - tune), oriented(metric, tune - test)
            rows.append(
                {
                    "model": model,
                    "metric": metric,
                    "train": train,
                    "tune": tune,
                    "test": test,
                    "train_minus_tune": train_gap,
                    "tune_minus_test": tune_gap,
                    "flagged": bool(np.nanmax([train_gap, tune_gap, -np.inf]) > gap),
                    "flagged_gap": _flagged_gap(train_gap, tune_gap, gap),
                }
            )
    return pd.DataFrame(rows)


def overfitting_flags(table: pd.DataFrame, metric: str) -> list[dict[str, Any]]:
    """The flagged models on the primary metric, with their gaps and which gap is too large."""
    flagged = table[table["flagged"] & (table["metric"] == metric)]
    columns = ["model", "train", "tune", "test", "train_minus_tune", "tune_minus_test"]
    return flagged[[*columns, "flagged_gap"]].to_dict("records")
