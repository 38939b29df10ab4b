"""The split stage: read the sequences, partition by the chosen method, decide the
classes, verify, and write every output.

Rule inputs: sequences (curate/sequences.tsv) and, for a dataset with pre-training,
unlabeled (curate/unlabeled.tsv) or pretrain_source (with pretrain.from: the other
dataset's split/train.tsv). Outputs: train, tune, test (contracts.PARTITIONS
tables), assignments (id, component, partition), dropped (the ledger of removals),
report (split_report.json), figure (identity.png), pairs (homology_pairs.tsv: the
graph's edges, which the split_costs rule repartitions; `deeprules.split.costs`),
pretrain_excluded (the pre-training sequences pre-training must not use: homologues of
tune or test, `deeprules.split.pretraining`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deeprules import mmseqs
from deeprules.contracts import PARTITIONS, Classes, decide_classes, read_partition
from deeprules.io import InputError, read_tsv, sequence_hash, write_json, write_tsv
from deeprules.rule import Job
from deeprules.split.comparison import partition_at_random, place_groups, predefined_partitions
from deeprules.split.figure import plot_identities
from deeprules.split.graph import adjacency, homology_components, similarity_graph
from deeprules.split.homology import RESTARTS, partition_by_homology
from deeprules.split.partition import REMOVED
from deeprules.split.pretraining import empty_ledger, pretraining_exclusions
from deeprules.split.report import SplitOutcome, build_report
from deeprules.split.settings import SplitSettings, build_settings
from deeprules.split.shift import gate, passes_gate, shift_statistics, stop_on_shift
from deeprules.split.strata import build_strata
from deeprules.split.verify import stop_on_leakage, verify_no_leakage, within_partition_identities

log = logging.getLogger("deeprules.split")

LEDGER_COLUMNS = ["id", "sequence_sha256", "reason", "detail"]


def run(job: Job) -> None:
    """The rule's entry point: settings from job.settings, then split."""
    source = None  # (dataset, its train.tsv): only a dataset with pretrain.from has the input
    if "pretrain_source" in job.inputs:
        source = (job.settings["pretrain_from"], job.inputs["pretrain_source"])
    split_dataset(
        job.inputs["sequences"],
        build_settings(job.settings),
        job.outputs,
        threads=job.threads,
        unlabeled_path=job.inputs.get("unlabeled"),  # only datasets with pre-training have it
        pretrain_source=source,
    )


def split_dataset(
    sequences_path: Path,
    settings: SplitSettings,
    outputs: dict[str, Path],
    threads: int = 1,
    workdir: Path | None = None,
    unlabeled_path: Path | None = None,
    pretrain_source: tuple[str, Path] | None = None,
) -> dict[str, Any]:
    """Read curate/sequences.tsv, split, verify, and write every split output.

    outputs: paths for train, tune, test, assignments, dropped, report, figure, pairs
    (and pretrain_excluded). `unlabeled_path`: curate/unlabeled.tsv, or
    `pretrain_source`: (dataset, its split/train.tsv) of pretrain.from; their homologues
    of tune and test are listed in pretrain_excluded. Returns the report (also written
    to outputs['report']).
    """
    started = time.perf_counter()
    table = read_tsv(sequences_path)
    _check_table(table, settings, sequences_path)
    timings: dict[str, float] = {}

    measured = mmseqs.MeasuredPairs(
        settings.listing_floor, settings.denominator, settings.min_coverage
    )  # the graph search fills it; the verification takes its candidates from it
    search = (threads, workdir, timings, measured)
    pairs, exhaustive, component = _homology_graph(table, settings, *search)

    tick = time.perf_counter()
    partition, ledger = assign_partitions(table, pairs, settings, threads, workdir)
    timings["partition_s"] = time.perf_counter() - tick
    kept = table.assign(component=component.to_numpy(), partition=partition)
    kept = kept[kept["partition"] != ""].reset_index(drop=True)
    classes = _classes(kept, settings, outputs["train"])

    cross, shift = _check_partitions(kept, settings, *search)
    timings["total_s"] = time.perf_counter() - started

    outcome = SplitOutcome(
        table=table,
        pairs=pairs,
        component=component,
        exhaustive=exhaustive,
        kept=kept,
        ledger=ledger,
        cross=cross,
        within=within_partition_identities(pairs, kept),
        classes=classes,
        shift=shift,
    )
    report = build_report(outcome, settings, timings)
    stop_on_leakage(cross, settings)
    stop_on_shift(shift["gate"], settings.method)
    excluded, facts = _pretraining_ledger(
        unlabeled_path, pretrain_source, kept, settings, threads, workdir
    )
    if facts is not None:  # a dataset with pre-training
        report["pretraining"] = facts
    _write_outputs(outcome, report, settings, outputs)
    if "pretrain_excluded" in outputs:
        write_tsv(outputs["pretrain_excluded"], excluded)
    return report


def _pretraining_ledger(
    unlabeled_path: Path | None,
    pretrain_source: tuple[str, Path] | None,
    kept: pd.DataFrame,
    settings: SplitSettings,
    threads: int,
    workdir: Path | None,
) -> tuple[pd.DataFrame, dict[str, Any] | None]:
    """The homologues of tune and test among the pre-training sequences (the unlabeled
    pool, or the pretrain.from dataset's train partition, read as the partition it is)
    and the report's facts with the time taken; an empty ledger and None without
    pre-training."""
    if unlabeled_path is None and pretrain_source is None:
        return empty_ledger(), None
    tick = time.perf_counter()
    if pretrain_source is None:
        candidates, source = read_tsv(unlabeled_path), None
    else:
        source, path = pretrain_source
        candidates = read_partition(path, "train")
    excluded, facts = pretraining_exclusions(
        candidates, kept, settings, threads, workdir, source=source
    )
    return excluded, facts | {"seconds": time.perf_counter() - tick}


def _check_partitions(
    kept: pd.DataFrame,
    settings: SplitSettings,
    threads: int,
    workdir: Path | None,
    timings: dict[str, float],
    measured: mmseqs.MeasuredPairs,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The independent leakage verification, and the shift statistics with their gate:
    the two checks the partitions must pass before any model sees them."""
    tick = time.perf_counter()
    cross = verify_no_leakage(kept, settings, threads, workdir, measured)
    timings["verification_s"] = time.perf_counter() - tick
    tick = time.perf_counter()
    shift = shift_statistics(kept, settings.sequence_type, settings.seed)
    shift["gate"] = gate(shift, settings)
    timings["shift_s"] = time.perf_counter() - tick
    return cross, shift


def _homology_graph(
    table: pd.DataFrame,
    settings: SplitSettings,
    threads: int,
    workdir: Path | None,
    timings: dict[str, float],
    measured: mmseqs.MeasuredPairs,
) -> tuple[pd.DataFrame, bool, pd.Series]:
    """The similar pairs, whether their search was exhaustive, and each sequence's
    connected component: homologues are kept together by component, so these decide
    everything the split may do. Times the search (the slow part) into `timings`."""
    tick = time.perf_counter()
    pairs, exhaustive = similarity_graph(table, settings, threads, workdir, keep_measured=measured)
    timings["similarity_graph_s"] = time.perf_counter() - tick
    component = homology_components(table["id"], pairs)
    log.info(
        "%d pairs at or above %g; %d components, largest %d sequences",
        len(pairs),
        settings.threshold,
        component.nunique(),
        component.value_counts().max(),
    )
    return pairs, exhaustive, component


def _classes(kept: pd.DataFrame, settings: SplitSettings, train_path: Path) -> Classes:
    """Decided here, once, from train (the dataset's positive_class, else train's minority
    class): every later stage reads them from split_report.json, so "positive" means the
    same class everywhere. Before the verification, so a wrong positive_class fails fast."""
    train = kept.loc[kept["partition"] == "train", "label"]
    return decide_classes(train, settings.positive_class, where=str(train_path))


def _check_table(table: pd.DataFrame, settings: SplitSettings, path: Path) -> None:
    """Columns present, ids unique, and every class large enough for every partition."""
    for column in ("id", "sequence", "label"):
        if column not in table.columns:
            raise InputError(
                f"{path}: column '{column}' missing; columns are {list(table.columns)}"
            )
    if table["id"].duplicated().any():
        raise InputError(
            f"{path}: ids must be unique, repeated: "
            f"{table.loc[table['id'].duplicated(), 'id'].head(3).tolist()}"
        )
    smallest = min(settings.fractions)
    for label, count in table["label"].value_counts().items():
        if count * smallest < 1:
            raise InputError(
                f"{path}: class '{label}' has {count} sequences, too few to appear in every "
                f"partition with config key 'split.fractions' "
                f"{dict(zip(PARTITIONS, settings.fractions, strict=True))}; "
                f"it needs at least {math.ceil(1 / smallest)}, or raise the smallest fraction"
            )
    if settings.method == "predefined" and settings.partition_column not in table.columns:
        raise InputError(
            f"key 'split.partition_column': column '{settings.partition_column}' not in {path}; "
            f"columns are {list(table.columns)}"
        )


def assign_partitions(
    table: pd.DataFrame,
    pairs: pd.DataFrame,
    settings: SplitSettings,
    threads: int = 1,
    workdir: Path | None = None,
    restarts: int = RESTARTS,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Partition name per row ('' = removed) and the ledger of removals, by the chosen
    method; `restarts`: attempts of the homology method (the cost table's variants use
    one, so showing what balance costs does not triple the partitioning time:
    deeprules.split.costs)."""
    labels = table["label"].to_numpy()
    rng = np.random.default_rng(settings.seed)
    reasons: dict[int, tuple[str, str]] = {}  # only the homology method removes sequences
    if settings.method == "homology":
        strata = build_strata(table, settings.length_bins, settings.balance_columns)
        strata = strata if strata.n_blocks > 1 else None  # nothing besides the label
        codes, reasons = partition_by_homology(
            adjacency(table["id"], pairs),
            labels,
            settings.fractions,
            settings.tolerances(strata.n_blocks if strata else 1),
            rng,
            strata,
            acceptable=_shift_judge(table, settings) if strata is not None else None,
            restarts=restarts,
            workers=threads,
        )
    elif settings.method == "random":
        codes = partition_at_random(labels, settings.fractions, rng)
    elif settings.method == "cluster":
        clusters = mmseqs.cluster_ids(table, *settings.homology, workdir=workdir, threads=threads)
        codes = place_groups(pd.factorize(clusters)[0], labels, settings.fractions, rng)
    else:
        codes = predefined_partitions(table, settings.partition_column)
    names = np.array([*PARTITIONS, ""])[np.where(codes == REMOVED, len(PARTITIONS), codes)]
    return names, _ledger(table, reasons)


def _shift_judge(table: pd.DataFrame, settings: SplitSettings) -> Callable[[np.ndarray], bool]:
    """Partition codes -> whether that attempt passes the shift gate."""

    def acceptable(codes: np.ndarray) -> bool:
        kept = codes != REMOVED
        candidate = table[kept].assign(partition=np.asarray(PARTITIONS)[codes[kept]])
        return passes_gate(candidate, settings)

    return acceptable


def _ledger(table: pd.DataFrame, reasons: dict[int, tuple[str, str]]) -> pd.DataFrame:
    """dropped.tsv: each removed sequence by id and sequence hash, with the reason."""
    return pd.DataFrame(
        [
            {
                "id": table["id"].iat[row],
                "sequence_sha256": sequence_hash(table["sequence"].iat[row]),
                "reason": reason,
                "detail": detail,
            }
            for row, (reason, detail) in sorted(reasons.items())
        ],
        columns=LEDGER_COLUMNS,
    )


def _write_outputs(
    outcome: SplitOutcome,
    report: dict[str, Any],
    settings: SplitSettings,
    outputs: dict[str, Path],
) -> None:
    kept = outcome.kept
    columns = [c for c in kept.columns if c != "partition"]
    for name in PARTITIONS:
        write_tsv(outputs[name], kept.loc[kept["partition"] == name, columns])
    write_tsv(outputs["assignments"], kept[["id", "component", "partition"]])
    write_tsv(outputs["dropped"], outcome.ledger)
    write_tsv(outputs["pairs"], outcome.pairs)
    plot_identities(outcome.within, outcome.cross["identity"], settings, outputs["figure"])
    write_json(outputs["report"], report)
