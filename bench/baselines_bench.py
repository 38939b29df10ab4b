"""Benchmark: every baseline family with budget.trials trials on the default amp dataset.

Target (issue 6): all families x 30 trials in under 10 minutes on 2 cores.
Uses results/amp/split/{train,tune}.tsv when the split stage has run; otherwise a
random, stratified 70/15 split of results/amp/curate/sequences.tsv (each
sequence its own component), and says which.

    .venv/bin/python bench/baselines_bench.py [--trials 30] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml
from sklearn.model_selection import train_test_split

from deeprules.baselines import run_baselines
from deeprules.config import load_dataset, validate_run_config
from deeprules.io import read_tsv, setup_logging, write_tsv

REPO = Path(__file__).resolve().parent.parent


def partitions(workdir: Path, seed: int) -> tuple[Path, Path, str]:
    """The split stage's train/tune if present, else a random 70/15 split of curated amp."""
    split = REPO / "results/amp/split"
    if (split / "train.tsv").is_file() and (split / "tune.tsv").is_file():
        return split / "train.tsv", split / "tune.tsv", "results/amp/split (homology split)"
    curated = read_tsv(REPO / "results/amp/curate/sequences.tsv")
    curated["component"] = curated["id"]
    train, rest = train_test_split(
        curated, train_size=0.70, stratify=curated["label"], random_state=seed
    )
    tune, _ = train_test_split(
        rest, train_size=0.5, stratify=rest["label"], random_state=seed
    )  # the other half stands in for test and is not used
    write_tsv(workdir / "train.tsv", train)
    write_tsv(workdir / "tune.tsv", tune)
    return workdir / "train.tsv", workdir / "tune.tsv", "random 70/15 split of curated amp"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=None, help="default: budget.trials")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    if args.trials:
        config["budget"]["trials"] = args.trials
    config = validate_run_config(config)
    dataset = load_dataset(REPO / "config/datasets/amp.yaml")
    with tempfile.TemporaryDirectory(prefix="baselines_bench_") as tmp:
        workdir = Path(tmp)
        setup_logging(workdir / "baselines.log")
        train, tune, source = partitions(workdir, config["seed"])
        started, cpu_started = time.perf_counter(), time.process_time()
        summary = run_baselines(train, tune, dataset, config, workdir / "out", args.threads)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        trials = read_tsv(workdir / "out/trials.tsv")
        ranked = read_tsv(workdir / "out/summary.tsv")
    trials["fit_seconds"] = trials["fit_seconds"].astype(float)
    per_family = trials.groupby("family", sort=False).agg(
        trials=("trial", "size"),
        tuning_fit_s=("fit_seconds", "sum"),
        slowest_fit_s=("fit_seconds", "max"),
    )
    columns = dict.fromkeys(["rank", summary["primary_metric"], "auroc", "auprc", "mcc"])
    table = ranked.set_index("model")[list(columns)]
    table = table.join(per_family, how="left").fillna({"trials": 0})
    print(f"data: {source}; {summary['partitions']}; {summary['features']['columns']} features")
    load = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} cores, no GPU; load average {load:.1f} at the end")
    print(pd.DataFrame(table).round(3).to_string())
    inflation = summary["random_split"]
    metric = summary["primary_metric"]
    print(
        f"random split: {inflation['family']} {metric} {inflation['random_split'][metric]:.3f} "
        f"vs {inflation['homology_split'][metric]:.3f} on this split"
    )
    shuffled = ", ".join(f"{x:.3f}" for x in summary["shuffled_control_aurocs"])
    print(
        f"shuffled-label control, tune AUROC per shuffle: {shuffled}; "
        f"warnings: {summary['warnings']}"
    )
    print(f"wall time: {wall:.0f} s ({wall / 60:.1f} min) for {config['budget']['trials']} trials")
    # Most of the work is single-threaded, so on 2 dedicated cores the wall time is at
    # most the CPU time; on a shared machine the wall time is inflated by other jobs.
    print(f"CPU time of this process: {cpu:.0f} s ({cpu / 60:.1f} min)")


if __name__ == "__main__":
    main()
