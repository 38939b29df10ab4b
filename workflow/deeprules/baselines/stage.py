"""The baselines stage: tune every family, fit the controls, write everything.

Inputs (job.inputs): `train`, `tune` (split partitions) and `split_report` (the
classes the split decided). The test partition is never opened here. All input
checks run before the first output is written.
"""

from __future__ import annotations

import logging
from pathlib import Path

import optuna
import pandas as pd
from threadpoolctl import threadpool_limits

from deeprules.baselines.controls import controls, shuffled_warning
from deeprules.baselines.families import family
from deeprules.baselines.fitting import Encoded, encode
from deeprules.baselines.inflation import random_split_check
from deeprules.baselines.outputs import Results, write_outputs
from deeprules.baselines.parallel import Training, tune_every_family
from deeprules.baselines.scaling import NO_APPROXIMATION
from deeprules.baselines.settings import (
    BaselineSettings,
    baseline_settings,
    check_settings,
    feature_maker,
    for_training_set,
)
from deeprules.contracts import Classes, read_classes, read_partition
from deeprules.features import SequenceFeatures
from deeprules.io import InputError
from deeprules.rule import Job
from deeprules.sampling import trial_rows, trial_tune_rows

log = logging.getLogger(__name__)


def run(job: Job) -> None:
    """Tune every family with the shared budget, fit the controls, write the outputs.

    The rule's threads are worker processes that tune families side by side
    (deeprules.baselines.parallel); the controls and the random-split check after
    them give the threads to joblib (forests, kNN). BLAS and OpenMP (gradient
    boosting) run single-threaded: on these small matrices extra BLAS threads
    only add overhead, and OpenMP threads spin-wait, which made gradient
    boosting 5x slower on a shared 2-core node (docs/benchmarks.md).
    """
    with threadpool_limits(limits=1):
        _run(job)


def _run(job: Job) -> None:
    settings = baseline_settings(job.settings, job.threads)
    check_settings(settings)
    train = read_partition(job.inputs["train"], "train")
    tune = read_partition(job.inputs["tune"], "tune")
    classes = read_classes(job.inputs["split_report"])
    check_labels(train, tune, classes, job.inputs["split_report"])
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    log.info(
        "%d train and %d tune sequences, classes %s, primary metric %s, %d trials per family",
        len(train),
        len(tune),
        ", ".join(classes.names),
        settings.primary_metric,
        settings.trials,
    )
    results = fit_everything(train, tune, classes, settings)
    log.info(
        "writing %d models, their predictions, the summary and the figures", len(results.fitted)
    )
    write_outputs(results, train, tune, classes, settings, job.outputs)
    log.info("done")


def check_labels(train: pd.DataFrame, tune: pd.DataFrame, classes: Classes, report: Path) -> None:
    """The partitions must hold the split's classes: two or more in train, all of them
    in train, tune's among them and not a single one (AUROC and MCC need two)."""
    if len(classes.names) < 2:
        raise InputError(
            f"train partition has a single class ({classes.names[0]}); nothing to learn"
        )
    in_train = set(train["label"])
    if in_train != set(classes.names):
        raise InputError(
            f"train labels {sorted(in_train)} are not the classes {list(classes.names)} of "
            f"{report}; re-run the split stage so that both come from the same split"
        )
    unseen = sorted(set(tune["label"]) - in_train)
    if unseen:
        raise InputError(
            f"tune partition has label(s) {unseen} absent from train; the split stage must "
            "put every class in train"
        )
    if tune["label"].nunique() < 2:
        raise InputError("tune partition has a single class; AUROC and MCC are undefined on it")


def fit_everything(
    train: pd.DataFrame, tune: pd.DataFrame, classes: Classes, settings: BaselineSettings
) -> Results:
    """Every family tuned then refitted, the controls beside the best one, and its
    random-split check; the order of fits (and of random draws) is fixed."""
    features = feature_maker(settings)
    data = encode(features, train, tune)
    log.info("features: %d columns (%s)", data.train_x.shape[1], describe_features(features))
    settings = for_training_set(settings, len(train), data.train_nonzeros)
    for name in settings.families:
        form = family(name).approximation_used(settings.fitting)
        if form != NO_APPROXIMATION:
            log.info("%s on %d training sequences: %s", name, len(train), form)
    trial_data = trials_data(data, settings)
    fitted, trials = tune_every_family(Training(features, data, trial_data, classes, settings))
    best = max(fitted, key=lambda f: f.tune[settings.primary_metric])
    fitted += controls(best, features, data, train, tune, classes, settings)
    inflation = random_split_check(best, train, tune, classes, settings)
    warnings_found = shuffled_warning(fitted, settings, classes, data.tune_y)
    return Results(fitted, trials, inflation, warnings_found, features, settings.fitting.forms)


def trials_data(data: Encoded, settings: BaselineSettings) -> Encoded:
    """Train and tune as every trial sees them (budget.trial_subsample): the rows it fits
    on and the rows it is scored on; said in the log when they are samples."""
    subsample, seed = settings.trial_subsample, settings.seed
    trial_data = data.with_train_rows(trial_rows(data.train_y, subsample, seed))
    trial_data = trial_data.with_tune_rows(trial_tune_rows(data.tune_y, subsample, seed))
    if len(trial_data.train_y) < len(data.train_y):
        log.info(
            "every trial fits on %d of %d training sequences (budget.trial_subsample); "
            "the chosen configuration of each family is refitted on all of them",
            len(trial_data.train_y),
            len(data.train_y),
        )
    if len(trial_data.tune_y) < len(data.tune_y):
        log.info(
            "every trial is scored on %d of %d tune sequences "
            "(budget.trial_subsample.tune_sequences); the refitted models on all of them",
            len(trial_data.tune_y),
            len(data.tune_y),
        )
    return trial_data


def describe_features(features: SequenceFeatures) -> str:
    parts = [f"k-mer sizes {list(features.kmer_sizes)}"]
    if features.descriptors:
        parts.append("modlAMP descriptors")
    for hashed in features.kmers_.hashing_:
        parts.append(
            f"{hashed['k']}-mers hashed into {hashed['columns']:,} columns "
            f"({hashed['colliding_share']:.1%} of training {hashed['k']}-mers share one)"
        )
    parts.append("dense" if features.dense_ else "sparse (CSR)")
    return ", ".join(parts)
