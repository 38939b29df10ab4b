"""The final models of the other stages and their train/tune predictions.

The one place that knows how baselines and the CNN hand over their models:
baselines/summary.tsv lists every baseline model with its role and
baselines/models/<model>.joblib holds it; the CNN is cnn/model.keras, scored
by deeprules.cnn.predict_proba with what cnn/summary.json records. Roles
(baseline, control, cnn) are read from the stages' files, never guessed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from deeprules.contracts import ROLE_BASELINE, ROLE_CNN, ROLE_CONTROL, Classes, read_predictions
from deeprules.io import InputError, read_json, read_tsv

log = logging.getLogger("deeprules.evaluate")


@dataclass
class FinalModel:
    """A model to score on test: its name, role, file and a way to get class probabilities.

    role: 'baseline' (a tuned family), 'control' (majority, shuffled labels,
    trivial features) or 'cnn'. `probabilities(sequences)` returns a table with
    one column per class name. `scoring` is what the scorer reads besides the
    file (cnn/summary.json for the CNN): part of the model's fingerprint in the
    test-access ledger.
    """

    name: str
    role: str
    path: Path
    probabilities: Callable[[list[str]], pd.DataFrame] = field(repr=False)
    scoring: dict[str, Any] = field(default_factory=dict, repr=False)


def baseline_role(row: pd.Series) -> str:
    """'baseline' or 'control': the role the baselines stage gave a row of its summary.tsv."""
    return row["role"]


def _joblib_scorer(path: Path) -> Callable[[list[str]], pd.DataFrame]:
    """Class probabilities of a saved sklearn pipeline whose first step reads raw sequences."""

    def probabilities(sequences: list[str]) -> pd.DataFrame:
        pipeline = joblib.load(path)
        probs = pipeline.predict_proba(np.asarray(sequences, dtype=object))
        return pd.DataFrame(probs, columns=[str(c) for c in pipeline.classes_])

    return probabilities


def baseline_models(summary_path: Path, model_files: Iterable[Path]) -> list[FinalModel]:
    """Every model in baselines/summary.tsv, from its baselines/models/<model>.joblib."""
    summary = read_tsv(summary_path)
    missing = [column for column in ("model", "role") if column not in summary.columns]
    if missing:
        raise InputError(
            f"{summary_path}: missing column(s) {', '.join(missing)}; re-run the baselines stage"
        )
    files = {Path(path).stem: Path(path) for path in model_files}
    models = []
    for _, row in summary.iterrows():
        role = baseline_role(row)
        if role not in (ROLE_BASELINE, ROLE_CONTROL):
            raise InputError(
                f"{summary_path}: model '{row['model']}' has role '{role}'; "
                f"a baseline model is '{ROLE_BASELINE}' or '{ROLE_CONTROL}'"
            )
        if row["model"] not in files:
            raise InputError(
                f"{summary_path}: model '{row['model']}' has no file among {sorted(files)}"
            )
        path = files[row["model"]]
        models.append(FinalModel(row["model"], role, path, _joblib_scorer(path)))
    unlisted = sorted(set(files) - set(summary["model"]))
    if unlisted:
        log.warning("model files not in %s, not evaluated: %s", summary_path, unlisted)
    return models


def cnn_model(
    model_path: Path, summary_path: Path, name: str = "cnn", role: str = ROLE_CNN
) -> FinalModel:
    """The tuned CNN, scored by deeprules.cnn.predict_proba (class order from cnn/summary.json);
    with pre-training also the from-scratch one (`name` cnn_scratch, role cnn_scratch)."""
    summary = read_json(summary_path)
    classes = [str(c) for c in summary["classes"]]

    def probabilities(sequences: list[str]) -> pd.DataFrame:
        from deeprules.cnn import predict_proba  # TensorFlow loads only when the CNN is scored

        return pd.DataFrame(predict_proba(model_path, sequences, summary), columns=classes)

    return FinalModel(name, role, model_path, probabilities, scoring=summary)


def read_stage_predictions(paths: Iterable[Path], classes: Classes) -> pd.DataFrame:
    """Train and tune predictions of every stage, in the shared predictions layout."""
    tables = []
    for path in paths:
        table = read_predictions(path, classes)
        if "test" in set(table["partition"]):
            raise InputError(f"{path}: holds test predictions; stages must not score test")
        tables.append(table)
    return pd.concat(tables, ignore_index=True)


def check_roles(models: list[FinalModel], stage_predictions: pd.DataFrame) -> None:
    """A model's role in the predictions tables must be the one its stage's summary gives."""
    recorded = stage_predictions.drop_duplicates(["model", "role"])
    for model in models:
        roles = set(recorded.loc[recorded["model"] == model.name, "role"])
        if roles - {model.role}:
            raise InputError(
                f"model {model.name} is a '{model.role}' in its stage's summary but "
                f"'{', '.join(sorted(roles))}' in the predictions tables; re-run that stage"
            )


def score_test(
    models: list[FinalModel], sequences: list[str], classes: Classes
) -> dict[str, np.ndarray]:
    """Class probabilities of every model on the test sequences, columns in class order."""
    scored = {}
    for model in models:
        log.info("scoring %s (%s) on %d test sequences", model.name, model.role, len(sequences))
        table = model.probabilities(sequences)
        missing = sorted(set(classes.names) - set(table.columns))
        if missing:
            raise InputError(
                f"model {model.name} ({model.path}) does not predict classes {missing}"
            )
        scored[model.name] = table[list(classes.names)].to_numpy(dtype=np.float64)
    return scored
