"""Sequence logos, for attributions (letter heights = attribution) and filters (bits)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd


def logo_figure(matrices: list[tuple[str, pd.DataFrame]], ylabel: str) -> plt.Figure:
    """One sequence logo per matrix (letters as columns), stacked."""
    import logomaker

    figure, axes = plt.subplots(
        max(1, len(matrices)), 1, figsize=(8, 1.6 * max(1, len(matrices))), squeeze=False
    )
    for axis, (title, matrix) in zip(axes[:, 0], matrices, strict=False):
        logomaker.Logo(
            matrix, ax=axis, color_scheme="classic" if matrix.shape[1] <= 4 else "chemistry"
        )
        axis.set_title(title, fontsize=8)
        axis.set_ylabel(ylabel, fontsize=7)
    if not matrices:
        axes[0, 0].text(0.5, 0.5, "nothing to draw", ha="center", va="center")
        axes[0, 0].axis("off")
    figure.tight_layout()
    return figure
