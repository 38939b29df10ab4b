"""What a report of a sensitive dataset leaves out, and says it left out (Tip 10).

"Don't share the weights or arbitrary access to the predictions of models
trained on sensitive data": a figure that shows sequences (attribution logos
of example sequences, with their ids), model weights (first-layer filters as
logos, the baselines' feature weights) or one point per sequence (the k-mer
PCA) can leak training data as surely as the weights can. With
`sensitive: true` in the dataset file these figures are not embedded in the
reviewer's page, and the page lists them with the reason. The same outputs
(and the tables behind them) are kept out of Snakemake's report by the rules
(common.smk, `shareable`).
"""

from __future__ import annotations

from pathlib import Path

# (stage, figure) -> what it would show.
WITHHELD_FIGURES = {
    ("explore", "pca"): "one point per sequence (k-mer PCA)",
    ("interpret", "baseline_importance"): "the baselines' feature weights and importances",
    ("interpret", "attributions"): "example sequences, with their ids, as attribution logos",
    ("interpret", "filter_logos"): "the CNN's first-layer filters (model weights) as logos",
}
# Outputs the rules keep out of Snakemake's report for a run with a sensitive dataset.
WITHHELD_TABLES = {
    "curate/dropped.tsv": "ids and sequence hashes of dropped records",
    "split/dropped.tsv": "ids of sequences the split removed",
    "explore/near_duplicates.tsv": "ids of near-duplicate pairs",
    "interpret/baseline_importance.tsv": "the baselines' feature weights",
    "interpret/filters.tsv": "the CNN's first-layer filters",
}


def shown_figures(paths: list[Path], sensitive: bool) -> list[Path]:
    """The figures the page may embed: all of them, or for sensitive data all but those
    that show sequences, weights or per-sequence values."""
    if not sensitive:
        return list(paths)
    return [path for path in paths if (path.parent.name, path.stem) not in WITHHELD_FIGURES]


def withheld(sensitive: bool) -> list[dict[str, str]]:
    """What the page says it left out (empty unless the data are sensitive)."""
    if not sensitive:
        return []
    figures = [
        {"item": f"figure {stage}/{name}.png", "shows": shows}
        for (stage, name), shows in WITHHELD_FIGURES.items()
    ]
    tables = [
        {"item": f"{path} (not in Snakemake's report)", "shows": shows}
        for path, shows in WITHHELD_TABLES.items()
    ]
    return figures + tables
