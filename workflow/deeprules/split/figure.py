"""The identity figure: what the split kept together and what still crosses partitions.

Within-partition pairs at or above the threshold are the families kept whole;
cross-partition pairs should all sit left of the threshold line.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from deeprules.figures import save_figure
from deeprules.split.settings import SplitSettings


def plot_identities(
    within: pd.Series, across: pd.Series, settings: SplitSettings, path: Path
) -> None:
    """Histogram of pair identities within partitions vs across partitions."""
    fig, ax = plt.subplots(figsize=(6.4, 4))
    bins = np.linspace(settings.listing_floor, 1, 41)
    ax.hist(
        within,
        bins=bins,
        alpha=0.6,
        label=f"within a partition, at or above the threshold (n={len(within)})",
    )
    ax.hist(across, bins=bins, alpha=0.6, label=f"across partitions (n={len(across)})")
    ax.axvline(
        settings.threshold,
        color="black",
        linestyle="--",
        label=f"threshold {settings.threshold:g} (at or above = homologous)",
    )
    ax.set_xlabel(f"identity (identical residues / {settings.denominator})")
    ax.set_ylabel("sequence pairs")
    if len(within) or len(across):
        ax.set_yscale("log")  # no pairs at all (e.g. unrelated DNA): a linear, empty axis
    ax.set_title(f"Pair identities, {settings.method} split")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
