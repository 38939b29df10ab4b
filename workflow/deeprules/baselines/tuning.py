"""Optuna tuning of one family with the shared budget (Tips 1 and 2).

Every family gets exactly `trials` trials, the number the CNN tuner gets, each
fitted on train (above `budget.trial_subsample.above_sequences`, on the subsample
the stage hands in) and scored on tune (above `budget.trial_subsample.tune_sequences`,
on a subsample of it) by the primary metric; a failed score (NaN) counts as -1 so the
sampler moves away from it.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from typing import Any

import numpy as np
import optuna

from deeprules.baselines.families import family
from deeprules.baselines.fitting import Encoded, fit_model
from deeprules.baselines.scoring import score_model
from deeprules.baselines.settings import BaselineSettings
from deeprules.contracts import Classes

log = logging.getLogger(__name__)


def suggest_parameters(trial: optuna.Trial, name: str, space: dict[str, Any]) -> dict[str, Any]:
    """Draw one parameter set; conditional parameters only when their parent enables them."""
    conditions = family(name).conditions
    params: dict[str, Any] = {}
    for parameter in sorted(space, key=lambda p: p in conditions):
        condition = conditions.get(parameter)
        if condition and params.get(condition[0]) not in condition[1]:
            continue
        spec = space[parameter]
        if spec["type"] == "categorical":
            params[parameter] = trial.suggest_categorical(parameter, spec["choices"])
        elif spec["type"] == "int":
            params[parameter] = trial.suggest_int(
                parameter,
                spec["low"],
                spec["high"],
                step=spec.get("step") or 1,
                log=spec.get("log", False),
            )
        else:
            params[parameter] = trial.suggest_float(
                parameter,
                spec["low"],
                spec["high"],
                step=spec.get("step"),
                log=spec.get("log", False),
            )
    return params


def sampler_for(settings: BaselineSettings) -> optuna.samplers.BaseSampler:
    """Seeded TPE (Bayesian) or seeded random search."""
    if settings.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=settings.seed)
    return optuna.samplers.RandomSampler(seed=settings.seed)


def tune_family(
    name: str, data: Encoded, classes: Classes, settings: BaselineSettings
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Exactly `settings.trials` Optuna trials scored on tune; returns best params, trial rows."""
    space = settings.search_spaces[name]
    study = optuna.create_study(direction="maximize", sampler=sampler_for(settings))
    rows: list[dict[str, Any]] = []

    def objective(trial: optuna.Trial) -> float:
        params = suggest_parameters(trial, name, space)
        row = run_trial(name, params, data, classes, settings)
        rows.append({"family": name, "trial": trial.number, **row})
        _log_trial(name, trial.number, row, max(r["score"] for r in rows), settings)
        return row["score"]

    study.optimize(objective, n_trials=settings.trials)
    return dict(study.best_trial.params), rows


def run_trial(
    name: str,
    params: dict[str, Any],
    data: Encoded,
    classes: Classes,
    settings: BaselineSettings,
) -> dict[str, Any]:
    """Fit on train, score on tune; the row of trials.tsv (without family and trial)."""
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = fit_model(name, params, data.train_x, data.train_y, settings.fitting)
    seconds = time.perf_counter() - started
    metrics = score_model(model, data.tune_x, data.tune_y, classes)
    score = metrics[settings.primary_metric]
    return {
        "params": json.dumps(params, sort_keys=True),
        "score": -1.0 if np.isnan(score) else score,
        **metrics,
        "fit_seconds": round(seconds, 3),
        "train_sequences": len(data.train_y),
        "tune_sequences": len(data.tune_y),
        "warnings": ",".join(sorted({type(w.message).__name__ for w in caught})),
    }


def _log_trial(
    name: str, number: int, row: dict[str, Any], best: float, settings: BaselineSettings
) -> None:
    primary = settings.primary_metric
    auroc = "" if primary == "auroc" else f", auroc {row['auroc']:.4f}"
    notes = row["warnings"].replace(",", ", ")
    log.info(
        "%s trial %d/%d: %s %.4f (best %.4f)%s, fit %.1f s%s",
        name,
        number + 1,
        settings.trials,
        primary,
        row["score"],
        best,
        auroc,
        row["fit_seconds"],
        f" [{notes}]" if notes else "",
    )
