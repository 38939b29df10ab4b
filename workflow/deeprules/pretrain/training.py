"""The trunk's training loop: seeded epochs, a checkpoint after each, resume.

One `fit` call per epoch, each on that epoch's own batches (for masked residues its
own mask and order, for a supervised source its own order; drawn from the seed and
the epoch number, `Objective`), then the model (with its optimizer state) and the
history are saved to pretrain/checkpoint/. A job killed at epoch 7 restarts from the
checkpoint of epoch 6 and, with deterministic ops, ends with the same weights as a
job that was never killed (tests/test_pretrain.py checks it). A checkpoint is reused
only when everything that shapes training (`fingerprint`) is unchanged.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from deeprules import encoding
from deeprules.cnn.model import PaddingMask  # noqa: F401  (registers the layer for loading)
from deeprules.io import read_json, write_json
from deeprules.pretrain.data import TUNE_MASK_EPOCH, batches, mask
from deeprules.pretrain.trunk import build_trunk

log = logging.getLogger("deeprules.pretrain")

STATE = "state.json"
SHAPING = ("pretrain", "seed", "deterministic", "length", "sequence_type", "data_sha256")


def fingerprint(spec: dict[str, Any]) -> dict[str, Any]:
    """What shapes training; threads and paths do not."""
    return json.loads(json.dumps({key: spec[key] for key in SHAPING}))


@dataclass
class Objective:
    """What the trunk learns: the compiled model it starts as, each epoch's batches
    (drawn from the seed and the epoch number only, so a resumed job sees the same
    ones), tune's batches (measured each epoch, never used to choose an epoch) and the
    name of the metric both report."""

    metric: str
    build: Callable[[], keras.Model]
    epoch_batches: Callable[[int], tf.data.Dataset]
    tune_batches: tf.data.Dataset


def masked_objective(
    spec: dict[str, Any], train_tokens: np.ndarray, tune_tokens: np.ndarray
) -> Objective:
    """Masked-residue prediction: a fresh seeded mask and order per epoch, tune's one
    fixed mask."""
    settings, kind = spec["pretrain"], spec["sequence_type"]
    table = encoding.token_table(kind)
    tune = mask(tune_tokens, settings["mask_fraction"], kind, spec["seed"], TUNE_MASK_EPOCH)

    def epoch_batches(epoch: int) -> tf.data.Dataset:
        masked = mask(train_tokens, settings["mask_fraction"], kind, spec["seed"], epoch)
        order = np.random.default_rng([spec["seed"], epoch + 1, 1]).permutation(len(train_tokens))
        return batches(masked, table, settings["batch_size"], order)

    return Objective(
        metric="masked_accuracy",
        build=lambda: build_trunk(
            settings, spec["length"], table.shape[1], settings["learning_rate"]
        ),
        epoch_batches=epoch_batches,
        tune_batches=batches(tune, table, settings["batch_size"]),
    )


def train_trunk(
    spec: dict[str, Any], objective: Objective
) -> tuple[keras.Model, list[dict[str, Any]]]:
    """Train (or resume) the trunk for `pretrain.epochs` epochs; returns the model and
    one history row per epoch (loss and the objective's metric on the pre-training set
    and on tune). The last epoch's model is the trunk: tune chooses nothing."""
    settings, folder = spec["pretrain"], Path(spec["checkpoint_dir"])
    model, history = _resume(spec, folder)
    if model is None:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        if spec["deterministic"]:
            keras.utils.set_random_seed(spec["seed"])
        model = objective.build()
    metric = objective.metric
    for epoch in range(len(history), settings["epochs"]):
        started = time.perf_counter()
        result = model.fit(
            objective.epoch_batches(epoch),
            validation_data=objective.tune_batches,
            initial_epoch=epoch,
            epochs=epoch + 1,
            shuffle=False,  # ordered by the objective, seeded
            verbose=0,  # one log line per epoch below, in the rule's log
        ).history
        history.append(
            {
                "epoch": epoch + 1,
                "loss": float(result["loss"][-1]),
                metric: float(result[metric][-1]),
                "tune_loss": float(result["val_loss"][-1]),
                f"tune_{metric}": float(result[f"val_{metric}"][-1]),
                "seconds": time.perf_counter() - started,
            }
        )
        save_checkpoint(model, folder, fingerprint(spec), history)
        log.info(
            "epoch %d/%d: %s %.4f (tune %.4f), %.1f s",
            epoch + 1,
            settings["epochs"],
            metric.replace("_", " "),
            history[-1][metric],
            history[-1][f"tune_{metric}"],
            history[-1]["seconds"],
        )
    return model, history


def _resume(spec: dict[str, Any], folder: Path) -> tuple[keras.Model | None, list[dict[str, Any]]]:
    """The checkpointed model and history when they belong to this very job."""
    state = folder / STATE
    if not state.exists():
        return None, []
    saved = read_json(state)
    if saved["fingerprint"] != fingerprint(spec) or not (folder / saved["model"]).exists():
        log.warning("settings or data changed since the checkpoint; pre-training starts again")
        return None, []
    log.info("resuming pre-training after epoch %d (%s)", len(saved["history"]), folder)
    return keras.saving.load_model(folder / saved["model"]), saved["history"]


def save_checkpoint(
    model: keras.Model, folder: Path, stamp: dict[str, Any], history: list[dict[str, Any]]
) -> None:
    """The epoch's model (optimizer state included) under its own name, then the state
    naming it, then the older models removed: a kill at any point leaves a state whose
    model and history belong to the same epoch."""
    name = f"epoch_{len(history)}.keras"
    model.save(folder / name)
    write_json(folder / STATE, {"fingerprint": stamp, "history": history, "model": name})
    for old in folder.glob("epoch_*.keras"):
        if old.name != name:
            old.unlink()
