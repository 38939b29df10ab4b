"""Turning MMseqs2's alignment fields (or exactly scored pairs) into the pair table
`similar_pairs` returns, plus the letters and scoring matrix MMseqs2 is given."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from deeprules.mmseqs.constants import MMSEQS_AMINO_ACIDS, PAIR_COLUMNS


def _identical_columns(query_aligned: pd.Series, target_aligned: pd.Series) -> np.ndarray:
    """Identical residues in each alignment: columns where both rows show the same letter."""
    lengths = query_aligned.str.len().to_numpy()
    query = np.frombuffer("".join(query_aligned).upper().encode(), dtype=np.uint8)
    target = np.frombuffer("".join(target_aligned).upper().encode(), dtype=np.uint8)
    same = (query == target) & (query != ord("-"))
    starts = np.r_[0, np.cumsum(lengths)[:-1]]
    return np.add.reduceat(same.astype(np.int64), starts) if len(same) else np.zeros(0, np.int64)


def _mmseqs_letters(sequences: list[str], nucleotide: bool) -> list[str]:
    """The sequences as MMseqs2 compares them: every letter outside its alphabet is the
    unknown X (which our identity count treats as identical to X), so a bound computed
    on these strings holds for MMseqs2's alignments."""
    alphabet = "ACGT" if nucleotide else MMSEQS_AMINO_ACIDS
    unknown = re.compile(f"[^{alphabet}]")
    return [unknown.sub("X", s) for s in sequences]


def _nucleotide_matrix() -> str:
    """A BLAST-format matrix over MMseqs2's amino-acid letters that scores nucleotides
    like blastn: identical letters +2, different letters -3 (X, the unknown, -1).
    MMseqs2 needs an invertible matrix, hence a positive diagonal for every letter."""
    header = "   " + "  ".join(MMSEQS_AMINO_ACIDS)
    rows = [
        a
        + " "
        + " ".join(f"{-1 if 'X' in (a, b) else 2 if a == b else -3:2d}" for b in MMSEQS_AMINO_ACIDS)
        for a in MMSEQS_AMINO_ACIDS
    ]
    return (
        "\n".join(["# nucleotide scores for sequences stored as amino-acid letters", header, *rows])
        + "\n"
    )


def _pairs_at_or_above(
    hits: pd.DataFrame,
    table: pd.DataFrame,
    min_identity: float,
    denominator: str,
    min_coverage: float,
) -> pd.DataFrame:
    """Exact identity and coverage from the alignment fields; keep pairs at or above."""
    if hits.empty:
        return pd.DataFrame(columns=PAIR_COLUMNS)
    length = {
        "shorter": np.minimum(hits["qlen"], hits["tlen"]),
        "longer": np.maximum(hits["qlen"], hits["tlen"]),
        "alignment": hits["alnlen"],
    }[denominator]
    identity = hits["nident"] / length
    query_cover = (hits["qend"] - hits["qstart"]).abs().add(1) / hits["qlen"]
    target_cover = (hits["tend"] - hits["tstart"]).abs().add(1) / hits["tlen"]
    keep = (identity >= min_identity - 1e-12) & (
        np.minimum(query_cover, target_cover) >= min_coverage - 1e-12
    )
    ids = table["id"].astype(str).to_numpy()
    first, second = ids[hits["query"].to_numpy()], ids[hits["target"].to_numpy()]
    pairs = pd.DataFrame(
        {
            "query": np.where(first < second, first, second),
            "target": np.where(first < second, second, first),
            "identity": identity.to_numpy(),
        }
    )[keep.to_numpy()]
    pairs = pairs[pairs["query"] != pairs["target"]]
    pairs = pairs.groupby(["query", "target"], as_index=False, sort=True)["identity"].max()
    return pairs.reset_index(drop=True)


def _scored_pairs(
    scored: pd.DataFrame, table: pd.DataFrame, min_identity: float, denominator: str
) -> pd.DataFrame:
    """Exactly scored candidate pairs (rows query, target, nident) at or above the
    threshold, as `similar_pairs` returns them."""
    lengths = table["sequence"].str.len().to_numpy()
    a, b = lengths[scored["query"].to_numpy(int)], lengths[scored["target"].to_numpy(int)]
    length = np.maximum(a, b) if denominator == "longer" else np.minimum(a, b)
    identity = scored["nident"].to_numpy(float) / np.maximum(length, 1)
    keep = identity >= min_identity - 1e-12
    ids = table["id"].astype(str).to_numpy()
    first, second = ids[scored["query"].to_numpy(int)], ids[scored["target"].to_numpy(int)]
    pairs = pd.DataFrame(
        {
            "query": np.where(first < second, first, second),
            "target": np.where(first < second, second, first),
            "identity": identity,
        }
    )[keep]
    return pairs.sort_values(["query", "target"]).reset_index(drop=True)
