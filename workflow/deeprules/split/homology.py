"""The homology method: partitions with no edge of the homology graph between them.

Components go whole to a partition where they fit; only a component too large
for every partition is cut (deeprules.split.cut), removing as few sequences as
it can. Several attempts with derived seeds; the one keeping most sequences wins.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context

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
    workers: int = 1,
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

    Attempts are independent, so `workers` processes run them side by side; the
    seeds and the choice do not depend on `workers`, nor does the result.
    """
    problem = _Problem(adjacency, labels, fractions, tolerances, strata, acceptable)
    seeds = rng.integers(0, 2**32, size=restarts)
    if workers > 1 and restarts > 1:
        with ProcessPoolExecutor(
            min(workers, restarts),
            mp_context=get_context("fork"),  # the problem is inherited, not pickled
            initializer=_inherit,
            initargs=(problem,),
        ) as pool:
            attempts = list(pool.map(_attempt, seeds))
    else:
        attempts = [problem.attempt(seed) for seed in seeds]
    best = None
    for attempt in attempts:  # in seed order: the first of equally good attempts wins
        log.info(
            "partition attempt: %d of %d sequences kept%s",
            attempt.kept,
            len(labels),
            "" if attempt.accepted else " (shift gate exceeded)",
        )
        if best is None or (attempt.accepted, attempt.kept) > (best.accepted, best.kept):
            best = attempt
    assert best is not None
    return best.partition, best.reasons


@dataclass(frozen=True)
class _Attempt:
    partition: np.ndarray
    reasons: dict[int, tuple[str, str]]
    kept: int
    accepted: bool


@dataclass(frozen=True)
class _Problem:
    """What every attempt shares; an attempt differs only by its seed."""

    adjacency: csr_matrix
    labels: np.ndarray
    fractions: tuple[float, ...]
    tolerances: np.ndarray
    strata: Strata | None
    acceptable: Callable[[np.ndarray], bool] | None

    def attempt(self, seed: int) -> _Attempt:
        graph = PartitionGraph(
            self.adjacency, self.labels, self.fractions, np.random.default_rng(seed), self.strata
        )
        place_components(graph)
        graph.reinsert_removed(self.tolerances)
        graph.rebalance(self.tolerances)
        if graph.strata.n_blocks > 1:
            refine(graph, self.tolerances)
        enforce_tolerances(graph, self.tolerances)
        graph.reinsert_removed(self.tolerances)
        if graph.cross_edges():
            raise AssertionError("partitioning left a cross-partition edge")  # cannot happen
        return _Attempt(
            graph.partition,
            graph.reasons,
            int((graph.partition != REMOVED).sum()),
            self.acceptable is None or self.acceptable(graph.partition),
        )


_INHERITED: list[_Problem] = []  # a worker process's problem, set once when it starts


def _inherit(problem: _Problem) -> None:
    _INHERITED[:] = [problem]


def _attempt(seed: int) -> _Attempt:
    return _INHERITED[0].attempt(seed)


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
