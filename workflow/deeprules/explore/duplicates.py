"""Check 4: identical and near-identical sequences carrying different labels."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from deeprules.explore.inputs import model_subsample
from deeprules.explore.verdicts import make_check, verdict
from deeprules.mmseqs import similar_pairs

log = logging.getLogger("deeprules.explore")


def exact_duplicate_check(
    table: pd.DataFrame, dropped: pd.DataFrame, settings: dict[str, Any]
) -> dict[str, Any]:
    """Check 4a: identical sequences with different labels (curation's ledger plus any left)."""
    reasons = dropped["reason"].value_counts() if "reason" in dropped else pd.Series(dtype=int)
    conflicts_dropped = int(reasons.get("label_conflict", 0))
    labels_per_sequence = table.groupby("sequence")["label"].transform("nunique")
    across_left = int((labels_per_sequence > 1).sum())
    within_left = int(table.duplicated(["sequence", "label"]).sum())
    fraction = (conflicts_dropped + across_left) / (len(table) + conflicts_dropped)
    thresholds = {
        "warn": settings["duplicate_fraction_warn"],
        "fail": settings["duplicate_fraction_fail"],
    }
    result = verdict(fraction, **thresholds)
    explanation = (
        f"{fraction:.1%} of the records are identical sequences carrying different labels "
        f"({conflicts_dropped} removed by curation, {across_left} still in the table): the "
        "labels are noisy or depend on something other than the sequence."
        if result != "pass"
        else f"Few identical sequences carry different labels ({fraction:.1%} of the records)."
    )
    return make_check(
        "exact_duplicates",
        "duplicates",
        "fraction of records that are identical sequences with different labels",
        fraction,
        thresholds,
        result,
        explanation,
        label_conflicts_dropped_by_curation=conflicts_dropped,
        exact_duplicates_dropped_by_curation=int(reasons.get("exact_duplicate", 0)),
        across_labels_in_table=across_left,
        within_label_in_table=within_left,
    )


def near_duplicate_check(
    table: pd.DataFrame,
    sequence_type: str,
    settings: dict[str, Any],
    workdir: Path,
    threads: int,
    seed: int,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Check 4b: near-identical sequences with different labels (MMseqs2, a search that
    cannot miss a pair).

    Above `near_duplicate_max_sequences` the search runs on a class-stratified
    random subsample and the fraction is extrapolated: a pair survives
    subsampling only if both of its sequences do (probability f squared), so the
    fraction of sampled sequences in a pair, divided by f, estimates the fraction
    in the whole set.
    """
    identity = settings["near_duplicate_identity"]
    rows = model_subsample(table["label"], settings["near_duplicate_max_sequences"], seed)
    searched = table.iloc[rows]
    sampling = len(searched) / len(table)
    log.info(
        "near-duplicates across labels at identity >= %.2f among %d of %d sequences",
        identity,
        len(searched),
        len(table),
    )
    pairs = _pairs_across_labels(table, searched, sequence_type, identity, workdir, threads)
    involved = pd.unique(pd.concat([pairs["query"], pairs["target"]]))
    fraction = min(1.0, len(involved) / len(searched) / sampling)
    thresholds = {
        "warn": settings["duplicate_fraction_warn"],
        "fail": settings["duplicate_fraction_fail"],
    }
    result = verdict(fraction, **thresholds)
    explanation = _near_duplicate_explanation(fraction, identity, sampling < 1, result)
    search = "exhaustive (cannot miss a pair)"
    if sampling < 1:
        search += f" among a random {len(searched)} of {len(table)} sequences, extrapolated"
    check = make_check(
        "near_duplicates_across_labels",
        "duplicates",
        "fraction of sequences with a near-duplicate in another class",
        fraction,
        thresholds,
        result,
        explanation,
        identity=identity,
        identity_denominator="longer",
        pairs=len(pairs),
        sequences_searched=len(searched),
        search=search,
    )
    return check, pairs


def _pairs_across_labels(
    table: pd.DataFrame,
    searched: pd.DataFrame,
    sequence_type: str,
    identity: float,
    workdir: Path,
    threads: int,
) -> pd.DataFrame:
    """Pairs of searched sequences at or above `identity` whose labels differ, each with
    both labels: the exhaustive search, so a near-duplicate cannot be missed, and only
    across labels, since same-label near-duplicates are not label noise."""
    pairs = similar_pairs(
        searched[["id", "sequence", "label"]],
        sequence_type,
        identity,
        denominator="longer",
        workdir=workdir,
        threads=threads,
        exhaustive=True,
        between="label",
    )
    label_of = table.set_index("id")["label"]
    return pairs.assign(
        query_label=pairs["query"].map(label_of).to_numpy(),
        target_label=pairs["target"].map(label_of).to_numpy(),
    )


def _near_duplicate_explanation(
    fraction: float, identity: float, extrapolated: bool, result: str
) -> str:
    estimated = "an estimated " if extrapolated else ""
    if result != "pass":
        return (
            f"{estimated.capitalize()}{fraction:.1%} of the sequences have a near-identical "
            f"sequence (>= {identity:.0%} identity) in another class: either the labels are "
            "noisy or tiny differences decide the label; check these pairs before trusting any "
            "model."
        )
    return (
        f"Few sequences have a near-identical sequence in another class ({estimated}"
        f"{fraction:.1%} at >= {identity:.0%} identity)."
    )
