"""Benchmark: every baseline family with budget.trials trials on the default amp dataset.

Target (issue 6): all families x 30 trials in under 10 minutes on 2 cores.
Uses results/amp/split/{train,tune}.tsv and split_report.json when the split stage
has run; otherwise a random, stratified 70/15 split of
results/amp/curate/sequences.tsv (each sequence its own component, classes decided
as the split would), and says which.

    .venv/bin/python bench/baselines_bench.py [--trials 30] [--threads 2]

With --planted N [N ...] it measures large planted DNA sets instead (issue 20): per
family the tuned search, the final refit and interpret's permutation importance,
each in its own process with a time limit, in the affordable forms (defaults) and,
with --exact, with the size threshold out of reach (see bench/baselines_large.py).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml
from sklearn.model_selection import train_test_split

from deeprules.baselines import output_paths, run
from deeprules.config import baselines_settings, load_dataset, validate_run_config
from deeprules.contracts import decide_classes
from deeprules.io import read_json, read_tsv, setup_logging, write_tsv
from deeprules.rule import Job

REPO = Path(__file__).resolve().parent.parent


def partitions(workdir: Path, seed: int, positive: str | None) -> tuple[dict[str, Path], str]:
    """The split stage's train/tune/report if present, else a random 70/15 split of curated
    amp: the baselines rule's inputs, and where they came from."""
    split = REPO / "results/amp/split"
    names = {"train": "train.tsv", "tune": "tune.tsv", "split_report": "split_report.json"}
    if all((split / name).is_file() for name in names.values()):
        inputs = {key: split / name for key, name in names.items()}
        return inputs, "results/amp/split (homology split)"
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
    classes = decide_classes(train["label"], positive, "train")
    (workdir / "split_report.json").write_text(json.dumps(classes.to_json()))
    inputs = {key: workdir / name for key, name in names.items()}
    return inputs, "random 70/15 split of curated amp"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=None, help="default: budget.trials")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--planted", type=int, nargs="+", help="planted DNA set sizes")
    parser.add_argument("--exact", action="store_true", help="--planted: threshold out of reach")
    parser.add_argument("--families", nargs="+", help="--planted: these families only")
    parser.add_argument("--limit", type=float, default=300, help="--planted: seconds per family")
    parser.add_argument("--no-interpret", action="store_true", help="--planted: skip interpret")
    args = parser.parse_args()
    if args.planted:
        from baselines_large import benchmark_planted

        benchmark_planted(args)
        return
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    if args.trials:
        config["budget"]["trials"] = args.trials
    config = validate_run_config(config)
    dataset = load_dataset(REPO / "config/datasets/amp.yaml")
    with tempfile.TemporaryDirectory(prefix="baselines_bench_") as tmp:
        workdir = Path(tmp)
        setup_logging(workdir / "baselines.log")
        inputs, source = partitions(workdir, config["seed"], dataset.get("positive_class"))
        job = Job(
            inputs=inputs,
            outputs=output_paths(workdir / "out", config["baselines"]["families"]),
            settings=baselines_settings(config, dataset),
            threads=args.threads,
        )
        started, cpu_started = time.perf_counter(), time.process_time()
        run(job)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        summary = read_json(workdir / "out/summary.json")
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
