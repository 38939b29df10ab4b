"""Benchmark of evaluate's bootstrap and interpret's attributions (issue 8).

Evaluate: the whole metric panel on 1,000 stratified resamples (the CI of every
metric) for one model, by test-set size and number of classes, compared with
the naive way (sklearn metrics on 1,000 explicitly resampled copies), timed on
a sample of resamples and extrapolated.
Interpret: in-silico mutagenesis and integrated gradients per sequence for a
small protein CNN of random weights (speed does not depend on the weights).

    .venv/bin/python bench/evaluate_bench.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "workflow"))

from deeprules.contracts import Classes  # noqa: E402
from deeprules.evaluate.bootstrap import bootstrap_panels  # noqa: E402

RESAMPLES = 1000


def synthetic(n: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, classes, n)
    probabilities = rng.dirichlet(np.ones(classes), n)
    probabilities[np.arange(n), truth] += 0.5
    return probabilities / probabilities.sum(axis=1, keepdims=True), truth


def naive_seconds_per_resample(probabilities: np.ndarray, truth: np.ndarray, count: int) -> float:
    """sklearn's functions on explicitly resampled copies (the loop we avoid)."""
    from sklearn import metrics

    rng = np.random.default_rng(0)
    binary = probabilities.shape[1] == 2
    start = time.perf_counter()
    for _ in range(count):
        index = rng.integers(0, len(truth), len(truth))
        y, p = truth[index], probabilities[index]
        called = p.argmax(axis=1)
        if binary:
            metrics.roc_auc_score(y, p[:, 1])
            metrics.average_precision_score(y, p[:, 1])
            metrics.f1_score(y, called)
            metrics.precision_score(y, called, zero_division=0)
            metrics.recall_score(y, called)
        else:
            metrics.roc_auc_score(y, p, multi_class="ovr")
            metrics.f1_score(y, called, average="macro")
        metrics.matthews_corrcoef(y, called)
        metrics.balanced_accuracy_score(y, called)
    return (time.perf_counter() - start) / count


def bench_bootstrap() -> None:
    print(f"| test sequences | classes | panel x {RESAMPLES} resamples (s) | naive loop (s) |")
    print("|---:|---:|---:|---:|")
    for n, classes in ((1_000, 2), (10_000, 2), (100_000, 2), (10_000, 5)):
        probabilities, truth = synthetic(n, classes, seed=n)
        names = tuple(f"c{k}" for k in range(classes))
        task = Classes(names, names[-1] if classes == 2 else None)
        start = time.perf_counter()
        bootstrap_panels({"m": probabilities}, truth, task, {"m": 0.5}, RESAMPLES, seed=1, bins=10)
        ours = time.perf_counter() - start
        naive = naive_seconds_per_resample(probabilities, truth, 20) * RESAMPLES
        print(f"| {n:,} | {classes} | {ours:.1f} | {naive:.0f} |")


def bench_attributions() -> None:
    import keras

    from deeprules.interpret.attributions import in_silico_mutagenesis, integrated_gradients
    from deeprules.interpret.network import LoadedCNN

    keras.utils.set_random_seed(0)
    inputs = keras.Input((50, 20))
    hidden = keras.layers.Conv1D(32, 9, padding="same", activation="relu")(inputs)
    output = keras.layers.Dense(1, activation="sigmoid")(keras.layers.GlobalMaxPooling1D()(hidden))
    cnn = LoadedCNN(keras.Model(inputs, output), ["a", "b"], "protein")
    rng = np.random.default_rng(0)
    sequences = ["".join(rng.choice(list(cnn.alphabet), 50)) for _ in range(50)]
    one_hot = cnn.one_hot(sequences)
    targets = np.ones(len(sequences), dtype=int)
    print("\n| method | sequences (protein, 50 aa) | seconds | per sequence |")
    print("|---|---:|---:|---:|")
    methods = {
        "in-silico mutagenesis (19 x 50 variants each)": lambda: in_silico_mutagenesis(
            cnn, one_hot, np.full(50, 50), targets
        ),
        "integrated gradients (50 steps)": lambda: integrated_gradients(cnn, one_hot, targets, 50),
    }
    for name, run in methods.items():
        start = time.perf_counter()
        run()
        seconds = time.perf_counter() - start
        print(f"| {name} | {len(sequences)} | {seconds:.1f} | {seconds / len(sequences):.2f} |")


if __name__ == "__main__":
    bench_bootstrap()
    bench_attributions()
