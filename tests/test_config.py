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
