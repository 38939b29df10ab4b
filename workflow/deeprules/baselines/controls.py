"""The controls that say what a baseline's score means (Tip 7).

- control_majority: the class prior, whatever the sequence; the floor.
- control_shuffled: the best family refitted on shuffled training labels; it must
  be at chance, or something other than the labels predicts tune (leakage).
- control_shortcut: a flexible model on features no biologist would accept as an
  explanation (length, composition, end residues).
"""

from __future__ import annotations

import logging
import time
import warnings

import numpy as np
import pandas as pd
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline

from deeprules.baselines.fitting import Encoded, Fitted, final_model, fit_model
from deeprules.baselines.scoring import chance_auroc_error, score_model, score_predictions
from deeprules.baselines.settings import BaselineSettings
from deeprules.contracts import Classes
from deeprules.features import SequenceFeatures, ShortcutFeatures

log = logging.getLogger(__name__)

CONTROLS = ("control_majority", "control_shuffled", "control_shortcut")


def controls(
    best: Fitted,
    features: SequenceFeatures,
    data: Encoded,
    train: pd.DataFrame,
    tune: pd.DataFrame,
    classes: Classes,
    settings: BaselineSettings,
) -> list[Fitted]:
    """Majority (prior), shuffled-label refit of the best family, and the shortcut model."""
    return [
        majority_control(features, data, classes),
        shuffled_control(best, features, data, classes, settings),
        shortcut_control(train, tune, classes, settings),
    ]


def majority_control(features: SequenceFeatures, data: Encoded, classes: Classes) -> Fitted:
    majority = DummyClassifier(strategy="prior")
    started = time.perf_counter()
    pipeline = Pipeline([("features", features), ("model", majority)])
    majority.fit(data.train_x, data.train_y)
    return Fitted(
        "control_majority",
        "control",
        "prior",
        {"strategy": "prior"},
        pipeline,
        time.perf_counter() - started,
    ).scored(majority, data, classes)


def shuffled_control(
    best: Fitted,
    features: SequenceFeatures,
    data: Encoded,
    classes: Classes,
    settings: BaselineSettings,
) -> Fitted:
    """The best family on `shuffled_repeats` label shuffles (seed, seed + 1, ...); the
    first shuffle's model is the one saved, every shuffle's tune AUROC is kept."""
    shuffled_labels = np.random.default_rng(settings.seed).permutation(data.train_y)
    shuffled = final_model(
        best.family,
        best.params,
        features,
        data,
        classes,
        settings.fitting,
        model_name="control_shuffled",
        labels=shuffled_labels,
    )
    shuffled.train = score_predictions(shuffled.predictions["train"], shuffled_labels, classes)
    shuffled.repeat_aurocs = [shuffled.tune["auroc"]]
    for repeat in range(1, settings.shuffled_repeats):
        labels = np.random.default_rng(settings.seed + repeat).permutation(data.train_y)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = fit_model(
                best.family, best.params, data.train_x, labels, settings.fitting, True
            )
        shuffled.repeat_aurocs.append(
            score_model(model, data.tune_x, data.tune_y, classes)["auroc"]
        )
    log.info(
        "shuffled-label control (%s): tune AUROC %s",
        best.family,
        ", ".join(f"{x:.3f}" for x in shuffled.repeat_aurocs),
    )
    return shuffled


def shortcut_control(
    train: pd.DataFrame, tune: pd.DataFrame, classes: Classes, settings: BaselineSettings
) -> Fitted:
    """A flexible model that sees only length, composition and the end residues.

    If it comes close to the tuned baselines, the labels are predictable from
    properties no biologist would accept as the explanation (Tip 7). Not tuned:
    gradient boosting's defaults, as a floor.
    """
    model = HistGradientBoostingClassifier(
        max_iter=100,
        early_stopping=False,
        class_weight=settings.fitting.class_weight,
        random_state=settings.seed,
    )
    pipeline = Pipeline([("features", ShortcutFeatures()), ("model", model)])
    sequences = Encoded(
        train_x=train["sequence"].tolist(),
        train_y=train["label"].to_numpy(),
        tune_x=tune["sequence"].tolist(),
        tune_y=tune["label"].to_numpy(),
    )
    started = time.perf_counter()
    pipeline.fit(sequences.train_x, sequences.train_y)
    return Fitted(
        "control_shortcut",
        "control",
        "hist_gradient_boosting",
        {"features": ["length", "composition", "first_residue", "last_residue"], "max_iter": 100},
        pipeline,
        time.perf_counter() - started,
    ).scored(pipeline, sequences, classes)


def shuffled_warning(
    fitted: list[Fitted], settings: BaselineSettings, classes: Classes, tune_labels: np.ndarray
) -> list[str]:
    """A model trained on shuffled labels must be at chance; if not, something leaks.

    Judged on the mean tune AUROC over `shuffled_repeats` shuffles: a single
    noise-fitted model can land well away from 0.5 on either side when the
    classes differ along the features' main axes of variation (on amp, one
    shuffle's AUROC ranged 0.42-0.66 with the seed). 'At chance' is 0.5 ± the
    configured tolerance, widened to three chance-level standard errors when the
    tune set is too small for the tolerance to mean much.
    """
    shuffled = next(f for f in fitted if f.name == "control_shuffled")
    auroc = float(np.mean(shuffled.repeat_aurocs or [shuffled.tune["auroc"]]))
    tolerance = max(settings.shuffled_auroc_tolerance, 3 * chance_auroc_error(classes, tune_labels))
    if abs(auroc - 0.5) <= tolerance:
        return []
    message = (
        f"the shuffled-label control ({shuffled.family}) reaches a mean tune AUROC of "
        f"{auroc:.3f} over {max(1, len(shuffled.repeat_aurocs))} shuffles, "
        f"outside 0.5 ± {tolerance:.3f}. Either something other than the training labels "
        "predicts the tune labels (duplicates across partitions, leakage), or the tune set "
        "is too small to tell"
    )
    log.warning("%s", message)
    shuffled.note = "; ".join(filter(None, ["WARNING: not at chance", shuffled.note]))
    return [message]
