"""How long one model trains: early stopping that waits for slow starters, and the LR schedule.

Tip 3: a network that learns an interaction of two motifs often sits at chance
for several epochs before its tune AUC rises, because neither motif alone
says anything. Stopping it after `patience` flat epochs would discard exactly
the models that can learn. So no model is stopped before `cnn.min_epochs`
epochs, whatever its curve; after that, the usual patience on tune AUC.
"""

from __future__ import annotations

import math
from typing import Any

import keras

OBJECTIVE = "val_auc"
COSINE_FLOOR = 0.1  # the cosine schedule ends at this fraction of the initial learning rate


class PatientEarlyStopping(keras.callbacks.EarlyStopping):
    """EarlyStopping on tune AUC (best epoch's weights restored) that never stops a model
    before `min_epochs` epochs; every epoch still counts towards the best weights."""

    def __init__(self, min_epochs: int, patience: int) -> None:
        super().__init__(
            monitor=OBJECTIVE, mode="max", patience=patience, restore_best_weights=True
        )
        self.min_epochs = min_epochs

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        super().on_epoch_end(epoch, logs)
        if epoch + 1 < self.min_epochs:  # `epoch` counts from 0, across Hyperband continuations
            self.model.stop_training = False
            self.stopped_epoch = 0


def cosine_learning_rate(initial: float, epoch: int, max_epochs: int) -> float:
    """Learning rate at `epoch` (from 0) of a half-cosine from `initial` down to
    COSINE_FLOOR x `initial` at `max_epochs`: large steps first, fine steps last."""
    progress = min(epoch / max(max_epochs, 1), 1.0)
    return initial * (COSINE_FLOOR + (1 - COSINE_FLOOR) * 0.5 * (1 + math.cos(math.pi * progress)))


def training_callbacks(
    values: dict[str, Any], min_epochs: int, patience: int, max_epochs: int
) -> list[keras.callbacks.Callback]:
    """Early stopping, plus the learning-rate schedule the trial's `lr_schedule` names."""
    callbacks: list[keras.callbacks.Callback] = [PatientEarlyStopping(min_epochs, patience)]
    if values["lr_schedule"] == "cosine":
        initial = values["learning_rate"]
        callbacks.append(
            keras.callbacks.LearningRateScheduler(
                lambda epoch, _lr: cosine_learning_rate(initial, epoch, max_epochs)
            )
        )
    return callbacks
