"""Which unlabeled sequences pre-training may use: none homologous to tune or test.

Tip 5's pre-training opens a leak the split alone cannot close: a pre-training
sequence at or above the split's identity threshold to a test sequence lets the
trunk learn that test sequence before the CNN is ever scored on it (630 of the 712
test AMPs of a widely used AMP benchmark appear verbatim in modlAMP's AMPvsUniProt).
The split is the stage that reads every partition before the test set is locked
away, so it decides here, with its own identity search and definition (threshold,
denominator, co-optimal identity), which unlabeled sequences must go. The pretrain
stage reads only this ledger, never tune's or test's identities, and never test.tsv.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from deeprules.io import sequence_hash
from deeprules.split.graph import similarity_graph
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
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The ledger of unlabeled sequences at or above the threshold to a tune or test
    sequence (a homologue of test is named as such even when it also matches tune),
    and the facts for split_report.json. Train sequences are not searched: they may be
    pre-trained on (and the split already keeps them apart from tune and test)."""
    held_out = kept.loc[kept["partition"].isin(["tune", "test"]), ["id", "sequence", "partition"]]
    table = pd.concat(
        [unlabeled[["id", "sequence"]].assign(partition=UNLABELED), held_out], ignore_index=True
    )
    purpose = f"pre-training filter ({len(unlabeled)} unlabeled against tune and test)"
    pairs, exhaustive = similarity_graph(table, settings, threads, workdir, "partition", purpose)
    ledger = _ledger(_nearest_held_out(pairs, table), unlabeled, settings.threshold)
    facts = {
        "unlabeled_sequences": len(unlabeled),
        "removed": {
            reason: int((ledger["reason"] == reason).sum()) for reason in (OF_TUNE, OF_TEST)
        },
        "kept": len(unlabeled) - len(ledger),
        "search": "exhaustive"
        if exhaustive
        else "prefilter (MMseqs2 -s 7.5; may miss distant pairs)",
        "definition": f"identity at or above {settings.threshold:g} to any tune or test "
        "sequence, as the split defines it",
    }
    return ledger, facts


def _nearest_held_out(pairs: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """Per (unlabeled id, partition): the highest identity and the held-out id reaching it."""
    group = table.set_index("id")["partition"]
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
    both = both.assign(partition=both["other"].map(group))
    best = both.sort_values(["identity", "other"], ascending=[False, True])
    return best.drop_duplicates(["unlabeled", "partition"])


def _ledger(nearest: pd.DataFrame, unlabeled: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """One row per removed sequence, in the order of curate/unlabeled.tsv. A test
    neighbour's id is not written (only evaluate looks into test); tune's is."""
    rows = []
    by_id = {key: frame for key, frame in nearest.groupby("unlabeled")}
    for record_id, sequence in zip(unlabeled["id"], unlabeled["sequence"], strict=True):
        if record_id not in by_id:
            continue
        hits = by_id[record_id].set_index("partition")
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
