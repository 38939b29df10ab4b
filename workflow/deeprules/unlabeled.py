"""Sequences of the unlabeled sources: kept apart from the labelled set, for pre-training.

A dataset file may declare sources with `role: unlabeled` (Tip 5: self-supervised
pre-training "leverages large amounts of unlabeled data"). Curate reads them with the
same alphabet checks as the labelled records but writes them to curate/unlabeled.tsv,
never to sequences.tsv, so the labelled set, its split and every model trained on it
are exactly what they would be without them. Which of them may be used for
pre-training is decided later, by the split (homologues of tune and test removed).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, Protocol

import pandas as pd

from deeprules.contracts import sequence_problem
from deeprules.io import InputError

log = logging.getLogger("deeprules.curate")

UNLABELED_COLUMNS = ["id", "sequence", "source"]


class Dropper(Protocol):
    """Where a removed record goes (deeprules.curate.Ledger), without importing curate."""

    def drop(self, record_id: str, sequence: str, reason: str, detail: str) -> None: ...


def keep_unlabeled(
    records: Iterable[Any],
    alphabet: set[str],
    on_invalid: str,
    labelled_ids: set[str],
    ledger: Dropper,
) -> tuple[pd.DataFrame, int]:
    """(table of id, sequence, source; records read). Invalid records stop the run or go
    to `ledger` as `curate.on_invalid` says; exact repeats always collapse to their first
    record, and an id that also names a labelled record is dropped (never the labelled
    record: the labelled set must not depend on the unlabeled sources)."""
    rows, seen_ids, seen_sequences, read = [], set(), {}, 0
    for record in records:
        read += 1
        problem = _problem(record, alphabet, seen_ids, labelled_ids, seen_sequences)
        if problem:
            reason, detail = problem
            if on_invalid == "error" and reason != "exact_duplicate":
                raise InputError(
                    f"{record.where}: {detail} (unlabeled record '{record.id}', {reason}). Fix "
                    "the file, or set curate.on_invalid: drop in config/config.yaml."
                )
            ledger.drop(record.id, record.sequence, reason, f"{record.where}: {detail}")
            continue
        seen_ids.add(record.id)
        seen_sequences[record.sequence] = record.id
        rows.append({"id": record.id, "sequence": record.sequence, "source": record.source})
    log.info("unlabeled sources: %d records read, %d kept", read, len(rows))
    return pd.DataFrame(rows, columns=UNLABELED_COLUMNS), read


def _problem(
    record: Any,
    alphabet: set[str],
    seen_ids: set[str],
    labelled_ids: set[str],
    seen_sequences: dict[str, str],
) -> tuple[str, str] | None:
    """Why an unlabeled record is not kept, as (reason, detail), or None."""
    problem = sequence_problem(record.sequence, alphabet)
    if problem is not None:
        return problem
    if record.id in seen_ids:
        return "duplicate_id", f"id '{record.id}' appears earlier in the unlabeled sources"
    if record.id in labelled_ids:
        return "duplicate_id", f"id '{record.id}' also names a labelled record, which is kept"
    if record.sequence in seen_sequences:
        kept = seen_sequences[record.sequence]
        return "exact_duplicate", f"same sequence as unlabeled '{kept}', which is kept"
    return None


def unlabeled_summary(read: int, table: pd.DataFrame, dropped: pd.DataFrame) -> dict[str, Any]:
    """The `unlabeled` block of curate/summary.json."""
    return {
        "records_read": read,
        "records_kept": len(table),
        "records_dropped": len(dropped),
        "dropped_per_reason": dropped["reason"].value_counts().to_dict(),
        "sources": sorted(set(table["source"])),
    }
