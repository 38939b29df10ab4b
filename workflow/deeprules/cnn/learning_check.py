"""Before any tuning: can the smallest network of the space fit a small labelled batch? (Tip 3)

Tip 3 advises checking a new pipeline on a tiny problem first: a network that
cannot even memorise 64 training sequences has a broken input (wrong
sequence type, so every letter becomes the same uniform row), broken labels
or a learning rate that cannot move the weights. Tuning such a pipeline only
searches noise and ends in a false "deep learning does not help". Memorising
needs no real signal (random labels can be memorised too), so passing says
nothing about the data, only that the pipeline can learn.
"""

from __future__ import annotations

import logging
from typing import Any

import keras
import keras_tuner as kt
import numpy as np
import pandas as pd

from deeprules import encoding
from deeprules.cnn.data import load_partitions, spec_classes
from deeprules.cnn.model import build_model
from deeprules.cnn.predict import class_columns
from deeprules.io import InputError
from deeprules.metrics import auroc

log = logging.getLogger("deeprules.cnn")


def smallest_values(space: dict[str, Any]) -> dict[str, Any]:
    """The smallest network of the space, trained as fast as the space allows:
    fewest and narrowest filters, no dropout, the weakest L2, the first
    optimiser at the top of the learning-rate range, no schedule."""
    return {
        "conv_blocks": min(space["conv_blocks"]),
        "filters": min(space["filters"]),
        "kernel_size": min(space["kernel_size"]),
        "dilation": min(space["dilation"]),
        "pooling": space["pooling"][0],
        "pool_size": min(space["pool_size"]),
        "dropout": space["dropout"][0],
        "l2": space["l2"][0],
        "dense_units": min(space["dense_units"]),
        "optimizer": space["optimizer"][0],
        "learning_rate": space["learning_rate"][1],
        "batch_size": min(space["batch_size"]),
        "lr_schedule": "constant",
    }


def check_it_can_learn(spec: dict[str, Any]) -> dict[str, Any] | None:
    """Fit the smallest network to a small class-balanced batch of train; InputError if it
    cannot reach `cnn.learning_check.min_train_auroc`. Returns what was measured (or None
    when the check is off)."""
    check = spec["cnn"]["learning_check"]
    if not check["enabled"]:
        return None
    train, _ = load_partitions(spec)
    rows = _balanced_rows(train.labels, check["sequences"], spec["seed"])
    table = encoding.token_table(spec["sequence_type"])
    x, y = table[train.tokens[rows]], train.targets[rows]
    labels = [train.labels[row] for row in rows]
    values = smallest_values(spec["cnn"]["search_space"])
    hp = kt.HyperParameters()
    hp.values = dict(values)
    keras.utils.set_random_seed(spec["seed"])
    model = build_model(
        hp,
        spec["length"],
        table.shape[1],
        len(spec["classes"]),
        spec["cnn"]["search_space"],
        spec["cnn"]["mask_padding"],
    )
    stop = _StopAt(check["min_train_auroc"])
    history = model.fit(
        x,
        y,
        batch_size=len(rows),
        epochs=check["epochs"],
        callbacks=[stop],
        shuffle=False,
        verbose=0,
    )
    scores = class_columns(model.predict(x, batch_size=len(rows), verbose=0))
    reached = auroc(labels, scores, spec_classes(spec))
    result = {
        "sequences": len(rows),
        "epochs": len(history.history["loss"]),
        "train_auroc": reached,
        "model": values,
    }
    if reached < check["min_train_auroc"]:
        raise InputError(_failure(spec, result, check["min_train_auroc"]))
    log.info(
        "learning check: the smallest network fits %d training sequences to AUROC %.3f "
        "in %d epochs",
        len(rows),
        reached,
        result["epochs"],
    )
    return result


class _StopAt(keras.callbacks.Callback):
    """Stop as soon as the running training AUC reaches the target."""

    def __init__(self, target: float) -> None:
        super().__init__()
        self.target = target

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if (logs or {}).get("auc", 0.0) >= self.target:
            self.model.stop_training = True


def _balanced_rows(labels: list[str], size: int, seed: int) -> np.ndarray:
    """Up to `size` rows, as many of every class as possible, in a seeded order."""
    frame = pd.DataFrame({"label": labels})
    rng = np.random.default_rng(seed)
    per_class = max(1, size // frame["label"].nunique())
    picked = [
        rng.permutation(group.index.to_numpy())[:per_class]
        for _, group in frame.groupby("label", sort=True)
    ]
    return np.sort(np.concatenate(picked))


def _failure(spec: dict[str, Any], result: dict[str, Any], target: float) -> str:
    space = spec["cnn"]["search_space"]
    train = pd.read_csv(spec["train"], sep="\t", usecols=["sequence"])["sequence"]
    letters = "".join(train.head(1000)).upper()
    alphabet = set(encoding.ALPHABETS[spec["sequence_type"]])
    foreign = sum(letter not in alphabet for letter in letters) / max(len(letters), 1)
    return (
        f"{spec['train']}: the smallest network of the search space reached training AUROC "
        f"{result['train_auroc']:.3f} (< {target:g}) on {result['sequences']} training "
        f"sequences after {result['epochs']} epochs, so it cannot even memorise a small batch "
        f"and tuning would only search noise. Check the encoding (sequence_type "
        f"'{spec['sequence_type']}': {foreign:.0%} of the letters are outside its alphabet "
        f"{''.join(encoding.ALPHABETS[spec['sequence_type']])}), the labels, and the learning "
        f"rate range cnn.search_space.learning_rate {space['learning_rate']}. "
        f"cnn.learning_check.enabled: false skips this check."
    )
