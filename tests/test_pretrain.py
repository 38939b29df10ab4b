"""The pretrain stage: masked-residue pre-training learns, is deterministic with a seed,
resumes from a checkpoint to the same weights, and uses only what the split allows."""

from __future__ import annotations

import subprocess
from pathlib import Path

import keras
import numpy as np
import pytest
from planted import few_label_task, related_source

from deeprules import pretrain
from deeprules.config import pretrain_settings, validate_run_config
from deeprules.io import read_json, write_json, write_tsv
from deeprules.pretrain import training
from deeprules.rule import Job

TRUNK = {"epochs": 3, "filters": 16, "kernel_size": 9, "conv_blocks": 2, "batch_size": 32}


def pretrain_job(folder: Path, excluded: list[str] = (), **pretrain_keys) -> Job:
    """A pretrain job on the planted task: 400 unlabeled, 60 train, 30 tune sequences."""
    labelled, pool = few_label_task(90, 400, seed=21)
    folder.mkdir(parents=True, exist_ok=True)
    write_tsv(folder / "unlabeled.tsv", pool)
    write_tsv(
        folder / "excluded.tsv",
        pool[pool["id"].isin(excluded)][["id"]].assign(
            sequence_sha256="x", reason="pretrain_homolog_of_test", detail="planted"
        ),
    )
    write_tsv(folder / "train.tsv", labelled.iloc[:60])
    write_tsv(folder / "tune.tsv", labelled.iloc[60:])
    config = validate_run_config(
        {"datasets": ["planted"], "seed": 5, "pretrain": {**TRUNK, **pretrain_keys}}
    )
    dataset = {"name": "planted", "sequence_type": "dna", "sources": []}
    inputs = {name: folder / f"{name}.tsv" for name in ("unlabeled", "excluded", "train", "tune")}
    outputs = {"trunk": folder / "out" / "trunk.keras", "summary": folder / "out" / "summary.json"}
    return Job(inputs, outputs, pretrain_settings(config, dataset), threads=2)


def supervised_job(folder: Path, excluded: list[str] = (), **pretrain_keys) -> Job:
    """A pretrain job with pretrain.from: the target 'planted' learns from the train
    partition (100) and labels of the related dataset 'related', measured on its tune
    (40); the target's split listed `excluded` of the source's train sequences."""
    labelled, _ = few_label_task(90, 1, seed=21)
    source = related_source(labelled, 140, seed=22)
    folder.mkdir(parents=True, exist_ok=True)
    write_tsv(folder / "source_train.tsv", source.iloc[:100])
    write_tsv(folder / "source_tune.tsv", source.iloc[100:])
    write_json(folder / "source_split_report.json", {"classes": ["background", "bound"]})
    write_tsv(
        folder / "excluded.tsv",
        source[source["id"].isin(excluded)][["id"]].assign(
            sequence_sha256="x", reason="pretrain_homolog_of_test", detail="planted"
        ),
    )
    config = validate_run_config(
        {
            "datasets": ["planted", "related"],
            "seed": 5,
            "pretrain": {**TRUNK, "from": "related", **pretrain_keys},
        }
    )
    dataset = {"name": "planted", "sequence_type": "dna", "sources": []}
    names = ("source_train", "source_tune", "source_split_report", "excluded")
    inputs = {name: folder / f"{name}.{'json' if 'report' in name else 'tsv'}" for name in names}
    outputs = {"trunk": folder / "out" / "trunk.keras", "summary": folder / "out" / "summary.json"}
    return Job(inputs, outputs, pretrain_settings(config, dataset), threads=2)


JOBS = {"masked": pretrain_job, "supervised": supervised_job}


def weights(path: Path) -> list[np.ndarray]:
    return keras.saving.load_model(path, compile=False).get_weights()


def assert_same_weights(first: Path, second: Path) -> None:
    """Two saved trunks hold exactly the same weights, array by array."""
    for one, two in zip(weights(first), weights(second), strict=True):
        np.testing.assert_array_equal(one, two)


def test_masked_objective_learns_and_is_deterministic(tmp_path):
    first = pretrain.run(pretrain_job(tmp_path / "a", excluded=["unl0", "unl1"]))
    history = first["history"]
    assert len(history) == 3 and first["epochs"] == 3
    assert history[-1]["loss"] < history[0]["loss"]
    assert history[-1]["tune_masked_accuracy"] > first["tune_commonest_letter_share"]
    assert first["sequences"] == {
        "unlabeled_read": 400,
        "unlabeled_removed": {"pretrain_homolog_of_test": 2},
        "unlabeled_used": 398,
        "train_used": 60,
        "total": 458,
    }
    again = pretrain.run(pretrain_job(tmp_path / "b", excluded=["unl0", "unl1"]))
    assert [row["loss"] for row in again["history"]] == [row["loss"] for row in history]
    assert_same_weights(tmp_path / "a/out/trunk.keras", tmp_path / "b/out/trunk.keras")
    other_seed = pretrain_job(tmp_path / "c", excluded=["unl0", "unl1"])
    other_seed.settings["seed"] = 6
    assert pretrain.run(other_seed)["history"][0]["loss"] != history[0]["loss"]


@pytest.mark.parametrize("objective", ["masked", "supervised"])
def test_a_killed_job_resumes_after_its_last_epoch_to_the_same_weights(
    tmp_path, monkeypatch, objective
):
    make_job = JOBS[objective]
    whole = pretrain.run(make_job(tmp_path / "whole"))
    saved = training.save_checkpoint
    calls = []

    def killed_after_two(*args, **kwargs):
        saved(*args, **kwargs)
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt("killed")

    monkeypatch.setattr(training, "save_checkpoint", killed_after_two)
    job = make_job(tmp_path / "killed")
    with pytest.raises(KeyboardInterrupt):
        pretrain.run(job)
    assert not job.outputs["trunk"].exists()
    assert len(read_json(tmp_path / "killed/out/checkpoint/state.json")["history"]) == 2
    monkeypatch.setattr(training, "save_checkpoint", saved)
    resumed = pretrain.run(job)
    assert [r["loss"] for r in resumed["history"]] == [r["loss"] for r in whole["history"]]
    assert_same_weights(job.outputs["trunk"], tmp_path / "whole/out/trunk.keras")
    # a changed setting does not resume a checkpoint made under another
    changed = make_job(tmp_path / "killed", learning_rate=0.01)
    assert pretrain.run(changed)["history"][0]["loss"] != whole["history"][0]["loss"]


def test_the_cnn_starts_from_the_trunk_frozen_or_fine_tuned(tmp_path):
    """`pretrained` is one more tuned choice: frozen keeps the trunk's convolutions as
    they are through training, finetune trains them at the lower learning rate while
    the new head trains at the trial's, none is the ordinary network; the recorded
    hyperparameters are the ones it really has."""
    import keras_tuner as kt

    from deeprules import encoding
    from deeprules.cnn.model import build_model, effective_values

    job = pretrain_job(tmp_path / "trunk", epochs=1)
    pretrain.run(job)
    trunk_weights = weights(job.outputs["trunk"])
    architecture = {"conv_blocks": 2, "filters": 16, "kernel_size": 9, "dilation": 2}
    trunk = {
        "path": str(job.outputs["trunk"]),
        "values": {**architecture, "pool_size": 1},
        "choices": ["none", "frozen", "finetune"],
        "finetune_learning_rate_factor": 0.1,
    }
    space = validate_run_config({"datasets": ["x"]})["cnn"]["search_space"]
    x = encoding.one_hot(["ACGT" * 10, "TTGACTCAGCAA" * 3], "dna", 80)
    y = np.array([[0.0], [1.0]])
    built = {}
    for choice in trunk["choices"]:
        hp = kt.HyperParameters()
        hp.values = {"pretrained": choice, "learning_rate": 0.01, "conv_blocks": 1, "filters": 8}
        model = build_model(hp, 80, 4, 2, space, trunk=trunk)
        model.fit(x, y, epochs=2, verbose=0)
        built[choice] = model
    frozen = built["frozen"].get_layer("conv2").get_weights()
    np.testing.assert_array_equal(frozen[0], trunk_weights[2])  # conv2 kernel, untouched
    tuned = built["finetune"].get_layer("conv2").get_weights()[0]
    assert tuned.shape == trunk_weights[2].shape and not np.array_equal(tuned, trunk_weights[2])
    assert float(built["finetune"].optimizer.learning_rate) == pytest.approx(0.01)
    assert steps(trunk, space, x, y) == pytest.approx(
        {"conv2": 0.001, "probability": 0.01}, rel=1e-3
    )
    built["finetune"].save(tmp_path / "finetuned.keras")  # as the cnn stage saves model.keras
    assert keras.saving.load_model(tmp_path / "finetuned.keras").optimizer.trunk_factor == 0.1
    assert built["none"].get_layer("conv1").get_weights()[0].shape[-1] == 8  # sampled, own
    with pytest.raises(ValueError):
        built["none"].get_layer("conv2")
    values = effective_values(
        {"pretrained": "finetune", "learning_rate": 0.01, "filters": 8}, trunk
    )
    assert values["filters"] == 16 and values["pool_size"] == 1
    assert values["learning_rate"] == pytest.approx(0.01)  # the head's; the trunk's is lower


def steps(trunk: dict, space: dict, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """The largest weight change of the trunk's last convolution and of the head in a
    fine-tuned network's first Adam step: Adam's first step moves a weight by its
    learning rate (whatever the gradient's size), so this reads each layer's rate."""
    import keras_tuner as kt

    from deeprules.cnn.model import build_model

    hp = kt.HyperParameters()
    hp.values = {"pretrained": "finetune", "learning_rate": 0.01, "optimizer": "adam"}
    hp.values |= {"dropout": 0.0, "l2": 1e-6, "dense_units": 0}
    model = build_model(hp, 80, 4, 2, space, trunk=trunk)
    before = {name: model.get_layer(name).get_weights()[0] for name in ("conv2", "probability")}
    model.train_on_batch(x, y)
    return {
        name: float(np.abs(model.get_layer(name).get_weights()[0] - weights).max())
        for name, weights in before.items()
    }


def test_a_supervised_trunk_learns_the_sources_labels_deterministically(tmp_path):
    """pretrain.from: the trunk learns the source's train labels (minus the split's
    exclusions), measured on the source's tune; the same seed gives the same weights;
    the CNN search loads its convolutions (frozen: unchanged by training)."""
    import keras_tuner as kt

    from deeprules import encoding
    from deeprules.cnn.job import _trunk
    from deeprules.cnn.model import build_model

    first = pretrain.run(
        supervised_job(tmp_path / "a", excluded=["rel0", "rel1", "rel2"], epochs=4)
    )
    assert first["kind"] == "supervised" and first["source"]["dataset"] == "related"
    assert first["sequences"] == {
        "source_dataset": "related",
        "source_train_read": 100,
        "source_train_removed": {"pretrain_homolog_of_test": 3},
        "source_train_used": 97,
        "total": 97,
    }
    history = first["history"]
    assert history[-1]["loss"] < history[0]["loss"]
    assert {"accuracy", "tune_accuracy"} <= set(history[-1]) and "mask_fraction" not in first
    again = pretrain.run(
        supervised_job(tmp_path / "b", excluded=["rel0", "rel1", "rel2"], epochs=4)
    )
    assert [row["loss"] for row in again["history"]] == [row["loss"] for row in history]
    assert_same_weights(tmp_path / "a/out/trunk.keras", tmp_path / "b/out/trunk.keras")

    cnn_job = Job(
        {
            "trunk": tmp_path / "a/out/trunk.keras",
            "pretrain_summary": tmp_path / "a/out/summary.json",
        },
        {},
        {"pretrain": {"choices": ["frozen"], "finetune_learning_rate_factor": 0.1}},
    )
    trunk = _trunk(cnn_job)
    assert trunk["values"] == {
        "conv_blocks": 2,
        "filters": 16,
        "kernel_size": 9,
        "dilation": 2,
        "pool_size": 1,
    }
    hp = kt.HyperParameters()
    hp.values = {"pretrained": "frozen", "learning_rate": 0.01}
    space = validate_run_config({"datasets": ["x"]})["cnn"]["search_space"]
    model = build_model(hp, 80, 4, 2, space, trunk=trunk)
    x = encoding.one_hot(["ACGT" * 10, "TTGACTCAGCAA" * 3], "dna", 80)
    model.fit(x, np.array([[0.0], [1.0]]), epochs=2, verbose=0)
    source_conv2 = keras.saving.load_model(trunk["path"], compile=False).get_layer("conv2")
    for loaded, trained in zip(
        source_conv2.get_weights(), model.get_layer("conv2").get_weights(), strict=True
    ):
        np.testing.assert_array_equal(loaded, trained)


@pytest.mark.slow
def test_a_dataset_with_an_unlabeled_source_runs_end_to_end(tmp_path):
    """The workflow on a planted few-label dataset with an unlabeled pool holding copies
    of labelled sequences: the split lists the copies of tune and test, pretrain never
    reads test.tsv, the CNN and the from-scratch CNN are compared on test and the
    scorecard's Tip 5 row says what pre-training changed."""
    import pandas as pd
    from conftest import REPO, SNAKEMAKE, run_workflow, write_yaml
    from planted import as_fasta

    from deeprules.io import read_tsv

    labelled, pool = few_label_task(200, 600, seed=3)
    copies = labelled.iloc[::5][["id", "sequence"]].assign(id=lambda t: "copy_" + t["id"])
    (tmp_path / "data").mkdir()
    for name, part in (("bound", "bound"), ("background", "background")):
        (tmp_path / f"data/{name}.fa").write_text(as_fasta(labelled[labelled["label"] == part]))
    (tmp_path / "data/pool.fa").write_text(as_fasta(pd.concat([pool, copies])))
    sources = [
        {"name": name, "kind": "local", "path": f"data/{name}.fa", "label": name}
        for name in ("bound", "background")
    ]
    write_yaml(
        tmp_path / "config/datasets/few.yaml",
        {
            "sequence_type": "dna",
            "positive_class": "bound",
            "labels": {"from": "source"},
            "sources": [
                *sources,
                {"name": "pool", "kind": "local", "path": "data/pool.fa", "role": "unlabeled"},
            ],
        },
    )
    write_yaml(
        tmp_path / "config/config.yaml",
        {
            "datasets": ["few"],
            "seed": 7,
            "budget": {"trials": 3},
            "cnn": {"max_epochs": 4, "min_epochs": 2, "growth": {"enabled": False}},
            "pretrain": {"epochs": 2},
            "baselines": {"families": ["logistic_regression"]},
        },
    )
    run_workflow(tmp_path)
    results = tmp_path / "results/few"
    partition = read_tsv(results / "split/assignments.tsv").set_index("id")["partition"]
    excluded = read_tsv(results / "split/pretrain_excluded.tsv").set_index("id")["reason"]
    held_out = {
        f"copy_{i}" for i in labelled["id"].iloc[::5] if partition.get(i) in ("tune", "test")
    }
    assert held_out and held_out <= set(excluded.index)
    summary = read_json(results / "pretrain/summary.json")
    assert summary["sequences"]["unlabeled_used"] == 640 - len(excluded)
    detail = subprocess.run(
        [
            SNAKEMAKE,
            "--snakefile",
            str(REPO / "Snakefile"),
            "--directory",
            str(tmp_path),
            "--configfile",
            str(tmp_path / "config/config.yaml"),
            "--detailed-summary",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = [line.split("\t") for line in detail.splitlines() if "\tpretrain\t" in line]
    assert rows and not any("test.tsv" in ",".join(row) for row in rows)
    comparisons = read_tsv(results / "evaluate/comparisons.tsv").set_index("reference")
    assert comparisons.loc["cnn_scratch", "reference_role"] == "cnn_scratch"
    tip5 = read_json(results / "report/scorecard.json")["tips"][4]
    assert tip5["verdict"].startswith("pretraining_") and tip5["numbers"]["pretraining"]
    assert (
        tip5["numbers"]["removed_homologs_of_test"]
        == (excluded == "pretrain_homolog_of_test").sum()
    )


def two_dataset_project(folder: Path, pretrain_keys: dict, pooled_target: bool = False) -> Path:
    """A run of two planted DNA datasets, 'related' (the source of pretrain.from, with
    copies of some target sequences) and 'few' (the target; with `pooled_target` it also
    declares an unlabeled pool)."""
    from conftest import write_yaml
    from planted import as_fasta

    labelled, pool = few_label_task(200, 300, seed=3)
    related = related_source(labelled, 200, seed=4, copied=labelled["id"].iloc[::5])
    (folder / "data").mkdir(parents=True)
    for name, table in (("few", labelled), ("related", related)):
        for label in ("bound", "background"):
            (folder / f"data/{name}_{label}.fa").write_text(
                as_fasta(table[table["label"] == label])
            )
    (folder / "data/pool.fa").write_text(as_fasta(pool))
    for name in ("few", "related"):
        sources = [
            {"name": label, "kind": "local", "path": f"data/{name}_{label}.fa", "label": label}
            for label in ("bound", "background")
        ]
        if pooled_target and name == "few":
            sources.append(
                {"name": "pool", "kind": "local", "path": "data/pool.fa", "role": "unlabeled"}
            )
        write_yaml(
            folder / f"config/datasets/{name}.yaml",
            {
                "sequence_type": "dna",
                "positive_class": "bound",
                "labels": {"from": "source"},
                "sources": sources,
            },
        )
    return write_yaml(
        folder / "config/config.yaml",
        {
            "datasets": ["few", "related"],
            "seed": 7,
            "budget": {"trials": 3},
            "cnn": {"max_epochs": 4, "min_epochs": 2, "growth": {"enabled": False}},
            "pretrain": pretrain_keys,
            "baselines": {"families": ["logistic_regression"]},
        },
    )


def planned_inputs(dry_run: str) -> dict[tuple[str, str], list[str]]:
    """(rule, dataset) -> input files of every job a `snakemake --dry-run` plans."""
    jobs, rule, inputs = {}, None, []
    for line in dry_run.splitlines():
        stripped = line.strip()
        if stripped.startswith("rule ") and stripped.endswith(":"):
            rule, inputs = stripped[5:-1], []
        elif stripped.startswith("input:") and rule:
            inputs = [item.strip() for item in stripped[6:].split(",")]
        elif stripped.startswith("wildcards: dataset=") and rule:
            jobs[(rule, stripped.split("=", 1)[1])] = inputs
    return jobs


def test_pretrain_from_wires_the_source_train_into_the_targets_split_and_pretrain(tmp_path):
    """pretrain.from, planned by Snakemake: the target's split reads the source's
    train.tsv (to list its homologues of tune and test); the target's pretrain reads the
    source's train, tune and split report and the target's ledger, and no test.tsv of
    either; the source is not pre-trained; a target with an unlabeled source too is
    refused before any job."""
    from conftest import run_workflow

    two_dataset_project(tmp_path / "run", {"from": "related", "epochs": 2})
    result = run_workflow(tmp_path / "run", "--dry-run")
    jobs = planned_inputs(result.stdout + result.stderr)
    assert "results/related/split/train.tsv" in jobs[("split", "few")]
    assert jobs[("split", "related")] == ["results/related/curate/sequences.tsv"]
    pretrain_inputs = jobs[("pretrain", "few")]
    assert set(pretrain_inputs) == {
        "results/few/split/pretrain_excluded.tsv",
        "results/related/split/train.tsv",
        "results/related/split/tune.tsv",
        "results/related/split/split_report.json",
        "results/related/explore/gate.json",
        "results/few/explore/gate.json",
    }
    assert not any("test.tsv" in path for path in pretrain_inputs)
    assert "results/few/pretrain/trunk.keras" in jobs[("cnn", "few")]
    assert ("cnn_scratch", "few") in jobs
    assert {("pretrain", "related"), ("cnn_scratch", "related")}.isdisjoint(jobs)
    assert "results/related/pretrain/trunk.keras" not in jobs[("cnn", "related")]

    two_dataset_project(tmp_path / "pooled", {"from": "related"}, pooled_target=True)
    refused = run_workflow(tmp_path / "pooled", "--dry-run", check=False)
    assert refused.returncode != 0 and not (tmp_path / "pooled/results").exists()
    message = refused.stdout + refused.stderr
    assert "config.yaml: key 'pretrain.from' names 'related' (supervised pre-training)" in message
