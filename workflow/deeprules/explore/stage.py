"""Rule explore: every check on the curated table, its tables and figures, and checks.json.

Checks on counts (label x metadata, positions, duplicates, balance) use every
sequence; checks that fit models (shortcuts, batch, the PCA) use a
class-stratified subsample of at most `explore.max_sequences`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd
from threadpoolctl import threadpool_limits

from deeprules import shortcuts
from deeprules.explore.balance import class_balance_check
from deeprules.explore.batch import batch_checks, kmer_pca
from deeprules.explore.duplicates import exact_duplicate_check, near_duplicate_check
from deeprules.explore.figures import (
    plot_composition,
    plot_lengths,
    plot_pca,
    plot_positions,
    plot_shortcuts,
)
from deeprules.explore.inputs import check_settings, load_inputs, model_subsample
from deeprules.explore.metadata import label_metadata_checks
from deeprules.explore.positions import position_check, position_composition
from deeprules.explore.shortcut_checks import shortcut_checks, shortcut_features
from deeprules.explore.verdicts import VERDICTS
from deeprules.io import read_tsv, write_json, write_tsv
from deeprules.rule import Job

log = logging.getLogger("deeprules.explore")

# Outputs of the rule, by the names its `output:` uses.
TABLES = ("label_metadata", "shortcuts", "positions", "near_duplicates", "class_balance", "batch")
FIGURES = ("lengths_png", "composition_png", "pca_png", "shortcuts_png", "positions_png")


@threadpool_limits.wrap(limits=1)
def run(job: Job) -> None:
    """Run every check, write tables, figures and checks.json.

    Maths libraries run single-threaded (the decorator); the job's threads go
    to the MMseqs2 search and the model fits that parallelise across folds.
    """
    settings, dataset, seed = job.settings["explore"], job.dataset, job.settings["seed"]
    outputs, sequence_type = job.outputs, dataset["sequence_type"]
    check_settings(settings)
    table, metadata = load_inputs(
        job.inputs["sequences"], job.inputs["summary"], dataset, settings["cv_folds"]
    )
    log.info(
        "%d sequences, classes %s, metadata %s",
        len(table),
        table["label"].value_counts().to_dict(),
        metadata,
    )
    encoded = shortcuts.encode(table["sequence"].to_numpy(), sequence_type)

    checks, contingency = label_metadata_checks(table, metadata, settings)
    write_tsv(outputs["label_metadata"], contingency)

    rows = model_subsample(table["label"], settings["max_sequences"], seed)
    sample = table.iloc[rows].reset_index(drop=True)
    sample_encoded = shortcuts.encode(sample["sequence"].to_numpy(), sequence_type)
    label_codes = pd.Categorical(sample["label"]).codes.astype(int)
    if len(rows) < len(table):
        log.info("model-based checks use a stratified subsample of %d sequences", len(rows))
    features = shortcut_features(sample_encoded, sequence_type, settings["end_positions"])
    found, shortcut_table = shortcut_checks(features, label_codes, settings, seed, job.threads)
    checks += found
    write_tsv(outputs["shortcuts"], shortcut_table)

    frequencies, association = position_composition(encoded, table["label"], settings)
    checks.append(position_check(association, settings))
    write_tsv(
        outputs["positions"],
        frequencies.merge(association, on=["end", "position"])
        if not frequencies.empty
        else frequencies,
    )

    checks += _duplicate_and_balance_checks(table, read_tsv(job.inputs["dropped"]), job)

    k = settings["kmer_size_protein" if sequence_type == "protein" else "kmer_size_nucleic"]
    profiles = shortcuts.kmer_profile(sample_encoded, k)
    coordinates, explained = kmer_pca(profiles, seed)
    found, batch_table = batch_checks(profiles, sample, metadata, settings, seed)
    checks += found
    write_tsv(outputs["batch"], batch_table)

    plot_lengths(table, outputs["lengths_png"])
    plot_composition(
        features["composition"], sample["label"], encoded.alphabet, outputs["composition_png"]
    )
    plot_pca(coordinates, explained, sample, metadata, k, seed, outputs["pca_png"])
    plot_shortcuts(shortcut_table, settings, outputs["shortcuts_png"])
    plot_positions(frequencies, association, settings, outputs["positions_png"])
    _write_checks(summarise(checks, table, dataset, settings, len(rows)), outputs["checks"])


def _duplicate_and_balance_checks(
    table: pd.DataFrame, dropped: pd.DataFrame, job: Job
) -> list[dict[str, Any]]:
    """Checks 4 and 5 on every sequence; writes near_duplicates.tsv and class_balance.tsv."""
    settings, seed = job.settings["explore"], job.settings["seed"]
    exact = exact_duplicate_check(table, dropped, settings)
    near, pairs = near_duplicate_check(
        table,
        job.dataset["sequence_type"],
        settings,
        Path(job.outputs["checks"]).parent,
        job.threads,
        seed,
    )
    write_tsv(job.outputs["near_duplicates"], pairs)
    balance, balance_table = class_balance_check(table["label"], settings)
    write_tsv(job.outputs["class_balance"], balance_table)
    return [exact, near, balance]


def _write_checks(result: dict[str, Any], path: Path) -> None:
    """checks.json, and every check that did not pass in the log."""
    write_json(path, result)
    log.info(
        "verdicts %s; floor AUROC %.3f (%s)",
        result["verdicts"],
        result["floor"]["auroc"],
        result["floor"]["check"],
    )
    for check in result["checks"]:
        if check["verdict"] != "pass":
            log.warning("%s %s: %s", check["verdict"].upper(), check["name"], check["explanation"])


def summarise(
    checks: list[dict[str, Any]],
    table: pd.DataFrame,
    dataset: dict[str, Any],
    settings: dict[str, Any],
    modelled: int,
) -> dict[str, Any]:
    """The body of checks.json: every check, the verdict counts, the failures and the floor."""
    shortcut = [c for c in checks if c["kind"] == "shortcut"]
    best = max(shortcut, key=lambda c: c["value"])
    return {
        "dataset": dataset["name"],
        "sequence_type": dataset["sequence_type"],
        "sequences": len(table),
        "sequences_modelled": int(modelled),
        "labels": {str(k): int(v) for k, v in table["label"].value_counts().sort_index().items()},
        "settings": dict(settings),
        "verdicts": {v: sum(c["verdict"] == v for c in checks) for v in VERDICTS},
        "failures": [c["name"] for c in checks if c["verdict"] == "fail"],
        "warnings": [c["name"] for c in checks if c["verdict"] == "warn"],
        "floor": {
            "auroc": best["value"],
            "check": best["name"],
            "model": best["model"],
            "explanation": "The best cross-validated AUROC any single trivial feature set "
            "reaches; a real model must clearly beat it.",
        },
        "checks": checks,
    }
