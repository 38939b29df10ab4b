"""CNN input held in memory vs streamed from memory-mapped token files (issue 20).

    .venv/bin/python bench/cnn_streaming_bench.py [--train 17000] [--tune 3000] [--length 500]
                                                  [--epochs 3] [--workdir DIR]

Planted DNA (tests/planted.py: a CRE motif in every second sequence), by default
20,000 sequences of 500 bp split 17,000 / 3,000. Each path runs in its own
process (so peak RSS is its own): the stage's encoding (`load_partitions`:
tokens in memory, or written to cnn/tuner/encoded/ and memory-mapped), a short
fit of one fixed model through the stage's input pipeline (shuffled, seeded,
deterministic ops), and the stage's predictions on train and tune. Printed:
seconds per step, sequences/s per epoch (median after the first), peak RSS,
and whether both paths gave the same predictions.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "workflow"))
sys.path.insert(0, str(REPO / "tests"))

import keras  # noqa: E402
import keras_tuner as kt  # noqa: E402
import numpy as np  # noqa: E402
import yaml  # noqa: E402
from planted import planted_table  # noqa: E402

from deeprules import encoding  # noqa: E402
from deeprules.cnn.data import input_pipeline, load_partitions  # noqa: E402
from deeprules.cnn.job import configure_tensorflow, prepare_spec  # noqa: E402
from deeprules.cnn.model import build_model  # noqa: E402
from deeprules.cnn.predict import partition_probabilities  # noqa: E402
from deeprules.config import cnn_settings, validate_run_config  # noqa: E402
from deeprules.contracts import decide_classes  # noqa: E402
from deeprules.io import write_json, write_tsv  # noqa: E402
from deeprules.rule import Job  # noqa: E402

DATASET = {"name": "planted", "sequence_type": "dna", "positive_class": "bound"}
MODEL = {"conv_blocks": 2, "filters": 32, "kernel_size": 9, "pool_size": 2, "batch_size": 64}
PATHS = {"in memory": None, "streamed": 0}  # cnn.in_memory_max_mb: default, or always stream


def make_data(workdir: Path, train: int, tune: int, length: int) -> dict[str, Path]:
    """Planted train/tune partitions and the split report, written once."""
    motifs = {"unbound": None, "bound": "TGACGTCA"}
    inputs = {name: workdir / f"{name}.tsv" for name in ("train", "tune")}
    for (name, path), (n, seed) in zip(inputs.items(), [(train, 1), (tune, 2)], strict=True):
        if not path.exists():
            write_tsv(path, planted_table(n, seed, motifs, length=length, prefix=f"{name}_"))
    report = workdir / "split_report.json"
    classes = decide_classes(["unbound", "bound"], DATASET["positive_class"], "train")
    write_json(report, classes.to_json())
    return {**inputs, "split_report": report}


def job_for(workdir: Path, inputs: dict[str, Path], threshold: float | None) -> Job:
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    if threshold is not None:
        config.setdefault("cnn", {})["in_memory_max_mb"] = threshold
    config = validate_run_config(config)
    outputs = {"summary": workdir / "out" / "summary.json", "model": workdir / "out/model.keras"}
    settings = cnn_settings(config, DATASET)
    return Job(
        inputs=inputs, outputs=outputs, settings=settings, threads=2, log=workdir / "cnn.log"
    )


class EpochTimer(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.started)


def one_path(workdir: Path, inputs: dict[str, Path], threshold: float | None, epochs: int) -> dict:
    """Encode, fit and predict through one path; seconds, rates, RSS and the predictions."""
    spec = prepare_spec(job_for(workdir, inputs, threshold))
    configure_tensorflow(spec, threads=2)
    started = time.perf_counter()
    train, tune = load_partitions(spec)
    encode_seconds = time.perf_counter() - started
    table = encoding.token_table("dna")
    hp = kt.HyperParameters()
    hp.values = dict(MODEL)
    keras.utils.set_random_seed(0)
    model = build_model(hp, spec["length"], table.shape[1], 2, spec["cnn"]["search_space"])
    timer = EpochTimer()
    data = input_pipeline(train, table, MODEL["batch_size"], shuffle_seed=0)
    started = time.perf_counter()
    model.fit(data, epochs=epochs, callbacks=[timer], shuffle=False, verbose=0)
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    scores = np.concatenate([partition_probabilities(model, p, table) for p in (train, tune)])
    predict_seconds = time.perf_counter() - started
    np.save(workdir / "scores.npy", scores)
    return {
        "path": spec["input"]["path"],
        "one_hot_mb": spec["input"]["one_hot_mb"],
        "encode_s": encode_seconds,
        "fit_s": fit_seconds,
        "rate": len(train.ids) / statistics.median(timer.seconds[1:] or timer.seconds),
        "predict_s": predict_seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "scores": str(workdir / "scores.npy"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=17_000)
    parser.add_argument("--tune", type=int, default=3_000)
    parser.add_argument("--length", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--child", choices=list(PATHS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="cnn_streaming_"))
    inputs = make_data(workdir, args.train, args.tune, args.length)
    if args.child:
        child_dir = workdir / args.child.replace(" ", "_")
        child_dir.mkdir(exist_ok=True)
        print(json.dumps(one_path(child_dir, inputs, PATHS[args.child], args.epochs)))
        return
    results = {}
    for name in PATHS:
        command = [sys.executable, __file__, "--child", name, "--workdir", str(workdir)]
        command += ["--epochs", str(args.epochs)]
        run = subprocess.run(command, capture_output=True, text=True, check=True)
        results[name] = json.loads(run.stdout.strip().splitlines()[-1])
    held, streamed = (np.load(results[name]["scores"]) for name in PATHS)
    print(
        f"{args.train:,} train + {args.tune:,} tune planted DNA of {args.length} bp, "
        f"{args.epochs} epochs of {MODEL}\n"
        "\n| path | one-hot MB | encode s | fit s | sequences/s per epoch | predict s "
        "| peak RSS MB |\n|---|---|---|---|---|---|---|"
    )
    for name, r in results.items():
        print(
            f"| {name} ({r['path']}) | {r['one_hot_mb']:.0f} | {r['encode_s']:.1f} "
            f"| {r['fit_s']:.1f} | {r['rate']:,.0f} | {r['predict_s']:.1f} "
            f"| {r['peak_rss_mb']:,.0f} |"
        )
    ratio = results["streamed"]["fit_s"] / results["in memory"]["fit_s"]
    print(
        f"\nstreamed / in memory fit time: {ratio:.2f}; predictions identical: "
        f"{np.array_equal(held, streamed)} (max difference {np.abs(held - streamed).max():.2g})"
    )


if __name__ == "__main__":
    main()
