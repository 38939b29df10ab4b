"""Interpret: on planted-motif DNA the explanations must point at the motif.

A tiny Keras CNN (same shape as deeprules.cnn's: 'same' Conv1D + ReLU, max over
positions, sigmoid) and small sklearn pipelines are trained here, seeded and
deterministic, on sequences where 'bound' carries TGACTCA at a known place.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from planted import planted_table

keras = pytest.importorskip("keras")
import tensorflow as tf  # noqa: E402
from sklearn.dummy import DummyClassifier  # noqa: E402
from sklearn.ensemble import RandomForestClassifier  # noqa: E402
from sklearn.feature_extraction.text import CountVectorizer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402

from deeprules import encoding  # noqa: E402
from deeprules.evaluate import model_fingerprint  # noqa: E402
from deeprules.interpret import run  # noqa: E402
from deeprules.interpret.baselines import explain_baselines  # noqa: E402
from deeprules.io import (  # noqa: E402
    InputError,
    read_json,
    read_tsv,
    sha256_of,
    write_json,
    write_tsv,
)
from deeprules.rule import Job  # noqa: E402

MOTIF = "TGACTCA"
LENGTH = 50
SETTINGS = {
    "top_features": 10,
    "permutation_repeats": 3,
    "permutation_max_features": 40,
    "permutation_max_sequences": 500,
    "permutation_incremental_above": 10**9,
    "attribution_samples": 60,
    "ig_steps": 32,
    "filter_sequences": 600,
    "activation_threshold": 0.5,
    "logo_filters": 4,
    "example_sequences": 2,
}


def planted(n: int, seed: int) -> pd.DataFrame:
    """Random DNA; every second sequence is 'bound' and carries MOTIF at `motif_start`."""
    return planted_table(n, seed, {"background": None, "bound": MOTIF}, length=LENGTH)


def train_cnn(train: pd.DataFrame) -> keras.Model:
    keras.utils.set_random_seed(0)
    tf.config.experimental.enable_op_determinism()
    x = encoding.one_hot(train["sequence"].tolist(), "dna", LENGTH)
    y = (train["label"] == "bound").to_numpy().astype("float32")
    inputs = keras.Input((LENGTH, 4), name="one_hot")
    hidden = keras.layers.Conv1D(8, 9, padding="same", activation="relu", name="conv1")(inputs)
    hidden = keras.layers.GlobalMaxPooling1D()(hidden)
    output = keras.layers.Dense(1, activation="sigmoid", name="probability")(hidden)
    model = keras.Model(inputs, output)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy")
    model.fit(x, y, epochs=12, batch_size=64, verbose=0, shuffle=True)
    return model


def kmer_pipeline(estimator):
    return make_pipeline(
        CountVectorizer(analyzer="char", ngram_range=(4, 4), lowercase=False), estimator
    )


@pytest.fixture(scope="module")
def interpreted(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("interpret")
    table = planted(1600, seed=11)
    train, tune = table.iloc[:1200], table.iloc[1200:].reset_index(drop=True)
    write_tsv(folder / "split/tune.tsv", tune)

    model = train_cnn(train)
    (folder / "cnn").mkdir()
    model.save(folder / "cnn/model.keras")
    write_json(folder / "cnn/summary.json", {"classes": ["background", "bound"]})

    x, y = np.asarray(train["sequence"], dtype=object), train["label"]
    baselines = {
        "logistic_regression": kmer_pipeline(LogisticRegression(max_iter=2000)),
        "random_forest": kmer_pipeline(RandomForestClassifier(60, random_state=0, n_jobs=1)),
        "majority": kmer_pipeline(DummyClassifier()),
    }
    (folder / "baselines/models").mkdir(parents=True)
    for name, pipeline in baselines.items():
        joblib.dump(pipeline.fit(x, y), folder / f"baselines/models/{name}.joblib")
    roles = ["baseline", "baseline", "control"]
    write_tsv(
        folder / "baselines/summary.tsv", pd.DataFrame({"model": list(baselines), "role": roles})
    )
    out = folder / "interpret"
    outputs = {
        "summary": "summary.json",
        "importance": "baseline_importance.tsv",
        "importance_plot": "baseline_importance.png",
        "attributions": "attributions.tsv",
        "attributions_plot": "attributions.png",
        "filters": "filters.tsv",
        "filter_logos": "filter_logos.png",
    }
    inputs = {
        "tune": folder / "split/tune.tsv",
        "baselines_summary": folder / "baselines/summary.tsv",
        "baseline_models": [folder / f"baselines/models/{name}.joblib" for name in baselines],
        "cnn_model": folder / "cnn/model.keras",
        "cnn_summary": folder / "cnn/summary.json",
    }
    settings = {
        "dataset": {"name": "planted", "sequence_type": "dna"},
        "interpret": SETTINGS,
        "seed": 5,
    }
    run(Job(inputs, {name: out / file for name, file in outputs.items()}, settings))
    return folder


def motif_kmers(k: int) -> set[str]:
    return {MOTIF[i : i + k] for i in range(len(MOTIF) - k + 1)}


@pytest.mark.parametrize("method", ["ism", "integrated_gradients"])
def test_top_attributions_fall_on_the_planted_motif(interpreted, method):
    attributions = read_tsv(interpreted / "interpret/attributions.tsv")
    tune = read_tsv(interpreted / "split/tune.tsv").set_index("id")
    assert set(attributions["label"]) == {"bound"}  # binary: the positive class is explained
    hits = []
    for sequence_id, rows in attributions.groupby("id"):
        top = int(rows.iloc[np.argmax(rows[method].astype(float).to_numpy())]["position"]) - 1
        start = int(tune.loc[sequence_id, "motif_start"])
        hits.append(start <= top < start + len(MOTIF))
    assert len(hits) == SETTINGS["attribution_samples"]
    assert np.mean(hits) >= 0.8, f"{method}: top attribution on the motif in {np.mean(hits):.0%}"


def best_alignment(frequencies: np.ndarray, motif: str) -> int:
    """Most positions at which the filter's most likely letter equals the motif's, any offset."""
    consensus = "".join("ACGT"[i] for i in frequencies.argmax(axis=1))
    padded = "-" * len(motif) + consensus + "-" * len(motif)
    return max(
        sum(a == b for a, b in zip(padded[i : i + len(motif)], motif, strict=True))
        for i in range(len(padded) - len(motif) + 1)
    )


def test_one_filter_logo_matches_the_planted_motif(interpreted):
    filters = read_tsv(interpreted / "interpret/filters.tsv")
    summary = read_json(interpreted / "interpret/summary.json")["cnn"]
    matches = {}
    for number, rows in filters.groupby("filter"):
        frequencies = rows.pivot(index="position", columns="letter", values="probability")
        matches[int(number)] = best_alignment(
            frequencies[list("ACGT")].astype(float).to_numpy(), MOTIF
        )
    assert max(matches.values()) >= len(MOTIF) - 1, matches
    # the best-matching filter is among those drawn as logos (ranked by information content)
    assert max(matches, key=matches.get) in summary["top_filters"]
    assert (interpreted / "interpret/filter_logos.png").stat().st_size > 1000
    assert summary["jaspar"].startswith("not run")


def test_attribution_methods_agree_on_planted_sequences(interpreted):
    summary = read_json(interpreted / "interpret/summary.json")["cnn"]
    assert summary["sequences_explained"] == SETTINGS["attribution_samples"]
    assert summary["ism_ig_spearman_median"] > 0.3


def test_baseline_importance_finds_motif_kmers(interpreted):
    table = read_tsv(interpreted / "interpret/baseline_importance.tsv")
    summary = read_json(interpreted / "interpret/summary.json")
    assert summary["controls_not_explained"] == ["majority"]
    assert set(table["model"]) == {"logistic_regression", "random_forest"}
    linear = table[table["model"] == "logistic_regression"].head(3)
    assert set(linear["method"]) == {"coefficient"}
    assert set(linear["feature"]) <= motif_kmers(4)
    assert (linear["favours"] == "bound").all()
    forest = table[table["model"] == "random_forest"].head(2)
    assert forest["method"].str.startswith("permutation").all()
    assert set(forest["feature"]) <= motif_kmers(4)
    bounds = summary["permutation_importance"]
    assert bounds["sequences_used"] == min(bounds["tune_sequences"], 500)
    assert list(bounds["models"]) == ["random_forest"]  # the linear model has coefficients


def test_keras_fingerprint_ignores_the_save_date(interpreted, tmp_path):
    """Evaluate's access ledger: re-saving the same weights is not a new model."""
    original = interpreted / "cnn/model.keras"
    copy = tmp_path / "model.keras"
    with zipfile.ZipFile(original) as source, zipfile.ZipFile(copy, "w") as target:
        for name in source.namelist():
            data = source.read(name)
            if name == "metadata.json":
                data = data.replace(b'"date_saved": "', b'"date_saved": "1999')
            target.writestr(name, data)
    assert sha256_of(copy) != sha256_of(original)
    assert model_fingerprint(copy) == model_fingerprint(original)


def small_model(seed: int) -> keras.Model:
    """Unnamed layers get per-process counters (dropout, dropout_1, ...) as they are built."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((LENGTH, 4))
    hidden = keras.layers.Conv1D(4, 5, padding="same", activation="relu")(inputs)
    hidden = keras.layers.Dropout(0.2)(keras.layers.GlobalMaxPooling1D()(hidden))
    return keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(hidden))


def with_shared_object_ids(path: Path) -> None:
    """What Keras writes for shared objects: an id that changes on every save."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(members["config.json"])
    config["config"]["layers"][1]["config"]["kernel_initializer"]["shared_object_id"] = 1234
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def test_keras_fingerprint_is_weights_architecture_and_encoding(tmp_path):
    """An identical retrain is the same model for the test-access ledger; other weights,
    another input length or another class order are not."""
    summary = {
        "classes": ["background", "bound"],
        "encoding": {
            "sequence_type": "dna",
            "alphabet": "ACGT",
            "length": LENGTH,
            "mask_padding": True,
            "truncated": {"train": 0},
        },
    }
    paths = {name: tmp_path / f"{name}.keras" for name in ("first", "again", "other")}
    small_model(0).save(paths["first"])
    again = small_model(0)
    assert [layer.name for layer in again.layers] != [
        layer.name for layer in keras.models.load_model(paths["first"]).layers
    ]
    again.save(paths["again"])
    with_shared_object_ids(paths["again"])
    small_model(1).save(paths["other"])
    assert sha256_of(paths["again"]) != sha256_of(paths["first"])
    fingerprint = model_fingerprint(paths["first"], summary)
    assert model_fingerprint(paths["again"], summary) == fingerprint
    assert (
        model_fingerprint(
            paths["again"],
            {**summary, "encoding": {**summary["encoding"], "truncated": {"train": 3}}},
        )
        == fingerprint
    )  # not used to score
    assert model_fingerprint(paths["other"], summary) != fingerprint
    longer = {**summary, "encoding": {**summary["encoding"], "length": LENGTH + 1}}
    assert model_fingerprint(paths["first"], longer) != fingerprint
    swapped = {**summary, "classes": ["bound", "background"]}
    assert model_fingerprint(paths["first"], swapped) != fingerprint


def test_permutation_importance_predicts_on_a_seeded_stratified_sample():
    """Large tune sets are sampled, by label and by seed, so the cost is bounded and a
    rerun (or a SLURM run) gives the same importances."""
    from deeprules.sampling import stratified_rows

    labels = np.array(["a"] * 300 + ["b"] * 100)
    rows = stratified_rows(labels, 80, seed=3)
    assert len(rows) == 80 and len(set(rows)) == 80
    assert (labels[rows] == "b").sum() == 20  # the 3:1 label mix is kept
    np.testing.assert_array_equal(rows, stratified_rows(labels, 80, seed=3))
    np.testing.assert_array_equal(stratified_rows(labels, 500, seed=3), np.arange(400))


def test_baselines_summary_without_roles_or_model_files_is_a_clear_error(tmp_path):
    """The role column decides what is explained; every baseline needs its joblib input."""
    tune = planted(10, seed=1)
    write_tsv(tmp_path / "old.tsv", pd.DataFrame({"model": ["random_forest"]}))
    with pytest.raises(InputError, match=r"no 'role' column"):
        explain_baselines(tmp_path / "old.tsv", [], tune, SETTINGS, seed=0)
    roles = {"model": ["random_forest", "majority"], "role": ["baseline", "control"]}
    summary = pd.DataFrame(roles)
    write_tsv(tmp_path / "summary.tsv", summary)
    with pytest.raises(InputError, match=r"random_forest.joblib is among"):
        explain_baselines(tmp_path / "summary.tsv", [], tune, SETTINGS, seed=0)
    write_tsv(tmp_path / "controls.tsv", summary.iloc[1:])
    assert explain_baselines(tmp_path / "controls.tsv", [], tune, SETTINGS, seed=0) == (
        {},
        ["majority"],
    )
