"""End to end: the real Snakefile on a tiny dataset in a temporary directory."""

from __future__ import annotations

import subprocess

import pytest
from conftest import REPO, SNAKEMAKE, run_workflow

from deeprules.io import read_json, read_tsv


def read_tsv_each(folder) -> dict[str, dict]:
    """Snakemake's benchmark rows (s, max_rss in MB, ...) by stage."""
    return {p.stem: read_tsv(p).iloc[0].to_dict() for p in folder.glob("*.tsv")}


@pytest.mark.slow
def test_tiny_workflow_runs_and_a_rerun_downloads_nothing(tiny_run):
    tiny_project, http_server = tiny_run
    results = tiny_project / "results" / "tiny"
    provenance = read_json(results / "fetch/provenance.json")
    assert [s["name"] for s in provenance["sources"]] == ["bound", "background"]
    assert all(s["pinned"] and len(s["sha256"]) == 64 for s in provenance["sources"])
    sequences = read_tsv(results / "curate/sequences.tsv")
    assert len(sequences) == 200 and set(sequences["label"]) == {"bound", "background"}
    assert (results / "logs/fetch.log").read_text().count("fetching source") == 2
    # every stage's wall time and peak memory, for a user sizing a larger run
    logged = {p.stem for p in (results / "logs").glob("*.log")}
    measured = read_tsv_each(results / "benchmarks")
    assert set(measured) == logged and all(float(row["s"]) > 0 for row in measured.values())
    assert all(float(measured[stage]["max_rss"]) > 0 for stage in ("split", "baselines", "cnn"))
    requests = len(http_server.requests)

    rerun = run_workflow(tiny_project)
    assert "Nothing to be done" in rerun.stdout + rerun.stderr
    assert len(http_server.requests) == requests


def test_lint_is_clean():
    """snakemake --lint, snakefmt and ruff: the style the project holds itself to."""
    lint = subprocess.run(
        [SNAKEMAKE, "--lint", "--cores", "1"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert lint.returncode == 0 and "Congratulations" in lint.stdout + lint.stderr, (
        lint.stdout + lint.stderr
    )
    bin_dir = SNAKEMAKE.rsplit("/", 1)[0]
    fmt = subprocess.run(
        [f"{bin_dir}/snakefmt", "--check", "Snakefile", "workflow/rules"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr
    ruff = subprocess.run(
        [f"{bin_dir}/ruff", "check", "workflow", "tests", "bench"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert ruff.returncode == 0, ruff.stdout + ruff.stderr
