"""CNN stage: encoding, padding without a length shortcut, determinism, tuning, resume, workers.

Everything runs on planted-motif DNA made here: "bound" sequences carry the
CRE motif TGACGTCA at a random place in random background, "unbound" do not.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import keras_tuner as kt
import numpy as np
import pandas as pd
import pytest
from planted import planted_table
from sklearn.metrics import roc_auc_score

from deeprules import cnn, encoding
from deeprules.cnn.data import encode_partition, input_pipeline, load_partitions
from deeprules.cnn.growth import (
    first_round,
    next_round,
    planned_budgets,
    round_budgets,
    search_in_rounds,
)
from deeprules.cnn.job import (
    child_environment,
    configure_tensorflow,
    prepare_spec,
    tuner_directory,
    write_job_file,
)
from deeprules.cnn.model import build_model, receptive_field
from deeprules.cnn.outputs import predictions_frames
from deeprules.cnn.predict import class_columns, partition_auroc, predict_proba
from deeprules.cnn.training import cosine_learning_rate, training_callbacks
from deeprules.cnn.tuning import read_trials, refit, search
from deeprules.config import cnn_settings, validate_run_config
from deeprules.contracts import Classes, decide_classes, read_predictions
from deeprules.io import InputError, read_json, read_tsv, write_json, write_tsv
from deeprules.rule import Job

MOTIF = "TGACGTCA"
OUTPUT_NAMES = {
    "model": "model.keras",
    "hyperparameters": "best_hyperparameters.json",
    "predictions": "predictions.tsv",
    "trials": "trials.tsv",
    "curves": "training_curves.png",
    "summary": "summary.json",
}
DATASET = {"name": "cre", "sequence_type": "dna", "positive_class": "bound", "sources": []}
TINY_SPACE = {"conv_blocks": [1], "filters": [8], "kernel_size": [9], "dense_units": [0]}


def planted_motif_table(n: int, seed: int) -> pd.DataFrame:
    """Random DNA of 40-80 nt; every second sequence is 'bound' and carries MOTIF."""
    motifs = {"unbound": None, "bound": MOTIF}
    return planted_table(n, seed, motifs, length=(40, 80), prefix=f"s{seed}_")


def stage_job(workdir: Path, trials: int, n_train: int = 300, **cnn_section: object) -> Job:
    """The rule's job for a planted-motif dataset in `workdir` (split report included)."""
    workdir.mkdir(parents=True, exist_ok=True)
    train = planted_motif_table(n_train, seed=1)
    write_tsv(workdir / "train.tsv", train)
    write_tsv(workdir / "tune.tsv", planted_motif_table(120, seed=2))
    classes = decide_classes(train["label"], DATASET["positive_class"], "train")
    write_json(workdir / "split_report.json", classes.to_json())
    config = validate_run_config(
        {"datasets": ["cre"], "budget": {"trials": trials}, "cnn": {"threads": 2, **cnn_section}}
    )
    return Job(
        inputs={
            "train": workdir / "train.tsv",
            "tune": workdir / "tune.tsv",
            "split_report": workdir / "split_report.json",
        },
        outputs={key: workdir / "out" / name for key, name in OUTPUT_NAMES.items()},
        settings=cnn_settings(config, DATASET),
        threads=2,
        log=workdir / "cnn.log",
    )


def runs_by_trial(tuner_dir: str | Path) -> dict[str, list[dict]]:
    return {trial["trial_id"]: trial["runs"] for trial in read_trials(tuner_dir)}


def finished_so_far(tuner_dir: str | Path) -> int:
    """Trials whose last run finished, read while the search is writing its records: a
    trial record may have no runs yet, or be half-written (Keras Tuner does not write
    trial.json atomically); both count as not finished, and the next poll looks again."""
    try:
        runs = runs_by_trial(tuner_dir)
    except (OSError, ValueError):  # ValueError: a JSON file caught mid-write
        return 0
    return sum(bool(trial_runs) and trial_runs[-1]["finished"] for trial_runs in runs.values())


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains `text` (zombies excluded)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (proc / "stat").read_text().split(") ")[1].split()[0]
        except OSError:
            continue
        if text in command and state != "Z":
            found.append(int(proc.name))
    return found


# --------------------------------------------------------------------------- encoding


def test_one_hot_rows_padding_ambiguity_and_truncation():
    x = encoding.one_hot(["ACGTRN", "GGXZ", "AC"], "dna", length=5)
    assert x.shape == (3, 5, 4)
    np.testing.assert_array_equal(x[0, :4], np.eye(4))  # A C G T
    np.testing.assert_array_equal(x[0, 4], [0.5, 0, 0.5, 0])  # R = A or G; N truncated away
    np.testing.assert_array_equal(x[1, 2], [0.25] * 4)  # X is not a nucleotide code: uniform
    np.testing.assert_array_equal(x[2, 2:], 0)  # padding is the only all-zero row
    protein = encoding.one_hot(["MKX"], "protein", length=3)
    assert protein.shape == (1, 3, 20)
    np.testing.assert_allclose(protein[0, 2], 1 / 20)
    assert encoding.choose_length([10, 20, 30, 40], None, 0.5) == 25
    assert encoding.choose_length([10, 20], 7, 1.0) == 7


def _model(mask_padding: bool, length: int) -> keras.Model:
    hp = kt.HyperParameters()
    hp.values = {"conv_blocks": 2, "pool_size": 2, "dilation": 2}
    keras.utils.set_random_seed(0)
    model = build_model(
        hp,
        length,
        4,
        classes=2,
        space=validate_run_config({"datasets": ["x"]})["cnn"]["search_space"],
        mask_padding=mask_padding,
    )
    for layer in model.layers:  # non-zero biases, as after training: padding now matters
        if isinstance(layer, keras.layers.Conv1D):
            layer.bias.assign(np.full(layer.bias.shape, 0.3, dtype="float32"))
    return model


def test_padding_gives_no_length_shortcut():
    sequences = planted_motif_table(8, seed=3)["sequence"].tolist()
    short, long = 80, 160
    masked_short, masked_long = _model(True, short), _model(True, long)
    masked_long.set_weights(masked_short.get_weights())
    np.testing.assert_allclose(
        masked_short.predict(encoding.one_hot(sequences, "dna", short), verbose=0),
        masked_long.predict(encoding.one_hot(sequences, "dna", long), verbose=0),
        atol=1e-5,
    )
    plain_short, plain_long = _model(False, short), _model(False, long)
    plain_long.set_weights(plain_short.get_weights())
    difference = np.abs(
        plain_short.predict(encoding.one_hot(sequences, "dna", short), verbose=0)
        - plain_long.predict(encoding.one_hot(sequences, "dna", long), verbose=0)
    )
    assert difference.max() > 1e-4  # without the mask, padding is visible


def test_three_classes_get_softmax_and_one_score_per_class():
    space = validate_run_config({"datasets": ["x"]})["cnn"]["search_space"]
    model = build_model(kt.HyperParameters(), 30, 20, classes=3, space=space)
    assert model.output_shape == (None, 3)
    table = pd.DataFrame(
        {"id": list("uvwxyz"), "sequence": ["MKVLAAGIKK"] * 6, "label": ["a", "b", "c"] * 2}
    )
    part = encode_partition(table, ["a", "b", "c"], "protein", 30, "test table")
    spec = {"classes": ["a", "b", "c"], "positive_class": None, "sequence_type": "protein"}
    spec |= {"model": "cnn"}  # as prepare_spec records it from the settings
    (predictions,) = predictions_frames(model, spec, {"tune": part})
    assert list(predictions) == [
        *("id", "partition", "model", "role", "label", "predicted"),
        *("score_a", "score_b", "score_c"),
    ]
    assert set(predictions["role"]) == {"cnn"}
    totals = predictions[["score_a", "score_b", "score_c"]].sum(axis=1)
    np.testing.assert_allclose(totals, 1, atol=1e-5)


def test_predict_proba_reads_everything_from_the_summary(tmp_path):
    """Other stages score with the saved model and its summary.json alone."""
    space = validate_run_config({"datasets": ["x"]})["cnn"]["search_space"]
    keras.utils.set_random_seed(0)
    path = tmp_path / "model.keras"
    build_model(kt.HyperParameters(), 30, 20, classes=3, space=space).save(path)
    summary = {
        "classes": ["a", "b", "c"],
        "encoding": {"sequence_type": "protein", "length": 30, "mask_padding": True},
    }
    sequences = ["MKVLAAGIKK", "WWW", "ACDEFGHIKLMNPQRSTVWY" * 2]
    probabilities = predict_proba(path, sequences, summary)
    assert probabilities.shape == (3, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    with pytest.raises(InputError, match=r"scores 3 classes but its summary\.json lists"):
        predict_proba(path, sequences, {**summary, "classes": ["a", "b"]})
    binary = class_columns(np.array([[0.2], [0.9]], dtype=np.float32))
    np.testing.assert_allclose(binary, [[0.8, 0.2], [0.1, 0.9]], atol=1e-7)


def test_tune_auroc_is_the_old_sklearn_number():
    """deeprules.metrics.auroc gives the numbers the stage reported before it used it."""
    rng = np.random.default_rng(0)
    space = validate_run_config({"datasets": ["x"]})["cnn"]["search_space"]
    table_weights = encoding.token_table("protein")
    for names, positive in ((["neg", "pos"], "pos"), (["a", "b", "c"], None)):
        labels = list(rng.choice(names, 60))
        table = pd.DataFrame(
            {
                "id": [f"s{i}" for i in range(60)],
                "sequence": ["".join(rng.choice(list("ACDEFGHIKLMNPQRSTVWY"), 25)) for _ in labels],
                "label": labels,
            }
        )
        part = encode_partition(table, names, "protein", 25, "table")
        keras.utils.set_random_seed(1)
        model = build_model(kt.HyperParameters(), 25, 20, classes=len(names), space=space)
        raw = model.predict(input_pipeline(part, table_weights, 16), verbose=0)
        if len(names) == 2:
            old = roc_auc_score(part.targets[:, 0], raw[:, 0])
        else:
            old = roc_auc_score(part.targets.argmax(1), raw, multi_class="ovr", average="macro")
        new = partition_auroc(model, part, table_weights, 16, Classes(tuple(names), positive))
        assert new == pytest.approx(old, abs=1e-12)


def test_bad_input_names_the_file_and_column(tmp_path):
    job = stage_job(tmp_path, trials=2)
    write_tsv(job.inputs["train"], planted_motif_table(20, 1).rename(columns={"label": "class"}))
    with pytest.raises(InputError, match=r"train\.tsv: missing column\(s\) label"):
        prepare_spec(job)


def test_classes_and_their_order_come_from_the_split_report(tmp_path):
    """The split decides the positive class; the CNN's targets and outputs follow it."""
    job = stage_job(tmp_path, trials=1)
    spec = prepare_spec(job)
    assert (spec["classes"], spec["positive_class"]) == (["unbound", "bound"], "bound")
    write_json(job.inputs["split_report"], Classes(("bound", "unbound"), "unbound").to_json())
    spec = prepare_spec(job)
    assert (spec["classes"], spec["positive_class"]) == (["bound", "unbound"], "unbound")
    train, _ = load_partitions(spec)
    np.testing.assert_array_equal(
        train.targets[:, 0], [label == "unbound" for label in train.labels]
    )
    assert spec["tuner_dir"] == str(tmp_path / "out" / "tuner")
    write_json(job.inputs["split_report"], {"classes": ["bound"], "positive_class": None})
    with pytest.raises(InputError, match="only one class"):
        prepare_spec(job)


# --------------------------------------------------------------------------- determinism


def test_same_seed_gives_identical_weights(tmp_path):
    spec = prepare_spec(stage_job(tmp_path, trials=1, n_train=120, max_epochs=2))
    configure_tensorflow(spec, threads=0)  # threads are fixed once TensorFlow started
    train, tune = load_partitions(spec)
    values = {"conv_blocks": 2, "filters": 8, "dropout": 0.3, "batch_size": 32}
    first, _ = refit(spec, values, train, tune)
    second, _ = refit(spec, values, train, tune)
    for a, b in zip(first.get_weights(), second.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(
        first.get_weights()[0],
        refit({**spec, "seed": spec["seed"] + 1}, values, train, tune)[0].get_weights()[0],
    )


# --------------------------------------------------------------------------- the stage


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """The whole stage on planted-motif DNA, with reverse-complement augmentation."""
    workdir = tmp_path_factory.mktemp("tuned")
    job = stage_job(workdir, trials=5, max_epochs=6, reverse_complement=True)
    cnn.run(job)
    return job


def test_tuned_cnn_finds_the_planted_motif(tuned):
    classes = Classes(("unbound", "bound"), "bound")
    predictions = read_predictions(tuned.outputs["predictions"], classes)
    assert set(predictions["partition"]) == {"train", "tune"}
    assert set(predictions["model"]) == {"cnn"}
    assert set(predictions["role"]) == {"cnn"}
    tune = predictions[predictions["partition"] == "tune"]
    assert roc_auc_score(tune["label"] == "bound", tune["score_bound"]) >= 0.95
    np.testing.assert_allclose(tune["score_unbound"] + tune["score_bound"], 1, atol=1e-6)
    summary = read_json(tuned.outputs["summary"])
    assert summary["final_model"]["tune_auroc"] >= 0.95
    assert summary["device"]["used"].startswith(("CPU", "GPU"))
    assert summary["encoding"]["reverse_complement_augmentation"] is True
    assert (summary["classes"], summary["positive_class"]) == (["unbound", "bound"], "bound")
    assert summary["encoding"]["sequence_type"] == "dna"
    assert summary["encoding"]["mask_padding"] is True


def test_every_trial_is_exported_and_the_model_reloads(tuned):
    trials = read_tsv(tuned.outputs["trials"])
    assert len(trials) == 5  # exactly budget.trials, also under Hyperband
    assert set(trials["status"]) == {"COMPLETED"}
    assert {"best_epoch", "tune_auroc", "train_auroc", "seconds", "learning_rate"} <= set(trials)
    assert {"round", "receptive_field", "lr_schedule", "stopped_early"} <= set(trials)
    summary = read_json(tuned.outputs["summary"])
    rounds = summary["search"]["rounds"]  # budget 5 in the default 3 rounds: 2 + 2 + 1
    assert sum(r["trials"] for r in rounds) == 5
    assert sorted(set(trials["round"].astype(int))) == [r["round"] for r in rounds]
    assert all(r["reasons"] for r in rounds)
    assert summary["search"]["learning_check"]["train_auroc"] >= 0.99
    assert summary["receptive_field"]["input_length"] == summary["encoding"]["length"]
    best = read_json(tuned.outputs["hyperparameters"])
    assert best["tune_auc"] == pytest.approx(trials["tune_auc"].astype(float).max())
    model = keras.models.load_model(tuned.outputs["model"])
    predictions = read_tsv(tuned.outputs["predictions"])
    tune = predictions[predictions["partition"] == "tune"]
    sequences = read_tsv(tuned.inputs["tune"]).set_index("id").loc[tune["id"], "sequence"]
    summary = read_json(tuned.outputs["summary"])
    length = summary["encoding"]["length"]
    scores = model.predict(encoding.one_hot(sequences.tolist(), "dna", length), verbose=0)
    np.testing.assert_allclose(scores[:, 0], tune["score_bound"].astype(float), atol=1e-5)
    np.testing.assert_allclose(
        predict_proba(tuned.outputs["model"], sequences.tolist(), summary),
        tune[["score_unbound", "score_bound"]].astype(float),
        atol=1e-5,
    )
    assert Path(tuned.outputs["curves"]).stat().st_size > 10_000


def test_saved_model_loads_in_a_fresh_process(tuned):
    """What evaluate and interpret do: import deeprules.cnn, then load cnn/model.keras.
    The padding mask is saved under the importable module deeprules.cnn.model, never
    __main__ (the stage's process is `python -m deeprules.cnn`)."""
    import zipfile

    with zipfile.ZipFile(tuned.outputs["model"]) as archive:
        config = archive.read("config.json").decode()
    assert '"module": "deeprules.cnn.model"' in config
    assert "__main__" not in config
    script = (
        "import sys, keras, deeprules.cnn\n"
        "model = keras.models.load_model(sys.argv[1])\n"
        "assert any(type(layer).__name__ == 'PaddingMask' for layer in model.layers)\n"
        "print(deeprules.cnn.load_model(sys.argv[1]).output_shape)"
    )
    spec = read_json(tuner_directory(tuned.outputs) / "job.json")
    result = subprocess.run(
        [sys.executable, "-c", script, str(tuned.outputs["model"])],
        env=child_environment(spec),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("(None, 1)")


def test_polling_tolerates_trial_records_being_written(tmp_path):
    """The kill-and-resume test polls while the search writes: a trial without runs yet,
    or a trial.json caught half-written, must count as unfinished, not raise."""
    from deeprules.cnn.tuning import PROJECT, RUNS_FILE, round_project

    def trial(number: int, runs: list[dict] | None, text: str | None = None) -> None:
        folder = tmp_path / PROJECT / round_project(1) / f"trial_{number}"
        folder.mkdir(parents=True)
        (folder / "trial.json").write_text(text or json.dumps({"trial_id": str(number)}))
        if runs is not None:
            (folder / RUNS_FILE).write_text(json.dumps({"runs": runs}))

    assert finished_so_far(tmp_path) == 0  # no search folder yet
    trial(0, [{"finished": True}])
    trial(1, [])  # recorded, no run yet
    trial(2, None)  # no runs file yet
    assert finished_so_far(tmp_path) == 1
    trial(3, [{"finished": True}], text='{"trial_id": "3", "hyperpa')  # mid-write
    assert finished_so_far(tmp_path) == 0


def test_killed_search_resumes_without_repeating_finished_trials(tmp_path):
    stage = stage_job(tmp_path, trials=5, max_epochs=2, search_space=TINY_SPACE)
    spec = prepare_spec(stage)
    job = write_job_file(spec)
    with open(tmp_path / "killed.log", "w") as log:
        first = subprocess.Popen(
            [sys.executable, "-m", "deeprules.cnn", "stage", str(job)],
            env=child_environment(spec),
            stdout=log,
            stderr=log,
        )
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and first.poll() is None:
            if finished_so_far(spec["tuner_dir"]) >= 2:
                break
            time.sleep(0.2)
        first.send_signal(signal.SIGKILL)
        first.wait()
    # Finished means the tuner saved the trial as COMPLETED. Our runs file marks a run
    # finished a moment earlier (when the fit returns, before Keras Tuner saves the
    # trial), so a kill in between leaves a trial the tuner rightly runs again: that is
    # the interrupted trial, not a finished one (seen under load 5 on 2 cores).
    before = {
        trial["trial_id"]: trial["runs"]
        for trial in read_trials(spec["tuner_dir"])
        if trial["status"] == "COMPLETED" and trial["runs"] and trial["runs"][-1]["finished"]
    }
    assert 1 <= len(before) < 5, "the kill must land mid-search"
    assert not Path(stage.outputs["summary"]).exists()

    cnn.run(stage)  # the rerun Snakemake would do

    after = runs_by_trial(spec["tuner_dir"])
    assert len(after) == 5
    for trial, runs in before.items():
        assert after[trial] == runs, f"finished trial {trial} was run again"
    assert all(runs[-1]["finished"] for runs in after.values())
    assert sum(len(runs) for runs in after.values()) <= 6  # at most the interrupted one twice
    assert read_json(stage.outputs["summary"])["tuning"]["resumed"] is True


def test_chief_and_two_workers_run_every_trial_once(tmp_path):
    job = stage_job(
        tmp_path, trials=4, n_train=120, max_epochs=1, workers=2, search_space=TINY_SPACE
    )
    cnn.run(job)
    tuner_dir = tuner_directory(job.outputs)
    runs = runs_by_trial(tuner_dir)
    assert len(runs) == 4
    assert all(len(trial_runs) == 1 and trial_runs[0]["finished"] for trial_runs in runs.values())
    assert {r[0]["tuner_id"] for r in runs.values()} <= {"tuner0", "tuner1"}
    assert "chief on 127.0.0.1" in Path(job.log).read_text()
    assert processes_mentioning(str(tuner_dir / "job.json")) == []
    assert len(read_tsv(job.outputs["trials"])) == 4


@pytest.mark.parametrize("tuner", ["bayesian", "random"])
def test_bayesian_and_random_search_run_exactly_the_budget(tmp_path, tuner):
    job = stage_job(
        tmp_path, trials=2, n_train=80, max_epochs=1, tuner=tuner, search_space=TINY_SPACE
    )
    spec = prepare_spec(job)
    search_in_rounds(spec, search)
    runs = runs_by_trial(spec["tuner_dir"])
    assert len(runs) == 2
    assert all(len(r) == 1 and r[0]["finished"] for r in runs.values())


def test_the_split_decides_the_positive_class_once():
    """Without a configured positive_class the minority class of train is positive, even
    when it sorts first (the CNN once took the class that sorts last). Every later stage
    reads this decision from split_report.json
    (test_classes_and_their_order_come_from_the_split_report)."""
    labels = ["alpha"] * 3 + ["zeta"] * 5
    assert decide_classes(labels, None, "train").names[-1] == "alpha"
    assert decide_classes(labels, "zeta", "train").names[-1] == "zeta"
    with pytest.raises(InputError, match="'positive_class': 'beta' is not a label in train"):
        decide_classes(labels, "beta", "train")


def test_rule_script_logs_the_gpus_and_hands_the_log_to_the_child(tmp_path):
    """The rule's path: run_rule(snakemake, run). The SLURM test reads the
    CUDA_VISIBLE_DEVICES line; the child's lines are appended to the same log."""
    import logging
    from types import SimpleNamespace

    from deeprules.rule import run_rule

    job = stage_job(tmp_path, trials=1, n_train=80, max_epochs=1, search_space=TINY_SPACE)
    smk = SimpleNamespace(
        input={name: str(path) for name, path in job.inputs.items()},
        output={name: str(path) for name, path in job.outputs.items()},
        params=SimpleNamespace(settings=job.settings),
        threads=job.threads,
        log=[str(job.log)],
    )
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        run_rule(smk, cnn.run)
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers, root.level = handlers, level
    text = job.log.read_text()
    assert "CUDA_VISIBLE_DEVICES=" in text
    assert text.index("CUDA_VISIBLE_DEVICES=") < text.index("best trial")
    assert all(Path(path).exists() for path in job.outputs.values())


# --------------------------------------------------------------------------- growing search


def _fake_trial(tuner_dir: Path, number: int, trial_id: str, score: float, **values) -> None:
    """A finished trial as Keras Tuner and the stage record it (for the growth rule)."""
    folder = tuner_dir / "search" / f"round_{number}" / f"trial_{trial_id}"
    folder.mkdir(parents=True)
    rising = values.pop("rising", False)
    start = values.pop("start", 8)  # default: a Hyperband continuation, epochs 9-12 of 12
    values = {
        "conv_blocks": 2,
        "filters": 16,
        "kernel_size": 5,
        "dilation": 1,
        "pool_size": 1,
        **values,
    }
    write_json(
        folder / "trial.json",
        {
            "trial_id": trial_id,
            "status": "COMPLETED",
            "score": score,
            "best_step": 3,
            "hyperparameters": {"values": values},
        },
    )
    curve = [0.5, 0.6, 0.65, score] if rising else [0.5, score, 0.6, 0.55]
    write_json(
        folder / "deeprules_runs.json",
        {
            "runs": [
                {
                    "finished": True,
                    "history": {"val_auc": curve},
                    "stopped_early": False,
                    "initial_epoch": start,
                    "epochs_trained": 4,
                }
            ]
        },
    )


def _growth_spec(tuner_dir: Path, **growth) -> dict:
    cnn = validate_run_config({"datasets": ["x"], "cnn": {"growth": growth}})["cnn"]
    return {"tuner_dir": str(tuner_dir), "trials": 30, "length": 200, "cnn": cnn}


def test_round_budgets_share_the_baselines_budget():
    assert round_budgets(30, 3) == [10, 10, 10]
    assert round_budgets(31, 3) == [11, 10, 10]
    assert round_budgets(2, 3) == [1, 1]
    assert sum(round_budgets(7, 4)) == 7
    spec = _growth_spec(Path("unused"), enabled=False)
    assert planned_budgets(spec) == [30]


def test_growth_widens_at_the_edge_for_a_small_field_and_a_rising_curve(tmp_path):
    spec = _growth_spec(tmp_path)
    plans = [first_round(spec)]
    assert plans[0]["space"]["filters"] == [16, 32]
    _fake_trial(tmp_path, 1, "0", 0.70, filters=32, rising=True)  # the best: every reason
    _fake_trial(tmp_path, 1, "1", 0.60, filters=16, kernel_size=9)
    plans[0]["best_tune_auroc"] = 0.70
    grown = next_round(spec, plans, left=20)
    assert grown["round"] == 2 and grown["trials"] == 10
    space = grown["space"]
    assert space["filters"] == [16, 32, 64]  # best at the top edge: the next value joins
    assert space["conv_blocks"] == [1, 2, 3]  # 2 blocks = top edge, and a small field
    assert space["kernel_size"] == [5, 9]  # best has the smallest kernel: no reason
    assert space["dilation"] == [1, 2, 4]  # receptive field 9 of 200 positions
    assert (grown["max_epochs"], grown["min_epochs"]) == (24, 4)  # still rising at the end
    assert set(grown["widened"]) == {"filters", "conv_blocks", "dilation", "max_epochs"}
    reasons = " | ".join(grown["reasons"])
    assert "largest filters of [16, 32] (32): add 64" in reasons
    assert "sees 9 of 200 positions" in reasons
    assert "still rising" in reasons
    assert plans[0]["outcome"].startswith("widened: ")
    plans.append(grown)
    grown["best_tune_auroc"] = 0.55
    _fake_trial(tmp_path, 2, "0", 0.55, filters=16)  # worse: growth stops, whatever the rest
    _fake_trial(tmp_path, 1, "2", 0.52, filters=16)
    assert next_round(spec, plans, left=10)["widened"] == {}


def test_a_short_hyperband_bracket_rising_at_its_end_does_not_double_max_epochs(tmp_path):
    spec = _growth_spec(tmp_path)
    first = {**first_round(spec), "best_tune_auroc": 0.9}
    _fake_trial(tmp_path, 1, "0", 0.9, rising=True, start=0)  # 4 of 12 epochs: the bracket's
    assert "max_epochs" not in next_round(spec, [first], left=20)["widened"]


def test_growth_trains_longer_when_nothing_has_learned_yet(tmp_path):
    spec = _growth_spec(tmp_path)
    first = {**first_round(spec), "best_tune_auroc": 0.55}
    _fake_trial(tmp_path, 1, "0", 0.55, filters=16, kernel_size=9, pool_size=2, dilation=2)
    grown = next_round(spec, [first], left=20)
    assert (grown["max_epochs"], grown["min_epochs"]) == (24, 8)
    space = grown["space"]  # a chance-level "best" says nothing: every range steps up
    assert (space["filters"], space["conv_blocks"]) == ([32, 64], [2, 3])
    assert (space["kernel_size"], space["dilation"]) == ([9, 13], [2, 4])
    grown["best_tune_auroc"] = 0.52  # no better, but nothing had learned: growth goes on
    _fake_trial(tmp_path, 2, "0", 0.52, filters=16)
    third = next_round(spec, [first, grown], left=10)
    assert third["space"]["filters"] == [64, 128]
    assert (third["max_epochs"], third["min_epochs"]) == (48, 16)
    reasons = " | ".join(grown["reasons"])
    assert (
        "best tune AUC 0.550 < 0.6: no model has learned yet, so every capacity range moves up "
        "a step: filters [16, 32] -> [32, 64], conv_blocks [1, 2] -> [2, 3]" in reasons
    )
    assert "before it learns: max_epochs 12 -> 24, min_epochs 4 -> 8" in reasons


def test_growth_stops_when_a_round_does_not_improve_and_respects_limits(tmp_path):
    spec = _growth_spec(tmp_path, limits={"filters": 32})
    first = first_round(spec)
    _fake_trial(tmp_path, 1, "0", 0.80, filters=32, kernel_size=9, dilation=2, pool_size=2)
    first["best_tune_auroc"] = 0.80
    second = next_round(spec, [first], left=20)
    assert second["space"]["filters"] == [16, 32]  # 64 is above growth.limits.filters
    assert "filters" not in second["widened"]
    _fake_trial(tmp_path, 2, "0", 0.75, filters=32, kernel_size=9)
    second["best_tune_auroc"] = 0.75
    last = next_round(spec, [first, second], left=10)
    assert last["trials"] == 10 and last["widened"] == {}
    assert last["space"] == first["space"]  # back to where the best trial is
    assert last["space"] != second["space"]
    assert (
        "did not beat the earlier rounds' best tune AUC (0.7500 <= 0.8000)" in (second["outcome"])
    )
    assert (
        "the remaining 10 trials search the space of round 1 (the best trial's)"
        in (last["reasons"][0])
    )


def test_receptive_field_is_what_one_feature_sees():
    """The formula against the network itself: the input positions whose change moves
    the middle feature of the last convolution block."""
    import tensorflow as tf

    space = validate_run_config({"datasets": ["x"]})["cnn"]["search_space"]
    for values, expected in (
        ({"conv_blocks": 1, "kernel_size": 9, "dilation": 2, "pool_size": 1}, 9),
        ({"conv_blocks": 2, "kernel_size": 9, "dilation": 2, "pool_size": 1}, 25),
        ({"conv_blocks": 2, "kernel_size": 9, "dilation": 2, "pool_size": 2}, 42),
        ({"conv_blocks": 3, "kernel_size": 5, "dilation": 2, "pool_size": 1}, 29),
    ):
        assert receptive_field(values, 200) == expected
        hp = kt.HyperParameters()
        hp.values = {**values, "filters": 4}
        keras.utils.set_random_seed(0)
        model = build_model(hp, 200, 4, 2, space, mask_padding=False)
        for layer in model.layers:  # positive weights: no cancellation hides a position
            if isinstance(layer, keras.layers.Conv1D):
                layer.kernel.assign(np.abs(layer.kernel.numpy()) + 0.1)
                layer.bias.assign(np.full(layer.bias.shape, 0.1, dtype="float32"))
        last = model.get_layer(f"conv{values['conv_blocks']}").output
        features = keras.Model(model.input, last)
        x = tf.constant(encoding.one_hot(["ACGT" * 50], "dna", 200))
        with tf.GradientTape() as tape:
            tape.watch(x)
            middle = tf.reduce_sum(features(x)[0, features.output_shape[1] // 2])
        seen = np.flatnonzero(np.abs(tape.gradient(middle, x).numpy()[0]).sum(axis=1))
        assert seen.max() - seen.min() + 1 == expected, values


def test_no_model_stops_before_min_epochs_and_cosine_ends_at_a_tenth():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 3)).astype("float32"), (rng.random((32, 1)) > 0.5)
    for min_epochs, expected in ((1, 3), (6, 6)):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, use_bias=False)])
        model.compile(
            keras.optimizers.SGD(0.0),
            "binary_crossentropy",
            metrics=[keras.metrics.AUC(name="auc")],
        )
        model.layers[0].kernel.assign(np.zeros((3, 1), dtype="float32"))  # AUC stays 0.5
        values = {"lr_schedule": "constant", "learning_rate": 0.0}
        history = model.fit(
            x,
            y,
            validation_data=(x, y),
            epochs=20,
            verbose=0,
            callbacks=training_callbacks(values, min_epochs, 2, 20),
        )
        assert len(history.history["loss"]) == expected
    assert cosine_learning_rate(0.01, 0, 10) == pytest.approx(0.01)
    assert cosine_learning_rate(0.01, 5, 10) == pytest.approx(0.0055)
    assert cosine_learning_rate(0.01, 10, 10) == pytest.approx(0.001)


def test_a_pipeline_that_cannot_learn_stops_before_tuning(tmp_path):
    """Protein-like letters declared as DNA: every letter becomes the same uniform row,
    so no network can tell the sequences apart, not even 64 of them."""
    job = stage_job(tmp_path, trials=1, learning_check={"epochs": 20})
    rng = np.random.default_rng(0)
    table = read_tsv(job.inputs["train"])
    table["sequence"] = ["".join(rng.choice(list("EFILPQ"), 50)) for _ in table["sequence"]]
    write_tsv(job.inputs["train"], table)
    with pytest.raises(
        InputError,
        match=r"cannot even memorise a small batch.*100% of the "
        r"letters are outside its alphabet ACGT",
    ):
        cnn.run(job)
    assert not Path(job.outputs["summary"]).exists()


def test_scorecard_shows_the_rounds_and_why_the_search_grew():
    from deeprules.report.scorecard import tip3, tip6

    rounds = [
        {
            "round": 1,
            "trials": 10,
            "best_tune_auroc": 0.61,
            "widened": {},
            "reasons": ["the configured space: start small (Tip 3)"],
        },
        {
            "round": 2,
            "trials": 10,
            "best_tune_auroc": 0.97,
            "widened": {"dilation": [[1, 2], [1, 2, 4]]},
            "reasons": [
                "best trial 1.03 sees 13 of 200 positions (< 0.2 of the input): add dilation 4"
            ],
        },
    ]
    cnn_summary = {
        "reproducibility": {"seed": 1, "deterministic": True, "op_determinism": True},
        "device": {"used": "CPU: x"},
        "search": {
            "rounds": rounds,
            "learning_check": {"sequences": 64, "train_auroc": 1.0, "epochs": 40},
        },
        "tuning": {"tuner": "hyperband", "trials": 20},
        "best_trial": {"tune_auc": 0.97},
        "receptive_field": {"positions": 41, "input_length": 200},
    }
    three = tip3({"cnn": cnn_summary}, {})
    assert three["status"] == "done"
    assert "fit 64 training sequences to AUROC 1.000" in three["evidence"]
    assert (
        "grew in 1 of 2 round(s): round 2: dilation [1, 2] -> [1, 2, 4] (best trial 1.03 "
        "sees 13 of 200 positions" in three["evidence"]
    )
    six = tip6({"cnn": cnn_summary}, {})
    assert "round 1: 10 trials, best 0.610, round 2: 10 trials, best 0.970" in six["evidence"]
    assert "chosen model sees 41 of 200 positions" in six["evidence"]
