"""The partition being built on the homology graph, and the steps after placement.

`PartitionGraph` holds the graph (CSR arrays), each sequence's class and the
partition code per sequence (REMOVED until placed or when cut out), with the
reason for every removal. Placement (step 1, deeprules.split.homology and
deeprules.split.cut) fills it; then removed sequences go back where that
creates no cross-partition edge (step 2), whole kept-graph pieces move to bring
sizes and label shares to target, and if a share is still beyond the tolerance
the fewest sequences needed are removed (step 3). No step ever creates an edge
between partitions.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from deeprules.contracts import PARTITIONS

REMOVED = -1
# Rebalancing moves only kept-graph pieces up to this share of the smallest partition.
MOVABLE_PIECE = 0.05


class PartitionGraph:
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

    def best_partition(
        self, composition: np.ndarray, room: np.ndarray, label_room: np.ndarray
    ) -> int:
        """Where a whole component fills the most missing label counts, then the most room."""
        filled = np.minimum(composition, np.clip(label_room, 0, None)).sum(axis=1)
        relative_room = room / self.size_target
        return int(np.lexsort((-relative_room, -filled))[0])

    def cross_edges(self) -> int:
        """Edges joining two different partitions: the guarantee says zero."""
        rows = np.repeat(np.arange(self.n), np.diff(self.indptr))
        a, b = self.partition[rows], self.partition[self.indices]
        return int(((a != REMOVED) & (b != REMOVED) & (a != b)).sum() // 2)

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
                    else self.best_partition(
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
        composition, where, inverse = self._kept_pieces(kept)
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

    def _kept_pieces(self, kept: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Connected pieces of the graph of kept sequences: class counts per piece, the
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
        composition = np.zeros((len(ids), self.n_classes), dtype=np.int64)
        np.add.at(composition, (inverse, self.label[kept]), 1)
        where = np.zeros(len(ids), dtype=np.int64)
        where[inverse] = self.partition[kept]
        return composition, where, inverse

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
