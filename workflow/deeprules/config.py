"""Loading and validating the run configuration and the per-dataset files.

Validation happens when the workflow starts, before any job, so a typo in a
dataset file costs seconds rather than a failed cluster job hours later.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from deeprules.io import InputError

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"


def _validated(data: Any, schema: str, where: str) -> dict[str, Any]:
    """Validate `data` against a schema in workflow/schemas, filling defaults."""
    if not isinstance(data, dict):
        raise InputError(
            f"{where}: expected a YAML mapping of keys to values, got {type(data).__name__}"
        )
    try:
        validate(data, schema=str(SCHEMA_DIR / schema))
    except WorkflowError as error:
        raise InputError(f"{where} is invalid: {_schema_message(error)}") from None
    return data


def _schema_message(error: WorkflowError) -> str:
    """Reduce Snakemake's validation error (it prints the whole schema) to key and problem."""
    cause = error.__context__
    if not isinstance(cause, jsonschema.ValidationError):
        return str(error)
    cause = jsonschema.exceptions.best_match([cause, *cause.context]) if cause.context else cause
    key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in cause.absolute_path)
    return f"key '{key.lstrip('.')}': {cause.message}" if key else cause.message


def validate_run_config(
    config: dict[str, Any], where: str = "config/config.yaml"
) -> dict[str, Any]:
    """Check config/config.yaml and fill in defaults."""
    return _validated(config, "config.schema.yaml", where)


def load_dataset(path: str | Path) -> dict[str, Any]:
    """Read and validate one dataset file; the result carries its own `name`."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise InputError(f"{path}: not valid YAML: {error}") from None
    dataset = _validated(data, "dataset.schema.yaml", str(path))
    _check_consistency(dataset, path)
    dataset["name"] = path.stem
    return dataset


def load_datasets(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Load every dataset the run config names, refusing unknown names."""
    folder = Path(config["datasets_dir"])
    datasets = {}
    for index, name in enumerate(config["datasets"]):
        path = folder / f"{name}.yaml"
        if not path.is_file():
            known = sorted(p.stem for p in folder.glob("*.yaml")) or ["none"]
            raise InputError(
                f"config key 'datasets[{index}]': unknown dataset '{name}' "
                f"({path} does not exist; known datasets: {', '.join(known)})"
            )
        datasets[name] = load_dataset(path)
    return datasets


def _check_consistency(dataset: dict[str, Any], path: Path) -> None:
    """Cross-key rules a schema cannot express clearly."""
    names = [source["name"] for source in dataset["sources"]]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InputError(
            f"{path}: key 'sources': source names must be unique, repeated: {repeated}"
        )
    if dataset["labels"]["from"] == "source":
        for index, source in enumerate(dataset["sources"]):
            if "label" not in source:
                raise InputError(
                    f"{path}: key 'sources[{index}].label' is required "
                    "because labels.from is 'source'"
                )
    for index, source in enumerate(dataset["sources"]):
        if source.get("header") is False and not source.get("columns"):
            raise InputError(
                f"{path}: key 'sources[{index}].columns' is required when header is false"
            )


# -- what each stage reads ---------------------------------------------------
# One builder per stage: the rule's `params.settings` is exactly this dict, so a
# changed key reruns the stages that read it and no other (Snakemake reruns a job
# whose params changed). Stages read nothing else: never `snakemake.config`.
# Defaults come only from the JSON schemas, filled in when the files are validated.


def _dataset_keys(dataset: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """The dataset file's `keys` that are set, always with the dataset's name."""
    return {key: dataset[key] for key in ("name", *keys) if key in dataset}


SOURCE_KEYS = ("sources", "allow_unpinned")
RECORD_KEYS = ("sequence_type", "sources", "labels", "metadata")
REPORT_KEYS = ("sequence_type", "description", "ethics", "sensitive", "positive_class")


def fetch_settings(config: dict[str, Any], dataset: dict[str, Any]) -> dict[str, Any]:
    """Download: the sources and how to reach them."""
    return {"dataset": _dataset_keys(dataset, SOURCE_KEYS), "fetch": config["fetch"]}


def curate_settings(config: dict[str, Any], dataset: dict[str, Any]) -> dict[str, Any]:
    """Reading records: formats, labels, metadata and what to do with invalid ones."""
    return {"dataset": _dataset_keys(dataset, RECORD_KEYS), "curate": config["curate"]}


def explore_settings(config: dict[str, Any], dataset: dict[str, Any]) -> dict[str, Any]:
    """The checks; `strict` only decides the gate, so switching it reruns only the gate,
    and only the k-mer size of the dataset's sequence type is passed."""
    other = "kmer_size_nucleic" if dataset["sequence_type"] == "protein" else "kmer_size_protein"
    checks = {k: v for k, v in config["explore"].items() if k not in ("strict", other)}
    return {
        "dataset": _dataset_keys(dataset, RECORD_KEYS),
        "explore": checks,
        "seed": config["seed"],
    }


def explore_gate_settings(config: dict[str, Any], dataset: dict[str, Any]) -> dict[str, Any]:
    return {"dataset": _dataset_keys(dataset, ()), "strict": config["explore"]["strict"]}


def split_settings(config: dict[str, Any], dataset: dict[str, Any]) -> dict[str, Any]:
    """The run's split section with the dataset's overrides applied (method, fractions,
    threshold, denominator, partition and balance columns; `key_of` names where method
    and fractions came from, for error messages), and the threshold of the dataset's
    sequence type only: the other type's threshold cannot change this split."""
    run = config["split"]
    override = dataset.get("split", {})
    kind = "protein" if dataset["sequence_type"] == "protein" else "nucleotide"
    merged = {key: value for key, value in run.items() if key != "threshold"}
    merged["threshold"] = run["threshold"][kind]
    merged["threshold_key"] = f"config key 'split.threshold.{kind}'"
    merged["key_of"] = {key: f"config key 'split.{key}'" for key in ("method", "fractions")}
    for key in ("method", "fractions", "threshold", "denominator", "partition_column"):
        if key in override:
            merged[key] = override[key]
            merged["key_of"][key] = f"dataset '{dataset['name']}' key 'split.{key}'"
    if "balance_columns" in override:
        merged["balance_columns"] = override["balance_columns"]
    if "threshold" in override:
        merged["threshold_key"] = f"dataset '{dataset['name']}' key 'split.threshold'"
    return {
        "dataset": _dataset_keys(dataset, ("sequence_type", "positive_class")),
        "split": merged,
        "seed": config["seed"],
    }


def baselines_settings(config: dict[str, Any], dataset: dict[str, Any]) -> dict[str, Any]:
    """The families and their search; the classes come from the split's report. Only the
    k-mer sizes of the dataset's sequence type, and descriptors for proteins only, so the
    other types' settings cannot rerun this dataset's models."""
    section = dict(config["baselines"])
    sequence_type = dataset["sequence_type"]
    section["kmer_sizes"] = {sequence_type: section["kmer_sizes"][sequence_type]}
    if sequence_type != "protein":
        section["descriptors"] = {"enabled": False, "global": False, "scales": []}
    return {
        "dataset": _dataset_keys(dataset, ("sequence_type",)),
        "baselines": section,
        "trials": config["budget"]["trials"],
        "seed": config["seed"],
    }


def cnn_settings(config: dict[str, Any], dataset: dict[str, Any]) -> dict[str, Any]:
    """The search, its budget and determinism; the classes come from the split's report."""
    return {
        "dataset": _dataset_keys(dataset, ("sequence_type",)),
        "cnn": config["cnn"],
        "trials": config["budget"]["trials"],
        "seed": config["seed"],
        "deterministic": config["deterministic"],
    }


def evaluate_settings(config: dict[str, Any], dataset: dict[str, Any]) -> dict[str, Any]:
    """Scoring the test partition; what the models need comes from their own stages' files."""
    return {
        "dataset": _dataset_keys(dataset, ("sequence_type",)),
        "evaluate": config["evaluate"],
        "seed": config["seed"],
    }


def interpret_settings(config: dict[str, Any], dataset: dict[str, Any]) -> dict[str, Any]:
    return {
        "dataset": _dataset_keys(dataset, ("sequence_type",)),
        "interpret": config["interpret"],
        "seed": config["seed"],
    }


def report_settings(config: dict[str, Any], dataset: dict[str, Any]) -> dict[str, Any]:
    """Only the report reads the dataset's description, ethics register and sensitivity."""
    return {
        "dataset": _dataset_keys(dataset, REPORT_KEYS),
        "seed": config["seed"],
        "deterministic": config["deterministic"],
    }


STAGE_SETTINGS = {
    "fetch": fetch_settings,
    "curate": curate_settings,
    "explore": explore_settings,
    "explore_gate": explore_gate_settings,
    "split": split_settings,
    "baselines": baselines_settings,
    "cnn": cnn_settings,
    "evaluate": evaluate_settings,
    "interpret": interpret_settings,
    "report": report_settings,
}
