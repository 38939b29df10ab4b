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
from deeprules.config import validate_run_config  # noqa: E402
from deeprules.io import read_json, setup_logging, write_tsv  # noqa: E402

DATASET = {"name": "amp", "sequence_type": "protein", "positive_class": "AMP"}
MODEL = {"conv_blocks": 2, "filters": 32, "kernel_size": 9, "pool_size": 2, "batch_size": 64}


def amp_partitions(workdir: Path) -> tuple[Path, Path, str]:
    split = REPO / "results/amp/split"
    if (split / "train.tsv").exists() and (split / "tune.tsv").exists():
        return split / "train.tsv", split / "tune.tsv", "results/amp/split"
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
    return *paths, "random 70/15 split of modlAMP AMPvsUniProt.csv"


class EpochTimer(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.started)


def throughput(spec: dict, train: cnn.Partition, epochs: int) -> dict[str, float]:
    """Median sequences/s per epoch (first epoch excluded) for both input paths."""
    table = encoding.token_table(spec["sequence_type"])
    x = table[train.tokens]
    result = {}
    for path in ("workflow tf.data", "plain model.fit", "workflow tf.data", "plain model.fit"):
        hp = kt.HyperParameters()
        hp.values = dict(MODEL)
        keras.utils.set_random_seed(0)
        model = cnn.build_model(
            hp, spec["length"], table.shape[1], 2, spec["cnn"]["search_space"], True
        )
        timer = EpochTimer()
        if path == "plain model.fit":
            model.fit(x, train.targets, batch_size=64, epochs=epochs, callbacks=[timer], verbose=0)
        else:
            data = cnn.input_pipeline(train, table, 64, shuffle_seed=0)
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
    train_path, tune_path, origin = amp_partitions(workdir)
    config = validate_run_config(yaml.safe_load((REPO / "config/config.yaml").read_text()))
    outputs = {
        name: str(workdir / "out" / f"{name}.out")
        for name in ("hyperparameters", "predictions", "trials", "summary")
    }
    outputs |= {
        "model": str(workdir / "out/model.keras"),
        "curves": str(workdir / "out/curves.png"),
    }
    inputs = {
        "train_path": str(train_path),
        "tune_path": str(tune_path),
        "dataset": DATASET,
        "config": config,
        "outputs": outputs,
        "tuner_dir": str(workdir / "tuner"),
        "threads": config["cnn"]["threads"],
    }
    spec = cnn.prepare(**inputs)
    train, _ = cnn.load_partitions(spec)
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
    cnn.run_stage(log_file=str(workdir / "cnn.log"), **inputs)
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
