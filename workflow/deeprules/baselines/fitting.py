"""Fitting one family's pipeline, and the fitted model every output is made from."""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.utils.class_weight import compute_sample_weight

from deeprules.baselines.families import FitContext, build_pipeline, family
from deeprules.baselines.scaling import NO_APPROXIMATION
from deeprules.baselines.scoring import Predictions, predict, score_predictions
from deeprules.contracts import ROLE_BASELINE, ROLE_CONTROL, Classes
from deeprules.features import SequenceFeatures

log = logging.getLogger("deeprules.baselines")


@dataclass(frozen=True)
class Encoded:
    """Train and tune as feature tables, with their labels (features fitted on train)."""

    train_x: Any
    train_y: np.ndarray
    tune_x: Any
    tune_y: np.ndarray

    @property
    def train_nonzeros(self) -> int:
        """Non-zero entries of the training table: with N, what an exact kernel costs."""
        table = self.train_x
        return int(table.nnz if hasattr(table, "nnz") else np.count_nonzero(table))

    def with_train_rows(self, rows: np.ndarray) -> Encoded:
        """The same tables with train cut to `rows` (the tuning trials' subsample); the
        features stay those fitted on all of train."""
        if len(rows) == len(self.train_y):
            return self
        return replace(self, train_x=self.train_x[rows], train_y=self.train_y[rows])

    def with_tune_rows(self, rows: np.ndarray) -> Encoded:
        """The same tables with tune cut to `rows` (the rows the tuning trials are scored
        on); the chosen models are scored on all of tune."""
        if len(rows) == len(self.tune_y):
            return self
        return replace(self, tune_x=self.tune_x[rows], tune_y=self.tune_y[rows])


def encode(features: SequenceFeatures, train: pd.DataFrame, tune: pd.DataFrame) -> Encoded:
    """Fit `features` on train's sequences only (k-mer vocabulary), then encode both."""
    features.fit(train["sequence"])
    return Encoded(
        train_x=features.transform(train["sequence"]),
        train_y=train["label"].to_numpy(),
        tune_x=features.transform(tune["sequence"]),
        tune_y=tune["label"].to_numpy(),
    )


@dataclass
class Fitted:
    """A fitted model (sequence in, probabilities out) with its scores and cost."""

    name: str
    kind: str  # "tuned" or "control"
    family: str
    params: dict[str, Any]
    pipeline: Pipeline
    fit_seconds: float
    train: dict[str, float] = field(default_factory=dict)
    tune: dict[str, float] = field(default_factory=dict)
    note: str = ""
    approximation: str = NO_APPROXIMATION  # the affordable form of a large training set
    # its predictions on "train" and "tune" (predictions.tsv), made once when it is scored
    predictions: dict[str, Predictions] = field(default_factory=dict)
    repeat_aurocs: list[float] = field(default_factory=list)  # shuffled control only

    def scored(self, model: Any, data: Encoded, classes: Classes) -> Fitted:
        """With its predictions and scores on train and tune. `model` is the pipeline
        without its features step, applied to the encoded tables: predicting from the
        sequences again for predictions.tsv re-encoded both partitions for every model
        (10 minutes of the stage at 14,000 x 500 bp)."""
        self.predictions = {
            "train": predict(model, data.train_x, classes),
            "tune": predict(model, data.tune_x, classes),
        }
        self.train = score_predictions(self.predictions["train"], data.train_y, classes)
        self.tune = score_predictions(self.predictions["tune"], data.tune_y, classes)
        return self

    @property
    def role(self) -> str:
        """The model's role in the predictions contract: a tuned baseline or a control."""
        return ROLE_BASELINE if self.kind == "tuned" else ROLE_CONTROL


def fit_model(
    name: str,
    params: dict[str, Any],
    features: Any,
    labels: np.ndarray,
    context: FitContext,
    calibrate: bool = False,
) -> Pipeline:
    """Fit one family; with `calibrate`, margin families also get probabilities (Platt).

    Platt scaling is fitted on 3-fold stratified cross-validation predictions
    within train, as SVC(probability=True) does; the SVM itself is the one fitted
    on all of train, so the ranking (AUROC) is that of the tuned model. The folds
    are deliberately not homology-aware: on a homology split one component often
    holds most of train (84% on amp), the folds that hold it out learn the
    opposite orientation, and the fitted sigmoid inverted the ranking (tune
    AUROC 0.85 -> 0.15 on amp).
    """
    entry = family(name)
    model = build_pipeline(name, params, context)
    if calibrate and entry.margins:
        return _calibrated(model, features, labels, context.seed)
    fit_params = {}
    if entry.weighted_by_sample and context.class_weight == "balanced":
        fit_params["model__sample_weight"] = compute_sample_weight("balanced", labels)
    model.fit(features, labels, **fit_params)
    if entry.serial_predict:
        # threaded predict_proba sums the trees' votes in whatever order threads
        # finish, so scores differ in the last bit between runs; one thread is exact
        model.set_params(model__n_jobs=1)
    return model


def _calibrated(model: Pipeline, features: Any, labels: np.ndarray, seed: int) -> Pipeline:
    """The margin model fitted on all of train inside sigmoid calibration."""
    preprocessing, margin = model.steps[:-1], model.steps[-1][1]
    for _, step in preprocessing:
        features = step.fit_transform(features)
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=seed)
    calibrated = CalibratedClassifierCV(margin, method="sigmoid", cv=folds, ensemble=False)
    calibrated.fit(features, labels)
    if _inverts(calibrated, features):
        # A strongly regularised SVM's out-of-fold margins can run against the labels
        # while the model fitted on all of train ranks tune well (C 0.1, gamma 1e-5 on
        # planted motifs: margins 0.80 tune AUROC, the fitted sigmoid 0.20). Probabilities
        # must not reverse the ranking the search chose, so the sigmoid is fitted on
        # that model's own train margins instead (monotone, if overconfident).
        log.warning("Platt scaling fitted out of fold reversed the margins; fitted on train")
        fitted = FrozenEstimator(calibrated.calibrated_classifiers_[0].estimator)
        calibrated = CalibratedClassifierCV(fitted, method="sigmoid").fit(features, labels)
    return Pipeline([*preprocessing, ("model", calibrated)])


def _inverts(calibrated: CalibratedClassifierCV, features: Any) -> bool:
    """Whether the calibrated probability falls where the margin rises: the sequences
    of lowest and highest margin on train, compared."""
    margins = calibrated.calibrated_classifiers_[0].estimator.decision_function(features)
    ends = [int(np.argmin(margins)), int(np.argmax(margins))]
    low, high = calibrated.predict_proba(features[ends])[:, 1]
    return bool(high < low)


def final_model(
    name: str,
    params: dict[str, Any],
    features: SequenceFeatures,
    data: Encoded,
    classes: Classes,
    context: FitContext,
    model_name: str | None = None,
    labels: np.ndarray | None = None,
) -> Fitted:
    """Refit with the chosen params (margins calibrated) and wrap with the features, so
    the saved model takes sequences. A `model_name` makes it a control (shuffled labels)."""
    labels = data.train_y if labels is None else labels
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = fit_model(name, params, data.train_x, labels, context, calibrate=True)
    seconds = time.perf_counter() - started
    return Fitted(
        name=model_name or name,
        kind="tuned" if model_name is None else "control",
        family=name,
        params=params,
        pipeline=Pipeline([("features", features), *model.steps]),
        fit_seconds=seconds,
        approximation=family(name).approximation_used(context),
        note=_refit_warnings(model_name or name, caught, len(labels)),
    ).scored(model, data, classes)


def _refit_warnings(name: str, caught: list[warnings.WarningMessage], sequences: int) -> str:
    """The note of a refit that warned. Its trial's row does not say it when the trials
    fitted a subsample: a linear SVM that converged on 2,000 sequences in every trial
    stopped at its iteration limit on 14,000 (docs/benchmarks.md)."""
    raised = sorted({type(w.message).__name__ for w in caught})
    if not raised:
        return ""
    raised_text = ", ".join(raised)
    log.warning("%s: the refit on %d training sequences raised %s", name, sequences, raised_text)
    return f"refit on all of train raised {raised_text}"
