"""The homology method: partitions with no edge of the homology graph between them.

Components go whole to a partition where they fit; only a component too large
for every partition is cut (deeprules.split.cut), removing as few sequences as
it can. Several attempts with derived seeds; the one keeping most sequences wins.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from deeprules.split.cut import cut_component
from deeprules.split.partition import REMOVED, PartitionGraph

log = logging.getLogger("deeprules.split")

# Whole partitioning attempts with different derived seeds; the one keeping most wins.
RESTARTS = 3


def partition_by_homology(
    adjacency: csr_matrix,
    labels: np.ndarray,
    fractions: tuple[float, ...],
    tolerance: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, dict[int, tuple[str, str]]]:
    """Partition code per node (REMOVED for removed nodes) with no edge between partitions,
    and the reason for each removal.

    The best of RESTARTS attempts (seeds drawn from `rng`) is returned.

    1. Components are placed whole, largest first, where they fit; a component
       larger than every partition's remaining room is cut (deeprules.split.cut).
    2. Removed nodes whose kept neighbours all sit in one partition go back in.
    3. Whole components of the kept graph move between partitions to bring
       sizes and label shares to target; if a label share is still outside the
       tolerance, the fewest sequences needed are removed to restore it.
    """
    best = None
    for seed in rng.integers(0, 2**32, size=RESTARTS):
        graph = PartitionGraph(adjacency, labels, fractions, np.random.default_rng(seed))
        place_components(graph)
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


def place_components(graph: PartitionGraph) -> None:
    """Largest component first: whole where it fits, else cut (see `cut_component`)."""
    _, component = connected_components(graph.edges, directed=False)
    members = pd.Series(np.arange(graph.n)).groupby(component).apply(np.asarray)
    order = sorted(members.index, key=lambda c: (-len(members[c]), graph.priority[members[c][0]]))
    room = graph.size_target.copy()
    label_room = graph.label_target.copy()
    for c in order:
        nodes = members[c]
        composition = np.bincount(graph.label[nodes], minlength=graph.n_classes)
        if len(nodes) <= room.max() + 0.5 or len(nodes) == 1:
            target = graph.best_partition(composition, room, label_room)
            graph.partition[nodes] = target
            room[target] -= len(nodes)
            label_room[target] -= composition
        else:
            cut_component(graph, nodes, room, label_room)
