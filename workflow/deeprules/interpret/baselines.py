"""Baselines: the features a model leans on, read off the tune partition.

By coefficient for linear models and by permutation importance (sklearn) for
the others, computed on tune so that the importance of a feature is what it
contributes to held-out predictions.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.inspection import permutation_importance

from deeprules.contracts import ROLE_CONTROL, ROLES
from deeprules.interpret.incremental import incremental_view, reference_rows
from deeprules.io import InputError, read_tsv
from deeprules.sampling import stratified_rows

log = logging.getLogger("deeprules.interpret")

IMPORTANCE_COLUMNS = [
    "model",
    "rank",
    "feature",
    "importance",
    "importance_std",
    "method",
    "favours",
]


class _VaryOnly(ClassifierMixin, BaseEstimator):
    """A fitted classifier seen through a few of its feature columns.

    permutation_importance shuffles every column it is given; with thousands of
    k-mer columns that is thousands of predictions per repeat. This view takes
    only the candidate columns and puts them back into the full tune matrix
    before predicting, so sklearn shuffles just those.
    """

    def __init__(self, estimator: Any, full: np.ndarray, columns: np.ndarray):
        self.estimator = estimator
        self.full = full
        self.columns = columns

    @property
    def classes_(self) -> np.ndarray:
        return self.estimator.classes_

    def fit(self, x: Any, y: Any = None) -> _VaryOnly:
        return self

    def _complete(self, subset: np.ndarray) -> np.ndarray:
        full = self.full.copy()
        full[:, self.columns] = subset
        return full

    def predict_proba(self, subset: np.ndarray) -> np.ndarray:
        return self.estimator.predict_proba(self._complete(subset))

    def predict(self, subset: np.ndarray) -> np.ndarray:
        return self.estimator.predict(self._complete(subset))


def feature_names(featurizer: Any, n_features: int) -> list[str]:
    """Names of the model's input columns (k-mers, descriptors), when the pipeline knows them."""
    for step in (featurizer, featurizer[0] if hasattr(featurizer, "steps") else None):
        try:
            names = [str(n) for n in step.get_feature_names_out()]
        except (AttributeError, TypeError, ValueError):
            continue
        if len(names) == n_features:
            return names
    return [f"feature_{i}" for i in range(n_features)]


def feature_importance(
    pipeline: Any,
    sequences: list[str],
    labels: np.ndarray,
    settings: dict[str, Any],
    seed: int,
) -> pd.DataFrame:
    """Importance of each feature of one fitted baseline pipeline, most important first.

    Linear models: the coefficient (signed; for two classes positive favours
    classes_[1], for more classes the largest in size, with the class it speaks
    for or against). Coefficients are comparable only if the pipeline scales its
    features (k-mer frequencies alone share a scale; mixed with descriptors they
    need a scaler in the pipeline).
    Others: permutation importance on tune (mean drop in AUROC over
    `permutation_repeats` shuffles) for the `permutation_max_features`
    features that vary most on tune; a feature that never varies cannot matter.
    """
    featurizer, estimator = pipeline[:-1], pipeline[-1]
    features = featurizer.transform(np.asarray(sequences, dtype=object))
    names = feature_names(featurizer, features.shape[1])
    classes = [str(c) for c in estimator.classes_]
    if hasattr(estimator, "coef_"):
        table = _coefficients(estimator, names, classes)
        order = np.argsort(-np.abs(table["importance"].to_numpy()), kind="stable")
    else:
        table = _permutation_importance(estimator, features, labels, names, classes, settings, seed)
        order = np.argsort(-table["importance"].to_numpy(), kind="stable")
    table = table.iloc[order].reset_index(drop=True)
    return table.assign(rank=np.arange(1, len(table) + 1))


def _coefficients(estimator: Any, names: list[str], classes: list[str]) -> pd.DataFrame:
    """A linear model's coefficients, with the class each feature favours."""
    coefficients = np.atleast_2d(estimator.coef_)
    if len(coefficients) == 1:  # two classes: positive pushes towards classes_[1]
        strongest = coefficients[0]
        favours = np.where(strongest >= 0, classes[1], classes[0])
    else:  # one row per class: report the class the feature speaks for or against most
        which = np.argmax(np.abs(coefficients), axis=0)
        strongest = coefficients[which, np.arange(coefficients.shape[1])]
        favours = [
            classes[k] if value >= 0 else f"not {classes[k]}"
            for k, value in zip(which, strongest, strict=True)
        ]
    return pd.DataFrame(
        {
            "feature": names,
            "importance": strongest,
            "importance_std": np.nan,
            "method": "coefficient",
            "favours": favours,
        }
    )


def _permutation_importance(
    estimator: Any,
    features: np.ndarray,
    labels: np.ndarray,
    names: list[str],
    classes: list[str],
    settings: dict[str, Any],
    seed: int,
) -> pd.DataFrame:
    """Mean AUROC drop on (a sample of) tune when each of the most varying features is
    shuffled; sklearn's roc_auc scorer, as permutation_importance takes a scorer."""
    # Every feature costs `permutation_repeats` predictions on these rows, and a kNN
    # predicts slowly (0.4 s for 575 amp peptides with a Manhattan metric): a seeded,
    # stratified sample of tune keeps the cost bounded and the result reproducible.
    rows = stratified_rows(labels, settings["permutation_max_sequences"], seed)
    features, labels = features[rows], labels[rows]
    features = features.toarray() if hasattr(features, "toarray") else np.asarray(features)
    spread = features.std(axis=0)
    columns = np.argsort(-spread, kind="stable")[: settings["permutation_max_features"]]
    columns = columns[spread[columns] > 0]
    view, method = _view(estimator, features, columns, settings)
    result = permutation_importance(
        view,
        features[:, columns],
        labels,
        scoring="roc_auc" if len(classes) == 2 else "roc_auc_ovr",
        n_repeats=settings["permutation_repeats"],
        random_state=seed,  # one process: each prediction is cheap, forking is not
    )
    return pd.DataFrame(
        {
            "feature": np.asarray(names)[columns],
            "importance": result.importances_mean,
            "importance_std": result.importances_std,
            "method": f"permutation (AUROC drop, {len(rows)} tune sequences{method})",
            "favours": "",
        }
    )


def _view(
    estimator: Any, features: np.ndarray, columns: np.ndarray, settings: dict[str, Any]
) -> tuple[BaseEstimator, str]:
    """The model as permutation importance sees it, and what the method string adds: the
    direct view, or, for a distance-based model whose direct prediction would cost more
    than `permutation_incremental_above` distance terms, distances updated per shuffle."""
    references = reference_rows(estimator)
    terms = (references or 0) * features.shape[0] * features.shape[1]
    if references is not None and terms > settings["permutation_incremental_above"]:
        view = incremental_view(estimator, features, columns)
        if view is not None:
            log.info(
                "%s: %d tune x %d reference rows x %d columns per prediction; distances "
                "updated per shuffled column",
                type(estimator).__name__,
                features.shape[0],
                references,
                features.shape[1],
            )
            return view, f" against {references:,} reference rows, distances updated per shuffle"
    return _VaryOnly(estimator, features, columns), ""


def importance_figure(tables: dict[str, pd.DataFrame], top: int) -> plt.Figure:
    """Horizontal bars of the top features of every baseline model."""
    figure, axes = plt.subplots(
        1, max(1, len(tables)), figsize=(4.2 * max(1, len(tables)), 0.3 * top + 1.5), squeeze=False
    )
    for axis, (model, table) in zip(axes[0], tables.items(), strict=False):
        head = table.head(top).iloc[::-1]
        axis.barh(head["feature"], head["importance"], xerr=head["importance_std"].fillna(0))
        axis.set(title=model, xlabel=head["method"].iloc[0] if len(head) else "")
        axis.tick_params(axis="y", labelsize=7)
    if not tables:
        axes[0, 0].text(0.5, 0.5, "no baseline model to interpret", ha="center", va="center")
        axes[0, 0].axis("off")
    figure.tight_layout()
    return figure


def explain_baselines(
    summary_path: Path,
    model_paths: list[Path],
    tune: pd.DataFrame,
    settings: dict[str, Any],
    seed: int,
) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """Feature importance of every tuned baseline (by baselines/summary.tsv's order), and
    the controls left out: majority, shuffled labels and trivial features exist to be
    beaten, not understood."""
    import joblib

    summary = read_tsv(summary_path)
    if "role" not in summary.columns:
        raise InputError(
            f"{summary_path}: no 'role' column (one of {', '.join(ROLES)}); "
            "re-run the baselines stage to rebuild it"
        )
    files = {path.stem: path for path in model_paths}
    tables: dict[str, pd.DataFrame] = {}
    controls = []
    for model, role in zip(summary["model"], summary["role"], strict=True):
        if role == ROLE_CONTROL:
            controls.append(model)
            continue
        if model not in files:
            raise InputError(
                f"{summary_path} lists model '{model}' but no {model}.joblib is among the "
                "rule's baseline_models inputs"
            )
        log.info("feature importance of %s on %d tune sequences", model, len(tune))
        tables[model] = feature_importance(
            joblib.load(files[model]),
            tune["sequence"].tolist(),
            tune["label"].to_numpy(),
            settings,
            seed,
        )
    return tables, controls


def importance_table(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Every baseline's features in one table, model by model, most important first."""
    if not tables:
        return pd.DataFrame(columns=IMPORTANCE_COLUMNS)
    frame = pd.concat([t.assign(model=m) for m, t in tables.items()], ignore_index=True)
    return frame[IMPORTANCE_COLUMNS]
