"""Saving figures, the same way for every stage."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no screen on cluster nodes
import matplotlib.pyplot as plt

from deeprules.io import atomic_write


def save_figure(
    figure: plt.Figure,
    path: str | Path,
    dpi: int = 120,
    tight: bool = True,
    description: str | None = None,
) -> None:
    """PNG through a temporary file, so a killed job leaves no half-written figure;
    the figure is closed, so long loops over models do not pile up memory.
    `description` goes into the PNG's Description text chunk (e.g. which colour is
    which model, for a reader's check)."""
    metadata = {"Description": description} if description is not None else None
    with atomic_write(path, "wb") as handle:
        figure.savefig(
            handle,
            format="png",
            dpi=dpi,
            bbox_inches="tight" if tight else None,
            metadata=metadata,
        )
    plt.close(figure)
