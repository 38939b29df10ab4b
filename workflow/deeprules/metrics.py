"""The one metrics core: what "tune AUROC" or "MCC" means, for every stage.

Baselines, the CNN search, explore's shortcut checks and evaluate all score
through these functions, so a number called AUROC in two stages is the same
computation on the same kind of input. Several classes: AUROC and AUPRC are the
macro average of one-vs-rest scores over the classes present. Evaluate's
vectorised bootstrap (deeprules.evaluate) is checked against this module.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    balanced_accuracy_score,
    f1_score,
    matthews_corrcoef,
    roc_auc_score,
)

from deeprules.contracts import Classes

RANKING_METRICS = ("auroc", "auprc")
THRESHOLD_METRICS = ("mcc", "macro_f1", "balanced_accuracy")


def _ranked_classes(classes: Classes) -> list[str]:
    """Two classes: the positive one only; several: every class, one-vs-rest."""
    return [classes.positive] if classes.binary else list(classes.names)


def ranking_scores(labels: Sequence[str], scores: np.ndarray, classes: Classes) -> dict[str, float]:
    """AUROC and AUPRC from class probabilities (columns in `classes.names` order);
    NaN when no ranked class has both members and non-members."""
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=float)
    auroc, auprc = [], []
    for name in _ranked_classes(classes):
        truth = labels == name
        if truth.all() or not truth.any():
            continue
        column = scores[:, classes.names.index(name)]
        auroc.append(roc_auc_score(truth, column))
        auprc.append(average_precision_score(truth, column))
    return {
        "auroc": float(np.mean(auroc)) if auroc else float("nan"),
        "auprc": float(np.mean(auprc)) if auprc else float("nan"),
    }


def auroc(labels: Sequence[str], scores: np.ndarray, classes: Classes) -> float:
    """The ranking measure every stage compares models by (Tips 1 and 2)."""
    return ranking_scores(labels, scores, classes)["auroc"]


def threshold_scores(labels: Sequence[str], predicted: Sequence[str]) -> dict[str, float]:
    """Measures of called classes: MCC, macro F1, balanced accuracy."""
    return {
        "mcc": float(matthews_corrcoef(labels, predicted)),
        "macro_f1": float(f1_score(labels, predicted, average="macro", zero_division=0)),
        "balanced_accuracy": float(balanced_accuracy_score(labels, predicted)),
    }


def score_panel(
    labels: Sequence[str], scores: np.ndarray, predicted: Sequence[str], classes: Classes
) -> dict[str, float]:
    """Threshold measures of the called classes and ranking measures of the scores."""
    return {**threshold_scores(labels, predicted), **ranking_scores(labels, scores, classes)}
