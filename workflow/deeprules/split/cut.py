"""Cutting a homology component too large for any one partition.

The partition with the most room keeps the bulk; regions holding the sequences
(per class) the other partitions still need are carved out. Candidate regions
are prefixes of spectral orders (low Laplacian eigenvectors follow loosely
attached lobes) and greedy growth from peripheral seeds. Each candidate's
separator is the smallest possible one, a minimum vertex cover of the edges
leaving the region (Koenig: a maximum matching); the candidate with the fewest
separator sequences per useful sequence wins, and its separator is removed
(each removal goes to the ledger as `homology_cut`).
"""

from __future__ import annotations

import heapq

import numpy as np
from scipy.sparse import csr_matrix, diags
from scipy.sparse.csgraph import breadth_first_order, maximum_bipartite_matching
from scipy.sparse.linalg import eigsh

from deeprules.contracts import PARTITIONS
from deeprules.split.partition import REMOVED, PartitionGraph

# Region growing is repeated from this many seeds per cut; the cut removing the
# fewest sequences wins (deterministic for a given seed).
SEEDS_PER_CUT = 2
# Eigenvectors followed by the spectral sweeps, and regions carved per partition.
SPECTRAL_VECTORS = 5
CARVES_PER_PARTITION = 3


def cut_component(
    graph: PartitionGraph, nodes: np.ndarray, room: np.ndarray, label_room: np.ndarray
) -> None:
    """Cut a too-large component: the partition with the most room takes all it can,
    and only the excess is carved out for the others (in proportion to their room),
    since every carved region costs the removal of its separator."""
    room_left = np.clip(room, 0, None)
    largest = int(np.argmax(room_left))
    wanted = _wanted_from_component(graph, nodes, room_left, label_room, largest)
    available = np.zeros(graph.n, dtype=bool)
    available[nodes] = True
    for target in np.argsort(wanted.sum(axis=1)):
        for _ in range(CARVES_PER_PARTITION):
            need = round(float(wanted[target].sum()))
            if target == largest or need < 1 or not available.any():
                break
            orders = _spectral_orders(graph, np.flatnonzero(available))
            region, separator = _best_region(graph, available, need, wanted[target], orders)
            wanted[target] -= np.bincount(graph.label[region], minlength=graph.n_classes)
            wanted[target] = np.clip(wanted[target], 0, None)
            graph.partition[region] = target
            room[target] -= len(region)
            label_room[target] -= np.bincount(graph.label[region], minlength=graph.n_classes)
            available[region] = False
            available[separator] = False
            need -= len(region)
            for node in separator:
                graph.reasons[int(node)] = (
                    "homology_cut",
                    f"in a homology component of {len(nodes)} sequences, too large for one "
                    f"partition; removed so that no pair at or above the threshold crosses "
                    f"from {PARTITIONS[target]} to another partition",
                )
    rest = np.flatnonzero(available)
    graph.partition[rest] = largest
    room[largest] -= len(rest)
    label_room[largest] -= np.bincount(graph.label[rest], minlength=graph.n_classes)


def _wanted_from_component(
    graph: PartitionGraph,
    nodes: np.ndarray,
    room: np.ndarray,
    label_room: np.ndarray,
    largest: int,
) -> np.ndarray:
    """Sequences of each class each partition must take from this component: its label
    room minus what the sequences not yet placed can supply (shared by room). The
    partition with the most room takes the rest of the component, so it wants none."""
    unplaced = graph.partition == REMOVED
    unplaced[nodes] = False
    unplaced[list(graph.reasons)] = False
    outside = np.bincount(graph.label[unplaced], minlength=graph.n_classes)
    supply = np.outer(room / max(room.sum(), 1), outside)
    wanted = np.clip(label_room - supply, 0, None)
    wanted[largest] = 0
    return wanted


def _best_region(
    graph: PartitionGraph,
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
    wanted = np.clip(label_room, 0, None)
    candidates = [_best_prefix(graph, order, available, low, high, wanted) for order in orders]
    degree = np.array([available[graph.neighbours(v)].sum() for v in pool])
    for seed in pool[np.lexsort((graph.priority[pool], degree))][:SEEDS_PER_CUT]:
        region, separator = _grow_region(graph, available, int(seed), need, label_room)
        candidates.append((_cost(graph, region, separator, wanted), region, separator))
    candidates = [
        _smallest_separator(graph, region, available, wanted)
        for _, region, _ in candidates
        if len(region)
    ]
    _, region, separator = min(candidates, key=lambda c: (c[0], -len(c[1])))
    return region, separator


def _smallest_separator(
    graph: PartitionGraph, region: np.ndarray, available: np.ndarray, wanted: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    """The fewest sequences to remove so that no edge joins `region` to the rest of the
    pool: a minimum vertex cover of the edges between them, which for this bipartite
    graph a maximum matching gives exactly (Koenig's theorem). It may take sequences
    from inside the region and from outside, and is never larger than either boundary."""
    inside = np.zeros(graph.n, dtype=bool)
    inside[region] = True
    rest = np.flatnonzero(available & ~inside)
    between = _subgraph(graph, region, rest)
    cover = region[:0]
    if between.nnz:
        cover = np.r_[region, rest][minimum_vertex_cover(between)]
    core = region[~np.isin(region, cover)]
    return _cost(graph, core, cover, wanted), core, cover


def _cost(
    graph: PartitionGraph, region: np.ndarray, separator: np.ndarray, wanted: np.ndarray
) -> float:
    """Separator nodes per useful region node (a node is useful while its class is
    still wanted by the partition)."""
    counts = np.bincount(graph.label[region], minlength=graph.n_classes)
    useful = np.minimum(counts, wanted).sum()
    return len(separator) / useful if useful else np.inf


def _spectral_orders(graph: PartitionGraph, pool: np.ndarray) -> list[np.ndarray]:
    """Orders of the pool nodes along the first non-trivial eigenvectors, both ways."""
    if len(pool) <= SPECTRAL_VECTORS + 2:
        return []
    sub = _subgraph(graph, pool, pool)
    degree = np.asarray(sub.sum(axis=1)).ravel()
    scale = diags(1 / np.sqrt(np.maximum(degree, 1)))
    start = np.random.default_rng(int(graph.priority[0])).random(len(pool)) + 1
    _, vectors = eigsh(scale @ sub @ scale, k=SPECTRAL_VECTORS + 1, which="LA", v0=start, tol=1e-3)
    orders = []
    for k in range(SPECTRAL_VECTORS):  # eigsh sorts ascending; the last is trivial
        coordinate = scale @ vectors[:, k]
        order = pool[np.lexsort((graph.priority[pool], coordinate))]
        orders += [order, order[::-1]]
    return orders


def _subgraph(graph: PartitionGraph, rows: np.ndarray, columns: np.ndarray) -> csr_matrix:
    """Edges from `rows` to `columns` as a len(rows) x len(columns) matrix."""
    return graph.edges[rows][:, columns]


def _best_prefix(
    graph: PartitionGraph,
    order: np.ndarray,
    available: np.ndarray,
    low: int,
    high: int,
    wanted: np.ndarray,
) -> tuple[float, np.ndarray, np.ndarray]:
    """The prefix of `order` (length low..high) with the lowest `_cost`, all prefixes
    scored at once: a node outside the prefix is in its separator from the first
    prefix that contains one of its neighbours until the prefix contains it."""
    order = order[available[order]][:high]
    length = len(order)
    never = np.iinfo(np.int64).max // 2
    rank = np.full(graph.n, never, dtype=np.int64)
    rank[order] = np.arange(length)
    neighbour_rank = np.where(available[graph.indices], rank[graph.indices], never)
    touch = np.full(graph.n, never, dtype=np.int64)
    has = np.diff(graph.indptr) > 0
    touch[has] = np.minimum.reduceat(neighbour_rank, graph.indptr[:-1][has])
    first = touch + 1  # separator for prefix lengths first..last
    last = np.minimum(rank, length)
    spans = available & (first <= last)
    change = np.zeros(length + 2, dtype=np.int64)
    np.add.at(change, first[spans], 1)
    np.add.at(change, last[spans] + 1, -1)
    separator = np.cumsum(change)[1 : length + 1]
    one_hot = np.eye(graph.n_classes, dtype=np.int64)[graph.label[order]]
    useful = np.minimum(np.cumsum(one_hot, axis=0), wanted).sum(axis=1)
    cost = np.where(useful > 0, separator / np.maximum(useful, 1), np.inf)
    cost[: max(low, 1) - 1] = np.inf
    best = int(np.argmin(cost)) + 1
    if not np.isfinite(cost[best - 1]):
        return np.inf, order[:0], order[:0]
    region_separator = np.flatnonzero(available & (touch < best) & (rank >= best))
    return float(cost[best - 1]), order[:best], region_separator


def _grow_region(
    graph: PartitionGraph, available: np.ndarray, seed: int, size: int, label_room: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy region growing: always add the frontier node with the fewest untouched
    neighbours (the separator grows least), preferring labels the region still lacks.
    The frontier left at the end is the separator to remove."""
    untouched, frontier, inside = 0, 1, 2
    state = np.where(available, untouched, -1)
    wanted = np.clip(label_room, 0, None).astype(np.int64)
    heap: list[tuple[int, int, int, int]] = []

    def key(v: int) -> tuple[int, int, int, int]:
        new = int((state[graph.neighbours(v)] == untouched).sum())
        return (new, 0 if wanted[graph.label[v]] > 0 else 1, int(graph.priority[v]), v)

    region: list[int] = []
    state[seed] = frontier
    heapq.heappush(heap, key(seed))
    while len(region) < size:
        if not heap:
            rest = np.flatnonzero(state == untouched)
            if len(rest) == 0:
                break
            seed = int(rest[np.argmin(graph.priority[rest])])
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
        wanted[graph.label[v]] -= 1
        for w in graph.neighbours(v):
            if state[w] == untouched:
                state[w] = frontier
                heapq.heappush(heap, key(int(w)))
    return np.array(region, dtype=np.int64), np.flatnonzero(state == frontier)


def minimum_vertex_cover(between: csr_matrix) -> np.ndarray:
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
