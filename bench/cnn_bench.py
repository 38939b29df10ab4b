"""CNN stage benchmark: input-pipeline throughput and the default search on the default dataset.

    .venv/bin/python bench/cnn_bench.py [--skip-search] [--workdir DIR]

1. Throughput: the same model trained for a few epochs (a) through the
   workflow's input path (tokens -> tf.data -> one-hot per batch, prefetched)
   and (b) by a plain `model.fit` on in-memory one-hot arrays; sequences/s per
   epoch, first epoch (graph tracing) excluded, median of the rest.
2. The whole stage with the default config (budget.trials = 30) on the
   default amp dataset: wall time, trials, tune AUROC.

Data: results/amp/split/{train,tune}.tsv when the workflow made them, else a
seeded random 70/15 split of modlAMP's AMPvsUniProt.csv (the test 15% unused).
"""

from __future__ import annotations

import argparse
import importlib.resources
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "workflow"))

import keras  # noqa: E402
import keras_tuner as kt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

from deeprules import cnn, encoding  # noqa: E402
from deeprules.cnn.data import Partition, input_pipeline, load_partitions  # noqa: E402
from deeprules.cnn.job import prepare_spec  # noqa: E402
from deeprules.cnn.model import build_model  # noqa: E402
from deeprules.config import cnn_settings, validate_run_config  # noqa: E402
from deeprules.contracts import decide_classes  # noqa: E402
from deeprules.io import read_json, read_tsv, setup_logging, write_json, write_tsv  # noqa: E402
from deeprules.rule import Job  # noqa: E402

DATASET = {"name": "amp", "sequence_type": "protein", "positive_class": "AMP"}
MODEL = {"conv_blocks": 2, "filters": 32, "kernel_size": 9, "pool_size": 2, "batch_size": 64}


def amp_partitions(workdir: Path) -> tuple[Path, Path, Path, str]:
    """train.tsv, tune.tsv, split_report.json and where they came from."""
    split = REPO / "results/amp/split"
    made = [split / name for name in ("train.tsv", "tune.tsv", "split_report.json")]
    if all(path.exists() for path in made):
        return *made, "results/amp/split"
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-search", action="store_true", help="throughput only")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="cnn_bench_"))
    workdir.mkdir(parents=True, exist_ok=True)
    train_path, tune_path, report_path, origin = amp_partitions(workdir)
    config = validate_run_config(yaml.safe_load((REPO / "config/config.yaml").read_text()))
    outputs = {
        name: workdir / "out" / f"{name}.out"
        for name in ("hyperparameters", "predictions", "trials", "summary")
    }
    outputs |= {"model": workdir / "out/model.keras", "curves": workdir / "out/curves.png"}
    job = Job(
        inputs={"train": train_path, "tune": tune_path, "split_report": report_path},
        outputs=outputs,
        settings=cnn_settings(config, DATASET),
        threads=config["cnn"]["threads"],
        log=workdir / "cnn.log",
    )
    spec = prepare_spec(job)
    train, _ = load_partitions(spec)
    print(f"data: {origin}; {len(train.ids)} train sequences, input length {spec['length']}")

    rates = throughput(spec, train, args.epochs)
    ratio = rates["workflow tf.data"] / rates["plain model.fit"]
    print("\n| input path | sequences/s per epoch |\n|---|---|")
    for path, rate in rates.items():
        print(f"| {path} | {rate:,.0f} |")
    print(f"| ratio workflow / plain | {ratio:.2f} |")

    if args.skip_search:
        return
    setup_logging()
    started = time.perf_counter()
    cnn.run(job)
    seconds = time.perf_counter() - started
    summary = read_json(outputs["summary"])
    print(
        "\n| stage | tuner | trials | wall time | search | refit | final tune AUROC |\n"
        "|---|---|---|---|---|---|---|\n"
        f"| cnn, default config | {summary['tuning']['tuner']} | {summary['tuning']['trials']} "
        f"| {seconds / 60:.1f} min | {summary['tuning']['seconds'] / 60:.1f} min "
        f"| {summary['final_model']['seconds']:.0f} s "
        f"| {summary['final_model']['tune_auroc']:.3f} |"
    )
    print(f"log: {workdir / 'cnn.log'}")


if __name__ == "__main__":
    main()
