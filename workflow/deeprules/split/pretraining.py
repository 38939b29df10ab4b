"""Which sequences pre-training may use: none homologous to tune or test.

Tip 5's pre-training opens a leak the split alone cannot close: a pre-training
sequence at or above the split's identity threshold to a test sequence lets the
trunk learn that test sequence before the CNN is ever scored on it (630 of the 712
test AMPs of a widely used AMP benchmark appear verbatim in modlAMP's AMPvsUniProt).
The split is the stage that reads every partition before the test set is locked
away, so it decides here, with its own identity search and definition (threshold,
denominator, co-optimal identity), which pre-training sequences must go: the unlabeled
pool's, or with pretrain.from the other dataset's train partition (the same sequence
may be in both datasets of a run, as the AMP benchmarks show). The pretrain stage reads
only this ledger, never tune's or test's identities, and never test.tsv.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from deeprules.io import sequence_hash
from deeprules.split.graph import similarity_graph
from deeprules.split.report import search_description
from deeprules.split.settings import SplitSettings

LEDGER_COLUMNS = ["id", "sequence_sha256", "reason", "detail"]
OF_TEST, OF_TUNE = "pretrain_homolog_of_test", "pretrain_homolog_of_tune"
UNLABELED = "unlabeled"  # the group of the pre-training sequences in the search


def pretraining_exclusions(
    unlabeled: pd.DataFrame,
    kept: pd.DataFrame,
    settings: SplitSettings,
    threads: int = 1,
    workdir: Path | None = None,
    source: str | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The ledger of pre-training sequences (`unlabeled`: id, sequence) at or above the
    threshold to a tune or test sequence (a homologue of test is named as such even when
    it also matches tune), and the facts for split_report.json. The target's train
    sequences are not searched: they may be pre-trained on (and the split already keeps
    them apart from tune and test). `source`: the pretrain.from dataset whose train
    partition `unlabeled` is, else None (the unlabeled sources)."""
    held_out = kept.loc[kept["partition"].isin(["tune", "test"]), ["id", "sequence", "partition"]]
    table = pd.concat(
        [unlabeled[["id", "sequence"]].assign(partition=UNLABELED), held_out], ignore_index=True
    )
    what = "unlabeled" if source is None else f"train sequences of dataset '{source}'"
    purpose = f"pre-training filter ({len(unlabeled)} {what} against tune and test)"
    table = table.assign(key=[f"row{index}" for index in range(len(table))])
    pairs, exhaustive = _search(table, settings, threads, workdir, purpose)
    ledger = _ledger(_nearest_held_out(pairs, table), table, settings.threshold)
    counted = (
        {"unlabeled_sequences": len(unlabeled)}
        if source is None
        else {
            "source": {"dataset": source, "partition": "train"},
            "source_sequences": len(unlabeled),
        }
    )
    facts = {
        **counted,
        "removed": {
            reason: int((ledger["reason"] == reason).sum()) for reason in (OF_TUNE, OF_TEST)
        },
        "kept": len(unlabeled) - len(ledger),
        "search": search_description(exhaustive, settings.sequence_type, settings.exact_identity),
        "definition": f"identity at or above {settings.threshold:g} to any tune or test "
        "sequence, as the split defines it",
    }
    return ledger, facts


def _search(
    table: pd.DataFrame, settings: SplitSettings, threads: int, workdir: Path | None, purpose: str
) -> tuple[pd.DataFrame, bool]:
    """The split's search between the pre-training group and tune + test, on the row
    keys of `table`: another dataset's ids (pretrain.from) may repeat the target's, and
    the search needs each id once."""
    keyed = table[["key", "sequence", "partition"]].rename(columns={"key": "id"})
    return similarity_graph(keyed, settings, threads, workdir, "partition", purpose)


def _nearest_held_out(pairs: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """Per (pre-training row key, partition): the highest identity and the held-out id
    reaching it (ties by that id)."""
    group = table.set_index("key")["partition"]
    held_out_id = table.set_index("key")["id"]
    both = pd.concat(
        [
            pairs.rename(columns={"query": "unlabeled", "target": "other"}),
            pairs.rename(columns={"target": "unlabeled", "query": "other"}),
        ],
        ignore_index=True,
    )
    both = both[
        (both["unlabeled"].map(group) == UNLABELED) & (both["other"].map(group) != UNLABELED)
    ]
    both = both.assign(partition=both["other"].map(group), other=both["other"].map(held_out_id))
    best = both.sort_values(["identity", "other"], ascending=[False, True])
    return best.drop_duplicates(["unlabeled", "partition"])


def _ledger(nearest: pd.DataFrame, table: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """One row per removed sequence, in the order of the pre-training rows of `table`
    (curate/unlabeled.tsv's, or the source's train.tsv's). A test neighbour's id is not
    written (only evaluate looks into test); tune's is."""
    rows = []
    by_key = {key: frame for key, frame in nearest.groupby("unlabeled")}
    candidates = table[table["partition"] == UNLABELED]
    for key, record_id, sequence in zip(
        candidates["key"], candidates["id"], candidates["sequence"], strict=True
    ):
        if key not in by_key:
            continue
        hits = by_key[key].set_index("partition")
        if "test" in hits.index:
            identity = hits.at["test", "identity"]
            reason = OF_TEST
            detail = (
                f"identity {identity:.3f} to a test sequence "
                "(id withheld: only evaluate reads test)"
            )
        else:
            identity = hits.at["tune", "identity"]
            reason = OF_TUNE
            detail = f"identity {identity:.3f} to tune sequence '{hits.at['tune', 'other']}'"
        rows.append(
            {
                "id": record_id,
                "sequence_sha256": sequence_hash(sequence),
                "reason": reason,
                "detail": f"{detail} (threshold {threshold:g})",
            }
        )
    return pd.DataFrame(rows, columns=LEDGER_COLUMNS)


def empty_ledger() -> pd.DataFrame:
    """The ledger of a dataset without unlabeled sources."""
    return pd.DataFrame(columns=LEDGER_COLUMNS)
