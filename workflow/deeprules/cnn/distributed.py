"""Distributed tuning: one chief holding Keras Tuner's oracle and N workers running trials.

With `cnn.workers: N > 0` the stage process starts a CPU-only chief and N
workers (`python -m deeprules.cnn chief|worker JOB`) that talk over Keras
Tuner's gRPC oracle on a free port, once per round of the search. Workers
are local subprocesses, or, with
`cnn.worker_launcher` (e.g. "srun --ntasks=1 --exclusive"), that command
followed by the worker command. They share the tuner directory, so a resumed
search keeps every finished trial whichever worker ran it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from deeprules.cnn.job import die_with_parent, python_path
from deeprules.cnn.tuning import CNNHyperModel, make_tuner
from deeprules.io import write_json

log = logging.getLogger("deeprules.cnn")


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


def search_distributed(spec: dict[str, Any]) -> None:
    """One round: one chief (CPU only) and `workers` workers; returns when its trials are done.

    `spec` is the round's spec (`deeprules.cnn.growth.round_spec`); chief and
    workers read it from tuner/job_round_<n>.json. A worker that fails stops
    the whole search (the tuner directory keeps the finished trials for the rerun).
    """
    job_file = Path(spec["tuner_dir"]) / f"job_round_{spec['round']}.json"
    write_json(job_file, spec)
    cnn = spec["cnn"]
    host = oracle_host(cnn)
    port = free_port(host)
    base = {
        **os.environ,
        "KERASTUNER_ORACLE_IP": host,
        "KERASTUNER_ORACLE_PORT": str(port),
        "PYTHONPATH": python_path(),
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


def worker_threads(spec: dict[str, Any]) -> int:
    """Local workers split the rule's threads; launched ones (srun) use what they are given."""
    if spec["cnn"]["worker_launcher"]:
        return 0
    return max(1, spec["threads"] // spec["cnn"]["workers"])


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
