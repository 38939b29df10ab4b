"""What decides the split, read from the job's settings (deeprules.config.split_settings).

The schema fills every default and the config builder has already picked the
threshold of the dataset's sequence type (or the dataset's own); what is checked
here is what a schema cannot say (fractions summing to 1, `predefined` needing a
partition column) or what a caller outside Snakemake may have skipped, each
message naming the key to change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from deeprules import mmseqs
from deeprules.contracts import PARTITIONS
from deeprules.io import InputError

METHODS = ("homology", "random", "cluster", "predefined")


@dataclass(frozen=True)
class SplitSettings:
    """Everything that decides the split, after merging run config and dataset overrides."""

    method: str
    fractions: tuple[float, float, float]  # train, tune, test
    label_tolerance: float
    length_bins: int  # quantile bins of length balanced per label (< 2: not balanced)
    balance_columns: tuple[str, ...]  # metadata columns balanced per label
    covariate_tolerance: float
    shift_max_auroc: float
    shift_gated: tuple[str, ...]
    shift_min_sequences: int
    fail_on_shift: bool
    threshold: float
    denominator: str
    min_coverage: float
    co_optimal: bool  # identity = the highest of any optimal-scoring alignment
    sequence_type: str
    exhaustive_max_sequences: int
    verify_exhaustive_max_sequences: int
    verify_report_from: float
    verify_nucleotide_floor: float  # nucleotides: listed from at least this identity
    fail_on_leakage: bool
    partition_column: str | None
    positive_class: str | None
    seed: int

    @property
    def homology(self) -> tuple[str, float, str, float]:
        """What makes two sequences homologous here, as deeprules.mmseqs takes it:
        sequence type, threshold, denominator, minimum coverage."""
        return self.sequence_type, self.threshold, self.denominator, self.min_coverage

    def tolerances(self, blocks: int) -> np.ndarray:
        """Largest allowed share deviation per block of groups: label, then each covariate."""
        return np.array([self.label_tolerance] + [self.covariate_tolerance] * (blocks - 1))

    @property
    def listing_floor(self) -> float:
        """Identity from which the verification lists cross-partition pairs: report_from x
        threshold, for nucleotides at least nucleotide_report_from (never above the
        threshold). Two random DNA sequences share a common subsequence of about 0.65 of
        their length, so below about 0.7 the exact common-subsequence skip prunes nothing
        and every cross-partition pair would be aligned (2.1 M for 3,000 of 200 bp)."""
        floor = self.threshold * self.verify_report_from
        if self.sequence_type != "protein":
            floor = max(floor, min(self.verify_nucleotide_floor, self.threshold))
        return floor

    @property
    def exact_identity(self) -> bool:
        """Whether identities are the highest of any optimal alignment (co_optimal, and a
        denominator that does not depend on the alignment's extent)."""
        return self.co_optimal and self.denominator != "alignment" and self.min_coverage == 0

    @property
    def identity_definition(self) -> str:
        """The identity the guarantee is about, in words, for the report."""
        cover = (
            f", alignment covering at least {self.min_coverage:g} of both sequences"
            if self.min_coverage > 0
            else ""
        )
        if self.sequence_type == "protein":
            scoring = (
                "BLOSUM62, gap open 11 / extend 1 (a gap of length L costs 11 + L - 1), "
                "composition-bias correction off"
            )
        elif self.exact_identity:
            scoring = "match +2 / mismatch -3, gap open 5 / extend 2 (blastn's), both strands"
        else:
            scoring = "match +2 / mismatch -3 as MMseqs2 scales it, both strands"
        which = (
            "the highest identity of ANY optimal-scoring local alignment (exact: a "
            "Smith-Waterman maximising score, then identical residues), so ties between "
            "equally good alignments cannot hide a pair"
            if self.exact_identity
            else "the local alignment MMseqs2 reports"
        )
        return (
            f"identical aligned residues / {self.denominator} "
            f"{'length' if self.denominator == 'alignment' else 'sequence length'}, from "
            f"{which} ({scoring}{cover}); a pair counts when its identity is at or above "
            f"{self.threshold:g}"
        )


def build_settings(settings: dict[str, Any]) -> SplitSettings:
    """SplitSettings from `job.settings` as deeprules.config.split_settings builds it:
    {"dataset": {name, sequence_type, positive_class?}, "split": {...}, "seed"}."""
    dataset, split = settings["dataset"], settings["split"]
    method = split["method"]
    key_of = split.get("key_of") or {}  # set by deeprules.config; absent for direct callers
    if method not in METHODS:
        where = key_of.get("method", "config key 'split.method'")
        raise InputError(f"{where}: must be one of {METHODS}, got '{method}'")
    partition_column = split.get("partition_column")  # set only by a dataset
    if method == "predefined" and not partition_column:
        raise InputError(
            f"dataset '{dataset['name']}': split.method is 'predefined' but the dataset has no "
            "'split.partition_column' naming the column with train/tune/test"
        )
    verify = split["verify"]
    return SplitSettings(
        method=method,
        fractions=_fractions(
            split["fractions"], key_of.get("fractions", "config key 'split.fractions'")
        ),
        label_tolerance=_label_tolerance(split["label_tolerance"]),
        length_bins=int(split["balance"]["length_bins"]),
        balance_columns=tuple(split.get("balance_columns") or ()),  # set only by a dataset
        covariate_tolerance=_covariate_tolerance(split["balance"]["tolerance"]),
        shift_max_auroc=float(split["shift"]["max_auroc"]),
        shift_gated=tuple(split["shift"]["gated"]),
        shift_min_sequences=int(split["shift"]["min_sequences"]),
        fail_on_shift=bool(split["shift"]["fail_on_shift"]),
        threshold=_threshold(split["threshold"], split["threshold_key"]),
        denominator=_denominator(split["denominator"]),
        min_coverage=float(split["min_coverage"]),
        co_optimal=bool(split["co_optimal"]),
        sequence_type=dataset["sequence_type"],
        exhaustive_max_sequences=int(split["exhaustive_max_sequences"]),
        verify_exhaustive_max_sequences=int(verify["exhaustive_max_sequences"]),
        verify_report_from=float(verify["report_from"]),
        verify_nucleotide_floor=float(verify["nucleotide_report_from"]),
        fail_on_leakage=bool(verify["fail_on_leakage"]),
        partition_column=partition_column,
        positive_class=dataset.get("positive_class"),  # optional: else train's minority
        seed=int(settings["seed"]),
    )


def _threshold(threshold: Any, key: str) -> float:
    """`key` is where the threshold came from: the run config's per-type value or the
    dataset's override, so the message points at the file to edit."""
    if not isinstance(threshold, int | float) or not 0 < threshold <= 1:
        raise InputError(f"{key}: identity threshold must be in (0, 1], got {threshold}")
    return float(threshold)


def _fractions(fractions_map: dict[str, Any], key: str) -> tuple[float, float, float]:
    fractions = tuple(float(fractions_map[name]) for name in PARTITIONS)
    if any(f <= 0 for f in fractions) or not math.isclose(sum(fractions), 1.0, abs_tol=1e-6):
        raise InputError(
            f"{key}: train, tune and test must each be above 0 and sum "
            f"to 1, got {dict(zip(PARTITIONS, fractions, strict=True))} (sum {sum(fractions):g})"
        )
    return fractions  # type: ignore[return-value]


def _denominator(denominator: str) -> str:
    if denominator not in mmseqs.DENOMINATORS:
        raise InputError(
            f"key 'split.denominator': must be one of {mmseqs.DENOMINATORS}, got '{denominator}'"
        )
    return denominator


def _covariate_tolerance(value: Any) -> float:
    tolerance = float(value)
    if not 0 < tolerance < 1:
        raise InputError(
            f"config key 'split.balance.tolerance': must be in (0, 1), got {tolerance}"
        )
    return tolerance


def _label_tolerance(value: Any) -> float:
    tolerance = float(value)
    if not 0 <= tolerance < 1:
        raise InputError(f"config key 'split.label_tolerance': must be in [0, 1), got {tolerance}")
    return tolerance
