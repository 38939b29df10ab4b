"""Candidate regions to carve out of a homology component, and their smallest separators.

A region is a set of sequences one partition takes from a component too large
for one partition; its separator is what must be removed so that no edge joins
it to the rest. Candidates: prefixes of spectral orders (low Laplacian
eigenvectors follow loosely attached lobes), greedy growth from peripheral
seeds, and, when strata are balanced, clusters of a spectral embedding (the
loosely attached groups *inside* a dense region, e.g. a family of short
peptides, which no single eigenvector separates). Each candidate's separator is
the smallest possible one, a minimum vertex cover of the edges leaving it
(Koenig: a maximum matching).
"""

from __future__ import annotations

import heapq

import numpy as np
from scipy.cluster.vq import kmeans2
from scipy.sparse import csr_matrix, diags
from scipy.sparse.csgraph import breadth_first_order, maximum_bipartite_matching
from scipy.sparse.linalg import eigsh

from deeprules.split.partition import PartitionGraph

# Eigenvectors followed by the spectral sweeps.
SPECTRAL_VECTORS = 5
# Spectral embedding for the cluster candidates: dimensions, and the mean cluster
# sizes tried (several granularities, since lobes come in every size).
EMBEDDING_DIMENSIONS = 40
CLUSTER_SIZES = (128, 64, 32)
# Clusters whose separator is computed exactly per carve (the rest are ranked by a bound).
CLUSTERS_TRIED = 6


def smallest_separator(
    graph: PartitionGraph, region: np.ndarray, available: np.ndarray, wanted: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    """The fewest sequences to remove so that no edge joins `region` to the rest of the
    pool: a minimum vertex cover of the edges between them, which for this bipartite
    graph a maximum matching gives exactly (Koenig's theorem). It may take sequences
    from inside the region and from outside, and is never larger than either boundary."""
    inside = np.zeros(graph.n, dtype=bool)
    inside[region] = True
    rest = np.flatnonzero(available & ~inside)
    between = subgraph(graph, region, rest)
    cover = region[:0]
    if between.nnz:
        cover = np.r_[region, rest][minimum_vertex_cover(between)]
    core = region[~np.isin(region, cover)]
    return region_cost(graph, core, cover, wanted), core, cover


def region_cost(
    graph: PartitionGraph, region: np.ndarray, separator: np.ndarray, wanted: np.ndarray
) -> float:
    """Separator nodes per useful region node (a node is useful while its class is
    still wanted by the partition)."""
    useful, surplus = graph.usefulness(graph.composition(region), wanted)
    return float((len(separator) + surplus) / useful) if useful else np.inf


def spectral_orders(graph: PartitionGraph, pool: np.ndarray) -> list[np.ndarray]:
    """Orders of the pool nodes along the first non-trivial eigenvectors, both ways."""
    if len(pool) <= SPECTRAL_VECTORS + 2:
        return []
    sub = subgraph(graph, pool, pool)
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


def subgraph(graph: PartitionGraph, rows: np.ndarray, columns: np.ndarray) -> csr_matrix:
    """Edges from `rows` to `columns` as a len(rows) x len(columns) matrix."""
    return graph.edges[rows][:, columns]


def best_prefix(
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
    useful, surplus = graph.usefulness(np.cumsum(graph.member[order], axis=0), wanted)
    cost = np.where(useful > 0, (separator + surplus) / np.maximum(useful, 1), np.inf)
    cost[: max(low, 1) - 1] = np.inf
    best = int(np.argmin(cost)) + 1
    if not np.isfinite(cost[best - 1]):
        return np.inf, order[:0], order[:0]
    region_separator = np.flatnonzero(available & (touch < best) & (rank >= best))
    return float(cost[best - 1]), order[:best], region_separator


def grow_region(
    graph: PartitionGraph, available: np.ndarray, seed: int, size: int, group_room: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy region growing: always add the frontier node with the fewest untouched
    neighbours (the separator grows least), preferring groups the region still lacks.
    The frontier left at the end is the separator to remove."""
    untouched, frontier, inside = 0, 1, 2
    state = np.where(available, untouched, -1)
    wanted = np.clip(group_room, 0, None).astype(np.int64)
    heap: list[tuple[int, int, int, int]] = []

    def key(v: int) -> tuple[int, int, int, int]:
        new = int((state[graph.neighbours(v)] == untouched).sum())
        lacking = int(((wanted > 0) & (graph.member[v] > 0)).sum())
        return (new, graph.strata.n_blocks - lacking, int(graph.priority[v]), v)

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
        wanted -= graph.member[v]
        for w in graph.neighbours(v):
            if state[w] == untouched:
                state[w] = frontier
                heapq.heappush(heap, key(int(w)))
    return np.array(region, dtype=np.int64), np.flatnonzero(state == frontier)


def cluster_labels(graph: PartitionGraph, pool: np.ndarray, seed: int) -> list[np.ndarray]:
    """Clusterings of the pool (one label per node, -1 outside the pool) at several
    granularities: k-means on a spectral embedding (normalised-adjacency
    eigenvectors, rows scaled to unit length), so each cluster is a group of
    sequences more connected inside than out, wherever it sits in the component."""
    dimensions = min(EMBEDDING_DIMENSIONS, len(pool) - 2)
    if dimensions < 2:
        return []
    sub = subgraph(graph, pool, pool)
    degree = np.asarray(sub.sum(axis=1)).ravel()
    scale = diags(1 / np.sqrt(np.maximum(degree, 1)))
    rng = np.random.default_rng(seed)
    start = rng.random(len(pool)) + 1
    _, vectors = eigsh(scale @ sub @ scale, k=dimensions, which="LA", v0=start, tol=1e-3)
    embedding = scale @ vectors
    embedding /= np.maximum(np.linalg.norm(embedding, axis=1, keepdims=True), 1e-12)
    clusterings = []
    for size in CLUSTER_SIZES:
        k = len(pool) // size
        if k < 2:
            continue
        _, label = kmeans2(embedding, k, minit="++", rng=rng)
        full = np.full(graph.n, -1, dtype=np.int64)
        full[pool] = label
        clusterings.append(full)
    return clusterings


def best_clusters(
    graph: PartitionGraph,
    clusterings: list[np.ndarray],
    available: np.ndarray,
    high: int,
    wanted: np.ndarray,
) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """The CLUSTERS_TRIED most promising clusters (available part, at most `high`
    nodes) with their exact smallest separators. Ranked first by a bound: a region's
    smallest separator is no larger than its inner or its outer boundary."""
    scored = []
    rows = graph.rows
    live = available[rows] & available[graph.indices]
    for label in clusterings:
        label = np.where(available, label, -1)
        k = int(label.max()) + 1
        if k < 1:
            continue
        a, b = rows[live], graph.indices[live]
        crossing = (label[a] != label[b]) & (label[a] >= 0)
        inner = np.bincount(label[np.unique(a[crossing])], minlength=k)
        outer_pairs = np.unique(label[a[crossing]] * graph.n + b[crossing])
        outer = np.bincount(outer_pairs // graph.n, minlength=k)
        composition = np.zeros((k, graph.n_groups), dtype=np.int64)
        inside = label >= 0
        np.add.at(composition, label[inside], graph.member[inside])
        useful, surplus = graph.usefulness(composition, wanted)
        bound = (np.minimum(inner, outer) + surplus) / np.maximum(useful, 1e-12)
        sizes = graph.sizes(composition)
        for c in np.flatnonzero((sizes > 0) & (sizes <= high) & (useful > 0)):
            scored.append((float(bound[c]), label, int(c)))
    scored.sort(key=lambda item: item[0])
    return [
        smallest_separator(graph, np.flatnonzero(label == c), available, wanted)
        for _, label, c in scored[:CLUSTERS_TRIED]
    ]


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
