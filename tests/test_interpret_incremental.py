"""Permutation importance of distance-based baselines from updated distances: the same
predictions as the direct path, used only above its cost threshold (issue 20)."""

from __future__ import annotations

import numpy as np
import pytest
from planted import planted_table
from scipy.sparse import csr_matrix
from sklearn.metrics.pairwise import cosine_distances
from sklearn.pipeline import Pipeline

from deeprules.baselines.families import FitContext
from deeprules.baselines.fitting import fit_model
from deeprules.baselines.scaling import Affordable
from deeprules.features import SequenceFeatures
from deeprules.interpret.baselines import feature_importance
from deeprules.interpret.incremental import Distances, incremental_view, reference_rows

EXACT = FitContext(5, "balanced", 1)
LARGE = FitContext(5, "balanced", 1, Affordable(300, kernel_components=40, knn_reference=120))
MODELS = [
    ("knn", {"n_neighbors": 7, "weights": "uniform", "metric": "euclidean"}, EXACT),
    ("knn", {"n_neighbors": 7, "weights": "distance", "metric": "manhattan"}, EXACT),
    ("knn", {"n_neighbors": 5, "weights": "uniform", "metric": "manhattan"}, LARGE),
    ("knn", {"n_neighbors": 7, "weights": "distance", "metric": "cosine"}, EXACT),
    ("knn", {"n_neighbors": 2, "weights": "uniform", "metric": "cosine"}, LARGE),
    ("rbf_svm", {"C": 1.0, "gamma": 0.01}, EXACT),
    ("rbf_svm", {"C": 1.0, "gamma": 0.01}, LARGE),
]
# the wide DNA k-mer tables stay sparse, and an SVC fitted on them holds its support
# vectors and coefficients as sparse matrices (a 3,000-sequence run failed on them)
SPARSE = [
    ("rbf_svm", {"C": 1.0, "gamma": 0.01}, EXACT),
    ("knn", MODELS[0][1], EXACT),
    ("knn", MODELS[3][1], EXACT),
]


def planted_pipeline(name: str, params: dict, context: FitContext, sparse: bool = False):
    """A saved-model-like pipeline (features, scaler, calibrated model) on planted DNA."""
    table = planted_table(300, 8, {"background": None, "bound": "TATAAT"}, length=80)
    features = SequenceFeatures((1, 2, 3)).fit(table["sequence"])
    train = features.transform(table["sequence"])
    model = fit_model(
        name,
        params,
        csr_matrix(train) if sparse else train,
        table["label"].to_numpy(),
        context,
        True,
    )
    tune = planted_table(120, 9, {"background": None, "bound": "TATAAT"}, length=80)
    return features, model, tune


@pytest.mark.parametrize(
    ("name", "params", "context", "sparse"),
    [(*model, False) for model in MODELS] + [(*model, True) for model in SPARSE],
)
def test_updated_distances_predict_what_the_model_predicts(name, params, context, sparse):
    """With one candidate column shuffled (as permutation importance does), the view's
    probabilities equal the model's own on the shuffled table, up to rounding."""
    features, model, tune = planted_pipeline(name, params, context, sparse)
    table = model[:-1].transform(features.transform(tune["sequence"]))
    table = table.toarray() if hasattr(table, "toarray") else table
    estimator = model[-1]
    assert reference_rows(estimator) is not None
    columns = np.array([3, 10, 40])
    view = incremental_view(estimator, table, columns)
    rng = np.random.default_rng(0)
    for column in range(len(columns)):
        subset = table[:, columns].copy()
        subset[:, column] = rng.permutation(subset[:, column])
        shuffled = table.copy()
        shuffled[:, columns] = subset
        np.testing.assert_allclose(
            view.predict_proba(subset), estimator.predict_proba(shuffled), atol=1e-9
        )
        np.testing.assert_array_equal(view.predict(subset), estimator.predict(shuffled))


def test_importances_take_the_incremental_path_only_above_the_threshold():
    """Above permutation_incremental_above the method says so and the importances agree
    with the direct path; at the default the direct path runs unchanged."""
    params = {"n_neighbors": 7, "weights": "uniform", "metric": "manhattan"}
    features, model, tune = planted_pipeline("knn", params, EXACT)
    pipeline = Pipeline([("features", features), *model.steps])
    settings = {
        "permutation_repeats": 3,
        "permutation_max_features": 10,
        "permutation_max_sequences": 100,
        "permutation_incremental_above": 10**9,
    }
    sequences, labels = tune["sequence"].tolist(), tune["label"].to_numpy()
    direct = feature_importance(pipeline, sequences, labels, settings, 1)
    assert set(direct["method"]) == {"permutation (AUROC drop, 100 tune sequences)"}
    settings["permutation_incremental_above"] = 0
    updated = feature_importance(pipeline, sequences, labels, settings, 1)
    assert set(updated["method"]) == {
        "permutation (AUROC drop, 100 tune sequences against 300 reference rows, "
        "distances updated per shuffle)"
    }
    merged = direct.merge(updated, on="feature", suffixes=("_direct", "_updated"))
    assert len(merged) == 10
    np.testing.assert_allclose(merged["importance_direct"], merged["importance_updated"], atol=1e-9)


def test_models_that_are_not_distance_based_keep_the_direct_path():
    _, model, _ = planted_pipeline("naive_bayes", {"variant": "complement", "alpha": 1.0}, EXACT)
    assert reference_rows(model[-1]) is None
    assert incremental_view(model[-1], np.zeros((2, 84)), np.array([0])) is None


def test_cosine_distances_updated_per_column_equal_scikit_learns_with_rows_of_zeros():
    """A shuffle can empty a tune row (all its counts in shuffled columns): scikit-learn
    then gives it distance 1 to every reference row, and so must the updated parts."""
    rng = np.random.default_rng(3)
    full = rng.poisson(0.7, size=(30, 12)).astype(float)
    reference = csr_matrix(rng.poisson(0.7, size=(40, 12)).astype(float))
    full[0, 2:] = 0.0  # row 0 holds counts in columns 0 and 1 only
    columns = np.array([0, 1, 5])
    distances = Distances(full, reference, columns, "cosine")
    subset = full[:, columns].copy()
    subset[0, :2] = 0.0  # what shuffling columns 0 and 1 can give row 0
    subset[1:, 0] = rng.permutation(subset[1:, 0])
    shuffled = full.copy()
    shuffled[:, columns] = subset
    updated = distances(subset)
    np.testing.assert_allclose(updated, cosine_distances(shuffled, reference), atol=1e-12)
    np.testing.assert_array_equal(updated[0], 1.0)
