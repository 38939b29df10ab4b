"""One MMseqs2 run over one table: the exhaustive, prefilter and co-optimal search
modes, and the MMseqs2 commands they run (createdb, align, search, convertalis)."""

from __future__ import annotations

import logging
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd

from deeprules.identity import co_optimal_identities
from deeprules.mmseqs.binary import find_mmseqs
from deeprules.mmseqs.candidates import CandidatePairs
from deeprules.mmseqs.constants import (
    ALIGNMENT_FIELDS,
    COMPLEMENT,
    NUCLEOTIDE_KMER_LENGTH,
    NUCLEOTIDE_TYPES,
    PREFILTER_MAX_SEQS,
    PREFILTER_SENSITIVITY,
    SEQ_ID_MODE,
    SLACK,
)
from deeprules.mmseqs.tables import _identical_columns, _nucleotide_matrix

log = logging.getLogger("deeprules.mmseqs")


class _Search(CandidatePairs):
    """One MMseqs2 run over one table, in a scratch folder.

    Sequences are sorted so that every candidate pair is aligned in one fixed
    orientation (the lexicographically smaller sequence as query): a later
    verification run over a subset then aligns the pair exactly as this run did.
    """

    def __init__(
        self,
        table: pd.DataFrame,
        sequence_type: str,
        min_identity: float,
        denominator: str,
        min_coverage: float,
        folder: str | Path,
        threads: int,
        groups: np.ndarray | None = None,
    ) -> None:
        nucleotide = sequence_type in NUCLEOTIDE_TYPES
        sequences = table["sequence"].reset_index(drop=True).str.upper()
        if nucleotide:
            sequences = sequences.str.replace("U", "T")
        self.order = np.argsort(sequences.to_numpy(), kind="stable")  # sorted row -> table row
        self.sequences = sequences.to_numpy()[self.order].tolist()
        self.ids = table["id"].to_numpy()[self.order]
        self.table_groups = groups
        self.groups = None if groups is None else groups[self.order]
        self.nucleotide = nucleotide
        self.min_identity = min_identity
        self.report_from = min_identity  # MMseqs2's own identity filter (may be lower)
        self.denominator = denominator
        self.min_coverage = min_coverage
        self.folder = Path(folder)
        self.threads = max(1, int(threads))
        self.binary = find_mmseqs()

    # -- the two search modes -------------------------------------------------

    def exhaustive(self) -> pd.DataFrame:
        """Align every candidate pair; nothing is left to a heuristic prefilter."""
        n = len(self.sequences)
        queries = list(self.sequences)
        if self.nucleotide:  # reverse strand: reverse complements as extra queries
            queries += [s[::-1].translate(COMPLEMENT) for s in self.sequences]
        database = self._createdb(queries, "seqs", amino_acid=True)
        prefilter = self.folder / "candidates"
        count = self._write_candidates(prefilter, n)
        log.info("aligning %d candidate pairs of %d sequences with mmseqs align", count, n)
        aligned = self.folder / "aligned"
        started = time.perf_counter()
        self._run(
            "align",
            database,
            database,
            prefilter,
            aligned,
            "-a",
            "--alignment-mode",
            "3",
            "-e",
            "inf",
            *self._alignment_filters(),
            *self._scoring(),
        )
        log.info("alignment took %.1f s", time.perf_counter() - started)
        hits = self._convertalis(database, database, aligned)
        return self._to_table_rows(hits, n)

    def prefiltered(self) -> pd.DataFrame:
        """MMseqs2 search with its most sensitive prefilter; fast but can miss pairs.

        With groups, only sequences outside the largest group are queries: every pair
        across groups has one, so e.g. a leakage check searches tune and test against
        everything instead of every sequence against every sequence."""
        n = len(self.sequences)
        amino_acid = not self.nucleotide
        database = self._createdb(self.sequences, "seqs", amino_acid=amino_acid)
        queries, query_db = np.arange(n), database
        if self.groups is not None:
            largest = pd.Series(self.groups).value_counts().index[0]
            queries = np.flatnonzero(self.groups != largest)
            query_db = self._createdb(
                [self.sequences[k] for k in queries], "queries", amino_acid=amino_acid
            )
        result = self.folder / "result"
        nucleotide_options = (
            ["--search-type", "3", "--strand", "2", "-k", str(NUCLEOTIDE_KMER_LENGTH)]
            if self.nucleotide
            else []
        )
        log.info(
            "searching %d of %d sequences against all with the MMseqs2 prefilter "
            "(-s %.1f, --max-seqs %d%s)",
            len(queries),
            n,
            PREFILTER_SENSITIVITY,
            PREFILTER_MAX_SEQS,
            f", -k {NUCLEOTIDE_KMER_LENGTH}, both strands" if self.nucleotide else "",
        )
        self._run(
            "search",
            query_db,
            database,
            result,
            self.folder / "tmp",
            "-a",
            "--alignment-mode",
            "3",
            "-e",
            "inf",
            "-s",
            str(PREFILTER_SENSITIVITY),
            "--max-seqs",
            str(PREFILTER_MAX_SEQS),
            *nucleotide_options,
            *self._alignment_filters(),
            *self._long_sequences(),
            "--comp-bias-corr",
            "0",
        )
        hits = self._convertalis(query_db, database, result, *nucleotide_options[:2])
        hits["query"] = queries[hits["query"].to_numpy()]
        hits = self._to_table_rows(hits, n)
        hits = hits[hits["query"] != hits["target"]]
        if self.table_groups is not None:
            groups = self.table_groups
            hits = hits[groups[hits["query"]] != groups[hits["target"]]]
        return hits

    def co_optimal(self) -> pd.DataFrame:
        """Every candidate pair scored exactly with the highest identity among its
        optimal-scoring alignments (deeprules.identity): rows of the caller's table
        (query, target) and the identical residues (nident), one row per pair."""
        n = len(self.sequences)
        query, target = [], []
        for key, targets in self._candidate_lists():
            query.append(np.full(len(targets), key % n))
            target.append(targets)
        if not query:
            return pd.DataFrame(columns=["query", "target", "nident"])
        pairs = pd.DataFrame({"query": np.concatenate(query), "target": np.concatenate(target)})
        pairs = pairs.drop_duplicates().reset_index(drop=True)  # both strands: one pair
        log.info("scoring %d candidate pairs of %d sequences exactly", len(pairs), n)
        started = time.perf_counter()
        first = [self.sequences[k] for k in pairs["query"]]
        second = [self.sequences[k] for k in pairs["target"]]
        _, pairs["nident"] = co_optimal_identities(first, second, self.nucleotide, self.threads)
        log.info("exact alignment took %.1f s", time.perf_counter() - started)
        pairs["query"], pairs["target"] = self.order[pairs["query"]], self.order[pairs["target"]]
        return pairs

    # -- running MMseqs2 ------------------------------------------------------

    def _createdb(self, sequences: list[str], name: str, amino_acid: bool) -> Path:
        """An MMseqs2 database whose key k is sequences[k] (named by its number)."""
        fasta = self.folder / f"{name}.fasta"
        fasta.write_text("".join(f">{k}\n{s}\n" for k, s in enumerate(sequences)))
        database = self.folder / name
        self._run(
            "createdb",
            fasta,
            database,
            "--dbtype",
            "1" if amino_acid else "2",
            "--shuffle",
            "0",
            threads=False,
        )
        return database

    def _alignment_filters(self) -> list[str]:
        """MMseqs2-side filters, slightly looser than ours, to keep its output small."""
        options = [
            "--seq-id-mode",
            SEQ_ID_MODE[self.denominator],
            "--min-seq-id",
            f"{max(0.0, self.report_from - SLACK):.6f}",
        ]
        if self.min_coverage > 0:
            options += ["-c", f"{max(0.0, self.min_coverage - SLACK):.6f}", "--cov-mode", "0"]
        return options

    def _scoring(self) -> list[str]:
        """Symmetric scoring: composition-bias correction adjusts the query only, so it is
        off and a pair's identity does not depend on which sequence is the query.

        Nucleotides in the exhaustive mode are stored as amino-acid letters (MMseqs2's
        nucleotide aligner only aligns near a prefilter diagonal), so score them with a
        nucleotide match/mismatch matrix."""
        options = [*self._long_sequences(), "--comp-bias-corr", "0"]
        if self.nucleotide:
            matrix = self.folder / "nucleotide_as_amino_acid.out"
            matrix.write_text(_nucleotide_matrix())
            options += [
                "--sub-mat",
                f"aa:{matrix},nucl:nucleotide.out",
            ]  # MMseqs2's default gap costs: its statistics library rejects others here
        return options

    def _long_sequences(self) -> list[str]:
        longest = max(len(s) for s in self.sequences)
        return ["--max-seq-len", str(max(65535, longest + 1))]

    def _convertalis(
        self, query_db: Path, target_db: Path, result: Path, *options: str
    ) -> pd.DataFrame:
        output = self.folder / "alignments.tsv"
        self._run(
            "convertalis",
            query_db,
            target_db,
            result,
            output,
            "--format-output",
            ALIGNMENT_FIELDS,
            *options,
        )
        columns = ALIGNMENT_FIELDS.split(",")
        numeric = [c for c in columns if c not in ("qaln", "taln")]
        if output.stat().st_size == 0:
            hits = pd.DataFrame(columns=[*numeric, "nident"], dtype=np.int64)
        else:
            hits = pd.read_csv(
                output,
                sep="\t",
                header=None,
                names=columns,
                dtype=dict.fromkeys(numeric, np.int64) | {"qaln": str, "taln": str},
                na_filter=False,  # an aligned peptide "NA" is a sequence, not a missing value
            )
            hits["nident"] = _identical_columns(hits["qaln"], hits["taln"])
        return hits.drop(columns=["qaln", "taln"], errors="ignore")

    def _to_table_rows(self, hits: pd.DataFrame, n: int) -> pd.DataFrame:
        """Map MMseqs2 keys back to rows of the caller's table (reverse strand -> same row)."""
        hits = hits.copy()
        for column in ("query", "target"):
            hits[column] = self.order[hits[column].to_numpy() % n]
        return hits

    def _run(self, *arguments: object, threads: bool = True) -> None:
        command = [self.binary, *map(str, arguments), "-v", "1"]
        if threads:
            command += ["--threads", str(self.threads)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(
                f"MMseqs2 failed (exit {result.returncode}): {' '.join(command)}\n"
                f"{result.stdout[-2000:]}{result.stderr[-2000:]}"
            )
