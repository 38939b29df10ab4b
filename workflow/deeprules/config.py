"""Loading and validating the run configuration and the per-dataset files.

Validation happens when the workflow starts, before any job, so a typo in a
dataset file costs seconds rather than a failed cluster job hours later.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jsonschema
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from deeprules.config_checks import (
    KeyPath,
    Layer,
    blame,
    dataset_problems,
    key_name,
    pretraining_problems,
    read_yaml,
    run_config_problems,
)
from deeprules.io import InputError

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"


def _validated(data: Any, schema: str, where: str, layers: Sequence[Layer] = ()) -> dict[str, Any]:
    """Validate `data` against a schema in workflow/schemas, filling defaults; an error
    names the file that set the offending key (one of `layers`, else `where`)."""
    if not isinstance(data, dict):
        raise InputError(
            f"{where}: expected a YAML mapping of keys to values, got {type(data).__name__}"
        )
    try:
        validate(data, schema=str(SCHEMA_DIR / schema))
    except WorkflowError as error:
        path, message = _schema_message(error)
        raise InputError(f"{blame(path, layers, where)} is invalid: {message}") from None
    return data


def _schema_message(error: WorkflowError) -> tuple[KeyPath, str]:
    """Reduce Snakemake's validation error (it prints the whole schema) to key and problem;
    an unknown key is named itself, with the closest known key."""
    cause = error.__context__
    if not isinstance(cause, jsonschema.ValidationError):
        return (), str(error)
    cause = jsonschema.exceptions.best_match([cause, *cause.context]) if cause.context else cause
    path: KeyPath = tuple(cause.absolute_path)
    message = cause.message
    if cause.validator == "additionalProperties" and isinstance(cause.instance, dict):
        known = list(cause.schema.get("properties", {}))
        unknown = sorted(set(cause.instance) - set(known))
        if unknown:
            path = (*path, unknown[0])
            close = difflib.get_close_matches(unknown[0], known, n=1)
            message = f"unknown key; {f'did you mean {close[0]!r}? ' if close else ''}" + (
                f"known keys here: {', '.join(known)}"
            )
    return path, f"key '{key_name(path)}': {message}" if path else message


def validate_run_config(
    config: dict[str, Any], where: str = "config/config.yaml", layers: Sequence[Layer] = ()
) -> dict[str, Any]:
    """Check the run config and fill in defaults, then the rules across keys.

    `layers` are the config files (and --config values) Snakemake merged, in order,
    as (name, content): an error is blamed on the one that set the key.
    """
    _validated(config, "config.schema.yaml", where, layers)
    problems = [
        f"{blame(path, layers, where)}: key '{key_name(path)}' {message}"
        for path, message in run_config_problems(config)
    ]
    if problems:
        raise InputError("\n".join(problems))
    return config


def config_layers(
    snakefile_files: Sequence[str | Path],
    command_line_files: Sequence[str | Path],
    command_line_values: dict[str, Any],
) -> list[Layer]:
    """What Snakemake merged, lowest precedence first: the Snakefile's configfile(s),
    then --configfile files, then --config values."""
    given = {Path(f).resolve() for f in command_line_files}
    files = [f for f in snakefile_files if Path(f).resolve() not in given]
    layers: list[Layer] = [(str(f), read_yaml(f)) for f in [*files, *command_line_files]]
    if command_line_values:
        layers.append(("--config on the command line", dict(command_line_values)))
    return layers


def load_dataset(path: str | Path) -> dict[str, Any]:
    """Read and validate one dataset file; the result carries its own `name`."""
    path = Path(path)
    dataset = _validated(read_yaml(path), "dataset.schema.yaml", str(path))
    problems = [
        f"{path}: key '{key_name(key)}' {message}" for key, message in dataset_problems(dataset)
    ]
    if problems:
        raise InputError("\n".join(problems))
    dataset["name"] = path.stem
    return dataset


def load_datasets(
    config: dict[str, Any], where: str = "config/config.yaml", layers: Sequence[Layer] = ()
) -> dict[str, dict[str, Any]]:
    """Load every dataset the run config names, refusing unknown names, then the rules
    across the run config and the datasets (pretrain.from: `layers` as for
    validate_run_config, so the error names the file that set the key)."""
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
    problems = [
        f"{blame(path, layers, where)}: key '{key_name(path)}' {message}"
        for path, message in pretraining_problems(config, datasets)
    ]
    if problems:
        raise InputError("\n".join(problems))
    return datasets


# -- what each stage reads ---------------------------------------------------
# One builder per stage: the rule's `params.settings` is exactly this dict, so a
# changed key reruns the stages that read it and no other (Snakemake reruns a job
# whose params changed). Stages read nothing else: never `snakemake.config`.
# Defaults come only from the JSON schemas, filled in when the files are validated.


def has_pretraining(dataset: dict[str, Any]) -> bool:
    """The dataset declares an unlabeled source: it gets self-supervised pre-training
    (Tip 5), unless pretrain.from names another dataset (then the run is refused, see
    config_checks.pretraining_problems)."""
    return any(source["role"] == "unlabeled" for source in dataset["sources"])


def supervised_source(config: dict[str, Any], dataset: dict[str, Any]) -> str | None:
    """The dataset whose train partition and labels pre-train this dataset's trunk
    (pretrain.from), or None: without the key, and for the source itself, which is not
    pre-trained from its own train partition."""
    source = config["pretrain"]["from"]
    return source if source is not None and source != dataset["name"] else None


def pretrains(config: dict[str, Any], dataset: dict[str, Any]) -> bool:
    """The dataset gets the pretrain stage, the trunk as a CNN option and the
    from-scratch CNN beside it: self-supervised (an unlabeled source) or supervised
    (pretrain.from names another dataset of the run)."""
    return has_pretraining(dataset) or supervised_source(config, dataset) is not None


def _dataset_keys(dataset: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """The dataset file's `keys` that are set, always with the dataset's name."""
    return {key: dataset[key] for key in ("name", *keys) if key in dataset}


SOURCE_KEYS = ("sources", "allow_unpinned")
RECORD_KEYS = ("sequence_type", "sources", "labels", "metadata")
REPORT_KEYS = ("sequence_type", "description", "ethics", "sensitive", "positive_class")


def fetch_settings(config: dict[str, Any], dataset: dict[str, Any]) -> dict[str, Any]:
    """Download: the sources and how to reach them; a labels side table is recorded
    (with its SHA-256, which curate verifies) as the local file it is."""
    settings = {"dataset": _dataset_keys(dataset, SOURCE_KEYS), "fetch": config["fetch"]}
    if dataset["labels"]["from"] == "table":  # only then: other datasets' params stay as they were
        settings["label_table"] = dataset["labels"]["table"]
    return settings


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
    # the cost table's key: only split_costs reads it, so it cannot rerun the models
    merged["balance"] = {k: v for k, v in run["balance"].items() if k != "compare"}
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
    settings = {
        "dataset": _dataset_keys(dataset, ("sequence_type", "positive_class")),
        "split": merged,
        "seed": config["seed"],
    }
    source = supervised_source(config, dataset)
    if source is not None:  # only then: other datasets' split params stay as they were
        settings["pretrain_from"] = source  # whose train.tsv the split filters (Tip 5)
    return settings


def split_costs_settings(config: dict[str, Any], dataset: dict[str, Any]) -> dict[str, Any]:
    """The split's settings (the cost table repartitions under variants of them) and
    whether to compare variants at all; not which dataset pre-training reads."""
    split = {k: v for k, v in split_settings(config, dataset).items() if k != "pretrain_from"}
    return split | {"compare": config["split"]["balance"]["compare"]}


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
        "trial_subsample": config["budget"]["trial_subsample"],
        "seed": config["seed"],
    }


def cnn_settings(config: dict[str, Any], dataset: dict[str, Any]) -> dict[str, Any]:
    """The search, its budget and determinism; the classes come from the split's report.
    With pre-training (Tip 5) also what the search may do with the trunk: other datasets'
    CNNs do not rerun when those keys change."""
    settings = cnn_scratch_settings(config, dataset) | {"model": "cnn"}
    if pretrains(config, dataset):
        keys = ("choices", "finetune_learning_rate_factor")
        settings["pretrain"] = {key: config["pretrain"][key] for key in keys}
    return settings


def cnn_scratch_settings(config: dict[str, Any], dataset: dict[str, Any]) -> dict[str, Any]:
    """The CNN search without the pre-trained trunk, for a dataset with pre-training: the
    from-scratch model evaluate compares the CNN with (Tip 5)."""
    return {
        "dataset": _dataset_keys(dataset, ("sequence_type",)),
        "cnn": config["cnn"],
        "trials": config["budget"]["trials"],
        "trial_subsample": config["budget"]["trial_subsample"],
        "seed": config["seed"],
        "deterministic": config["deterministic"],
        "model": "cnn_scratch",
    }


def pretrain_settings(config: dict[str, Any], dataset: dict[str, Any]) -> dict[str, Any]:
    """Pre-training of the trunk: its architecture and training, and the CNN's
    input-length rule applied to the pre-training sequences. What the CNN search does
    with the trunk (choices, fine-tuning rate) is the cnn stage's. Supervised (from
    pretrain.from's train partition): the source's name, and no mask_fraction, which only
    the masked-residue objective reads."""
    source = supervised_source(config, dataset)
    unread = ("choices", "finetune_learning_rate_factor", "from")
    if source is not None:
        unread += ("mask_fraction",)
    settings = {
        "dataset": _dataset_keys(dataset, ("sequence_type",)),
        "pretrain": {k: v for k, v in config["pretrain"].items() if k not in unread},
        "length": {key: config["cnn"][key] for key in ("max_length", "length_quantile")},
        "seed": config["seed"],
        "deterministic": config["deterministic"],
    }
    if source is not None:  # only then: a masked-residue dataset's params stay as they were
        settings["source"] = source
    return settings


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
    "split_costs": split_costs_settings,
    "baselines": baselines_settings,
    "pretrain": pretrain_settings,
    "cnn": cnn_settings,
    "cnn_scratch": cnn_scratch_settings,
    "evaluate": evaluate_settings,
    "interpret": interpret_settings,
    "report": report_settings,
}
