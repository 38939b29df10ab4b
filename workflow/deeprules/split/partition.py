"""The partition being built on the homology graph, and the steps after placement.

`PartitionGraph` holds the graph (CSR arrays), each sequence's groups (its
label, and its label x covariate strata: deeprules.split.strata) and the
partition code per sequence (REMOVED until placed or when cut out), with the
reason for every removal. Every target is per group, not only per label: a
partition wants its share of short AMPs, of long AMPs, of short non-AMPs...,
so placement and cutting (step 1, deeprules.split.homology and
deeprules.split.cut) take sequences from every part of the length
distribution. Then removed sequences go back where that creates no
cross-partition edge (step 2), whole kept-graph pieces move to bring sizes and
group shares to target, and if a share is still beyond its tolerance the fewest
sequences needed are removed (step 3). No step ever creates an edge between
partitions.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from deeprules.split.strata import Strata

REMOVED = -1
# Rebalancing moves only kept-graph pieces up to this share of the smallest partition.
MOVABLE_PIECE = 0.05
# With strata: what one sequence off a partition's share of the kept sequences weighs
# against one sequence that would have to be removed for balance.
SIZE_WEIGHT = 0.5


class PartitionGraph:
    """The similarity graph and the partition being built on it.

    Without `strata` the only groups are the labels (the split balances the label
    alone). `tolerances[b]` is the largest allowed deviation of a partition's group
    shares from the whole's in block b (block 0 = label)."""

    def __init__(
        self,
        adjacency: csr_matrix,
        labels: np.ndarray,
        fractions: tuple[float, ...],
        rng: np.random.Generator,
        strata: Strata | None = None,
    ) -> None:
        self.indptr, self.indices = adjacency.indptr, adjacency.indices
        self.n = adjacency.shape[0]
        self.rows = np.repeat(np.arange(self.n), np.diff(self.indptr))  # edge -> its row
        # one weight per edge, built once: every cut slices sub-matrices out of it
        self.edges = csr_matrix(
            (np.ones(len(self.indices)), self.indices, self.indptr), shape=(self.n, self.n)
        )
        self.class_names, self.label = np.unique(labels, return_inverse=True)
        self.n_classes = len(self.class_names)
        if strata is None:
            strata = Strata(
                member=np.eye(self.n_classes, dtype=np.int64)[self.label],
                names=tuple(map(str, self.class_names)),
                block=np.zeros(self.n_classes, dtype=np.int64),
                blocks=("label",),
            )
        self.strata = strata
        self.member = strata.member
        self.n_groups = self.member.shape[1]
        self.group_share = self.member.sum(axis=0) / self.n
        self.fractions = np.asarray(fractions)
        self.size_target = self.fractions * self.n
        self.group_target = np.outer(self.fractions, self.member.sum(axis=0))  # partition x group
        self.priority = rng.permutation(self.n)  # deterministic tie-breaking
        self.partition = np.full(self.n, REMOVED, dtype=np.int64)
        self.reasons: dict[int, tuple[str, str]] = {}

    def neighbours(self, node: int) -> np.ndarray:
        return self.indices[self.indptr[node] : self.indptr[node + 1]]

    def composition(self, nodes: np.ndarray) -> np.ndarray:
        """Sequences per group among `nodes`."""
        return self.member[nodes].sum(axis=0)

    def sizes(self, groups: np.ndarray) -> np.ndarray:
        """Sequences behind group counts (last axis): the label block counts each once."""
        return groups[..., self.strata.block == 0].sum(axis=-1)

    def usefulness(self, counts: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For group counts of candidate regions (last axis: groups), the sequences still
        wanted (averaged over blocks) and the surplus: sequences beyond what the worst
        covariate block wants, which a later step must move or remove. Without
        covariates the surplus is 0 (the label-only split tolerates it as before)."""
        useful = np.minimum(counts, wanted).sum(axis=-1) / self.strata.n_blocks
        surplus = np.zeros(useful.shape)
        for block in range(1, self.strata.n_blocks):
            columns = self.strata.block == block
            over = np.clip(counts[..., columns] - wanted[columns], 0, None).sum(axis=-1)
            surplus = np.maximum(surplus, over)
        return useful, surplus

    def surplus(self, composition: np.ndarray, group_room: np.ndarray) -> float:
        """Sequences of `composition` beyond `group_room` in the worst covariate block
        (0 without covariates)."""
        _, surplus = self.usefulness(composition, np.clip(group_room, 0, None))
        return float(surplus)

    def counts(self) -> np.ndarray:
        """Kept sequences per partition and group."""
        return np.stack([self.composition(self.partition == p) for p in range(len(self.fractions))])

    def best_partition(
        self, composition: np.ndarray, room: np.ndarray, group_room: np.ndarray
    ) -> int:
        """Where a whole component fills the most missing group counts, then the most room."""
        filled = np.minimum(composition, np.clip(group_room, 0, None)).sum(axis=1)
        relative_room = room / self.size_target
        return int(np.lexsort((-relative_room, -filled))[0])

    def cross_edges(self) -> int:
        """Edges joining two different partitions: the guarantee says zero."""
        a, b = self.partition[self.rows], self.partition[self.indices]
        return int(((a != REMOVED) & (b != REMOVED) & (a != b)).sum() // 2)

    def deviations(self, counts: np.ndarray) -> np.ndarray:
        """Partition x group: share of the group within its block minus the whole's share."""
        return counts / np.maximum(self.sizes(counts), 1)[:, None] - self.group_share

    # step 2 ----------------------------------------------------------------------

    def reinsert_removed(self, tolerances: np.ndarray | None = None) -> None:
        """Put back every removed node whose kept neighbours all lie in one partition
        (and, with tolerances, only where every group share stays within them)."""
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
                    else self.best_partition(
                        self.member[v],
                        self.size_target - self.sizes(counts),
                        self.group_target - counts,
                    )
                )
                if tolerances is not None and not self._within_tolerance_after(
                    counts, target, v, tolerances
                ):
                    continue
                self.partition[v] = target
                self.reasons.pop(int(v), None)
                changed = True

    def _within_tolerance_after(
        self, counts: np.ndarray, target: int, node: int, tolerances: np.ndarray
    ) -> bool:
        after = counts[target : target + 1] + self.member[node]
        limit = tolerances[self.strata.block]
        return bool(np.all(np.abs(self.deviations(after)) <= limit))

    # step 3 ----------------------------------------------------------------------

    def rebalance(self, tolerances: np.ndarray, rounds: int = 20) -> None:
        """Move whole kept-graph components between partitions while that brings
        partition sizes and group shares closer to target (never creates an edge)."""
        kept = self.partition != REMOVED
        composition, where, inverse = self._kept_pieces(kept)
        counts = self.counts()
        cost = self._imbalance(counts, tolerances)
        sizes = self.sizes(composition)
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
                    new_cost = self._imbalance(counts, tolerances)
                    if new_cost < cost - 1e-12:
                        cost, where[k], source, improved = new_cost, target, target, True
                    else:
                        counts[source] += composition[k]
                        counts[target] -= composition[k]
            if not improved:
                break
        self.partition[kept] = where[inverse]

    def _kept_pieces(self, kept: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Connected pieces of the graph of kept sequences: group counts per piece, the
        partition each piece is in, and the piece of each kept sequence."""
        keep_mask = kept[self.indices] & np.repeat(kept, np.diff(self.indptr))
        graph = csr_matrix(
            (keep_mask.astype(np.int8), self.indices.copy(), self.indptr.copy()),
            shape=(self.n, self.n),
        )
        graph.eliminate_zeros()  # csgraph counts explicit zeros as edges
        _, piece = connected_components(graph, directed=False)
        piece = np.where(kept, piece, -1)
        ids, inverse = np.unique(piece[kept], return_inverse=True)
        composition = np.zeros((len(ids), self.n_groups), dtype=np.int64)
        np.add.at(composition, inverse, self.member[kept])
        where = np.zeros(len(ids), dtype=np.int64)
        where[inverse] = self.partition[kept]
        return composition, where, inverse

    def _imbalance(self, counts: np.ndarray, tolerances: np.ndarray) -> float:
        """How far sizes and group shares are from target. Label alone: relative size
        deviations squared plus shares beyond half the tolerance, weighed heavily so
        moves fix them first. With strata: `balance_cost`."""
        if self.strata.n_blocks > 1:
            return float(self.balance_cost(counts, tolerances))
        limit = tolerances[self.strata.block] / 2
        excess = np.clip(np.abs(self.deviations(counts)) - limit, 0, None)
        size_term = (((self.sizes(counts) - self.size_target) / self.size_target) ** 2).sum()
        return float(size_term + 1000 * (excess**2).sum())

    def balance_cost(self, counts: np.ndarray, tolerances: np.ndarray) -> np.ndarray:
        """Sequences the tolerances would still cost to remove, plus SIZE_WEIGHT per
        sequence a partition is off its share of the kept total (counts: ... x
        partitions x groups). Per partition the costliest group decides: an
        over-represented group needs about excess / (1 - share) removals, an
        under-represented one deficit / share removals of everything else, which is why
        a partition lacking short peptides is worth carving a dense family for."""
        sizes = self.sizes(counts)[..., None]
        share, limit = self.group_share, tolerances[self.strata.block]
        over = np.clip(counts - (share + limit) * sizes, 0, None)
        under = np.clip((share - limit) * sizes - counts, 0, None)
        removals = np.maximum(
            over / np.maximum(1 - share - limit, 0.05), under / np.maximum(share - limit, 0.05)
        )
        kept = sizes[..., 0].sum(axis=-1, keepdims=True)
        off_size = np.abs(sizes[..., 0] - self.fractions * kept).sum(axis=-1)
        return removals.max(axis=-1).sum(axis=-1) + SIZE_WEIGHT * off_size
