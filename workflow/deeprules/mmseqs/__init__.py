"""Pairwise sequence identity with MMseqs2, for every stage that asks "how similar?".

Tip 7: homologous sequences on both sides of a split inflate test scores. To
promise that no pair at or above an identity threshold crosses a split we need
*every* such pair, so the default search here cannot miss one: instead of
MMseqs2's k-mer prefilter (which, even with --exhaustive-search, skips many
short-peptide pairs) we hand `mmseqs align` a generated prefilter result that
lists every candidate pair, the trick GraphPart uses. Candidates are only
skipped when a proof says they cannot reach the threshold: the identical
columns of any alignment form a common subsequence, so a pair whose longest
common subsequence (bit-parallel, RapidFuzz) is too short is skipped (see
`_Search._candidates`, in mmseqs.candidates). With `co_optimal`, the candidates
are scored exactly instead (deeprules.identity: the highest identity of any optimal-scoring
alignment, since MMseqs2 reports one alignment and ties between equally good
ones decide whether a pair reaches the threshold); otherwise alignment is MMseqs2's.

Identity of a pair = identical aligned residues / denominator, where the
denominator is the shorter sequence, the longer sequence or the alignment
length. A pair counts when its identity is AT OR ABOVE `min_identity` and the
alignment covers at least `min_coverage` of both sequences.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from deeprules.identity import raise_to_co_optimal
from deeprules.io import InputError
from deeprules.mmseqs.binary import find_mmseqs, mmseqs_version
from deeprules.mmseqs.candidates import MeasuredPairs
from deeprules.mmseqs.constants import (
    ALIGNMENT_FIELDS,
    CANDIDATE_BLOCK,
    CO_OPTIMAL_MARGIN,
    COMPLEMENT,
    DENOMINATORS,
    MMSEQS_AMINO_ACIDS,
    NUCLEOTIDE_KMER_LENGTH,
    NUCLEOTIDE_TYPES,
    PAIR_COLUMNS,
    PREFILTER_MAX_SEQS,
    PREFILTER_SENSITIVITY,
    SEQ_ID_MODE,
    SEQUENCE_TYPES,
    SLACK,
)
from deeprules.mmseqs.search import _Search
from deeprules.mmseqs.tables import _pairs_at_or_above, _scored_pairs

__all__ = [
    "ALIGNMENT_FIELDS",
    "CANDIDATE_BLOCK",
    "COMPLEMENT",
    "CO_OPTIMAL_MARGIN",
    "DENOMINATORS",
    "MMSEQS_AMINO_ACIDS",
    "NUCLEOTIDE_KMER_LENGTH",
    "NUCLEOTIDE_TYPES",
    "PAIR_COLUMNS",
    "PREFILTER_MAX_SEQS",
    "PREFILTER_SENSITIVITY",
    "SEQUENCE_TYPES",
    "SEQ_ID_MODE",
    "SLACK",
    "MeasuredPairs",
    "cluster_ids",
    "find_mmseqs",
    "mmseqs_version",
    "similar_pairs",
]


def similar_pairs(
    table: pd.DataFrame,
    sequence_type: str,
    min_identity: float,
    denominator: str = "longer",
    min_coverage: float = 0.0,
    workdir: Path | None = None,
    threads: int = 1,
    exhaustive: bool = True,
    between: str | None = None,
    co_optimal: bool = False,
    keep_measured: MeasuredPairs | None = None,
    measured: MeasuredPairs | None = None,
) -> pd.DataFrame:
    """Every pair of sequences whose identity is at or above `min_identity`.

    table: columns `id` (unique) and `sequence`; `sequence_type`: protein, dna,
    rna (nucleotides are compared on both strands). `denominator`: shorter |
    longer | alignment. `min_coverage`: fraction of each sequence the alignment
    must cover (0 = no requirement). `exhaustive=True` aligns every pair that
    could reach the threshold and so cannot miss one (use up to ~20,000
    sequences); False uses MMseqs2's most sensitive prefilter (-s 7.5; -k 13 for
    nucleotides), which scales to millions but may miss pairs at or above the threshold
    (1.7 % of planted protein pairs near it, 0.1 % of DNA pairs:
    bench/prefilter_sensitivity.py). `between`: name of a column
    of `table`; if given, only pairs whose values in it differ are searched
    (e.g. partition, to count leakage). `workdir`: scratch folder (a temporary
    one if None). `co_optimal`: a pair's identity is the highest of any
    optimal-scoring local alignment (deeprules.identity), not that of the one
    alignment MMseqs2 reports, so ties cannot hide a pair: exhaustive searches
    score every candidate pair exactly; prefilter searches re-align the pairs
    MMseqs2 reports from CO_OPTIMAL_MARGIN below the threshold. Only for the
    shorter / longer denominators without a coverage requirement (the others
    depend on the alignment's extent and keep MMseqs2's alignment).
    `keep_measured` / `measured` (exhaustive co-optimal searches only): fill the record
    with the pairs whose common subsequence reaches its floor, or take this search's
    candidates from a record that covers its ids and identity (MeasuredPairs); a
    record that does not cover the search is not used, and the search measures.

    Returns columns query, target, identity: each unordered pair once with
    query < target (as text), identity in [0, 1], sorted by query and target.
    """
    _check_arguments(table, sequence_type, min_identity, denominator, min_coverage, between)
    if len(table) < 2:
        return pd.DataFrame(columns=PAIR_COLUMNS)
    groups = None if between is None else table[between].astype(str).to_numpy()
    co_optimal = co_optimal and denominator != "alignment" and min_coverage == 0
    floor = max(min_identity - CO_OPTIMAL_MARGIN, SLACK) if co_optimal else min_identity
    with tempfile.TemporaryDirectory(dir=workdir, prefix="mmseqs-") as scratch:
        search = _Search(
            table, sequence_type, min_identity, denominator, min_coverage, scratch, threads, groups
        )
        if co_optimal and exhaustive:
            search.keep_measured = keep_measured
            if measured is not None and measured.covers(
                search.ids, min_identity, denominator, min_coverage
            ):
                search.measured = measured
            return _scored_pairs(search.co_optimal(), table, min_identity, denominator)
        search.report_from = floor
        hits = search.exhaustive() if exhaustive else search.prefiltered()
    pairs = _pairs_at_or_above(hits, table, floor, denominator, min_coverage)
    if co_optimal:
        nucleotide = sequence_type in NUCLEOTIDE_TYPES
        pairs = raise_to_co_optimal(pairs, table, floor, denominator, nucleotide)
        pairs = pairs[pairs["identity"] >= min_identity - 1e-12].reset_index(drop=True)
    return pairs


def _check_arguments(
    table: pd.DataFrame,
    sequence_type: str,
    min_identity: float,
    denominator: str,
    min_coverage: float,
    between: str | None,
) -> None:
    for column in ("id", "sequence", *([between] if between else [])):
        if column not in table.columns:
            raise InputError(f"similar_pairs: table has no column '{column}'")
    if table["id"].duplicated().any():
        repeated = table.loc[table["id"].duplicated(), "id"].head(3).tolist()
        raise InputError(f"similar_pairs: ids must be unique, repeated: {repeated}")
    if sequence_type not in SEQUENCE_TYPES:
        raise InputError(f"sequence_type must be one of {SEQUENCE_TYPES}, got '{sequence_type}'")
    if not 0 < min_identity <= 1:
        raise InputError(f"identity threshold must be in (0, 1], got {min_identity}")
    if denominator not in DENOMINATORS:
        raise InputError(f"identity denominator must be one of {DENOMINATORS}, got '{denominator}'")
    if not 0 <= min_coverage <= 1:
        raise InputError(f"minimum coverage must be in [0, 1], got {min_coverage}")


def cluster_ids(
    table: pd.DataFrame,
    sequence_type: str,
    min_identity: float,
    denominator: str = "longer",
    min_coverage: float = 0.0,
    workdir: Path | None = None,
    threads: int = 1,
) -> pd.Series:
    """MMseqs2 cluster representative of each sequence (index: table's index).

    The usual cluster-then-split recipe: clusters at the threshold, split by
    cluster. Kept for comparison: members of different clusters can still be
    similar, so this does not bound cross-partition identity.
    """
    _check_arguments(table, sequence_type, min_identity, denominator, min_coverage, None)
    with tempfile.TemporaryDirectory(dir=workdir, prefix="mmseqs-") as scratch:
        search = _Search(
            table, sequence_type, min_identity, denominator, min_coverage, scratch, threads
        )
        database = search._createdb(search.sequences, "seqs", amino_acid=not search.nucleotide)
        clusters = search.folder / "clusters"
        search._run(
            "cluster",
            database,
            clusters,
            search.folder / "tmp",
            "--seq-id-mode",
            SEQ_ID_MODE[denominator],
            "--min-seq-id",
            f"{min_identity:.6f}",
            "-c",
            f"{min_coverage:.6f}",
            "--cov-mode",
            "0",
            *search._long_sequences(),
        )
        listing = search.folder / "clusters.tsv"
        search._run("createtsv", database, database, clusters, listing)
        members = pd.read_csv(listing, sep="\t", header=None, names=["rep", "member"])
    representative = np.empty(len(table), dtype=np.int64)
    representative[search.order[members["member"].to_numpy()]] = search.order[
        members["rep"].to_numpy()
    ]
    return pd.Series(table["id"].to_numpy()[representative], index=table.index, name="cluster")
