"""CNN stage benchmark: input-pipeline throughput, the default search on the default dataset,
and the default search on a planted interaction task.

    .venv/bin/python bench/cnn_bench.py [--skip-search] [--workdir DIR] [--amp-split DIR]
    .venv/bin/python bench/cnn_bench.py --planted [--baselines] [--workdir DIR]

1. Throughput: the same model trained for a few epochs (a) through the
   workflow's input path (tokens -> tf.data -> one-hot per batch, prefetched)
   and (b) by a plain `model.fit` on in-memory one-hot arrays; sequences/s per
   epoch, first epoch (graph tracing) excluded, median of the rest.
2. The whole stage with the default config (budget.trials = 30) on the
   default amp dataset: wall time, trials, tune AUROC.

3. `--planted`: the planted promoter-spacing task of tests/planted_interaction.py
   (2,100 train, 450 tune, 450 test sequences of 200 bp; only the spacing of two
   boxes that every sequence has carries the label). First a quick check that
   k-mers carry no label (logistic regression on 1- to 6-mer counts, C chosen on
   tune; `--baselines` also runs every tuned baseline family of
   deeprules.baselines), then the whole CNN stage with the default config and
   budget; its model is scored on the held-out test set with
   deeprules.cnn.predict_proba, and every round of the growing search is shown.

Data for 1-2: results/amp/split/{train,tune}.tsv (or `--amp-split DIR`) when the
workflow made them, else a seeded random 70/15 split of modlAMP's
AMPvsUniProt.csv (the test 15% unused).
"""

from __future__ import annotations

import argparse
import importlib.resources
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "workflow"))
sys.path.insert(0, str(REPO / "tests"))  # the planted task's generator

import keras  # noqa: E402
import keras_tuner as kt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402
from planted_interaction import kmer_counts, planted_interaction_table  # noqa: E402

from deeprules import cnn, encoding  # noqa: E402
from deeprules.cnn.data import Partition, input_pipeline, load_partitions  # noqa: E402
from deeprules.cnn.job import prepare_spec  # noqa: E402
from deeprules.cnn.model import build_model  # noqa: E402
from deeprules.config import cnn_settings, validate_run_config  # noqa: E402
from deeprules.contracts import Classes, decide_classes  # noqa: E402
from deeprules.io import read_json, read_tsv, setup_logging, write_json, write_tsv  # noqa: E402
from deeprules.metrics import auroc  # noqa: E402
from deeprules.rule import Job  # noqa: E402

DATASET = {"name": "amp", "sequence_type": "protein", "positive_class": "AMP"}
PLANTED = {"name": "planted", "sequence_type": "dna", "positive_class": "promoter"}
PLANTED_CLASSES = Classes(("decoy", "promoter"), "promoter")
MODEL = {"conv_blocks": 2, "filters": 32, "kernel_size": 9, "pool_size": 2, "batch_size": 64}


def amp_partitions(workdir: Path, split: Path) -> tuple[Path, Path, Path, str]:
    """train.tsv, tune.tsv, split_report.json and where they came from."""
    made = [split / name for name in ("train.tsv", "tune.tsv")]
    if all(path.exists() for path in made):
        report = workdir / "split_report.json"  # classes decided as the split decides them
        labels = read_tsv(made[0])["label"]
        write_json(report, decide_classes(labels, DATASET["positive_class"], "train").to_json())
        return *made, report, str(split)
    csv = importlib.resources.files("modlamp") / "data/AMPvsUniProt.csv"
    table = pd.read_csv(csv, skiprows=1, header=None, names=["sequence", "label"])
    table = table.assign(
        id=[f"amp{i}" for i in range(len(table))],
        label=table["label"].map({0: "UniProt", 1: "AMP"}),
        sequence=table["sequence"].str.upper(),
        source="modlamp",
    )
    order = np.random.default_rng(42).permutation(len(table))
    train, tune = (
        order[: int(0.7 * len(table))],
        order[int(0.7 * len(table)) : int(0.85 * len(table))],
    )
    paths = workdir / "train.tsv", workdir / "tune.tsv"
    for path, rows in zip(paths, (train, tune), strict=True):
        write_tsv(path, table.iloc[rows][["id", "sequence", "label", "source"]])
    report = workdir / "split_report.json"
    labels = read_tsv(paths[0])["label"]
    write_json(report, decide_classes(labels, DATASET["positive_class"], "train").to_json())
    return *paths, report, "random 70/15 split of modlAMP AMPvsUniProt.csv"


class EpochTimer(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.started)


def throughput(spec: dict, train: Partition, epochs: int) -> dict[str, float]:
    """Median sequences/s per epoch (first epoch excluded) for both input paths."""
    table = encoding.token_table(spec["sequence_type"])
    x = table[train.tokens]
    result = {}
    for path in ("workflow tf.data", "plain model.fit", "workflow tf.data", "plain model.fit"):
        hp = kt.HyperParameters()
        hp.values = dict(MODEL)
        keras.utils.set_random_seed(0)
        space = spec["cnn"]["search_space"]
        model = build_model(hp, spec["length"], table.shape[1], 2, space, True)
        timer = EpochTimer()
        if path == "plain model.fit":
            model.fit(x, train.targets, batch_size=64, epochs=epochs, callbacks=[timer], verbose=0)
        else:
            data = input_pipeline(train, table, 64, shuffle_seed=0)
            model.fit(data, epochs=epochs, callbacks=[timer], shuffle=False, verbose=0)
        rate = len(train.ids) / statistics.median(timer.seconds[1:])
        result[path] = max(result.get(path, 0.0), rate)  # best of two runs each
    return result


def stage_job(inputs: dict[str, Path], workdir: Path, dataset: dict) -> Job:
    """The cnn rule's job with the default config (config/config.yaml) and budget."""
    config = validate_run_config(yaml.safe_load((REPO / "config/config.yaml").read_text()))
    outputs = {
        name: workdir / "out" / f"{name}.out"
        for name in ("hyperparameters", "predictions", "trials", "summary")
    }
    outputs |= {"model": workdir / "out/model.keras", "curves": workdir / "out/curves.png"}
    return Job(
        inputs=inputs,
        outputs=outputs,
        settings=cnn_settings(config, dataset),
        threads=config["cnn"]["threads"],
        log=workdir / "cnn.log",
    )


def run_stage(job: Job) -> tuple[float, dict]:
    setup_logging()
    started = time.perf_counter()
    cnn.run(job)
    return time.perf_counter() - started, read_json(job.outputs["summary"])


def print_stage(name: str, seconds: float, summary: dict) -> None:
    print(
        "\n| stage | tuner | trials | rounds | wall time | search | refit | best trial tune AUC "
        "| final tune AUROC |\n|---|---|---|---|---|---|---|---|---|\n"
        f"| {name} | {summary['tuning']['tuner']} | {summary['tuning']['trials']} "
        f"| {len(summary['search']['rounds'])} | {seconds / 60:.1f} min "
        f"| {summary['tuning']['seconds'] / 60:.1f} min "
        f"| {summary['final_model']['seconds']:.0f} s | {summary['best_trial']['tune_auc']:.3f} "
        f"| {summary['final_model']['tune_auroc']:.3f} |"
    )
    print(
        "\n| round | trials | epochs (min-max) | best tune AUC | why this round |\n"
        "|---|---|---|---|---|"
    )
    for r in summary["search"]["rounds"]:
        best = "n/a" if r["best_tune_auroc"] is None else f"{r['best_tune_auroc']:.3f}"
        print(
            f"| {r['round']} | {r['trials']} | {r['min_epochs']}-{r['max_epochs']} | {best} "
            f"| {'; '.join(r['reasons'])} |"
        )
    field = summary["receptive_field"]
    print(
        f"chosen model: {summary['hyperparameters']}; receptive field {field['positions']} "
        f"of {field['input_length']} positions; load average {os.getloadavg()[0]:.1f}"
    )


def amp(args: argparse.Namespace, workdir: Path) -> None:
    train_path, tune_path, report_path, origin = amp_partitions(workdir, args.amp_split)
    inputs = {"train": train_path, "tune": tune_path, "split_report": report_path}
    job = stage_job(inputs, workdir, DATASET)
    spec = prepare_spec(job)
    train, _ = load_partitions(spec)
    print(f"data: {origin}; {len(train.ids)} train sequences, input length {spec['length']}")

    rates = throughput(spec, train, args.epochs)
    ratio = rates["workflow tf.data"] / rates["plain model.fit"]
    print("\n| input path | sequences/s per epoch |\n|---|---|")
    for path, rate in rates.items():
        print(f"| {path} | {rate:,.0f} |")
    print(f"| ratio workflow / plain | {ratio:.2f} |")
    if not args.skip_search:
        print_stage("cnn, default config, amp", *run_stage(job))
        print(f"log: {workdir / 'cnn.log'}")


def kmer_check(tables: dict[str, pd.DataFrame]) -> float:
    """Best tune AUROC of logistic regression on 1- to 6-mer counts (C chosen on tune)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    features = {
        name: np.hstack([kmer_counts(table["sequence"].tolist(), k) for k in range(1, 7)])
        for name, table in tables.items()
    }
    scaler = StandardScaler().fit(features["train"])
    best = 0.0
    for c in (0.001, 0.01, 0.1, 1.0):
        model = LogisticRegression(C=c, max_iter=2000).fit(
            scaler.transform(features["train"]), tables["train"]["label"] == "promoter"
        )
        scores = model.predict_proba(scaler.transform(features["tune"]))[:, 1]
        value = auroc(
            tables["tune"]["label"].tolist(),
            np.column_stack([1 - scores, scores]),
            PLANTED_CLASSES,
        )
        best = max(best, value)
    return best


def baselines_check(inputs: dict[str, Path], workdir: Path) -> pd.DataFrame:
    """Every tuned baseline family of deeprules.baselines on the planted train/tune."""
    from deeprules.baselines import output_paths
    from deeprules.baselines import run as run_baselines
    from deeprules.config import baselines_settings

    config = validate_run_config(yaml.safe_load((REPO / "config/config.yaml").read_text()))
    out = workdir / "baselines"
    job = Job(
        inputs=inputs,
        outputs=output_paths(out, config["baselines"]["families"]),
        settings=baselines_settings(config, PLANTED),
        threads=2,
    )
    run_baselines(job)
    return read_tsv(out / "summary.tsv")


def planted(args: argparse.Namespace, workdir: Path) -> None:
    sizes = {"train": (2100, 1), "tune": (450, 2), "test": (450, 3)}
    tables = {name: planted_interaction_table(n, seed) for name, (n, seed) in sizes.items()}
    inputs = {}
    for name in ("train", "tune"):
        inputs[name] = workdir / f"{name}.tsv"
        write_tsv(inputs[name], tables[name].assign(component=lambda t: t["id"]))
    inputs["split_report"] = workdir / "split_report.json"
    write_json(inputs["split_report"], PLANTED_CLASSES.to_json())
    print(f"data: planted promoter spacing, {sizes} (n, seed) of 200 bp")
    print(
        f"k-mer check: logistic regression on 1-6-mer counts, tune AUROC {kmer_check(tables):.3f}"
    )
    if args.baselines:
        table = baselines_check(inputs, workdir)
        print(table.to_string(index=False))
    seconds, summary = run_stage(stage_job(inputs, workdir, PLANTED))
    print_stage("cnn, default config, planted", seconds, summary)
    scores = cnn.predict_proba(workdir / "out/model.keras", tables["test"]["sequence"], summary)
    test = auroc(tables["test"]["label"].tolist(), scores, PLANTED_CLASSES)
    print(f"\nheld-out test AUROC of the CNN (predict_proba): {test:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-search", action="store_true", help="throughput only")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--amp-split", type=Path, default=REPO / "results/amp/split")
    parser.add_argument("--planted", action="store_true", help="the planted interaction task")
    parser.add_argument("--baselines", action="store_true", help="with --planted: baselines too")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="cnn_bench_"))
    workdir.mkdir(parents=True, exist_ok=True)
    if args.planted:
        planted(args, workdir)
    else:
        amp(args, workdir)


if __name__ == "__main__":
    main()
