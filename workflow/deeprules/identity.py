"""The highest identity any optimal-scoring local alignment of a pair reaches.

MMseqs2 reports one alignment per pair. When several local alignments share the
optimal score their identical residues can differ: on amp,
MKRTYQPSKIRRARTHGFLVRMKTRGGRAVINARRAKGRKRLAV and LIQRGRFGRFLGRIRRFRPRINFDIRARGSIRLG
score 28 with 12 identities in the alignment MMseqs2 reports (0.27 over the longer
sequence) and with 15 in another (0.34), so whether that pair "leaks" at 0.3
depended on tie-breaking. The split's definition is therefore conservative: a
pair counts when ANY optimal-scoring alignment reaches the threshold.

Exact, not sampled: a Smith-Waterman dynamic programme in which every score is the
pair (alignment score, identical residues), compared lexicographically. Both parts
add up along an alignment, so the lexicographic maximum obeys the ordinary
recurrence, and it equals the ordinary maximum of the combined score
score * K + identities for any K above the largest possible identity count. That
lets parasail's striped (SIMD) Smith-Waterman run it in C: substitution matrix
BLOSUM62 * K plus 1 on the diagonal (identity), gap open 11 K, extension 1 K (a
gap of length L costs 11 + (L - 1), MMseqs2's convention; MMseqs2's reported
alignment of the pair above scores 28 under it). parasail scores a short peptide
pair about five times faster than Biopython's PairwiseAligner with the same
answer (docs/benchmarks.md, split); tests/test_identity.py checks it against
a dynamic programme written out cell by cell. Nucleotides: +2 / -3 (X -1),
gaps 5 / 2 (blastn's; a gap of length L costs 5 + 2 (L - 1)), both strands,
on the letters the exhaustive MMseqs2 search stores them as (amino-acid letters, so
IUPAC codes such as R, Y, N keep their identity). Letters MMseqs2 does not know
are X, as MMseqs2 reads them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np
import pandas as pd
import parasail
from Bio.Align import PairwiseAligner, substitution_matrices
from Bio.Align.substitution_matrices import Array

# MMseqs2's amino-acid alphabet (X = anything else; nucleotides are stored in it too)
# and the scoring the split declares.
AMINO_ACIDS = "ARNDCQEGHILKMFPSTWYVX"
GAP_OPEN, GAP_EXTEND = 11, 1
# Nucleotides: blastn's scoring, +2 / -3 with gaps 5 / 2 (MMseqs2 rescales a custom
# matrix internally, so its nucleotide alignments have no fixed scoring to reproduce).
NUCLEOTIDE_GAP_OPEN, NUCLEOTIDE_GAP_EXTEND = 5, 2
COMPLEMENT = str.maketrans("ACGTRYKMBVDH", "TGCAYRMKVBHD")  # IUPAC, as deeprules.mmseqs
UNKNOWN = re.compile(f"[^{AMINO_ACIDS}]")
# Pairs per task when several processes score them.
CHUNK = 20000


def co_optimal_identities(
    first: list[str], second: list[str], nucleotide: bool, workers: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Optimal local score of each pair and the most identical residues among the
    alignments reaching it (nucleotides: the better strand, lexicographically).
    `workers` processes share the pairs (the per-pair Python loop holds the interpreter lock)."""
    first, second = _upper(first, nucleotide), _upper(second, nucleotide)
    longest = max((len(s) for s in first + second), default=0)
    scale = longest + 1  # identities never reach it, so score and identities separate
    if workers > 1 and len(first) >= 2 * CHUNK:
        chunks = [
            (first[k : k + CHUNK], second[k : k + CHUNK], nucleotide, scale)
            for k in range(0, len(first), CHUNK)
        ]
        with ProcessPoolExecutor(workers, mp_context=get_context("fork")) as pool:
            combined = np.concatenate(list(pool.map(_combined_scores, *zip(*chunks, strict=True))))
    else:
        combined = _combined_scores(first, second, nucleotide, scale)
    return combined // scale, combined % scale


def _combined_scores(
    first: list[str], second: list[str], nucleotide: bool, scale: int
) -> np.ndarray:
    """score * scale + identities of the lexicographically best local alignment."""
    score = _scorer(nucleotide, scale, max((len(s) for s in first + second), default=0))
    combined = np.zeros(len(first), dtype=np.int64)
    for k, (a, b) in enumerate(zip(first, second, strict=True)):
        a = UNKNOWN.sub("X", a)
        combined[k] = score(a, UNKNOWN.sub("X", b))
        if nucleotide:
            reverse = UNKNOWN.sub("X", b[::-1].translate(COMPLEMENT))
            combined[k] = max(combined[k], score(a, reverse))
    return combined


def _scorer(nucleotide: bool, scale: int, longest: int) -> Callable[[str, str], int]:
    """The combined local score of two sequences: parasail's 32-bit striped
    Smith-Waterman, unless the largest possible combined score (BLOSUM62 tops at 11)
    could pass 2**31 (about 14,000 residues; parasail reports a 32-bit score whatever
    its lanes), then Biopython's aligner (float64, exact for integers below 2**53)."""
    base = _substitutions(nucleotide)
    gap_open, gap_extend = (
        (NUCLEOTIDE_GAP_OPEN, NUCLEOTIDE_GAP_EXTEND) if nucleotide else (GAP_OPEN, GAP_EXTEND)
    )
    if longest * (11 * scale + 1) >= 2**31:
        aligner = PairwiseAligner(
            mode="local",
            substitution_matrix=Array(
                AMINO_ACIDS, dims=2, data=np.array(base) * scale + np.eye(len(AMINO_ACIDS))
            ),
            open_gap_score=-gap_open * scale,
            extend_gap_score=-gap_extend * scale,
        )
        return lambda a, b: round(aligner.score(a, b))
    matrix = parasail.matrix_create(AMINO_ACIDS, 0, 0)
    for i, row in enumerate(base):
        for j, value in enumerate(row):
            matrix.set_value(i, j, value * scale + (i == j))
    return lambda a, b: (
        parasail.sw_striped_32(a, b, gap_open * scale, gap_extend * scale, matrix).score
    )


def _substitutions(nucleotide: bool) -> list[list[int]]:
    """Substitution scores over MMseqs2's letters: BLOSUM62, or for nucleotides
    deeprules.mmseqs' +2 / -3 (X -1) matrix over amino-acid letters."""
    if nucleotide:
        return [
            [-1 if "X" in (a, b) else 2 if a == b else -3 for b in AMINO_ACIDS] for a in AMINO_ACIDS
        ]
    blosum = substitution_matrices.load("BLOSUM62")
    return [[int(blosum[a][b]) for b in AMINO_ACIDS] for a in AMINO_ACIDS]


def _upper(sequences: list[str], nucleotide: bool) -> list[str]:
    """Upper case, and U as T for nucleotides (as deeprules.mmseqs reads them)."""
    return [s.upper().replace("U", "T") if nucleotide else s.upper() for s in sequences]


def raise_to_co_optimal(
    pairs: pd.DataFrame,
    table: pd.DataFrame,
    realign_from: float,
    denominator: str,
    nucleotide: bool,
) -> pd.DataFrame:
    """Pairs (query, target, identity) with the identity of every pair at or above
    `realign_from` raised to the highest identity of any optimal-scoring alignment
    (identities / the shorter or longer sequence). Never lowered: a pair counts when
    MMseqs2's alignment or any optimal one reaches the threshold."""
    pairs = pairs.copy()
    rows = np.flatnonzero(pairs["identity"].to_numpy() >= realign_from - 1e-12)
    if not len(rows):
        return pairs
    sequence = table.assign(id=table["id"].astype(str)).set_index("id")["sequence"]
    first = sequence.loc[pairs["query"].iloc[rows]].tolist()
    second = sequence.loc[pairs["target"].iloc[rows]].tolist()
    _, identities = co_optimal_identities(first, second, nucleotide)
    lengths = np.array([[len(a), len(b)] for a, b in zip(first, second, strict=True)])
    length = lengths.max(axis=1) if denominator == "longer" else lengths.min(axis=1)
    column = pairs.columns.get_loc("identity")
    pairs.iloc[rows, column] = np.maximum(pairs["identity"].to_numpy()[rows], identities / length)
    return pairs
