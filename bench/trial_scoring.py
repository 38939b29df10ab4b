"""What a baseline trial's scoring on tune costs, on all of tune and on the trials' sample.

Above `budget.trial_subsample.above_sequences` every trial fits 2,000 training
sequences, but it is scored on tune, which grows with N: at 100,000 x 500 bp tune
holds 15,000 sequences and a kNN trial compares each of them with its references.
Above `budget.trial_subsample.tune_sequences` (3,000) the trials are scored on a
class-stratified sample of tune instead. This runs the same seeded trials of each
family (the stage's own `tune_family`, forms decided for a training set of
`--train-sequences`) once scored on all of tune and once on the sample, on the
planted promoter-spacing task of bench/end_to_end.py (no k-mer count sees it) or
(`--task motif`) a planted TATAAT that k-mer models learn, and prints the time of each, the
largest difference between a trial's AUROC on the sample and on all of tune, and
whether both chose the same configuration.

    .venv/bin/python bench/trial_scoring.py --tune 15000 --trials 5
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import optuna

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from planted import planted_table  # noqa: E402
from planted_interaction import planted_interaction_table  # noqa: E402

from deeprules.baselines.fitting import Encoded, encode  # noqa: E402
from deeprules.baselines.settings import (  # noqa: E402
    baseline_settings,
    feature_maker,
    for_training_set,
)
from deeprules.baselines.tuning import tune_family  # noqa: E402
from deeprules.config import baselines_settings, validate_run_config  # noqa: E402
from deeprules.contracts import decide_classes  # noqa: E402
from deeprules.sampling import trial_tune_rows  # noqa: E402

FAMILIES = ("knn", "rbf_svm", "hist_gradient_boosting", "random_forest", "logistic_regression")


def tables(args: argparse.Namespace) -> tuple[Encoded, object, object]:
    """The trials' training rows and all of tune, encoded as the stage encodes them."""
    n = args.train + args.tune
    if args.task == "motif":
        table = planted_table(n, args.seed, {"decoy": None, "promoter": "TATAAT"}, args.length)
    else:
        table = planted_interaction_table(n, args.seed, length=args.length)
    train, tune = table.iloc[: args.train], table.iloc[args.train :]
    config = validate_run_config({"datasets": ["planted"], "seed": args.seed})
    settings = baseline_settings(baselines_settings(config, {"sequence_type": "dna"}), 1)
    data = encode(feature_maker(settings), train, tune)
    per_row = data.train_nonzeros / args.train
    settings = for_training_set(settings, args.train_sequences, int(per_row * args.train_sequences))
    classes = decide_classes(train["label"], "promoter", "train")
    return data, replace(settings, trials=args.trials), classes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=int, default=2000, help="rows every trial fits")
    parser.add_argument("--tune", type=int, default=15000, help="tune sequences")
    parser.add_argument("--sample", type=int, default=3000, help="tune_sequences")
    parser.add_argument("--train-sequences", type=int, default=70000, help="for the forms")
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--length", type=int, default=500)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--families", nargs="+", default=list(FAMILIES))
    parser.add_argument("--task", choices=("spacing", "motif"), default="spacing")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data, settings, classes = tables(args)
    rows = trial_tune_rows(data.tune_y, {"tune_sequences": args.sample}, args.seed)
    sampled = data.with_tune_rows(rows)
    print(
        f"{args.train:,} training rows per trial; tune {len(data.tune_y):,} or a sample of "
        f"{len(sampled.tune_y):,}; {args.trials} trials per family; forms for "
        f"{args.train_sequences:,} training sequences; {args.task} task"
    )
    print(
        f"{'family':<24} {'all of tune s':>13} {'sample s':>9} {'x':>5} "
        f"{'max |dAUROC|':>13} {'same choice':>11} {'AUROCs (all of tune)':>21}"
    )
    for name in args.families:
        runs = []
        for tables_used in (data, sampled):
            started = time.perf_counter()
            best, trials = tune_family(name, tables_used, classes, settings)
            runs.append((time.perf_counter() - started, best, [t["auroc"] for t in trials]))
        (full_s, full_best, full), (sample_s, sample_best, sample) = runs
        gap = max(abs(a - b) for a, b in zip(full, sample, strict=True))
        print(
            f"{name:<24} {full_s:>13.1f} {sample_s:>9.1f} {full_s / sample_s:>5.1f} "
            f"{gap:>13.4f} {full_best == sample_best!s:>11} "
            f"{min(full):>10.3f}-{max(full):.3f}"
        )


if __name__ == "__main__":
    main()
