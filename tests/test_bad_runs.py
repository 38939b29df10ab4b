"""The bad-input corpus, whole runs: what Snakemake does before any job, with a changed
local file, with one bad dataset of two, and after a kill -9 (all slow: real runs)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, run_workflow, write_yaml
from test_bad_input import two_sources

pytestmark = pytest.mark.slow

# --- before any job, through Snakemake ------------------------------------------------


def small_project(folder: Path, datasets: dict[str, dict]) -> Path:
    (folder / "data").mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    for name in ("pos", "neg"):
        (folder / f"data/{name}.fa").write_text(
            "".join(
                f">{name}{i}\n{''.join(rng.choice('ACGT') for _ in range(40))}\n" for i in range(12)
            )
        )
    for name, dataset in datasets.items():
        write_yaml(folder / f"config/datasets/{name}.yaml", dataset)
    write_yaml(
        folder / "config/config.yaml",
        {"datasets": list(datasets), "budget": {"trials": 1}, "curate": {"min_per_class": 5}},
    )
    return folder


LOCAL = two_sources("data/pos.fa", "data/neg.fa")


def test_snakemake_blames_a_second_configfile_and_starts_no_job(tmp_path):
    project = small_project(tmp_path, {"toy": LOCAL})
    extra = write_yaml(tmp_path / "extra.yaml", {"split": {"fractions": {"train": 0.9}}})
    result = run_workflow(project, "--dry-run", "--configfile", str(extra), check=False)
    assert result.returncode != 0
    assert f"{extra}: key 'split.fractions' must sum to 1" in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


def test_snakemake_stops_before_any_job_on_a_missing_local_file(tmp_path):
    project = small_project(tmp_path, {"toy": two_sources("data/pos.fa", "data/gone.fa")})
    result = run_workflow(project, "--dry-run", check=False)
    assert result.returncode != 0
    assert "data/gone.fa" in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


def test_an_edited_local_file_reruns_fetch_and_everything_after(tmp_path):
    project = small_project(tmp_path, {"toy": LOCAL})
    run_workflow(project, "results/toy/curate/sequences.tsv")
    plan = run_workflow(project, "--dry-run", "results/toy/curate/sequences.tsv")
    assert "Nothing to be done" in plan.stdout + plan.stderr
    time.sleep(1.1)  # a newer modification time
    with open(project / "data/neg.fa", "a") as handle:
        handle.write(">extra\nACGTACGTAC\n")
    plan = run_workflow(project, "--dry-run", "results/toy/curate/sequences.tsv")
    assert "rule fetch" in plan.stdout and "rule curate" in plan.stdout


def test_one_bad_dataset_does_not_stop_the_other_and_is_named_last(tmp_path):
    project = small_project(
        tmp_path, {"good": LOCAL, "bad": two_sources("data/pos.fa", "data/bad.fa")}
    )
    (project / "data/bad.fa").write_bytes(b"\x00binary" * 10)
    result = run_workflow(
        project,
        "--profile",
        str(REPO / "workflow/profiles/local"),
        "results/good/curate/sequences.tsv",
        "results/bad/curate/sequences.tsv",
        check=False,
    )
    assert result.returncode != 0
    assert (project / "results/good/curate/sequences.tsv").exists()
    assert not (project / "results/bad/curate/sequences.tsv").exists()
    tail = (result.stdout + result.stderr).split("dataset(s) failed:")[-1]
    assert "bad: rule curate: data/bad.fa, line 1: binary data" in tail
    assert "without a failed job, run as far as they could: good" in tail


def test_a_killed_run_resumes_with_the_same_command(tmp_path):
    """kill -9 leaves Snakemake's lock; the stale-lock step removes it (no Snakemake runs
    here any more) and the rerun finishes."""
    project = small_project(tmp_path, {"toy": LOCAL})
    command = [
        str(Path(sys.executable).parent / "snakemake"),
        "--snakefile",
        str(REPO / "Snakefile"),
        "--cores",
        "1",
        "--profile",
        str(REPO / "workflow/profiles/local"),
        "results/toy/explore/checks.json",
    ]
    first = subprocess.Popen(
        command,
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    locks = project / ".snakemake/locks"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(locks.glob("*.lock")):
        time.sleep(0.1)
    time.sleep(2)
    os.killpg(first.pid, signal.SIGKILL)  # Snakemake and its job, as a crash would
    first.wait()
    assert list(locks.glob("*.lock")), "the kill must leave the lock behind"
    blocked = subprocess.run(command, cwd=project, capture_output=True, text=True)
    assert blocked.returncode != 0 and "cannot be locked" in blocked.stdout + blocked.stderr
    step = subprocess.run(
        [sys.executable, "-m", "deeprules.stale_lock"],
        cwd=project,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO / "workflow")},
    )
    assert "removed a stale Snakemake lock" in step.stderr
    resumed = subprocess.run(command, cwd=project, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert (project / "results/toy/explore/checks.json").exists()
