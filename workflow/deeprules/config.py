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
