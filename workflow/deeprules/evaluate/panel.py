"""The metric panel on weighted samples: one code path for the point estimate and the bootstrap.

A bootstrap resample is a vector of counts (how often each test sequence was
drawn), so the point estimate (every weight 1) and a thousand resamples go
through the same code, as one matrix of weights (resamples x sequences),
without copying data: fast, and the interval is guaranteed to be of the
number reported. Every formula reproduces sklearn's; tests/test_evaluate.py
checks the panel against deeprules.metrics, the project's one metrics core.

Classes come from the split (contracts.Classes): a two-class task is scored on
the probability of the positive class and calls a sequence positive at or
above the model's threshold; with more classes the most probable class is
called.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import scipy.sparse as sp

from deeprules.contracts import Classes
from deeprules.io import InputError

# Lower is better for these; every other metric is higher-is-better.
LOWER_IS_BETTER = frozenset({"brier", "ece"})
METRIC_NAMES = {
    "auroc": "AUROC",
    "auroc_macro": "macro AUROC",
    "auroc_micro": "micro AUROC",
    "auprc": "AUPRC",
    "auprc_macro": "macro AUPRC",
    "auprc_micro": "micro AUPRC",
    "auprc_baseline": "AUPRC of a random ranking (prevalence)",
    "mcc": "MCC",
    "balanced_accuracy": "balanced accuracy",
    "accuracy": "accuracy",
    "f1": "F1",
    "f1_macro": "macro F1",
    "f1_micro": "micro F1",
    "precision": "precision",
    "precision_macro": "macro precision",
    "precision_micro": "micro precision",
    "recall": "recall",
    "recall_macro": "macro recall",
    "recall_micro": "micro recall",
    "brier": "Brier score",
    "ece": "expected calibration error",
}
BINARY_METRICS = [
    "auroc",
    "auprc",
    "auprc_baseline",
    "mcc",
    "balanced_accuracy",
    "accuracy",
    "f1",
    "precision",
    "recall",
    "brier",
    "ece",
]
MULTICLASS_METRICS = [
    "auroc_macro",
    "auroc_micro",
    "auprc_macro",
    "auprc_micro",
    "auprc_baseline",
    "mcc",
    "balanced_accuracy",
    "accuracy",
    "f1_macro",
    "f1_micro",
    "precision_macro",
    "precision_micro",
    "recall_macro",
    "recall_micro",
    "brier",
    "ece",
]


def metric_names(classes: Classes) -> list[str]:
    """The panel of this task, in the order every table lists it."""
    return list(BINARY_METRICS if classes.binary else MULTICLASS_METRICS)


def resolve_metric(classes: Classes, metric: str) -> str:
    """The config's metric name for this task ('auroc' means macro AUROC for 3+ classes)."""
    if classes.binary or metric in metric_names(classes):
        return metric
    return f"{metric}_macro"


def oriented(metric: str, value: float | np.ndarray) -> float | np.ndarray:
    """The value with its sign turned so that higher is better for every metric."""
    return -value if metric in LOWER_IS_BETTER else value


def class_codes(classes: Classes, labels: Iterable[str]) -> np.ndarray:
    """Index of every label in `classes.names`; a label the split never saw is an input error."""
    index = {name: i for i, name in enumerate(classes.names)}
    labels = list(labels)
    unknown = sorted(set(labels) - set(index))
    if unknown:
        raise InputError(f"labels {unknown} are not among the classes {list(classes.names)}")
    return np.array([index[label] for label in labels], dtype=np.int64)


def safe_divide(numerator: np.ndarray, denominator: np.ndarray, empty: float) -> np.ndarray:
    """numerator / denominator, with `empty` where the denominator is 0 (as sklearn does)."""
    numerator, denominator = np.broadcast_arrays(
        np.asarray(numerator, dtype=np.float64), np.asarray(denominator, dtype=np.float64)
    )
    out = np.full(numerator.shape, empty, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def ranking_curves(
    scores: np.ndarray, positive: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted true- and false-positive counts at every distinct score, highest first.

    Sequences with equal scores enter together, so ties count half in AUROC and
    as one step in AUPRC, exactly as sklearn counts them.
    Returns tp, fp of shape (resamples, distinct scores).
    """
    order = np.argsort(-scores, kind="mergesort")
    ordered = scores[order]
    group_ends = np.flatnonzero(np.r_[ordered[1:] != ordered[:-1], True])
    w = weights[:, order]
    hits = positive[order]
    tp = np.cumsum(w * hits, axis=1)[:, group_ends]
    fp = np.cumsum(w, axis=1)[:, group_ends] - tp
    return tp, fp


def ranking_metrics(
    scores: np.ndarray, positive: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """AUROC (trapezoids = Mann-Whitney with half-counted ties) and average precision.

    Average precision is the area under the precision-recall steps, as sklearn
    defines it. Both come from one pass over the ranking.
    """
    tp, fp = ranking_curves(scores, positive, weights)
    zeros = np.zeros((len(tp), 1))
    tp0, fp0 = np.hstack([zeros, tp]), np.hstack([zeros, fp])
    area = np.sum(np.diff(fp0, axis=1) * (tp0[:, 1:] + tp0[:, :-1]) / 2, axis=1)
    auroc = safe_divide(area, tp[:, -1] * fp[:, -1], np.nan)
    precision = safe_divide(tp, tp + fp, 0.0)
    average_precision = safe_divide(
        np.sum(np.diff(tp0, axis=1) * precision, axis=1), tp[:, -1], np.nan
    )
    return auroc, average_precision


def _times(weights: np.ndarray, matrix: np.ndarray | sp.spmatrix) -> np.ndarray:
    """weights (resamples, n) @ matrix (n, k), with a sparse matrix on the right."""
    if sp.issparse(matrix):
        return np.asarray((matrix.T @ weights.T).T)
    return weights @ matrix


def confusion_counts(
    truth: np.ndarray, called: np.ndarray, n_classes: int, weights: np.ndarray
) -> np.ndarray:
    """Weighted confusion matrices (resamples, true class, called class)."""
    cell = truth * n_classes + called
    indicator = sp.csr_matrix(
        (np.ones(len(cell)), (np.arange(len(cell)), cell)), shape=(len(cell), n_classes**2)
    )
    return _times(weights, indicator).reshape(len(weights), n_classes, n_classes)


def _confusion_metrics(confusion: np.ndarray, positive: int | None) -> dict[str, np.ndarray]:
    """MCC, accuracies, precision/recall/F1 from confusion matrices, as sklearn computes them."""
    diagonal = np.diagonal(confusion, axis1=1, axis2=2)
    true_totals = confusion.sum(axis=2)
    called_totals = confusion.sum(axis=1)
    total = true_totals.sum(axis=1)
    correct = diagonal.sum(axis=1)
    covariance = correct * total - np.sum(true_totals * called_totals, axis=1)
    spread = (total**2 - np.sum(called_totals**2, axis=1)) * (
        total**2 - np.sum(true_totals**2, axis=1)
    )
    recall = safe_divide(diagonal, true_totals, np.nan)
    precision = safe_divide(diagonal, called_totals, 0.0)
    f1 = safe_divide(2 * diagonal, true_totals + called_totals, 0.0)
    # sklearn averages over the classes present among true or called labels
    present = (true_totals + called_totals) > 0
    out = {
        "mcc": safe_divide(covariance, np.sqrt(spread), 0.0),
        "balanced_accuracy": _masked_mean(recall, ~np.isnan(recall)),
        "accuracy": safe_divide(correct, total, np.nan),
    }
    if positive is not None:
        out["f1"] = f1[:, positive]
        out["precision"] = precision[:, positive]
        out["recall"] = np.nan_to_num(recall[:, positive], nan=0.0)
    else:
        out["f1_macro"] = _masked_mean(f1, present)
        out["precision_macro"] = _masked_mean(precision, present)
        out["recall_macro"] = _masked_mean(np.nan_to_num(recall, nan=0.0), present)
        # one label per sequence: micro precision = micro recall = micro F1 = accuracy
        for name in ("f1_micro", "precision_micro", "recall_micro"):
            out[name] = out["accuracy"]
    return out


def _masked_mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Row means over the cells in `mask` (NaN for a row with none)."""
    return safe_divide(np.where(mask, values, 0).sum(axis=1), mask.sum(axis=1), np.nan)


def calibration_error(
    confidence: np.ndarray, outcome: np.ndarray, bins: int, weights: np.ndarray
) -> np.ndarray:
    """Expected calibration error over equal-width bins of predicted probability.

    ECE = sum over bins of |observed frequency - mean predicted probability| x
    share of sequences in the bin; written as |sum(outcome - confidence)| per
    bin so that it is one sparse product per block of resamples.
    """
    which = np.minimum((confidence * bins).astype(np.int64), bins - 1)
    gaps = sp.csr_matrix(
        (outcome - confidence, (np.arange(len(which)), which)), shape=(len(which), bins)
    )
    return safe_divide(np.abs(_times(weights, gaps)).sum(axis=1), weights.sum(axis=1), np.nan)


def called_classes(
    probabilities: np.ndarray, classes: Classes, threshold: float | None
) -> np.ndarray:
    """Called class: positive-class probability vs threshold (binary), else most probable."""
    if classes.binary:
        positive = classes.positive_index
        return np.where(probabilities[:, positive] >= threshold, positive, 1 - positive)
    return np.argmax(probabilities, axis=1)


def _binary_scores(
    probabilities: np.ndarray, truth: np.ndarray, positive: int, bins: int, weights: np.ndarray
) -> dict[str, np.ndarray]:
    """Ranking, prevalence, Brier and calibration on the probability of the positive class."""
    score, is_positive = probabilities[:, positive], truth == positive
    total = weights.sum(axis=1)
    auroc, auprc = ranking_metrics(score, is_positive, weights)
    return {
        "auroc": auroc,
        "auprc": auprc,
        "auprc_baseline": safe_divide(weights @ is_positive, total, np.nan),
        "ece": calibration_error(score, is_positive.astype(float), bins, weights),
        "brier": safe_divide(weights @ ((score - is_positive) ** 2), total, np.nan),
    }


def _multiclass_scores(
    probabilities: np.ndarray, truth: np.ndarray, bins: int, weights: np.ndarray
) -> dict[str, np.ndarray]:
    """Macro (one-vs-rest, classes present) and micro (classes pooled) ranking, Brier, ECE."""
    n_classes = probabilities.shape[1]
    onehot = np.eye(n_classes)[truth]
    per_class = [
        ranking_metrics(probabilities[:, k], truth == k, weights) for k in range(n_classes)
    ]
    micro = ranking_metrics(
        probabilities.ravel(), onehot.ravel().astype(bool), np.repeat(weights, n_classes, axis=1)
    )
    squared = np.sum((probabilities - onehot) ** 2, axis=1)
    correct = (np.argmax(probabilities, axis=1) == truth).astype(float)
    return {
        "auroc_macro": np.nanmean([auc for auc, _ in per_class], axis=0),
        "auprc_macro": np.nanmean([ap for _, ap in per_class], axis=0),
        "auroc_micro": micro[0],
        "auprc_micro": micro[1],
        "auprc_baseline": np.full(len(weights), 1 / n_classes),
        "ece": calibration_error(probabilities.max(axis=1), correct, bins, weights),
        "brier": safe_divide(weights @ squared, weights.sum(axis=1), np.nan),
    }


def metric_panel(
    probabilities: np.ndarray,
    truth: np.ndarray,
    classes: Classes,
    threshold: float | None,
    weights: np.ndarray,
    bins: int,
) -> dict[str, np.ndarray]:
    """Every metric of the panel, one value per row of `weights` (resamples x sequences).

    `probabilities` has one column per class in `classes.names` order, `truth`
    the class index of each sequence, `bins` the calibration bins of the ECE.
    """
    called = called_classes(probabilities, classes, threshold)
    n_classes = len(classes.names)
    panel = _confusion_metrics(
        confusion_counts(truth, called, n_classes, weights),
        classes.positive_index if classes.binary else None,
    )
    if classes.binary:
        panel.update(_binary_scores(probabilities, truth, classes.positive_index, bins, weights))
    else:
        panel.update(_multiclass_scores(probabilities, truth, bins, weights))
    return {name: panel[name] for name in metric_names(classes)}


def point_metrics(
    probabilities: np.ndarray,
    truth: np.ndarray,
    classes: Classes,
    threshold: float | None,
    bins: int,
) -> dict[str, float]:
    """The panel on the sequences as they are (every weight 1)."""
    ones = np.ones((1, len(truth)))
    panel = metric_panel(probabilities, truth, classes, threshold, ones, bins)
    return {name: float(values[0]) for name, values in panel.items()}
