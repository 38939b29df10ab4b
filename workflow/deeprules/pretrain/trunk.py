"""The trunk: the CNN's convolution blocks, trained to guess hidden letters.

Built layer for layer as `deeprules.cnn.model` builds its convolutions (names conv1,
conv2..., 'same' padding, ReLU, block b dilated dilation^(b-1), the padding mask
after each), without pooling, since the guess is made at every position. A
1-wide convolution with a softmax over the alphabet on top makes the guess. The CNN
search copies conv1..convN into its network (`deeprules.cnn.model.transfer`), so what a convolution
learned here about which letters go together is where the classifier starts.
"""

from __future__ import annotations

import keras

from deeprules.cnn.model import PaddingMask, block_dilation

ARCHITECTURE = ("conv_blocks", "filters", "kernel_size", "dilation")


def build_trunk(
    architecture: dict[str, int], length: int, alphabet_size: int, learning_rate: float
) -> keras.Model:
    """The compiled masked-letter model. Its convolutions do not depend on `length` (the
    padding mask's input does), so the CNN may use them at its own input length."""
    sequence = keras.Input((length, alphabet_size), name="one_hot")
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
    letter = keras.layers.Conv1D(
        alphabet_size, 1, activation="softmax", dtype="float32", name="letter"
    )(x)
    model = keras.Model(sequence, letter, name="deeprules_trunk")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="masked_accuracy")],
    )
    return model
