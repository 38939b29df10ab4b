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
