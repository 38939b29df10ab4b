"""Check 2: can a trivial feature set alone (length, composition, end residues) predict
the label? The features and their scoring are in deeprules.shortcuts."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from deeprules import shortcuts
from deeprules.explore.verdicts import auroc_verdict, make_check

log = logging.getLogger("deeprules.explore")


SHORTCUT_WORDS = {
    "length": "sequence length",
    "gc_content": "GC content",
    "composition": "residue composition",
    "di_residues": "di-residue composition",
    "first_residues": "the first residues",
    "last_residues": "the last residues",
    "ambiguous_fraction": "the fraction of ambiguous symbols",
}


def shortcut_features(
    encoded: shortcuts.EncodedSequences, sequence_type: str, end_positions: int
) -> dict[str, np.ndarray]:
    """The trivial feature sets a model could win with without reading the sequence as a whole."""
    features = {"length": encoded.lengths.astype(float)}
    if sequence_type != "protein":
        features["gc_content"] = shortcuts.gc_content(encoded)
    features["composition"] = shortcuts.composition(encoded)
    features["di_residues"] = shortcuts.kmer_profile(encoded, 2)
    features["first_residues"] = shortcuts.end_residues(encoded, end_positions, from_end=False)
    features["last_residues"] = shortcuts.end_residues(encoded, end_positions, from_end=True)
    features["ambiguous_fraction"] = shortcuts.ambiguous_fraction(encoded)
    return features


def shortcut_checks(
    features: dict[str, np.ndarray],
    labels: np.ndarray,
    settings: dict[str, Any],
    seed: int,
    threads: int = 1,
) -> tuple[list[dict[str, Any]], pd.DataFrame]:
    """Check 2: cross-validated AUROC of each trivial feature set alone."""
    checks, rows = [], []
    thresholds = {"warn": settings["auroc_warn"], "fail": settings["auroc_fail"]}
    # one single-threaded worker per feature set: robust on a busy machine, where
    # multi-threaded tree fitting stalls waiting for cores
    scores = Parallel(n_jobs=threads, backend="loky", inner_max_num_threads=1)(
        delayed(shortcuts.shortcut_auroc)(
            values,
            labels,
            folds=settings["cv_folds"],
            permutations=settings["permutations"],
            seed=seed,
        )
        for values in features.values()
    )
    for name, score in zip(features, scores, strict=True):
        result = auroc_verdict(score.best, score.p_value, settings)
        log.info(
            "shortcut %s: AUROC %s, p = %.3g -> %s",
            name,
            {model: round(value, 3) for model, value in score.auroc.items()},
            score.p_value,
            result,
        )
        rows += _score_rows(name, score)
        checks.append(
            make_check(
                f"shortcut_{name}",
                "shortcut",
                "cross-validated AUROC, larger of a linear and a flexible model",
                score.best,
                thresholds,
                result,
                _shortcut_explanation(name, score, result),
                model=score.best_model,
                auroc_per_model=score.auroc,
                p_value=score.p_value,
                shuffles=score.permutations,
            )
        )
    return checks, pd.DataFrame(rows)


def _score_rows(name: str, score: shortcuts.ShortcutScore) -> list[dict[str, Any]]:
    """One table row per model tried on a feature set, not only the kept one: the table
    shows how much the flexible model adds over the linear one (and its fold spread)."""
    return [
        {
            "check": f"shortcut_{name}",
            "feature_set": name,
            "model": model,
            "auroc": round(value, 4),
            "auroc_fold_sd": round(float(np.std(score.fold_auroc[model])), 4)
            if score.fold_auroc[model]
            else 0.0,
            "kept": model == score.best_model,
            "p_value": score.p_value,
            "shuffles": score.permutations,
        }
        for model, value in score.auroc.items()
    ]


def _shortcut_explanation(name: str, score: shortcuts.ShortcutScore, result: str) -> str:
    what = SHORTCUT_WORDS[name]
    if score.permutations == 0:
        return f"Using only {what}, no model can separate the classes: it is the same everywhere."
    if result == "pass":
        return f"Using only {what}, a model hardly separates the classes (AUROC {score.best:.2f})."
    return (
        f"Using only {what}, a {score.best_model} model separates the classes with AUROC "
        f"{score.best:.2f} (p = {score.p_value:.3g}): a model can score this without learning "
        "anything else, so treat it as the floor to beat."
    )
