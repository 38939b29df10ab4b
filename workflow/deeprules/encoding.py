"""One-hot encoding of DNA, RNA and protein sequences for the CNN.

Sequences are stored as small integer tokens (one byte per position) and turned
into one-hot rows by a lookup table inside the input pipeline, so a million
1 kb sequences cost 1 GB rather than 16 GB of float32.

Rows of the lookup table:

- a standard letter is a one-hot row (A -> [1, 0, 0, 0]);
- an IUPAC ambiguity code spreads its weight over the letters it stands for
  (R = A or G -> [0.5, 0, 0.5, 0]; N and protein X -> uniform);
- any other letter the curate stage let through (U and O in proteins, '*') is
  a uniform row: complete uncertainty, but still a position of the sequence;
- padding is the only all-zero row.

Because only padding is all-zero, the model can tell padding from sequence
exactly, which is what lets the CNN mask it (`deeprules.cnn.model.PaddingMask`).
Sequences are left-aligned and padded at the end; longer sequences keep their
first `length` letters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from deeprules.contracts import ALPHABETS

_NUCLEOTIDE_CODES = {
    "R": "AG",
    "Y": "CT",
    "S": "CG",
    "W": "AT",
    "K": "GT",
    "M": "AC",
    "B": "CGT",
    "D": "AGT",
    "H": "ACT",
    "V": "ACG",
    "N": "ACGT",
}
AMBIGUITY_CODES = {
    "dna": _NUCLEOTIDE_CODES,
    "rna": {code: letters.replace("T", "U") for code, letters in _NUCLEOTIDE_CODES.items()},
    "protein": {"B": "DN", "Z": "EQ", "J": "IL", "X": "ACDEFGHIKLMNPQRSTVWY"},
}
PAD_TOKEN = 0


def _symbols(sequence_type: str) -> tuple[str, dict[str, str]]:
    if sequence_type not in ALPHABETS:
        raise ValueError(
            f"unknown sequence_type {sequence_type!r}; expected one of {list(ALPHABETS)}"
        )
    return ALPHABETS[sequence_type], AMBIGUITY_CODES[sequence_type]


def token_table(sequence_type: str) -> np.ndarray:
    """Rows of one-hot weights, indexed by token: padding, letters, codes, other.

    Token 0 is padding (all zero); the last token is "any other letter"
    (uniform). Shape (tokens, alphabet size), float32.
    """
    alphabet, codes = _symbols(sequence_type)
    rows = [np.zeros(len(alphabet))]
    rows += [np.eye(len(alphabet))[index] for index in range(len(alphabet))]
    for letters in codes.values():
        rows.append(np.array([letter in letters for letter in alphabet]) / len(letters))
    rows.append(np.full(len(alphabet), 1 / len(alphabet)))
    return np.asarray(rows, dtype=np.float32)


def _lookup(sequence_type: str) -> np.ndarray:
    """Byte value -> token; unknown bytes get the "any other letter" token."""
    alphabet, codes = _symbols(sequence_type)
    other = 1 + len(alphabet) + len(codes)
    lookup = np.full(256, other, dtype=np.uint8)
    for token, letter in enumerate([*alphabet, *codes], start=1):
        lookup[ord(letter)] = token
        lookup[ord(letter.lower())] = token
    return lookup


def tokenize(sequences: Sequence[str], sequence_type: str, length: int) -> np.ndarray:
    """Integer tokens, shape (n, length), uint8: left-aligned, end-padded, truncated."""
    lookup = _lookup(sequence_type)
    tokens = np.full((len(sequences), length), PAD_TOKEN, dtype=np.uint8)
    for row, sequence in enumerate(sequences):
        codes = np.frombuffer(sequence[:length].encode("ascii", "replace"), dtype=np.uint8)
        tokens[row, : len(codes)] = lookup[codes]
    return tokens


def one_hot(sequences: Sequence[str], sequence_type: str, length: int) -> np.ndarray:
    """One-hot array (n, length, alphabet size), float32: what the saved model reads.

    For attribution methods and for predicting with model.keras outside the
    workflow; training uses `tokenize` plus the table inside tf.data instead.
    """
    return token_table(sequence_type)[tokenize(sequences, sequence_type, length)]


def choose_length(lengths: Sequence[int], max_length: int | None, quantile: float) -> int:
    """Input length of the network: `max_length` if set, else a quantile of training lengths.

    The quantile (1.0 = the longest training sequence) is taken on the
    training partition only, so the tune partition does not shape the model.
    """
    if max_length is not None:
        return int(max_length)
    return max(1, math.ceil(float(np.quantile(np.asarray(lengths), quantile))))
