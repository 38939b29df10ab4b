"""Every family tuned and refitted, several at once when the rule has the threads.

The families are independent: each has its own seeded study and its own fits. So
with `threads` > 1 the stage forks that many worker processes, each fitting with
one thread, and hands them the families costliest first; the results come back in
the configured order. One family at a time left a 2-core node half idle for most of
the stage: gradient boosting and kNN run on one core (docs/benchmarks.md).

The numbers are those of one process fitting the families in order
(tests/test_baselines.py), because nothing a fit draws depends on another
family or on its thread count: a forest draws every tree's seed before it fits,
forests predict with one thread (`Family.serial_predict`) and gradient boosting's
OpenMP is held to one thread in both.
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from multiprocessing import get_context
from typing import Any

from threadpoolctl import threadpool_limits

from deeprules.baselines.families import family
from deeprules.baselines.fitting import Encoded, Fitted, final_model
from deeprules.baselines.settings import BaselineSettings
from deeprules.baselines.tuning import tune_family
from deeprules.contracts import Classes
from deeprules.features import SequenceFeatures

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Training:
    """What every family's tuning and refit read: the same for all of them."""

    features: SequenceFeatures
    data: Encoded  # all of train (the refit) and tune
    trial_data: Encoded  # the rows every trial fits on and is scored on
    classes: Classes
    settings: BaselineSettings


def tune_every_family(training: Training) -> tuple[list[Fitted], list[dict[str, Any]]]:
    """Each configured family tuned then refitted; its trial rows, family after family."""
    names = training.settings.families
    workers = min(training.settings.fitting.threads, len(names))
    if workers < 2:
        results = [tune_and_refit(name, training) for name in names]
    else:
        log.info("%d families tuned side by side in %d processes", len(names), workers)
        results = _in_workers(names, workers, training)
    fitted = [model for model, _ in results]
    trials = [row for _, rows in results for row in rows]
    return fitted, trials


def tune_and_refit(name: str, training: Training) -> tuple[Fitted, list[dict[str, Any]]]:
    """One family's trials on the trial rows, then its chosen configuration on all of train."""
    settings = training.settings
    params, rows = tune_family(name, training.trial_data, training.classes, settings)
    log.info(
        "%s: best %s; refitting on all %d training sequences, then scoring train and tune",
        name,
        json.dumps(params, sort_keys=True),
        len(training.data.train_y),
    )
    started = time.perf_counter()
    model = final_model(
        name, params, training.features, training.data, training.classes, settings.fitting
    )
    log.info(
        "%s: refitted in %.0f s, scored in %.0f s; tune %s %.4f",
        name,
        model.fit_seconds,
        time.perf_counter() - started - model.fit_seconds,
        settings.primary_metric,
        model.tune[settings.primary_metric],
    )
    return model, rows


def _in_workers(
    names: tuple[str, ...], workers: int, training: Training
) -> list[tuple[Fitted, list[dict[str, Any]]]]:
    """Forked workers (they inherit the tables and the rule's log instead of receiving
    copies); the costliest families start first so that no worker waits alone at the end."""
    one_thread = replace(training.settings, fitting=replace(training.settings.fitting, threads=1))
    shared = replace(training, settings=one_thread)
    costliest_first = sorted(names, key=lambda name: -family(name).tuning_minutes)
    with ProcessPoolExecutor(
        workers, mp_context=get_context("fork"), initializer=_receive, initargs=(shared,)
    ) as pool:
        futures = {name: pool.submit(_tune_and_refit_shared, name) for name in costliest_first}
        return [futures[name].result() for name in names]


_SHARED: list[Training] = []  # a worker's Training, set once when it starts


def _receive(training: Training) -> None:
    _SHARED.append(training)
    threadpool_limits(limits=1)


def _tune_and_refit_shared(name: str) -> tuple[Fitted, list[dict[str, Any]]]:
    return tune_and_refit(name, _SHARED[0])
