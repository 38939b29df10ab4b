"""The trunk: the CNN's convolution blocks, trained to guess hidden letters or, with
pretrain.from, another dataset's labels.

Built layer for layer as `deeprules.cnn.model` builds its convolutions (names conv1,
conv2..., 'same' padding, ReLU, block b dilated dilation^(b-1), the padding mask
after each), without pooling between blocks. Masked residues: a 1-wide convolution
with a softmax over the alphabet on top guesses the letter at every position.
Supervised: the CNN's own head shape (global max over positions, a softmax over the
source's classes) names the class. The CNN search copies conv1..convN into its
network (`deeprules.cnn.model.transfer`), so what a convolution learned here is where
the classifier starts.
"""

from __future__ import annotations

import keras

from deeprules.cnn.model import PaddingMask, block_dilation

ARCHITECTURE = ("conv_blocks", "filters", "kernel_size", "dilation")


def _convolutions(architecture: dict[str, int], sequence: keras.KerasTensor) -> keras.KerasTensor:
    """conv1..convN with the padding mask after each, as the CNN has them."""
    x = sequence
    for block in range(1, architecture["conv_blocks"] + 1):
        x = keras.layers.Conv1D(
            architecture["filters"],
            architecture["kernel_size"],
            dilation_rate=block_dilation(architecture["dilation"], block),
            padding="same",
            activation="relu",
            name=f"conv{block}",
        )(x)
        x = PaddingMask(1, name=f"mask{block}")([x, sequence])
    return x


def build_trunk(
    architecture: dict[str, int], length: int, alphabet_size: int, learning_rate: float
) -> keras.Model:
    """The compiled masked-letter model. Its convolutions do not depend on `length` (the
    padding mask's input does), so the CNN may use them at its own input length."""
    sequence = keras.Input((length, alphabet_size), name="one_hot")
    letter = keras.layers.Conv1D(
        alphabet_size, 1, activation="softmax", dtype="float32", name="letter"
    )(_convolutions(architecture, sequence))
    model = keras.Model(sequence, letter, name="deeprules_trunk")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="masked_accuracy")],
    )
    return model


def build_classifier(
    architecture: dict[str, int],
    length: int,
    alphabet_size: int,
    classes: int,
    learning_rate: float,
) -> keras.Model:
    """The compiled supervised model: the trunk, the global max over positions (padding
    zeroed, so length is no shortcut), a softmax over the source dataset's classes."""
    sequence = keras.Input((length, alphabet_size), name="one_hot")
    x = keras.layers.GlobalMaxPooling1D(name="max_over_positions")(
        _convolutions(architecture, sequence)
    )
    label = keras.layers.Dense(classes, activation="softmax", dtype="float32", name="label")(x)
    model = keras.Model(sequence, label, name="deeprules_supervised_trunk")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    return model
