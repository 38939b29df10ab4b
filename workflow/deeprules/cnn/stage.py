"""The stage's two halves: `run(job)` in the rule's process, `run_search(job_file)` in its child.

`run` checks the inputs, encodes partitions too big for memory into token files
(`streaming`) and checks that the smallest network can learn at all
(`learning_check`) before any tuning; the child searches in rounds (`growth`),
writes the outputs and removes the token files.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

from deeprules.cnn.data import load_partitions
from deeprules.cnn.distributed import search_distributed
from deeprules.cnn.growth import search_in_rounds
from deeprules.cnn.job import configure_tensorflow, prepare_spec, run_child, write_job_file
from deeprules.cnn.learning_check import check_it_can_learn
from deeprules.cnn.outputs import write_outputs
from deeprules.cnn.streaming import remove_stored
from deeprules.cnn.tuning import read_trials, reuse_or_reset, search
from deeprules.io import read_json
from deeprules.rule import Job

log = logging.getLogger("deeprules.cnn")


def run(job: Job) -> None:
    """Rule entry point: check inputs, then run the stage in a child with PYTHONHASHSEED set.

    PYTHONHASHSEED only takes effect when Python starts, hence the child. Its
    output (Keras epoch lines, tuner progress) is appended to the rule log.
    """
    # the GPUs this job was given (a cluster sets it; the SLURM test reads this line)
    log.info("CUDA_VISIBLE_DEVICES=%s", os.environ.get("CUDA_VISIBLE_DEVICES", ""))
    spec = prepare_spec(job)
    plan = spec["input"]
    log.info(
        "input: %s (one-hot %.1f MB, cnn.in_memory_max_mb %s)",
        plan["path"],
        plan["one_hot_mb"],
        plan["in_memory_max_mb"],
    )
    if plan["streamed"]:  # encoded once, here, before any other process reads the files
        load_partitions(spec)
    spec["learning_check"] = check_it_can_learn(spec)
    job_file = write_job_file(spec)
    log.info("running the cnn stage in a child process: %s", job_file)
    run_child([sys.executable, "-m", "deeprules.cnn", "stage", str(job_file)], spec, job.log)


def run_search(job_file: Path) -> None:
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
        search_in_rounds(spec, search_distributed)
    else:
        search_in_rounds(spec, search)
    search_seconds = time.perf_counter() - started
    write_outputs(spec, search_seconds, resumed)
    remove_stored(spec["input"])
