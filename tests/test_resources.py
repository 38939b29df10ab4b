"""Cluster requests sized from the data (deeprules.resources, issue 20).

Small runs must ask for exactly what the fixed SLURM profile asked for before
(its default-resources and set-resources, written out below); requests grow
with the data, never shrink, and scale with `attempt`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import REPO
from snakemake.iocontainers import InputFiles

from deeprules.resources import (
    COSTS,
    input_megabytes,
    memory_mb,
    runtime_minutes,
    stage_memory_mb,
    stage_runtime,
)

# (mem_mb, runtime minutes) per rule in workflow/profiles/slurm/config.yaml before sizing
FIXED = {"fetch": (2000, 30), "curate": (4000, 30), "split": (8000, 120), "cnn": (8000, 240)}
FIXED |= {"cnn_scratch": FIXED["cnn"], "pretrain": FIXED["cnn"]}  # rules added with the sizing
OLD_DEFAULT = (4000, 60)
# amp (the default dataset, ~4,600 peptides): data / other input MB of each stage's job
AMP = {
    "fetch": (0.0, 0.0),  # a package source: no local input
    "curate": (0.19, 0.0),
    "explore": (0.35, 0.07),
    "explore_gate": (0.01, 0.0),
    "split": (0.35, 0.0),
    "split_costs": (0.35, 0.2),  # and the graph's pairs
    "baselines": (0.28, 0.0),
    "cnn": (0.28, 0.0),
    "cnn_scratch": (0.28, 0.0),
    "pretrain": (0.5, 0.3),  # amp has no unlabeled source: a pool of a few thousand peptides
    "evaluate": (0.34, 38.0),
    "interpret": (0.06, 35.0),
    "report": (3.0, 0.0),
    "report_summary": (0.01, 0.0),
}
# 100,000 sequences of 500 bp: about 54 MB of sequences.tsv, 46 MB of train + tune
LARGE_MB = 54.0


def rule_stages() -> set[str]:
    """Every rule of the workflow's rule files."""
    text = "".join(path.read_text() for path in (REPO / "workflow" / "rules").glob("*.smk"))
    return set(re.findall(r"^rule (\w+):", text, flags=re.MULTILINE))


def test_every_rule_is_sized_by_its_own_model():
    assert rule_stages() == set(COSTS)
    for path in (REPO / "workflow" / "rules").glob("*.smk"):
        text = path.read_text()
        for stage in re.findall(r"^rule (\w+):", text, flags=re.MULTILINE):
            assert f'mem_mb=stage_memory_mb("{stage}")' in text, stage
            assert f'runtime=stage_runtime("{stage}")' in text, stage
    profile = (REPO / "workflow" / "profiles" / "slurm" / "config.yaml").read_text()
    assert not re.search(r"^set-resources:", profile, flags=re.MULTILINE), (
        "set-resources would replace the sized mem_mb/runtime of a rule"
    )


@pytest.mark.parametrize("stage", sorted(COSTS))
def test_small_runs_ask_for_what_the_fixed_profile_asked(stage):
    fixed_memory, fixed_minutes = FIXED.get(stage, OLD_DEFAULT)
    for data, other in [(0.0, 0.0), AMP[stage]]:
        assert memory_mb(stage, data, other, attempt=1) == fixed_memory
        assert runtime_minutes(stage, data, attempt=1) == fixed_minutes
    assert (COSTS[stage].floor_mb, COSTS[stage].floor_minutes) == (fixed_memory, fixed_minutes)


@pytest.mark.parametrize("stage", sorted(COSTS))
def test_requests_grow_with_the_data_and_scale_with_attempt(stage):
    sizes = [0.0, 0.1, 1.0, 5.0, 20.0, LARGE_MB, 200.0, 1000.0, 5000.0]
    memory = [memory_mb(stage, size, size, 1) for size in sizes]
    minutes = [runtime_minutes(stage, size, 1) for size in sizes]
    assert memory == sorted(memory) and minutes == sorted(minutes)
    cost = COSTS[stage]
    if cost.mb_per_data_mb or cost.mb_per_other_mb:
        assert memory[-1] > memory[0]
    if cost.minutes_per_data_mb:
        assert minutes[-1] > minutes[0]
    for attempt in (2, 3):
        assert memory_mb(stage, LARGE_MB, 1.0, attempt) == attempt * memory_mb(
            stage, LARGE_MB, 1.0, 1
        )
        assert runtime_minutes(stage, LARGE_MB, attempt) == attempt * runtime_minutes(
            stage, LARGE_MB, 1
        )


def test_a_large_dna_set_asks_for_more_than_the_old_defaults():
    """100,000 x 500 bp: the stages that died of 4 GB / 1 h (issue 20) get more."""
    train_and_tune = 46.0
    assert memory_mb("baselines", train_and_tune, 0, 1) > 4000 * 3  # beyond every old retry
    assert runtime_minutes("baselines", train_and_tune, 1) > 60 * 3
    assert runtime_minutes("split", LARGE_MB, 1) > 120 * 3
    assert runtime_minutes("cnn", train_and_tune, 1) > 240 * 3
    assert runtime_minutes("explore", LARGE_MB, 1) > 60


def sized(tmp_path: Path, megabytes: dict[str, float]) -> dict[str, str]:
    """Sparse files of the given sizes (their length counts, not their blocks)."""
    paths = {}
    for name, size in megabytes.items():
        path = tmp_path / f"{name}.tsv"
        with open(path, "wb") as handle:
            handle.truncate(int(size * 1_000_000))
        paths[name] = str(path)
    return paths


def test_rule_callables_read_the_named_inputs_and_the_attempt(tmp_path):
    files = sized(tmp_path, {"train": 30.0, "tune": 10.0, "split_report": 0.001})
    job_input = InputFiles(fromdict=files)
    assert input_megabytes("baselines", job_input) == pytest.approx((40.0, 0.001))
    memory = stage_memory_mb("baselines")(None, input=job_input, attempt=2)
    assert memory == 2 * (2000 + 250 * 40)  # x attempt 2; split_report is not data
    assert stage_runtime("baselines")(None, input=job_input, attempt=1) == 20 * 40

    models = sized(tmp_path, {"knn": 2000.0, "forest": 500.0})  # what evaluate loads
    evaluate_input = InputFiles(
        fromdict={"test": files["tune"], "train": files["train"], "models": list(models.values())}
    )
    data, other = input_megabytes("evaluate", evaluate_input)
    assert (data, other) == pytest.approx((40.0, 2500.0))
    memory = stage_memory_mb("evaluate")(None, input=evaluate_input, attempt=1)
    assert memory == 1000 + 20 * 40 + 2 * 2500


def test_pretrain_is_sized_by_the_sequences_it_learns_from_either_kind(tmp_path):
    """Masked residues learn from the unlabeled pool and train; a supervised trunk
    (pretrain.from) from the source dataset's train; a job with neither is an error."""
    masked = sized(tmp_path, {"unlabeled": 50.0, "train": 10.0, "tune": 5.0})
    assert input_megabytes("pretrain", InputFiles(fromdict=masked)) == pytest.approx((60.0, 5.0))
    supervised = sized(tmp_path, {"source_train": 20.0, "source_tune": 4.0, "excluded": 0.5})
    data, other = input_megabytes("pretrain", InputFiles(fromdict=supervised))
    assert (data, other) == pytest.approx((20.0, 4.5))
    with pytest.raises(KeyError, match="none of its data inputs"):
        input_megabytes("pretrain", InputFiles(fromdict={"excluded": supervised["excluded"]}))


def test_curate_is_sized_by_the_fetched_files_in_provenance(tmp_path):
    provenance = tmp_path / "provenance.json"
    sources = [{"name": "a", "size": 150_000_000}, {"name": "b", "size": 50_000_000}]
    provenance.write_text(json.dumps({"sources": sources}))
    job_input = InputFiles(fromdict={"provenance": str(provenance)})
    assert input_megabytes("curate", job_input)[0] == pytest.approx(200.0)
    assert stage_memory_mb("curate")(None, input=job_input, attempt=1) == 1000 + 20 * 200
    assert stage_runtime("curate")(None, input=job_input, attempt=1) == 100


def test_a_missing_input_names_itself_so_snakemake_asks_again_later(tmp_path):
    """Snakemake treats a FileNotFoundError naming one of the inputs as "not known yet"
    (<TBD> in a dry run) and evaluates the request again when the job is ready."""
    missing = str(tmp_path / "train.tsv")
    job_input = InputFiles(fromdict={"train": missing, "tune": missing})
    with pytest.raises(FileNotFoundError) as error:
        stage_memory_mb("cnn")(None, input=job_input, attempt=1)
    assert error.value.filename == missing
    with pytest.raises(KeyError, match="no cost model for stage 'typo'"):
        stage_runtime("typo")
