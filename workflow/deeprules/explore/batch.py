"""Check 6: batch structure. Within one label, do k-mer profiles tell which batch
(metadata value) a sequence is from? Plus the PCA of those profiles for the figure."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA

from deeprules import shortcuts
from deeprules.explore.verdicts import auroc_verdict, make_check


def kmer_pca(profiles: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """First two principal components of k-mer profiles and their explained variance."""
    pca = PCA(n_components=2, random_state=seed)
    return pca.fit_transform(profiles), pca.explained_variance_ratio_


def batch_checks(
    profiles: np.ndarray,
    sample: pd.DataFrame,
    metadata: list[str],
    settings: dict[str, Any],
    seed: int,
) -> tuple[list[dict[str, Any]], pd.DataFrame]:
    """Check 6: within one label, can k-mers tell which batch (metadata value) a sequence is from?

    If yes, the batch leaves a trace in the sequence features, and any
    label-batch imbalance becomes a shortcut a model can use.
    """
    checks, rows = [], []
    thresholds = {"warn": settings["auroc_warn"], "fail": settings["auroc_fail"]}
    folds = settings["cv_folds"]
    for column in metadata:
        worst: dict[str, Any] | None = None
        for label, within in sample.groupby("label", sort=True):
            levels = within[column].replace("", "(missing)")
            counts = levels.value_counts()
            usable = counts[counts >= folds].index
            keep = levels.isin(usable).to_numpy()
            if len(usable) < 2:
                rows.append(
                    {
                        "column": column,
                        "label": label,
                        "levels": len(usable),
                        "sequences": int(keep.sum()),
                        "auroc": None,
                        "p_value": None,
                    }
                )
                continue
            codes = pd.Categorical(levels[keep]).codes.astype(int)
            score = shortcuts.shortcut_auroc(
                profiles[within.index.to_numpy()[keep]],
                codes,
                folds=folds,
                permutations=settings["permutations"],
                seed=seed,
                models={"linear": shortcuts.linear_model()},
            )
            rows.append(
                {
                    "column": column,
                    "label": label,
                    "levels": len(usable),
                    "sequences": int(keep.sum()),
                    "auroc": round(score.best, 4),
                    "p_value": score.p_value,
                }
            )
            if worst is None or score.best > worst["auroc"]:
                worst = {"auroc": score.best, "p_value": score.p_value, "label": label}
        checks.append(_batch_check(column, worst, thresholds, settings))
    return checks, pd.DataFrame(
        rows, columns=["column", "label", "levels", "sequences", "auroc", "p_value"]
    )


def _batch_check(
    column: str,
    worst: dict[str, Any] | None,
    thresholds: dict[str, float],
    settings: dict[str, Any],
) -> dict[str, Any]:
    statistic = "largest cross-validated AUROC, within one label, of k-mers predicting the column"
    if worst is None:
        return make_check(
            f"batch_{column}",
            "batch",
            statistic,
            0.5,
            thresholds,
            "pass",
            f"Within each label '{column}' has fewer than two values with enough sequences, "
            "so a batch effect inside a label cannot be tested.",
            column=column,
            tested=False,
        )
    result = auroc_verdict(worst["auroc"], worst["p_value"], settings)
    explanation = (
        f"Within label '{worst['label']}', k-mer profiles predict '{column}' with AUROC "
        f"{worst['auroc']:.2f}: the batch leaves a trace in the sequences, so a model can use "
        f"it wherever '{column}' and the label are linked."
        if result != "pass"
        else f"Within each label, k-mer profiles hardly predict '{column}' (AUROC at most "
        f"{worst['auroc']:.2f})."
    )
    return make_check(
        f"batch_{column}",
        "batch",
        statistic,
        worst["auroc"],
        thresholds,
        result,
        explanation,
        column=column,
        tested=True,
        label=worst["label"],
        p_value=worst["p_value"],
    )
