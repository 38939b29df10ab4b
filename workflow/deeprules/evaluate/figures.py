"""The test-set figures: ROC and precision-recall curves, calibration, confusion, failures.

Every figure is drawn from the test probabilities evaluate already holds and
saved with deeprules.figures.save_figure, like every stage's figures.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from deeprules.contracts import Classes
from deeprules.evaluate.panel import METRIC_NAMES, called_classes, confusion_counts
from deeprules.figures import save_figure


def _ranking_inputs(
    probs: np.ndarray, truth: np.ndarray, classes: Classes
) -> tuple[np.ndarray, np.ndarray]:
    """Scores and hits for curves: the positive class, or all classes pooled (micro)."""
    if classes.binary:
        return probs[:, classes.positive_index], truth == classes.positive_index
    return probs.ravel(), np.eye(len(classes.names), dtype=bool)[truth].ravel()


def curves_figure(
    probabilities: dict[str, np.ndarray], truth: np.ndarray, classes: Classes, kind: str
) -> plt.Figure:
    """ROC (kind 'roc') or precision-recall (kind 'pr') curves of every model on test."""
    from sklearn.metrics import (
        average_precision_score,
        precision_recall_curve,
        roc_auc_score,
        roc_curve,
    )

    figure, axis = plt.subplots(figsize=(6, 5))
    for model, probs in probabilities.items():
        scores, hits = _ranking_inputs(probs, truth, classes)
        if kind == "roc":
            x, y, _ = roc_curve(hits, scores)
            axis.plot(x, y, label=f"{model} ({roc_auc_score(hits, scores):.3f})")
        else:
            y, x, _ = precision_recall_curve(hits, scores)
            axis.step(
                x, y, where="post", label=f"{model} ({average_precision_score(hits, scores):.3f})"
            )
    pooled = "" if classes.binary else " (classes pooled, micro)"
    if kind == "roc":
        axis.plot([0, 1], [0, 1], color="grey", linestyle=":", label="random (0.5)")
        axis.set(
            xlabel="false positive rate", ylabel="true positive rate", title=f"ROC on test{pooled}"
        )
    else:
        prevalence = float(
            np.mean(_ranking_inputs(next(iter(probabilities.values())), truth, classes)[1])
        )
        axis.axhline(prevalence, color="grey", linestyle=":", label=f"random ({prevalence:.3f})")
        axis.set(xlabel="recall", ylabel="precision", title=f"Precision-recall on test{pooled}")
    axis.legend(fontsize=7, loc="lower right" if kind == "roc" else "lower left")
    return figure


def calibration_figure(
    probabilities: dict[str, np.ndarray], truth: np.ndarray, classes: Classes, bins: int
) -> plt.Figure:
    """Reliability diagram: mean predicted probability vs observed frequency per bin."""
    figure, axis = plt.subplots(figsize=(6, 5))
    edges = np.linspace(0, 1, bins + 1)
    for model, probs in probabilities.items():
        if classes.binary:
            confidence = probs[:, classes.positive_index]
            outcome = truth == classes.positive_index
        else:
            confidence, outcome = probs.max(axis=1), np.argmax(probs, axis=1) == truth
        which = np.minimum((confidence * bins).astype(int), bins - 1)
        used = np.unique(which)
        mean_confidence = [confidence[which == b].mean() for b in used]
        frequency = [outcome[which == b].mean() for b in used]
        axis.plot(mean_confidence, frequency, marker="o", label=model)
    axis.plot(
        edges[[0, -1]], edges[[0, -1]], color="grey", linestyle=":", label="perfectly calibrated"
    )
    what = f"P({classes.positive})" if classes.binary else "probability of the called class"
    axis.set(
        xlabel=f"mean predicted {what}", ylabel="observed frequency", title="Calibration on test"
    )
    axis.legend(fontsize=7)
    return figure


def confusion_figure(
    probabilities: dict[str, np.ndarray],
    truth: np.ndarray,
    classes: Classes,
    thresholds: dict[str, float | None],
) -> plt.Figure:
    """One confusion matrix per model: counts, shaded by the share of each true class."""
    columns = min(3, len(probabilities))
    rows = -(-len(probabilities) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 3.3 * rows), squeeze=False)
    ones = np.ones((1, len(truth)))
    k = len(classes.names)
    for axis, (model, probs) in zip(axes.flat, probabilities.items(), strict=False):
        called = called_classes(probs, classes, thresholds[model])
        counts = confusion_counts(truth, called, k, ones)[0]
        share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        axis.imshow(share, cmap="Blues", vmin=0, vmax=1)
        for i in range(k):
            for j in range(k):
                axis.text(
                    j,
                    i,
                    int(counts[i, j]),
                    ha="center",
                    va="center",
                    color="white" if share[i, j] > 0.5 else "black",
                    fontsize=8,
                )
        axis.set_xticks(range(k), classes.names, rotation=45, ha="right", fontsize=7)
        axis.set_yticks(range(k), classes.names, fontsize=7)
        axis.set(title=model, xlabel="called", ylabel="true")
    for axis in list(axes.flat)[len(probabilities) :]:
        axis.axis("off")
    figure.tight_layout()
    return figure


def failure_figure(table: pd.DataFrame, metric: str) -> plt.Figure:
    """Bars of one metric per group and model, with CIs, one panel per grouping."""
    groupings = list(dict.fromkeys(table["grouping"])) if len(table) else []
    figure, axes = plt.subplots(
        max(1, len(groupings)), 1, figsize=(8, 3 * max(1, len(groupings))), squeeze=False
    )
    if not groupings:
        axes[0, 0].text(0.5, 0.5, "no group was large enough", ha="center", va="center")
        axes[0, 0].axis("off")
        return figure
    for axis, grouping in zip(axes[:, 0], groupings, strict=True):
        part = table[(table["grouping"] == grouping) & (table["metric"] == metric)]
        groups = list(dict.fromkeys(part["group"]))
        models = list(dict.fromkeys(part["model"]))
        width = 0.8 / len(models)
        for index, model in enumerate(models):
            rows = part[part["model"] == model].set_index("group").reindex(groups)
            value = rows["value"].astype(float).to_numpy()
            low = np.nan_to_num(value - rows["ci_low"].astype(float).to_numpy())
            high = np.nan_to_num(rows["ci_high"].astype(float).to_numpy() - value)
            axis.bar(
                np.arange(len(groups)) + index * width,
                value,
                width,
                label=model,
                yerr=[low, high],
                capsize=2,
            )
        axis.set_xticks(
            np.arange(len(groups)) + 0.4 - width / 2,
            [
                f"{g}\n(n={n})"
                for g, n in part.drop_duplicates("group")
                .set_index("group")["n"]
                .reindex(groups)
                .items()
            ],
            fontsize=7,
        )
        axis.set(ylabel=METRIC_NAMES.get(metric, metric), title=grouping, ylim=(0, 1.05))
    axes[0, 0].legend(fontsize=7, ncol=min(4, len(models)))
    figure.tight_layout()
    return figure


def save_test_figures(
    paths: dict[str, Path],
    probabilities: dict[str, np.ndarray],
    truth: np.ndarray,
    classes: Classes,
    thresholds: dict[str, float | None],
    failures: pd.DataFrame,
    bins: int,
) -> None:
    """The five figures, to the rule's outputs roc, pr, calibration, confusion, failure_plot."""
    save_figure(curves_figure(probabilities, truth, classes, "roc"), paths["roc"])
    save_figure(curves_figure(probabilities, truth, classes, "pr"), paths["pr"])
    save_figure(calibration_figure(probabilities, truth, classes, bins), paths["calibration"])
    save_figure(confusion_figure(probabilities, truth, classes, thresholds), paths["confusion"])
    save_figure(failure_figure(failures, "balanced_accuracy"), paths["failure_plot"])
