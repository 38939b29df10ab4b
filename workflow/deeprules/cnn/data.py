"""Partitions to encoded arrays, and the tf.data pipeline that feeds them to the network.

Only train and tune are ever read here (never test). Sequences become small
integer tokens (`deeprules.encoding`); the one-hot rows are made per batch
inside the pipeline, so a large partition costs one byte per position in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import tensorflow as tf

from deeprules import encoding
from deeprules.contracts import Classes, read_partition
from deeprules.io import InputError


@dataclass
class Partition:
    """One partition, encoded: what the network trains on or is scored on."""

    ids: list[str]
    labels: list[str]
    tokens: np.ndarray  # (n, length) uint8, see deeprules.encoding
    targets: np.ndarray  # (n, 1) for two classes, (n, classes) one-hot otherwise
    truncated: int  # sequences longer than the network input


def spec_classes(spec: dict[str, Any]) -> Classes:
    """The split's classes as the job spec carries them (names in output order)."""
    return Classes(tuple(spec["classes"]), spec["positive_class"])


def encode_partition(
    table: pd.DataFrame, classes: list[str], sequence_type: str, length: int, where: str
) -> Partition:
    """Tokens and training targets; with two classes the target is 1 for the positive
    class, which the split put last, so the single sigmoid output is its probability."""
    unknown = sorted(set(table["label"]) - set(classes))
    if unknown:
        raise InputError(
            f"{where}: labels {unknown} are not among the split's classes {classes}; "
            "re-run the split stage"
        )
    index = np.array([classes.index(label) for label in table["label"]])
    if len(classes) == 2:
        targets = index[:, None].astype(np.float32)
    else:
        targets = np.eye(len(classes), dtype=np.float32)[index]
    sequences = table["sequence"].tolist()
    return Partition(
        ids=table["id"].tolist(),
        labels=table["label"].tolist(),
        tokens=encoding.tokenize(sequences, sequence_type, length),
        targets=targets,
        truncated=sum(len(sequence) > length for sequence in sequences),
    )


def load_partitions(spec: dict[str, Any]) -> tuple[Partition, Partition]:
    """Train and tune of the job spec, encoded at the spec's input length."""
    parts = [
        encode_partition(
            read_partition(spec[name], name),
            spec["classes"],
            spec["sequence_type"],
            spec["length"],
            spec[name],
        )
        for name in ("train", "tune")
    ]
    return parts[0], parts[1]


def input_pipeline(
    part: Partition,
    table: np.ndarray,
    batch_size: int,
    shuffle_seed: int | None = None,
    reverse_complement: bool = False,
) -> tf.data.Dataset:
    """Batches of (one-hot, target) from in-memory tokens, one-hot made per batch, prefetched.

    Shuffling and reverse-complement flips are seeded (stateless per epoch), so
    training is reproducible. A flipped DNA sequence is reversed along positions
    and channels (ACGT -> TGCA is the complement).
    """
    data = tf.data.Dataset.from_tensor_slices((part.tokens, part.targets))
    if shuffle_seed is not None:
        data = data.shuffle(len(part.tokens), seed=shuffle_seed, reshuffle_each_iteration=True)
    weights = tf.constant(table)

    def one_hot(tokens: tf.Tensor, targets: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return tf.gather(weights, tf.cast(tokens, tf.int32)), targets

    if reverse_complement:
        coins = tf.data.Dataset.random(seed=shuffle_seed, rerandomize_each_iteration=True)
        data = tf.data.Dataset.zip(data, coins).batch(batch_size)

        def flip_some(pair: tuple[tf.Tensor, tf.Tensor], coin: tf.Tensor):
            x, y = one_hot(*pair)
            flip = tf.reshape(coin % 2 == 1, (-1, 1, 1))
            return tf.where(flip, tf.reverse(x, axis=[1, 2]), x), y

        data = data.map(flip_some, num_parallel_calls=tf.data.AUTOTUNE)
    else:
        data = data.batch(batch_size).map(one_hot, num_parallel_calls=tf.data.AUTOTUNE)
    return data.prefetch(tf.data.AUTOTUNE)
