"""Transfer-learning benchmark (Tip 5): does pre-training on unlabeled sequences help a
CNN that has few labels, and does any pre-training sequence homologous to tune or test
survive the split's filter?

    .venv/bin/python bench/pretrain_bench.py [--labels 100 300 1000] [--unlabeled 10000]
        [--trials 6] [--trials-at 300 30] [--motif M] [--conservation C] [--length LOW HIGH]
        [--seed 11] [--workdir DIR]

The planted few-label task of tests/planted.py (`few_label_task`), by default its
DEGENERATE_SITE variant: DNA of 300-400 bp, the label is whether a degenerate 20 bp
site occurs (each copy keeps each consensus letter with probability 0.75; planted.py
says why this is the task where few labels are too few). `--motif TGACTCAGCA --length
100 150 --conservation 1` is the exact-motif task of the first tables in
docs/benchmarks.md. The unlabeled pool comes from the same generator (half carry the
site), plus near-copies (5% substitutions) of every tenth labelled sequence, so the
filter has homologues of tune and test to remove. For each number of labels the
workflow's stage functions run directly, with the budgets printed under the table
(`--trials-at 300 30`: the 300-label row with 30 trials, the workflow's default
budget.trials): the split (homology, the default 0.8 threshold, which also lists the
pool's homologues of tune and test), the pretrain stage, the CNN search with the trunk
as an option and the same search without it (cnn_scratch), both scored on the test
partition, and a logistic regression on 1- to 5-mer counts (C chosen on tune) as the
baseline; "AUROC ideal" is the ideal detector's (letters matching the consensus in
the best window), the ceiling the planted task allows. The paired difference in test
AUROC (pre-trained CNN minus scratch CNN) has a 95% interval from 2,000 paired
bootstrap resamples of the test set. The filter is
judged by a fresh search with the split's own judge (deeprules.mmseqs exhaustive, exact
co-optimal identity, as the split's verification): no kept pool sequence may be at or
above the threshold to a tune or test sequence (tests/test_split_pretraining.py checks
the same against every pair's exact identity).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "workflow"))
sys.path.insert(0, str(REPO / "tests"))  # the planted task's generator

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from planted import DEGENERATE_SITE, consensus_matches, few_label_task  # noqa: E402
from planted_interaction import kmer_counts  # noqa: E402
from sklearn.metrics import roc_auc_score as auroc  # noqa: E402  (binary task)

from deeprules import (  # noqa: E402
    cnn,
    mmseqs,
    pretrain,
)
from deeprules.cnn import predict_proba  # noqa: E402
from deeprules.config import (  # noqa: E402
    cnn_scratch_settings,
    cnn_settings,
    pretrain_settings,
    split_settings,
    validate_run_config,
)
from deeprules.io import read_json, read_tsv, setup_logging, write_json, write_tsv  # noqa: E402
from deeprules.rule import Job  # noqa: E402
from deeprules.split import build_settings, split_dataset  # noqa: E402

CNN_OUTPUTS = ("model", "hyperparameters", "predictions", "trials", "curves", "summary")
SUFFIX = {"model": ".keras", "curves": ".png", "summary": ".json", "hyperparameters": ".json"}
DATASET = {
    "name": "planted",
    "sequence_type": "dna",
    "positive_class": "bound",
    "sources": [{"name": "pool", "kind": "local", "path": "pool.fa", "role": "unlabeled"}],
}


def near_copies(table: pd.DataFrame, rate: float, seed: int) -> pd.DataFrame:
    """Every tenth labelled sequence with about `rate` of its letters substituted."""
    rng = np.random.default_rng(seed)
    rows = []
    for record in table.iloc[::10].itertuples():
        letters = np.array(list(record.sequence))
        where = rng.random(len(letters)) < rate
        letters[where] = [rng.choice([b for b in "ACGT" if b != x]) for x in letters[where]]
        rows.append({"id": f"copy_{record.id}", "sequence": "".join(letters), "source": "copies"})
    return pd.DataFrame(rows)


def run_split(folder: Path, labelled: pd.DataFrame, pool: pd.DataFrame, config: dict) -> dict:
    names = ("train", "tune", "test", "assignments", "dropped", "pretrain_excluded")
    outputs = {name: folder / f"{name}.tsv" for name in names}
    outputs |= {"figure": folder / "figure.png", "pairs": folder / "pairs.tsv"}
    outputs["report"] = folder / "split_report.json"
    write_tsv(folder / "sequences.tsv", labelled[["id", "sequence", "label", "source"]])
    write_tsv(folder / "unlabeled.tsv", pool)
    settings = build_settings(split_settings(config, DATASET))
    split_dataset(folder / "sequences.tsv", settings, outputs, 2, folder, folder / "unlabeled.tsv")
    return outputs


def run_pretrain(folder: Path, split: dict, config: dict) -> dict:
    inputs = {
        "unlabeled": split["report"].parent / "unlabeled.tsv",
        "excluded": split["pretrain_excluded"],
        "train": split["train"],
        "tune": split["tune"],
    }
    outputs = {"trunk": folder / "trunk.keras", "summary": folder / "summary.json"}
    job = Job(inputs, outputs, pretrain_settings(config, DATASET), threads=2)
    return pretrain.run(job) | {"trunk_path": str(outputs["trunk"])}


def run_cnn(folder: Path, split: dict, config: dict, trunk: dict | None) -> dict:
    inputs = {key: split[key] for key in ("train", "tune")} | {"split_report": split["report"]}
    if trunk:
        inputs |= {
            "trunk": Path(trunk["trunk_path"]),
            "pretrain_summary": folder.parent / "pretrain/summary.json",
        }
    settings = (cnn_settings if trunk else cnn_scratch_settings)(config, DATASET)
    outputs = {name: folder / f"{name}{SUFFIX.get(name, '.tsv')}" for name in CNN_OUTPUTS}
    started = time.perf_counter()
    cnn.run(Job(inputs, outputs, settings, threads=2, log=folder / "cnn.log"))
    return {
        "summary": read_json(outputs["summary"]),
        "model": outputs["model"],
        "seconds": time.perf_counter() - started,
    }


def kmer_baseline(split: dict) -> np.ndarray:
    """Logistic regression on 1- to 5-mer counts, C chosen on tune; test scores."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    parts = {name: read_tsv(split[name]) for name in ("train", "tune", "test")}
    x = {
        n: np.hstack([kmer_counts(t["sequence"].tolist(), k) for k in range(1, 6)])
        for n, t in parts.items()
    }
    y = {n: (t["label"] == "bound").to_numpy() for n, t in parts.items()}
    scaler = StandardScaler().fit(x["train"])
    best = max(
        (
            LogisticRegression(C=c, max_iter=3000).fit(scaler.transform(x["train"]), y["train"])
            for c in (0.001, 0.01, 0.1, 1.0)
        ),
        key=lambda m: auroc(y["tune"], m.predict_proba(scaler.transform(x["tune"]))[:, 1]),
    )
    return best.predict_proba(scaler.transform(x["test"]))[:, 1]


def paired_interval(
    truth: np.ndarray, a: np.ndarray, b: np.ndarray, seed: int
) -> tuple[float, float, float]:
    """AUROC(a) - AUROC(b) on test and its 95% paired bootstrap interval (stratified)."""
    rng = np.random.default_rng(seed)
    positives, negatives = np.flatnonzero(truth), np.flatnonzero(~truth)
    differences = []
    for _ in range(2000):
        rows = np.r_[rng.choice(positives, len(positives)), rng.choice(negatives, len(negatives))]
        differences.append(auroc(truth[rows], a[rows]) - auroc(truth[rows], b[rows]))
    low, high = np.quantile(differences, [0.025, 0.975])
    return auroc(truth, a) - auroc(truth, b), float(low), float(high)


def filter_survivors(split: dict, config: dict) -> tuple[int, int]:
    """(kept pool sequences, of them at or above the threshold to tune or test), by a
    fresh search with the split's own judge (exhaustive, co-optimal identity: what the
    split's verification runs), not a re-reading of the split's ledger."""
    settings = build_settings(split_settings(config, DATASET))
    pool = read_tsv(split["report"].parent / "unlabeled.tsv")
    kept = pool[~pool["id"].isin(read_tsv(split["pretrain_excluded"])["id"])]
    held = pd.concat([read_tsv(split["tune"]), read_tsv(split["test"])])
    table = pd.concat(
        [
            kept[["id", "sequence"]].assign(group="pool"),
            held[["id", "sequence"]].assign(group="held"),
        ]
    )
    pairs = mmseqs.similar_pairs(
        table, *settings.homology, threads=2, exhaustive=True, between="group", co_optimal=True
    )
    return len(kept), len(set(pairs["query"]).union(pairs["target"]) & set(kept["id"]))


def one_size(workdir: Path, labels: int, args: argparse.Namespace, config: dict) -> dict:
    labelled, pool = few_label_task(
        labels,
        args.unlabeled,
        seed=args.seed,
        motif=args.motif,
        length=tuple(args.length),
        conservation=args.conservation,
    )
    pool = pd.concat([pool, near_copies(labelled, 0.05, args.seed)], ignore_index=True)
    folder = workdir / f"labels_{labels}"
    (folder / "split").mkdir(parents=True, exist_ok=True)
    split = run_split(folder / "split", labelled, pool, config)
    facts = read_json(split["report"])["pretraining"]
    trained = run_pretrain(folder / "pretrain", split, config)
    with_trunk = run_cnn(folder / "cnn", split, config, trained)
    scratch = run_cnn(folder / "cnn_scratch", split, config, None)
    test = read_tsv(split["test"])
    truth = (test["label"] == "bound").to_numpy()
    scores = {
        name: predict_proba(run["model"], test["sequence"].tolist(), run["summary"])[:, 1]
        for name, run in (("pretrained", with_trunk), ("scratch", scratch))
    }
    difference, low, high = paired_interval(
        truth, scores["pretrained"], scores["scratch"], args.seed
    )
    kept, survivors = filter_survivors(split, config)
    return {
        "labels": labels,
        "train/tune/test": "/".join(
            str(len(read_tsv(split[p]))) for p in ("train", "tune", "test")
        ),
        "pool removed (tune/test)": "{pretrain_homolog_of_tune}/{pretrain_homolog_of_test}".format(
            **facts["removed"]
        ),
        "survivors >= threshold": f"{survivors} of {kept}",
        "pretrain s": round(trained["seconds"], 1),
        "masked acc (tune)": round(trained["final_tune_masked_accuracy"], 3),
        "trunk choice": with_trunk["summary"]["pretrained"]["choice"],
        "AUROC pretrained": round(auroc(truth, scores["pretrained"]), 3),
        "AUROC scratch": round(auroc(truth, scores["scratch"]), 3),
        "AUROC k-mer LR": round(auroc(truth, kmer_baseline(split)), 3),
        "difference [95% CI]": f"{difference:+.3f} [{low:+.3f}, {high:+.3f}]",
        "cnn s (pre/scratch)": f"{with_trunk['seconds']:.0f}/{scratch['seconds']:.0f}",
        "trials": config["budget"]["trials"],
    }


def ideal_auroc(test_path: Path, motif: str) -> float:
    """Test AUROC of the ideal detector (letters matching the consensus in the best
    window): what the planted task allows at best, the ceiling of every model's AUROC."""
    test = read_tsv(test_path)
    scores = [consensus_matches(sequence, motif) for sequence in test["sequence"]]
    return round(auroc(test["label"] == "bound", scores), 3)


def run_config(args: argparse.Namespace, trials: int) -> dict:
    """The run config of one size: the stated short budgets, `trials` trials."""
    return validate_run_config(
        {
            "datasets": ["planted"],
            "seed": args.seed,
            "budget": {"trials": trials},
            "cnn": {
                "tuner": "random",
                "max_epochs": 10,
                "min_epochs": 3,
                "growth": {"enabled": False},
            },
            "pretrain": {"epochs": args.epochs},
        }
    )


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--labels", type=int, nargs="+", default=[100, 300, 1000])
    parser.add_argument("--unlabeled", type=int, default=10000)
    parser.add_argument("--trials", type=int, default=6, help="trials of each CNN search")
    parser.add_argument(
        "--trials-at",
        type=int,
        nargs=2,
        action="append",
        default=[],
        metavar=("LABELS", "TRIALS"),
        help="another number of trials for one size (repeatable)",
    )
    parser.add_argument("--epochs", type=int, default=8, help="pretrain.epochs")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--motif", default=DEGENERATE_SITE["motif"], help="the planted site")
    parser.add_argument(
        "--conservation",
        type=float,
        default=DEGENERATE_SITE["conservation"],
        help="probability a planted copy keeps each letter of the motif (1: exact)",
    )
    parser.add_argument(
        "--length", type=int, nargs=2, default=list(DEGENERATE_SITE["length"]), help="bp range"
    )
    parser.add_argument("--workdir", type=Path)
    return parser.parse_args()


def main() -> None:
    args = arguments()
    setup_logging()
    trials = dict(args.trials_at)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="pretrain-bench-"))
    rows = []
    for labels in args.labels:  # a finished size is kept in the workdir (rerun: only the rest)
        done = workdir / f"labels_{labels}" / "row.json"
        if not done.exists():
            config = run_config(args, trials.get(labels, args.trials))
            write_json(done, one_size(workdir, labels, args, config))
        row = {k: v for k, v in read_json(done).items() if k != "schema_version"}
        rows.append(row | {"AUROC ideal": ideal_auroc(done.parent / "split/test.tsv", args.motif)})
    print(
        f"\nbudget: trials per row in the table (random search, max 10 epochs, no growth; "
        f"the workflow default is 30 trials, Hyperband, growth); pretrain {args.epochs} "
        f"epochs; pool {args.unlabeled} + near-copies; motif {args.motif} (conservation "
        f"{args.conservation}), {args.length[0]}-{args.length[1]} bp; seed {args.seed}; "
        f"workdir {workdir}"
    )
    print(pd.DataFrame(rows).to_markdown(index=False))


if __name__ == "__main__":
    main()
