"""A real one-node SLURM cluster on 127.0.0.1 for the integration test.

munged, slurmctld and slurmd from Debian's `munge` and `slurm-wlm`, all state,
spool and log files under one directory, no accounting database. The node
declares one GPU (gres `gpu` backed by /dev/null) so that GPU requests are
scheduled, and exposed to the job as CUDA_VISIBLE_DEVICES, on a machine
without one. Daemons are started in the foreground as children and stopped by
their PID.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

PARTITION = "debug"
PROGRAMS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "sinfo", "srun")


class ClusterUnavailable(RuntimeError):
    """SLURM is not installed here or its daemons did not come up."""


def missing_programs() -> list[str]:
    """The SLURM and munge programs that are not installed."""
    search = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    return [name for name in PROGRAMS if shutil.which(name, path=search) is None]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def node_memory_mb() -> int:
    """Physical memory minus 1 GiB for the system: what a job may ask for."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024 - 1024
    raise ClusterUnavailable("no MemTotal in /proc/meminfo")


def slurm_conf(root: Path, host: str, cpus: int, memory_mb: int, ports: tuple[int, int]) -> str:
    """slurm.conf for one controller and one GPU node on this host.

    No cgroups (proctrack/linuxproc, task/none), so the daemons run in a
    container and no cgroup.conf is needed.

    MinJobAge keeps finished jobs visible to `squeue`/`scontrol` for an hour:
    without an accounting database that is the only place a job's final state
    lives, and the Snakemake SLURM plugin falls back to `sacct` when MinJobAge
    is shorter than three status-check intervals.
    """
    return f"""\
ClusterName=deeprules-test
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ports[0]}
SlurmdPort={ports[1]}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root}/munge/munge.socket
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/run/slurmctld.pid
SlurmdPidFile={root}/run/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
SlurmctldDebug=debug
SlurmdDebug=debug
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
GresTypes=gpu
ReturnToService=2
MinJobAge=3600
KillWait=5
InactiveLimit=0
DefMemPerCPU=1000
MailProg=/bin/true
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} Gres=gpu:1 State=UNKNOWN
PartitionName={PARTITION} Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


def gres_conf(host: str) -> str:
    """One GPU that is /dev/null: SLURM schedules it and sets CUDA_VISIBLE_DEVICES."""
    return f"AutoDetect=off\nNodeName={host} Name=gpu File=/dev/null\n"


def srun_wrapper(conf: Path, srun: str) -> str:
    """srun that finds this cluster's slurm.conf inside a job.

    The plugin's jobstep (snakemake-executor-plugin-slurm-jobstep 0.6.1) removes
    every SLURM_* variable, SLURM_CONF included, before it calls srun; a real
    cluster keeps slurm.conf at the compiled-in path or runs configless, this
    one keeps it in a temporary directory.
    """
    return f'#!/bin/sh\nSLURM_CONF={conf} exec {srun} "$@"\n'


@dataclass
class Cluster:
    """A running cluster: `env` points SLURM's client commands at it."""

    root: Path
    env: dict[str, str]
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def controller_log(self) -> Path:
        return self.root / "log" / "slurmctld.log"

    def run(self, *command: str) -> str:
        """A SLURM client command against this cluster; its stdout."""
        result = subprocess.run(
            command, env=self.env, capture_output=True, text=True, timeout=30, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {result.stderr.strip()}")
        return result.stdout

    def job(self, job_id: str) -> dict[str, str]:
        """`scontrol show job` as a dict of its KEY=VALUE fields."""
        fields: dict[str, str] = {}
        for token in self.run("scontrol", "-o", "show", "job", job_id).split():
            key, _, value = token.partition("=")
            fields[key] = value
        return fields

    def stop(self) -> None:
        """Stop the daemons this cluster started, newest first, by their PID."""
        for name, process in reversed(list(self.processes.items())):
            if process.poll() is None:
                os.kill(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.kill(process.pid, signal.SIGKILL)
                    process.wait()
            self.processes.pop(name)


def _wait_for(
    condition: Callable[[], bool], what: str, cluster: Cluster, timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, process in cluster.processes.items():
            if process.poll() is not None:
                raise ClusterUnavailable(f"{name} exited with {process.returncode}{_logs(cluster)}")
        if condition():
            return
        time.sleep(0.5)
    raise ClusterUnavailable(f"timed out waiting for {what}{_logs(cluster)}")


def _logs(cluster: Cluster) -> str:
    tails = []
    for log in sorted((cluster.root / "log").iterdir()):
        tails.append(f"\n--- {log.name} ---\n" + "\n".join(log.read_text().splitlines()[-15:]))
    return "".join(tails)


def _node_is_idle(cluster: Cluster) -> bool:
    try:
        return cluster.run("sinfo", "--noheader", "--format=%t").strip() == "idle"
    except (RuntimeError, subprocess.TimeoutExpired):
        return False


def start_cluster(root: Path) -> Cluster:
    """Write the configuration under `root`, start munged, slurmctld and slurmd.

    Raises ClusterUnavailable (with the daemons' log tails) when the programs
    are missing or the node does not come up idle; whatever started is stopped.
    """
    missing = missing_programs()
    if missing:
        raise ClusterUnavailable(f"not installed: {', '.join(missing)}")
    if os.geteuid() != 0:
        raise ClusterUnavailable("slurmd starts jobs only when it runs as root")
    host = socket.gethostname().split(".")[0]
    for sub in ("munge", "state", "spool", "run", "log", "etc", "bin"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    os.chmod(root / "munge", 0o700)
    key = root / "munge" / "munge.key"
    key.write_bytes(secrets.token_bytes(1024))
    os.chmod(key, 0o400)
    conf = root / "etc" / "slurm.conf"
    ports = (free_port(), free_port())
    conf.write_text(slurm_conf(root, host, os.cpu_count() or 1, node_memory_mb(), ports))
    (root / "etc" / "gres.conf").write_text(gres_conf(host))

    wrapper = root / "bin" / "srun"
    wrapper.write_text(srun_wrapper(conf, shutil.which("srun")))
    wrapper.chmod(0o755)

    env = {**os.environ, "SLURM_CONF": str(conf)}
    env["PATH"] = f"{root / 'bin'}:{env.get('PATH', '')}:/usr/sbin:/sbin"
    for variable in [name for name in env if name.startswith(("SLURM_", "SBATCH_", "SRUN_"))]:
        if variable != "SLURM_CONF":
            env.pop(variable)
    cluster = Cluster(root, env)
    commands = {
        "munged": [
            "munged",
            "--foreground",
            "--force",
            f"--socket={root}/munge/munge.socket",
            f"--key-file={key}",
            f"--pid-file={root}/run/munged.pid",
            f"--log-file={root}/log/munged.log",
            f"--seed-file={root}/munge/munged.seed",
        ],
        "slurmctld": ["slurmctld", "-D", "-i", "-f", str(conf)],
        "slurmd": ["slurmd", "-D", "-f", str(conf)],
    }
    try:
        for name, command in commands.items():
            with (root / "log" / f"{name}.out").open("w") as output:
                cluster.processes[name] = subprocess.Popen(
                    command,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            if name == "munged":
                _wait_for((root / "munge/munge.socket").exists, "munged", cluster, 20)
        _wait_for(lambda: _node_is_idle(cluster), "the node to become idle", cluster)
    except BaseException:
        cluster.stop()
        raise
    return cluster
