"""The model families a run can tune: one registry entry per family.

Adding a family is one `Family` entry in `REGISTRY` (and its search space in the
config schema, `baselines.search_spaces.<name>`): how to build the classifier
from one trial's parameters, whether it needs scaled or dense input, whether it
gives margins instead of probabilities. Everything else (tuning, controls,
scoring, outputs) works on any entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.kernel_approximation import Nystroem
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import ComplementNB, GaussianNB, MultinomialNB
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, MaxAbsScaler, MinMaxScaler, StandardScaler
from sklearn.svm import SVC, LinearSVC

from deeprules.baselines.scaling import (
    EXACT,
    NO_APPROXIMATION,
    Affordable,
    Neighbours,
    SubsampledNeighbours,
    describe_kernel_map,
    describe_reference,
)


@dataclass(frozen=True)
class FitContext:
    """What every classifier takes from the run rather than from the trial."""

    seed: int
    class_weight: str | None  # None: every sequence weighs the same
    threads: int
    forms: Affordable = EXACT  # the affordable forms in force for this training set


# A parameter that only means something when another one has one of some values:
# name -> (the other parameter, the values that enable it).
Conditions = dict[str, tuple[str, tuple[Any, ...]]]


@dataclass(frozen=True)
class Family:
    """One traditional model family, as the tuner, the controls and the outputs see it."""

    name: str
    description: str
    build: Callable[[dict[str, Any], FitContext], BaseEstimator]
    scaler: Callable[[], BaseEstimator] | None = None  # fitted on training rows only
    dense: bool = False  # the classifier cannot read a sparse k-mer table
    margins: bool = False  # decision margins, not probabilities: Platt scaling when saved
    weighted_by_sample: bool = False  # class weights go to fit() as sample weights
    serial_predict: bool = False  # threaded predictions differ in the last bit
    conditions: Conditions = field(default_factory=dict)
    # what the family's affordable form on a large training set is, in words
    approximation: Callable[[Affordable, int], str] | None = None
    # minutes to tune and refit at 5,000 x 500 bp DNA, one family at a time on 2 cores
    # (docs/benchmarks.md): only the order in which workers take the families, never a result
    tuning_minutes: float = 1.0

    def approximation_used(self, context: FitContext) -> str:
        """'none', or the affordable form this context fits (summary.tsv, the report)."""
        if self.approximation is None:
            return NO_APPROXIMATION
        return self.approximation(context.forms, context.seed)

    @property
    def search_space_key(self) -> str:
        """Where the run config holds this family's hyperparameter ranges."""
        return f"baselines.search_spaces.{self.name}"


def _to_dense(table):
    """Gradient boosting and Gaussian naive Bayes need a dense array."""
    return table.toarray() if sp.issparse(table) else table


def _densify() -> FunctionTransformer:
    return FunctionTransformer(_to_dense, accept_sparse=True, feature_names_out="one-to-one")


def _standardise() -> StandardScaler:
    """Unit variance without centring, so a sparse k-mer table stays sparse."""
    return StandardScaler(with_mean=False)


def _min_max() -> MinMaxScaler:
    """Multinomial / complement NB need non-negative inputs: min-max scaling, clipped
    so tune rows outside the training range stay in [0, 1]."""
    return MinMaxScaler(clip=True)


def logistic_regression(params: dict[str, Any], context: FitContext) -> LogisticRegression:
    """saga (needed for L1 / elastic net) converges in far fewer passes when every
    feature lies in [-1, 1] (hence max-abs scaling); lbfgs is faster for plain L2."""
    penalty = params["penalty"]
    if penalty not in ("l1", "l2", "elasticnet"):
        raise ValueError(f"penalty must be 'l1', 'l2' or 'elasticnet', got {penalty!r}")
    l1_ratio = {"l2": 0.0, "l1": 1.0}.get(penalty, params.get("l1_ratio", 0.5))
    return LogisticRegression(
        C=params["C"],
        l1_ratio=l1_ratio,
        solver="lbfgs" if penalty == "l2" else "saga",
        tol=1e-4 if penalty == "l2" else 1e-3,
        max_iter=1000 if penalty == "l2" else 100,  # saga: bounded cost per trial
        class_weight=context.class_weight,
        random_state=context.seed,
    )


def random_forest(params: dict[str, Any], context: FitContext) -> RandomForestClassifier:
    """Class weights go to fit() as sample weights (the same numbers): scikit-learn 1.9's
    forest refuses class_weight='balanced' for labels that read as integers ('0', '1')."""
    return RandomForestClassifier(
        n_estimators=params["n_estimators"],
        max_depth=params["max_depth"],
        min_samples_leaf=params["min_samples_leaf"],
        max_features=params["max_features"],
        n_jobs=context.threads,
        random_state=context.seed,
    )


def knn(params: dict[str, Any], context: FitContext) -> BaseEstimator:
    """Not weighted by class: kNN has no class weights. On a large training set the
    neighbours come from a stated subsample of it (deeprules.baselines.scaling)."""
    neighbours = {
        "n_neighbors": params["n_neighbors"],
        "weights": params["weights"],
        "metric": params["metric"],
        "n_jobs": context.threads,
    }
    if context.forms.knn_reference is None:
        return Neighbours(**neighbours)
    return SubsampledNeighbours(context.forms.knn_reference, context.seed, **neighbours)


def naive_bayes(params: dict[str, Any], context: FitContext) -> BaseEstimator:
    variant = params["variant"]
    if variant not in ("gaussian", "multinomial", "complement"):
        raise ValueError(
            f"variant must be 'gaussian', 'multinomial' or 'complement', got {variant!r}"
        )
    if variant == "gaussian":
        return GaussianNB(var_smoothing=params["var_smoothing"])
    kind = MultinomialNB if variant == "multinomial" else ComplementNB
    return kind(alpha=params["alpha"])


def linear_svm(params: dict[str, Any], context: FitContext) -> LinearSVC:
    return LinearSVC(
        C=params["C"], class_weight=context.class_weight, max_iter=5000, random_state=context.seed
    )


def rbf_svm(params: dict[str, Any], context: FitContext) -> BaseEstimator:
    """SVC on the exact kernel; on a large training set, a linear SVM on a seeded Nystroem
    map of the same RBF kernel (same C and gamma), whose cost grows linearly in N."""
    components = context.forms.kernel_components
    if components is None:
        return SVC(
            C=params["C"],
            gamma=params["gamma"],
            class_weight=context.class_weight,
            cache_size=500,
            random_state=context.seed,
        )
    kernel_map = Nystroem(
        kernel="rbf", gamma=params["gamma"], n_components=components, random_state=context.seed
    )
    return Pipeline([("kernel_map", kernel_map), ("svm", linear_svm(params, context))])


def hist_gradient_boosting(
    params: dict[str, Any], context: FitContext
) -> HistGradientBoostingClassifier:
    return HistGradientBoostingClassifier(
        learning_rate=params["learning_rate"],
        max_iter=params["max_iter"],
        max_leaf_nodes=params["max_leaf_nodes"],
        min_samples_leaf=params["min_samples_leaf"],
        l2_regularization=params["l2_regularization"],
        class_weight=context.class_weight,
        early_stopping=False,  # no hidden random validation split; max_iter is tuned instead
        random_state=context.seed,
    )


REGISTRY: dict[str, Family] = {
    family.name: family
    for family in (
        Family(
            "logistic_regression",
            "L1 / L2 / elastic-net logistic regression on max-abs-scaled features",
            logistic_regression,
            scaler=MaxAbsScaler,
            conditions={"l1_ratio": ("penalty", ("elasticnet",))},
            tuning_minutes=0.8,
        ),
        Family(
            "random_forest",
            "random forest of decision trees on the raw features",
            random_forest,
            weighted_by_sample=True,
            serial_predict=True,
            tuning_minutes=2.4,
        ),
        Family(
            "knn",
            "k nearest neighbours on standardised features",
            knn,
            scaler=_standardise,
            approximation=describe_reference,
            tuning_minutes=11.5,
        ),
        Family(
            "naive_bayes",
            "Gaussian, multinomial or complement naive Bayes on min-max-scaled features",
            naive_bayes,
            scaler=_min_max,
            dense=True,
            weighted_by_sample=True,
            conditions={
                "alpha": ("variant", ("multinomial", "complement")),
                "var_smoothing": ("variant", ("gaussian",)),
            },
            tuning_minutes=0.2,
        ),
        Family(
            "linear_svm",
            "linear support vector machine on standardised features",
            linear_svm,
            scaler=_standardise,
            margins=True,
            tuning_minutes=2.2,
        ),
        Family(
            "rbf_svm",
            "support vector machine with an RBF kernel on standardised features",
            rbf_svm,
            scaler=_standardise,
            margins=True,
            approximation=describe_kernel_map,
            tuning_minutes=1.3,
        ),
        Family(
            "hist_gradient_boosting",
            "histogram gradient boosting of trees, without early stopping",
            hist_gradient_boosting,
            dense=True,
            tuning_minutes=18.3,
        ),
    )
}
FAMILIES = tuple(REGISTRY)


def family(name: str) -> Family:
    """The registry entry of `name`; an unknown name lists the known ones."""
    if name not in REGISTRY:
        raise ValueError(f"unknown baseline family {name!r}; known: {', '.join(FAMILIES)}")
    return REGISTRY[name]


def build_pipeline(name: str, params: dict[str, Any], context: FitContext) -> Pipeline:
    """One unfitted pipeline (densify, scale, classifier) on the feature table.

    Scalers sit inside the pipeline so they are fitted on training rows only.
    """
    entry = family(name)
    steps: list[tuple[str, BaseEstimator]] = []
    if entry.dense:
        steps.append(("dense", _densify()))
    if entry.scaler is not None:
        steps.append(("scale", entry.scaler()))
    steps.append(("model", entry.build(params, context)))
    return Pipeline(steps)
