"""Rule evaluate: open the test partition once and score every final model on it.

Order matters: every choice that must not see test (thresholds, the best
baseline) is made first, then the access is checked and recorded in the
ledger, and only then is test.tsv read. A refused access raises
TestReuseRefused having written nothing.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from deeprules.contracts import ROLE_SCRATCH, Classes, read_classes, read_partition
from deeprules.evaluate.access import record_test_access
from deeprules.evaluate.bootstrap import TestScores, score_with_intervals
from deeprules.evaluate.comparisons import comparisons
from deeprules.evaluate.failure_domains import (
    failure_domains,
    groupings_of_test_set,
    nearest_training_identity,
)
from deeprules.evaluate.models import (
    FinalModel,
    baseline_models,
    check_roles,
    cnn_model,
    read_stage_predictions,
    score_test,
)
from deeprules.evaluate.outputs import Findings, metrics_summary, write_outputs
from deeprules.evaluate.overfitting import overfitting_table
from deeprules.evaluate.panel import class_codes
from deeprules.evaluate.thresholds import TuneDecisions, decide_on_tune
from deeprules.io import InputError
from deeprules.rule import Job

log = logging.getLogger("deeprules.evaluate")


def run(job: Job) -> dict[str, Any]:
    """Score the baselines' models and the CNN on test; returns metrics.json's content."""
    models = [
        *baseline_models(job.inputs["baselines_summary"], job.inputs["baseline_models"]),
        cnn_model(job.inputs["cnn_model"], job.inputs["cnn_summary"]),
    ]
    if "scratch_model" in job.inputs:  # a dataset with pre-training (Tip 5)
        models.append(
            cnn_model(
                job.inputs["scratch_model"],
                job.inputs["scratch_summary"],
                "cnn_scratch",
                ROLE_SCRATCH,
            )
        )
    return evaluate_test_partition(job, models)


def evaluate_test_partition(
    job: Job, models: list[FinalModel], identity_search: bool = True
) -> dict[str, Any]:
    """Score `models` on test once and write the panel, comparisons and failure domains.

    `identity_search=False` skips the MMseqs2 search of test against train
    (the identity grouping is then absent), for tests that do not need it.
    """
    names = [m.name for m in models]
    if len(set(names)) != len(names) or not names:
        raise InputError(f"model names must be unique and at least one model given, got {names}")
    settings, seed = job.settings["evaluate"], job.settings["seed"]
    classes = read_classes(job.inputs["split_report"])
    prediction_files = [job.inputs["baselines_predictions"], job.inputs["cnn_predictions"]]
    if "scratch_predictions" in job.inputs:
        prediction_files.append(job.inputs["scratch_predictions"])
    stage_predictions = read_stage_predictions(prediction_files, classes)
    check_roles(models, stage_predictions)
    roles = {m.name: m.role for m in models}
    decisions = decide_on_tune(stage_predictions, roles, classes, settings)

    ledger = record_test_access(
        settings["ledger_dir"],
        job.dataset["name"],
        job.inputs["test"],
        {m.name: (m.path, m.scoring) for m in models},
        settings["allow_reuse"],
    )
    test = read_partition(job.inputs["test"], "test")
    truth = class_codes(classes, test["label"])
    probabilities = score_test(models, test["sequence"].tolist(), classes)
    scores = score_with_intervals(
        probabilities, truth, classes, decisions.thresholds, settings, seed
    )
    findings = _findings(
        job, test, stage_predictions, roles, classes, decisions, scores, identity_search
    )
    access = {
        "access": ledger["current_access"],
        "access_count": ledger["access_count"],
        "ledger": ledger["ledger"],
    }
    summary = metrics_summary(
        job.dataset["name"], classes, models, decisions, scores, findings, settings, seed, access
    )
    write_outputs(
        job.outputs,
        test,
        summary,
        findings,
        ledger,
        scores,
        classes,
        decisions.thresholds,
        settings["calibration_bins"],
    )
    return summary


def _findings(
    job: Job,
    test: pd.DataFrame,
    stage_predictions: pd.DataFrame,
    roles: dict[str, str],
    classes: Classes,
    decisions: TuneDecisions,
    scores: TestScores,
    identity_search: bool,
) -> Findings:
    """Comparisons with the best baseline and the controls, gaps, and failure domains."""
    settings = job.settings["evaluate"]
    identity = None
    if identity_search:
        identity = nearest_training_identity(
            test,
            read_partition(job.inputs["train"], "train"),
            job.dataset["sequence_type"],
            settings,
            job.threads,
            workdir=job.outputs["metrics"].parent.parent,
        )
    failures, skipped = failure_domains(
        groupings_of_test_set(test, settings, identity),
        scores.probabilities,
        scores.truth,
        classes,
        decisions.thresholds,
        scores.points,
        settings,
        job.settings["seed"],
    )
    return Findings(
        comparisons=comparisons(
            roles,
            decisions.best_baseline,
            decisions.primary,
            scores.points,
            scores.distributions,
            settings["ci_level"],
        ),
        overfitting=overfitting_table(
            stage_predictions,
            scores.points,
            classes,
            decisions.thresholds,
            settings["overfitting_gap"],
            settings["calibration_bins"],
        ),
        failures=failures,
        skipped_groups=skipped,
    )
