"""Large planted DNA sets for bench/baselines_bench.py --planted (issue 20).

For each size N: a planted set of N random 500-bp DNA sequences (tests/planted.py, half
with TATAAT), a stratified random 70/15 split (each sequence its own component), the
k-mer table of the default config encoded once. Then per family, in a forked child
process with a time limit (so one slow family cannot hold the benchmark): the tuned
search (`--trials`, lowered from budget.trials to keep the run short), the final refit
(SVMs calibrated, train and tune scored) and interpret's permutation importance of the
refitted model with the default interpret settings. Each phase reports as it ends, so a
family stopped by the limit still shows the phases it finished. Peak memory is the
child's peak resident set (it includes the encoded tables it inherits).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from sklearn.model_selection import train_test_split

from deeprules.baselines.fitting import Encoded, encode, final_model
from deeprules.baselines.settings import baseline_settings, feature_maker, for_training_set
from deeprules.baselines.tuning import tune_family
from deeprules.config import baselines_settings, validate_run_config
from deeprules.contracts import decide_classes
from deeprules.interpret.baselines import feature_importance

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from planted import planted_table  # noqa: E402

LENGTH = 500
OUT_OF_REACH = 10**9  # --exact: no training set is this large (nor its kernel work squared)


def planted_split(count: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    table = planted_table(count, seed, {"background": None, "bound": "TATAAT"}, length=LENGTH)
    train, rest = train_test_split(
        table, train_size=0.7, stratify=table["label"], random_state=seed
    )
    tune, _ = train_test_split(rest, train_size=0.5, stratify=rest["label"], random_state=seed)
    return train, tune


def family_child(name: str, context: dict[str, Any], queue: multiprocessing.Queue) -> None:
    """One family's search, refit and permutation importance; each phase put on `queue`."""
    settings, data, features = context["settings"], context["data"], context["features"]
    classes, tune = context["classes"], context["tune"]
    started = time.perf_counter()
    params, _ = tune_family(name, data, classes, settings)
    queue.put(("search_s", time.perf_counter() - started))
    queue.put(("search_cpu_s", time.process_time()))
    started = time.perf_counter()
    model = final_model(name, params, features, data, classes, settings.fitting)
    queue.put(("refit_s", time.perf_counter() - started))
    queue.put(("tune_auroc", model.tune["auroc"]))
    queue.put(("approximation", model.approximation))
    if context["interpret"]:
        started, cpu = time.perf_counter(), time.process_time()
        table = feature_importance(
            model.pipeline,
            tune["sequence"].tolist(),
            tune["label"].to_numpy(),
            context["interpret"],
            settings.seed,
        )
        queue.put(("interpret_s", time.perf_counter() - started))
        queue.put(("interpret_cpu_s", time.process_time() - cpu))
        queue.put(("interpret_method", table["method"].iloc[0]))
    queue.put(("peak_rss_mb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def run_family(name: str, context: dict[str, Any], limit: float) -> dict[str, Any]:
    """The child's phases, or the phase the time limit stopped."""
    queue: multiprocessing.Queue = multiprocessing.get_context("fork").Queue()
    child = multiprocessing.get_context("fork").Process(
        target=family_child, args=(name, context, queue)
    )
    started = time.perf_counter()
    child.start()
    row: dict[str, Any] = {"family": name}
    while child.is_alive() and time.perf_counter() - started < limit:
        child.join(timeout=1)
    if child.is_alive():
        child.kill()
        child.join()
        row["stopped"] = f"at {limit:.0f} s"
    while not queue.empty():
        key, value = queue.get()
        row[key] = value
    row["wall_s"] = time.perf_counter() - started
    return row


def benchmark_size(count: int, args: argparse.Namespace, config: dict[str, Any]) -> pd.DataFrame:
    train, tune = planted_split(count, config["seed"])
    dataset = {"name": "planted", "sequence_type": "dna"}
    settings = baseline_settings(baselines_settings(config, dataset), args.threads)
    started = time.perf_counter()
    features = feature_maker(settings)
    data: Encoded = encode(features, train, tune)
    settings = for_training_set(settings, len(train), data.train_nonzeros)
    cells = data.train_x.shape[0] * data.train_x.shape[1]
    print(
        f"N={count}: {len(train)} train / {len(tune)} tune x {data.train_x.shape[1]} columns, "
        f"encoded once in {time.perf_counter() - started:.0f} s; table "
        f"{'dense' if features.dense_ else 'sparse'}, "
        f"{getattr(data.train_x, 'nnz', cells) / cells:.0%} non-zero",
        flush=True,
    )
    context = {
        "settings": settings,
        "data": data,
        "features": features,
        "classes": decide_classes(train["label"], "bound", "train"),
        "tune": tune,
        "interpret": None if args.no_interpret else config["interpret"],
    }
    rows = []
    for name in args.families or settings.families:
        row = run_family(name, context, args.limit)
        print(f"  {row}", flush=True)
        rows.append({"N": count, **row})
    return pd.DataFrame(rows)


def benchmark_planted(args: argparse.Namespace) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    config: dict[str, Any] = {"datasets": ["planted"], "budget": {"trials": args.trials or 2}}
    if args.exact:
        out_of_reach = {
            "above_sequences": OUT_OF_REACH,
            "kernel_map_above": float(OUT_OF_REACH) ** 2,
        }
        config["baselines"] = {"large_data": out_of_reach}
    config = validate_run_config(config)
    mode = "exact (threshold out of reach)" if args.exact else "defaults (affordable forms)"
    print(f"{mode}; {config['budget']['trials']} trials per family; limit {args.limit:.0f} s")
    table = pd.concat([benchmark_size(n, args, config) for n in args.planted])
    print(f"machine: {os.cpu_count()} cores; load average {os.getloadavg()} at the end")
    print(table.round(3).to_string(index=False))
