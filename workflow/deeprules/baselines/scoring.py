"""Scoring a fitted model on a partition, through the one metrics core.

Every score a baseline gets (trial, final model, control) is
`deeprules.metrics.score_panel` on the model's class scores, with the columns
put in the split's class order, and on the classes the model itself calls
(`predict`), so a baseline's MCC is that of the decisions it would make.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from deeprules.contracts import Classes
from deeprules.metrics import RANKING_METRICS, THRESHOLD_METRICS, score_panel

# Every score a baseline gets, in the column order of summary.tsv and trials.tsv.
METRICS = (*THRESHOLD_METRICS, *RANKING_METRICS)


def class_scores(model: Any, features: Any, classes: Classes) -> np.ndarray:
    """One score column per class in `classes.names` order: probabilities, else margins
    (an SVM while it is tuned: the ranking is the margin's, Platt scaling comes later)."""
    if hasattr(model, "predict_proba"):
        scores = model.predict_proba(features)
    else:
        margin = model.decision_function(features)
        scores = np.column_stack([-margin, margin]) if margin.ndim == 1 else margin
    order = [list(model.classes_).index(name) for name in classes.names]
    return scores[:, order]


@dataclass(frozen=True)
class Predictions:
    """A model's class scores (classes.names order) and its own calls on one partition."""

    scores: np.ndarray
    predicted: np.ndarray


def predict(model: Any, features: Any, classes: Classes) -> Predictions:
    return Predictions(class_scores(model, features, classes), model.predict(features))


def score_predictions(
    predictions: Predictions, labels: np.ndarray, classes: Classes
) -> dict[str, float]:
    """MCC, macro F1, balanced accuracy of `predict`; AUROC, AUPRC of the class scores."""
    return score_panel(labels, predictions.scores, predictions.predicted, classes)


def score_model(
    model: Any, features: Any, labels: np.ndarray, classes: Classes
) -> dict[str, float]:
    """The panel of `model` on one partition (a trial, a shuffled repeat)."""
    return score_predictions(predict(model, features, classes), labels, classes)


def chance_auroc_error(classes: Classes, labels: np.ndarray) -> float:
    """Standard error of AUROC for scores unrelated to the labels (Mann-Whitney null).

    Var = (n1 + n0 + 1) / (12 n1 n0); for several classes the largest one-vs-rest value.
    """
    errors = []
    for name in [classes.positive] if classes.binary else classes.names:
        positives = int(np.sum(labels == name))
        negatives = len(labels) - positives
        if positives and negatives:
            errors.append(np.sqrt((positives + negatives + 1) / (12 * positives * negatives)))
    return float(max(errors, default=0.0))
