"""What the checks read: curation's table and which of its columns are metadata.

Bad input is refused here, before any check runs, with the file, the key and
the fix, so a typo in a dataset file does not surface as a statistics error.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deeprules.io import InputError, read_json, read_tsv


def load_inputs(
    sequences_path: Path, summary_path: Path, dataset: dict[str, Any], folds: int
) -> tuple[pd.DataFrame, list[str]]:
    """The curated table and the metadata columns to check, refusing what the checks cannot use."""
    table = read_tsv(sequences_path)
    missing = [c for c in ("id", "sequence", "label") if c not in table.columns]
    if missing:
        raise InputError(
            f"{sequences_path}: column(s) {', '.join(missing)} missing (columns are: "
            f"{', '.join(table.columns)}); rerun the curate rule."
        )
    metadata = list(read_json(summary_path).get("metadata_columns", []))
    for column, where in _configured_metadata(dataset):
        if column not in table.columns:
            raise InputError(
                f"metadata column '{column}' is named in the dataset file ({where}) but absent "
                f"from {sequences_path} (columns are: {', '.join(table.columns)}); fix the name "
                "in the dataset file or rerun the curate rule."
            )
        if column not in metadata:
            metadata.append(column)
    absent = [c for c in metadata if c not in table.columns]
    if absent:
        raise InputError(
            f"{summary_path} lists metadata column(s) {', '.join(absent)} that {sequences_path} "
            "does not have; rerun the curate rule."
        )
    if "source" in table.columns and "source" not in metadata:
        metadata.insert(0, "source")  # a class read from its own file is a batch too
    _check_classes(table, sequences_path, folds)
    return table, metadata


def _configured_metadata(dataset: dict[str, Any]) -> list[tuple[str, str]]:
    """Every metadata column the dataset file promises, with the key that names it."""
    found = [(c, "metadata.columns") for c in dataset["metadata"]["columns"]]
    found += [(c, "metadata.from_label") for c in dataset["metadata"]["from_label"]]
    for index, source in enumerate(dataset["sources"]):
        # a source's constant metadata is optional and has no default
        found += [(c, f"sources[{index}].metadata") for c in source.get("metadata", {})]
    return found


def _check_classes(table: pd.DataFrame, path: Path, folds: int) -> None:
    counts = table["label"].value_counts()
    if len(counts) < 2:
        raise InputError(
            f"{path}: only one class ({', '.join(counts.index)}); the checks compare classes "
            "and need at least two. Check the labels section of the dataset file."
        )
    small = counts[counts < folds]
    if not small.empty:
        detail = ", ".join(f"'{label}' has {n} sequence(s)" for label, n in small.items())
        raise InputError(
            f"{path}: class {detail}; the checks cross-validate with explore.cv_folds = {folds} "
            f"folds and need at least {folds} sequences per class. Add sequences, merge the "
            "class into another, or lower explore.cv_folds (minimum 2)."
        )


def check_settings(settings: dict[str, Any]) -> None:
    """Threshold pairs the schema cannot compare: a warning must come before a failure."""
    pairs = [
        ("auroc_warn", "auroc_fail"),
        ("cramers_v_warn", "cramers_v_fail"),
        ("position_v_warn", "position_v_fail"),
        ("duplicate_fraction_warn", "duplicate_fraction_fail"),
        ("balance_fail", "balance_warn"),
    ]  # smaller balance is worse
    for low, high in pairs:
        if settings[low] > settings[high]:
            raise InputError(
                f"config/config.yaml: key 'explore.{low}' ({settings[low]}) must not exceed "
                f"'explore.{high}' ({settings[high]})"
            )


def model_subsample(labels: pd.Series, limit: int, seed: int) -> np.ndarray:
    """Row positions of a class-stratified random subsample of at most `limit` sequences.

    Model-based checks run on it: at 20,000 sequences a cross-validated AUROC
    is already known to about +-0.01, and fitting on more only costs time.
    Every class keeps at least 50 sequences (or all it has).
    """
    if len(labels) <= limit:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    fraction = limit / len(labels)
    chosen = []
    for _, rows in labels.groupby(labels, sort=True).indices.items():
        take = min(len(rows), max(math.ceil(len(rows) * fraction), 50))
        chosen.append(rng.choice(rows, size=take, replace=False))
    return np.sort(np.concatenate(chosen))
