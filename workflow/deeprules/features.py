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
from sklearn.feature_extraction.text import CountVectorizer
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


class KmerFrequencies(TransformerMixin, BaseEstimator):
    """Relative frequency of every k-mer, one block of columns per k.

    Each block sums to 1 per sequence, so long and short sequences are
    comparable and length itself is not smuggled in through raw counts. The
    vocabulary is the k-mers seen in the training sequences.
    """

    def __init__(self, sizes: Sequence[int] = (1, 2)):
        self.sizes = sizes

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
        self.vectorizers_ = [
            CountVectorizer(
                analyzer="char", ngram_range=(k, k), lowercase=False, dtype=np.float64
            ).fit(list(sequences))
            for k in self.sizes
        ]
        return self

    def transform(self, sequences) -> sp.csr_matrix:
        sequences = list(sequences)
        blocks = [normalize(v.transform(sequences), norm="l1") for v in self.vectorizers_]
        return sp.hstack(blocks, format="csr")

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return np.array(
            [f"kmer_{kmer}" for v in self.vectorizers_ for kmer in v.get_feature_names_out()],
            dtype=object,
        )


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
    CSR matrix when it is wide.
    """

    def __init__(
        self,
        kmer_sizes: Sequence[int] = (1, 2),
        descriptors: bool = False,
        global_descriptors: bool = True,
        scales: Sequence[str] = ("eisenberg",),
    ):
        self.kmer_sizes = kmer_sizes
        self.descriptors = descriptors
        self.global_descriptors = global_descriptors
        self.scales = scales

    def fit(self, sequences, y=None):
        self.kmers_ = KmerFrequencies(self.kmer_sizes).fit(sequences)
        self.descriptors_ = (
            PhysicochemicalDescriptors(self.global_descriptors, self.scales)
            if self.descriptors
            else None
        )
        return self

    def transform(self, sequences):
        sequences = list(sequences)
        blocks = [self.kmers_.transform(sequences)]
        if self.descriptors_ is not None:
            blocks.append(sp.csr_matrix(self.descriptors_.transform(sequences)))
        table = sp.hstack(blocks, format="csr")
        return table.toarray() if table.shape[1] <= DENSE_UP_TO_COLUMNS else table

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
