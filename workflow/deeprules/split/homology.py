"""The homology method: partitions with no edge of the homology graph between them.

Components go whole to a partition where they fit; only a component too large
for every partition is cut (deeprules.split.cut), removing as few sequences as
it can. Several attempts with derived seeds; the one keeping most sequences wins.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from deeprules.split.cut import cut_component
from deeprules.split.partition import REMOVED, PartitionGraph
from deeprules.split.refine import refine
from deeprules.split.strata import Strata
from deeprules.split.tolerance import enforce_tolerances

log = logging.getLogger("deeprules.split")

# Whole partitioning attempts with different derived seeds; the one keeping most wins.
RESTARTS = 3
# With strata, a component is cut when more than this share of it is surplus (beyond
# its best partition's room for its strata).
CUT_SURPLUS = 0.1


def partition_by_homology(
    adjacency: csr_matrix,
    labels: np.ndarray,
    fractions: tuple[float, ...],
    tolerances: np.ndarray,
    rng: np.random.Generator,
    strata: Strata | None = None,
    acceptable: Callable[[np.ndarray], bool] | None = None,
    restarts: int = RESTARTS,
) -> tuple[np.ndarray, dict[int, tuple[str, str]]]:
    """Partition code per node (REMOVED for removed nodes) with no edge between partitions,
    and the reason for each removal.

    Groups are the labels, or with `strata` the labels and label x covariate strata;
    `tolerances` holds the largest allowed share deviation per block of groups
    (label first). The best of `restarts` attempts (seeds drawn from `rng`) is returned:
    the one keeping most among those `acceptable` accepts (the shift gate: counts of
    strata do not bound the shift of lengths within them, and attempts differ), else
    the one keeping most.

    1. Components are placed whole, largest first, where they fit; a component
       larger than every partition's remaining room is cut (deeprules.split.cut).
    2. Removed nodes whose kept neighbours all sit in one partition go back in.
    3. Whole components of the kept graph move between partitions to bring
       sizes and group shares to target; with strata, single separator sequences
       then move too (deeprules.split.refine).
    4. If a share is still outside its tolerance, the fewest sequences needed are
       removed to restore it (deeprules.split.tolerance).
    """
    best = None
    for seed in rng.integers(0, 2**32, size=restarts):
        graph = PartitionGraph(adjacency, labels, fractions, np.random.default_rng(seed), strata)
        place_components(graph)
        graph.reinsert_removed(tolerances)
        graph.rebalance(tolerances)
        if graph.strata.n_blocks > 1:
            refine(graph, tolerances)
        enforce_tolerances(graph, tolerances)
        graph.reinsert_removed(tolerances)
        if graph.cross_edges():
            raise AssertionError("partitioning left a cross-partition edge")  # cannot happen
        kept = int((graph.partition != REMOVED).sum())
        accepted = acceptable is None or acceptable(graph.partition)
        log.info(
            "partition attempt: %d of %d sequences kept%s",
            kept,
            len(labels),
            "" if accepted else " (shift gate exceeded)",
        )
        if best is None or (accepted, kept) > best[0]:
            best = ((accepted, kept), graph)
    assert best is not None
    return best[1].partition, best[1].reasons


def place_components(graph: PartitionGraph) -> None:
    """Largest component first: whole where it fits, else cut (see `cut_component`).

    With strata a component also "does not fit" when its best partition has no room
    for a large part of one of its strata: a dense family of short peptides fits in
    train by size, but then tune and test get none, so it is cut as well."""
    _, component = connected_components(graph.edges, directed=False)
    members = pd.Series(np.arange(graph.n)).groupby(component).apply(np.asarray)
    order = sorted(members.index, key=lambda c: (-len(members[c]), graph.priority[members[c][0]]))
    room = graph.size_target.copy()
    group_room = graph.group_target.copy()
    for c in order:
        nodes = members[c]
        composition = graph.composition(nodes)
        target = graph.best_partition(composition, room, group_room)
        fits = len(nodes) <= room.max() + 0.5 and (
            graph.surplus(composition, group_room[target]) <= CUT_SURPLUS * len(nodes)
        )
        if fits or len(nodes) == 1:
            graph.partition[nodes] = target
            room[target] -= len(nodes)
            group_room[target] -= composition
        else:
            cut_component(graph, nodes, room, group_room)
