"""A seeded, class-stratified sample of rows, where a cost grows faster than N.

The baselines' kNN looks its neighbours up in such a sample of train above a size
(deeprules.baselines.scaling), interpret's permutation importance predicts on
such a sample of tune (deeprules.interpret.baselines), and above
`budget.trial_subsample.above_sequences` every tuning trial of the baselines and of
the CNN fits on such a sample of train (`trial_rows`): one rule, so every stage
says the same thing when the report names the sample, and the baselines and the
CNN draw the same rows from the same train partition.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split


def stratified_rows(labels: np.ndarray, most: int, seed: int) -> np.ndarray:
    """All row numbers, or a seeded sample of `most` of them stratified by label (sorted,
    so the sample keeps the table's order)."""
    rows = np.arange(len(labels))
    if len(rows) <= most:
        return rows
    sample, _ = train_test_split(rows, train_size=most, stratify=labels, random_state=seed)
    return np.sort(sample)


def trial_rows(labels: np.ndarray, subsample: dict[str, Any], seed: int) -> np.ndarray:
    """The training rows every tuning trial fits on: all of them up to
    `above_sequences`, else the stratified sample of `sequences` rows. `labels` are the
    train partition's label strings, so both stages draw the same rows."""
    if len(labels) <= subsample["above_sequences"]:
        return np.arange(len(labels))
    return stratified_rows(np.asarray(labels), subsample["sequences"], seed)


def trial_subsample_record(train_sequences: int, subsample: dict[str, Any], seed: int) -> dict:
    """What summary.json says about the trials' training data, and the report repeats.
    The count follows from the sizes alone (`trial_rows` keeps exactly `sequences` rows
    above the threshold; the config check keeps it at most `above_sequences`)."""
    above = train_sequences > subsample["above_sequences"]
    used = subsample["sequences"] if above else train_sequences
    return {
        "above_sequences": subsample["above_sequences"],
        "train_sequences": train_sequences,
        "trial_sequences": used,
        "subsampled": used < train_sequences,
        "seed": seed,
        "how": (
            f"every trial fitted on {used:,} of {train_sequences:,} training sequences "
            f"(class-stratified, seed {seed}), scored on all of tune; the chosen "
            "configuration refitted on all of train"
            if used < train_sequences
            else "every trial fitted on all of train"
        ),
    }
