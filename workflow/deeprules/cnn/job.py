"""The job spec every process of the stage reads, and the processes' environment.

The rule's process checks the inputs and settings once and writes the job spec
(tuner/job.json): paths, the split's classes, the input length, the seed. It
then runs the stage in a child process, because PYTHONHASHSEED only takes
effect when Python starts; the child (and, with workers, its chief and
workers) read nothing but the spec. Threads, seeds and deterministic ops are
set here too, before TensorFlow runs its first op.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import platform
import signal
import subprocess
from pathlib import Path
from typing import Any

import keras
import pandas as pd
import tensorflow as tf

from deeprules import encoding
from deeprules.cnn.streaming import input_plan
from deeprules.contracts import read_classes, read_partition
from deeprules.io import InputError, read_json, sha256_of, write_json
from deeprules.rule import Job

log = logging.getLogger("deeprules.cnn")

PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # workflow/, where deeprules lives


def tuner_directory(outputs: dict[str, Any]) -> Path:
    """results/{dataset}/cnn/tuner/: beside the outputs but deliberately not one of them
    (Snakemake deletes a failed job's outputs; this folder lets a killed job resume)."""
    return Path(outputs["summary"]).parent / "tuner"


def prepare_spec(job: Job) -> dict[str, Any]:
    """Check the inputs and settings and fix what every process needs: the job spec."""
    cnn = _checked_settings(job.settings["cnn"])
    train = read_partition(job.inputs["train"], "train")
    tune = read_partition(job.inputs["tune"], "tune")
    classes = read_classes(job.inputs["split_report"])
    if len(classes.names) < 2:
        raise InputError(
            f"{job.inputs['split_report']}: only one class {list(classes.names)}; "
            "a classifier needs two or more"
        )
    dataset = job.dataset
    sequence_type = dataset["sequence_type"]
    rc = bool(cnn["reverse_complement"]) and sequence_type == "dna"
    if cnn["reverse_complement"] and not rc:
        log.warning(
            "cnn.reverse_complement applies to DNA only; %s is %s", dataset["name"], sequence_type
        )
    length = _input_length(cnn, train, tune)
    tuner_dir = tuner_directory(job.outputs)
    return {
        "dataset": dataset["name"],
        "sequence_type": sequence_type,
        "train": str(job.inputs["train"]),
        "tune": str(job.inputs["tune"]),
        "outputs": {key: str(value) for key, value in job.outputs.items()},
        "tuner_dir": str(tuner_dir),
        "threads": int(job.threads),
        "seed": int(job.settings["seed"]),
        "deterministic": bool(job.settings["deterministic"]),
        "trials": int(job.settings["trials"]),
        "trial_subsample": dict(job.settings["trial_subsample"]),
        "cnn": cnn,
        "classes": list(classes.names),
        "positive_class": classes.positive,
        **length,
        "input": input_plan(
            cnn, len(train) + len(tune), length["length"], sequence_type, tuner_dir
        ),
        "reverse_complement": rc,
        "data_sha256": {
            "train": sha256_of(job.inputs["train"]),
            "tune": sha256_of(job.inputs["tune"]),
        },
        "model": job.settings["model"],  # cnn, or cnn_scratch beside a pre-trained search
        "trunk": _trunk(job),
    }


def _trunk(job: Job) -> dict[str, Any] | None:
    """The pre-trained trunk the search may start from (Tip 5), or None: its file, the
    CNN hyperparameters it fixes (its convolutions, no pooling) and what the search may
    do with it (cnn_settings passes `pretrain` only to a dataset with pre-training)."""
    if "trunk" not in job.inputs:
        return None
    architecture = read_json(job.inputs["pretrain_summary"])["architecture"]
    return {
        "path": str(job.inputs["trunk"]),
        "sha256": sha256_of(job.inputs["trunk"]),
        "values": {**architecture, "pool_size": 1},
        **job.settings["pretrain"],
    }


def _checked_settings(cnn: dict[str, Any]) -> dict[str, Any]:
    """The cnn section with its ranges checked; min_epochs capped at max_epochs."""
    for key in ("dropout", "l2", "learning_rate"):
        low, high = cnn["search_space"][key]
        if low > high:
            raise InputError(
                f"config key 'cnn.search_space.{key}': a range is [low, high], got [{low}, {high}]"
            )
    if cnn["min_epochs"] > cnn["max_epochs"]:  # a short max_epochs (e.g. a quick test run) wins
        log.warning(
            "cnn.min_epochs %d > cnn.max_epochs %d: min_epochs taken as %d",
            cnn["min_epochs"],
            cnn["max_epochs"],
            cnn["max_epochs"],
        )
        cnn = {**cnn, "min_epochs": cnn["max_epochs"]}
    return cnn


def _input_length(cnn: dict[str, Any], train: pd.DataFrame, tune: pd.DataFrame) -> dict[str, Any]:
    """The network's input length and where it came from.

    Train and tune lengths both: a homology split can put the longer sequences in
    tune (on amp, median 24 in train vs 55 in tune), and the quantile of train alone
    would then truncate many of the sequences the model is selected on.
    """
    lengths = pd.concat([train["sequence"], tune["sequence"]]).str.len().tolist()
    return {
        "length": encoding.choose_length(lengths, cnn["max_length"], cnn["length_quantile"]),
        "length_source": "cnn.max_length"
        if cnn["max_length"] is not None
        else f"quantile {cnn['length_quantile']} of train and tune lengths",
    }


def write_job_file(spec: dict[str, Any]) -> Path:
    """tuner/job.json, the one file the stage's child processes are started with."""
    tuner_dir = Path(spec["tuner_dir"])
    tuner_dir.mkdir(parents=True, exist_ok=True)
    job_file = tuner_dir / "job.json"
    write_json(job_file, spec)
    return job_file


def run_child(command: list[str], spec: dict[str, Any], log_file: Path | None) -> None:
    """Run `command` with the stage's environment, its output appended to the rule log."""
    root = logging.getLogger()
    files = [h for h in root.handlers if isinstance(h, logging.FileHandler)]
    for handler in files:  # the child appends to the same log; hand it over
        root.removeHandler(handler)
        handler.close()
    with contextlib.ExitStack() as stack:
        output = stack.enter_context(open(log_file, "a", encoding="utf-8")) if log_file else None
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
        where = log_file or "the output above"
        raise RuntimeError(f"the cnn stage failed (exit code {code}); see {where}")


def child_environment(spec: dict[str, Any]) -> dict[str, str]:
    """Environment of every process this stage starts: the package importable, hashes seeded."""
    env = {**os.environ, "PYTHONPATH": python_path()}
    if spec["deterministic"]:
        env["PYTHONHASHSEED"] = str(spec["seed"])
    return env


def python_path() -> str:
    """PYTHONPATH with this package first, so children import the same deeprules."""
    return os.pathsep.join(filter(None, [str(PACKAGE_ROOT), os.environ.get("PYTHONPATH")]))


def die_with_parent() -> None:
    """Ask Linux to kill this child when its parent dies (a SIGKILLed job leaves no orphans).

    Used as `preexec_fn`; a no-op where prctl is missing (macOS).
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


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
