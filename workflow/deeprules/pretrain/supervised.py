"""Supervised pre-training (pretrain.from): the trunk learns another dataset's labels.

Tip 5: "search for similar datasets ... for pre-training and subsequent fine-tuning".
The source is another dataset of the same run; only its train partition and labels
teach the trunk (minus every sequence the target's split found at or above its
identity threshold to a target tune or test sequence, split/pretrain_excluded.tsv).
The source's tune partition is measured each epoch, as masked residues measure the
target's tune, and chooses nothing: the trunk is the last epoch's. No test.tsv of
either dataset is read.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import tensorflow as tf

from deeprules import encoding
from deeprules.contracts import Classes
from deeprules.io import InputError
from deeprules.pretrain.training import Objective
from deeprules.pretrain.trunk import build_classifier


def supervised_table(
    train: pd.DataFrame, excluded: pd.DataFrame, source: str
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """(id, sequence, label) of the source's train sequences the split did not exclude,
    and their counts for summary.json and the report."""
    kept = train[~train["id"].isin(set(excluded["id"]))]
    counts = {
        "source_dataset": source,
        "source_train_read": len(train),
        "source_train_removed": excluded["reason"].value_counts().to_dict(),
        "source_train_used": len(kept),
        "total": len(kept),
    }
    return kept[["id", "sequence", "label"]].reset_index(drop=True), counts


def label_indices(labels: pd.Series, classes: Classes, where: str) -> np.ndarray:
    """Each label's position in the source's classes (as its split decided them)."""
    unknown = sorted(set(labels) - set(classes.names))
    if unknown:
        raise InputError(
            f"{where}: labels {unknown} are not among the classes {list(classes.names)} of "
            "the source's split_report.json; re-run the source dataset's split"
        )
    return labels.map({name: index for index, name in enumerate(classes.names)}).to_numpy()


def check_supervised(table: pd.DataFrame, classes: Classes, where: str) -> None:
    """Stop with the reason rather than learn nothing: the exclusions may leave too few."""
    present = table["label"].nunique()
    if present < 2:
        raise InputError(
            f"{where}: {len(table)} source train sequences left after removing the homologues "
            f"of the target's tune and test (split/pretrain_excluded.tsv), with {present} of "
            f"the classes {list(classes.names)}; a classifier needs two. Choose another "
            "pretrain.from dataset, or set pretrain.from to null"
        )


def supervised_objective(
    spec: dict[str, Any],
    tokens: np.ndarray,
    train_labels: pd.Series,
    tune_tokens: np.ndarray,
    tune_labels: pd.Series,
) -> Objective:
    """Classification of the source's labels (`spec['classes']`, as its split decided
    them): a seeded order per epoch, tune as it is."""
    settings = spec["pretrain"]
    table = encoding.token_table(spec["sequence_type"])
    classes = Classes(tuple(spec["classes"]), None)
    where = f"dataset '{spec['source']}'"
    labels = label_indices(train_labels, classes, f"{where} train.tsv")
    tune_index = label_indices(tune_labels, classes, f"{where} tune.tsv")

    def epoch_batches(epoch: int) -> tf.data.Dataset:
        order = np.random.default_rng([spec["seed"], epoch + 1, 1]).permutation(len(tokens))
        return _batches(tokens[order], labels[order], table, settings["batch_size"])

    return Objective(
        metric="accuracy",
        build=lambda: build_classifier(
            settings, spec["length"], table.shape[1], len(classes.names), settings["learning_rate"]
        ),
        epoch_batches=epoch_batches,
        tune_batches=_batches(tune_tokens, tune_index, table, settings["batch_size"]),
    )


def _batches(
    tokens: np.ndarray, labels: np.ndarray, table: np.ndarray, batch_size: int
) -> tf.data.Dataset:
    """(one-hot, class index) batches, one-hot built per batch from the tokens."""
    weights = tf.constant(table)
    data = tf.data.Dataset.from_tensor_slices((tokens, labels.astype(np.int32)))

    def one_hot(batch: tf.Tensor, label: tf.Tensor):
        return tf.gather(weights, tf.cast(batch, tf.int32)), label

    return data.batch(batch_size).map(one_hot).prefetch(tf.data.AUTOTUNE)
