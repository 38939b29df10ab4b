"""Turn sequences into the numeric features traditional models read.

Tip 1: a baseline is only a fair bar if it sees what a biologist would give it —
k-mer composition for any sequence and, for peptides and proteins, the
physico-chemical descriptors the field has used for decades. Every transformer
here is an sklearn transformer so it sits inside the model pipeline and learns
(its k-mer vocabulary) from training sequences only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from modlamp.descriptors import GlobalDescriptor, PeptideDescriptor
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import CountVectorizer, HashingVectorizer
from sklearn.preprocessing import OneHotEncoder, normalize

from deeprules.io import InputError

# modlAMP knows only the 20 standard amino acids; ambiguity codes (B, Z, X, J)
# and the rare U and O are left out of descriptor calculations.
STANDARD_AMINO_ACIDS = frozenset("ACDEFGHIKLMNPQRSTVWY")
GLOBAL_DESCRIPTOR_NAMES = (
    "length",
    "molecular_weight",
    "charge",
    "charge_density",
    "isoelectric_point",
    "instability_index",
    "aromaticity",
    "aliphatic_index",
    "boman_index",
    "hydrophobic_ratio",
)
# Above this many columns the k-mer table stays sparse: 4^6 nucleotide 6-mers
# alone are 4,096 columns, mostly zero for short sequences.
DENSE_UP_TO_COLUMNS = 2048
# A narrower table is also kept sparse on a large training set when fewer than this
# share of its cells (measured on the first DENSITY_SAMPLE training sequences) are
# non-zero: 400 protein 2-mer columns of 25-residue peptides are 94% zeros.
DENSE_MIN_SHARE = 0.5
DENSITY_SAMPLE = 1000


class KmerFrequencies(TransformerMixin, BaseEstimator):
    """Relative frequency of every k-mer, one block of columns per k.

    Each block sums to 1 per sequence, so long and short sequences are
    comparable and length itself is not smuggled in through raw counts. The
    vocabulary is the k-mers seen in the training sequences.

    A k with more possible k-mers (alphabet_size^k) than `max_columns` is hashed
    into `max_columns` columns instead (feature hashing, no vocabulary held in
    memory); `hashing_` states, per hashed k, the share of the training k-mers
    that share their column with another one.
    """

    def __init__(
        self,
        sizes: Sequence[int] = (1, 2),
        max_columns: int | None = None,
        alphabet_size: int | None = None,
    ):
        self.sizes = sizes
        self.max_columns = max_columns
        self.alphabet_size = alphabet_size

    def hashed(self, k: int) -> bool:
        """Whether k's block is hashed: more possible k-mers than `max_columns`."""
        if self.max_columns is None or self.alphabet_size is None:
            return False
        return self.alphabet_size**k > self.max_columns

    def fit(self, sequences, y=None):
        sequences = list(sequences)
        longest = max(map(len, sequences), default=0)
        too_long = [k for k in self.sizes if k > longest]
        if too_long:
            raise InputError(
                f"k-mer size(s) {too_long}: the longest training sequence has {longest} "
                "residue(s), so no such k-mer can be counted. Remove them from "
                "baselines.kmer_sizes in config/config.yaml, or use longer sequences."
            )
        self.vectorizers_ = [self._vectorizer(k, sequences) for k in self.sizes]
        self.hashing_ = [
            collision_rate(k, sequences, vectorizer)
            for k, vectorizer in zip(self.sizes, self.vectorizers_, strict=True)
            if self.hashed(k)
        ]
        return self

    def _vectorizer(self, k: int, sequences: list[str]):
        options = {"analyzer": "char", "ngram_range": (k, k), "lowercase": False}
        if not self.hashed(k):
            return CountVectorizer(**options, dtype=np.float64).fit(sequences)
        return HashingVectorizer(
            **options, n_features=self.max_columns, alternate_sign=False, norm=None
        )

    def transform(self, sequences) -> sp.csr_matrix:
        sequences = list(sequences)
        blocks = [normalize(v.transform(sequences), norm="l1") for v in self.vectorizers_]
        return sp.hstack(blocks, format="csr")

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        names = []
        for k, vectorizer in zip(self.sizes, self.vectorizers_, strict=True):
            if isinstance(vectorizer, HashingVectorizer):
                names += [f"kmer{k}_hash_{column}" for column in range(vectorizer.n_features)]
            else:
                names += [f"kmer_{kmer}" for kmer in vectorizer.get_feature_names_out()]
        return np.array(names, dtype=object)


def collision_rate(k: int, sequences: list[str], hasher: HashingVectorizer) -> dict[str, float]:
    """How much hashing k-mers into `hasher.n_features` columns merges, on train: the
    distinct training k-mers, the share of them that share a column with another one, and
    the share expected for that many k-mers hashed uniformly, 1 - (1 - 1/columns)^(n - 1)."""
    distinct: set[str] = set()
    for sequence in sequences:
        distinct.update(sequence[i : i + k] for i in range(len(sequence) - k + 1))
    columns = hasher.n_features
    buckets = hasher.transform(sorted(distinct)).indices  # one k-mer per row: its column
    per_column = np.bincount(buckets, minlength=columns)
    colliding = int(per_column[per_column > 1].sum())
    count = len(distinct)
    return {
        "k": k,
        "columns": columns,
        "distinct_kmers_in_train": count,
        "colliding_share": colliding / count if count else 0.0,
        "expected_colliding_share": 1 - (1 - 1 / columns) ** max(count - 1, 0),
    }


class PhysicochemicalDescriptors(TransformerMixin, BaseEstimator):
    """modlAMP's global peptide descriptors and hydrophobicity-scale summaries.

    Global descriptors: length, molecular weight, net charge at pH 7, charge
    density, isoelectric point, instability, aromaticity, aliphatic and Boman
    indices, hydrophobic ratio. For each scale (e.g. 'eisenberg'): the mean
    value and the hydrophobic moment. Nothing is learnt from data.
    """

    def __init__(self, global_descriptors: bool = True, scales: Sequence[str] = ("eisenberg",)):
        self.global_descriptors = global_descriptors
        self.scales = scales

    def fit(self, sequences, y=None):
        return self

    def transform(self, sequences) -> np.ndarray:
        cleaned = ["".join(c for c in s if c in STANDARD_AMINO_ACIDS) for s in sequences]
        present = [i for i, s in enumerate(cleaned) if s]
        values = np.zeros((len(cleaned), len(self.get_feature_names_out())))
        if present:
            values[present] = self._describe([cleaned[i] for i in present])
        return values

    def _describe(self, sequences: list[str]) -> np.ndarray:
        columns = []
        if self.global_descriptors:
            described = GlobalDescriptor(sequences)
            described.calculate_all()
            columns.append(described.descriptor)
        for scale in self.scales:
            described = PeptideDescriptor(sequences, scale)
            described.calculate_global()
            described.calculate_moment(append=True)
            columns.append(described.descriptor)
        return np.hstack(columns).astype(float)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        names = list(GLOBAL_DESCRIPTOR_NAMES) if self.global_descriptors else []
        for scale in self.scales:
            names += [f"{scale}_mean", f"{scale}_moment"]
        return np.array(names, dtype=object)


class SequenceFeatures(TransformerMixin, BaseEstimator):
    """k-mer frequencies, plus physico-chemical descriptors for proteins.

    Returns a dense array when the table is small (faster for every model) and a
    CSR matrix when it is wide, or when it is mostly zero and fitted on more than
    `sparse_above_sequences` training sequences (so a large set's table is never
    held dense). The choice is made once, at fit, so every partition gets the same.
    `max_kmer_columns` and `alphabet_size`: see KmerFrequencies (hashing).
    """

    def __init__(
        self,
        kmer_sizes: Sequence[int] = (1, 2),
        descriptors: bool = False,
        global_descriptors: bool = True,
        scales: Sequence[str] = ("eisenberg",),
        max_kmer_columns: int | None = None,
        sparse_above_sequences: int | None = None,
        alphabet_size: int | None = None,
    ):
        self.kmer_sizes = kmer_sizes
        self.descriptors = descriptors
        self.global_descriptors = global_descriptors
        self.scales = scales
        self.max_kmer_columns = max_kmer_columns
        self.sparse_above_sequences = sparse_above_sequences
        self.alphabet_size = alphabet_size

    def fit(self, sequences, y=None):
        sequences = list(sequences)
        self.kmers_ = KmerFrequencies(
            self.kmer_sizes, self.max_kmer_columns, self.alphabet_size
        ).fit(sequences)
        self.descriptors_ = (
            PhysicochemicalDescriptors(self.global_descriptors, self.scales)
            if self.descriptors
            else None
        )
        self.dense_ = self._dense(sequences)
        return self

    def _dense(self, sequences: list[str]) -> bool:
        """Dense up to DENSE_UP_TO_COLUMNS columns, unless the training set is large and
        the table mostly zero."""
        if len(self.get_feature_names_out()) > DENSE_UP_TO_COLUMNS:
            return False
        large = self.sparse_above_sequences is not None
        if not large or len(sequences) <= self.sparse_above_sequences:
            return True
        sample = self._table(sequences[:DENSITY_SAMPLE])
        return sample.nnz >= DENSE_MIN_SHARE * sample.shape[0] * sample.shape[1]

    def _table(self, sequences: list[str]) -> sp.csr_matrix:
        blocks = [self.kmers_.transform(sequences)]
        if self.descriptors_ is not None:
            blocks.append(sp.csr_matrix(self.descriptors_.transform(sequences)))
        return sp.hstack(blocks, format="csr")

    def transform(self, sequences):
        table = self._table(list(sequences))
        return table.toarray() if self.dense_ else table

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        names = [self.kmers_.get_feature_names_out()]
        if self.descriptors_ is not None:
            names.append(self.descriptors_.get_feature_names_out())
        return np.concatenate(names)


class ShortcutFeatures(TransformerMixin, BaseEstimator):
    """Features no biologist would accept as the explanation: length, composition, end residues.

    A model that does well on these alone is exploiting a shortcut (Tip 7):
    sequence length, single-letter composition, and which letter the sequence
    starts and ends with (one-hot over the letters seen in training).
    """

    def fit(self, sequences, y=None):
        sequences = list(sequences)
        self.composition_ = KmerFrequencies((1,)).fit(sequences)
        self.ends_ = OneHotEncoder(handle_unknown="ignore").fit(_end_letters(sequences))
        return self

    def transform(self, sequences) -> np.ndarray:
        sequences = list(sequences)
        length = np.array([[len(s)] for s in sequences], dtype=float)
        composition = self.composition_.transform(sequences).toarray()
        ends = self.ends_.transform(_end_letters(sequences)).toarray()
        return np.hstack([length, composition, ends])

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        composition = [
            f"fraction_{n.removeprefix('kmer_')}" for n in self.composition_.get_feature_names_out()
        ]
        ends = self.ends_.get_feature_names_out(["first", "last"])
        return np.array(["length", *composition, *ends], dtype=object)


def _end_letters(sequences: list[str]) -> np.ndarray:
    return np.array([[s[:1], s[-1:]] for s in sequences], dtype=object)
