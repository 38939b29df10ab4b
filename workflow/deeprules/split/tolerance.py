"""The fewest removals that bring every partition's group shares within tolerance.

After placement and rebalancing (deeprules.split.partition) a partition can
still hold too many of one class or stratum. Removing sequences is the last
resort, so it is exact: per partition, sequences are grouped into cells (the
same label and the same stratum in every block), and an integer programme
(scipy.optimize.milp, HiGHS) keeps the most sequences such that every group's
share is within its block's tolerance of the whole data set's. Within a cell
the least connected sequences go first (ties by the seeded priority).

One programme over every block (balancing the label first and the strata after
would remove more); the ledger still says why: of a class's removals, as many as
the label tolerance alone would need are `label_balance`, the rest
`covariate_balance`. When a partition lacks a
stratum almost entirely, only removing most of the partition could lift that
stratum's share; such a partition is left as it is (a warning is logged) and
the report shows the deviation that remains.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

from deeprules.contracts import PARTITIONS
from deeprules.split.partition import REMOVED, PartitionGraph

log = logging.getLogger("deeprules.split")

# A stage removes at most this share of a partition; a partition that would need more
# (it lacks a stratum almost entirely) is left as it is and the report shows its shares.
MAX_REMOVED = 0.5
# The programme's tolerances are tightened by this much, so that the solver's own
# feasibility tolerance cannot accept a share a hair beyond the configured one.
SLACK = 1e-9


def enforce_tolerances(graph: PartitionGraph, tolerances: np.ndarray) -> None:
    """Remove the fewest sequences so every group share is within its tolerance."""
    for target in range(len(graph.fractions)):
        _remove_to_tolerance(graph, target, tolerances)


def _remove_to_tolerance(graph: PartitionGraph, target: int, tolerances: np.ndarray) -> None:
    """One partition: the programme over every block decides how many to keep per cell;
    of each class's removals, as many as the label tolerance alone would need are
    `label_balance`, the rest `covariate_balance`."""
    members = np.flatnonzero(graph.partition == target)
    if not len(members):
        return
    cells, cell_of = np.unique(graph.member[members], axis=0, return_inverse=True)
    available = np.bincount(cell_of, minlength=len(cells))
    limit = tolerances[graph.strata.block] - SLACK
    keep = _most_kept(cells, available, graph.group_share, limit)
    if keep.sum() < (1 - MAX_REMOVED) * len(members):
        log.warning(
            "split: %s lacks a stratum; balancing it would remove %d of its %d sequences, "
            "so it is left as it is (its shares are in split_report.json)",
            PARTITIONS[target],
            len(members) - keep.sum(),
            len(members),
        )
        return
    label = graph.strata.block == 0
    classes = cells[:, label]  # cells x classes, one-hot
    by_class = classes.T @ available
    label_keep = _most_kept(
        np.eye(len(by_class), dtype=np.int64), by_class, graph.group_share[label], limit[label]
    )
    label_quota = by_class - label_keep  # removals the label tolerance alone needs
    degree = np.diff(graph.indptr)[members]
    before = cells.T @ available / max(available.sum(), 1) - graph.group_share
    for cell in np.flatnonzero(keep < available):
        in_cell = members[cell_of == cell]
        order = np.lexsort((graph.priority[in_cell], degree[cell_of == cell]))
        klass = int(np.argmax(classes[cell]))
        stratum = int(np.argmax(np.where((cells[cell] > 0) & ~label, before, -np.inf)))
        for v in in_cell[order][: available[cell] - keep[cell]]:
            graph.partition[v] = REMOVED
            if label_quota[klass] > 0:
                label_quota[klass] -= 1
                graph.reasons[int(v)] = _reason(graph, "label_balance", klass, target, tolerances)
            else:
                graph.reasons[int(v)] = _reason(
                    graph, "covariate_balance", stratum, target, tolerances
                )


def _most_kept(
    cells: np.ndarray,
    available: np.ndarray,
    share: np.ndarray,
    limit: np.ndarray,
) -> np.ndarray:
    """Sequences to keep per cell: the most in total with every group's share within
    `limit` of `share`. An integer programme on group counts:
    count_g - (share_g + limit_g) * total <= 0 and (share_g - limit_g) * total - count_g <= 0."""
    total = np.ones(len(cells))
    rows = [cells.T - np.outer(share + limit, total), np.outer(share - limit, total) - cells.T]
    result = milp(
        c=-total,
        constraints=LinearConstraint(np.vstack(rows), -np.inf, 0),
        integrality=np.ones(len(cells)),
        bounds=Bounds(0, available),
    )
    if result.x is None:  # cannot happen: keeping nothing is feasible
        return np.zeros(len(cells), dtype=np.int64)
    return np.round(result.x).astype(np.int64)


def _reason(
    graph: PartitionGraph, reason: str, group: int, target: int, tolerances: np.ndarray
) -> tuple[str, str]:
    block = int(graph.strata.block[group])
    what = "class" if block == 0 else "stratum"
    return (
        reason,
        f"{what} '{graph.strata.names[group]}' over-represented in {PARTITIONS[target]} "
        f"beyond the {graph.strata.blocks[block]} tolerance {tolerances[block]:g}",
    )
