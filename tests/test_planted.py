"""The planted generator's degenerate site is the task docs/benchmarks.md says it is: no
exact string marks the class, yet the best possible detector separates the classes."""

from __future__ import annotations

import hashlib

import numpy as np
from planted import DEGENERATE_SITE, consensus_matches, few_label_task, planted_table
from sklearn.metrics import roc_auc_score


def test_degenerate_copies_are_not_the_consensus_but_still_separate_the_classes():
    motif = DEGENERATE_SITE["motif"]
    labelled, pool = few_label_task(400, 10, seed=4, **DEGENERATE_SITE)
    bound = labelled[labelled["label"] == "bound"]
    copies = [
        s[start : start + len(motif)]
        for s, start in zip(bound["sequence"], bound["motif_start"], strict=True)
    ]
    kept = np.mean([a == b for copy in copies for a, b in zip(copy, motif, strict=True)])
    assert abs(kept - DEGENERATE_SITE["conservation"]) < 0.03
    assert sum(copy == motif for copy in copies) <= 2  # an exact copy is rare (0.75^20)
    low, high = DEGENERATE_SITE["length"]
    assert labelled["sequence"].str.len().between(low, high).all()
    scores = np.array([consensus_matches(s, motif) for s in labelled["sequence"]])
    ideal = roc_auc_score((labelled["label"] == "bound").to_numpy(), scores)
    assert 0.9 < ideal < 0.995  # separable, not trivially
    assert len(pool) == 10 and set(pool.columns) == {"id", "sequence", "source"}


def test_exact_motif_tables_are_the_ones_made_before_degenerate_sites():
    """Conservation 1 draws no extra random number: every test's planted data (hashes
    taken with the generator before the option existed) stays as it was."""
    table = planted_table(30, 3, {"bound": "TGACTCAGCA", "background": None}, (40, 80))
    labelled, pool = few_label_task(20, 20, seed=5)
    assert sha256("".join(table["sequence"])) == (
        "dbf4798db821f2fb81d6c40ce057bbc70df77ceadf9fa96ab9573f0657d13ff4"
    )
    assert sha256("".join(labelled["sequence"]) + "".join(pool["sequence"])) == (
        "69ad8c945ab4bba9c6e8f5bc77417706e699fdd18530bc336b773ada4693b416"
    )


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
