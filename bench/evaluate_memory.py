"""Where evaluate's memory goes: the peak resident memory of each of its steps.

    .venv/bin/python bench/evaluate_memory.py WORKDIR [--dataset planted] [--threads 2]

WORKDIR is a finished run's project folder (e.g. bench/end_to_end.py's --workdir):
its config/config.yaml, config/datasets/<dataset>.yaml and results/<dataset>/. The
probe repeats evaluate's steps one at a time, each model loaded and scored on its
own, and samples the resident memory of this process and its children (MMseqs2)
every 20 ms. The tune partition stands in for test, so the probe never opens
test.tsv (only the evaluate rule may); tune and test have the same size by default.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "workflow"))

import pandas as pd  # noqa: E402
import yaml  # noqa: E402

from deeprules.config import evaluate_settings, load_dataset, validate_run_config  # noqa: E402
from deeprules.contracts import read_classes, read_partition  # noqa: E402
from deeprules.evaluate.bootstrap import score_with_intervals  # noqa: E402
from deeprules.evaluate.failure_domains import nearest_training_identity  # noqa: E402
from deeprules.evaluate.models import baseline_models, cnn_model  # noqa: E402
from deeprules.evaluate.panel import class_codes  # noqa: E402

MB = 1_000_000


class PeakMemory:
    """The largest resident memory of this process plus its children while it runs."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.peak = 0
        self._running = False

    def _now(self) -> int:
        total = self.process.memory_info().rss
        for child in self.process.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                total += child.memory_info().rss
        return total

    def _sample(self) -> None:
        while self._running:
            self.peak = max(self.peak, self._now())
            time.sleep(0.02)

    def measure(self, step: Callable[[], Any]) -> tuple[Any, float, float, float]:
        """step's result, seconds, memory before and peak during (MB)."""
        gc.collect()
        before = self._now()
        self.peak = before
        self._running = True
        sampler = threading.Thread(target=self._sample)
        sampler.start()
        started = time.perf_counter()
        try:
            result = step()
        finally:
            self._running = False
            sampler.join()
        return result, time.perf_counter() - started, before / MB, self.peak / MB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--dataset", default="planted")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    results = args.workdir / "results" / args.dataset
    config = validate_run_config(yaml.safe_load((args.workdir / "config/config.yaml").read_text()))
    dataset = load_dataset(args.workdir / f"config/datasets/{args.dataset}.yaml")
    settings = evaluate_settings(config, dataset)["evaluate"]
    classes = read_classes(results / "split/split_report.json")
    stand_in = read_partition(results / "split/tune.tsv", "tune")
    sequences = stand_in["sequence"].tolist()
    models = [
        *baseline_models(
            results / "baselines/summary.tsv", sorted((results / "baselines/models").glob("*"))
        ),
        cnn_model(results / "cnn/model.keras", results / "cnn/summary.json"),
    ]
    probe = PeakMemory()
    rows = []
    probabilities = {}
    for model in models:
        size = model.path.stat().st_size / MB
        table, seconds, before, peak = probe.measure(lambda m=model: m.probabilities(sequences))
        probabilities[model.name] = table[list(classes.names)].to_numpy(dtype=float)
        rows.append((f"score {model.name}", size, seconds, before, peak))
    truth = class_codes(classes, stand_in["label"])
    thresholds = {name: 0.5 for name in probabilities}
    _, seconds, before, peak = probe.measure(
        lambda: score_with_intervals(probabilities, truth, classes, thresholds, settings, 1)
    )
    rows.append(("bootstrap panel", None, seconds, before, peak))
    train = read_partition(results / "split/train.tsv", "train")
    sequence_type = dataset["sequence_type"]
    with tempfile.TemporaryDirectory() as workdir:
        _, seconds, before, peak = probe.measure(
            lambda: nearest_training_identity(
                stand_in, train, sequence_type, settings, args.threads, workdir=Path(workdir)
            )
        )
    rows.append(("nearest training identity (MMseqs2)", None, seconds, before, peak))
    table = pd.DataFrame(rows, columns=["step", "file MB", "seconds", "RSS before MB", "peak MB"])
    print(f"{len(sequences)} sequences (tune as the stand-in for test), {len(train)} train")
    print(table.round(1).to_string(index=False))


if __name__ == "__main__":
    main()
