"""Class probabilities of the CNN: for its own partitions, and for other stages.

Every probability table here has one column per class in the split's class
order (`deeprules.contracts.Classes`). A two-class network has one sigmoid
output, the positive class's probability; the negative class's column is
1 minus it, so the same code reads two-class and several-class models.

Other stages (evaluate, interpret) need only `load_model` and `predict_proba`
with the content of cnn/summary.json, which records everything scoring needs
(sequence type, input length, padding mask, classes): never the run config.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from deeprules import encoding
from deeprules.cnn import model as _model  # noqa: F401  (registers PaddingMask for loading)
from deeprules.cnn.data import Partition, input_pipeline
from deeprules.contracts import Classes
from deeprules.io import InputError
from deeprules.metrics import auroc

CHUNK_BATCHES = 64  # batches one-hot encoded at a time by predict_proba


def class_columns(output: np.ndarray) -> np.ndarray:
    """The network's output as one column per class (a single sigmoid: [1 - p, p])."""
    if output.shape[1] == 1:
        return np.column_stack([1 - output[:, 0], output[:, 0]])
    return output


def partition_probabilities(
    model: keras.Model, part: Partition, table: np.ndarray, batch: int = 256
) -> np.ndarray:
    """Class probabilities (n, classes) of an encoded partition, in partition order."""
    return class_columns(model.predict(input_pipeline(part, table, batch), verbose=0))


def partition_auroc(
    model: keras.Model, part: Partition, table: np.ndarray, batch: int, classes: Classes
) -> float:
    """AUROC on a partition (deeprules.metrics: macro one-vs-rest for several classes)."""
    return auroc(part.labels, partition_probabilities(model, part, table, batch), classes)


def load_model(model_path: str | Path) -> keras.Model:
    """cnn/model.keras, without its optimizer state (scoring and attribution only)."""
    return keras.saving.load_model(model_path, compile=False)


def predict_proba(
    model_path: str | Path, sequences: Sequence[str], summary: dict[str, Any], batch: int = 256
) -> np.ndarray:
    """Class probabilities (n, classes) of the saved model, in summary["classes"] order.

    For stages that score sequences the CNN never saw (evaluate's test
    partition). `summary` is the content of cnn/summary.json: sequences are
    encoded with its sequence type and padded or truncated to its input length,
    exactly as training sequences were. They are one-hot encoded CHUNK_BATCHES
    batches at a time, so a large set is never held as float32 one-hot.
    """
    model = load_model(model_path)
    sequences = list(sequences)
    chunk = batch * CHUNK_BATCHES  # whole batches, so every batch is the one it would be unchunked
    scores = [
        model.predict(
            encoding.one_hot(
                sequences[start : start + chunk],
                summary["encoding"]["sequence_type"],
                summary["encoding"]["length"],
            ),
            batch_size=batch,
            verbose=0,
        )
        for start in range(0, len(sequences), chunk)
    ]
    if not scores:
        scores = [np.zeros((0, model.output_shape[-1]), dtype=np.float32)]
    probabilities = class_columns(np.concatenate(scores))
    if probabilities.shape[1] != len(summary["classes"]):
        raise InputError(
            f"{model_path}: the model scores {probabilities.shape[1]} classes but its "
            f"summary.json lists {summary['classes']}; re-run the cnn stage"
        )
    return probabilities
