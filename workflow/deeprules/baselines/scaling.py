"""Keeping every family affordable on large training sets, and saying how (issue 20).

Two families cost more than ~N log N per trial in the number N of training
sequences: an RBF-kernel SVM (SVC solves over the N x N kernel matrix, N^2 to
N^3 per fit) and k nearest neighbours (every prediction measures the distance to
all N training sequences; scoring train is N^2). Above
`baselines.large_data.above_sequences` training sequences they take a stated,
seeded, affordable form (the RBF SVM also when its kernel work, N times the
non-zero entries of the training table, exceeds `kernel_map_above`: a wide DNA
k-mer table of 3,500 500-bp sequences costs an exact SVC minutes per trial):

- rbf_svm: a Nystroem map onto `kernel_components` RBF features, then a linear
  SVM (cost N x components x columns per fit);
- knn: the neighbours are looked up among `knn_reference_sequences` training
  sequences, a class-stratified seeded subsample.

Below the threshold (and for every other family) the estimator is exactly the
one it was; the budget of trials is the same either way (Tip 2), and so is the
form on a laptop and on a cluster: it depends on the data, not on the machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.neighbors import KNeighborsClassifier
from sklearn.utils._param_validation import Interval

from deeprules.sampling import stratified_rows

NO_APPROXIMATION = "none"
DENSE_BLOCK_ROWS = 2000  # query rows densified at a time: bounded memory at any N


@dataclass(frozen=True)
class LargeData:
    """The config's size threshold and the sizes of the affordable forms."""

    above_sequences: int
    kernel_components: int
    knn_reference_sequences: int
    kernel_map_above: float  # kernel work (sequences x table non-zeros) an exact SVC may take


@dataclass(frozen=True)
class Affordable:
    """The forms in force for one training set: None means the exact family."""

    train_sequences: int = 0
    kernel_components: int | None = None  # Nystroem components for rbf_svm
    knn_reference: int | None = None  # training sequences kNN looks its neighbours up in
    kernel_work: int = 0  # training sequences x non-zero entries of the training table

    @property
    def approximating(self) -> bool:
        return self.kernel_components is not None or self.knn_reference is not None


EXACT = Affordable()


def affordable_forms(large: LargeData, train_sequences: int, table_nonzeros: int) -> Affordable:
    """Exact up to `above_sequences` training sequences; above it, the kernel map and the
    reference subsample (the subsample only when it is smaller than train). The kernel
    map also above `kernel_map_above` kernel work, whatever the number of sequences:
    an exact SVC's cost grows with the table's width as much as with N."""
    work = train_sequences * table_nonzeros
    large_set = train_sequences > large.above_sequences
    reference = large.knn_reference_sequences
    return Affordable(
        train_sequences,
        kernel_components=(
            large.kernel_components if large_set or work > large.kernel_map_above else None
        ),
        knn_reference=reference if large_set and reference < train_sequences else None,
        kernel_work=work,
    )


def describe_kernel_map(forms: Affordable, seed: int) -> str:
    """How rbf_svm was fitted, for summary.tsv and the report."""
    if forms.kernel_components is None:
        return NO_APPROXIMATION
    return f"nystroem({forms.kernel_components} components, seed {seed}) + linear SVM"


def describe_reference(forms: Affordable, seed: int) -> str:
    """How kNN was fitted, for summary.tsv and the report."""
    if forms.knn_reference is None:
        return NO_APPROXIMATION
    return (
        f"reference subsample {forms.knn_reference:,} of {forms.train_sequences:,} "
        f"(class-stratified, seed {seed})"
    )


class Neighbours(KNeighborsClassifier):
    """KNeighborsClassifier that measures Manhattan distances on dense rows.

    scikit-learn's sparse Manhattan distance costs 2-3x its dense one (a 2,000 x 5,460
    DNA k-mer table: 7.9 s vs 3.4 s for 500 queries), and made a Manhattan kNN trial
    take two minutes on 20,000 500-bp sequences. The distances are the same to the
    last bit (the same columns summed in the same order; zeros add nothing), so only
    the cost changes. Queries are densified `DENSE_BLOCK_ROWS` at a time; the other
    metrics keep the sparse table, where they are fast.
    """

    def fit(self, features: Any, labels: Any) -> Neighbours:
        return super().fit(self._readable(features), labels)

    def predict_proba(self, features: Any) -> np.ndarray:
        return self._by_block(super().predict_proba, features)

    def predict(self, features: Any) -> np.ndarray:
        return self._by_block(super().predict, features)

    def kneighbors(self, features: Any = None, n_neighbors: int | None = None, **kwargs: Any):
        if features is None or not self._densifies(features):
            return super().kneighbors(features, n_neighbors, **kwargs)
        blocks = [
            super(Neighbours, self).kneighbors(b, n_neighbors, **kwargs)
            for b in self._blocks(features)
        ]
        if kwargs.get("return_distance", True):
            return tuple(np.concatenate(parts) for parts in zip(*blocks, strict=True))
        return np.concatenate(blocks)

    def _densifies(self, features: Any) -> bool:
        return self.metric == "manhattan" and sp.issparse(features)

    def _readable(self, features: Any) -> Any:
        return features.toarray() if self._densifies(features) else features

    def _blocks(self, features: Any):
        for first in range(0, features.shape[0], DENSE_BLOCK_ROWS):
            yield features[first : first + DENSE_BLOCK_ROWS].toarray()

    def _by_block(self, predict: Any, features: Any) -> np.ndarray:
        if not self._densifies(features):
            return predict(features)
        return np.concatenate([predict(block) for block in self._blocks(features)])


class SubsampledNeighbours(ClassifierMixin, BaseEstimator):
    """k nearest neighbours looked up among a class-stratified, seeded subsample of the
    training rows: prediction costs `reference_size` distances per sequence, not N.

    The kNN's own parameters are the same as KNeighborsClassifier's; the fitted
    subsample is `reference_rows_` (row numbers in the training table).
    """

    # sklearn's own checks of the kNN parameters, so a bad search space is refused early
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **{
            name: rule
            for name, rule in KNeighborsClassifier._parameter_constraints.items()
            if name in ("n_neighbors", "weights", "metric", "n_jobs")
        },
        "reference_size": [Interval(Integral, 1, None, closed="left")],
        "seed": ["random_state"],
    }

    def __init__(
        self,
        reference_size: int = 5000,
        seed: int = 0,
        n_neighbors: int = 5,
        weights: str = "uniform",
        metric: str = "minkowski",
        n_jobs: int | None = None,
    ):
        self.reference_size = reference_size
        self.seed = seed
        self.n_neighbors = n_neighbors
        self.weights = weights
        self.metric = metric
        self.n_jobs = n_jobs

    def fit(self, features: Any, labels: Any) -> SubsampledNeighbours:
        self._validate_params()
        labels = np.asarray(labels)
        self.reference_rows_ = stratified_rows(labels, self.reference_size, self.seed)
        self.neighbours_ = Neighbours(
            n_neighbors=self.n_neighbors,
            weights=self.weights,
            metric=self.metric,
            n_jobs=self.n_jobs,
        ).fit(features[self.reference_rows_], labels[self.reference_rows_])
        self.classes_ = self.neighbours_.classes_
        return self

    def predict_proba(self, features: Any) -> np.ndarray:
        return self.neighbours_.predict_proba(features)

    def predict(self, features: Any) -> np.ndarray:
        return self.neighbours_.predict(features)
