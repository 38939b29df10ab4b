"""Covariate shift between partitions, measured as two-sample ("adversarial") tests.

A test set must be independent of training (the homology guarantee) and a fair
sample of the question: when a classifier can tell which partition a sequence
came from by its length alone, test scores also measure transfer to other
lengths, and models tuned on a shifted tune set are tuned for the wrong data.
For every pair of partitions: the cross-validated AUROC of a classifier
predicting the partition from length and one predicting it from residue
composition, the Kolmogorov-Smirnov statistic on length, and length quartiles
per label. The length classifier is smooth on purpose (logistic regression on a
cubic spline of log length, 5 quantile knots): it sees shifts in location,
spread and shape of the length distribution, but cannot memorise the exact
lengths of families, which differ between partitions by design of a homology
split. Composition differs between partitions by design too (other families),
so it is reported, and gated only if the config asks.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import SplineTransformer, StandardScaler

from deeprules.contracts import ALPHABETS, PARTITIONS
from deeprules.io import InputError
from deeprules.split.settings import SplitSettings

log = logging.getLogger("deeprules.split")

FOLDS = 5
LENGTH_KNOTS = 5
CLASSIFIERS = {
    "length": (
        f"logistic regression on a cubic spline of log length ({LENGTH_KNOTS} quantile "
        f"knots), {FOLDS}-fold stratified cross-validation"
    ),
    "composition": (
        f"logistic regression on standardised residue frequencies, {FOLDS}-fold "
        "stratified cross-validation"
    ),
}


class ShiftError(InputError):
    """A homology split whose partitions a classifier tells apart beyond the gate."""


def shift_statistics(
    kept: pd.DataFrame,
    sequence_type: str,
    seed: int,
    classifiers: tuple[str, ...] = tuple(CLASSIFIERS),
) -> dict[str, Any]:
    """Shift between every pair of partitions of `kept` (columns sequence, label, partition);
    `classifiers`: which AUROCs to compute (length, composition)."""
    lengths = kept["sequence"].str.len().to_numpy()
    features = {
        "length": lambda: np.log(np.maximum(lengths, 1)).astype(np.float64)[:, None],
        "composition": lambda: _composition(kept["sequence"], sequence_type),
    }
    features = {name: features[name]() for name in classifiers}
    pairs = {}
    for first, second in itertools.combinations(PARTITIONS, 2):
        rows = kept["partition"].isin([first, second]).to_numpy()
        target = (kept["partition"].to_numpy()[rows] == second).astype(int)
        name = " vs ".join(sorted((first, second)))
        pairs[name] = {
            f"{feature}_auroc": _cross_validated_auroc(matrix[rows], target, feature, seed)
            for feature, matrix in features.items()
        }
        a, b = lengths[rows][target == 0], lengths[rows][target == 1]
        test = ks_2samp(a, b) if len(a) and len(b) else None
        pairs[name]["length_ks"] = float(test.statistic) if test else None
        pairs[name]["length_ks_p"] = float(test.pvalue) if test else None
        pairs[name]["smaller_partition"] = int(min(len(a), len(b)))
    return {
        "classifiers": CLASSIFIERS,
        "pairs": pairs,
        "length_quartiles_per_label": _quartiles_per_label(kept, lengths),
    }


def _composition(sequences: pd.Series, sequence_type: str) -> np.ndarray:
    """Relative frequency of each letter of the alphabet (other letters ignored)."""
    alphabet = ALPHABETS[sequence_type]
    upper = sequences.str.upper()
    counts = np.column_stack([upper.str.count(letter).to_numpy() for letter in alphabet])
    return counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)


def _cross_validated_auroc(
    features: np.ndarray, target: np.ndarray, feature: str, seed: int
) -> float | None:
    """AUROC of out-of-fold predictions; None when a partition is too small to fold."""
    if min(np.bincount(target, minlength=2)) < FOLDS:
        return None
    if feature == "length":
        model = make_pipeline(
            SplineTransformer(n_knots=LENGTH_KNOTS, degree=3, knots="quantile"),
            LogisticRegression(max_iter=1000),
        )
        if len(np.unique(features)) < 2:
            return 0.5
    else:
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=seed)
    scores = cross_val_predict(model, features, target, cv=folds, method="predict_proba")[:, 1]
    return float(roc_auc_score(target, scores))


def _quartiles_per_label(kept: pd.DataFrame, lengths: np.ndarray) -> dict[str, Any]:
    """Length quartiles per partition and label: whether the label/length relation is
    the same in every partition (a model can learn length as a label cue)."""
    frame = pd.DataFrame(
        {"partition": kept["partition"].to_numpy(), "label": kept["label"], "length": lengths}
    )
    return {
        name: {
            str(label): group["length"].quantile([0.25, 0.5, 0.75]).tolist()
            for label, group in frame[frame["partition"] == name].groupby("label")
        }
        for name in PARTITIONS
    }


def gate(shift: dict[str, Any], settings: SplitSettings) -> dict[str, Any]:
    """Which pairs exceed the AUROC gate (pairs whose smaller partition has at least
    `split.shift.min_sequences` sequences; below that the AUROC is too noisy to act on)."""
    exceeded = []
    for name, pair in shift["pairs"].items():
        if pair["smaller_partition"] < settings.shift_min_sequences:
            continue
        for feature in settings.shift_gated:
            value = pair[f"{feature}_auroc"]
            if value is not None and value > settings.shift_max_auroc:
                exceeded.append({"pair": name, "feature": feature, "auroc": value})
    return {
        "max_auroc": settings.shift_max_auroc,
        "gated": list(settings.shift_gated),
        "min_sequences": settings.shift_min_sequences,
        "exceeded": exceeded,
        "passed": not exceeded,
        "action": ("fail" if settings.method == "homology" and settings.fail_on_shift else "warn"),
    }


def passes_gate(kept: pd.DataFrame, settings: SplitSettings) -> bool:
    """Whether a candidate partition passes the shift gate (gated classifiers only)."""
    shift = shift_statistics(kept, settings.sequence_type, settings.seed, settings.shift_gated)
    return bool(gate(shift, settings)["passed"])


def stop_on_shift(verdict: dict[str, Any], method: str) -> None:
    """Fail (homology, fail_on_shift) or warn when a pair exceeds the gate."""
    if verdict["passed"]:
        return
    shown = ", ".join(f"{e['pair']} {e['feature']} {e['auroc']:.3f}" for e in verdict["exceeded"])
    message = (
        f"split: a classifier tells partitions apart beyond split.shift.max_auroc "
        f"{verdict['max_auroc']:g}: {shown}. Test scores would also measure transfer to "
        "other lengths (or compositions)."
    )
    if verdict["action"] == "fail":
        raise ShiftError(
            f"{message} Balance more strictly (split.balance.length_bins, "
            "split.balance.tolerance) or set split.shift.fail_on_shift: false to accept it."
        )
    log.warning("%s (%s split: reported, not stopped)", message, method)
