"""Refining a stratified partition one separator sequence at a time.

Carving (deeprules.split.cut) picks whole regions; what it leaves is close to,
but rarely at, the best trade between sequences removed and strata balanced.
This is the vertex-separator form of Fiduccia-Mattheyses refinement (as in
METIS): a removed sequence moves into a partition, and its neighbours in the
other partitions are removed instead, so no edge ever crosses; each pass makes
the best move even when it costs, never moves a sequence twice, and keeps the
best state seen, which lets a region grow through a dense family that no single
improving move can enter. The cost of a state is the number of sequences
removed plus those the tolerances would still cost to remove
(PartitionGraph.balance_cost), so refining trades separators against the
balance removals they save.
"""

from __future__ import annotations

import logging

import numpy as np

from deeprules.split.partition import REMOVED, PartitionGraph

log = logging.getLogger("deeprules.split")

# Passes over the separator, and how many moves without a new best end a pass.
PASSES = 8
PATIENCE = 200


def refine(graph: PartitionGraph, tolerances: np.ndarray) -> None:
    """Passes of single-sequence moves out of the separator, each rolled back to its best."""
    for _ in range(PASSES):
        start, best = _one_pass(graph, tolerances)
        if best >= start - 1e-9:
            break


def _one_pass(graph: PartitionGraph, tolerances: np.ndarray) -> tuple[float, float]:
    """One pass; the graph is left in the best state seen. Returns the cost before and after."""
    partition = graph.partition.copy()
    moved = np.zeros(graph.n, dtype=bool)
    connected = np.diff(graph.indptr) > 0
    counts = graph.counts()
    removed = int((partition == REMOVED).sum())
    cost = removed + graph.balance_cost(counts, tolerances)
    start = best = cost
    best_partition, since_best = partition.copy(), 0
    while since_best < PATIENCE:
        candidates = np.flatnonzero((partition == REMOVED) & ~moved & connected)
        if not len(candidates):
            break
        costs, after = _move_costs(graph, partition, candidates, counts, removed, tolerances)
        tie = 1e-9 * graph.priority[candidates][:, None]  # deterministic choice among equals
        row, target = np.unravel_index(np.argmin(costs + tie), costs.shape)
        v = int(candidates[row])
        neighbours = graph.neighbours(v)
        pulled = neighbours[(partition[neighbours] != REMOVED) & (partition[neighbours] != target)]
        partition[pulled] = REMOVED
        partition[v] = target
        moved[v] = True
        counts, removed, cost = after[row, target], removed - 1 + len(pulled), costs[row, target]
        if cost < best - 1e-9:
            best, best_partition, since_best = cost, partition.copy(), 0
        else:
            since_best += 1
    _apply(graph, best_partition)
    return float(start), float(best)


def _move_costs(
    graph: PartitionGraph,
    partition: np.ndarray,
    candidates: np.ndarray,
    counts: np.ndarray,
    removed: int,
    tolerances: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Cost after moving each candidate into each partition (candidates x partitions), and
    the group counts after (candidates x partitions x partitions x groups)."""
    n_parts = len(graph.fractions)
    in_part = (partition[:, None] == np.arange(n_parts)).astype(np.float64)
    rows = graph.edges[candidates]
    neighbours_in = rows @ in_part  # candidates x partitions
    groups_in = np.stack([rows @ (graph.member * in_part[:, [q]]) for q in range(n_parts)], axis=1)
    others = 1 - np.eye(n_parts)  # moving into p pulls the neighbours in every q != p
    after = counts[None, None] - groups_in[:, None] * others[None, :, :, None]
    after[:, np.arange(n_parts), np.arange(n_parts)] += graph.member[candidates][:, None]
    pulled = neighbours_in.sum(axis=1, keepdims=True) - neighbours_in
    return removed - 1 + pulled + graph.balance_cost(after, tolerances), after


def _apply(graph: PartitionGraph, partition: np.ndarray) -> None:
    """Take the refined partition; newly removed sequences go to the ledger."""
    for v in np.flatnonzero(partition != graph.partition):
        if partition[v] == REMOVED:
            graph.reasons[int(v)] = (
                "homology_cut",
                "in a homology component too large for one partition; removed so that no "
                "pair at or above the threshold crosses between partitions (separator "
                "refined for covariate balance)",
            )
        else:
            graph.reasons.pop(int(v), None)
    graph.partition = partition
