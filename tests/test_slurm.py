"""The SLURM profile against a real SLURM: munged, slurmctld and slurmd on 127.0.0.1.

One node with one (/dev/null) GPU and no accounting database, so job status
comes from squeue. Each test checks from SLURM's side (scontrol, the
controller's log) that every Snakemake job was an sbatch job, and that exactly
the jobs whose rule declares a `gpu` resource asked for a GPU and saw
CUDA_VISIBLE_DEVICES. Skipped, saying why, only where slurm-wlm and munge are
not installed (tests/install_infra.sh installs them as root) or the daemons do
not start.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from conftest import REPO, SNAKEMAKE, run_workflow
from slurm.cluster import PARTITION, Cluster, ClusterUnavailable, start_cluster

from deeprules.io import read_tsv
from deeprules.resources import memory_mb, runtime_minutes

PROFILE = REPO / "workflow" / "profiles" / "slurm"
# Without an accounting database sacct cannot answer: poll squeue, and early.
SLURM_OPTIONS = (
    "--profile",
    str(PROFILE),
    "--slurm-status-command",
    "squeue",
    "--slurm-init-seconds-before-status-checks",
    "5",
    "--slurm-keep-successful-logs",
)
# Threads as in the reference run (`--cores 2`), and never more than the node's CPUs:
# SLURM rejects a job asking for more CPUs than any node has.
NODE_LIMITS = ("--max-threads", str(min(2, os.cpu_count() or 1)))
JOB_HEADER = re.compile(r"^(localrule|rule) (\S+):$")
SUBMITTED = re.compile(r"Job (\d+) has been submitted with SLURM jobid (\d+) \(log: (.+)\)\.")
SEEN_DEVICES = re.compile(r"CUDA_VISIBLE_DEVICES=(\S+)")


@dataclass
class Attempt:
    """One submission of a job: the resources Snakemake gave it and its SLURM job."""

    resources: dict[str, str] = field(default_factory=dict)
    slurm_id: str | None = None
    slurm_log: Path | None = None


@dataclass
class Job:
    """One Snakemake job as the main process announced it, attempt by attempt."""

    rule: str
    local: bool
    logs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def last(self) -> Attempt:
        return self.attempts[-1]


def jobs_of_run(output: str) -> dict[str, Job]:
    """Snakemake jobs by job id, with their logs, outputs and attempts."""
    jobs: dict[str, Job] = {}
    announced: Job | None = None
    job: Job | None = None
    for line in output.splitlines():
        header = JOB_HEADER.match(line)
        if header:
            announced, job = Job(rule=header.group(2), local=header.group(1) == "localrule"), None
            continue
        if announced is not None and line.startswith("    "):
            key, _, value = line.strip().partition(": ")
            if key == "jobid":  # a retry announces the same job id again
                job = jobs.setdefault(value, announced)
                job.logs, job.outputs = announced.logs, announced.outputs
                job.attempts.append(Attempt())
            elif key == "log":
                announced.logs = value.split(", ")
            elif key == "output":
                announced.outputs = value.split(", ")
            elif key == "resources" and job is not None:
                job.last.resources = dict(item.split("=", 1) for item in value.split(", "))
            continue
        announced = None
        submitted = SUBMITTED.search(line)
        if submitted:
            attempt = jobs[submitted.group(1)].last
            attempt.slurm_id, attempt.slurm_log = submitted.group(2), Path(submitted.group(3))
    return jobs


def time_limit(minutes: int) -> str:
    """SLURM's rendering of a time limit given in minutes (under a day)."""
    return f"{minutes // 60:02d}:{minutes % 60:02d}:00"


def submissions(cluster: Cluster) -> int:
    """How many batch jobs the controller has accepted (sbatch calls that succeeded)."""
    return cluster.controller_log.read_text().count("_slurm_rpc_submit_batch_job: JobId=")


def assert_every_job_ran_under_slurm(
    jobs: dict[str, Job], cluster: Cluster, submitted_before: int
) -> None:
    """Each attempt of each job was one sbatch call that asked for the job's resources."""
    remote = [job for job in jobs.values() if not job.local]
    assert remote, "the run announced no jobs"
    attempts = [(job, attempt) for job in remote for attempt in job.attempts]
    not_submitted = sorted(job.rule for job, attempt in attempts if attempt.slurm_id is None)
    assert not not_submitted, f"jobs that never went through sbatch: {not_submitted}"
    assert submissions(cluster) - submitted_before == len(attempts)
    run_names = set()
    for job, attempt in attempts:
        record = cluster.job(attempt.slurm_id)
        final = attempt is job.last
        assert record["JobState"] == ("COMPLETED" if final else "FAILED"), (job.rule, record)
        assert record["Comment"].startswith(f"rule_{job.rule}"), (job.rule, record["Comment"])
        assert record["Partition"] == PARTITION
        # the profile's resources reach sbatch
        resources = attempt.resources
        assert record["MinMemoryNode"] == f"{resources['mem_mb']}M", job.rule
        assert record["TimeLimit"] == time_limit(int(resources["runtime"])), job.rule
        assert record["NumCPUs"] == resources["cpus_per_task"], job.rule
        assert attempt.slurm_log.exists(), f"no SLURM log for {job.rule}: {attempt.slurm_log}"
        run_names.add(record["JobName"])
    # The plugin names every job of a run after the run; squeue polls by that name.
    (run_name,) = run_names
    listed = cluster.run("squeue", "--states=all", "--noheader", "--format=%i", "--name", run_name)
    assert sorted(listed.split()) == sorted(attempt.slurm_id for _, attempt in attempts)


def assert_gpus_only_where_declared(jobs: dict[str, Job], cluster: Cluster, workdir: Path) -> int:
    """A job asks SLURM for a GPU, and sees one, exactly when its rule declares gpu > 0.

    Returns how many GPU jobs there were.
    """
    gpu_jobs = 0
    for job in jobs.values():
        if job.local:
            continue
        declared = int(job.last.resources.get("gpu", 0))
        requested = cluster.job(job.last.slurm_id).get("TresPerJob", "")
        logged = [
            match.group(1)
            for log in job.logs
            if (workdir / log).exists()
            for match in SEEN_DEVICES.finditer((workdir / log).read_text())
        ]
        if declared > 0:
            gpu_jobs += 1
            assert f"gpu:{declared}" in requested, (job.rule, requested)
            assert logged, f"{job.rule} declares gpu={declared} but logs no CUDA_VISIBLE_DEVICES"
            # the rule's own process logs first; its workers may see fewer devices
            assert len(logged[0].split(",")) == declared, (job.rule, logged)
        else:
            assert "gpu" not in requested, f"CPU rule {job.rule} asked SLURM for {requested}"
            assert not logged, f"CPU rule {job.rule} saw CUDA_VISIBLE_DEVICES={logged}"
    return gpu_jobs


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory) -> Iterator[Cluster]:
    try:
        cluster = start_cluster(tmp_path_factory.mktemp("slurm"))
    except ClusterUnavailable as error:
        pytest.skip(f"no SLURM test cluster ({error}); as root, tests/install_infra.sh installs it")
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith(("SLURM_", "SBATCH_", "SRUN_")):
                patch.delenv(name)
        patch.setenv("SLURM_CONF", cluster.env["SLURM_CONF"])
        patch.setenv("PATH", cluster.env["PATH"])
        try:
            yield cluster
        finally:
            cluster.stop()


def volatile(name: str) -> bool:
    """A field that differs between two correct runs: a time stamp, a duration, a host."""
    return (
        name.endswith(("_at", "_s", "_time"))
        or any(word in name for word in ("second", "timing"))
        or name in {"host", "hostname"}
    )


# A time stamp quoted inside a sentence (the reforms' provenance answers quote when each
# source was retrieved): the two runs fetch seconds apart.
TIME_STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:\d\d|Z)?")


def without_volatile(value: object) -> object:
    if isinstance(value, dict):
        return {k: without_volatile(v) for k, v in value.items() if not volatile(k)}
    if isinstance(value, list):
        return [without_volatile(v) for v in value]
    if isinstance(value, str):
        return TIME_STAMP.sub("<time>", value)
    return value


def comparable(path: Path) -> object:
    """An output's content, minus what legitimately differs between runs.

    Tables and JSON summaries are compared value by value; binary outputs
    (models, figures) only for being there, as their bytes carry time stamps.
    """
    if path.is_dir():
        return {str(p.relative_to(path)): comparable(p) for p in sorted(path.rglob("*"))}
    if path.suffix == ".json":
        return without_volatile(json.loads(path.read_text()))
    if path.suffix == ".tsv":
        table = read_tsv(path)
        return table[[c for c in table.columns if not volatile(c)]].to_dict("list")
    return path.is_file()


def outputs(jobs: dict[str, Job], workdir: Path) -> dict[str, object]:
    """Every output the run's jobs declared, comparable across runs."""
    return {
        output: comparable(workdir / output)
        for job in jobs.values()
        if not job.local
        for output in job.outputs
    }


def ask_for_one_gpu(workdir: Path) -> None:
    """Give the CNN one GPU (cnn.gpus), as a cluster user with GPU nodes would."""
    config_file = workdir / "config" / "config.yaml"
    config = yaml.safe_load(config_file.read_text())
    config.setdefault("cnn", {})["gpus"] = 1
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))


@pytest.mark.slow
def test_workflow_runs_through_sbatch_and_matches_a_local_run(
    tiny_project, slurm_cluster, tmp_path_factory
):
    ask_for_one_gpu(tiny_project)
    local = tmp_path_factory.mktemp("local")
    shutil.copytree(tiny_project / "config", local / "config")
    before = submissions(slurm_cluster)
    # The reference run works while the SLURM run mostly waits for its status polls.
    with ThreadPoolExecutor(max_workers=1) as background:
        reference = background.submit(run_workflow, local)
        run = run_workflow(tiny_project, *SLURM_OPTIONS, *NODE_LIMITS, timeout=900)
        reference.result()
    jobs = jobs_of_run(run.stdout + run.stderr)

    assert_every_job_ran_under_slurm(jobs, slurm_cluster, before)
    assert {job.rule for job in jobs.values()} >= {"fetch", "curate", "split", "cnn", "evaluate"}
    gpu_jobs = assert_gpus_only_where_declared(jobs, slurm_cluster, tiny_project)
    assert gpu_jobs == 1, "cnn.gpus: 1 did not reach the CNN rule's gpu resource"
    produced = outputs(jobs, tiny_project)
    assert any("sequences.tsv" in output for output in produced)
    assert produced == outputs(jobs, local)


def make_large_partitions(workdir: Path, train_mb: int) -> None:
    """big/train.tsv of `train_mb` MB (sparse: its length is what Snakemake measures)."""
    (workdir / "big").mkdir()
    with open(workdir / "big" / "train.tsv", "wb") as handle:
        handle.truncate(train_mb * 1_000_000)
    (workdir / "big" / "tune.tsv").write_text("")


def test_gpu_only_where_declared_and_retries_get_more_memory(slurm_cluster, tmp_path):
    # a baselines-sized job on 12 MB of train (~22,000 sequences of 500 bp)
    make_large_partitions(tmp_path, train_mb=12)
    before = submissions(slurm_cluster)
    probes = REPO / "tests" / "slurm" / "probes.smk"
    run = subprocess.run(
        [SNAKEMAKE, "--snakefile", str(probes), "--directory", str(tmp_path), *SLURM_OPTIONS],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-8000:]
    jobs = {job.rule: job for job in jobs_of_run(run.stdout + run.stderr).values()}

    assert_every_job_ran_under_slurm(jobs, slurm_cluster, before)
    assert assert_gpus_only_where_declared(jobs, slurm_cluster, tmp_path) == 1
    assert (tmp_path / "gpu.txt").read_text().strip() == "CUDA_VISIBLE_DEVICES=0"
    assert (tmp_path / "cpu.txt").read_text().strip() == "CUDA_VISIBLE_DEVICES="
    # the profile's retry: the same job again, with twice the memory
    memory = [int(attempt.resources["mem_mb"]) for attempt in jobs["retry_probe"].attempts]
    assert len(memory) == 2 and memory[1] == 2 * memory[0]
    assert (tmp_path / "retry.txt").read_text().strip() == str(memory[1])
    # resources sized from the data reach sbatch: more than the old fixed 4 GB / 1 h
    sized = jobs["sized_probe"].last
    expected_mb = memory_mb("baselines", 12.0, 0.0, 1)
    expected_minutes = runtime_minutes("baselines", 12.0, 1)
    assert int(sized.resources["mem_mb"]) == expected_mb > 4000
    assert int(sized.resources["runtime"]) == expected_minutes > 60
    record = slurm_cluster.job(sized.slurm_id)
    assert record["MinMemoryNode"] == f"{expected_mb}M"
    assert record["TimeLimit"] == time_limit(expected_minutes)
    assert (tmp_path / "sized.txt").read_text().split() == [
        str(expected_mb),
        str(expected_minutes),
    ]
