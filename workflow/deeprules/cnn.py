"""CNN stage: a Conv1D network on one-hot sequences, tuned with Keras Tuner (Tips 3, 5, 6).

What happens, in order:

1. Train and tune partitions are read (never test), encoded as tokens
   (`deeprules.encoding`) and fed through tf.data with prefetching.
2. Keras Tuner searches the configured space (Hyperband by default) on the
   train partition, scoring every trial by AUC on the tune partition, with
   early stopping. Exactly `budget.trials` trials run (see `make_tuner`).
3. The best trial (highest tune AUC; ties go to the earlier trial) is refitted
   from scratch on train with the same seed, for up to `max_epochs` epochs,
   early-stopped on tune, best epoch restored. Refitting gives a Hyperband
   winner, which may have seen only a few epochs, its full training.
4. The refitted model, its hyperparameters, train/tune predictions, every
   trial, a training-curve figure and a summary (with the device) are written.

The tuner directory (results/<dataset>/cnn/tuner/) is deliberately not a
Snakemake output: Snakemake deletes the outputs of a failed job, and this
folder is what lets a killed job resume without repeating finished trials.
A fingerprint of everything that shapes the search is kept beside it; when
the fingerprint changes the old search is discarded rather than reused.

Processes: the rule script starts `python -m deeprules.cnn stage JOB` with
PYTHONHASHSEED fixed (it must be set before Python starts). With
`cnn.workers: N > 0` that process starts one chief (CPU only) and N workers
(`python -m deeprules.cnn chief|worker JOB`) talking over Keras Tuner's gRPC
oracle on a free port.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import hashlib
import json
import logging
import math
import os
import platform
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import keras_tuner as kt
import matplotlib
import numpy as np
import pandas as pd
import tensorflow as tf
from sklearn.metrics import roc_auc_score

from deeprules import encoding
from deeprules.io import (
    InputError,
    atomic_write,
    read_json,
    read_tsv,
    resolve_positive_class,
    setup_logging,
    sha256_of,
    write_json,
    write_tsv,
)

matplotlib.use("Agg")
import matplotlib.pyplot as plt

log = logging.getLogger("deeprules.cnn")

OBJECTIVE = "val_auc"
PROJECT = "search"  # Keras Tuner project folder inside the tuner directory
RUNS_FILE = "deeprules_runs.json"  # per trial folder: every start of the trial and its results
PACKAGE_ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- data


@dataclass
class Partition:
    """One partition, encoded: what the network trains on or is scored on."""

    ids: list[str]
    labels: list[str]
    tokens: np.ndarray  # (n, length) uint8, see deeprules.encoding
    targets: np.ndarray  # (n, 1) for two classes, (n, classes) one-hot otherwise
    truncated: int  # sequences longer than the network input


def read_partition(path: str | Path) -> pd.DataFrame:
    table = read_tsv(path)
    missing = [column for column in ("id", "sequence", "label") if column not in table.columns]
    if missing:
        raise InputError(
            f"{path}: column(s) {missing} missing; columns are: {', '.join(table.columns)}"
        )
    if table.empty:
        raise InputError(f"{path}: no sequences; the split stage must give every partition rows")
    return table


def class_order(labels: list[str], positive_class: str | None, where: str) -> list[str]:
    """Class names in output order: sorted, and for two classes the positive class
    (`deeprules.io.resolve_positive_class`) last, so the single sigmoid output is its
    probability."""
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise InputError(f"{where}: only one class ({classes}); a classifier needs two or more")
    positive = resolve_positive_class(labels, positive_class, str(where))
    if positive:
        classes = [name for name in classes if name != positive] + [positive]
    return classes


def encode_partition(
    table: pd.DataFrame, classes: list[str], sequence_type: str, length: int, where: str
) -> Partition:
    unknown = sorted(set(table["label"]) - set(classes))
    if unknown:
        raise InputError(f"{where}: labels {unknown} do not occur in the train partition")
    index = np.array([classes.index(label) for label in table["label"]])
    if len(classes) == 2:
        targets = index[:, None].astype(np.float32)
    else:
        targets = np.eye(len(classes), dtype=np.float32)[index]
    sequences = table["sequence"].tolist()
    return Partition(
        ids=table["id"].tolist(),
        labels=table["label"].tolist(),
        tokens=encoding.tokenize(sequences, sequence_type, length),
        targets=targets,
        truncated=sum(len(sequence) > length for sequence in sequences),
    )


def input_pipeline(
    part: Partition,
    table: np.ndarray,
    batch_size: int,
    shuffle_seed: int | None = None,
    reverse_complement: bool = False,
) -> tf.data.Dataset:
    """Batches of (one-hot, target) from in-memory tokens, one-hot made per batch, prefetched.

    Shuffling and reverse-complement flips are seeded (stateless per epoch), so
    training is reproducible. A flipped DNA sequence is reversed along positions
    and channels (ACGT -> TGCA is the complement).
    """
    data = tf.data.Dataset.from_tensor_slices((part.tokens, part.targets))
    if shuffle_seed is not None:
        data = data.shuffle(len(part.tokens), seed=shuffle_seed, reshuffle_each_iteration=True)
    weights = tf.constant(table)

    def one_hot(tokens: tf.Tensor, targets: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return tf.gather(weights, tf.cast(tokens, tf.int32)), targets

    if reverse_complement:
        coins = tf.data.Dataset.random(seed=shuffle_seed, rerandomize_each_iteration=True)
        data = tf.data.Dataset.zip(data, coins).batch(batch_size)

        def flip_some(pair: tuple[tf.Tensor, tf.Tensor], coin: tf.Tensor):
            x, y = one_hot(*pair)
            flip = tf.reshape(coin % 2 == 1, (-1, 1, 1))
            return tf.where(flip, tf.reverse(x, axis=[1, 2]), x), y

        data = data.map(flip_some, num_parallel_calls=tf.data.AUTOTUNE)
    else:
        data = data.batch(batch_size).map(one_hot, num_parallel_calls=tf.data.AUTOTUNE)
    return data.prefetch(tf.data.AUTOTUNE)


# --------------------------------------------------------------------------- model


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


def _choice(hp: kt.HyperParameters, name: str, values: list) -> Any:
    return hp.Choice(name, values) if len(values) > 1 else hp.Fixed(name, values[0])


def _range(hp: kt.HyperParameters, name: str, bounds: list[float], log_scale: bool) -> float:
    low, high = bounds
    if low == high:
        return hp.Fixed(name, low)
    return hp.Float(name, low, high, sampling="log" if log_scale else "linear")


def build_model(
    hp: kt.HyperParameters,
    length: int,
    alphabet_size: int,
    classes: int,
    space: dict[str, Any],
    mask_padding: bool = True,
) -> keras.Model:
    """A compiled Conv1D network whose shape and training settings come from `hp`.

    conv_blocks x [Conv1D(filters, kernel_size, dilation, ReLU, L2) -> padding
    mask -> pooling (between blocks) -> dropout] -> global max over positions ->
    optional dense layer -> sigmoid (two classes) or softmax. Global max pooling
    makes the score depend on whether a motif occurs, not where.
    `batch_size` is declared here so every tuner samples it; HyperModel.fit uses it.
    """
    blocks = _choice(hp, "conv_blocks", space["conv_blocks"])
    filters = _choice(hp, "filters", space["filters"])
    kernel_size = _choice(hp, "kernel_size", space["kernel_size"])
    dilation = _choice(hp, "dilation", space["dilation"])
    pooling = _choice(hp, "pooling", space["pooling"])
    pool_size = _choice(hp, "pool_size", space["pool_size"])
    dropout = _range(hp, "dropout", space["dropout"], log_scale=False)
    l2 = _range(hp, "l2", space["l2"], log_scale=True)
    dense_units = _choice(hp, "dense_units", space["dense_units"])
    optimizer = _choice(hp, "optimizer", space["optimizer"])
    learning_rate = _range(hp, "learning_rate", space["learning_rate"], log_scale=True)
    _choice(hp, "batch_size", space["batch_size"])

    regularizer = keras.regularizers.L2(l2)
    sequence = keras.Input((length, alphabet_size), name="one_hot")
    x, stride = sequence, 1
    for block in range(1, blocks + 1):
        x = keras.layers.Conv1D(
            filters,
            kernel_size,
            dilation_rate=dilation,
            padding="same",
            activation="relu",
            kernel_regularizer=regularizer,
            name=f"conv{block}",
        )(x)
        if mask_padding:
            x = PaddingMask(stride, name=f"mask{block}")([x, sequence])
        if block < blocks and pool_size > 1 and x.shape[1] >= pool_size:
            pool = keras.layers.MaxPooling1D if pooling == "max" else keras.layers.AveragePooling1D
            x = pool(pool_size, name=f"pool{block}")(x)
            stride *= pool_size
        x = keras.layers.Dropout(dropout)(x)
    x = keras.layers.GlobalMaxPooling1D(name="max_over_positions")(x)
    if dense_units:
        x = keras.layers.Dense(dense_units, activation="relu", kernel_regularizer=regularizer)(x)
        x = keras.layers.Dropout(dropout)(x)
    two_classes = classes == 2
    output = keras.layers.Dense(
        1 if two_classes else classes,
        activation="sigmoid" if two_classes else "softmax",
        dtype="float32",  # keep probabilities in float32 under mixed precision
        name="probability",
    )(x)
    model = keras.Model(sequence, output, name="deeprules_cnn")
    model.compile(
        optimizer=_optimizer(optimizer, learning_rate),
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


def _optimizer(name: str, learning_rate: float) -> keras.optimizers.Optimizer:
    if name == "adam":
        return keras.optimizers.Adam(learning_rate)
    if name == "adamw":
        return keras.optimizers.AdamW(learning_rate)
    return keras.optimizers.SGD(learning_rate, momentum=0.9, nesterov=True)


def trial_seed(seed: int, values: dict[str, Any]) -> int:
    """Seed of one trial, from the run seed and the trial's hyperparameters.

    Depending on the values rather than on how many models were built before
    means a trial gets the same initial weights and batch order whether it runs
    first, after a resume, or on another worker.
    """
    text = json.dumps({"seed": seed, **values}, sort_keys=True, default=str)
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) % (2**31 - 1)


def predict(model: keras.Model, part: Partition, table: np.ndarray, batch: int) -> np.ndarray:
    """Class probabilities (n, outputs) in partition order."""
    return model.predict(input_pipeline(part, table, batch), verbose=0)


def predict_proba(
    model_path: str | Path,
    sequences: list[str],
    dataset: dict[str, Any],
    cnn_config: dict[str, Any],
    batch: int = 256,
) -> np.ndarray:
    """Class probabilities (n, classes) of the saved model, in cnn/summary.json's class order.

    For the evaluate stage, which scores sequences the CNN never saw. The input
    length is the one the model was trained with (summary.json), so test
    sequences are padded and truncated exactly as training sequences were.
    `cnn_config` is accepted for the common model interface; the saved model
    and its summary already fix everything prediction needs.
    """
    summary = read_json(Path(model_path).with_name("summary.json"))
    model = keras.models.load_model(model_path)
    inputs = encoding.one_hot(sequences, dataset["sequence_type"], summary["encoding"]["length"])
    out = model.predict(inputs, batch_size=batch, verbose=0)
    return np.column_stack([1 - out[:, 0], out[:, 0]]) if out.shape[1] == 1 else out


def auroc(part: Partition, scores: np.ndarray) -> float:
    """AUROC (macro one-vs-rest for several classes); NaN when a class is absent."""
    try:
        if part.targets.shape[1] == 1:
            return float(roc_auc_score(part.targets[:, 0], scores[:, 0]))
        return float(
            roc_auc_score(part.targets.argmax(1), scores, multi_class="ovr", average="macro")
        )
    except ValueError:
        return float("nan")


class CNNHyperModel(kt.HyperModel):
    """build(hp) = `build_model`; fit(hp, ...) picks the batch size and adds early stopping."""

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(name="deeprules_cnn")
        self.spec = spec
        self.table = encoding.token_table(spec["sequence_type"])
        self.last_fit: dict[str, Any] = {}

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        if self.spec["deterministic"]:
            keras.utils.set_random_seed(trial_seed(self.spec["seed"], hp.values))
        return build_model(
            hp,
            length=self.spec["length"],
            alphabet_size=self.table.shape[1],
            classes=len(self.spec["classes"]),
            space=self.spec["cnn"]["search_space"],
            mask_padding=self.spec["cnn"]["mask_padding"],
        )

    def fit(
        self,
        hp: kt.HyperParameters,
        model: keras.Model,
        train: Partition,
        tune: Partition,
        callbacks: list | None = None,
        **fit_kwargs: Any,
    ) -> keras.callbacks.History:
        batch = hp.get("batch_size")
        stopper = keras.callbacks.EarlyStopping(
            monitor=OBJECTIVE,
            mode="max",
            patience=self.spec["cnn"]["patience"],
            restore_best_weights=True,
        )
        started = time.perf_counter()
        history = model.fit(
            input_pipeline(
                train,
                self.table,
                batch,
                shuffle_seed=trial_seed(self.spec["seed"], hp.values),
                reverse_complement=self.spec["reverse_complement"],
            ),
            validation_data=input_pipeline(tune, self.table, batch),
            callbacks=[*(callbacks or []), stopper],
            shuffle=False,  # the pipeline shuffles, seeded
            verbose=2,
            **fit_kwargs,
        )
        seconds = time.perf_counter() - started
        epochs = len(history.history["loss"])
        self.last_fit = {
            "history": history.history,
            "initial_epoch": fit_kwargs.get("initial_epoch", 0),
            "epochs_trained": epochs,
            "sequences_per_second": len(train.ids) * epochs / seconds,
            "train_auroc": auroc(train, predict(model, train, self.table, batch)),
            "tune_auroc": auroc(tune, predict(model, tune, self.table, batch)),
        }
        return history


# --------------------------------------------------------------------------- tuning


class _RecordsRuns:
    """Tuner mixin: every start of a trial is written to its folder, and its results at the end.

    A trial that appears with two runs was interrupted (job killed) and rerun;
    trials.tsv reports the count, and the tests use it to prove that a resume
    repeats no finished trial.
    """

    def run_trial(self, trial: kt.engine.trial.Trial, *args: Any, **kwargs: Any) -> Any:
        path = Path(self.get_trial_dir(trial.trial_id)) / RUNS_FILE
        runs = read_json(path)["runs"] if path.exists() else []
        runs.append(
            {
                "tuner_id": self.tuner_id,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "device": device_description()["used"],
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "finished": False,
            }
        )
        write_json(path, {"runs": runs})
        started = time.perf_counter()
        result = super().run_trial(trial, *args, **kwargs)
        runs[-1].update(
            finished=True, seconds=time.perf_counter() - started, **self.hypermodel.last_fit
        )
        write_json(path, {"runs": runs})
        return result


class HyperbandSearch(_RecordsRuns, kt.Hyperband):
    """Hyperband, capped at the trial budget (see `make_tuner`)."""


class BayesianSearch(_RecordsRuns, kt.BayesianOptimization):
    """Gaussian-process Bayesian optimisation."""


class RandomSearch(_RecordsRuns, kt.RandomSearch):
    """Random search."""


def hyperband_trials_per_iteration(max_epochs: int, factor: int) -> int:
    """Trials in one full Hyperband iteration (all brackets, all rounds)."""
    oracle = kt.oracles.HyperbandOracle(
        objective=kt.Objective(OBJECTIVE, "max"), max_epochs=max_epochs, factor=factor
    )
    brackets = oracle._get_num_brackets()
    return sum(oracle._get_size(b, r) for b in range(brackets) for r in range(b + 1))


def make_tuner(spec: dict[str, Any], hypermodel: CNNHyperModel) -> kt.Tuner:
    """The configured tuner over `spec['tuner_dir']`, resuming whatever is there.

    Every tuner runs exactly `trials` trials. Random search and Bayesian
    optimisation take that as max_trials. Hyperband has no max_trials: here it
    gets enough iterations (ceil(trials / trials per iteration)) and the
    oracle's trial cap is set to `trials`, so the search stops at the budget,
    possibly part-way through a bracket. Each Hyperband round (including a
    continuation that trains a promising model further) counts as one trial,
    as it does in Keras Tuner.
    """
    cnn, trials = spec["cnn"], spec["trials"]
    common = {
        "hypermodel": hypermodel,
        "objective": kt.Objective(OBJECTIVE, direction="max"),
        "seed": spec["seed"],
        "directory": spec["tuner_dir"],
        "project_name": PROJECT,
        "overwrite": False,
        "max_consecutive_failed_trials": 3,
    }
    if cnn["tuner"] == "bayesian":
        return BayesianSearch(max_trials=trials, **common)
    if cnn["tuner"] == "random":
        return RandomSearch(max_trials=trials, **common)
    per_iteration = hyperband_trials_per_iteration(cnn["max_epochs"], cnn["hyperband_factor"])
    tuner = HyperbandSearch(
        max_epochs=cnn["max_epochs"],
        factor=cnn["hyperband_factor"],
        hyperband_iterations=math.ceil(trials / per_iteration),
        **common,
    )
    oracle = getattr(tuner.oracle, "_oracle", tuner.oracle)  # workers wrap it in a gRPC client
    oracle.max_trials = trials
    return tuner


def search(spec: dict[str, Any]) -> None:
    """Run (or resume) the search in this process: single-process mode or a worker."""
    hypermodel = CNNHyperModel(spec)
    train, tune = load_partitions(spec)
    tuner = make_tuner(spec, hypermodel)
    epochs = spec["cnn"]["max_epochs"]  # Hyperband sets its own per trial
    tuner.search(train=train, tune=tune, epochs=epochs)


def serve_oracle(spec: dict[str, Any]) -> None:
    """Chief: hold the oracle and hand out trials until the budget is spent."""
    make_tuner(spec, CNNHyperModel(spec)).search()


def free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def oracle_host(cnn: dict[str, Any]) -> str:
    """Where the chief listens: loopback for local workers, this node's address for srun."""
    if cnn["oracle_host"]:
        return cnn["oracle_host"]
    if not cnn["worker_launcher"]:
        return "127.0.0.1"
    return socket.gethostbyname(socket.gethostname())


def search_distributed(spec: dict[str, Any], job_file: Path) -> None:
    """One chief (CPU only) and `workers` workers; returns when every trial is done.

    Workers are local subprocesses, or, with `cnn.worker_launcher` (e.g.
    "srun --ntasks=1 --exclusive"), that command followed by the worker command.
    A worker that fails stops the whole search (the tuner directory keeps the
    finished trials for the rerun).
    """
    cnn = spec["cnn"]
    host = oracle_host(cnn)
    port = free_port(host)
    base = {
        **os.environ,
        "KERASTUNER_ORACLE_IP": host,
        "KERASTUNER_ORACLE_PORT": str(port),
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(PACKAGE_ROOT), os.environ.get("PYTHONPATH")])
        ),
    }
    command = [sys.executable, "-m", "deeprules.cnn"]
    log.info("chief on %s:%d with %d worker(s)", host, port, cnn["workers"])
    chief = subprocess.Popen(
        [*command, "chief", str(job_file)],
        env={**base, "KERASTUNER_TUNER_ID": "chief", "CUDA_VISIBLE_DEVICES": ""},
        preexec_fn=die_with_parent,
    )
    launcher = shlex.split(cnn["worker_launcher"])
    workers = [
        subprocess.Popen(
            [*launcher, *command, "worker", str(job_file)],
            env={**base, "KERASTUNER_TUNER_ID": f"tuner{index}", **_worker_devices(spec, index)},
            preexec_fn=die_with_parent,
        )
        for index in range(cnn["workers"])
    ]
    try:
        _supervise(chief, workers)
    finally:
        for process in [chief, *workers]:
            if process.poll() is None:
                process.kill()
                process.wait()


def die_with_parent() -> None:
    """Ask Linux to kill this child when its parent dies (a SIGKILLed job leaves no orphans).

    Used as `preexec_fn`; a no-op where prctl is missing (macOS).
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _worker_devices(spec: dict[str, Any], index: int) -> dict[str, str]:
    """Local workers share the node's GPUs round-robin (srun assigns its own)."""
    gpus = spec["cnn"]["gpus"]
    if spec["cnn"]["worker_launcher"] or not gpus:
        return {}
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", ",".join(map(str, range(gpus)))).split(",")
    return {"CUDA_VISIBLE_DEVICES": visible[index % len(visible)]}


def _supervise(
    chief: subprocess.Popen, workers: list[subprocess.Popen], grace_seconds: float = 60
) -> None:
    """Wait for the search; raise when the chief or any worker fails."""
    while chief.poll() is None:
        failed = [w for w in workers if w.poll() not in (None, 0)]
        if failed:
            raise RuntimeError(f"a tuning worker exited with code {failed[0].returncode}")
        time.sleep(0.5)
    if chief.returncode != 0:
        raise RuntimeError(f"the tuning chief exited with code {chief.returncode}")
    deadline = time.monotonic() + grace_seconds
    for worker in workers:
        with contextlib.suppress(subprocess.TimeoutExpired):
            worker.wait(timeout=max(0.0, deadline - time.monotonic()))
        if worker.returncode is None:
            log.warning(
                "worker pid %d still running after the chief finished; stopping it", worker.pid
            )
        elif worker.returncode != 0:
            raise RuntimeError(f"a tuning worker exited with code {worker.returncode}")


# --------------------------------------------------------------------------- results


def read_trials(tuner_dir: str | Path) -> list[dict[str, Any]]:
    """Every trial Keras Tuner recorded, with the runs this module recorded, by trial id."""
    trials = []
    for path in sorted((Path(tuner_dir) / PROJECT).glob("trial_*/trial.json")):
        trial = read_json(path)
        runs_file = path.parent / RUNS_FILE
        trial["runs"] = read_json(runs_file)["runs"] if runs_file.exists() else []
        trials.append(trial)
    return trials


def trials_table(trials: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per trial: hyperparameters, best epoch, tune/train score, seconds, runs."""
    rows = []
    for trial in trials:
        values = trial["hyperparameters"]["values"]
        finished = [run for run in trial["runs"] if run["finished"]]
        last = finished[-1] if finished else {}
        best_step = trial.get("best_step")
        rows.append(
            {
                "trial_id": trial["trial_id"],
                "status": trial["status"],
                "tune_auc": trial.get("score"),
                "best_epoch": None if best_step is None else int(best_step) + 1,
                "tune_auroc": last.get("tune_auroc"),
                "train_auroc": last.get("train_auroc"),
                "epochs_trained": last.get("epochs_trained"),
                "seconds": last.get("seconds"),
                "runs": len(trial["runs"]),
                "worker": last.get("tuner_id"),
                "device": last.get("device"),
                "continues_trial": values.get("tuner/trial_id"),
                **{name: value for name, value in values.items() if not name.startswith("tuner/")},
                **{
                    name.replace("tuner/", "hyperband_"): value
                    for name, value in values.items()
                    if name in ("tuner/bracket", "tuner/round", "tuner/epochs")
                },
            }
        )
    return pd.DataFrame(rows)


def best_trial(trials: list[dict[str, Any]]) -> dict[str, Any]:
    """Highest tune AUC among completed trials; on a tie the earlier trial."""
    completed = [t for t in trials if t["status"] == "COMPLETED" and t.get("score") is not None]
    if not completed:
        raise RuntimeError("no tuning trial completed; see the log for the trials' errors")
    return max(completed, key=lambda t: (t["score"], -int(t["trial_id"])))


def refit(
    spec: dict[str, Any], values: dict[str, Any], train: Partition, tune: Partition
) -> tuple[keras.Model, dict[str, Any]]:
    """Train the chosen hyperparameters from scratch on train, early-stopped on tune."""
    hypermodel = CNNHyperModel(spec)
    hp = kt.HyperParameters()
    hp.values = dict(values)
    if spec["deterministic"]:
        keras.utils.set_random_seed(spec["seed"])
    model = build_model(
        hp,
        length=spec["length"],
        alphabet_size=hypermodel.table.shape[1],
        classes=len(spec["classes"]),
        space=spec["cnn"]["search_space"],
        mask_padding=spec["cnn"]["mask_padding"],
    )
    started = time.perf_counter()
    hypermodel.fit(hp, model, train, tune, epochs=spec["cnn"]["max_epochs"])
    return model, {**hypermodel.last_fit, "seconds": time.perf_counter() - started}


def predictions_table(
    model: keras.Model, parts: dict[str, Partition], classes: list[str], table: np.ndarray
) -> pd.DataFrame:
    """id, partition, model, score, label; two classes: score = P(positive class).

    Several classes: score = probability of the predicted class, plus
    `predicted` and one `score_<class>` column per class.
    """
    frames = []
    for name, part in parts.items():
        scores = predict(model, part, table, batch=256)
        frame = pd.DataFrame({"id": part.ids, "partition": name, "model": "cnn"})
        if len(classes) == 2:
            frame["score"] = scores[:, 0]
        else:
            frame["score"] = scores.max(1)
            frame["predicted"] = [classes[i] for i in scores.argmax(1)]
            for index, class_name in enumerate(classes):
                frame[f"score_{class_name}"] = scores[:, index]
        frame["label"] = part.labels
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def plot_training_curves(trials: list[dict[str, Any]], final: dict[str, Any], path: Path) -> None:
    """Left: tune AUC per epoch of every trial. Right: the refit's train and tune curves."""
    figure, (search_axis, refit_axis) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for trial in trials:
        finished = [run for run in trial["runs"] if run["finished"]]
        if finished:
            curve = finished[-1]["history"][OBJECTIVE]
            start = finished[-1]["initial_epoch"]  # Hyperband continues earlier trials
            epochs = np.arange(start + 1, start + len(curve) + 1)
            search_axis.plot(epochs, curve, color="0.5", lw=0.8, marker=".", ms=3)
    search_axis.set(xlabel="epoch", ylabel="tune AUC", title=f"Search: {len(trials)} trials")
    history = final["history"]
    epochs = np.arange(1, len(history["loss"]) + 1)
    refit_axis.plot(epochs, history["auc"], label="train AUC (running, with dropout)")
    refit_axis.plot(epochs, history[OBJECTIVE], label="tune AUC")
    best = int(np.argmax(history[OBJECTIVE])) + 1
    refit_axis.axvline(best, color="k", ls="--", lw=0.8, label=f"kept: epoch {best}")
    refit_axis.set(xlabel="epoch", ylabel="AUC", title="Refit of the best trial")
    refit_axis.legend(loc="lower right", fontsize=8)
    with atomic_write(path, "wb") as handle:
        figure.savefig(handle, format="png", dpi=120)
    plt.close(figure)


def save_model(model: keras.Model, path: Path) -> None:
    """model.keras written beside its final name, then renamed (Keras needs the suffix)."""
    temporary = path.with_name(f".{path.stem}.partial.keras")
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(temporary)
    os.replace(temporary, path)


# --------------------------------------------------------------------------- environment


def device_description() -> dict[str, Any]:
    """What trained the model: CPU model and core count, GPU names if any."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    gpus = [
        tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name)
        for gpu in tf.config.list_physical_devices("GPU")
    ]
    return {
        "used": f"GPU: {', '.join(gpus)}" if gpus else f"CPU: {cpu}",
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "gpus": gpus,
    }


def configure_tensorflow(spec: dict[str, Any], threads: int) -> None:
    """Threads, seeds, deterministic ops and (on a GPU) mixed precision, before any op runs."""
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    if spec["deterministic"]:
        keras.utils.set_random_seed(spec["seed"])
        tf.config.experimental.enable_op_determinism()
    if spec["cnn"]["mixed_precision"]:
        if tf.config.list_physical_devices("GPU"):
            keras.mixed_precision.set_global_policy("mixed_float16")
        else:
            log.warning("cnn.mixed_precision ignored: no GPU here (float16 is slow on CPUs)")


def child_environment(spec: dict[str, Any]) -> dict[str, str]:
    """Environment of every process this stage starts: the package importable, hashes seeded."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(PACKAGE_ROOT), os.environ.get("PYTHONPATH")])
        ),
    }
    if spec["deterministic"]:
        env["PYTHONHASHSEED"] = str(spec["seed"])
    return env


# --------------------------------------------------------------------------- the stage


def prepare(
    train_path: str,
    tune_path: str,
    dataset: dict[str, Any],
    config: dict[str, Any],
    outputs: dict[str, str],
    tuner_dir: str,
    threads: int,
) -> dict[str, Any]:
    """Check the inputs and settings and fix what every process needs: the job spec."""
    cnn = config["cnn"]
    for key in ("dropout", "l2", "learning_rate"):
        low, high = cnn["search_space"][key]
        if low > high:
            raise InputError(
                f"config key 'cnn.search_space.{key}': a range is [low, high], got [{low}, {high}]"
            )
    train = read_partition(train_path)
    tune = read_partition(tune_path)
    sequence_type = dataset["sequence_type"]
    rc = bool(cnn["reverse_complement"]) and sequence_type == "dna"
    if cnn["reverse_complement"] and not rc:
        log.warning(
            "cnn.reverse_complement applies to DNA only; %s is %s", dataset["name"], sequence_type
        )
    classes = class_order(train["label"].tolist(), dataset.get("positive_class"), train_path)
    # Train and tune lengths both: a homology split can put the longer sequences in tune
    # (on amp, median 24 in train vs 55 in tune), and the quantile of train alone would
    # then truncate many of the sequences the model is selected on.
    lengths = pd.concat([train["sequence"], tune["sequence"]]).str.len().tolist()
    length = encoding.choose_length(lengths, cnn["max_length"], cnn["length_quantile"])
    return {
        "dataset": dataset["name"],
        "sequence_type": sequence_type,
        "train": str(train_path),
        "tune": str(tune_path),
        "outputs": {key: str(value) for key, value in outputs.items()},
        "tuner_dir": str(tuner_dir),
        "threads": int(threads),
        "seed": int(config["seed"]),
        "deterministic": bool(config["deterministic"]),
        "trials": int(config["budget"]["trials"]),
        "cnn": cnn,
        "classes": classes,
        "length": length,
        "length_source": "cnn.max_length"
        if cnn["max_length"] is not None
        else f"quantile {cnn['length_quantile']} of train and tune lengths",
        "reverse_complement": rc,
        "data_sha256": {"train": sha256_of(train_path), "tune": sha256_of(tune_path)},
    }


def run_stage(log_file: str, **inputs: Any) -> None:
    """Rule entry point: check inputs, then run the stage in a child with PYTHONHASHSEED set.

    PYTHONHASHSEED only takes effect when Python starts, hence the child. Its
    output (Keras epoch lines, tuner progress) is appended to the rule log.
    """
    spec = prepare(**inputs)
    Path(spec["tuner_dir"]).mkdir(parents=True, exist_ok=True)
    job_file = Path(spec["tuner_dir"]) / "job.json"
    write_json(job_file, spec)
    log.info("running the cnn stage in a child process: %s", job_file)
    _run_child([sys.executable, "-m", "deeprules.cnn", "stage", str(job_file)], spec, log_file)


def _run_child(command: list[str], spec: dict[str, Any], log_file: str) -> None:
    root = logging.getLogger()
    files = [h for h in root.handlers if isinstance(h, logging.FileHandler)]
    for handler in files:  # the child appends to the same log; hand it over
        root.removeHandler(handler)
        handler.close()
    with open(log_file, "a", encoding="utf-8") as output:
        code = subprocess.run(
            command,
            env=child_environment(spec),
            stdout=output,
            stderr=output,
            preexec_fn=die_with_parent,
        ).returncode
    for handler in files:
        root.addHandler(logging.FileHandler(handler.baseFilename, mode="a", encoding="utf-8"))
    if code != 0:
        raise RuntimeError(f"the cnn stage failed (exit code {code}); see {log_file}")


def load_partitions(spec: dict[str, Any]) -> tuple[Partition, Partition]:
    parts = [
        encode_partition(
            read_partition(spec[name]),
            spec["classes"],
            spec["sequence_type"],
            spec["length"],
            spec[name],
        )
        for name in ("train", "tune")
    ]
    return parts[0], parts[1]


def fingerprint(spec: dict[str, Any]) -> dict[str, Any]:
    """Everything that shapes the search; a different fingerprint means a fresh search."""
    keep = ("seed", "deterministic", "trials", "classes", "length", "reverse_complement")
    # Where and how wide it runs does not define the search: a resume on other resources
    # keeps the finished trials (bit-for-bit equality needs the same hardware anyway).
    where_it_runs = ("threads", "gpus", "worker_launcher", "oracle_host")
    cnn = {key: value for key, value in spec["cnn"].items() if key not in where_it_runs}
    return {**{key: spec[key] for key in keep}, "cnn": cnn, "data_sha256": spec["data_sha256"]}


def reuse_or_reset(spec: dict[str, Any]) -> bool:
    """Keep a previous search only if it was for exactly this job; True when resuming."""
    tuner_dir = Path(spec["tuner_dir"])
    stamp = tuner_dir / "fingerprint.json"
    current = json.loads(json.dumps(fingerprint(spec)))
    if stamp.exists() and (tuner_dir / PROJECT).exists():
        previous = {k: v for k, v in read_json(stamp).items() if k != "schema_version"}
        if previous == current:
            return True
        log.warning("settings or data changed since the last search; starting a new search")
    shutil.rmtree(tuner_dir / PROJECT, ignore_errors=True)
    write_json(stamp, current)
    return False


def stage(job_file: Path) -> None:
    """The whole stage in this process (and its chief/workers): search, choose, refit, write."""
    spec = read_json(job_file)
    configure_tensorflow(spec, spec["threads"])
    started = time.perf_counter()
    resumed = reuse_or_reset(spec)
    done = sum(t["status"] in ("COMPLETED", "FAILED") for t in read_trials(spec["tuner_dir"]))
    log.info(
        "%s search, %d trials (%d already finished), input length %d, classes %s",
        spec["cnn"]["tuner"],
        spec["trials"],
        done if resumed else 0,
        spec["length"],
        spec["classes"],
    )
    if spec["cnn"]["workers"] > 0:
        search_distributed(spec, job_file)
    else:
        search(spec)
    search_seconds = time.perf_counter() - started
    write_outputs(spec, search_seconds, resumed)


def write_outputs(spec: dict[str, Any], search_seconds: float, resumed: bool) -> None:
    outputs = {key: Path(value) for key, value in spec["outputs"].items()}
    trials = read_trials(spec["tuner_dir"])
    table = trials_table(trials)
    chosen = best_trial(trials)
    values = {
        k: v for k, v in chosen["hyperparameters"]["values"].items() if not k.startswith("tuner/")
    }
    log.info(
        "best trial %s (tune AUC %.4f): %s; refitting", chosen["trial_id"], chosen["score"], values
    )
    train, tune = load_partitions(spec)
    model, final = refit(spec, values, train, tune)
    table_weights = encoding.token_table(spec["sequence_type"])
    predictions = predictions_table(
        model, {"train": train, "tune": tune}, spec["classes"], table_weights
    )

    save_model(model, outputs["model"])
    write_json(
        outputs["hyperparameters"],
        {"trial_id": chosen["trial_id"], "tune_auc": chosen["score"], "hyperparameters": values},
    )
    write_tsv(outputs["predictions"], predictions)
    write_tsv(outputs["trials"], table)
    plot_training_curves(trials, final, outputs["curves"])
    write_json(
        outputs["summary"],
        _summary(spec, trials, chosen, values, final, train, tune, search_seconds, resumed),
    )
    log.info(
        "final model: train AUROC %.4f, tune AUROC %.4f", final["train_auroc"], final["tune_auroc"]
    )


def _summary(
    spec: dict[str, Any],
    trials: list[dict[str, Any]],
    chosen: dict[str, Any],
    values: dict[str, Any],
    final: dict[str, Any],
    train: Partition,
    tune: Partition,
    search_seconds: float,
    resumed: bool,
) -> dict[str, Any]:
    cnn = spec["cnn"]
    statuses = pd.Series([t["status"] for t in trials]).value_counts().to_dict()
    return {
        "dataset": spec["dataset"],
        "model": "cnn",
        "classes": spec["classes"],
        "positive_class": spec["classes"][-1] if len(spec["classes"]) == 2 else None,
        "encoding": {
            "sequence_type": spec["sequence_type"],
            "alphabet": encoding.ALPHABETS[spec["sequence_type"]],
            "length": spec["length"],
            "length_source": spec["length_source"],
            "truncated": {"train": train.truncated, "tune": tune.truncated},
            "padding": "end, masked (no length signal)" if cnn["mask_padding"] else "end, unmasked",
            "reverse_complement_augmentation": spec["reverse_complement"],
        },
        "tuning": {
            "tuner": cnn["tuner"],
            "objective": "tune AUC (Keras, 1000 thresholds; macro one-vs-rest for 3+ classes)",
            "trials_budget": spec["trials"],
            "trials": len(trials),
            "statuses": statuses,
            "trials_rerun_after_interruption": sum(len(t["runs"]) > 1 for t in trials),
            "resumed": resumed,
            "workers": cnn["workers"],
            "max_epochs": cnn["max_epochs"],
            "patience": cnn["patience"],
            "hyperband_factor": cnn["hyperband_factor"] if cnn["tuner"] == "hyperband" else None,
            "devices": sorted({run["device"] for t in trials for run in t["runs"]}),
            "seconds": search_seconds,
        },
        "best_trial": {"trial_id": chosen["trial_id"], "tune_auc": chosen["score"]},
        "hyperparameters": values,
        "final_model": {
            "how": "best trial's hyperparameters refitted from scratch on train (seed = run seed), "
            "early-stopped on tune AUC, weights of the best epoch kept",
            "epochs_trained": final["epochs_trained"],
            "best_epoch": int(np.argmax(final["history"][OBJECTIVE])) + 1,
            "train_auroc": final["train_auroc"],
            "tune_auroc": final["tune_auroc"],
            "seconds": final["seconds"],
            "train_sequences_per_second": final["sequences_per_second"],
            "load_with": "import deeprules.cnn; keras.models.load_model(path)  (PaddingMask layer)",
        },
        "reproducibility": {
            "seed": spec["seed"],
            "deterministic": spec["deterministic"],
            "op_determinism": spec["deterministic"],
            "pythonhashseed": os.environ.get("PYTHONHASHSEED"),
            "mixed_precision": keras.mixed_precision.global_policy().name,
        },
        "device": device_description(),
        "versions": {
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "keras_tuner": kt.__version__,
            "python": platform.python_version(),
        },
    }


def main(argv: list[str] | None = None) -> None:
    """`python -m deeprules.cnn stage|chief|worker JOB.json` (started by run_stage)."""
    parser = argparse.ArgumentParser(prog="python -m deeprules.cnn", description=main.__doc__)
    parser.add_argument("role", choices=["stage", "chief", "worker"])
    parser.add_argument("job", type=Path)
    args = parser.parse_args(argv)
    setup_logging()
    spec = read_json(args.job)
    try:
        if args.role == "stage":
            stage(args.job)
        elif args.role == "chief":
            configure_tensorflow(spec, threads=1)
            serve_oracle(spec)
        else:
            local = not spec["cnn"]["worker_launcher"]
            configure_tensorflow(
                spec, max(1, spec["threads"] // spec["cnn"]["workers"]) if local else 0
            )
            search(spec)
    except InputError as error:
        log.error("%s", error)
        sys.exit(str(error))


if __name__ == "__main__":
    from deeprules.cnn import main as _main  # the importable module, so saved layers name it

    _main()
