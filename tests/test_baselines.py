"""Baselines: tuned families beat the controls on a planted motif; test is never opened."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from conftest import REPO, SNAKEMAKE, write_yaml
from planted import planted_table

from deeprules.baselines import CONTROLS, FAMILIES, REGISTRY, output_paths, parallel, run
from deeprules.baselines.controls import shuffled_warning
from deeprules.baselines.families import build_pipeline
from deeprules.baselines.fitting import Fitted
from deeprules.baselines.scoring import chance_auroc_error
from deeprules.baselines.settings import PROBE_CONTEXT, baseline_settings, candidates
from deeprules.config import baselines_settings, validate_run_config
from deeprules.contracts import Classes, decide_classes
from deeprules.features import KmerFrequencies, PhysicochemicalDescriptors, ShortcutFeatures
from deeprules.io import InputError, read_json, read_tsv, write_tsv
from deeprules.rule import Job

MOTIFS = {"bound": "TATAAT", "enhancer": "GGATCC"}
OPENED: list[str] = []
# While the stage runs: a file descriptor every open is written to, so that the
# forked workers that tune families side by side are recorded too.
RECORDING: dict[str, int | None] = {"fd": None}


def _record_opens(event: str, args: tuple) -> None:
    fd = RECORDING["fd"]
    if fd is not None and event == "open" and isinstance(args[0], str | Path):
        os.write(fd, f"{args[0]}\n".encode())


sys.addaudithook(_record_opens)


def partition(count: int, seed: int, classes: tuple[str, ...], prefix: str) -> pd.DataFrame:
    """Random DNA of 50 nt; every class but the first carries its motif."""
    motifs = {label: MOTIFS.get(label) for label in classes}
    return planted_table(count, seed, motifs, length=50, prefix=prefix).drop(columns="motif_start")


def make_split(
    folder: Path, classes=("background", "bound"), train=240, tune=120, positive="bound"
) -> Path:
    """train.tsv, tune.tsv, the split report with the classes, and a test.tsv the stage
    must never open."""
    train_table = partition(train, 1, classes, "tr")
    write_tsv(folder / "train.tsv", train_table)
    write_tsv(folder / "tune.tsv", partition(tune, 2, classes, "tu"))
    write_tsv(folder / "test.tsv", partition(tune, 3, classes, "te"))
    decided = decide_classes(train_table["label"], positive if len(classes) == 2 else None, "train")
    (folder / "split_report.json").write_text(json.dumps(decided.to_json()))
    return folder


def run_config(trials: int = 2, **baselines) -> dict:
    baselines.setdefault("kmer_sizes", {"dna": [1, 2, 3]})
    return validate_run_config(
        {"datasets": ["toy"], "seed": 3, "budget": {"trials": trials}, "baselines": baselines}
    )


DNA = {"name": "toy", "sequence_type": "dna"}


def run_baselines(
    folder: Path, config: dict, out: Path, threads: int = 1, dataset: dict = DNA
) -> dict:
    """The stage as its rule runs it, on split/ in `folder`; returns summary.json."""
    job = Job(
        inputs={
            "train": folder / "train.tsv",
            "tune": folder / "tune.tsv",
            "split_report": folder / "split_report.json",
        },
        outputs=output_paths(out, config["baselines"]["families"]),
        settings=baselines_settings(config, dataset),
        threads=threads,
    )
    run(job)
    return read_json(out / "summary.json")


@pytest.fixture(scope="module")
def stage(tmp_path_factory) -> Path:
    """Every family, 2 trials each, on a planted-motif set, recording every file opened."""
    root = tmp_path_factory.mktemp("stage")
    folder = make_split(root / "split")
    out = root / "baselines"
    opened = root / "opened.txt"
    RECORDING["fd"] = os.open(opened, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        run_baselines(folder, run_config(), out, threads=2)
    finally:
        os.close(RECORDING["fd"])
        RECORDING["fd"] = None
    OPENED[:] = opened.read_text().splitlines()
    return out


def test_best_baseline_beats_shuffled_label_control(stage):
    summary = read_tsv(stage / "summary.tsv").set_index("model")
    auroc = summary["auroc"].astype(float)
    best = summary[summary["kind"] == "tuned"]["mcc"].astype(float).idxmax()
    assert auroc[best] > 0.9
    assert abs(auroc["control_shuffled"] - 0.5) <= 0.15
    assert auroc[best] - auroc["control_shuffled"] > 0.3
    assert float(summary.loc["control_majority", "mcc"]) == 0.0
    assert summary["rank"].astype(int).tolist() == list(range(1, len(summary) + 1))
    summary_json = read_json(stage / "summary.json")
    assert summary_json["warnings"] == []
    aurocs = summary_json["shuffled_control_aurocs"]
    assert len(aurocs) == 5 and aurocs[0] == pytest.approx(auroc["control_shuffled"], abs=1e-6)
    assert abs(np.mean(aurocs) - 0.5) <= 0.1


def test_stage_never_opens_the_test_partition(stage):
    names = {Path(p).name for p in OPENED}
    assert {"train.tsv", "tune.tsv"} <= names
    assert "test.tsv" not in names
    predictions = read_tsv(stage / "predictions.tsv")
    assert set(predictions["partition"]) == {"train", "tune"}
    assert not predictions["id"].str.startswith("te").any()


def test_every_family_gets_exactly_the_trial_budget(stage):
    trials = read_tsv(stage / "trials.tsv")
    assert trials.groupby("family").size().to_dict() == dict.fromkeys(FAMILIES, 2)
    assert {"params", "score", "auroc", "auprc", "fit_seconds"} <= set(trials.columns)
    assert all(isinstance(json.loads(p), dict) for p in trials["params"])


def test_saved_models_take_sequences_and_give_probabilities(stage):
    tune = partition(20, 9, ("background", "bound"), "new")
    for name in (*FAMILIES, *CONTROLS):
        model = joblib.load(stage / "models" / f"{name}.joblib")
        probabilities = model.predict_proba(np.asarray(tune["sequence"], dtype=object))
        assert probabilities.shape == (20, 2)
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
        assert list(model.classes_) == ["background", "bound"]
        assert read_json(stage / "params" / f"{name}.json")["model"] == name


def test_random_split_is_reported_beside_the_homology_split(stage):
    inflation = read_json(stage / "inflation.json")
    assert inflation["family"] in FAMILIES
    assert set(inflation["homology_split"]) == set(inflation["random_split"])
    gap = inflation["random_split"]["mcc"] - inflation["homology_split"]["mcc"]
    assert inflation["inflation"]["mcc"] == pytest.approx(gap)
    assert (stage / "inflation.png").stat().st_size > 0


def test_multiclass_scores_every_class_and_ranks_by_macro_auroc(tmp_path):
    classes = ("background", "bound", "enhancer")
    folder = make_split(tmp_path / "split", classes=classes, train=180, tune=90)
    config = run_config(families=["logistic_regression", "naive_bayes"])
    summary = run_baselines(folder, config, tmp_path / "b")
    assert summary["primary_metric"] == "auroc" and summary["positive_class"] is None
    predictions = read_tsv(tmp_path / "b/predictions.tsv")
    columns = [f"score_{c}" for c in classes]
    assert "score" not in predictions.columns
    np.testing.assert_allclose(predictions[columns].astype(float).sum(axis=1), 1.0)
    best = summary["models"][summary["best_tuned"]["model"]]["tune"]
    assert best["macro_f1"] > 0.6  # chance is 1/3


def test_same_seed_gives_identical_trials_and_scores(tmp_path):
    folder = make_split(tmp_path / "split", train=120, tune=60)
    config = run_config(trials=3, families=["random_forest", "logistic_regression"])
    runs = []
    for name in ("first", "second"):
        run_baselines(folder, config, tmp_path / name)
        trials = read_tsv(tmp_path / name / "trials.tsv").drop(columns="fit_seconds")
        summary = read_tsv(tmp_path / name / "summary.tsv").drop(columns="fit_seconds")
        runs.append((trials, summary))
    pd.testing.assert_frame_equal(runs[0][0], runs[1][0])
    pd.testing.assert_frame_equal(runs[0][1], runs[1][1])


def test_families_tuned_side_by_side_give_the_numbers_of_one_process(tmp_path, monkeypatch):
    """Two threads tune the families in two forked workers; one thread tunes them in
    order in the stage's own process. Every trial, score, prediction and saved model
    must be the same."""
    folder = make_split(tmp_path / "split", train=160, tune=80)
    config = run_config(trials=3)
    where = tmp_path / "where.txt"
    tune_family = parallel.tune_family

    def recorded(name, *args):
        with open(where, "a") as record:
            record.write(f"{name} {os.getpid()}\n")
        return tune_family(name, *args)

    monkeypatch.setattr(parallel, "tune_family", recorded)
    runs = {}
    for threads in (1, 2):
        out = tmp_path / f"threads{threads}"
        run_baselines(folder, config, out, threads=threads)
        tuned = [line.split() for line in where.read_text().splitlines()]
        where.unlink()
        names = [name for name, _ in tuned]
        assert (names if threads == 1 else sorted(names)) == (
            list(FAMILIES) if threads == 1 else sorted(FAMILIES)
        )
        in_stage = {pid == str(os.getpid()) for _, pid in tuned}
        assert in_stage == {threads == 1}  # two threads: no family in the stage's process
        runs[threads] = out
    for table in ("trials", "summary"):
        one, two = (read_tsv(runs[t] / f"{table}.tsv").drop(columns="fit_seconds") for t in (1, 2))
        pd.testing.assert_frame_equal(one, two)
    for name in ("predictions.tsv", "inflation.json"):
        assert (runs[1] / name).read_bytes() == (runs[2] / name).read_bytes(), name
    tune = read_tsv(folder / "tune.tsv")["sequence"]
    for name in FAMILIES:
        one, two = (joblib.load(runs[t] / f"models/{name}.joblib") for t in (1, 2))
        np.testing.assert_array_equal(one.predict_proba(tune), two.predict_proba(tune))


@pytest.mark.parametrize(
    ("family", "parameter", "spec", "message"),
    [
        (
            "logistic_regression",
            "penalty",
            {"type": "categorical", "choices": ["l1", "l3"]},
            "'l3'",
        ),
        ("random_forest", "n_estimators", {"type": "int", "low": 300, "high": 50}, "low (300)"),
        ("random_forest", "max_features", {"type": "categorical", "choices": ["all"]}, "'all'"),
        ("knn", "n_neighbors", {"type": "int", "low": 0, "high": 5}, "0"),
        ("rbf_svm", "gamma", {"type": "float", "low": 0.0, "high": 1.0, "log": True}, "low > 0"),
    ],
)
def test_invalid_search_space_value_names_the_key(tmp_path, family, parameter, spec, message):
    """The stage's own check (the config validation refuses most of these earlier,
    tests/test_bad_input.py; here the value is set past it)."""
    folder = make_split(tmp_path / "split", train=40, tune=20)
    config = copy.deepcopy(run_config(families=[family]))
    spaces = config["baselines"]["search_spaces"]
    others = {key: value for key, value in spaces[family].items() if key != parameter}
    spaces[family] = {parameter: spec, **others}  # first, as when the user wrote it
    with pytest.raises(InputError) as error:
        run_baselines(folder, config, tmp_path / "out")
    assert f"baselines.search_spaces.{family}.{parameter}" in str(error.value)
    assert message in str(error.value)
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_unknown_parameter_or_scale_is_refused_by_name(tmp_path):
    with pytest.raises(InputError, match=r"baselines\.search_spaces\.random_forest.*max_dept"):
        run_config(
            search_spaces={"random_forest": {"max_dept": {"type": "int", "low": 1, "high": 2}}}
        )
    folder = make_split(tmp_path / "split", train=40, tune=20)
    config = run_config(descriptors={"scales": ["eisenberg", "z3"]}, kmer_sizes={"protein": [1]})
    protein = {"name": "toy", "sequence_type": "protein"}  # descriptors are for proteins only
    with pytest.raises(InputError, match=r"baselines\.descriptors\.scales\[1\]"):
        run_baselines(folder, config, tmp_path / "out", dataset=protein)


def test_missing_label_column_names_file_and_column(tmp_path):
    folder = make_split(tmp_path / "split", train=40, tune=20)
    write_tsv(folder / "tune.tsv", read_tsv(folder / "tune.tsv").drop(columns="label"))
    with pytest.raises(InputError, match=r"tune\.tsv: missing column\(s\) label"):
        run_baselines(folder, run_config(), tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_shuffled_control_away_from_chance_raises_a_warning():
    classes = Classes(("background", "bound"), "bound")
    settings = baseline_settings(baselines_settings(run_config(), DNA), threads=1)
    fitted = Fitted("control_shuffled", "control", "knn", {}, None, 0.0, tune={"auroc": 0.71})
    large = np.array(["bound", "background"] * 500)  # chance SE ~0.018: tolerance 0.1 rules
    (message,) = shuffled_warning([fitted], settings, classes, large)
    assert "0.710" in message and "0.100" in message and fitted.note.startswith("WARNING")
    fitted.tune["auroc"] = 0.55
    assert shuffled_warning([fitted], settings, classes, large) == []
    small = np.array(["bound", "background"] * 10)  # chance SE ~0.095: 3 SE = 0.28
    fitted.tune["auroc"] = 0.71
    assert shuffled_warning([fitted], settings, classes, small) == []
    assert chance_auroc_error(classes, small) == pytest.approx(np.sqrt(21 / 1200))


def test_every_schema_family_is_in_the_registry_and_builds_as_declared():
    """One registry entry per family the config may name; its pipeline has the
    densify / scale steps the entry declares, and every default range is accepted."""
    config = run_config()
    assert set(config["baselines"]["families"]) == set(FAMILIES) == set(REGISTRY)
    for name, entry in REGISTRY.items():
        space = config["baselines"]["search_spaces"][name]
        params = {parameter: candidates(spec)[0] for parameter, spec in space.items()}
        steps = [step for step, _ in build_pipeline(name, params, PROBE_CONTEXT).steps]
        wanted = ["dense"] * entry.dense + ["scale"] * (entry.scaler is not None) + ["model"]
        assert steps == wanted, name
        assert entry.search_space_key == f"baselines.search_spaces.{name}"
        assert entry.description and set(entry.conditions) <= set(space)
        if entry.margins:
            assert entry.scaler is not None and not entry.dense  # calibration refits the scaler
    with pytest.raises(ValueError, match="unknown baseline family 'tree'"):
        build_pipeline("tree", {}, PROBE_CONTEXT)


def test_written_predictions_are_those_of_the_saved_models(stage):
    """predictions.tsv is made from the encoded tables once per model; the saved model
    files, given the sequences, must give exactly its scores and calls."""
    split = stage.parent / "split"
    predictions = read_tsv(stage / "predictions.tsv")
    for name in [*FAMILIES, *CONTROLS]:
        model = joblib.load(stage / "models" / f"{name}.joblib")
        for partition in ("train", "tune"):
            table = read_tsv(split / f"{partition}.tsv")
            rows = predictions[
                (predictions["model"] == name) & (predictions["partition"] == partition)
            ]
            assert rows["id"].tolist() == table["id"].tolist()
            sequences = table["sequence"].tolist()
            bound = list(model.classes_).index("bound")
            np.testing.assert_array_equal(
                rows["score_bound"].astype(float), model.predict_proba(sequences)[:, bound]
            )
            assert rows["predicted"].tolist() == list(model.predict(sequences)), (name, partition)


def test_roles_are_written_not_guessed(stage):
    """summary.tsv and predictions.tsv say each model's role (contracts' roles)."""
    summary = read_tsv(stage / "summary.tsv").set_index("model")
    assert summary["role"].to_dict() == {
        **dict.fromkeys(FAMILIES, "baseline"),
        **dict.fromkeys(CONTROLS, "control"),
    }
    predictions = read_tsv(stage / "predictions.tsv")
    assert list(predictions.columns) == [
        "id", "partition", "model", "role", "label", "predicted",
        "score_background", "score_bound",
    ]  # fmt: skip
    roles = predictions.groupby("model")["role"].unique().map(list).to_dict()
    assert roles == {model: [role] for model, role in summary["role"].items()}


def test_classes_and_positive_class_come_from_the_split_report(tmp_path):
    """A positive class that sorts first: score columns in the split's order (positive
    last), scores and `predicted` exactly those of the saved model."""
    folder = make_split(tmp_path / "split", train=80, tune=40, positive="background")
    config = run_config(families=["logistic_regression", "knn"])
    summary = run_baselines(folder, config, tmp_path / "b")
    assert summary["classes"] == ["bound", "background"]
    assert summary["positive_class"] == "background"
    predictions = read_tsv(tmp_path / "b/predictions.tsv")
    assert [c for c in predictions.columns if c.startswith("score")] == [
        "score_bound",
        "score_background",
    ]
    tune = read_tsv(folder / "tune.tsv")
    for name in ("knn", "control_majority"):
        model = joblib.load(tmp_path / "b/models" / f"{name}.joblib")
        rows = predictions[(predictions["model"] == name) & (predictions["partition"] == "tune")]
        probabilities = model.predict_proba(tune["sequence"].tolist())
        background = list(model.classes_).index("background")
        np.testing.assert_allclose(
            rows["score_background"].astype(float), probabilities[:, background]
        )
        # ties (the balanced prior) are the model's own call, not argmax of the columns
        assert rows["predicted"].tolist() == list(model.predict(tune["sequence"].tolist()))


def test_labels_that_are_not_the_split_reports_classes_are_refused(tmp_path):
    folder = make_split(tmp_path / "split", train=40, tune=20)
    (folder / "split_report.json").write_text(
        json.dumps({"classes": ["background", "enhancer"], "positive_class": "enhancer"})
    )
    with pytest.raises(InputError, match=r"split_report\.json; re-run the split stage"):
        run_baselines(folder, run_config(), tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_kmer_frequencies_learn_vocabulary_from_training_only():
    kmers = KmerFrequencies((1, 2)).fit(["AACG", "CCGT"])
    table = kmers.transform(["AAAA", "TTGG"]).toarray()
    names = list(kmers.get_feature_names_out())
    assert "kmer_GG" not in names  # unseen in training: no column
    ones = [i for i, n in enumerate(names) if len(n) == len("kmer_A")]
    np.testing.assert_allclose(table[:, ones].sum(axis=1), 1.0)  # each k block sums to 1
    assert table[0, names.index("kmer_AA")] == 1.0


def test_descriptors_skip_letters_modlamp_does_not_know():
    descriptors = PhysicochemicalDescriptors(scales=("eisenberg",))
    table = descriptors.transform(["KKLLKKLL", "KKLLXKKLLB", "XXX"])
    assert table.shape == (3, 12) and np.isfinite(table).all()
    np.testing.assert_allclose(table[0], table[1])
    assert (table[2] == 0).all()


def test_shortcut_features_are_length_composition_and_ends():
    features = ShortcutFeatures().fit(["ACGT", "GGAG"])
    row = features.transform(["AAG"])[0]
    names = list(features.get_feature_names_out())
    assert row[names.index("length")] == 3
    assert row[names.index("fraction_A")] == pytest.approx(2 / 3)
    assert row[names.index("first_A")] == 1 and row[names.index("last_G")] == 1


def test_rule_lists_train_and_tune_but_not_test(tmp_path):
    """Snakemake's own view of the rule: train, tune and the explore gate; never test."""
    for name in ("train", "tune", "test"):
        (tmp_path / f"results/toy/split/{name}.tsv").parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f"results/toy/split/{name}.tsv").write_text("id\n")
    (tmp_path / "results/toy/split/split_report.json").write_text("{}\n")
    (tmp_path / "results/toy/explore").mkdir(parents=True)
    (tmp_path / "results/toy/explore/gate.json").write_text("{}\n")
    write_yaml(
        tmp_path / "config/datasets/toy.yaml",
        {
            "sequence_type": "dna",
            "sources": [{"name": "toy", "kind": "local", "path": "toy.fa", "label": "x"}],
            "labels": {"from": "source"},
        },
    )
    write_yaml(tmp_path / "config/config.yaml", {"datasets": ["toy"]})
    (tmp_path / "Snakefile").write_text(
        'configfile: "config/config.yaml"\n'
        f'include: "{REPO}/workflow/rules/common.smk"\n'
        f'include: "{REPO}/workflow/rules/baselines.smk"\n'
    )
    result = subprocess.run(
        [SNAKEMAKE, "--dry-run", "--cores", "1", "results/toy/baselines/summary.tsv"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    job = result.stdout.split("rule baselines:")[1]
    fields = dict(line.strip().split(": ", 1) for line in job.splitlines() if ": " in line)
    assert fields["input"] == (
        "results/toy/split/train.tsv, results/toy/split/tune.tsv, "
        "results/toy/split/split_report.json, results/toy/explore/gate.json"
    )
    outputs = fields["output"].split(", ")
    for model in (*FAMILIES, *CONTROLS):
        assert f"results/toy/baselines/models/{model}.joblib" in outputs


def test_figures_name_each_metric_once():
    from deeprules.baselines.outputs import shown_metrics

    assert shown_metrics("auroc") == ["auroc"]
    assert shown_metrics("mcc") == ["mcc", "auroc"]
