"""Trivial sequence features and how well each alone predicts the label.

A deep model is only interesting if it beats what length, composition or the
first residue already tell (Tips 4 and 7). This module turns sequences into
those trivial features and scores each feature set by cross-validated AUROC,
with a shuffled-label null so every score carries a p-value.

Two models per feature set, keeping the larger AUROC:
- a monotone/linear score (standardised logistic regression) — what a simple
  single-feature check such as genomic-benchmarks-qc would see;
- a flexible model (histogram gradient boosting) that also catches
  non-monotone effects, e.g. one class being both shorter and longer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata
from sklearn.base import ClassifierMixin, clone
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from deeprules import metrics
from deeprules.contracts import ALPHABETS, Classes


@dataclass(frozen=True)
class EncodedSequences:
    """Sequences as one flat array of residue codes; code len(alphabet) = non-canonical."""

    alphabet: str
    codes: np.ndarray  # int, concatenation of all sequences
    lengths: np.ndarray  # int, one per sequence
    starts: np.ndarray  # int, offset of each sequence in `codes`

    @property
    def other(self) -> int:
        """Code of every symbol outside the canonical alphabet (N, X, B, ...)."""
        return len(self.alphabet)

    @property
    def rows(self) -> np.ndarray:
        """Sequence index of every position in `codes`."""
        return np.repeat(np.arange(len(self.lengths)), self.lengths)


def encode(sequences: list[str] | np.ndarray, sequence_type: str) -> EncodedSequences:
    """Encode uppercase sequences with a lookup table (fast for millions of residues)."""
    alphabet = ALPHABETS[sequence_type]
    lookup = np.full(256, len(alphabet), dtype=np.int64)
    for index, letter in enumerate(alphabet):
        lookup[ord(letter)] = index
    twin = {"dna": ("U", "T"), "rna": ("T", "U")}  # the same base under either name
    if sequence_type in twin:
        spelling, base = twin[sequence_type]
        lookup[ord(spelling)] = alphabet.index(base)
    sequences = [str(s) for s in sequences]
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    flat = np.frombuffer("".join(sequences).encode("ascii", errors="replace"), dtype=np.uint8)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return EncodedSequences(alphabet, lookup[flat], lengths, starts)


def residue_counts(encoded: EncodedSequences) -> np.ndarray:
    """Counts per sequence of each canonical residue plus a last column of non-canonical symbols."""
    width = encoded.other + 1
    flat = encoded.rows * width + encoded.codes
    return np.bincount(flat, minlength=len(encoded.lengths) * width).reshape(-1, width)


def composition(encoded: EncodedSequences) -> np.ndarray:
    """Fraction of each canonical residue in each sequence (amino-acid or base composition)."""
    return residue_counts(encoded)[:, :-1] / np.maximum(encoded.lengths, 1)[:, None]


def ambiguous_fraction(encoded: EncodedSequences) -> np.ndarray:
    """Fraction of non-canonical symbols (N, X, B, Z, ...) in each sequence."""
    return residue_counts(encoded)[:, -1] / np.maximum(encoded.lengths, 1)


def gc_content(encoded: EncodedSequences) -> np.ndarray:
    """G+C fraction of the canonical bases of each nucleotide sequence."""
    counts = residue_counts(encoded)[:, :-1]
    g, c = encoded.alphabet.index("G"), encoded.alphabet.index("C")
    return (counts[:, g] + counts[:, c]) / np.maximum(counts.sum(axis=1), 1)


def kmer_profile(encoded: EncodedSequences, k: int) -> np.ndarray:
    """Frequency of every canonical k-mer (overlapping) in each sequence; rows sum to 1 or 0.

    k-mers containing a non-canonical symbol are skipped.
    """
    size = encoded.other
    rows = encoded.rows
    total = len(encoded.codes)
    position = np.arange(total) - encoded.starts[rows]
    valid = position <= encoded.lengths[rows] - k
    index = np.zeros(total, dtype=np.int64)
    for offset in range(k):
        shifted = np.full(total, encoded.other)
        shifted[: total - offset] = encoded.codes[offset:]
        valid &= shifted != encoded.other
        index = index * size + np.minimum(shifted, size - 1)
    n_kmers = size**k
    counts = (
        np.bincount(rows[valid] * n_kmers + index[valid], minlength=len(encoded.lengths) * n_kmers)
        .reshape(-1, n_kmers)
        .astype(np.float32)
    )
    return counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)


def kmer_names(alphabet: str, k: int) -> list[str]:
    """Names of the columns of `kmer_profile`, in the same order."""
    names = [""]
    for _ in range(k):
        names = [name + letter for name in names for letter in alphabet]
    return names


def residues_at(encoded: EncodedSequences, position: int, from_end: bool) -> np.ndarray:
    """Residue code at a 1-based position from the start (or end); -1 if the sequence is shorter."""
    reaches = encoded.lengths >= position
    offset = encoded.starts + (encoded.lengths - position if from_end else position - 1)
    return np.where(reaches, encoded.codes[np.where(reaches, offset, 0)], -1)


def end_residues(encoded: EncodedSequences, positions: int, from_end: bool) -> np.ndarray:
    """One-hot residues at the first (or last) `positions` positions ('absent' past the end)."""
    width = encoded.other + 2  # canonical, non-canonical, absent
    blocks = []
    for position in range(1, positions + 1):
        codes = residues_at(encoded, position, from_end)
        codes = np.where(codes < 0, width - 1, codes)
        blocks.append(np.eye(width, dtype=np.float32)[codes])
    return np.hstack(blocks)


def end_residue_names(alphabet: str, positions: int, from_end: bool) -> list[str]:
    letters = [*alphabet, "other", "absent"]
    side = "last" if from_end else "first"
    return [f"{side}{p}_{letter}" for p in range(1, positions + 1) for letter in letters]


# --- scoring -----------------------------------------------------------------


def linear_model() -> ClassifierMixin:
    """Monotone score: standardised features into a logistic regression."""
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))


def flexible_model(seed: int) -> ClassifierMixin:
    """Flexible model: small gradient-boosted trees; sees thresholds, bumps and interactions."""
    return HistGradientBoostingClassifier(
        max_iter=50,
        max_bins=32,
        max_features=0.5,  # each split looks at half the features: faster, rarely worse
        max_leaf_nodes=15,
        min_samples_leaf=20,
        early_stopping=False,
        random_state=seed,
    )


@dataclass
class ShortcutScore:
    """Cross-validated AUROC of a feature set, per model, with a shuffled-label p-value."""

    auroc: dict[str, float]  # model name -> mean AUROC over folds
    fold_auroc: dict[str, list[float]]
    best_model: str
    p_value: float
    permutations: int

    @property
    def best(self) -> float:
        return self.auroc[self.best_model]


def fold_auroc(labels: np.ndarray, scores: np.ndarray, n_classes: int) -> float:
    """AUROC of held-out scores (class codes 0..C-1, one score column per class), by the
    workflow's one AUROC (deeprules.metrics): one-vs-rest macro average for more than
    two classes. Every class is present in a stratified fold."""
    names = tuple(str(code) for code in range(n_classes))
    classes = Classes(names, names[1] if n_classes == 2 else None)
    return metrics.auroc(np.asarray(labels).astype(str), scores, classes)


def _auroc_under_permutations(
    label_sets: np.ndarray, scores: np.ndarray, n_classes: int
) -> np.ndarray:
    """AUROC (macro one-vs-rest) of fixed scores for each row of `label_sets`, via rank sums.

    The null needs the AUROC of one set of scores under hundreds of label
    shuffles: rank sums give all of them in one matrix product, where
    deeprules.metrics would score each shuffle separately. `scores` has one column
    per class (probabilities); for two classes the column of class 1 is enough,
    since class 0's AUROC on 1 - p is the same.
    """
    classes = [1] if n_classes == 2 else range(n_classes)
    total = np.zeros(len(label_sets))
    for cls in classes:
        ranks = rankdata(scores[:, cls])
        positive = label_sets == cls
        n_pos = positive.sum(axis=1)
        n_neg = label_sets.shape[1] - n_pos
        rank_sum = positive @ ranks
        with np.errstate(invalid="ignore", divide="ignore"):
            auc = (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
        total += np.where((n_pos > 0) & (n_neg > 0), auc, 0.5)
    return total / len(classes)


def shortcut_auroc(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    folds: int,
    permutations: int,
    seed: int,
    models: dict[str, ClassifierMixin] | None = None,
) -> ShortcutScore:
    """Cross-validated AUROC of each model on `features`, keeping the larger, with a p-value.

    `labels` are integer class codes 0..C-1. The null shuffles the held-out
    labels of each fold against that fold's predictions: a model never sees its
    test labels, so if the features say nothing about the label every
    arrangement of them is equally likely, and the fold's p-value
    (1 + shuffles at least as good) / (1 + shuffles) is exact. The statistic is
    the larger AUROC of the models, in the data and in every shuffle, so picking
    the better model is paid for. Folds share training data, so their p-values
    are dependent; they are merged as twice their mean, which stays valid under
    any dependence (Vovk & Wang 2020, Biometrika). No refits are needed, which
    is what makes hundreds of shuffles affordable.
    """
    with threadpool_limits(limits=1):  # tree fitting stalls on busy cores when multi-threaded
        return _shortcut_auroc(features, labels, folds, permutations, seed, models)


def _shortcut_auroc(
    features: np.ndarray,
    labels: np.ndarray,
    folds: int,
    permutations: int,
    seed: int,
    models: dict[str, ClassifierMixin] | None,
) -> ShortcutScore:
    features = np.asarray(features, dtype=np.float64)
    if features.ndim == 1:
        features = features[:, None]
    models = models or {"linear": linear_model(), "flexible": flexible_model(seed)}
    n_classes = int(labels.max()) + 1
    if np.ptp(features, axis=0).max(initial=0) == 0:  # constant: no model can use it
        return ShortcutScore(
            auroc={name: 0.5 for name in models},
            fold_auroc={name: [] for name in models},
            best_model=next(iter(models)),
            p_value=1.0,
            permutations=0,
        )
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    rng = np.random.default_rng(seed)
    fold_scores: dict[str, list[float]] = {name: [] for name in models}
    fold_p_values = []
    for train, test in splitter.split(features, labels):
        shuffled = np.array([rng.permutation(labels[test]) for _ in range(permutations)])
        observed, null = [], []
        for name, model in models.items():
            fitted = clone(model).fit(features[train], labels[train])
            probabilities = fitted.predict_proba(features[test])
            fold_scores[name].append(fold_auroc(labels[test], probabilities, n_classes))
            observed.append(fold_scores[name][-1])
            null.append(_auroc_under_permutations(shuffled, probabilities, n_classes))
        exceed = int(np.sum(np.max(null, axis=0) >= max(observed) - 1e-12))
        fold_p_values.append((1 + exceed) / (1 + permutations))
    auroc = {name: float(np.mean(values)) for name, values in fold_scores.items()}
    return ShortcutScore(
        auroc=auroc,
        fold_auroc=fold_scores,
        best_model=max(auroc, key=auroc.get),
        p_value=min(1.0, 2 * float(np.mean(fold_p_values))),
        permutations=permutations,
    )
