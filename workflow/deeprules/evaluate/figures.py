"""The test-set figures: ROC and precision-recall curves, calibration, confusion, failures.

Every figure is drawn from the test probabilities evaluate already holds. Each
model keeps one look across figures (deeprules.evaluate.styles): the CNN, the
best tuned baseline and the shortcut control stand out, the other models are
muted, and the styles are recorded in each PNG's metadata.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from deeprules.contracts import Classes
from deeprules.evaluate.panel import METRIC_NAMES, called_classes, confusion_counts
from deeprules.evaluate.styles import (
    Style,
    legend_label,
    model_styles,
    save_styled_figure,
)


def _ranking_inputs(
    probs: np.ndarray, truth: np.ndarray, classes: Classes
) -> tuple[np.ndarray, np.ndarray]:
    """Scores and hits for curves: the positive class, or all classes pooled (micro)."""
    if classes.binary:
        return probs[:, classes.positive_index], truth == classes.positive_index
    return probs.ravel(), np.eye(len(classes.names), dtype=bool)[truth].ravel()


def _line(style: Style) -> dict[str, object]:
    """Matplotlib keywords for a model's line; muted lines sit under emphasised ones."""
    return {
        "color": style.colour,
        "linestyle": style.line,
        "linewidth": style.width,
        "alpha": 1.0 if style.emphasised else 0.8,
        "zorder": 3 if style.emphasised else 2,
    }


def curves_figure(
    probabilities: dict[str, np.ndarray],
    truth: np.ndarray,
    classes: Classes,
    kind: str,
    styles: dict[str, Style],
) -> plt.Figure:
    """ROC (kind 'roc') or precision-recall (kind 'pr') curves of every model on test."""
    from sklearn.metrics import (
        average_precision_score,
        precision_recall_curve,
        roc_auc_score,
        roc_curve,
    )

    figure, axis = plt.subplots(figsize=(9, 5.5))
    for model, style in styles.items():
        scores, hits = _ranking_inputs(probabilities[model], truth, classes)
        if kind == "roc":
            x, y, _ = roc_curve(hits, scores)
            value = roc_auc_score(hits, scores)
            axis.plot(x, y, label=f"{legend_label(model, style)} ({value:.3f})", **_line(style))
        else:
            y, x, _ = precision_recall_curve(hits, scores)
            value = average_precision_score(hits, scores)
            label = f"{legend_label(model, style)} ({value:.3f})"
            axis.step(x, y, where="post", label=label, **_line(style))
    pooled = "" if classes.binary else " (classes pooled, micro)"
    if kind == "roc":
        axis.plot(
            [0, 1],
            [0, 1],
            color="black",
            linestyle=(0, (1, 3)),
            linewidth=0.8,
            label="random (0.5)",
        )
        axis.set(
            xlabel="false positive rate", ylabel="true positive rate", title=f"ROC on test{pooled}"
        )
    else:
        first = probabilities[next(iter(styles))]
        prevalence = float(np.mean(_ranking_inputs(first, truth, classes)[1]))
        axis.axhline(
            prevalence,
            color="black",
            linestyle=(0, (1, 3)),
            linewidth=0.8,
            label=f"random ({prevalence:.3f})",
        )
        axis.set(xlabel="recall", ylabel="precision", title=f"Precision-recall on test{pooled}")
    axis.set_aspect("equal", adjustable="box")
    area = "AUROC" if kind == "roc" else "average precision"
    axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1), title=f"model ({area})")
    return figure


def _reliability(
    probs: np.ndarray, truth: np.ndarray, classes: Classes, bins: int
) -> tuple[list[float], list[float], list[int]]:
    """Mean predicted probability, observed frequency and count of each non-empty bin."""
    if classes.binary:
        confidence = probs[:, classes.positive_index]
        outcome = truth == classes.positive_index
    else:
        confidence, outcome = probs.max(axis=1), np.argmax(probs, axis=1) == truth
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    used = np.unique(which)
    return (
        [float(confidence[which == b].mean()) for b in used],
        [float(outcome[which == b].mean()) for b in used],
        [int(np.sum(which == b)) for b in used],
    )


def calibration_figure(
    probabilities: dict[str, np.ndarray],
    truth: np.ndarray,
    classes: Classes,
    bins: int,
    styles: dict[str, Style],
) -> plt.Figure:
    """Reliability diagrams as small multiples, one panel per model (the CNN, best baseline
    and shortcut control first): mean predicted probability vs observed frequency per bin,
    dot area by the number of test sequences in the bin."""
    models = list(styles)
    columns = min(4, len(models))
    rows = -(-len(models) // columns)
    figure, axes = plt.subplots(
        rows, columns, figsize=(3.1 * columns, 3.1 * rows), squeeze=False, sharex=True, sharey=True
    )
    what = f"P({classes.positive})" if classes.binary else "P(called class)"
    for axis, model in zip(axes.flat, models, strict=False):
        style = styles[model]
        mean_confidence, frequency, counts = _reliability(
            probabilities[model], truth, classes, bins
        )
        axis.plot([0, 1], [0, 1], color="black", linestyle=(0, (1, 3)), linewidth=0.8)
        axis.plot(mean_confidence, frequency, **_line(style))
        sizes = 200 * np.asarray(counts) / max(len(truth), 1) + 8
        axis.scatter(mean_confidence, frequency, s=sizes, color=style.colour, zorder=4)
        axis.set_title(
            legend_label(model, style),
            fontsize=9,
            fontweight="bold" if style.emphasised else "normal",
        )
        axis.set(xlim=(0, 1), ylim=(0, 1), aspect="equal")
    for axis in list(axes.flat)[len(models) :]:
        axis.axis("off")
    for index, axis in enumerate(list(axes.flat)[: len(models)]):
        if index + columns >= len(models):  # the lowest panel of its column
            axis.xaxis.set_tick_params(labelbottom=True)
            axis.set_xlabel(f"mean predicted {what}", fontsize=8)
    for axis in axes[:, 0]:
        axis.set_ylabel("observed frequency", fontsize=8)
    figure.suptitle("Calibration on test (dotted: perfectly calibrated; dot area: sequences)")
    figure.tight_layout()
    return figure


def confusion_figure(
    probabilities: dict[str, np.ndarray],
    truth: np.ndarray,
    classes: Classes,
    thresholds: dict[str, float | None],
    styles: dict[str, Style],
) -> plt.Figure:
    """One confusion matrix per model (the CNN, best baseline and shortcut control first):
    counts large enough to read, shaded by the share of each true class."""
    models = list(styles)
    k = len(classes.names)
    columns = min(4 if k <= 3 else 2, len(models))
    rows = -(-len(models) // columns)
    side = max(3.4, 1.1 * k + 1.6)
    figure, axes = plt.subplots(rows, columns, figsize=(side * columns, side * rows), squeeze=False)
    ones = np.ones((1, len(truth)))
    for axis, model in zip(axes.flat, models, strict=False):
        called = called_classes(probabilities[model], classes, thresholds[model])
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
                    fontsize=15 if k <= 3 else 11,
                    fontweight="bold",
                )
        axis.set_xticks(range(k), classes.names, rotation=30, ha="right", fontsize=9)
        axis.set_yticks(range(k), classes.names, fontsize=9)
        style = styles[model]
        axis.set_title(
            legend_label(model, style),
            fontsize=10,
            color=style.colour if style.emphasised else "black",
            fontweight="bold" if style.emphasised else "normal",
        )
        axis.set(xlabel="called", ylabel="true")
    for axis in list(axes.flat)[len(models) :]:
        axis.axis("off")
    figure.tight_layout()
    return figure


def failure_figure(table: pd.DataFrame, metric: str, styles: dict[str, Style]) -> plt.Figure:
    """One metric per group, one panel per grouping: bars with intervals for the CNN, best
    baseline and shortcut control, grey dots for every other model."""
    groupings = list(dict.fromkeys(table["grouping"])) if len(table) else []
    figure, axes = plt.subplots(
        max(1, len(groupings)), 1, figsize=(9, 3 * max(1, len(groupings))), squeeze=False
    )
    if not groupings:
        axes[0, 0].text(0.5, 0.5, "no group was large enough", ha="center", va="center")
        axes[0, 0].axis("off")
        return figure
    for axis, grouping in zip(axes[:, 0], groupings, strict=True):
        part = table[(table["grouping"] == grouping) & (table["metric"] == metric)]
        groups = list(dict.fromkeys(part["group"]))
        _failure_panel(axis, part, groups, styles)
        sizes = part.drop_duplicates("group").set_index("group")["n"].reindex(groups)
        axis.set_xticks(
            np.arange(len(groups)), [f"{g}\n(n={n})" for g, n in sizes.items()], fontsize=8
        )
        axis.set(ylabel=METRIC_NAMES.get(metric, metric), title=grouping, ylim=(0, 1.05))
    handles, labels = axes[0, 0].get_legend_handles_labels()
    last = [label == "other models" for label in labels]  # the muted dots after the bars
    order = sorted(range(len(labels)), key=lambda i: last[i])
    axes[0, 0].legend(
        [handles[i] for i in order],
        [labels[i] for i in order],
        fontsize=8,
        loc="upper left",
        bbox_to_anchor=(1.01, 1),
    )
    figure.tight_layout()
    return figure


def _failure_panel(
    axis: plt.Axes, part: pd.DataFrame, groups: list[str], styles: dict[str, Style]
) -> None:
    """One grouping's bars (emphasised models) and dots (muted models)."""
    present = [m for m in styles if m in set(part["model"])]
    shown = [m for m in present if styles[m].emphasised]
    width = 0.7 / max(len(shown), 1)
    for index, model in enumerate(shown):
        rows = part[part["model"] == model].set_index("group").reindex(groups)
        value = rows["value"].astype(float).to_numpy()
        low = np.nan_to_num(value - rows["ci_low"].astype(float).to_numpy())
        high = np.nan_to_num(rows["ci_high"].astype(float).to_numpy() - value)
        axis.bar(
            np.arange(len(groups)) - 0.42 + (index + 0.5) * width,
            value,
            width,
            label=legend_label(model, styles[model]),
            color=styles[model].colour,
            yerr=[low, high],
            capsize=2,
        )
    muted = part[part["model"].isin([m for m in present if not styles[m].emphasised])]
    if len(muted):
        where = muted["group"].map({g: i for i, g in enumerate(groups)}).to_numpy()
        axis.scatter(
            where + 0.45,
            muted["value"].astype(float),
            s=14,
            color="#8c8c8c",
            zorder=3,
            label="other models",
        )


def save_test_figures(
    paths: dict[str, Path],
    probabilities: dict[str, np.ndarray],
    truth: np.ndarray,
    classes: Classes,
    thresholds: dict[str, float | None],
    failures: pd.DataFrame,
    bins: int,
    roles: dict[str, str],
    best_baseline: str | None,
) -> None:
    """The five figures, to the rule's outputs roc, pr, calibration, confusion, failure_plot;
    `roles` and `best_baseline` decide which models stand out."""
    styles = model_styles({m: roles[m] for m in probabilities}, best_baseline)
    for kind in ("roc", "pr"):
        figure = curves_figure(probabilities, truth, classes, kind, styles)
        save_styled_figure(figure, paths[kind], styles)
    save_styled_figure(
        calibration_figure(probabilities, truth, classes, bins, styles),
        paths["calibration"],
        styles,
    )
    save_styled_figure(
        confusion_figure(probabilities, truth, classes, thresholds, styles),
        paths["confusion"],
        styles,
    )
    save_styled_figure(
        failure_figure(failures, "balanced_accuracy", styles), paths["failure_plot"], styles
    )
