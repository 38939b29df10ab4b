"""Rule pretrain: build the pre-training set, train the trunk, write trunk and summary.

Inputs, masked residues: unlabeled (curate/unlabeled.tsv), excluded
(split/pretrain_excluded.tsv), train and tune (split/). Supervised (pretrain.from):
excluded, and the source dataset's source_train, source_tune and source_split_report.
Never a test.tsv: the homologues of test were listed by the target's split. Runs in
the rule's process (the CNN stage's child process exists for PYTHONHASHSEED; nothing
here iterates over a hashed collection).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from deeprules import encoding
from deeprules.cnn.job import device_description
from deeprules.cnn.outputs import save_model
from deeprules.contracts import read_classes, read_partition
from deeprules.io import read_tsv, sha256_of, write_json
from deeprules.pretrain.data import TUNE_MASK_EPOCH, check_table, mask, pretraining_table
from deeprules.pretrain.supervised import check_supervised, supervised_objective, supervised_table
from deeprules.pretrain.training import masked_objective, train_trunk
from deeprules.pretrain.trunk import ARCHITECTURE
from deeprules.rule import Job

log = logging.getLogger("deeprules.pretrain")

LOAD_WITH = (
    "keras.saving.load_model(path) after importing deeprules.cnn (the trunk uses the "
    "PaddingMask layer); the CNN search copies its conv1..convN"
)


def run(job: Job) -> dict[str, Any]:
    """Rule entry point; returns summary.json's content."""
    log.info("CUDA_VISIBLE_DEVICES=%s", os.environ.get("CUDA_VISIBLE_DEVICES", ""))
    configure_tensorflow(job.settings, job.threads)
    supervised = "source_train" in job.inputs  # pretrain.from: see pretrain_data_inputs
    spec, table, tune = prepare_supervised(job) if supervised else prepare(job)
    tokens, tune_tokens = (
        encoding.tokenize(part["sequence"].tolist(), spec["sequence_type"], spec["length"])
        for part in (table, tune)
    )
    if supervised:
        objective = supervised_objective(spec, tokens, table["label"], tune_tokens, tune["label"])
    else:
        objective = masked_objective(spec, tokens, tune_tokens)
    started = time.perf_counter()
    model, history = train_trunk(spec, objective)
    seconds = time.perf_counter() - started
    save_model(model, Path(job.outputs["trunk"]))
    if supervised:
        summary = _supervised_summary(spec, history, seconds, tune)
    else:
        summary = _summary(spec, history, seconds, tune_tokens)
    write_json(job.outputs["summary"], summary)
    return summary


def configure_tensorflow(settings: dict[str, Any], threads: int) -> None:
    """Threads (only before TensorFlow's first op), seeds and deterministic ops, as the
    CNN stage sets them; a GPU is used whenever the node has one."""
    with contextlib.suppress(RuntimeError):  # already initialised (a test in one process)
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    if settings["deterministic"]:
        keras.utils.set_random_seed(settings["seed"])
        tf.config.experimental.enable_op_determinism()


def prepare(job: Job) -> tuple[dict[str, Any], Any, Any]:
    """The job spec (what shapes training, and where), the pre-training table, tune."""
    unlabeled = read_tsv(job.inputs["unlabeled"])
    excluded = read_tsv(job.inputs["excluded"])
    train = read_partition(job.inputs["train"], "train")
    tune = read_partition(job.inputs["tune"], "tune")
    table, counts = pretraining_table(unlabeled, excluded, train)
    check_table(table, str(job.inputs["unlabeled"]))
    spec = _spec(job, table, counts, ("unlabeled", "excluded", "train", "tune"))
    log.info(
        "pre-training on %d sequences (%d unlabeled, %d train; removed as homologues %s), "
        "input length %d",
        counts["total"],
        counts["unlabeled_used"],
        counts["train_used"],
        counts["unlabeled_removed"] or "none",
        spec["length"],
    )
    return spec, table, tune


def _spec(job: Job, table: Any, counts: dict[str, Any], data: tuple[str, ...]) -> dict[str, Any]:
    """What shapes training (`training.SHAPING`: the settings, the input length from the
    CNN's rule on the pre-training sequences, the inputs' SHA-256) and where it goes."""
    settings, length = job.settings, job.settings["length"]
    return {
        "dataset": job.dataset["name"],
        "sequence_type": job.dataset["sequence_type"],
        "pretrain": settings["pretrain"],
        "seed": int(settings["seed"]),
        "deterministic": bool(settings["deterministic"]),
        "length": encoding.choose_length(
            table["sequence"].str.len().tolist(), length["max_length"], length["length_quantile"]
        ),
        "counts": counts,
        "checkpoint_dir": str(Path(job.outputs["summary"]).parent / "checkpoint"),
        "data_sha256": {name: sha256_of(job.inputs[name]) for name in data},
    }


def prepare_supervised(job: Job) -> tuple[dict[str, Any], Any, Any]:
    """As `prepare`, for pretrain.from: the source's train partition (minus the
    homologues of the target's tune and test) with its labels and classes, and the
    source's tune partition to measure the trunk each epoch."""
    source = job.settings["source"]
    excluded = read_tsv(job.inputs["excluded"])
    train = read_partition(job.inputs["source_train"], "train")
    tune = read_partition(job.inputs["source_tune"], "tune")
    classes = read_classes(job.inputs["source_split_report"])
    table, counts = supervised_table(train, excluded, source)
    check_supervised(table, classes, str(job.inputs["source_train"]))
    names = ("source_train", "source_tune", "source_split_report", "excluded")
    spec = _spec(job, table, counts, names) | {"source": source, "classes": list(classes.names)}
    log.info(
        "supervised pre-training on %d train sequences of dataset '%s' (classes %s; removed "
        "as homologues of this dataset's tune or test %s), input length %d",
        counts["source_train_used"],
        source,
        spec["classes"],
        counts["source_train_removed"] or "none",
        spec["length"],
    )
    return spec, table, tune


def _supervised_summary(
    spec: dict[str, Any], history: list[dict[str, Any]], seconds: float, tune: Any
) -> dict[str, Any]:
    """summary.json of a supervised trunk: its source, how well it names the source's
    classes on the source's tune (against always naming tune's commonest class)."""
    return _shared_summary(spec, history, seconds) | {
        "kind": "supervised",
        "objective": f"supervised: the labels of dataset '{spec['source']}' (its train "
        "partition), through a global max over positions and a softmax over its classes",
        "source": {"dataset": spec["source"], "classes": spec["classes"]},
        "final_accuracy": history[-1]["accuracy"],
        "final_tune_accuracy": history[-1]["tune_accuracy"],
        "tune_commonest_class_share": float(tune["label"].value_counts(normalize=True).max()),
    }


def _shared_summary(
    spec: dict[str, Any], history: list[dict[str, Any]], seconds: float
) -> dict[str, Any]:
    """What every trunk's summary.json says, whatever it learned from: the sequences,
    architecture and input it was built for, its training, and how to load it."""
    return {
        "dataset": spec["dataset"],
        "sequences": spec["counts"],
        "architecture": {key: spec["pretrain"][key] for key in ARCHITECTURE},
        "sequence_type": spec["sequence_type"],
        "alphabet": encoding.ALPHABETS[spec["sequence_type"]],
        "length": spec["length"],
        "epochs": len(history),
        "history": history,
        "seconds": seconds,
        "reproducibility": {"seed": spec["seed"], "deterministic": spec["deterministic"]},
        "device": device_description(),
        "load_with": LOAD_WITH,
    }


def _summary(
    spec: dict[str, Any], history: list[dict[str, Any]], seconds: float, tune_tokens: np.ndarray
) -> dict[str, Any]:
    """summary.json: what the trunk learned from, how well it guesses, and how to load it."""
    settings = spec["pretrain"]
    tune = mask(
        tune_tokens, settings["mask_fraction"], spec["sequence_type"], spec["seed"], TUNE_MASK_EPOCH
    )
    scored = tune.targets[tune.weights > 0]
    commonest = float(np.bincount(scored).max() / len(scored)) if len(scored) else None
    return _shared_summary(spec, history, seconds) | {
        "kind": "masked",
        "objective": "masked-residue prediction: hide a fraction of the positions (the "
        "'any letter' one-hot row), predict each hidden standard letter",
        "mask_fraction": settings["mask_fraction"],
        "final_masked_accuracy": history[-1]["masked_accuracy"],
        "final_tune_masked_accuracy": history[-1]["tune_masked_accuracy"],
        "tune_commonest_letter_share": commonest,
    }
