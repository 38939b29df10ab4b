"""Does the trials' subsample change what the report concludes?

    .venv/bin/python bench/subsample_verdicts.py [--sequences 5000] [--length 200]
        [--workdir DIR] [--seed 1] [--parallel] [--exact-families] [--set key=value ...]

Issue 20 asks that the shortcuts a large set takes leave every stage's result honest:
the same verdicts as an unsubsampled run. This script makes one planted
promoter-spacing set (bench/end_to_end.py's task) and runs the whole workflow on it
twice with the default config but for two thresholds:

- all of train: `budget.trial_subsample.above_sequences` above the set's size, so
  every trial fits on all of train;
- subsample: `budget.trial_subsample.above_sequences` at 2,000 (the smallest it may be
  with the default subsample of 2,000), so every trial (of every family and of the CNN)
  fits on the 2,000-sequence subsample.

Both runs set `baselines.large_data.above_sequences` to 1,000, so both fit the same
Nystroem-mapped RBF SVM (an exact SVC costs about 80 CPU-minutes of trials at 3,500 x
200 bp); `--exact-families` lifts it in the first run, so that run is exact in every
respect.

It prints every tip's verdict code from both scorecards, each model's test AUROC
side by side, and the per-stage times, and exits 1 when a verdict differs. `--parallel`
runs the two workflows at once on half the cores each (the verdicts do not depend on
the machine's load; the times then do).
"""

from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
from end_to_end import DATASET, model_table, run, stage_table, write_project

from deeprules.io import read_json  # importable once end_to_end has set the path

ABOVE_ALL = 10**9  # a threshold no set reaches
KERNEL_MAP = "baselines.large_data.above_sequences=1000"
FORMS = {
    "all of train": [f"budget.trial_subsample.above_sequences={ABOVE_ALL}", KERNEL_MAP],
    "subsample": ["budget.trial_subsample.above_sequences=2000", KERNEL_MAP],
}


def prepare(args: argparse.Namespace) -> dict[str, Path]:
    """One workdir per form, the same planted set in each."""
    workdirs = {}
    for form, settings in FORMS.items():
        if args.exact_families and form == "all of train":
            settings = [settings[0], f"baselines.large_data.above_sequences={ABOVE_ALL}"]
        workdir = args.workdir / form.replace(" ", "_")
        write_project(workdir, argparse.Namespace(**{**vars(args), "set": settings + args.set}))
        workdirs[form] = workdir
    return workdirs


def verdicts(results: Path) -> dict[int, str]:
    return {
        tip["tip"]: tip["verdict"] for tip in read_json(results / "report/scorecard.json")["tips"]
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=5000)
    parser.add_argument("--length", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--parallel", action="store_true")
    parser.add_argument("--exact-families", action="store_true")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/deeprules-subsample-verdicts"))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    workdirs = prepare(args)
    print(f"{args.sequences} x {args.length} bp; load {os.getloadavg()}")
    cores = max(1, args.cores // 2) if args.parallel else args.cores
    with ThreadPoolExecutor(max_workers=2 if args.parallel else 1) as pool:
        seconds = dict(
            zip(workdirs, pool.map(lambda w: run(w, cores), workdirs.values()), strict=True)
        )
    results = {form: workdir / "results" / DATASET for form, workdir in workdirs.items()}
    pd.set_option("display.width", 200)
    for form, folder in results.items():
        print(f"\n{form}: {seconds[form] / 60:.1f} min end to end")
        print(stage_table(folder).to_string(index=False))
    tips = pd.DataFrame({form: verdicts(folder) for form, folder in results.items()})
    tips["same"] = tips["all of train"] == tips["subsample"]
    print("\n" + tips.to_string())
    models = {form: model_table(folder).set_index("model") for form, folder in results.items()}
    side = pd.concat(
        {form: table[["test AUROC", "95% CI"]] for form, table in models.items()}, axis=1
    )
    print("\n" + side.to_string())
    print(f"load {os.getloadavg()}")
    sys.exit(0 if tips["same"].all() else 1)


if __name__ == "__main__":
    main()
