"""Config and dataset files are validated before any job, naming the file and key."""

from __future__ import annotations

import pytest
import yaml
from conftest import REPO, run_workflow, write_yaml

from deeprules.config import load_dataset, load_datasets, validate_run_config
from deeprules.io import InputError

GOOD_DATASET = {
    "sequence_type": "dna",
    "sources": [{"name": "pos", "kind": "local", "path": "pos.fa", "label": "bound"}],
    "labels": {"from": "source"},
}


def test_shipped_config_and_default_dataset_are_valid():
    config = validate_run_config(yaml.safe_load((REPO / "config/config.yaml").read_text()))
    assert config["seed"] == 42 and config["fetch"]["endpoints"]["zenodo"].startswith("https://")
    amp = load_dataset(REPO / "config/datasets/amp.yaml")
    assert amp["name"] == "amp" and amp["sequence_type"] == "protein"


def test_defaults_are_filled_in(tmp_path):
    config = validate_run_config({"datasets": ["x"]})
    assert config["budget"]["trials"] == 30 and config["curate"]["on_invalid"] == "error"
    dataset = load_dataset(write_yaml(tmp_path / "toy.yaml", GOOD_DATASET))
    assert dataset["allow_unpinned"] is False and dataset["metadata"]["columns"] == []


def test_missing_key_is_named(tmp_path):
    bad = {k: v for k, v in GOOD_DATASET.items() if k != "sequence_type"}
    with pytest.raises(
        InputError, match=r"toy\.yaml is invalid: 'sequence_type' is a required property"
    ):
        load_dataset(write_yaml(tmp_path / "toy.yaml", bad))


def test_wrong_type_is_named():
    with pytest.raises(InputError, match=r"key 'seed': 'many' is not of type 'integer'"):
        validate_run_config({"datasets": ["amp"], "seed": "many"})


def test_nested_key_is_named(tmp_path):
    bad = {
        **GOOD_DATASET,
        "sources": [{"name": "pos", "kind": "url", "url": "gopher://x", "label": "b"}],
    }
    with pytest.raises(InputError, match=r"key 'sources\[0\]\.url'"):
        load_dataset(write_yaml(tmp_path / "toy.yaml", bad))


def test_kind_specific_key_is_required(tmp_path):
    bad = {**GOOD_DATASET, "sources": [{"name": "z", "kind": "zenodo", "record": 1, "label": "b"}]}
    with pytest.raises(InputError, match=r"key 'sources\[0\]': 'file' is a required property"):
        load_dataset(write_yaml(tmp_path / "toy.yaml", bad))


def test_label_per_source_is_required_when_labels_come_from_sources(tmp_path):
    bad = {**GOOD_DATASET, "sources": [{"name": "pos", "kind": "local", "path": "pos.fa"}]}
    with pytest.raises(InputError, match=r"key 'sources\[0\]\.label' is required"):
        load_dataset(write_yaml(tmp_path / "toy.yaml", bad))


def test_unknown_dataset_is_named(tmp_path):
    write_yaml(tmp_path / "toy.yaml", GOOD_DATASET)
    config = validate_run_config({"datasets": ["toy", "tyo"], "datasets_dir": str(tmp_path)})
    with pytest.raises(
        InputError, match=r"'datasets\[1\]': unknown dataset 'tyo'.*known datasets: toy"
    ):
        load_datasets(config)


def test_snakemake_stops_before_any_job_on_an_invalid_dataset(tmp_path):
    write_yaml(tmp_path / "config/config.yaml", {"datasets": ["toy"]})
    write_yaml(tmp_path / "config/datasets/toy.yaml", {**GOOD_DATASET, "sequence_type": "peptide"})
    result = run_workflow(tmp_path, "--dry-run", check=False)
    assert result.returncode != 0
    message = result.stdout + result.stderr
    assert "config/datasets/toy.yaml is invalid" in message and "key 'sequence_type'" in message
    assert not (tmp_path / "results").exists()


def test_unlabeled_sources_need_no_label_and_reach_only_pretraining_settings(tmp_path):
    """role defaults to labeled; an unlabeled source needs no label; a dataset needs one
    labelled source; pre-training keys reach the cnn and pretrain rules of a dataset with
    pre-training only, and the cnn_scratch search never sees them (Tip 5)."""
    from deeprules.config import (
        cnn_scratch_settings,
        cnn_settings,
        has_pretraining,
        pretrain_settings,
    )

    plain = load_dataset(write_yaml(tmp_path / "plain.yaml", GOOD_DATASET))
    assert plain["sources"][0]["role"] == "labeled" and not has_pretraining(plain)
    pool = {"name": "pool", "kind": "local", "path": "pool.fa", "role": "unlabeled"}
    with_pool = {**GOOD_DATASET, "sources": [*GOOD_DATASET["sources"], pool]}
    dataset = load_dataset(write_yaml(tmp_path / "pool.yaml", with_pool))
    assert has_pretraining(dataset)
    only_pool = {**GOOD_DATASET, "sources": [pool]}
    with pytest.raises(InputError, match=r"key 'sources' needs at least one source with role"):
        load_dataset(write_yaml(tmp_path / "only.yaml", only_pool))
    config = validate_run_config({"datasets": ["x"], "pretrain": {"epochs": 3}})
    assert "pretrain" not in cnn_settings(config, plain)
    assert cnn_settings(config, dataset)["pretrain"] == {
        "choices": ["none", "frozen", "finetune"],
        "finetune_learning_rate_factor": 0.1,
    }
    scratch = cnn_scratch_settings(config, dataset)
    assert "pretrain" not in scratch and scratch["model"] == "cnn_scratch"
    same = {
        k: v for k, v in cnn_settings(config, dataset).items() if k not in ("model", "pretrain")
    }
    assert same == {k: v for k, v in scratch.items() if k != "model"}
    settings = pretrain_settings(config, dataset)
    assert settings["pretrain"]["epochs"] == 3
    assert not {"choices", "finetune_learning_rate_factor"} & set(settings["pretrain"])
    assert settings["length"] == {"max_length": None, "length_quantile": 0.99}


def test_pretrain_from_is_checked_across_datasets_before_any_job(tmp_path):
    """pretrain.from must name a dataset of the run whose sequence type every other
    dataset shares, and no dataset it pre-trains may also declare an unlabeled source;
    each message names the key, the file that set it and what to change."""
    pool = {"name": "pool", "kind": "local", "path": "pool.fa", "role": "unlabeled"}
    write_yaml(tmp_path / "source.yaml", GOOD_DATASET)
    write_yaml(tmp_path / "target.yaml", GOOD_DATASET)
    write_yaml(tmp_path / "protein.yaml", {**GOOD_DATASET, "sequence_type": "protein"})
    write_yaml(
        tmp_path / "pooled.yaml", {**GOOD_DATASET, "sources": [*GOOD_DATASET["sources"], pool]}
    )

    def load(datasets: list[str], source: str) -> dict:
        settings = {"datasets": datasets, "datasets_dir": str(tmp_path)}
        config = validate_run_config({**settings, "pretrain": {"from": source}})
        return load_datasets(config, layers=[("run.yaml", {"pretrain": {"from": source}})])

    assert set(load(["source", "target"], "source")) == {"source", "target"}
    with pytest.raises(
        InputError,
        match=r"run\.yaml: key 'pretrain\.from' names 'sorce', which is not a dataset of this "
        r"run \(datasets: source, target\); name one of them",
    ):
        load(["source", "target"], "sorce")
    with pytest.raises(
        InputError,
        match=r"key 'pretrain\.from' names 'source', a dna dataset, but 'protein' is protein: "
        r"the trunk reads one one-hot alphabet.*set pretrain\.from to null",
    ):
        load(["source", "protein"], "source")
    with pytest.raises(
        InputError,
        match=r"key 'pretrain\.from' names 'source' \(supervised pre-training\), but dataset "
        r"'pooled' also declares a source with role 'unlabeled'.*remove the unlabeled sources",
    ):
        load(["source", "pooled"], "source")
    # the source itself may keep its unlabeled sources: it is not pre-trained from itself
    assert set(load(["pooled", "target"], "pooled")) == {"pooled", "target"}


def test_pretrain_from_reaches_only_the_datasets_it_pre_trains(tmp_path):
    """Params are the contract: with pretrain.from every stage of the source dataset
    reads what it read without the key; the other dataset's split names the source, its
    pretrain stage gets the source (and no mask_fraction), its CNN the trunk choices."""
    from deeprules.config import STAGE_SETTINGS, pretrains, split_settings, supervised_source

    write_yaml(tmp_path / "source.yaml", GOOD_DATASET)
    write_yaml(tmp_path / "target.yaml", GOOD_DATASET)
    base = {"datasets": ["source", "target"], "datasets_dir": str(tmp_path)}
    plain = validate_run_config(dict(base))
    config = validate_run_config({**base, "pretrain": {"from": "source"}})
    datasets = load_datasets(config)
    source, target = datasets["source"], datasets["target"]
    assert plain["pretrain"]["from"] is None
    assert supervised_source(config, source) is None and not pretrains(config, source)
    assert supervised_source(config, target) == "source" and pretrains(config, target)
    assert not pretrains(plain, target)
    for stage, build in STAGE_SETTINGS.items():
        assert build(config, source) == build(plain, source), stage
    changed = {
        stage
        for stage, build in STAGE_SETTINGS.items()
        if build(config, target) != build(plain, target)
    }
    assert changed == {"split", "pretrain", "cnn"}
    assert split_settings(config, target)["pretrain_from"] == "source"
    pretrain = STAGE_SETTINGS["pretrain"](config, target)
    assert pretrain["source"] == "source" and "mask_fraction" not in pretrain["pretrain"]
    assert "from" not in pretrain["pretrain"]
    assert set(STAGE_SETTINGS["cnn"](config, target)["pretrain"]) == {
        "choices",
        "finetune_learning_rate_factor",
    }
