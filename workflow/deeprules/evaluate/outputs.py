"""What evaluate writes: test predictions, metrics.json (read by the report) and its tables.

metrics.json keeps every verdict twice: in words for people (`verdict`,
`threshold_source`, `reason`) and as a code or number for programs
(`outcome`, `threshold_rule`, `flagged_gap`, `drop`, `grouping_kind`,
`reason_code`, the best baseline's `tune_scores`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deeprules.contracts import Classes, prediction_frame, write_predictions
from deeprules.evaluate.bootstrap import TestScores, interval
from deeprules.evaluate.comparisons import COMPARISON_COLUMNS
from deeprules.evaluate.failure_domains import failure_flags
from deeprules.evaluate.figures import save_test_figures
from deeprules.evaluate.models import FinalModel
from deeprules.evaluate.overfitting import overfitting_flags
from deeprules.evaluate.panel import called_classes, confusion_counts
from deeprules.evaluate.thresholds import TuneDecisions
from deeprules.io import write_json, write_tsv


@dataclass(frozen=True)
class Findings:
    """What the test scores say beyond the panel: comparisons, gaps and failure domains."""

    comparisons: list[dict[str, Any]]
    overfitting: pd.DataFrame
    failures: pd.DataFrame
    skipped_groups: list[dict[str, Any]]


def prediction_frames(
    test: pd.DataFrame,
    scores: TestScores,
    classes: Classes,
    thresholds: dict[str, float | None],
    roles: dict[str, str],
) -> list[pd.DataFrame]:
    """Every model's test predictions in the shared layout; `predicted` is the class called
    with the model's tune threshold (binary), not merely the most probable one."""
    frames = []
    for model, probs in scores.probabilities.items():
        frame = prediction_frame(
            test["id"].to_numpy(), "test", model, roles[model], test["label"], probs, classes
        )
        called = called_classes(probs, classes, thresholds[model])
        frames.append(frame.assign(predicted=np.asarray(classes.names)[called]))
    return frames


def model_summary(
    model: FinalModel,
    classes: Classes,
    decisions: TuneDecisions,
    scores: TestScores,
    level: float,
) -> dict[str, Any]:
    """One model's threshold, panel with intervals and confusion matrix on test."""
    name = model.name
    called = called_classes(scores.probabilities[name], classes, decisions.thresholds[name])
    ones = np.ones((1, len(scores.truth)))
    counts = confusion_counts(scores.truth, called, len(classes.names), ones)[0]
    return {
        "role": model.role,
        "file": str(model.path),
        "threshold": decisions.thresholds[name],
        "threshold_source": decisions.threshold_sources[name],
        "threshold_rule": decisions.threshold_rules[name],
        "metrics": {
            metric: dict(
                zip(
                    ("value", "ci_low", "ci_high"),
                    (value, *interval(scores.distributions[name][metric], level)),
                    strict=True,
                )
            )
            for metric, value in scores.points[name].items()
        },
        "confusion_matrix": {
            "rows_true_columns_called": list(classes.names),
            "counts": counts.astype(int).tolist(),
        },
    }


def metrics_summary(
    dataset: str,
    classes: Classes,
    models: list[FinalModel],
    decisions: TuneDecisions,
    scores: TestScores,
    findings: Findings,
    settings: dict[str, Any],
    seed: int,
    access: dict[str, Any],
) -> dict[str, Any]:
    """metrics.json: the task, every model's panel with intervals, and every verdict."""
    primary, level = decisions.primary, settings["ci_level"]
    return {
        "dataset": dataset,
        "task": "binary" if classes.binary else "multi-class",
        "classes": list(classes.names),
        "positive_class": classes.positive,
        "test_counts": {c: int(np.sum(scores.truth == k)) for k, c in enumerate(classes.names)},
        "primary_metric": primary,
        "bootstrap": {
            "resamples": settings["bootstrap_resamples"],
            "ci_level": level,
            "stratified": True,
            "seed": seed,
        },
        "threshold_metric": settings["threshold_metric"],
        "best_baseline": {
            "model": decisions.best_baseline,
            "chosen_by": f"{primary} on tune",
            "metric": primary,
            "tune_scores": decisions.baseline_tune_scores,
        },
        "flag_limits": {
            "overfitting_gap": settings["overfitting_gap"],
            "failure_drop": settings["failure_drop"],
        },
        "models": {m.name: model_summary(m, classes, decisions, scores, level) for m in models},
        "comparisons": findings.comparisons,
        "overfitting_flags": overfitting_flags(findings.overfitting, primary),
        "failure_flags": failure_flags(findings.failures, primary),
        "skipped_groups": findings.skipped_groups,
        "test_access": access,
    }


def clean(value: Any) -> Any:
    """JSON-safe: NaN becomes null, numpy numbers become Python numbers."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def write_outputs(
    outputs: dict[str, Path],
    test: pd.DataFrame,
    summary: dict[str, Any],
    findings: Findings,
    ledger: dict[str, Any],
    scores: TestScores,
    classes: Classes,
    thresholds: dict[str, float | None],
    bins: int,
) -> None:
    """Tables, figures, metrics.json and the copy of the access ledger, to the rule's outputs."""
    roles = {model: info["role"] for model, info in summary["models"].items()}
    write_predictions(
        outputs["predictions"], prediction_frames(test, scores, classes, thresholds, roles)
    )
    flat = [
        {"model": model, "role": info["role"], "metric": metric, **values}
        for model, info in summary["models"].items()
        for metric, values in info["metrics"].items()
    ]
    write_tsv(outputs["metrics_table"], pd.DataFrame(flat))
    write_tsv(
        outputs["comparisons"], pd.DataFrame(summary["comparisons"], columns=COMPARISON_COLUMNS)
    )
    write_tsv(outputs["overfitting"], findings.overfitting)
    write_tsv(outputs["failure_domains"], findings.failures)
    save_test_figures(
        outputs,
        scores.probabilities,
        scores.truth,
        classes,
        thresholds,
        findings.failures,
        bins,
        roles,
        summary["best_baseline"]["model"],
    )
    write_json(outputs["test_access"], clean(ledger))
    write_json(outputs["metrics"], clean(summary))
