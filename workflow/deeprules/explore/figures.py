"""The explore figures: lengths, composition, k-mer PCA, shortcut AUROCs, positions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from deeprules.explore.shortcut_checks import SHORTCUT_WORDS
from deeprules.figures import save_figure

MAX_POINTS_PER_PLOT = 4000


def _save(figure: Figure, path: Path, lay_out: bool = True) -> None:
    """Lay the figure out and save it at 110 dpi, uncropped: the look explore's
    figures have always had. `lay_out=False` for figures laid out by hand, since
    automatic layout of many labelled heatmaps costs seconds."""
    if lay_out:
        figure.tight_layout()
    save_figure(figure, path, dpi=110, tight=False)


def plot_lengths(table: pd.DataFrame, path: Path) -> None:
    figure = Figure(figsize=(7, 4))
    axis = figure.subplots()
    lengths = table["sequence"].str.len()
    bins = np.linspace(lengths.min(), lengths.max() + 1, min(60, lengths.nunique() + 1))
    for label, group in lengths.groupby(table["label"]):
        axis.hist(group, bins=bins, density=True, histtype="step", linewidth=1.5, label=str(label))
    axis.set(xlabel="sequence length", ylabel="density", title="Length by class")
    axis.legend(title="label")
    _save(figure, path)


def plot_composition(composition: np.ndarray, labels: pd.Series, alphabet: str, path: Path) -> None:
    means = pd.DataFrame(composition, columns=list(alphabet)).groupby(labels.to_numpy()).mean()
    figure = Figure(figsize=(min(12, max(6, 0.45 * len(alphabet) * len(means))), 4))
    axis = figure.subplots()
    width = 0.8 / len(means)
    for offset, (label, row) in enumerate(means.iterrows()):
        axis.bar(np.arange(len(alphabet)) + offset * width, row.to_numpy(), width, label=str(label))
    axis.set_xticks(np.arange(len(alphabet)) + 0.4 - width / 2, list(alphabet))
    axis.set(ylabel="mean fraction per sequence", title="Composition by class")
    axis.legend(title="label")
    _save(figure, path)


def plot_pca(
    coordinates: np.ndarray,
    explained: np.ndarray,
    sample: pd.DataFrame,
    columns: list[str],
    k: int,
    seed: int,
    path: Path,
) -> None:
    """One scatter per colouring: by label, then by each metadata column."""
    shown = np.random.default_rng(seed).permutation(len(sample))[:MAX_POINTS_PER_PLOT]
    colourings = ["label", *columns]
    figure = Figure(figsize=(5 * len(colourings), 4.5))
    axes = figure.subplots(1, len(colourings), squeeze=False)
    for axis, column in zip(axes[0], colourings, strict=True):
        values = sample[column].replace("", "(missing)").to_numpy()[shown]
        levels = pd.Series(values).value_counts().index
        for level in levels[:10]:
            at = shown[values == level]
            axis.scatter(coordinates[at, 0], coordinates[at, 1], s=4, alpha=0.5, label=str(level))
        if len(levels) > 10:
            at = shown[~np.isin(values, levels[:10])]
            axis.scatter(
                coordinates[at, 0],
                coordinates[at, 1],
                s=4,
                alpha=0.5,
                c="grey",
                label=f"{len(levels) - 10} more",
            )
        axis.set(
            xlabel=f"PC1 ({explained[0]:.0%})",
            ylabel=f"PC2 ({explained[1]:.0%})",
            title=f"{k}-mer profiles by {column}",
        )
        axis.legend(markerscale=3, fontsize=7)
    _save(figure, path)


def plot_shortcuts(scores: pd.DataFrame, settings: dict[str, Any], path: Path) -> None:
    pivot = scores.pivot(index="feature_set", columns="model", values="auroc")
    pivot = pivot.loc[[name for name in SHORTCUT_WORDS if name in pivot.index]]
    figure = Figure(figsize=(8, 4))
    axis = figure.subplots()
    width = 0.8 / len(pivot.columns)
    for offset, model in enumerate(pivot.columns):
        axis.bar(np.arange(len(pivot)) + offset * width, pivot[model], width, label=model)
    axis.axhline(0.5, color="black", linewidth=0.8, linestyle=":", label="chance")
    axis.axhline(settings["auroc_warn"], color="orange", linestyle="--", label="warn")
    axis.axhline(settings["auroc_fail"], color="red", linestyle="--", label="fail")
    axis.set_xticks(np.arange(len(pivot)) + 0.4 - width / 2, pivot.index, rotation=20)
    axis.set(ylim=(0.4, 1.0), ylabel="cross-validated AUROC", title="Trivial features alone")
    axis.legend(fontsize=8)
    _save(figure, path)


def plot_positions(
    frequencies: pd.DataFrame, association: pd.DataFrame, settings: dict[str, Any], path: Path
) -> None:
    """Cramér's V per position (top) and per-class residue frequencies (heatmaps) from both ends."""
    labels = sorted(frequencies["label"].unique()) if not frequencies.empty else []
    shown = labels[:6]
    figure = Figure(figsize=(12, 2.5 + 2.5 * len(shown)))
    axes = figure.subplots(1 + len(shown), 2, squeeze=False)
    figure.subplots_adjust(left=0.06, right=0.97, bottom=0.06, top=0.95, hspace=0.6, wspace=0.2)
    for column, end in enumerate(("start", "end")):
        axis = axes[0, column]
        part = association[association["end"] == end] if not association.empty else association
        if not part.empty:
            axis.plot(part["position"], part["cramers_v"], marker="o", markersize=3)
        axis.axhline(settings["position_v_warn"], color="orange", linestyle="--")
        axis.axhline(settings["position_v_fail"], color="red", linestyle="--")
        axis.set(
            xlabel=f"position from the {end}",
            ylabel="Cramér's V",
            ylim=(0, 1),
            title=f"Class differences by position, from the {end}",
        )
        for row, label in enumerate(shown, start=1):
            axis = axes[row, column]
            cells = frequencies[(frequencies["end"] == end) & (frequencies["label"] == label)]
            if cells.empty:
                axis.set_axis_off()
                continue
            grid = cells.pivot(index="residue", columns="position", values="fraction").fillna(0)
            image = axis.imshow(grid.to_numpy(), aspect="auto", cmap="viridis", vmin=0)
            axis.set_yticks(range(len(grid.index)), grid.index, fontsize=6)
            axis.set_xticks(range(0, len(grid.columns), 5), grid.columns[::5])
            axis.set(title=f"{label}: residue frequency from the {end}", xlabel="position")
            figure.colorbar(image, ax=axis, fraction=0.03)
    _save(figure, path, lay_out=False)
