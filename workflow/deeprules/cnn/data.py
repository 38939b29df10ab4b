"""Partitions to encoded arrays, and the tf.data pipeline that feeds them to the network.

Only train and tune are ever read here (never test). Sequences become small
integer tokens (`deeprules.encoding`); the one-hot rows are made per batch
inside the pipeline, so a partition costs one byte per position in memory. Above
`cnn.in_memory_max_mb` the tokens live in memory-mapped files instead and each
batch reads its rows (`deeprules.cnn.streaming`); the job spec's `input` says
which path this job takes. Tuning trials may train on a subsample of train and be
scored on a subsample of tune (`trial_partitions`); the refit always reads all of both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import tensorflow as tf

from deeprules import encoding
from deeprules.cnn.streaming import batch_reader, row_numbers, stored_tokens
from deeprules.contracts import Classes, read_partition
from deeprules.io import InputError
from deeprules.sampling import trial_rows, trial_tune_rows


@dataclass
class Partition:
    """One partition, encoded: what the network trains on or is scored on."""

    ids: list[str]
    labels: list[str]
    tokens: np.ndarray  # (n, length) uint8, see deeprules.encoding; a np.memmap when streamed
    targets: np.ndarray  # (n, 1) for two classes, (n, classes) one-hot otherwise
    truncated: int  # sequences longer than the network input

    @property
    def streamed(self) -> bool:
        """Tokens in a memory-mapped file (read per batch) rather than in memory."""
        return isinstance(self.tokens, np.memmap)


def spec_classes(spec: dict[str, Any]) -> Classes:
    """The split's classes as the job spec carries them (names in output order)."""
    return Classes(tuple(spec["classes"]), spec["positive_class"])


def encode_partition(
    table: pd.DataFrame,
    classes: list[str],
    sequence_type: str,
    length: int,
    where: str,
    tokens: np.ndarray | None = None,
) -> Partition:
    """Tokens and training targets; with two classes the target is 1 for the positive
    class, which the split put last, so the single sigmoid output is its probability.
    `tokens` already made (a memory-mapped file) are used as they are."""
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
        tokens=encoding.tokenize(sequences, sequence_type, length) if tokens is None else tokens,
        targets=targets,
        truncated=sum(len(sequence) > length for sequence in sequences),
    )


def load_partitions(spec: dict[str, Any]) -> tuple[Partition, Partition]:
    """Train and tune of the job spec, encoded at the spec's input length (in memory, or
    in memory-mapped token files when the spec's input plan streams)."""
    parts = [_load_partition(spec, name) for name in ("train", "tune")]
    return parts[0], parts[1]


def trial_partitions(
    train: Partition, tune: Partition, spec: dict[str, Any]
) -> tuple[Partition, Partition]:
    """Train and tune as every tuning trial sees them (budget.trial_subsample): all of
    train, or above `above_sequences` the class-stratified subsample the baselines'
    trials fit on too, and all of tune, or above `tune_sequences` the sample of tune they
    are scored on (same rows as the baselines': drawn from the same label strings with
    the same seed). The refit of the chosen model reads, and is early-stopped on, all of
    both. A subsample of a streamed partition is small and held in memory."""
    subsample, seed = spec["trial_subsample"], spec["seed"]
    return (
        _rows(train, trial_rows(np.asarray(train.labels), subsample, seed)),
        _rows(tune, trial_tune_rows(np.asarray(tune.labels), subsample, seed)),
    )


def _rows(part: Partition, rows: np.ndarray) -> Partition:
    if len(rows) == len(part.ids):
        return part
    return Partition(
        ids=[part.ids[row] for row in rows],
        labels=[part.labels[row] for row in rows],
        tokens=np.asarray(part.tokens[rows]),
        targets=part.targets[rows],
        truncated=part.truncated,  # of the whole partition: the refit's input
    )


def _load_partition(spec: dict[str, Any], name: str) -> Partition:
    table = read_partition(spec[name], name)
    tokens = None
    if spec["input"]["streamed"]:
        tokens = stored_tokens(
            spec["input"],
            name,
            table["sequence"].tolist(),
            spec["sequence_type"],
            spec["length"],
            spec["data_sha256"][name],
        )
    return encode_partition(
        table, spec["classes"], spec["sequence_type"], spec["length"], spec[name], tokens
    )


def input_pipeline(
    part: Partition,
    table: np.ndarray,
    batch_size: int,
    shuffle_seed: int | None = None,
    reverse_complement: bool = False,
) -> tf.data.Dataset:
    """Batches of (one-hot, target), one-hot made per batch, prefetched.

    Shuffling and reverse-complement flips are seeded (stateless per epoch), so
    training is reproducible. A flipped DNA sequence is reversed along positions
    and channels (ACGT -> TGCA is the complement). A streamed partition's
    elements are row numbers, shuffled exactly as the rows themselves would be
    (same seed, same buffer), and each batch reads its rows from the file: the
    same batches in the same order as from memory.
    """
    read = batch_reader(part.tokens, part.targets) if part.streamed else None
    if read:
        data = row_numbers(len(part.ids))
    else:
        data = tf.data.Dataset.from_tensor_slices((part.tokens, part.targets))
    if shuffle_seed is not None:
        data = data.shuffle(len(part.tokens), seed=shuffle_seed, reshuffle_each_iteration=True)
    weights = tf.constant(table)

    def one_hot(*batch: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        tokens, targets = read(*batch) if read else batch
        return tf.gather(weights, tf.cast(tokens, tf.int32)), targets

    if reverse_complement:
        coins = tf.data.Dataset.random(seed=shuffle_seed, rerandomize_each_iteration=True)
        data = tf.data.Dataset.zip(data, coins).batch(batch_size)

        def flip_some(batch: Any, coin: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            x, y = one_hot(batch) if read else one_hot(*batch)
            flip = tf.reshape(coin % 2 == 1, (-1, 1, 1))
            return tf.where(flip, tf.reverse(x, axis=[1, 2]), x), y

        data = data.map(flip_some, num_parallel_calls=tf.data.AUTOTUNE)
    else:
        data = data.batch(batch_size).map(one_hot, num_parallel_calls=tf.data.AUTOTUNE)
    return data.prefetch(tf.data.AUTOTUNE)
