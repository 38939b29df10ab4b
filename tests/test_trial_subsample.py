"""Tuning trials on a subsample of a large train, scored on a subsample of a large tune
(budget.trial_subsample, issue 20): the trials of every baseline family and of the CNN
fit on the same rows and are scored on the same rows, the chosen models are refitted on
all of train and scored on all of tune, and the report says so; at or below the
thresholds nothing changes."""

from __future__ import annotations

import json
import warnings

import joblib
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from test_baselines import make_split, run_baselines, run_config
from test_cnn import TINY_SPACE, planted_motif_table, stage_job

from deeprules.baselines import fitting
from deeprules.baselines.fitting import fit_model
from deeprules.baselines.scoring import score_model
from deeprules.baselines.settings import baseline_settings, feature_maker, for_training_set
from deeprules.cnn import run as run_cnn
from deeprules.cnn.data import encode_partition, trial_partitions
from deeprules.config import baselines_settings, validate_run_config
from deeprules.contracts import decide_classes
from deeprules.io import read_json, read_tsv
from deeprules.sampling import trial_rows, trial_subsample_record, trial_tune_rows

SMALL = {"above_sequences": 200, "sequences": 150, "tune_sequences": 3000}
SMALL_TUNE = {**SMALL, "tune_sequences": 80}  # the fixtures' tune partitions hold 120


def test_trial_rows_are_all_of_train_up_to_the_threshold_then_a_stratified_sample():
    labels = np.array(["a"] * 300 + ["b"] * 100)
    assert np.array_equal(
        trial_rows(labels, {"above_sequences": 400, "sequences": 100}, 1), np.arange(400)
    )
    rows = trial_rows(labels, {"above_sequences": 399, "sequences": 100}, 1)
    assert len(rows) == 100 and len(set(rows)) == 100 and np.all(np.diff(rows) > 0)
    assert (labels[rows] == "b").sum() == 25  # the classes' shares kept: 3 to 1
    assert np.array_equal(rows, trial_rows(labels, {"above_sequences": 399, "sequences": 100}, 1))
    assert not np.array_equal(
        rows, trial_rows(labels, {"above_sequences": 399, "sequences": 100}, 2)
    )
    subsample = {"above_sequences": 399, "sequences": 100, "tune_sequences": 3000}
    record = trial_subsample_record(400, 90, subsample, 1)
    assert record["subsampled"] and record["trial_sequences"] == 100
    assert not record["tune_subsampled"] and record["trial_tune_sequences"] == 90
    assert record["how"] == (
        "every trial fitted on 100 of 400 training sequences (class-stratified, seed 1), "
        "scored on all of tune; the chosen configuration refitted on all of train and "
        "scored on all of tune"
    )
    exact = trial_subsample_record(400, 90, {**subsample, "above_sequences": 400}, 1)
    assert not exact["subsampled"] and not exact["tune_subsampled"]
    assert exact["how"] == "every trial fitted on all of train, scored on all of tune"


def test_trial_tune_rows_are_all_of_tune_up_to_tune_sequences_then_a_stratified_sample():
    labels = np.array(["a", "a", "a", "b"] * 100)
    subsample = {"above_sequences": 5000, "sequences": 2000, "tune_sequences": 400}
    assert np.array_equal(trial_tune_rows(labels, subsample, 1), np.arange(400))
    rows = trial_tune_rows(labels, {**subsample, "tune_sequences": 200}, 1)
    assert len(rows) == 200 and len(set(rows)) == 200 and np.all(np.diff(rows) > 0)
    assert (labels[rows] == "b").sum() == 50  # the classes' shares kept: 3 to 1
    # one row fewer than the tune partition: fewer rows left out than there are classes
    one_fewer = trial_tune_rows(labels, {**subsample, "tune_sequences": 399}, 1)
    assert len(set(one_fewer)) == 399 and (labels[one_fewer] == "b").sum() == 100
    record = trial_subsample_record(1000, 400, {**subsample, "tune_sequences": 200}, 1)
    assert record["tune_subsampled"] and record["trial_tune_sequences"] == 200
    assert not record["subsampled"]
    assert record["how"] == (
        "every trial fitted on all of train, scored on 200 of 400 tune sequences "
        "(class-stratified, seed 1); the chosen configuration refitted on all of train "
        "and scored on all of tune"
    )


def test_baselines_and_cnn_trials_draw_the_same_training_sequences(tmp_path):
    """Tip 2: the same trials on the same data. The CNN takes its rows from its encoded
    partition, the baselines from the train table; the ids must agree."""
    train = planted_motif_table(300, seed=1)
    classes = decide_classes(train["label"], "bound", "train")
    spec = {"trial_subsample": {**SMALL, "tune_sequences": 200}, "seed": 5}
    part = encode_partition(train, list(classes.names), "dna", 80, "train.tsv")
    cnn_train, cnn_tune = trial_partitions(part, part, spec)  # train as its own tune
    baseline_ids = train["id"].to_numpy()[trial_rows(train["label"].to_numpy(), SMALL, 5)]
    assert len(cnn_train.ids) == 150 and cnn_train.ids == baseline_ids.tolist()
    tune_rows = trial_tune_rows(train["label"].to_numpy(), spec["trial_subsample"], 5)
    assert len(cnn_tune.ids) == 200 and cnn_tune.ids == train["id"].to_numpy()[tune_rows].tolist()
    streamed = np.memmap(tmp_path / "tokens", dtype=np.uint8, mode="w+", shape=part.tokens.shape)
    streamed[:] = part.tokens
    part.tokens = streamed
    subset, _ = trial_partitions(part, part, spec)
    assert not subset.streamed and subset.ids == cnn_train.ids
    assert np.array_equal(subset.tokens, streamed[trial_rows(np.asarray(part.labels), SMALL, 5)])


def replay_tables(folder, config):
    """What an independent replay of a trial needs: the stage's settings, the partitions
    of `folder`, both encoded as the stage encodes them, and the classes."""
    settings = baseline_settings(baselines_settings(config, {"sequence_type": "dna"}), 1)
    train, tune = read_tsv(folder / "train.tsv"), read_tsv(folder / "tune.tsv")
    features = feature_maker(settings).fit(train["sequence"])
    train_x, tune_x = features.transform(train["sequence"]), features.transform(tune["sequence"])
    settings = for_training_set(settings, len(train), np.count_nonzero(train_x))
    classes = decide_classes(train["label"], "bound", "train")
    return settings, train, tune, train_x, tune_x, classes


@pytest.fixture(scope="module")
def subsampled_baselines(tmp_path_factory):
    """knn and logistic regression, 3 trials each, on 240 training sequences of which every
    trial sees 150."""
    folder = make_split(tmp_path_factory.mktemp("split"), train=240)
    config = run_config(trials=3, families=["knn", "logistic_regression"])
    config["budget"]["trial_subsample"] = SMALL
    out = folder.parent / "baselines"
    return folder, config, out, run_baselines(folder, config, out)


def test_baseline_trials_fit_on_the_subsample_and_the_chosen_models_on_all_of_train(
    subsampled_baselines,
):
    folder, config, out, summary = subsampled_baselines
    trials = read_tsv(out / "trials.tsv")
    assert set(trials["train_sequences"]) == {"150"} and len(trials) == 6
    assert summary["trial_subsample"]["trial_sequences"] == 150
    assert summary["trial_subsample"]["train_sequences"] == 240
    knn = joblib.load(out / "models/knn.joblib")
    assert knn.steps[-1][1].n_samples_fit_ == 240  # the refit saw all of train
    # An independent replay of the first knn trial: fitted on the subsample's rows it
    # gives the trial's score; fitted on all of train it does not.
    settings, train, tune, train_x, tune_x, classes = replay_tables(folder, config)
    first = trials[trials["family"] == "knn"].iloc[0]
    params = json.loads(first["params"])
    rows = trial_rows(train["label"].to_numpy(), SMALL, settings.seed)

    def tune_auroc(index: np.ndarray) -> float:
        model = fit_model(
            "knn", params, train_x[index], train["label"].to_numpy()[index], settings.fitting
        )
        return score_model(model, tune_x, tune["label"].to_numpy(), classes)["auroc"]

    assert tune_auroc(rows) == pytest.approx(float(first["auroc"]), abs=1e-9)
    assert tune_auroc(np.arange(240)) != pytest.approx(float(first["auroc"]), abs=1e-6)


@pytest.fixture(scope="module")
def tune_subsampled_baselines(tmp_path_factory):
    """knn, 3 trials, on 240 training sequences (150 per trial) and 120 tune sequences,
    of which every trial is scored on 80."""
    folder = make_split(tmp_path_factory.mktemp("split"), train=240)
    config = run_config(trials=3, families=["knn"])
    config["budget"]["trial_subsample"] = SMALL_TUNE
    out = folder.parent / "baselines"
    return folder, config, out, run_baselines(folder, config, out)


def test_baseline_trials_are_scored_on_the_tune_sample_and_the_chosen_model_on_all_of_tune(
    tune_subsampled_baselines,
):
    """An independent replay: the first trial's model, scored on the stratified sample of
    80 tune rows (drawn here with scikit-learn), gives its trials.tsv AUROC and on all of
    tune it does not; the saved refit scored on all 120 gives summary.tsv's tune AUROC."""
    folder, config, out, summary = tune_subsampled_baselines
    trials = read_tsv(out / "trials.tsv")
    assert set(trials["tune_sequences"]) == {"80"} and set(trials["train_sequences"]) == {"150"}
    record = summary["trial_subsample"]
    assert record["tune_subsampled"] and record["trial_tune_sequences"] == 80
    assert record["tune_sequences"] == 120
    settings, train, tune, train_x, tune_x, classes = replay_tables(folder, config)
    tune_y = tune["label"].to_numpy()
    scored, _ = train_test_split(
        np.arange(120), train_size=80, stratify=tune_y, random_state=settings.seed
    )
    scored = np.sort(scored)
    first = trials.iloc[0]
    rows = trial_rows(train["label"].to_numpy(), SMALL, settings.seed)
    model = fit_model(
        "knn",
        json.loads(first["params"]),
        train_x[rows],
        train["label"].to_numpy()[rows],
        settings.fitting,
    )
    on_sample = score_model(model, tune_x[scored], tune_y[scored], classes)["auroc"]
    assert on_sample == pytest.approx(float(first["auroc"]), abs=1e-9)
    on_all = score_model(model, tune_x, tune_y, classes)["auroc"]
    assert on_all != pytest.approx(float(first["auroc"]), abs=1e-6)
    refit = joblib.load(out / "models/knn.joblib")
    positive = list(refit.classes_).index("bound")
    refit_auroc = roc_auc_score(
        tune_y == "bound", refit.predict_proba(tune["sequence"])[:, positive]
    )
    table = read_tsv(out / "summary.tsv").set_index("model")
    assert float(table.loc["knn", "auroc"]) == pytest.approx(refit_auroc, abs=1e-5)


def test_at_the_threshold_every_trial_fits_on_all_of_train(tmp_path):
    folder = make_split(tmp_path / "split", train=200)
    config = run_config(trials=1, families=["logistic_regression"])
    config["budget"]["trial_subsample"] = SMALL
    summary = run_baselines(folder, config, tmp_path / "out")
    assert set(read_tsv(tmp_path / "out/trials.tsv")["train_sequences"]) == {"200"}
    assert not summary["trial_subsample"]["subsampled"]


def test_cnn_trials_train_on_the_subsample_and_the_refit_on_all_of_train(tmp_path):
    job = stage_job(tmp_path, trials=2, n_train=300, max_epochs=1, search_space=TINY_SPACE)
    job.settings["trial_subsample"] = SMALL
    run_cnn(job)
    trials = read_tsv(job.outputs["trials"])
    assert set(trials["train_sequences"]) == {"150"}
    summary = read_json(job.outputs["summary"])
    assert summary["final_model"]["train_sequences"] == 300
    assert summary["tuning"]["trial_subsample"]["subsampled"]
    predictions = read_tsv(job.outputs["predictions"])
    assert (predictions["partition"] == "train").sum() == 300


def test_cnn_trials_validate_on_the_tune_sample_and_the_refit_on_all_of_tune(tmp_path):
    """Every trial's tune AUROC comes from the 80 sampled tune rows, the refit's from all
    120 (replayed here from the saved model's tune predictions)."""
    job = stage_job(tmp_path, trials=2, n_train=300, max_epochs=1, search_space=TINY_SPACE)
    job.settings["trial_subsample"] = SMALL_TUNE
    run_cnn(job)
    trials = read_tsv(job.outputs["trials"])
    assert set(trials["tune_sequences"]) == {"80"} and set(trials["train_sequences"]) == {"150"}
    summary = read_json(job.outputs["summary"])
    record = summary["tuning"]["trial_subsample"]
    assert record["tune_subsampled"] and record["trial_tune_sequences"] == 80
    predictions = read_tsv(job.outputs["predictions"])
    tune = predictions[predictions["partition"] == "tune"]
    assert len(tune) == 120
    replayed = roc_auc_score(tune["label"] == "bound", tune["score_bound"].astype(float))
    assert summary["final_model"]["tune_auroc"] == pytest.approx(replayed, abs=1e-4)


def test_the_default_config_subsamples_only_above_5000_training_sequences():
    subsample = validate_run_config({"datasets": ["x"]})["budget"]["trial_subsample"]
    assert subsample == {"above_sequences": 5000, "sequences": 2000, "tune_sequences": 3000}
    labels = np.array(["a", "b"] * 2500)
    assert len(trial_rows(labels, subsample, 42)) == 5000
    assert len(trial_rows(np.append(labels, "a"), subsample, 42)) == 2000
    assert len(trial_tune_rows(labels[:3000], subsample, 42)) == 3000
    assert len(trial_tune_rows(labels[:3001], subsample, 42)) == 3000


class PlantedWarning(UserWarning):
    """Raised by nothing but the test below."""


def test_a_refit_that_warns_says_so_when_its_trials_did_not(tmp_path, monkeypatch):
    """Trials on a subsample cannot speak for the refit on all of train: a planted
    warning raised only by fits on more than the subsample's 150 sequences reaches the
    model's note in summary.tsv, and no trial row."""
    fit_model = fitting.fit_model

    def warns_on_all_of_train(name, params, features, labels, *args, **kwargs):
        if len(labels) > SMALL["sequences"] and name == "naive_bayes":
            warnings.warn("planted", PlantedWarning, stacklevel=1)
        return fit_model(name, params, features, labels, *args, **kwargs)

    monkeypatch.setattr(fitting, "fit_model", warns_on_all_of_train)
    folder = make_split(tmp_path / "split", train=240)
    config = run_config(trials=2, families=["naive_bayes", "random_forest"])
    config["budget"]["trial_subsample"] = SMALL
    run_baselines(folder, config, tmp_path / "out")
    trials = read_tsv(tmp_path / "out/trials.tsv")
    assert set(trials["train_sequences"]) == {"150"}
    assert not trials["warnings"].fillna("").str.contains("PlantedWarning").any()
    notes = read_tsv(tmp_path / "out/summary.tsv").set_index("model")["note"].fillna("")
    assert notes["naive_bayes"] == "refit on all of train raised PlantedWarning"
    assert "PlantedWarning" not in notes["random_forest"]
