"""Cutting a homology component too large for any one partition.

The partition with the most room keeps the bulk; regions holding the sequences
(per group: label, and label x covariate stratum) the other partitions still
need are carved out (candidates: deeprules.split.regions). The candidate with
the fewest separator sequences per useful sequence wins, and its separator is
removed (each removal goes to the ledger as `homology_cut`).

Balancing the label alone, a few large regions per partition suffice (three,
each at least a quarter of what the partition needs). Balancing strata, a
partition needs sequences from every part of the length distribution, and the
cheap lobes of a component are rarely of every length (on amp the loosely
attached lobes are long sequences, the short peptides a dense core), so the
partitions take turns carving many small regions, each the cheapest for the
strata still missing, until a region would cost more removals than it brings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from deeprules.contracts import PARTITIONS
from deeprules.split.partition import REMOVED, PartitionGraph
from deeprules.split.regions import (
    best_clusters,
    best_prefix,
    cluster_labels,
    grow_region,
    region_cost,
    smallest_separator,
    spectral_orders,
)


@dataclass(frozen=True)
class CarvePlan:
    """How a too-large component is carved (see the module docstring)."""

    carves_per_partition: int
    smallest_region: float  # a region holds at least this share of what the partition needs
    max_cost: float  # a partition stops carving when its best region costs more
    take_turns: bool  # partitions alternate, the one missing most (relatively) first
    clusters: bool  # spectral clusters among the candidates
    refresh_orders: int  # spectral orders recomputed every this many carves
    growth_seeds: int  # greedy region growth from this many peripheral seeds per carve


LABEL_ONLY = CarvePlan(3, 0.25, math.inf, False, False, 1, 2)
STRATIFIED = CarvePlan(60, 0.0, 1.5, True, True, 5, 0)


def cut_component(
    graph: PartitionGraph, nodes: np.ndarray, room: np.ndarray, group_room: np.ndarray
) -> None:
    """Cut a too-large component: the partition with the most room takes all it can,
    and only the excess is carved out for the others (in proportion to their room),
    since every carved region costs the removal of its separator."""
    plan = STRATIFIED if graph.strata.n_blocks > 1 else LABEL_ONLY
    room_left = np.clip(room, 0, None)
    largest = int(np.argmax(room_left))
    wanted = _wanted_from_component(graph, nodes, room_left, group_room, largest)
    available = np.zeros(graph.n, dtype=bool)
    available[nodes] = True
    clusterings = cluster_labels(graph, nodes, int(graph.priority[0])) if plan.clusters else []
    active = [int(p) for p in np.argsort(wanted.sum(axis=1)) if p != largest]
    carved = dict.fromkeys(active, 0)
    orders: list[np.ndarray] = []
    since_orders = plan.refresh_orders
    while active and available.any():
        target = active[0]
        if plan.take_turns:
            target = max(active, key=lambda p: graph.sizes(wanted[p]) / graph.size_target[p])
        need = round(float(graph.sizes(wanted[target])))
        if need < 1 or carved[target] >= plan.carves_per_partition:
            active.remove(target)
            continue
        if since_orders >= plan.refresh_orders:
            orders, since_orders = spectral_orders(graph, np.flatnonzero(available)), 0
        since_orders += 1
        carved[target] += 1
        region, separator = _best_region(
            graph, available, need, wanted[target], orders, clusterings, plan
        )
        if not len(region):
            active.remove(target)
            continue
        composition = graph.composition(region)
        wanted[target] = np.clip(wanted[target] - composition, 0, None)
        graph.partition[region] = target
        room[target] -= len(region)
        group_room[target] -= composition
        available[region] = False
        available[separator] = False
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
    group_room[largest] -= graph.composition(rest)


def _wanted_from_component(
    graph: PartitionGraph,
    nodes: np.ndarray,
    room: np.ndarray,
    group_room: np.ndarray,
    largest: int,
) -> np.ndarray:
    """Sequences of each group each partition must take from this component: its group
    room minus what the sequences not yet placed can supply (shared by room). The
    partition with the most room takes the rest of the component, so it wants none."""
    unplaced = graph.partition == REMOVED
    unplaced[nodes] = False
    unplaced[list(graph.reasons)] = False
    outside = graph.composition(unplaced)
    supply = np.outer(room / max(room.sum(), 1), outside)
    wanted = np.clip(group_room - supply, 0, None)
    wanted[largest] = 0
    return wanted


def _best_region(
    graph: PartitionGraph,
    available: np.ndarray,
    need: int,
    group_room: np.ndarray,
    orders: list[np.ndarray],
    clusterings: list[np.ndarray],
    plan: CarvePlan,
) -> tuple[np.ndarray, np.ndarray]:
    """The region of about `need` nodes (plan.smallest_region to 115 %) with the fewest
    separator nodes per useful region node, among spectral sweeps, greedy growth from
    several seeds and (plan.clusters) spectral clusters; empty if the best costs more
    than plan.max_cost.

    Spectral sweeps follow the low eigenvectors of the normalised graph Laplacian,
    which run along loosely attached lobes of a component: a prefix of that order
    is a lobe, and its separator (the nodes outside it adjacent to it) is small.
    """
    pool = np.flatnonzero(available)
    low = max(1, int(need * plan.smallest_region))
    high = max(1, int(need * 1.15))
    wanted = np.clip(group_room, 0, None)
    candidates = [best_prefix(graph, order, available, low, high, wanted) for order in orders]
    degree = (graph.edges @ available.astype(np.float64))[pool]  # available neighbours
    for seed in pool[np.lexsort((graph.priority[pool], degree))][: plan.growth_seeds]:
        region, separator = grow_region(graph, available, int(seed), need, group_room)
        candidates.append((region_cost(graph, region, separator, wanted), region, separator))
    candidates = [
        smallest_separator(graph, region, available, wanted)
        for _, region, _ in candidates
        if len(region)
    ]
    candidates += best_clusters(graph, clusterings, available, high, wanted)
    if not candidates:  # a small pool: no spectral orders, no clusters
        return pool[:0], pool[:0]
    cost, region, separator = min(candidates, key=lambda c: (c[0], -len(c[1])))
    if cost > plan.max_cost:
        return region[:0], separator[:0]
    return region, separator
