"""The comparison methods: random, cluster-then-split and a published (predefined) split.

They exist to show what the homology split protects against and to reproduce
published benchmarks; none removes a sequence, none promises anything, and the
report counts their leakage the same way as for the homology split.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from deeprules.contracts import PARTITIONS
from deeprules.io import InputError

# Names a published benchmark may use for its partitions.
PARTITION_NAMES = {
    "train": "train",
    "training": "train",
    "tune": "tune",
    "valid": "tune",
    "validation": "tune",
    "val": "tune",
    "dev": "tune",
    "test": "test",
    "testing": "test",
}


def partition_at_random(
    labels: np.ndarray, fractions: tuple[float, ...], rng: np.random.Generator
) -> np.ndarray:
    """Stratified random split: each class cut by the fractions (homology ignored)."""
    partition = np.empty(len(labels), dtype=np.int64)
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        bounds = np.round(np.cumsum(fractions)[:-1] * len(members)).astype(int)
        for code, chunk in enumerate(np.split(members, bounds)):
            partition[chunk] = code
    return partition


def place_groups(
    groups: np.ndarray, labels: np.ndarray, fractions: tuple[float, ...], rng: np.random.Generator
) -> np.ndarray:
    """Cluster-then-split: whole groups (e.g. MMseqs2 clusters), largest first, to the
    partition that most needs their labels. No sequence is removed."""
    class_names, label = np.unique(labels, return_inverse=True)
    size_target = np.asarray(fractions) * len(labels)
    label_room = np.outer(fractions, np.bincount(label)).astype(float)
    room = size_target.copy()
    partition = np.empty(len(labels), dtype=np.int64)
    members = pd.Series(np.arange(len(labels))).groupby(groups).apply(np.asarray)
    tie = rng.permutation(len(members))
    order = sorted(range(len(members)), key=lambda k: (-len(members.iloc[k]), tie[k]))
    for k in order:
        nodes = members.iloc[k]
        composition = np.bincount(label[nodes], minlength=len(class_names))
        filled = np.minimum(composition, np.clip(label_room, 0, None)).sum(axis=1)
        target = int(np.lexsort((-(room / size_target), -filled))[0])
        partition[nodes] = target
        room[target] -= len(nodes)
        label_room[target] -= composition
    return partition


def predefined_partitions(table: pd.DataFrame, column: str | None) -> np.ndarray:
    """Partition codes from the dataset's partition column (train, tune or validation, test)."""
    values = table[column].str.strip().str.lower()
    unknown = sorted(set(values) - set(PARTITION_NAMES))
    if unknown:
        raise InputError(
            f"key 'split.partition_column': column '{column}' has values {unknown[:5]} that are "
            f"not partitions; use train, tune (or validation) and test"
        )
    return values.map(PARTITION_NAMES).map(PARTITIONS.index).to_numpy(dtype=np.int64)
