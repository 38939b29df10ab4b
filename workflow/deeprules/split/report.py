"""split_report.json: the guarantee, how it was checked, the classes, and what it cost.

Every later stage reads the classes from here (deeprules.contracts.read_classes),
and the report stage quotes the guarantee, the removals and the label shares.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from deeprules import mmseqs
from deeprules.contracts import PARTITIONS, Classes
from deeprules.split.settings import SplitSettings
from deeprules.split.strata import build_strata
from deeprules.split.verify import leaking_pairs, leaks_by_partitions


@dataclass(frozen=True)
class SplitOutcome:
    """What the split found and decided, for the report, the figure and the tables."""

    table: pd.DataFrame  # every input sequence
    pairs: pd.DataFrame  # the homology graph: pairs at or above the threshold
    component: pd.Series  # homology component per input sequence
    exhaustive: bool  # whether the graph search was exhaustive
    kept: pd.DataFrame  # kept sequences with their component and partition
    ledger: pd.DataFrame  # removed sequences, why
    cross: pd.DataFrame  # verification: cross-partition pairs from report_from x threshold
    within: pd.Series  # identities of graph pairs inside one partition
    classes: Classes
    shift: dict[str, Any]  # split.shift: statistics per pair of partitions and the gate


def build_report(
    outcome: SplitOutcome, settings: SplitSettings, timings: dict[str, float]
) -> dict[str, Any]:
    """split_report.json: the guarantee, how it was checked, and what it cost."""
    binary = mmseqs.find_mmseqs()
    labels = sorted(outcome.table["label"].unique())
    whole = outcome.table["label"].value_counts(normalize=True)
    partitions = _partitions(outcome.kept, labels, whole)
    return {
        "method": settings.method,
        "guarantee": (
            "no pair of sequences in different partitions has identity at or above "
            f"{settings.threshold:g}"
            if settings.method == "homology"
            else "none (comparison method); leakage is counted below"
        ),
        "identity_definition": settings.identity_definition,
        "comparison": "at or above",
        "threshold": settings.threshold,
        "denominator": settings.denominator,
        "min_coverage": settings.min_coverage,
        "sequence_type": settings.sequence_type,
        "seed": settings.seed,
        "target_fractions": dict(zip(PARTITIONS, settings.fractions, strict=True)),
        "label_tolerance": settings.label_tolerance,
        "mmseqs": {"binary": binary, "version": mmseqs.mmseqs_version(binary)},
        "similarity_search": search_description(
            outcome.exhaustive, settings.sequence_type, settings.exact_identity
        ),
        "graph": _graph(outcome),
        "sequences": _sequences(outcome, labels),
        **outcome.classes.to_json(),
        "label_shares_whole": {lab: float(whole[lab]) for lab in labels},
        "partitions": partitions,
        "labels_within_tolerance": all(
            p["max_label_share_deviation"] <= settings.label_tolerance + 1e-9
            for p in partitions.values()
        ),
        "covariate_balance": covariate_balance(outcome.table, outcome.kept, settings),
        "shift": outcome.shift,
        "verification": _verification(outcome, settings),
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
    }


def _partitions(kept: pd.DataFrame, labels: list[str], whole: pd.Series) -> dict[str, Any]:
    """Size, label counts and shares (and their worst deviation from the whole data set),
    and length quartiles of each partition."""
    partitions = {}
    for name in PARTITIONS:
        part = kept[kept["partition"] == name]
        shares = part["label"].value_counts(normalize=True)
        partitions[name] = {
            "sequences": len(part),
            "fraction": len(part) / max(len(kept), 1),
            "label_counts": {lab: int((part["label"] == lab).sum()) for lab in labels},
            "label_shares": {lab: float(shares.get(lab, 0.0)) for lab in labels},
            "max_label_share_deviation": float(
                max(abs(shares.get(lab, 0.0) - whole[lab]) for lab in labels)
            ),
            "length_quartiles": _quartiles(part["sequence"].str.len()),
        }
    return partitions


def covariate_balance(
    table: pd.DataFrame, kept: pd.DataFrame, settings: SplitSettings
) -> dict[str, Any]:
    """Each partition's share of every label x covariate stratum next to the whole data
    set's (shares within a block: among a partition's sequences, each stratum's share of
    them). Reported for every method, so a comparison or published split shows its
    drift too; only `homology` with balancing on is held to the tolerance."""
    strata = build_strata(table, settings.length_bins, settings.balance_columns)
    covariate = strata.block > 0
    whole = strata.member.mean(axis=0)
    where = table["id"].map(kept.set_index("id")["partition"]).to_numpy()
    names = [name for name, c in zip(strata.names, covariate, strict=True) if c]
    partitions = {}
    for name in PARTITIONS:
        rows = where == name
        shares = strata.member[rows].mean(axis=0) if rows.any() else np.zeros(len(whole))
        deviation = np.abs(shares - whole)[covariate]
        partitions[name] = {
            "stratum_shares": dict(zip(names, shares[covariate].round(4).tolist(), strict=True)),
            "max_stratum_share_deviation": float(deviation.max()) if len(deviation) else 0.0,
        }
    return {
        "balanced": settings.method == "homology" and strata.n_blocks > 1,
        "covariates": list(strata.blocks[1:]),
        "length_bins": settings.length_bins,
        "tolerance": settings.covariate_tolerance,
        "stratum_shares_whole": dict(zip(names, whole[covariate].round(4).tolist(), strict=True)),
        "partitions": partitions,
        "within_tolerance": all(
            p["max_stratum_share_deviation"] <= settings.covariate_tolerance + 1e-9
            for p in partitions.values()
        ),
    }


def _graph(outcome: SplitOutcome) -> dict[str, Any]:
    """How connected the data set is: a giant component forces removals."""
    sizes = outcome.component.value_counts()
    return {
        "pairs_at_or_above_threshold": len(outcome.pairs),
        "components": int(outcome.component.nunique()),
        "largest_component": int(sizes.max()),
        "largest_component_fraction": float(sizes.max() / len(outcome.table)),
    }


def _sequences(outcome: SplitOutcome, labels: list[str]) -> dict[str, Any]:
    """Kept and removed sequences, per label and per removal reason."""
    table, kept, ledger = outcome.table, outcome.kept, outcome.ledger
    removed = ledger["id"]
    removed_labels = table.set_index("id").loc[removed, "label"] if len(removed) else pd.Series()
    return {
        "input": len(table),
        "kept": len(kept),
        "removed": len(ledger),
        "kept_per_label": {lab: int((kept["label"] == lab).sum()) for lab in labels},
        "removed_per_label": {lab: int((removed_labels == lab).sum()) for lab in labels},
        "removed_per_reason": ledger["reason"].value_counts().to_dict(),
    }


def _verification(outcome: SplitOutcome, settings: SplitSettings) -> dict[str, Any]:
    """The independent search's verdict and the highest cross-partition identity."""
    cross, kept = outcome.cross, outcome.kept
    leaks = leaking_pairs(cross, settings.threshold)
    exhaustive = len(kept) <= settings.verify_exhaustive_max_sequences
    search = search_description(exhaustive, settings.sequence_type, settings.exact_identity)
    if exhaustive and outcome.exhaustive and settings.exact_identity:
        search += (
            "; the common subsequences were measured once, by the similarity graph's search "
            "before any partition existed, and every cross-partition candidate aligned again"
        )
    return {
        "search": search,
        "compared": "test vs train, tune vs train, test vs tune",
        "pairs_at_or_above_threshold": len(leaks),
        "pairs_at_or_above_threshold_by_partitions": leaks_by_partitions(leaks, kept),
        "max_cross_partition_identity": (float(cross["identity"].max()) if len(cross) else None),
        "max_cross_partition_identity_note": (
            "highest identity among cross-partition pairs; pairs below "
            f"{settings.listing_floor:.3g} are not listed, so null "
            "means every cross-partition pair is below that"
        ),
        "passed": len(leaks) == 0,
    }


def _quartiles(lengths: pd.Series) -> list[float] | None:
    """Sequence length quartiles: a homology split can shift lengths between partitions
    (peripheral, loosely connected sequences are often the longer ones), and a reviewer
    should see that next to the scores."""
    return lengths.quantile([0.25, 0.5, 0.75]).tolist() if len(lengths) else None


def search_description(exhaustive: bool, sequence_type: str, co_optimal: bool = False) -> str:
    """How the search was run, in words: whether a pair can have been missed."""
    strands = "" if sequence_type == "protein" else "; nucleotides on both strands"
    kmers = "" if sequence_type == "protein" else f" -k {mmseqs.NUCLEOTIDE_KMER_LENGTH}"
    skip = (
        "a pair is skipped only when its longest common subsequence is shorter than the "
        "identical residues the threshold needs, which proves no alignment can reach it"
    )
    if exhaustive and co_optimal:
        return (
            f"exhaustive and exact: every pair that can reach the threshold ({skip}) scored "
            "by a Smith-Waterman maximising score, then identical residues (Biopython "
            f"PairwiseAligner on the combined score){strands}"
        )
    if exhaustive:
        return (
            "exhaustive: mmseqs align on a generated prefilter listing every pair that can "
            f"reach the threshold ({skip}), -e inf, --alignment-mode 3{strands}"
        )
    realigned = (
        f"; reported pairs from {mmseqs.CO_OPTIMAL_MARGIN:g} below the threshold re-aligned "
        "exactly for the highest co-optimal identity"
        if co_optimal
        else ""
    )
    return (
        f"prefilter: mmseqs search -s {mmseqs.PREFILTER_SENSITIVITY} --max-seqs "
        f"{mmseqs.PREFILTER_MAX_SEQS}{kmers} -e inf (most sensitive settings, yet it can miss "
        f"pairs at or above the threshold: {_prefilter_missed(sequence_type)}, "
        f"bench/prefilter_sensitivity.py){realigned}{strands}"
    )


def _prefilter_missed(sequence_type: str) -> str:
    """What the prefilter missed of planted pairs just above the default thresholds
    (docs/benchmarks.md, "What the prefilter misses"): a reader weighs the guarantee by it."""
    if sequence_type == "protein":
        return "it missed 3 of 173 planted protein pairs at 0.30-0.40 identity"
    return (
        f"with -k {mmseqs.NUCLEOTIDE_KMER_LENGTH} it missed 1 of 1,138 planted DNA pairs at "
        "0.80-1.00 identity"
    )
