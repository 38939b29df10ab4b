"""The pre-training set and its masks: which sequences the trunk learns from, and which
letters it must guess each epoch.

Every mask is drawn from (seed, epoch), never from a running random state, so epoch 7
hides the same letters whether the job ran straight through or resumed at epoch 5.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import tensorflow as tf

from deeprules import encoding
from deeprules.io import InputError

TUNE_MASK_EPOCH = -1  # the tune partition's one fixed mask, apart from every training epoch


@dataclass
class Masked:
    """One epoch's input: tokens with hidden letters replaced, what to predict, where."""

    tokens: np.ndarray  # (n, length) uint8, hidden positions = the "any letter" token
    targets: np.ndarray  # (n, length) int32: the letter's index in the alphabet
    weights: np.ndarray  # (n, length) float32: 1 at hidden standard letters, else 0


def pretraining_table(
    unlabeled: pd.DataFrame, excluded: pd.DataFrame, train: pd.DataFrame
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """(id, sequence, origin) of the sequences pre-training uses, and their counts: the
    unlabeled ones the split did not exclude, then the train partition (labels unused)."""
    removed = set(excluded["id"])
    kept = unlabeled[~unlabeled["id"].isin(removed)]
    table = pd.concat(
        [
            kept[["id", "sequence"]].assign(origin="unlabeled"),
            train[["id", "sequence"]].assign(origin="train"),
        ],
        ignore_index=True,
    )
    counts = {
        "unlabeled_read": len(unlabeled),
        "unlabeled_removed": excluded["reason"].value_counts().to_dict(),
        "unlabeled_used": len(kept),
        "train_used": len(train),
        "total": len(table),
    }
    return table, counts


def check_table(table: pd.DataFrame, where: str) -> None:
    """Stop with a message saying why, rather than train a trunk on nothing."""
    if table.empty:
        raise InputError(
            f"{where}: no sequence left to pre-train on; every unlabeled sequence was a "
            "homologue of tune or test (split/pretrain_excluded.tsv) and train is empty"
        )


def mask(tokens: np.ndarray, fraction: float, sequence_type: str, seed: int, epoch: int) -> Masked:
    """Hide about `fraction` of the sequence positions (never padding). Standard letters
    are tokens 1..len(alphabet) (deeprules.encoding); a hidden ambiguity code is hidden
    but not scored, since it names no single letter."""
    letters = len(encoding.ALPHABETS[sequence_type])
    any_letter = np.uint8(len(encoding.token_table(sequence_type)) - 1)  # the uniform row
    rng = np.random.default_rng([seed, epoch + 1])  # TUNE_MASK_EPOCH -> 0, never negative
    present = tokens != encoding.PAD_TOKEN
    hidden = (rng.random(tokens.shape) < fraction) & present
    scored = hidden & (tokens <= letters)
    return Masked(
        tokens=np.where(hidden, any_letter, tokens).astype(np.uint8),
        targets=np.clip(tokens.astype(np.int32) - 1, 0, letters - 1),
        weights=scored.astype(np.float32),
    )


def batches(
    masked: Masked, table: np.ndarray, batch_size: int, order: np.ndarray | None = None
) -> tf.data.Dataset:
    """(one-hot, target, weight) batches in `order` (seeded by the caller), prefetched."""
    index = np.arange(len(masked.tokens)) if order is None else order
    data = tf.data.Dataset.from_tensor_slices(
        (masked.tokens[index], masked.targets[index], masked.weights[index])
    )
    weights = tf.constant(table)

    def one_hot(tokens: tf.Tensor, targets: tf.Tensor, scored: tf.Tensor):
        return tf.gather(weights, tf.cast(tokens, tf.int32)), targets, scored

    return data.batch(batch_size).map(one_hot).prefetch(tf.data.AUTOTUNE)
