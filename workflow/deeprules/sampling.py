"""A seeded, class-stratified sample of rows, where a cost grows faster than N.

The baselines' kNN looks its neighbours up in such a sample of train above a size
(deeprules.baselines.scaling), interpret's permutation importance predicts on
such a sample of tune (deeprules.interpret.baselines), and above
`budget.trial_subsample.above_sequences` every tuning trial of the baselines and of
the CNN fits on such a sample of train (`trial_rows`), and above
`budget.trial_subsample.tune_sequences` is scored on such a sample of tune
(`trial_tune_rows`): one rule, so every stage says the same thing when the report
names the sample, and the baselines and the CNN draw the same rows from the same
partitions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.utils import resample


def stratified_rows(labels: np.ndarray, most: int, seed: int) -> np.ndarray:
    """All row numbers, or a seeded sample of `most` of them stratified by label (sorted,
    so the sample keeps the table's order).

    train_test_split needs every class on both sides, so it cannot leave out fewer rows
    than there are classes (3,000 of 3,001 tune sequences); there scikit-learn's
    `resample` draws the sample (the classes' counts by its approximate mode)."""
    rows = np.arange(len(labels))
    if len(rows) <= most:
        return rows
    if len(rows) - most < len(np.unique(labels)):
        sample = resample(rows, n_samples=most, replace=False, stratify=labels, random_state=seed)
    else:
        sample, _ = train_test_split(rows, train_size=most, stratify=labels, random_state=seed)
    return np.sort(sample)


def trial_rows(labels: np.ndarray, subsample: dict[str, Any], seed: int) -> np.ndarray:
    """The training rows every tuning trial fits on: all of them up to
    `above_sequences`, else the stratified sample of `sequences` rows. `labels` are the
    train partition's label strings, so both stages draw the same rows."""
    if len(labels) <= subsample["above_sequences"]:
        return np.arange(len(labels))
    return stratified_rows(np.asarray(labels), subsample["sequences"], seed)


def trial_tune_rows(labels: np.ndarray, subsample: dict[str, Any], seed: int) -> np.ndarray:
    """The tune rows every tuning trial is scored on: all of them up to
    `tune_sequences`, else a stratified sample of that many. Above it a trial's cost is
    its scoring (a kNN compares every tune sequence with its references; the CNN
    validates on tune every epoch), which would otherwise grow with N although every
    trial fits the same subsample of train. `labels` are the tune partition's label
    strings, so both stages draw the same rows."""
    return stratified_rows(np.asarray(labels), subsample["tune_sequences"], seed)


def trial_subsample_record(
    train_sequences: int, tune_sequences: int, subsample: dict[str, Any], seed: int
) -> dict:
    """What summary.json says about the trials' training and scoring data, and the report
    repeats. The counts follow from the sizes alone (`trial_rows` keeps exactly
    `sequences` rows above the threshold, the config check keeps it at most
    `above_sequences`; `trial_tune_rows` keeps at most `tune_sequences`)."""
    above = train_sequences > subsample["above_sequences"]
    used = subsample["sequences"] if above else train_sequences
    scored = min(tune_sequences, subsample["tune_sequences"])
    subsampled, tune_subsampled = used < train_sequences, scored < tune_sequences
    fitted_on = (
        f"every trial fitted on {used:,} of {train_sequences:,} training sequences "
        f"(class-stratified, seed {seed})"
        if subsampled
        else "every trial fitted on all of train"
    )
    scored_on = (
        f"scored on {scored:,} of {tune_sequences:,} tune sequences (class-stratified, seed {seed})"
        if tune_subsampled
        else "scored on all of tune"
    )
    chosen = "; the chosen configuration refitted on all of train and scored on all of tune"
    return {
        "above_sequences": subsample["above_sequences"],
        "train_sequences": train_sequences,
        "trial_sequences": used,
        "subsampled": subsampled,
        "tune_sequences": tune_sequences,
        "trial_tune_sequences": scored,
        "tune_subsampled": tune_subsampled,
        "seed": seed,
        "how": f"{fitted_on}, {scored_on}{chosen if subsampled or tune_subsampled else ''}",
    }
