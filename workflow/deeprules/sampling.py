"""A seeded, class-stratified sample of rows, where a cost grows faster than N.

The baselines' kNN looks its neighbours up in such a sample of train above a size
(deeprules.baselines.scaling), and interpret's permutation importance predicts on
such a sample of tune (deeprules.interpret.baselines): one rule, so both say the
same thing when the report names the sample.
"""

from __future__ import annotations

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
