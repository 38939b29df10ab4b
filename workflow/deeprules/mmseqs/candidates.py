"""The exhaustive search's candidate pairs: every pair that could reach the threshold.

Kept apart from the MMseqs2 calls because this is where the search's promise
lives: a pair is skipped only when its longest common subsequence proves no
alignment of it can reach the threshold (`CandidatePairs._candidates`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
from rapidfuzz.distance import LCSseq
from rapidfuzz.process import cdist
from tqdm import tqdm

from deeprules.mmseqs.constants import CANDIDATE_BLOCK, COMPLEMENT, SLACK
from deeprules.mmseqs.tables import _mmseqs_letters

log = logging.getLogger("deeprules.mmseqs")


@dataclass
class MeasuredPairs:
    """The longest common subsequences one exhaustive search measured, kept for a later
    search of a subset of its sequences (the split's verification of the partitions).

    The split's graph search measures the common subsequence of every pair; the
    verification, a search of the kept sequences across partitions from a lower identity,
    would measure the same pairs again (a third of the split's time on 20,000 500-bp
    sequences). So the graph search keeps every pair whose common subsequence reaches
    `floor` (<= the verification's own identity, so the verification's candidates are a
    subset), and the verification takes its candidates from here. Only the proof that
    a pair cannot reach the threshold is shared: the verification still aligns every
    candidate it takes, and the record is made before any partition exists.
    """

    floor: float  # identity the kept pairs' common subsequences reach (their needed residues)
    denominator: str
    min_coverage: float
    ids: np.ndarray = field(default_factory=lambda: np.array([], dtype=object))
    first: np.ndarray = field(default_factory=lambda: np.array([], dtype=np.int64))
    second: np.ndarray = field(default_factory=lambda: np.array([], dtype=np.int64))
    common: np.ndarray = field(default_factory=lambda: np.array([], dtype=np.int32))
    complete: bool = False  # set once a search has filled it

    def covers(self, ids: np.ndarray, identity: float, denominator: str, coverage: float) -> bool:
        """Whether a search of these ids from this identity can take its candidates here."""
        return (
            self.complete
            and identity >= self.floor - 1e-12
            and (denominator, coverage) == (self.denominator, self.min_coverage)
            and bool(np.isin(ids, self.ids).all())
        )


class CandidatePairs:
    """Candidate pairs of one search (a base of `_Search`, which sets these attributes).

    The methods stay methods of the search so a test can replace `_Search._candidates`
    and check that the skip never drops a pair aligning everything would find.
    """

    sequences: list[str]
    groups: np.ndarray | None
    nucleotide: bool
    min_identity: float
    denominator: str
    min_coverage: float
    threads: int
    ids: np.ndarray
    keep_measured: MeasuredPairs | None = None  # fill it while measuring
    measured: MeasuredPairs | None = None  # take the candidates from it

    @cached_property
    def lengths(self) -> np.ndarray:
        """Each sequence's length (a reverse complement has its sequence's)."""
        return np.array([len(s) for s in self.sequences])

    def _write_candidates(self, path: Path, n: int) -> int:
        """Write a fake MMseqs2 prefilter result: for each query, its candidate targets.

        Query i (forward strand) gets targets j > i; for nucleotides the reverse
        complement of i (key n + i) gets its own. Lines are fixed-width so a
        query's list is one numpy slice; each entry ends with a NUL byte.
        """
        width = len(str(n))
        line = np.array([f"{k:0{width}d}\t0\t0\n".encode() for k in range(n)])
        total = 0
        offset = 0
        index_rows = []
        with open(path, "wb") as data:
            for key, targets in self._candidate_lists():
                entry = line[targets].tobytes() + b"\0"
                data.write(entry)
                index_rows.append(f"{key}\t{offset}\t{len(entry)}\n")
                offset += len(entry)
                total += len(targets)
        path.with_name(path.name + ".index").write_text("".join(index_rows))
        path.with_name(path.name + ".dbtype").write_bytes(bytes([7, 0, 0, 0]))  # prefilter result
        return total

    def _candidate_lists(self) -> Iterator[tuple[int, np.ndarray]]:
        """(query key, its candidate targets) for every query: key i is sequence i on the
        forward strand, n + i its reverse complement (nucleotides)."""
        if self.measured is not None:
            yield from self._measured_candidate_lists(self.measured)
            return
        n = len(self.sequences)
        letters = _mmseqs_letters(self.sequences, self.nucleotide)
        lengths = self.lengths
        strands = [(letters, 0)]
        if self.nucleotide:
            strands.append(([s[::-1].translate(COMPLEMENT) for s in letters], n))
        kept: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for queries, key_offset in strands:
            progress = tqdm(total=n, desc="candidate pairs", mininterval=5, leave=False)
            for first in range(0, n, CANDIDATE_BLOCK):
                block = range(first, min(first + CANDIDATE_BLOCK, n))
                common = self._common_subsequences(queries, letters, block)
                for i, row in zip(block, common, strict=True):
                    if self.keep_measured is not None:
                        low = self._candidates(i, row, lengths, self.keep_measured.floor)
                        kept.append((np.full(len(low), i), low, row[low]))
                    yield i + key_offset, self._candidates(i, row, lengths)
                progress.update(len(block))
            progress.close()
        if self.keep_measured is not None:
            self._keep(self.keep_measured, kept)

    def _keep(
        self, record: MeasuredPairs, kept: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
    ) -> None:
        """Store the pairs kept from the record's floor, the longer common subsequence of
        the two strands for each (either strand can make a pair a candidate)."""
        if kept:
            first, second, common = (np.concatenate(parts) for parts in zip(*kept, strict=True))
        else:
            first = second = common = np.array([], dtype=np.int64)
        pairs = pd.DataFrame({"first": first, "second": second, "common": common})
        pairs = pairs.groupby(["first", "second"], as_index=False)["common"].max()
        record.ids = self.ids
        record.first = pairs["first"].to_numpy(np.int64)
        record.second = pairs["second"].to_numpy(np.int64)
        record.common = pairs["common"].to_numpy(np.int32)
        record.complete = True

    def _measured_candidate_lists(self, record: MeasuredPairs) -> Iterator[tuple[int, np.ndarray]]:
        """The candidates of this search (its sequences, threshold and groups) among the
        pairs an earlier search measured: the same ones its own measurement would give."""
        position = pd.Series(np.arange(len(self.ids)), index=self.ids)
        a = position.reindex(record.ids[record.first]).to_numpy()
        b = position.reindex(record.ids[record.second]).to_numpy()
        present = ~(np.isnan(a) | np.isnan(b))
        a, b = a[present].astype(np.int64), b[present].astype(np.int64)
        first, second = np.minimum(a, b), np.maximum(a, b)
        lengths_first, lengths_second = self.lengths[first], self.lengths[second]
        needed = self._identities_needed(lengths_first, lengths_second)
        keep = record.common[present] >= needed
        if self.groups is not None:
            keep &= self.groups[first] != self.groups[second]
        pairs = pd.DataFrame({"query": first[keep], "target": second[keep]})
        log.info("%d candidate pairs taken from the graph search's measurement", len(pairs))
        for query, targets in pairs.sort_values(["query", "target"]).groupby("query"):
            yield int(query), targets["target"].to_numpy()

    def _common_subsequences(
        self, queries: list[str], letters: list[str], block: range
    ) -> np.ndarray:
        """LCS length of each query in `block` with every target j > block.start (0
        elsewhere); with groups only against targets of other groups, since a leakage
        check never compares two sequences of one partition."""
        n = len(letters)
        common = np.zeros((len(block), n), dtype=np.int32)
        columns = np.arange(block.start, n)
        rows_in_block = self.groups[block.start : block.stop] if self.groups is not None else None
        query_groups = (
            [(np.arange(len(block)), columns)]
            if rows_in_block is None
            else [
                (np.flatnonzero(rows_in_block == g), columns[self.groups[columns] != g])
                for g in np.unique(rows_in_block)
            ]
        )
        for rows, targets in query_groups:
            if len(rows) and len(targets):
                common[np.ix_(rows, targets)] = cdist(
                    [queries[block.start + r] for r in rows],
                    [letters[t] for t in targets],
                    scorer=LCSseq.similarity,
                    dtype=np.int32,
                    workers=self.threads,
                    score_cutoff=self._fewest_needed(block.start + rows, targets),
                )
        return common

    def _fewest_needed(self, rows: np.ndarray, targets: np.ndarray) -> int:
        """The fewest identical residues any of these pairs needs at the lowest identity
        this pass decides (the kept record's floor, if one is kept).

        Given it, rapidfuzz returns 0 for a pair whose LCS is shorter, and measures
        faster the higher it is (random 500-bp DNA: 40 % less time at explore's 0.9,
        nothing measurable at the split's record floor 0.72; bench/lcs_cutoff.py).
        The residues needed grow with both lengths, so a pair below this is below what it
        needs itself: the LCS of every pair that could be a candidate stays exact."""
        identity = self.min_identity
        if self.keep_measured is not None:
            identity = min(identity, self.keep_measured.floor)
        shortest_target = self.lengths[targets].min(keepdims=True)
        return int(self._identities_needed(self.lengths[rows].min(), shortest_target, identity)[0])

    def _candidates(
        self, i: int, common: np.ndarray, lengths: np.ndarray, identity: float | None = None
    ) -> np.ndarray:
        """Targets j > i (and in another group, if asked) that could reach the threshold.

        `common[j]` is the length of the longest common subsequence of query i and
        target j. The identical columns of ANY alignment of the two are a common
        subsequence, so a pair whose LCS is below the identities needed cannot
        reach the threshold and need not be aligned: the skip is exact, not a
        heuristic."""
        targets = np.arange(i + 1, len(self.sequences))
        if self.groups is not None:
            targets = targets[self.groups[targets] != self.groups[i]]
        needed = self._identities_needed(lengths[i], lengths[targets], identity)
        return targets[common[targets] >= needed]

    def _identities_needed(
        self,
        query_length: int | np.ndarray,
        target_lengths: np.ndarray,
        identity: float | None = None,
    ) -> np.ndarray:
        """Fewest identical residues an alignment needs to reach the threshold.

        For the alignment-length denominator with a coverage requirement, the
        alignment is at least `min_coverage` of the longer sequence; without a
        coverage requirement any pair with one shared residue could qualify.
        """
        longer = np.maximum(query_length, target_lengths)
        if self.denominator == "longer":
            length = longer
        elif self.denominator == "shorter":
            length = np.minimum(query_length, target_lengths)
        else:
            length = self.min_coverage * longer
        identity = self.min_identity if identity is None else identity
        return np.ceil(identity * length - SLACK).clip(min=1)
