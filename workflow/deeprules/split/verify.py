"""The independent leakage check after partitioning.

A fresh search of every cross-partition pair (test and tune against train, test
against tune), not a re-reading of the graph the partitioning used, so a bug in
the partitioning cannot hide its own leak. For the homology method any pair at
or above the threshold stops the stage; comparison methods only report it.

In the exhaustive search the one thing it shares with the graph search is the
measured common subsequences (mmseqs.MeasuredPairs): measured once, before any
partition existed, from below the verification's own identity. Every candidate is
aligned again here, and the partitions are read only from `kept`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from deeprules import mmseqs
from deeprules.io import InputError
from deeprules.split.settings import SplitSettings

log = logging.getLogger("deeprules.split")


class LeakageError(InputError):
    """The independent verification found a cross-partition pair at or above the threshold."""


def verify_no_leakage(
    kept: pd.DataFrame,
    settings: SplitSettings,
    threads: int = 1,
    workdir: Path | None = None,
    measured: mmseqs.MeasuredPairs | None = None,
) -> pd.DataFrame:
    """Independent search of every cross-partition pair (test and tune against train,
    test against tune); returns pairs down to `settings.listing_floor` so the report
    can state the highest cross-partition identity. `measured`: the graph search's
    common subsequences, when they cover this search."""
    exhaustive = len(kept) <= settings.verify_exhaustive_max_sequences
    floor = settings.listing_floor
    log.info(
        "verification: %s search of cross-partition pairs, reporting identity >= %.3g",
        "exhaustive" if exhaustive else "prefilter",
        floor,
    )
    return mmseqs.similar_pairs(
        kept,
        settings.sequence_type,
        floor,
        settings.denominator,
        settings.min_coverage,
        workdir=workdir,
        threads=threads,
        exhaustive=exhaustive,
        between="partition",
        co_optimal=settings.co_optimal,
        measured=measured,
    )


def leaking_pairs(cross: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Cross-partition pairs at or above the threshold (the guarantee says none)."""
    return cross[cross["identity"] >= threshold - 1e-12]


def stop_on_leakage(cross: pd.DataFrame, settings: SplitSettings) -> None:
    """Stop the stage when the homology split leaked and the config says to fail on it."""
    leaks = len(leaking_pairs(cross, settings.threshold))
    if leaks and settings.method == "homology" and settings.fail_on_leakage:
        worst = cross.sort_values("identity", ascending=False).head(5).to_dict("records")
        raise LeakageError(
            f"split: verification found {leaks} cross-partition pairs with identity at or above "
            f"{settings.threshold:g} ({settings.denominator} denominator), e.g. {worst}. The "
            "homology split must leave none; this is a bug in the split, please report it "
            "with the dataset."
        )


def within_partition_identities(pairs: pd.DataFrame, kept: pd.DataFrame) -> pd.Series:
    """Identities of graph pairs whose two sequences were kept in the same partition."""
    where = kept.set_index("id")["partition"]
    a, b = pairs["query"].map(where), pairs["target"].map(where)
    return pairs.loc[a.notna() & (a == b), "identity"]


def leaks_by_partitions(leaks: pd.DataFrame, kept: pd.DataFrame) -> dict[str, int]:
    """Leaking pairs counted per pair of partitions ('test vs train', ...)."""
    where = kept.set_index("id")["partition"]
    a, b = leaks["query"].map(where), leaks["target"].map(where)
    names = [" vs ".join(sorted(pair)) for pair in zip(a, b, strict=True)]
    return pd.Series(names, dtype=str).value_counts().to_dict()
