"""The network: a Conv1D stack over one-hot sequences, its search space and its padding mask.

Saved models name the padding mask by its registered name, "deeprules>PaddingMask";
importing this module (any import of `deeprules.cnn` does) registers it, which is
what `keras.models.load_model` needs to read cnn/model.keras back.
"""

from __future__ import annotations

from typing import Any

import keras
import keras_tuner as kt


@keras.saving.register_keras_serializable(package="deeprules")
class PaddingMask(keras.layers.Layer):
    """Set features at padding positions to zero, so that padding carries no signal.

    Without this a convolution at a padded position outputs relu(bias) and the
    global max over positions could notice how much padding there is, i.e. the
    sequence length: a shortcut the user did not ask for. With padding zeroed
    after every convolution (and before pooling), the next convolution sees
    exactly the zeros its own 'same' padding would add at a sequence end, and
    the global max over non-negative ReLU features ignores the zeros. A
    sequence padded to 50 or to 500 positions therefore gets the same score
    (tests/test_cnn.py checks this).

    Inputs: [features (batch, steps, channels), one-hot input (batch, length,
    alphabet)]; `stride` = how many input positions one feature step covers
    (the product of the pool sizes so far). A step counts as sequence when any
    position it covers has a non-zero one-hot row (padding is the only zero row).
    """

    def __init__(self, stride: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stride = stride

    def call(self, inputs: list) -> Any:
        features, one_hot = inputs
        steps = features.shape[1]
        present = keras.ops.cast(keras.ops.max(one_hot, axis=-1) > 0, features.dtype)
        present = keras.ops.reshape(present[:, : steps * self.stride], (-1, steps, self.stride))
        return features * keras.ops.max(present, axis=-1)[..., None]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "stride": self.stride}


NO_TRUNK, FROZEN, FINETUNE = "none", "frozen", "finetune"  # values of `pretrained`


def _choice(hp: kt.HyperParameters, name: str, values: list) -> Any:
    return hp.Choice(name, values) if len(values) > 1 else hp.Fixed(name, values[0])


def _range(hp: kt.HyperParameters, name: str, bounds: list[float], log_scale: bool) -> float:
    low, high = bounds
    if low == high:
        return hp.Fixed(name, low)
    return hp.Float(name, low, high, sampling="log" if log_scale else "linear")


def sample_hyperparameters(
    hp: kt.HyperParameters, space: dict[str, Any], trunk: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Declare every searched setting on `hp` (in a fixed order: the tuners' draws follow
    it) and return this trial's values. `batch_size` is declared here so every tuner
    samples it; the hypermodel's fit uses it. With a pre-trained `trunk` (Tip 5), what to
    do with it is one more choice, declared last so the other draws keep their order."""
    values = {  # evaluated top to bottom: the declaration order
        "conv_blocks": _choice(hp, "conv_blocks", space["conv_blocks"]),
        "filters": _choice(hp, "filters", space["filters"]),
        "kernel_size": _choice(hp, "kernel_size", space["kernel_size"]),
        "dilation": _choice(hp, "dilation", space["dilation"]),
        "pooling": _choice(hp, "pooling", space["pooling"]),
        "pool_size": _choice(hp, "pool_size", space["pool_size"]),
        "dropout": _range(hp, "dropout", space["dropout"], log_scale=False),
        "l2": _range(hp, "l2", space["l2"], log_scale=True),
        "dense_units": _choice(hp, "dense_units", space["dense_units"]),
        "optimizer": _choice(hp, "optimizer", space["optimizer"]),
        "learning_rate": _range(hp, "learning_rate", space["learning_rate"], log_scale=True),
        "batch_size": _choice(hp, "batch_size", space["batch_size"]),
        "lr_schedule": _choice(hp, "lr_schedule", space["lr_schedule"]),
    }
    if trunk is not None:
        values["pretrained"] = _choice(hp, "pretrained", trunk["choices"])
    return values


def uses_trunk(values: dict[str, Any]) -> bool:
    """The trial starts from the pre-trained trunk (frozen or fine-tuned)."""
    return values.get("pretrained", NO_TRUNK) != NO_TRUNK  # absent without a trunk


def effective_values(values: dict[str, Any], trunk: dict[str, Any] | None) -> dict[str, Any]:
    """The hyperparameters the network really has: a pre-trained one has the trunk's
    convolutions (and no pooling, as the trunk was trained), whatever was sampled for
    them. `learning_rate` stays the trial's: it is the new head's rate, and a fine-tuned
    trunk steps at it x `finetune_learning_rate_factor` (`_SlowerTrunk`)."""
    if trunk is None or not uses_trunk(values):
        return values
    return {**values, **trunk["values"]}


def build_model(
    hp: kt.HyperParameters,
    length: int,
    alphabet_size: int,
    classes: int,
    space: dict[str, Any],
    mask_padding: bool = True,
    trunk: dict[str, Any] | None = None,
) -> keras.Model:
    """A compiled Conv1D network whose shape and training settings come from `hp`.

    conv_blocks x [Conv1D(filters, kernel_size, dilation ** (block - 1), ReLU,
    L2) -> padding mask -> pooling (between blocks) -> dropout] -> global max over positions ->
    optional dense layer -> sigmoid (two classes) or softmax. Global max pooling
    makes the score depend on whether a motif occurs, not where.
    """
    sampled = sample_hyperparameters(hp, space, trunk)
    values = effective_values(sampled, trunk)
    model = _network(values, length, alphabet_size, classes, mask_padding)
    slower: dict[str, Any] = {}
    if trunk is not None and uses_trunk(sampled):
        finetune = sampled["pretrained"] == FINETUNE
        transfer(model, trunk["path"], values["conv_blocks"], finetune)
        if finetune:
            slower = {
                "trunk_layers": [f"conv{block}" for block in range(1, values["conv_blocks"] + 1)],
                "trunk_factor": trunk["finetune_learning_rate_factor"],
            }
    two_classes = classes == 2
    model.compile(
        optimizer=_optimizer(values["optimizer"], values["learning_rate"], **slower),
        loss="binary_crossentropy" if two_classes else "categorical_crossentropy",
        metrics=[
            keras.metrics.AUC(
                name="auc",
                num_thresholds=1000,
                multi_label=not two_classes,  # macro one-vs-rest AUC for several classes
                num_labels=None if two_classes else classes,
            )
        ],
    )
    return model


def _network(
    values: dict[str, Any], length: int, alphabet_size: int, classes: int, mask_padding: bool
) -> keras.Model:
    """The layers (created in a fixed order, so a seed gives the same initial weights)."""
    blocks, pool_size = values["conv_blocks"], values["pool_size"]
    regularizer = keras.regularizers.L2(values["l2"])
    sequence = keras.Input((length, alphabet_size), name="one_hot")
    x, stride = sequence, 1
    for block in range(1, blocks + 1):
        x = keras.layers.Conv1D(
            values["filters"],
            values["kernel_size"],
            dilation_rate=block_dilation(values["dilation"], block),
            padding="same",
            activation="relu",
            kernel_regularizer=regularizer,
            name=f"conv{block}",
        )(x)
        if mask_padding:
            x = PaddingMask(stride, name=f"mask{block}")([x, sequence])
        if block < blocks and pool_size > 1 and x.shape[1] >= pool_size:
            max_pool = values["pooling"] == "max"
            pool = keras.layers.MaxPooling1D if max_pool else keras.layers.AveragePooling1D
            x = pool(pool_size, name=f"pool{block}")(x)
            stride *= pool_size
        x = keras.layers.Dropout(values["dropout"])(x)
    x = keras.layers.GlobalMaxPooling1D(name="max_over_positions")(x)
    if values["dense_units"]:
        x = keras.layers.Dense(
            values["dense_units"], activation="relu", kernel_regularizer=regularizer
        )(x)
        x = keras.layers.Dropout(values["dropout"])(x)
    two_classes = classes == 2
    output = keras.layers.Dense(
        1 if two_classes else classes,
        activation="sigmoid" if two_classes else "softmax",
        dtype="float32",  # keep probabilities in float32 under mixed precision
        name="probability",
    )(x)
    return keras.Model(sequence, output, name="deeprules_cnn")


def transfer(model: keras.Model, trunk_path: str, blocks: int, trainable: bool) -> None:
    """Copy the pre-trained trunk's conv1..conv<blocks> weights (deeprules.pretrain builds
    them layer for layer as `_network` does) into `model`, frozen unless `trainable`.
    Before compiling: Keras reads `trainable` when it compiles."""
    trunk = keras.saving.load_model(trunk_path, compile=False)
    for block in range(1, blocks + 1):
        layer = model.get_layer(f"conv{block}")
        layer.set_weights(trunk.get_layer(f"conv{block}").get_weights())
        layer.trainable = trainable


class _SlowerTrunk:
    """An optimizer under which the fine-tuned trunk (the convolutions copied from
    pre-training) steps at learning_rate x `trunk_factor` and the rest of the network,
    a new randomly initialised head, at the full rate. Lowering the whole network's rate
    instead leaves the head barely trained in a short search: a head that starts with
    the wrong sign stays inverted (tune AUROC near 0), and fine-tuning loses to frozen
    for a reason that has nothing to do with the trunk. Adam's and SGD's steps are both
    proportional to the rate they are given per variable (`update_step`); AdamW's weight
    decay uses the full rate for every variable."""

    def __init__(
        self, *args: Any, trunk_layers: list[str], trunk_factor: float, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.trunk_layers = list(trunk_layers)
        self.trunk_factor = trunk_factor
        self._trunk_keys: set[Any] = set()

    def build(self, variables: list) -> None:
        super().build(variables)
        self._trunk_keys = {
            self._var_key(v) for v in variables if v.path.split("/")[0] in self.trunk_layers
        }

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        if self._var_key(variable) in self._trunk_keys:
            learning_rate = learning_rate * self.trunk_factor
        super().update_step(gradient, variable, learning_rate)

    def get_config(self) -> dict[str, Any]:
        own = {"trunk_layers": self.trunk_layers, "trunk_factor": self.trunk_factor}
        return {**super().get_config(), **own}


@keras.saving.register_keras_serializable(package="deeprules")
class TrunkAdam(_SlowerTrunk, keras.optimizers.Adam):
    """Adam with a slower fine-tuned trunk."""


@keras.saving.register_keras_serializable(package="deeprules")
class TrunkAdamW(_SlowerTrunk, keras.optimizers.AdamW):
    """AdamW with a slower fine-tuned trunk."""


@keras.saving.register_keras_serializable(package="deeprules")
class TrunkSGD(_SlowerTrunk, keras.optimizers.SGD):
    """SGD (Nesterov momentum) with a slower fine-tuned trunk."""


OPTIMIZERS = {  # name: (ordinary, with a slower fine-tuned trunk)
    "adam": (keras.optimizers.Adam, TrunkAdam),
    "adamw": (keras.optimizers.AdamW, TrunkAdamW),
    "sgd": (keras.optimizers.SGD, TrunkSGD),
}


def _optimizer(name: str, learning_rate: float, **slower_trunk: Any) -> keras.optimizers.Optimizer:
    """The trial's optimizer; with `slower_trunk` (trunk_layers, trunk_factor) its
    fine-tuned trunk steps at the lower rate (`_SlowerTrunk`)."""
    ordinary, with_trunk = OPTIMIZERS[name]
    options = {"momentum": 0.9, "nesterov": True} if name == "sgd" else {}
    if slower_trunk:
        return with_trunk(learning_rate, **options, **slower_trunk)
    return ordinary(learning_rate, **options)


def block_dilation(dilation: int, block: int) -> int:
    """Dilation rate of convolution block `block` (1-based): dilation ** (block - 1).

    The first block reads contiguous letters (a motif detector: a dilated first
    convolution cannot see a contiguous motif); each later block spaces its
    taps `dilation` times wider than the one before, so the receptive field
    grows geometrically with depth, as in Basenji-style dilated stacks.
    """
    return dilation ** (block - 1)


def receptive_field(values: dict[str, Any], length: int) -> int:
    """Input positions (bases or residues) that one feature before the global max sees.

    Follows `_network` layer by layer: a convolution adds (kernel - 1) x its
    dilation x the stride so far; a pooling between blocks (applied only while
    at least `pool_size` steps remain) adds (pool - 1) x the stride and
    multiplies the stride. A model can only learn a rule that fits in this
    window, e.g. two motifs and the spacer between them.
    """
    field, stride, steps = 1, 1, length
    blocks, pool = values["conv_blocks"], values["pool_size"]
    for block in range(1, blocks + 1):
        field += (values["kernel_size"] - 1) * block_dilation(values["dilation"], block) * stride
        if block < blocks and pool > 1 and steps >= pool:
            field += (pool - 1) * stride
            stride *= pool
            steps //= pool
    return field
