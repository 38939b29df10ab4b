"""Train / tune / test split with a verified no-leakage guarantee (Tip 7).

When test sequences are homologous to training sequences, a model can score
well by recognising relatives rather than by learning the biology, and the
test set no longer measures what it claims. The `homology` method therefore
promises: no pair of sequences in different partitions has identity AT OR
ABOVE the threshold. It builds the graph of all such pairs (an MMseqs2 search
that cannot miss one, deeprules.mmseqs), places whole connected components
where it can, and where a component is too large to place it cuts it, removing
as few sequences as it can (each removal goes to the ledger). An independent
search afterwards counts cross-partition pairs; any at or above the threshold
stops the stage. The methods `random`, `cluster` (MMseqs2 cluster, then split by
cluster) and `predefined` (a partition column shipped with the data) exist for
comparison and for reproducing published splits; their reports count leakage
the same way, and they never stop the stage for it.
"""

from __future__ import annotations

import heapq
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix, diags
from scipy.sparse.csgraph import (
    breadth_first_order,
    connected_components,
    maximum_bipartite_matching,
)
from scipy.sparse.linalg import eigsh

from deeprules import mmseqs
from deeprules.io import InputError, atomic_write, read_tsv, sequence_hash, write_json, write_tsv

log = logging.getLogger("deeprules.split")

PARTITIONS = ("train", "tune", "test")
METHODS = ("homology", "random", "cluster", "predefined")
REMOVED = -1
LEDGER_COLUMNS = ["id", "sequence_sha256", "reason", "detail"]
# Names a published benchmark may use for its partitions.
PARTITION_NAMES = {
    "train": "train",
    "training": "train",
    "tune": "tune",
    "valid": "tune",
    "validation": "tune",
    "val": "tune",
    "dev": "tune",
    "test": "test",
    "testing": "test",
}
# Region growing is repeated from this many seeds per cut; the cut removing the
# fewest sequences wins (deterministic for a given seed).
SEEDS_PER_CUT = 2
# Eigenvectors followed by the spectral sweeps, and regions carved per partition.
SPECTRAL_VECTORS = 5
CARVES_PER_PARTITION = 3
# Whole partitioning attempts with different derived seeds; the one keeping most wins.
RESTARTS = 3
# Rebalancing moves only kept-graph pieces up to this share of the smallest partition.
MOVABLE_PIECE = 0.05


class LeakageError(InputError):
    """The independent verification found a cross-partition pair at or above the threshold."""


@dataclass(frozen=True)
class SplitSettings:
    """Everything that decides the split, after merging run config and dataset overrides."""

    method: str
    fractions: tuple[float, float, float]  # train, tune, test
    label_tolerance: float
    threshold: float
    denominator: str
    min_coverage: float
    sequence_type: str
    exhaustive_max_sequences: int
    verify_exhaustive_max_sequences: int
    verify_report_from: float
    fail_on_leakage: bool
    partition_column: str | None
    seed: int

    @property
    def homology(self) -> tuple[str, float, str, float]:
        """What makes two sequences homologous here, as deeprules.mmseqs takes it:
        sequence type, threshold, denominator, minimum coverage."""
        return self.sequence_type, self.threshold, self.denominator, self.min_coverage

    @property
    def identity_definition(self) -> str:
        cover = (
            f", alignment covering at least {self.min_coverage:g} of both sequences"
            if self.min_coverage > 0
            else ""
        )
        scoring = (
            "BLOSUM62, gaps 11/1, composition-bias correction off"
            if self.sequence_type == "protein"
            else "match +2 / mismatch -3, both strands"
        )
        return (
            f"identical aligned residues / {self.denominator} "
            f"{'length' if self.denominator == 'alignment' else 'sequence length'} "
            f"(MMseqs2 local alignment, {scoring}{cover}); a pair counts when its identity "
            f"is at or above {self.threshold:g}"
        )


def settings_from_config(config: dict[str, Any], dataset: dict[str, Any]) -> SplitSettings:
    """Merge the run config's `split` section with the dataset's `split` overrides.

    Checks what a schema cannot (or what callers outside Snakemake skipped) and
    names the key to change.
    """
    run = config.get("split", {})
    override = dataset.get("split", {})
    where = f"dataset '{dataset.get('name', '?')}'"
    sequence_type = dataset["sequence_type"]
    kind = "protein" if sequence_type == "protein" else "nucleotide"
    threshold = override.get("threshold", run.get("threshold", {}).get(kind, _default(kind)))
    threshold_key = (
        f"{where} key 'split.threshold'"
        if "threshold" in override
        else f"config key 'split.threshold.{kind}'"
    )
    if not isinstance(threshold, int | float) or not 0 < threshold <= 1:
        raise InputError(f"{threshold_key}: identity threshold must be in (0, 1], got {threshold}")
    fractions_map = run.get("fractions", {"train": 0.7, "tune": 0.15, "test": 0.15})
    fractions = tuple(float(fractions_map.get(name, 0)) for name in PARTITIONS)
    if any(f <= 0 for f in fractions) or not math.isclose(sum(fractions), 1.0, abs_tol=1e-6):
        raise InputError(
            f"config key 'split.fractions': train, tune and test must each be above 0 and sum "
            f"to 1, got {dict(zip(PARTITIONS, fractions, strict=True))} (sum {sum(fractions):g})"
        )
    method = run.get("method", "homology")
    if method not in METHODS:
        raise InputError(f"config key 'split.method': must be one of {METHODS}, got '{method}'")
    denominator = override.get("denominator", run.get("denominator", "longer"))
    if denominator not in mmseqs.DENOMINATORS:
        raise InputError(
            f"key 'split.denominator': must be one of {mmseqs.DENOMINATORS}, got '{denominator}'"
        )
    tolerance = float(run.get("label_tolerance", 0.03))
    if not 0 <= tolerance < 1:
        raise InputError(f"config key 'split.label_tolerance': must be in [0, 1), got {tolerance}")
    partition_column = override.get("partition_column")
    if method == "predefined" and not partition_column:
        raise InputError(
            f"{where}: split.method is 'predefined' but the dataset has no "
            "'split.partition_column' naming the column with train/tune/test"
        )
    verify = run.get("verify", {})
    return SplitSettings(
        method=method,
        fractions=fractions,  # type: ignore[arg-type]
        label_tolerance=tolerance,
        threshold=float(threshold),
        denominator=denominator,
        min_coverage=float(run.get("min_coverage", 0.0)),
        sequence_type=sequence_type,
        exhaustive_max_sequences=int(run.get("exhaustive_max_sequences", 20000)),
        verify_exhaustive_max_sequences=int(verify.get("exhaustive_max_sequences", 20000)),
        verify_report_from=float(verify.get("report_from", 0.8)),
        fail_on_leakage=bool(verify.get("fail_on_leakage", True)),
        partition_column=partition_column,
        seed=int(config.get("seed", 42)),
    )


def _default(kind: str) -> float:
    return 0.3 if kind == "protein" else 0.8


# -- the stage ---------------------------------------------------------------


def split_from_config(
    sequences_path: Path,
    config: dict[str, Any],
    dataset: dict[str, Any],
    outputs: dict[str, Path],
    threads: int = 1,
) -> dict[str, Any]:
    """The rule's entry point: settings from the run config and the dataset, then split."""
    return split_dataset(sequences_path, settings_from_config(config, dataset), outputs, threads)


def split_dataset(
    sequences_path: Path,
    settings: SplitSettings,
    outputs: dict[str, Path],
    threads: int = 1,
    workdir: Path | None = None,
) -> dict[str, Any]:
    """Read curate/sequences.tsv, split, verify, and write every split output.

    outputs: paths for train, tune, test, assignments, dropped, report, figure.
    Returns the report (also written to outputs['report']).
    """
    started = time.perf_counter()
    table = read_tsv(sequences_path)
    _check_table(table, settings, sequences_path)
    timings: dict[str, float] = {}

    tick = time.perf_counter()
    exhaustive = len(table) <= settings.exhaustive_max_sequences
    log.info(
        "similarity graph: %d sequences, %s search",
        len(table),
        "exhaustive" if exhaustive else "prefilter",
    )
    pairs = mmseqs.similar_pairs(
        table, *settings.homology, workdir=workdir, threads=threads, exhaustive=exhaustive
    )
    timings["similarity_graph_s"] = time.perf_counter() - tick
    component = homology_components(table["id"], pairs)
    log.info(
        "%d pairs at or above %g; %d components, largest %d sequences",
        len(pairs),
        settings.threshold,
        component.nunique(),
        component.value_counts().max(),
    )

    tick = time.perf_counter()
    partition, ledger = assign_partitions(table, pairs, component, settings, threads, workdir)
    timings["partition_s"] = time.perf_counter() - tick

    tick = time.perf_counter()
    kept = table.assign(component=component.to_numpy(), partition=partition)
    kept = kept[kept["partition"] != ""].reset_index(drop=True)
    cross = verify_no_leakage(kept, settings, threads, workdir)
    timings["verification_s"] = time.perf_counter() - tick
    timings["total_s"] = time.perf_counter() - started

    within = _within_partition_identities(pairs, kept)
    report = build_report(
        table, kept, ledger, cross, within, pairs, component, settings, exhaustive, timings
    )
    leaks = report["verification"]["pairs_at_or_above_threshold"]
    if leaks and settings.method == "homology" and settings.fail_on_leakage:
        worst = cross.sort_values("identity", ascending=False).head(5).to_dict("records")
        raise LeakageError(
            f"split: verification found {leaks} cross-partition pairs with identity at or above "
            f"{settings.threshold:g} ({settings.denominator} denominator), e.g. {worst}. The "
            "homology split must leave none; this is a bug in the split, please report it "
            "with the dataset."
        )
    _write_outputs(kept, ledger, report, cross, within, settings, outputs)
    return report


def _check_table(table: pd.DataFrame, settings: SplitSettings, path: Path) -> None:
    """Columns present, ids unique, and every class large enough for every partition."""
    for column in ("id", "sequence", "label"):
        if column not in table.columns:
            raise InputError(
                f"{path}: column '{column}' missing; columns are {list(table.columns)}"
            )
    if table["id"].duplicated().any():
        raise InputError(
            f"{path}: ids must be unique, repeated: "
            f"{table.loc[table['id'].duplicated(), 'id'].head(3).tolist()}"
        )
    smallest = min(settings.fractions)
    for label, count in table["label"].value_counts().items():
        if count * smallest < 1:
            raise InputError(
                f"{path}: class '{label}' has {count} sequences, too few to appear in every "
                f"partition with config key 'split.fractions' "
                f"{dict(zip(PARTITIONS, settings.fractions, strict=True))}; "
                f"it needs at least {math.ceil(1 / smallest)}, or raise the smallest fraction"
            )
    if settings.method == "predefined" and settings.partition_column not in table.columns:
        raise InputError(
            f"key 'split.partition_column': column '{settings.partition_column}' not in {path}; "
            f"columns are {list(table.columns)}"
        )


def homology_components(ids: pd.Series, pairs: pd.DataFrame) -> pd.Series:
    """Connected component of each sequence in the graph of pairs at or above the threshold.

    Numbered from 0 by decreasing size (ties by first id), so ids are stable.
    """
    graph = _adjacency(ids, pairs)
    _, labels = connected_components(graph, directed=False)
    sizes = np.bincount(labels)
    first = np.full(len(sizes), len(ids))
    np.minimum.at(first, labels, np.arange(len(ids)))
    rank = np.empty(len(sizes), dtype=np.int64)
    rank[np.lexsort((first, -sizes))] = np.arange(len(sizes))
    return pd.Series(rank[labels], index=ids.index, name="component")


def _adjacency(ids: pd.Series, pairs: pd.DataFrame) -> csr_matrix:
    position = pd.Series(np.arange(len(ids)), index=ids.to_numpy())
    a = position.reindex(pairs["query"]).to_numpy()
    b = position.reindex(pairs["target"]).to_numpy()
    ok = ~(np.isnan(a) | np.isnan(b)) if len(pairs) else np.zeros(0, dtype=bool)
    a, b = a[ok].astype(np.int64), b[ok].astype(np.int64)
    data = np.ones(2 * len(a), dtype=np.int8)
    n = len(ids)
    return csr_matrix((data, (np.r_[a, b], np.r_[b, a])), shape=(n, n))


# -- partitioning ------------------------------------------------------------------


def assign_partitions(
    table: pd.DataFrame,
    pairs: pd.DataFrame,
    component: pd.Series,
    settings: SplitSettings,
    threads: int = 1,
    workdir: Path | None = None,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Partition name per row ('' = removed) and the ledger of removals, by the chosen method."""
    labels = table["label"].to_numpy()
    rng = np.random.default_rng(settings.seed)
    if settings.method == "homology":
        adjacency = _adjacency(table["id"], pairs)
        codes, reasons = partition_by_homology(
            adjacency, labels, settings.fractions, settings.label_tolerance, rng
        )
    elif settings.method == "random":
        codes = partition_at_random(labels, settings.fractions, rng)
        reasons = {}
    elif settings.method == "cluster":
        clusters = mmseqs.cluster_ids(table, *settings.homology, workdir=workdir, threads=threads)
        codes = place_groups(pd.factorize(clusters)[0], labels, settings.fractions, rng)
        reasons = {}
    else:
        codes = _predefined(table, settings.partition_column)
        reasons = {}
    names = np.array([*PARTITIONS, ""])[np.where(codes == REMOVED, len(PARTITIONS), codes)]
    ledger = pd.DataFrame(
        [
            {
                "id": table["id"].iat[row],
                "sequence_sha256": sequence_hash(table["sequence"].iat[row]),
                "reason": reason,
                "detail": detail,
            }
            for row, (reason, detail) in sorted(reasons.items())
        ],
        columns=LEDGER_COLUMNS,
    )
    return names, ledger


def partition_by_homology(
    adjacency: csr_matrix,
    labels: np.ndarray,
    fractions: tuple[float, ...],
    tolerance: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, dict[int, tuple[str, str]]]:
    """Partition code per node (REMOVED for removed nodes) with no edge between partitions.

    The best of RESTARTS attempts (seeds drawn from `rng`) is returned.

    1. Components are placed whole, largest first, where they fit; a component
       larger than every partition's remaining room is cut: the partition with
       the most room keeps the bulk, and regions holding the sequences (per
       class) the other partitions still need are carved out. Candidate regions
       are prefixes of spectral orders (low Laplacian eigenvectors follow
       loosely attached lobes) and greedy growth from peripheral seeds. Each
       candidate's separator is the smallest possible one, a minimum vertex
       cover of the edges leaving the region (Koenig: a maximum matching); the
       candidate with the fewest separator nodes per useful node wins and its
       separator is removed.
    2. Removed nodes whose kept neighbours all sit in one partition go back in.
    3. Whole components of the kept graph move between partitions to bring
       sizes and label shares to target; if a label share is still outside the
       tolerance, the fewest sequences needed are removed to restore it.
    """
    best = None
    for seed in rng.integers(0, 2**32, size=RESTARTS):
        graph = _Graph(adjacency, labels, fractions, np.random.default_rng(seed))
        graph.place_components()
        graph.reinsert_removed(keep_balance=tolerance)
        graph.rebalance(tolerance)
        graph.enforce_label_tolerance(tolerance)
        graph.reinsert_removed(keep_balance=tolerance)
        if graph.cross_edges():
            raise AssertionError("partitioning left a cross-partition edge")  # cannot happen
        kept = int((graph.partition != REMOVED).sum())
        log.info("partition attempt: %d of %d sequences kept", kept, len(labels))
        if best is None or kept > best[0]:
            best = (kept, graph)
    assert best is not None
    return best[1].partition, best[1].reasons


class _Graph:
    """The similarity graph and the partition being built on it."""

    def __init__(
        self,
        adjacency: csr_matrix,
        labels: np.ndarray,
        fractions: tuple[float, ...],
        rng: np.random.Generator,
    ) -> None:
        self.indptr, self.indices = adjacency.indptr, adjacency.indices
        self.n = adjacency.shape[0]
        # one weight per edge, built once: every cut slices sub-matrices out of it
        self.edges = csr_matrix(
            (np.ones(len(self.indices)), self.indices, self.indptr), shape=(self.n, self.n)
        )
        self.class_names, self.label = np.unique(labels, return_inverse=True)
        self.n_classes = len(self.class_names)
        self.fractions = np.asarray(fractions)
        self.class_share = np.bincount(self.label, minlength=self.n_classes) / self.n
        self.size_target = self.fractions * self.n
        self.label_target = np.outer(self.fractions, np.bincount(self.label))  # partition x class
        self.rng = rng
        self.priority = rng.permutation(self.n)  # deterministic tie-breaking
        self.partition = np.full(self.n, REMOVED, dtype=np.int64)
        self.reasons: dict[int, tuple[str, str]] = {}

    def neighbours(self, node: int) -> np.ndarray:
        return self.indices[self.indptr[node] : self.indptr[node + 1]]

    def counts(self) -> np.ndarray:
        """Kept sequences per partition and class."""
        kept = self.partition != REMOVED
        counts = np.zeros((len(self.fractions), self.n_classes), dtype=np.int64)
        np.add.at(counts, (self.partition[kept], self.label[kept]), 1)
        return counts

    # step 1 ----------------------------------------------------------------------

    def place_components(self) -> None:
        """Largest component first: whole where it fits, else cut (see `_cut_component`)."""
        _, component = connected_components(self.edges, directed=False)
        members = pd.Series(np.arange(self.n)).groupby(component).apply(np.asarray)
        order = sorted(
            members.index, key=lambda c: (-len(members[c]), self.priority[members[c][0]])
        )
        room = self.size_target.copy()
        label_room = self.label_target.copy()
        for c in order:
            nodes = members[c]
            composition = np.bincount(self.label[nodes], minlength=self.n_classes)
            if len(nodes) <= room.max() + 0.5 or len(nodes) == 1:
                target = self._best_partition(composition, room, label_room)
                self.partition[nodes] = target
                room[target] -= len(nodes)
                label_room[target] -= composition
            else:
                self._cut_component(nodes, room, label_room)

    def _best_partition(
        self, composition: np.ndarray, room: np.ndarray, label_room: np.ndarray
    ) -> int:
        """Where a whole component fills the most missing label counts, then the most room."""
        filled = np.minimum(composition, np.clip(label_room, 0, None)).sum(axis=1)
        relative_room = room / self.size_target
        return int(np.lexsort((-relative_room, -filled))[0])

    def _cut_component(self, nodes: np.ndarray, room: np.ndarray, label_room: np.ndarray) -> None:
        """Cut a too-large component: the partition with the most room takes all it can,
        and only the excess is carved out for the others (in proportion to their room),
        since every carved region costs the removal of its separator."""
        room_left = np.clip(room, 0, None)
        largest = int(np.argmax(room_left))
        wanted = self._wanted_from_component(nodes, room_left, label_room, largest)
        available = np.zeros(self.n, dtype=bool)
        available[nodes] = True
        for target in np.argsort(wanted.sum(axis=1)):
            for _ in range(CARVES_PER_PARTITION):
                need = round(float(wanted[target].sum()))
                if target == largest or need < 1 or not available.any():
                    break
                orders = self._spectral_orders(np.flatnonzero(available))
                region, separator = self._best_region(available, need, wanted[target], orders)
                wanted[target] -= np.bincount(self.label[region], minlength=self.n_classes)
                wanted[target] = np.clip(wanted[target], 0, None)
                self.partition[region] = target
                room[target] -= len(region)
                label_room[target] -= np.bincount(self.label[region], minlength=self.n_classes)
                available[region] = False
                available[separator] = False
                need -= len(region)
                for node in separator:
                    self.reasons[int(node)] = (
                        "homology_cut",
                        f"in a homology component of {len(nodes)} sequences, too large for one "
                        f"partition; removed so that no pair at or above the threshold crosses "
                        f"from {PARTITIONS[target]} to another partition",
                    )
        rest = np.flatnonzero(available)
        self.partition[rest] = largest
        room[largest] -= len(rest)
        label_room[largest] -= np.bincount(self.label[rest], minlength=self.n_classes)

    def _wanted_from_component(
        self, nodes: np.ndarray, room: np.ndarray, label_room: np.ndarray, largest: int
    ) -> np.ndarray:
        """Sequences of each class each partition must take from this component: its label
        room minus what the sequences not yet placed can supply (shared by room). The
        partition with the most room takes the rest of the component, so it wants none."""
        unplaced = self.partition == REMOVED
        unplaced[nodes] = False
        unplaced[list(self.reasons)] = False
        outside = np.bincount(self.label[unplaced], minlength=self.n_classes)
        supply = np.outer(room / max(room.sum(), 1), outside)
        wanted = np.clip(label_room - supply, 0, None)
        wanted[largest] = 0
        return wanted

    def _best_region(
        self,
        available: np.ndarray,
        need: int,
        label_room: np.ndarray,
        orders: list[np.ndarray],
    ) -> tuple[np.ndarray, np.ndarray]:
        """The region of about `need` nodes (a quarter to 115 %) with the fewest separator
        nodes per region node, among spectral sweeps and greedy growth from several seeds.

        Spectral sweeps follow the low eigenvectors of the normalised graph Laplacian,
        which run along loosely attached lobes of a component: a prefix of that order
        is a lobe, and its separator (the nodes outside it adjacent to it) is small.
        """
        pool = np.flatnonzero(available)
        low, high = max(1, need // 4), max(1, int(need * 1.15))
        candidates = []
        wanted = np.clip(label_room, 0, None)
        candidates = [self._best_prefix(order, available, low, high, wanted) for order in orders]
        degree = np.array([available[self.neighbours(v)].sum() for v in pool])
        for seed in pool[np.lexsort((self.priority[pool], degree))][:SEEDS_PER_CUT]:
            region, separator = self._grow_region(available, int(seed), need, label_room)
            candidates.append((self._cost(region, separator, wanted), region, separator))
        candidates = [
            self._smallest_separator(region, available, wanted)
            for _, region, _ in candidates
            if len(region)
        ]
        _, region, separator = min(candidates, key=lambda c: (c[0], -len(c[1])))
        return region, separator

    def _smallest_separator(
        self, region: np.ndarray, available: np.ndarray, wanted: np.ndarray
    ) -> tuple[float, np.ndarray, np.ndarray]:
        """The fewest sequences to remove so that no edge joins `region` to the rest of the
        pool: a minimum vertex cover of the edges between them, which for this bipartite
        graph a maximum matching gives exactly (Koenig's theorem). It may take sequences
        from inside the region and from outside, and is never larger than either boundary."""
        inside = np.zeros(self.n, dtype=bool)
        inside[region] = True
        rest = np.flatnonzero(available & ~inside)
        between = self._subgraph_rows(region, rest)
        cover = region[:0]
        if between.nnz:
            cover = np.r_[region, rest][_minimum_vertex_cover(between)]
        core = region[~np.isin(region, cover)]
        return self._cost(core, cover, wanted), core, cover

    def _cost(self, region: np.ndarray, separator: np.ndarray, wanted: np.ndarray) -> float:
        """Separator nodes per useful region node (a node is useful while its class is
        still wanted by the partition)."""
        counts = np.bincount(self.label[region], minlength=self.n_classes)
        useful = np.minimum(counts, wanted).sum()
        return len(separator) / useful if useful else np.inf

    def _spectral_orders(self, pool: np.ndarray) -> list[np.ndarray]:
        """Orders of the pool nodes along the first non-trivial eigenvectors, both ways."""
        if len(pool) <= SPECTRAL_VECTORS + 2:
            return []
        sub = self._subgraph_rows(pool, pool)
        degree = np.asarray(sub.sum(axis=1)).ravel()
        scale = diags(1 / np.sqrt(np.maximum(degree, 1)))
        start = np.random.default_rng(int(self.priority[0])).random(len(pool)) + 1
        _, vectors = eigsh(
            scale @ sub @ scale, k=SPECTRAL_VECTORS + 1, which="LA", v0=start, tol=1e-3
        )
        orders = []
        for k in range(SPECTRAL_VECTORS):  # eigsh sorts ascending; the last is trivial
            coordinate = scale @ vectors[:, k]
            order = pool[np.lexsort((self.priority[pool], coordinate))]
            orders += [order, order[::-1]]
        return orders

    def _subgraph_rows(self, rows: np.ndarray, columns: np.ndarray) -> csr_matrix:
        """Edges from `rows` to `columns` as a len(rows) x len(columns) matrix."""
        return self.edges[rows][:, columns]

    def _best_prefix(
        self, order: np.ndarray, available: np.ndarray, low: int, high: int, wanted: np.ndarray
    ) -> tuple[float, np.ndarray, np.ndarray]:
        """The prefix of `order` (length low..high) with the lowest `_cost`, all prefixes
        scored at once: a node outside the prefix is in its separator from the first
        prefix that contains one of its neighbours until the prefix contains it."""
        order = order[available[order]][:high]
        length = len(order)
        never = np.iinfo(np.int64).max // 2
        rank = np.full(self.n, never, dtype=np.int64)
        rank[order] = np.arange(length)
        neighbour_rank = np.where(available[self.indices], rank[self.indices], never)
        touch = np.full(self.n, never, dtype=np.int64)
        has = np.diff(self.indptr) > 0
        touch[has] = np.minimum.reduceat(neighbour_rank, self.indptr[:-1][has])
        first = touch + 1  # separator for prefix lengths first..last
        last = np.minimum(rank, length)
        spans = available & (first <= last)
        change = np.zeros(length + 2, dtype=np.int64)
        np.add.at(change, first[spans], 1)
        np.add.at(change, last[spans] + 1, -1)
        separator = np.cumsum(change)[1 : length + 1]
        one_hot = np.eye(self.n_classes, dtype=np.int64)[self.label[order]]
        useful = np.minimum(np.cumsum(one_hot, axis=0), wanted).sum(axis=1)
        cost = np.where(useful > 0, separator / np.maximum(useful, 1), np.inf)
        cost[: max(low, 1) - 1] = np.inf
        best = int(np.argmin(cost)) + 1
        if not np.isfinite(cost[best - 1]):
            return np.inf, order[:0], order[:0]
        region_separator = np.flatnonzero(available & (touch < best) & (rank >= best))
        return float(cost[best - 1]), order[:best], region_separator

    def _grow_region(
        self, available: np.ndarray, seed: int, size: int, label_room: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Greedy region growing: always add the frontier node with the fewest untouched
        neighbours (the separator grows least), preferring labels the region still lacks.
        The frontier left at the end is the separator to remove."""
        untouched, frontier, inside = 0, 1, 2
        state = np.where(available, untouched, -1)
        wanted = np.clip(label_room, 0, None).astype(np.int64)
        heap: list[tuple[int, int, int, int]] = []

        def key(v: int) -> tuple[int, int, int, int]:
            new = int((state[self.neighbours(v)] == untouched).sum())
            return (new, 0 if wanted[self.label[v]] > 0 else 1, int(self.priority[v]), v)

        region: list[int] = []
        state[seed] = frontier
        heapq.heappush(heap, key(seed))
        while len(region) < size:
            if not heap:
                rest = np.flatnonzero(state == untouched)
                if len(rest) == 0:
                    break
                seed = int(rest[np.argmin(self.priority[rest])])
                state[seed] = frontier
                heapq.heappush(heap, key(seed))
            entry = heapq.heappop(heap)
            v = entry[-1]
            if state[v] != frontier:
                continue
            fresh = key(v)
            if fresh != entry:
                heapq.heappush(heap, fresh)
                continue
            state[v] = inside
            region.append(v)
            wanted[self.label[v]] -= 1
            for w in self.neighbours(v):
                if state[w] == untouched:
                    state[w] = frontier
                    heapq.heappush(heap, key(int(w)))
        return np.array(region, dtype=np.int64), np.flatnonzero(state == frontier)

    # step 2 ----------------------------------------------------------------------

    def reinsert_removed(self, keep_balance: float | None = None) -> None:
        """Put back every removed node whose kept neighbours all lie in one partition."""
        changed = True
        while changed:
            changed = False
            removed = np.flatnonzero(self.partition == REMOVED)
            for v in removed[np.argsort(self.priority[removed])]:
                homes = np.unique(self.partition[self.neighbours(v)])
                homes = homes[homes != REMOVED]
                if len(homes) > 1:
                    continue
                counts = self.counts()
                target = (
                    int(homes[0])
                    if len(homes)
                    else self._best_partition(
                        np.eye(self.n_classes, dtype=np.int64)[self.label[v]],
                        self.size_target - counts.sum(axis=1),
                        self.label_target - counts,
                    )
                )
                if keep_balance is not None and not self._within_tolerance_after(
                    counts, target, self.label[v], keep_balance
                ):
                    continue
                self.partition[v] = target
                self.reasons.pop(int(v), None)
                changed = True

    def _within_tolerance_after(
        self, counts: np.ndarray, target: int, label: int, tolerance: float
    ) -> bool:
        after = counts[target].copy()
        after[label] += 1
        return bool(np.all(np.abs(after / after.sum() - self.class_share) <= tolerance))

    # step 3 ----------------------------------------------------------------------

    def rebalance(self, tolerance: float, rounds: int = 20) -> None:
        """Move whole kept-graph components between partitions while that brings
        partition sizes and label shares closer to target (never creates an edge)."""
        kept = self.partition != REMOVED
        keep_mask = kept[self.indices] & np.repeat(kept, np.diff(self.indptr))
        graph = csr_matrix(
            (keep_mask.astype(np.int8), self.indices.copy(), self.indptr.copy()),
            shape=(self.n, self.n),
        )
        graph.eliminate_zeros()  # csgraph counts explicit zeros as edges
        _, piece = connected_components(graph, directed=False)
        piece = np.where(kept, piece, -1)
        ids, inverse = np.unique(piece[kept], return_inverse=True)
        composition = np.zeros((len(ids), self.n_classes), dtype=np.int64)
        np.add.at(composition, (inverse, self.label[kept]), 1)
        where = np.zeros(len(ids), dtype=np.int64)
        where[inverse] = self.partition[kept]
        counts = self.counts()
        cost = self._imbalance(counts, tolerance)
        sizes = composition.sum(axis=1)
        movable = max(1.0, MOVABLE_PIECE * self.size_target.min())
        order = np.flatnonzero(sizes <= movable)
        order = order[np.argsort(sizes[order], kind="stable")]
        for _ in range(rounds):
            improved = False
            for k in order:
                source = where[k]
                for target in range(len(self.fractions)):
                    if target == source:
                        continue
                    counts[source] -= composition[k]
                    counts[target] += composition[k]
                    new_cost = self._imbalance(counts, tolerance)
                    if new_cost < cost - 1e-12:
                        cost, where[k], source, improved = new_cost, target, target, True
                    else:
                        counts[source] += composition[k]
                        counts[target] -= composition[k]
            if not improved:
                break
        self.partition[kept] = where[inverse]

    def _imbalance(self, counts: np.ndarray, tolerance: float) -> float:
        """How far sizes and label shares are from target; shares beyond half the
        tolerance weigh heavily so moves fix them first."""
        sizes = counts.sum(axis=1)
        size_term = (((sizes - self.size_target) / self.size_target) ** 2).sum()
        shares = counts / np.maximum(sizes, 1)[:, None]
        excess = np.clip(np.abs(shares - self.class_share) - tolerance / 2, 0, None)
        return float(size_term + 1000 * (excess**2).sum())

    def enforce_label_tolerance(self, tolerance: float) -> None:
        """Remove the fewest sequences of over-represented classes until every
        partition's label shares are within the tolerance of the whole."""
        for target in range(len(self.fractions)):
            while True:
                counts = self.counts()[target]
                deviation = counts / max(counts.sum(), 1) - self.class_share
                worst = int(np.argmax(deviation))
                if np.all(np.abs(deviation) <= tolerance) or counts[worst] == 0:
                    break
                members = np.flatnonzero((self.partition == target) & (self.label == worst))
                degree = np.diff(self.indptr)[members]
                v = int(members[np.lexsort((self.priority[members], degree))][0])
                self.partition[v] = REMOVED
                self.reasons[v] = (
                    "label_balance",
                    f"class '{self.class_names[worst]}' over-represented in "
                    f"{PARTITIONS[target]} beyond the label tolerance {tolerance:g}",
                )

    def cross_edges(self) -> int:
        rows = np.repeat(np.arange(self.n), np.diff(self.indptr))
        a, b = self.partition[rows], self.partition[self.indices]
        return int(((a != REMOVED) & (b != REMOVED) & (a != b)).sum() // 2)


def _minimum_vertex_cover(between: csr_matrix) -> np.ndarray:
    """Smallest node set touching every edge of a bipartite graph (rows | columns), as
    positions in rows followed by columns. Koenig's construction: Z = nodes reachable
    from unmatched rows by alternating paths (any edge row -> column, matched edge
    column -> row); the cover is the rows outside Z and the columns inside Z."""
    n_rows, n_columns = between.shape
    match_of_row = maximum_bipartite_matching(between, perm_type="column")
    matched = np.flatnonzero(match_of_row >= 0)
    source = n_rows + n_columns  # one extra node pointing at every unmatched row
    unmatched = np.flatnonzero(match_of_row < 0)
    coo = between.tocoo()
    walk = csr_matrix(
        (
            np.ones(len(coo.row) + len(matched) + len(unmatched)),
            (
                np.r_[coo.row, n_rows + match_of_row[matched], np.full(len(unmatched), source)],
                np.r_[n_rows + coo.col, matched, unmatched],
            ),
        ),
        shape=(source + 1, source + 1),
    )
    reached = np.zeros(source + 1, dtype=bool)
    reached[breadth_first_order(walk, source, directed=True, return_predecessors=False)] = True
    side = np.r_[np.ones(n_rows, dtype=bool), np.zeros(n_columns, dtype=bool)]
    return np.flatnonzero(np.where(side, ~reached[:source], reached[:source]))


def partition_at_random(
    labels: np.ndarray, fractions: tuple[float, ...], rng: np.random.Generator
) -> np.ndarray:
    """Stratified random split: each class cut by the fractions (homology ignored)."""
    partition = np.empty(len(labels), dtype=np.int64)
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        bounds = np.round(np.cumsum(fractions)[:-1] * len(members)).astype(int)
        for code, chunk in enumerate(np.split(members, bounds)):
            partition[chunk] = code
    return partition


def place_groups(
    groups: np.ndarray, labels: np.ndarray, fractions: tuple[float, ...], rng: np.random.Generator
) -> np.ndarray:
    """Cluster-then-split: whole groups (e.g. MMseqs2 clusters), largest first, to the
    partition that most needs their labels. No sequence is removed."""
    class_names, label = np.unique(labels, return_inverse=True)
    size_target = np.asarray(fractions) * len(labels)
    label_room = np.outer(fractions, np.bincount(label)).astype(float)
    room = size_target.copy()
    partition = np.empty(len(labels), dtype=np.int64)
    members = pd.Series(np.arange(len(labels))).groupby(groups).apply(np.asarray)
    tie = rng.permutation(len(members))
    order = sorted(range(len(members)), key=lambda k: (-len(members.iloc[k]), tie[k]))
    for k in order:
        nodes = members.iloc[k]
        composition = np.bincount(label[nodes], minlength=len(class_names))
        filled = np.minimum(composition, np.clip(label_room, 0, None)).sum(axis=1)
        target = int(np.lexsort((-(room / size_target), -filled))[0])
        partition[nodes] = target
        room[target] -= len(nodes)
        label_room[target] -= composition
    return partition


def _predefined(table: pd.DataFrame, column: str | None) -> np.ndarray:
    values = table[column].str.strip().str.lower()
    unknown = sorted(set(values) - set(PARTITION_NAMES))
    if unknown:
        raise InputError(
            f"key 'split.partition_column': column '{column}' has values {unknown[:5]} that are "
            f"not partitions; use train, tune (or validation) and test"
        )
    return values.map(PARTITION_NAMES).map(PARTITIONS.index).to_numpy(dtype=np.int64)


# -- verification and report ---------------------------------------------------------


def verify_no_leakage(
    kept: pd.DataFrame, settings: SplitSettings, threads: int = 1, workdir: Path | None = None
) -> pd.DataFrame:
    """Independent search of every cross-partition pair (test and tune against train,
    test against tune); returns pairs down to `report_from` x threshold so the report
    can state the highest cross-partition identity."""
    exhaustive = len(kept) <= settings.verify_exhaustive_max_sequences
    floor = settings.threshold * settings.verify_report_from
    log.info(
        "verification: %s search of cross-partition pairs, reporting identity >= %.3g",
        "exhaustive" if exhaustive else "prefilter",
        floor,
    )
    return mmseqs.similar_pairs(
        kept,
        settings.sequence_type,
        floor,
        settings.denominator,
        settings.min_coverage,
        workdir=workdir,
        threads=threads,
        exhaustive=exhaustive,
        between="partition",
    )


def _within_partition_identities(pairs: pd.DataFrame, kept: pd.DataFrame) -> pd.Series:
    where = kept.set_index("id")["partition"]
    a, b = pairs["query"].map(where), pairs["target"].map(where)
    return pairs.loc[a.notna() & (a == b), "identity"]


def build_report(
    table: pd.DataFrame,
    kept: pd.DataFrame,
    ledger: pd.DataFrame,
    cross: pd.DataFrame,
    within: pd.Series,
    pairs: pd.DataFrame,
    component: pd.Series,
    settings: SplitSettings,
    exhaustive: bool,
    timings: dict[str, float],
) -> dict[str, Any]:
    """split_report.json: the guarantee, how it was checked, and what it cost."""
    leaks = cross[cross["identity"] >= settings.threshold - 1e-12]
    binary = mmseqs.find_mmseqs()
    labels = sorted(table["label"].unique())
    whole = table["label"].value_counts(normalize=True)
    partitions = {}
    for name in PARTITIONS:
        part = kept[kept["partition"] == name]
        shares = part["label"].value_counts(normalize=True)
        partitions[name] = {
            "sequences": len(part),
            "fraction": len(part) / max(len(kept), 1),
            "label_counts": {lab: int((part["label"] == lab).sum()) for lab in labels},
            "label_shares": {lab: float(shares.get(lab, 0.0)) for lab in labels},
            "max_label_share_deviation": float(
                max(abs(shares.get(lab, 0.0) - whole[lab]) for lab in labels)
            ),
            "length_quartiles": _quartiles(part["sequence"].str.len()),
        }
    removed = ledger["id"]
    removed_labels = table.set_index("id").loc[removed, "label"] if len(removed) else pd.Series()
    return {
        "method": settings.method,
        "guarantee": (
            "no pair of sequences in different partitions has identity at or above "
            f"{settings.threshold:g}"
            if settings.method == "homology"
            else "none (comparison method); leakage is counted below"
        ),
        "identity_definition": settings.identity_definition,
        "comparison": "at or above",
        "threshold": settings.threshold,
        "denominator": settings.denominator,
        "min_coverage": settings.min_coverage,
        "sequence_type": settings.sequence_type,
        "seed": settings.seed,
        "target_fractions": dict(zip(PARTITIONS, settings.fractions, strict=True)),
        "label_tolerance": settings.label_tolerance,
        "mmseqs": {"binary": binary, "version": mmseqs.mmseqs_version(binary)},
        "similarity_search": _search_description(exhaustive, settings.sequence_type),
        "graph": {
            "pairs_at_or_above_threshold": len(pairs),
            "components": int(component.nunique()),
            "largest_component": int(component.value_counts().max()),
            "largest_component_fraction": float(component.value_counts().max() / len(table)),
        },
        "sequences": {
            "input": len(table),
            "kept": len(kept),
            "removed": len(ledger),
            "kept_per_label": {lab: int((kept["label"] == lab).sum()) for lab in labels},
            "removed_per_label": {lab: int((removed_labels == lab).sum()) for lab in labels},
            "removed_per_reason": ledger["reason"].value_counts().to_dict(),
        },
        "label_shares_whole": {lab: float(whole[lab]) for lab in labels},
        "partitions": partitions,
        "labels_within_tolerance": all(
            p["max_label_share_deviation"] <= settings.label_tolerance + 1e-9
            for p in partitions.values()
        ),
        "verification": {
            "search": _search_description(
                len(kept) <= settings.verify_exhaustive_max_sequences, settings.sequence_type
            ),
            "compared": "test vs train, tune vs train, test vs tune",
            "pairs_at_or_above_threshold": len(leaks),
            "pairs_at_or_above_threshold_by_partitions": _leaks_by_partitions(leaks, kept),
            "max_cross_partition_identity": (
                float(cross["identity"].max()) if len(cross) else None
            ),
            "max_cross_partition_identity_note": (
                "highest identity among cross-partition pairs; pairs below "
                f"{settings.threshold * settings.verify_report_from:.3g} are not listed, so null "
                "means every cross-partition pair is below that"
            ),
            "passed": len(leaks) == 0,
        },
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
    }


def _quartiles(lengths: pd.Series) -> list[float] | None:
    """Sequence length quartiles: a homology split can shift lengths between partitions
    (peripheral, loosely connected sequences are often the longer ones), and a reviewer
    should see that next to the scores."""
    return lengths.quantile([0.25, 0.5, 0.75]).tolist() if len(lengths) else None


def _search_description(exhaustive: bool, sequence_type: str) -> str:
    strands = "" if sequence_type == "protein" else "; nucleotides on both strands"
    if exhaustive:
        return (
            "exhaustive: mmseqs align on a generated prefilter listing every pair that can "
            "reach the threshold (a pair is skipped only when its longest common subsequence "
            "is shorter than the identical residues the threshold needs, which proves no "
            f"alignment can reach it), -e inf, --alignment-mode 3{strands}"
        )
    return (
        f"prefilter: mmseqs search -s {mmseqs.PREFILTER_SENSITIVITY} --max-seqs "
        f"{mmseqs.PREFILTER_MAX_SEQS} -e inf (most sensitive settings; distant pairs can be "
        f"missed){strands}"
    )


def _leaks_by_partitions(leaks: pd.DataFrame, kept: pd.DataFrame) -> dict[str, int]:
    where = kept.set_index("id")["partition"]
    a, b = leaks["query"].map(where), leaks["target"].map(where)
    names = [" vs ".join(sorted(pair)) for pair in zip(a, b, strict=True)]
    return pd.Series(names, dtype=str).value_counts().to_dict()


def _write_outputs(
    kept: pd.DataFrame,
    ledger: pd.DataFrame,
    report: dict[str, Any],
    cross: pd.DataFrame,
    within: pd.Series,
    settings: SplitSettings,
    outputs: dict[str, Path],
) -> None:
    columns = [c for c in kept.columns if c != "partition"]
    for name in PARTITIONS:
        write_tsv(outputs[name], kept.loc[kept["partition"] == name, columns])
    write_tsv(outputs["assignments"], kept[["id", "component", "partition"]])
    write_tsv(outputs["dropped"], ledger)
    plot_identities(within, cross["identity"], settings, outputs["figure"])
    write_json(outputs["report"], report)


def plot_identities(
    within: pd.Series, across: pd.Series, settings: SplitSettings, path: Path
) -> None:
    """Histogram of pair identities within partitions vs across partitions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4))
    bins = np.linspace(settings.threshold * settings.verify_report_from, 1, 41)
    ax.hist(
        within,
        bins=bins,
        alpha=0.6,
        label=f"within a partition, at or above the threshold (n={len(within)})",
    )
    ax.hist(across, bins=bins, alpha=0.6, label=f"across partitions (n={len(across)})")
    ax.axvline(
        settings.threshold,
        color="black",
        linestyle="--",
        label=f"threshold {settings.threshold:g} (at or above = homologous)",
    )
    ax.set_xlabel(f"identity (identical residues / {settings.denominator})")
    ax.set_ylabel("sequence pairs")
    ax.set_yscale("log")
    ax.set_title(f"Pair identities, {settings.method} split")
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_write(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=120)
    plt.close(fig)
