"""Large training sets: the affordable forms of the quadratic families, k-mer hashing and
sparse tables, each used only above its threshold and recorded (issue 20)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from planted import planted_table
from sklearn.kernel_approximation import Nystroem
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import SVC
from test_baselines import make_split, run_baselines, run_config

from deeprules.baselines import scaling
from deeprules.baselines.families import FitContext, build_pipeline
from deeprules.baselines.fitting import fit_model
from deeprules.baselines.scaling import (
    EXACT,
    LargeData,
    Neighbours,
    SubsampledNeighbours,
    affordable_forms,
)
from deeprules.baselines.settings import baseline_settings, for_training_set
from deeprules.config import baselines_settings
from deeprules.features import KmerFrequencies, SequenceFeatures
from deeprules.io import read_tsv

LARGE = LargeData(
    above_sequences=300, kernel_components=40, knn_reference_sequences=100, kernel_map_above=1e12
)
KNN = {"n_neighbors": 5, "weights": "uniform", "metric": "euclidean"}
RBF = {"C": 1.0, "gamma": 0.01}


def context(train_sequences: int) -> FitContext:
    return FitContext(3, "balanced", 1, affordable_forms(LARGE, train_sequences, 0))


def planted(count: int, seed: int, length: int = 80) -> tuple[list[str], np.ndarray]:
    """Background vs a planted TATAAT, as tests/planted.py writes them."""
    table = planted_table(count, seed, {"background": None, "bound": "TATAAT"}, length=length)
    return table["sequence"].tolist(), table["label"].to_numpy()


def encoded(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    sequences, labels = planted(count, seed)
    return SequenceFeatures((1, 2, 3)).fit(sequences).transform(sequences), labels


def test_below_the_threshold_every_family_is_exactly_the_old_one():
    """At and below above_sequences the forms are exact: the same estimator, parameters and
    predictions as with no large-data settings at all."""
    assert not affordable_forms(LARGE, 300, 0).approximating
    features, labels = encoded(300, 1)
    for name, params in (("knn", KNN), ("rbf_svm", RBF)):
        old = build_pipeline(name, params, FitContext(3, "balanced", 1, EXACT))
        new = build_pipeline(name, params, context(300))
        assert type(new[-1]) is type(old[-1]) and type(new[-1]) in (Neighbours, SVC)
        assert repr(new.get_params()) == repr(old.get_params())
        old.fit(features, labels), new.fit(features, labels)
        score = "predict_proba" if name == "knn" else "decision_function"
        np.testing.assert_array_equal(getattr(new, score)(features), getattr(old, score)(features))


@pytest.mark.parametrize("weights", ["uniform", "distance"])
def test_manhattan_neighbours_on_dense_rows_are_scikit_learns_on_the_sparse_table(
    weights: str, monkeypatch: pytest.MonkeyPatch
):
    """The dense route (for speed) gives the same neighbours, distances and probabilities
    as scikit-learn's own kNN on the sparse table, also when the queries are densified
    in several blocks (a block size that does not divide the rows)."""
    monkeypatch.setattr(scaling, "DENSE_BLOCK_ROWS", 37)
    features, labels = encoded(300, 4)
    table = sp.csr_matrix(features)
    queries = sp.csr_matrix(encoded(100, 5)[0])
    ours = Neighbours(n_neighbors=7, weights=weights, metric="manhattan").fit(table, labels)
    judge = KNeighborsClassifier(n_neighbors=7, weights=weights, metric="manhattan")
    judge.fit(table, labels)
    assert isinstance(ours._fit_X, np.ndarray) and sp.issparse(judge._fit_X)
    np.testing.assert_array_equal(ours.predict_proba(queries), judge.predict_proba(queries))
    np.testing.assert_array_equal(ours.predict(queries), judge.predict(queries))
    for mine, theirs in zip(ours.kneighbors(queries), judge.kneighbors(queries), strict=True):
        np.testing.assert_array_equal(mine, theirs)
    only = ours.kneighbors(queries, 3, return_distance=False)
    np.testing.assert_array_equal(only, judge.kneighbors(queries, 3, return_distance=False))


def test_other_metrics_keep_the_sparse_table():
    """Euclidean and cosine distances are fast on the sparse table: it is not densified."""
    features, labels = encoded(120, 6)
    fitted = Neighbours(metric="euclidean").fit(sp.csr_matrix(features), labels)
    assert sp.issparse(fitted._fit_X)


def test_above_the_threshold_the_affordable_forms_are_used_and_named():
    """Above it, rbf_svm maps onto the stated Nystroem components and knn looks up a
    class-stratified subsample of the stated size; both are described in words."""
    forms = affordable_forms(LARGE, 301, 0)
    assert forms.kernel_components == 40 and forms.knn_reference == 100
    features, labels = encoded(400, 2)
    svm = build_pipeline("rbf_svm", RBF, context(400)).fit(features, labels)
    kernel_map = svm[-1][0]
    assert isinstance(kernel_map, Nystroem) and kernel_map.n_components == 40
    assert kernel_map.gamma == RBF["gamma"] and kernel_map.random_state == 3
    knn = build_pipeline("knn", KNN, context(400)).fit(features, labels)[-1]
    assert isinstance(knn, SubsampledNeighbours) and len(knn.reference_rows_) == 100
    assert knn.neighbours_.n_samples_fit_ == 100
    shares = [np.mean(labels[knn.reference_rows_] == c) for c in ("background", "bound")]
    assert shares == [0.5, 0.5]  # stratified: the training set's class shares
    again = build_pipeline("knn", KNN, context(400)).fit(features, labels)[-1]
    np.testing.assert_array_equal(again.reference_rows_, knn.reference_rows_)  # seeded
    # a reference subsample as large as train is no subsample
    assert affordable_forms(LargeData(300, 40, 500, 1e12), 400, 0).knn_reference is None


def test_approximate_rbf_svm_still_learns_a_planted_motif():
    """The Nystroem-mapped SVM, fitted above the threshold, ranks held-out sequences with a
    planted TATAAT far above chance (the exact SVC's level, within a margin)."""
    train, train_labels = planted(600, 4)
    tune, tune_labels = planted(300, 5)
    features = SequenceFeatures((1, 2, 3)).fit(train)
    params = {"C": 1.0, "gamma": 1 / 84}  # 84 k-mer columns, standardised
    aurocs = {}
    for name, fitting in (("exact", FitContext(3, "balanced", 1, EXACT)), ("map", context(600))):
        model = fit_model("rbf_svm", params, features.transform(train), train_labels, fitting)
        margins = model.decision_function(features.transform(tune))
        aurocs[name] = roc_auc_score(tune_labels == "bound", margins)
    assert isinstance(model[-1][0], Nystroem)
    assert aurocs["map"] > 0.75 and aurocs["map"] > aurocs["exact"] - 0.1, aurocs


def test_stage_records_the_forms_it_used(tmp_path: Path):
    """A stage run above the threshold writes each model's form to summary.tsv and
    summary.json; one below it writes 'none' everywhere."""
    folder = make_split(tmp_path / "split", train=240, tune=120)
    large = {"above_sequences": 100, "kernel_components": 30, "knn_reference_sequences": 120}
    families = ["knn", "rbf_svm", "naive_bayes"]
    summary = run_baselines(
        folder, run_config(families=families, large_data=large), tmp_path / "large"
    )
    table = read_tsv(tmp_path / "large/summary.tsv").set_index("model")
    assert table.loc["knn", "approximation"] == (
        "reference subsample 120 of 240 (class-stratified, seed 3)"
    )
    assert table.loc["rbf_svm", "approximation"].startswith("nystroem(30 components, seed 3)")
    assert table.loc["naive_bayes", "approximation"] == "none"
    assert summary["approximations"]["above_sequences"] == 100
    assert summary["approximations"]["train_sequences"] == 240
    assert set(summary["approximations"]["used"]) >= {"knn", "rbf_svm"}
    small = run_baselines(folder, run_config(families=families), tmp_path / "small")
    assert small["approximations"]["used"] == {}
    assert set(read_tsv(tmp_path / "small/summary.tsv")["approximation"]) == {"none"}


def test_settings_decide_the_forms_once_for_the_training_set():
    config = run_config(large_data={"above_sequences": 1000})
    settings = baseline_settings(baselines_settings(config, {"sequence_type": "dna"}), 1)
    assert for_training_set(settings, 1000, 10).fitting.forms == affordable_forms(
        settings.large_data, 1000, 10
    )
    assert for_training_set(settings, 1001, 10).fitting.forms.kernel_components == 500
    assert for_training_set(settings, 1001, 10).fitting.forms.knn_reference is None  # 5,000 > N


def test_a_wide_table_maps_the_kernel_below_the_size_threshold():
    """An exact SVC's cost is about N x the table's non-zeros: above kernel_map_above the
    RBF SVM is mapped whatever N, and nothing else changes (the kNN stays exact)."""
    large = LargeData(5000, 500, 5000, kernel_map_above=1e9)
    assert affordable_forms(large, 2000, 500_000).kernel_components is None  # work 1e9
    wide = affordable_forms(large, 2000, 500_001)
    assert wide.kernel_components == 500 and wide.knn_reference is None
    assert wide.kernel_work == 1_000_002_000


def test_stage_maps_the_kernel_of_a_wide_table_and_records_its_work(tmp_path: Path):
    folder = make_split(tmp_path / "split", train=240, tune=120)
    config = run_config(families=["rbf_svm", "knn"], large_data={"kernel_map_above": 1000})
    summary = run_baselines(folder, config, tmp_path / "wide")
    record = summary["approximations"]
    assert "rbf_svm" in record["used"] and "knn" not in record["used"]
    assert record["kernel_map_above"] == 1000
    # the independent count: non-zero k-mer frequencies (k = 1-3) of every training sequence
    train = read_tsv(folder / "train.tsv")
    distinct = sum(
        len({s[i : i + k] for i in range(len(s) - k + 1)})
        for s in train["sequence"]
        for k in (1, 2, 3)
    )
    assert record["kernel_work"] == 240 * distinct
    exact = run_baselines(folder, run_config(families=["rbf_svm"]), tmp_path / "exact")
    assert exact["approximations"]["used"] == {}


def test_kmers_are_hashed_only_above_the_column_limit():
    """A k with more possible k-mers than the limit is hashed into the limit's columns, with
    its collision rate stated; k at or below it is counted exactly, as without a limit."""
    sequences, _ = planted(200, 6, length=120)
    exact = KmerFrequencies((2, 5)).fit(sequences)
    limited = KmerFrequencies((2, 5), max_columns=256, alphabet_size=4).fit(sequences)
    assert not limited.hashed(2) and limited.hashed(5) and not limited.hashed(4)
    table = limited.transform(sequences)
    assert sp.issparse(table) and table.shape[1] == 16 + 256
    np.testing.assert_array_equal(
        table[:, :16].toarray(), exact.transform(sequences)[:, :16].toarray()
    )
    np.testing.assert_allclose(table[:, 16:].sum(axis=1), 1.0)  # a block still sums to 1
    (rate,) = limited.hashing_
    assert rate["k"] == 5 and rate["columns"] == 256
    assert rate["distinct_kmers_in_train"] == len(exact.vectorizers_[1].vocabulary_) == 1024
    # 1,024 distinct 5-mers in 256 columns: nearly every one shares its column
    assert rate["colliding_share"] > 0.9 and rate["expected_colliding_share"] > 0.9
    assert limited.get_feature_names_out()[16] == "kmer5_hash_0"
    unlimited = KmerFrequencies((2, 5), max_columns=4096, alphabet_size=4).fit(sequences)
    assert unlimited.hashing_ == []
    np.testing.assert_array_equal(
        unlimited.transform(sequences).toarray(), exact.transform(sequences).toarray()
    )


@pytest.mark.parametrize(("fitted_on", "dense"), [(300, True), (301, False)])
def test_a_mostly_zero_table_stays_sparse_only_on_a_large_training_set(fitted_on, dense):
    """Protein 1-2-mers of short peptides are mostly zeros: dense (as always) up to the
    threshold, CSR above it, with the same values; the choice holds for every partition."""
    alphabet = "ACDEFGHIKLMNPQRSTVWY"
    table = planted_table(fitted_on, 7, {"a": None, "b": "KWK"}, length=20, alphabet=alphabet)
    sequences = table["sequence"].tolist()
    features = SequenceFeatures((1, 2), sparse_above_sequences=300).fit(sequences)
    values = features.transform(sequences[:5])  # a small partition gets the same form
    assert sp.issparse(values) is not dense
    old = SequenceFeatures((1, 2)).fit(sequences).transform(sequences[:5])
    np.testing.assert_array_equal(values.toarray() if sp.issparse(values) else values, old)


def test_probabilities_keep_the_ranking_of_a_strongly_regularised_svm():
    """Platt scaling must not reverse the margins the search chose: with C 0.1 and gamma
    1e-5 the out-of-fold margins run against the labels, and the sigmoid fitted to them
    turned tune AUROC 0.80 (margins) into 0.20 (probabilities)."""
    table = planted_table(700, 10, {"background": None, "bound": "TGACTCA"}, length=200)
    held_out = planted_table(300, 20, {"background": None, "bound": "TGACTCA"}, length=200)
    features = SequenceFeatures((1, 2, 3, 4)).fit(table["sequence"])
    train, tune = features.transform(table["sequence"]), features.transform(held_out["sequence"])
    fitting = FitContext(3, "balanced", 1, EXACT)
    params = {"C": 0.1, "gamma": 1e-5}
    model = fit_model("rbf_svm", params, train, table["label"].to_numpy(), fitting, True)
    scaled = model[:-1].transform(tune)
    margins = model[-1].calibrated_classifiers_[0].estimator.decision_function(scaled)
    bound = held_out["label"].to_numpy() == "bound"
    probability = model.predict_proba(tune)[:, list(model.classes_).index("bound")]
    assert roc_auc_score(bound, margins) > 0.7
    assert roc_auc_score(bound, probability) == pytest.approx(roc_auc_score(bound, margins))
