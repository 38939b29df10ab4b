"""The saved CNN, as the attribution and filter methods use it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deeprules import encoding
from deeprules.contracts import ALPHABETS
from deeprules.io import read_json

log = logging.getLogger("deeprules.interpret")


@dataclass
class LoadedCNN:
    """The saved network, its class order and how it reads sequences."""

    model: Any
    classes: list[str]
    sequence_type: str

    @property
    def length(self) -> int:
        return int(self.model.input_shape[1])

    @property
    def alphabet(self) -> str:
        return ALPHABETS[self.sequence_type]

    def one_hot(self, sequences: list[str]) -> np.ndarray:
        return encoding.one_hot(sequences, self.sequence_type, self.length)

    def class_probability(self, output: Any, k: int) -> Any:
        """P(class k) from the network's output: one sigmoid unit (P of classes[1]) or softmax."""
        if output.shape[-1] == 1:
            return output[:, 0] if k == 1 else 1 - output[:, 0]
        return output[:, k]

    def predict(self, one_hot: np.ndarray, k: int, batch: int = 2048) -> np.ndarray:
        """P(class k) for a batch of one-hot sequences, in chunks."""
        import keras

        out = [
            keras.ops.convert_to_numpy(
                self.class_probability(self.model(one_hot[i : i + batch], training=False), k)
            )
            for i in range(0, len(one_hot), batch)
        ]
        return np.concatenate(out) if out else np.zeros(0)


def load_cnn(model_path: Path, summary_path: Path, sequence_type: str) -> LoadedCNN:
    """Load cnn/model.keras (importing deeprules.cnn registers its custom layers)."""
    import keras

    try:
        import deeprules.cnn  # noqa: F401  (registers PaddingMask for loading)
    except ImportError:
        log.warning("deeprules.cnn not importable; loading the model without its custom layers")
    model = keras.saving.load_model(model_path, compile=False)
    classes = [str(c) for c in read_json(summary_path)["classes"]]
    return LoadedCNN(model, classes, sequence_type)
