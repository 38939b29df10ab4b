"""Tuned traditional baselines and the controls that say what a score means.

Tips 1 and 2: a deep model is only worth its cost if it beats traditional
models tuned with the same care, so every family here gets exactly
`budget.trials` Optuna trials — the number the CNN tuner gets — scored on the
tune partition. Tip 7: three controls put the scores in context — a majority
(prior) classifier, the best baseline refitted on shuffled labels (should be at
chance; if not, something leaks), and a model on trivial features (length,
composition, end residues). Finally the best family is refitted on a random
split of the same sequences, to show how much a random split would have
flattered it. This stage reads train and tune only; the test partition is
never opened here.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import matplotlib
import numpy as np
import optuna
import pandas as pd
import scipy.sparse as sp
from modlamp.core import load_scale
from sklearn.calibration import CalibratedClassifierCV
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    average_precision_score,
    balanced_accuracy_score,
    f1_score,
    matthews_corrcoef,
    roc_auc_score,
)
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.naive_bayes import ComplementNB, GaussianNB, MultinomialNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, MaxAbsScaler, MinMaxScaler, StandardScaler
from sklearn.svm import SVC, LinearSVC
from sklearn.utils.class_weight import compute_sample_weight
from threadpoolctl import threadpool_limits

from deeprules.features import SequenceFeatures, ShortcutFeatures
from deeprules.io import (
    InputError,
    atomic_write,
    read_tsv,
    resolve_positive_class,
    write_json,
    write_tsv,
)

matplotlib.use("Agg")  # before pyplot: no display on cluster nodes
import matplotlib.pyplot as plt

log = logging.getLogger("deeprules.baselines")

FAMILIES = (
    "logistic_regression",
    "random_forest",
    "knn",
    "naive_bayes",
    "linear_svm",
    "rbf_svm",
    "hist_gradient_boosting",
)
CONTROLS = ("control_majority", "control_shuffled", "control_shortcut")
METRICS = ("mcc", "macro_f1", "balanced_accuracy", "auroc", "auprc")
REQUIRED_COLUMNS = ("id", "sequence", "label")
# SVMs give margins, not probabilities: they are tuned on the margin and the
# saved model adds Platt scaling fitted by cross-validation inside train.
CALIBRATED_FAMILIES = frozenset({"linear_svm", "rbf_svm"})
# A parameter that only means something when another has a given value.
CONDITIONS = {
    ("logistic_regression", "l1_ratio"): ("penalty", ("elasticnet",)),
    ("naive_bayes", "alpha"): ("variant", ("multinomial", "complement")),
    ("naive_bayes", "var_smoothing"): ("variant", ("gaussian",)),
}
OUTPUT_FILES = {
    "trials": "trials.tsv",
    "predictions": "predictions.tsv",
    "summary_table": "summary.tsv",
    "summary": "summary.json",
    "inflation": "inflation.json",
    "summary_figure": "summary.png",
    "inflation_figure": "inflation.png",
}


@dataclass(frozen=True)
class Task:
    """What is being predicted: the classes, and for two classes which one is 'positive'."""

    classes: tuple[str, ...]
    positive_class: str | None
    primary_metric: str

    @property
    def binary(self) -> bool:
        return len(self.classes) == 2


@dataclass(frozen=True)
class Settings:
    """The run-config values every model needs."""

    seed: int
    threads: int
    trials: int
    class_weight: str | None
    sampler: str
    shuffled_auroc_tolerance: float
    shuffled_repeats: int = 5


@dataclass
class Fitted:
    """A fitted model (sequence in, probabilities out) with its scores and cost."""

    name: str
    kind: str
    family: str
    params: dict[str, Any]
    pipeline: Pipeline
    fit_seconds: float
    train: dict[str, float] = field(default_factory=dict)
    tune: dict[str, float] = field(default_factory=dict)
    note: str = ""
    repeat_aurocs: list[float] = field(default_factory=list)  # shuffled control only


# ---------------------------------------------------------------- inputs


def read_partition(path: Path, partition: str) -> pd.DataFrame:
    """Read split/<partition>.tsv and check the columns the split contract promises."""
    table = read_tsv(path)
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(
            f"{path}: missing column(s) {', '.join(missing)}; columns are: "
            f"{', '.join(table.columns)}. Re-run the split stage to rebuild {path.name}."
        )
    if table.empty:
        raise InputError(f"{path}: the {partition} partition has no sequences")
    return table


def task_for(
    train: pd.DataFrame, tune: pd.DataFrame, dataset: dict[str, Any], settings: dict[str, Any]
) -> Task:
    """Classes come from the training labels; every tune label must be among them."""
    classes = tuple(sorted(train["label"].unique()))
    if len(classes) < 2:
        raise InputError(f"train partition has a single class ({classes[0]}); nothing to learn")
    unseen = sorted(set(tune["label"]) - set(classes))
    if unseen:
        raise InputError(
            f"tune partition has label(s) {unseen} absent from train; the split stage must "
            "put every class in train"
        )
    if tune["label"].nunique() < 2:
        raise InputError("tune partition has a single class; AUROC and MCC are undefined on it")
    positive = resolve_positive_class(train["label"], dataset.get("positive_class"), "train")
    if positive and dataset.get("positive_class") is None:
        log.info("no positive_class in the dataset file; using the minority class %s", positive)
    primary = settings["primary_metric"]
    if primary == "auto":
        primary = "auroc"  # what the CNN's search and evaluate's best-baseline pick use
    return Task(classes, positive, primary)


def settings_from(config: dict[str, Any], threads: int) -> Settings:
    section = config["baselines"]
    return Settings(
        seed=config["seed"],
        threads=max(1, threads),
        trials=config["budget"]["trials"],
        class_weight=None if section["class_weight"] == "none" else section["class_weight"],
        sampler=section["sampler"],
        shuffled_auroc_tolerance=section["shuffled_auroc_tolerance"],
        shuffled_repeats=section["shuffled_repeats"],
    )


def feature_maker(sequence_type: str, section: dict[str, Any]) -> SequenceFeatures:
    """k-mer frequencies for every sequence type; modlAMP descriptors for proteins only."""
    descriptors = section["descriptors"]
    return SequenceFeatures(
        kmer_sizes=tuple(section["kmer_sizes"][sequence_type]),
        descriptors=sequence_type == "protein" and descriptors["enabled"],
        global_descriptors=descriptors["global"],
        scales=tuple(descriptors["scales"]),
    )


# ---------------------------------------------------------------- search spaces


def check_settings(section: dict[str, Any]) -> None:
    """Refuse a search space or descriptor scale that cannot work, naming the config key.

    Run before any model is fitted, so a typo costs seconds, not a half-finished tuning run.
    """
    for index, scale in enumerate(section["descriptors"]["scales"]):
        key = f"baselines.descriptors.scales[{index}]"
        try:
            values = load_scale(scale)[1]
        except KeyError:
            raise InputError(
                f"config key '{key}': '{scale}' is not a modlAMP amino-acid scale "
                "(e.g. eisenberg, kytedoolittle, hopp-woods, gravy)"
            ) from None
        if len(values["A"]) != 1:
            raise InputError(
                f"config key '{key}': scale '{scale}' has {len(values['A'])} values per residue; "
                "choose a one-dimensional scale such as eisenberg"
            )
    for family in section["families"]:
        space = section["search_spaces"][family]
        for name, spec in space.items():
            key = f"baselines.search_spaces.{family}.{name}"
            _check_range(key, spec)
            for value in _candidates(spec):
                _probe(family, name, value, space, key)


def _check_range(key: str, spec: dict[str, Any]) -> None:
    if spec["type"] == "categorical":
        return
    if spec["low"] > spec["high"]:
        raise InputError(f"config key '{key}': low ({spec['low']}) is above high ({spec['high']})")
    if spec.get("log") and spec["low"] <= 0:
        raise InputError(f"config key '{key}': a log-scaled range needs low > 0, got {spec['low']}")
    if spec.get("log") and spec.get("step") not in (None, 1):
        raise InputError(f"config key '{key}': 'step' cannot be combined with 'log: true'")


def _candidates(spec: dict[str, Any]) -> list[Any]:
    if spec["type"] == "categorical":
        return list(spec["choices"])
    return [spec["low"], spec["high"]]


def _probe(family: str, name: str, value: Any, space: dict[str, Any], key: str) -> None:
    """Build the family with `value` set and let sklearn's own parameter checks judge it."""
    params = {p: _candidates(s)[0] for p, s in space.items()}
    condition = CONDITIONS.get((family, name))
    if condition:
        parent, allowed = condition
        if not set(allowed) & set(_candidates(space[parent])):
            return  # never suggested: its parent never takes the value that enables it
        params[parent] = allowed[0]
    params[name] = value
    try:
        model = build_model(family, params, Settings(0, 1, 1, None, "tpe", 0.1))
        for _, step in model.steps:
            # sklearn's constraint check that fit() runs first, without the fitting cost
            getattr(step, "_validate_params", lambda: None)()
    except (ValueError, TypeError) as error:
        raise InputError(f"config key '{key}': value {value!r} is not accepted: {error}") from None


def suggest_parameters(trial: optuna.Trial, family: str, space: dict[str, Any]) -> dict[str, Any]:
    """Draw one parameter set; conditional parameters only when their parent enables them."""
    params: dict[str, Any] = {}
    ordered = sorted(space, key=lambda name: (family, name) in CONDITIONS)
    for name in ordered:
        condition = CONDITIONS.get((family, name))
        if condition and params.get(condition[0]) not in condition[1]:
            continue
        spec = space[name]
        if spec["type"] == "categorical":
            params[name] = trial.suggest_categorical(name, spec["choices"])
        elif spec["type"] == "int":
            params[name] = trial.suggest_int(
                name,
                spec["low"],
                spec["high"],
                step=spec.get("step") or 1,
                log=spec.get("log", False),
            )
        else:
            params[name] = trial.suggest_float(
                name, spec["low"], spec["high"], step=spec.get("step"), log=spec.get("log", False)
            )
    return params


# ---------------------------------------------------------------- models


def _to_dense(table):
    """Gradient boosting and Gaussian naive Bayes need a dense array."""
    return table.toarray() if sp.issparse(table) else table


def _densify() -> FunctionTransformer:
    return FunctionTransformer(_to_dense, accept_sparse=True, feature_names_out="one-to-one")


def build_model(family: str, params: dict[str, Any], settings: Settings) -> Pipeline:
    """One unfitted pipeline (scaling + classifier) on the feature table.

    Scalers sit inside the pipeline so they are fitted on training rows only.
    """
    seed, weight, threads = settings.seed, settings.class_weight, settings.threads
    if family == "logistic_regression":
        # saga (needed for L1 / elastic net) converges in far fewer passes when
        # every feature lies in [-1, 1]; lbfgs is faster for plain L2.
        penalty = params["penalty"]
        if penalty not in ("l1", "l2", "elasticnet"):
            raise ValueError(f"penalty must be 'l1', 'l2' or 'elasticnet', got {penalty!r}")
        l1_ratio = {"l2": 0.0, "l1": 1.0}.get(penalty, params.get("l1_ratio", 0.5))
        model = LogisticRegression(
            C=params["C"],
            l1_ratio=l1_ratio,
            solver="lbfgs" if penalty == "l2" else "saga",
            tol=1e-4 if penalty == "l2" else 1e-3,
            max_iter=1000 if penalty == "l2" else 100,  # saga: bounded cost per trial
            class_weight=weight,
            random_state=seed,
        )
        return Pipeline([("scale", MaxAbsScaler()), ("model", model)])
    if family == "random_forest":
        model = RandomForestClassifier(
            n_estimators=params["n_estimators"],
            max_depth=params["max_depth"],
            min_samples_leaf=params["min_samples_leaf"],
            max_features=params["max_features"],
            class_weight=weight,
            n_jobs=threads,
            random_state=seed,
        )
        return Pipeline([("model", model)])
    if family == "knn":
        model = KNeighborsClassifier(
            n_neighbors=params["n_neighbors"],
            weights=params["weights"],
            metric=params["metric"],
            n_jobs=threads,
        )
        return Pipeline([("scale", StandardScaler(with_mean=False)), ("model", model)])
    if family == "naive_bayes":
        variant = params["variant"]
        if variant not in ("gaussian", "multinomial", "complement"):
            raise ValueError(
                f"variant must be 'gaussian', 'multinomial' or 'complement', got {variant!r}"
            )
        if variant == "gaussian":
            model = GaussianNB(var_smoothing=params["var_smoothing"])
        else:
            kind = MultinomialNB if variant == "multinomial" else ComplementNB
            model = kind(alpha=params["alpha"])
        # multinomial / complement NB need non-negative inputs: min-max scaling,
        # clipped so tune rows outside the training range stay in [0, 1].
        scale = MinMaxScaler(clip=True)
        return Pipeline([("dense", _densify()), ("scale", scale), ("model", model)])
    if family == "linear_svm":
        model = LinearSVC(C=params["C"], class_weight=weight, max_iter=5000, random_state=seed)
        return Pipeline([("scale", StandardScaler(with_mean=False)), ("model", model)])
    if family == "rbf_svm":
        model = SVC(
            C=params["C"],
            gamma=params["gamma"],
            class_weight=weight,
            cache_size=500,
            random_state=seed,
        )
        return Pipeline([("scale", StandardScaler(with_mean=False)), ("model", model)])
    if family == "hist_gradient_boosting":
        model = HistGradientBoostingClassifier(
            learning_rate=params["learning_rate"],
            max_iter=params["max_iter"],
            max_leaf_nodes=params["max_leaf_nodes"],
            min_samples_leaf=params["min_samples_leaf"],
            l2_regularization=params["l2_regularization"],
            class_weight=weight,
            early_stopping=False,  # no hidden random validation split; max_iter is tuned instead
            random_state=seed,
        )
        return Pipeline([("dense", _densify()), ("model", model)])
    raise ValueError(f"unknown baseline family {family!r}")


def fit_model(
    family: str,
    params: dict[str, Any],
    features,
    labels: np.ndarray,
    settings: Settings,
    calibrate: bool = False,
) -> Pipeline:
    """Fit one family; with `calibrate`, SVMs also get probabilities (Platt scaling).

    Platt scaling is fitted on 3-fold stratified cross-validation predictions
    within train, as SVC(probability=True) does; the SVM itself is the one fitted
    on all of train, so the ranking (AUROC) is that of the tuned model. The folds
    are deliberately not homology-aware: on a homology split one component often
    holds most of train (84% on amp), the folds that hold it out learn the
    opposite orientation, and the fitted sigmoid inverted the ranking (tune
    AUROC 0.85 -> 0.15 on amp).
    """
    model = build_model(family, params, settings)
    fit_params = {}
    if family == "naive_bayes" and settings.class_weight == "balanced":
        fit_params["model__sample_weight"] = compute_sample_weight("balanced", labels)
    if calibrate and family in CALIBRATED_FAMILIES:
        scale, margin = model.steps[0][1], model.steps[-1][1]
        folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=settings.seed)
        calibrated = CalibratedClassifierCV(margin, method="sigmoid", cv=folds, ensemble=False)
        calibrated.fit(scale.fit_transform(features), labels)
        return Pipeline([("scale", scale), ("model", calibrated)])
    model.fit(features, labels, **fit_params)
    if family == "random_forest":
        # threaded predict_proba sums the trees' votes in whatever order threads
        # finish, so scores differ in the last bit between runs; one thread is exact
        model.set_params(model__n_jobs=1)
    return model


# ---------------------------------------------------------------- scoring


def class_scores(model, features) -> np.ndarray:
    """One score column per class (in model.classes_ order): probabilities, else margins."""
    if hasattr(model, "predict_proba"):
        return model.predict_proba(features)
    margin = model.decision_function(features)
    return np.column_stack([-margin, margin]) if margin.ndim == 1 else margin


def score_predictions(
    task: Task, labels: np.ndarray, scores: np.ndarray, predicted: np.ndarray
) -> dict[str, float]:
    """Threshold metrics from predicted classes; AUROC/AUPRC from scores (one-vs-rest macro)."""
    ranked = [task.positive_class] if task.binary else list(task.classes)
    auroc, auprc = [], []
    for cls in ranked:
        truth = labels == cls
        column = scores[:, task.classes.index(cls)]
        if truth.all() or not truth.any():
            continue
        auroc.append(roc_auc_score(truth, column))
        auprc.append(average_precision_score(truth, column))
    return {
        "mcc": float(matthews_corrcoef(labels, predicted)),
        "macro_f1": float(f1_score(labels, predicted, average="macro", zero_division=0)),
        "balanced_accuracy": float(balanced_accuracy_score(labels, predicted)),
        "auroc": float(np.mean(auroc)) if auroc else float("nan"),
        "auprc": float(np.mean(auprc)) if auprc else float("nan"),
    }


def score_model(task: Task, model, features, labels: np.ndarray) -> dict[str, float]:
    return score_predictions(task, labels, class_scores(model, features), model.predict(features))


# ---------------------------------------------------------------- tuning


def tune_family(
    family: str,
    space: dict[str, Any],
    data: dict[str, Any],
    task: Task,
    settings: Settings,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Exactly `settings.trials` Optuna trials scored on tune; returns best params, trial rows."""
    sampler = (
        optuna.samplers.TPESampler(seed=settings.seed)
        if settings.sampler == "tpe"
        else optuna.samplers.RandomSampler(seed=settings.seed)
    )
    study = optuna.create_study(direction="maximize", sampler=sampler)
    rows: list[dict[str, Any]] = []

    def objective(trial: optuna.Trial) -> float:
        params = suggest_parameters(trial, family, space)
        started = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = fit_model(family, params, data["train_x"], data["train_y"], settings)
        seconds = time.perf_counter() - started
        metrics = score_model(task, model, data["tune_x"], data["tune_y"])
        score = metrics[task.primary_metric]
        score = -1.0 if np.isnan(score) else score
        notes = sorted({type(w.message).__name__ for w in caught})
        rows.append(
            {
                "family": family,
                "trial": trial.number,
                "params": json.dumps(params, sort_keys=True),
                "score": score,
                **metrics,
                "fit_seconds": round(seconds, 3),
                "warnings": ",".join(notes),
            }
        )
        best = max(r["score"] for r in rows)
        auroc = "" if task.primary_metric == "auroc" else f", auroc {metrics['auroc']:.4f}"
        log.info(
            "%s trial %d/%d: %s %.4f (best %.4f)%s, fit %.1f s%s",
            family,
            trial.number + 1,
            settings.trials,
            task.primary_metric,
            score,
            best,
            auroc,
            seconds,
            f" [{', '.join(notes)}]" if notes else "",
        )
        return score

    study.optimize(objective, n_trials=settings.trials)
    return dict(study.best_trial.params), rows


# ---------------------------------------------------------------- the stage


def run_baselines(
    train_path: Path,
    tune_path: Path,
    dataset: dict[str, Any],
    config: dict[str, Any],
    out_dir: Path,
    threads: int = 1,
) -> dict[str, Any]:
    """Tune every family, fit the controls, and write everything under `out_dir`.

    Reads `train_path` and `tune_path` only. All input checks run before the
    first output is written.
    """
    # The rule's threads go to joblib (forests, kNN). BLAS and OpenMP (gradient
    # boosting) run single-threaded: on these small matrices extra BLAS threads
    # only add overhead, and OpenMP threads spin-wait, which made gradient
    # boosting 5x slower on a shared 2-core node (docs/benchmarks.md).
    with threadpool_limits(limits=1):
        return _run(Path(train_path), Path(tune_path), dataset, config, Path(out_dir), threads)


def _run(
    train_path: Path,
    tune_path: Path,
    dataset: dict[str, Any],
    config: dict[str, Any],
    out_dir: Path,
    threads: int,
) -> dict[str, Any]:
    section = config["baselines"]
    check_settings(section)
    settings = settings_from(config, threads)
    train = read_partition(train_path, "train")
    tune = read_partition(tune_path, "tune")
    task = task_for(train, tune, dataset, section)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    log.info(
        "%d train and %d tune sequences, classes %s, primary metric %s, %d trials per family",
        len(train),
        len(tune),
        ", ".join(task.classes),
        task.primary_metric,
        settings.trials,
    )
    features = feature_maker(dataset["sequence_type"], section).fit(train["sequence"])
    data = {
        "train_x": features.transform(train["sequence"]),
        "train_y": train["label"].to_numpy(),
        "tune_x": features.transform(tune["sequence"]),
        "tune_y": tune["label"].to_numpy(),
    }
    log.info("features: %d columns (%s)", data["train_x"].shape[1], describe_features(features))

    fitted: list[Fitted] = []
    trial_rows: list[dict[str, Any]] = []
    for family in section["families"]:
        params, rows = tune_family(family, section["search_spaces"][family], data, task, settings)
        trial_rows += rows
        fitted.append(final_model(family, params, features, data, task, settings))
        log.info("%s: best %s", family, json.dumps(params, sort_keys=True))
    best = max(fitted, key=lambda f: f.tune[task.primary_metric])
    fitted += controls(best, features, data, train, tune, task, settings)
    inflation = random_split_check(best, train, tune, dataset, section, task, settings)
    warnings_found = shuffled_warning(fitted, settings, task, data["tune_y"])
    summary = write_outputs(
        fitted,
        trial_rows,
        inflation,
        warnings_found,
        features,
        train,
        tune,
        task,
        settings,
        out_dir,
    )
    return summary


def describe_features(features: SequenceFeatures) -> str:
    parts = [f"k-mer sizes {list(features.kmer_sizes)}"]
    if features.descriptors:
        parts.append("modlAMP descriptors")
    return ", ".join(parts)


def final_model(
    family: str,
    params: dict[str, Any],
    features: SequenceFeatures,
    data: dict[str, Any],
    task: Task,
    settings: Settings,
    name: str | None = None,
    labels: np.ndarray | None = None,
) -> Fitted:
    """Refit with the chosen params (SVMs calibrated) and wrap with the features: sequence in."""
    labels = data["train_y"] if labels is None else labels
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # this fit's warnings are in its trial's row
        model = fit_model(family, params, data["train_x"], labels, settings, calibrate=True)
    seconds = time.perf_counter() - started
    pipeline = Pipeline([("features", features), *model.steps])
    return Fitted(
        name=name or family,
        kind="tuned" if name is None else "control",
        family=family,
        params=params,
        pipeline=pipeline,
        fit_seconds=seconds,
        train=score_model(task, model, data["train_x"], data["train_y"]),
        tune=score_model(task, model, data["tune_x"], data["tune_y"]),
    )


def controls(
    best: Fitted,
    features: SequenceFeatures,
    data: dict[str, Any],
    train: pd.DataFrame,
    tune: pd.DataFrame,
    task: Task,
    settings: Settings,
) -> list[Fitted]:
    """Majority (prior), shuffled-label refit of the best family, and the shortcut model."""
    majority = DummyClassifier(strategy="prior")
    started = time.perf_counter()
    majority_pipeline = Pipeline([("features", features), ("model", majority)])
    majority.fit(data["train_x"], data["train_y"])
    majority_fit = Fitted(
        "control_majority",
        "control",
        "prior",
        {"strategy": "prior"},
        majority_pipeline,
        time.perf_counter() - started,
        train=score_model(task, majority, data["train_x"], data["train_y"]),
        tune=score_model(task, majority, data["tune_x"], data["tune_y"]),
    )
    shuffled_labels = np.random.default_rng(settings.seed).permutation(data["train_y"])
    shuffled = final_model(
        best.family,
        best.params,
        features,
        data,
        task,
        settings,
        name="control_shuffled",
        labels=shuffled_labels,
    )
    shuffled.train = score_model(task, shuffled.pipeline[1:], data["train_x"], shuffled_labels)
    shuffled.repeat_aurocs = [shuffled.tune["auroc"]]
    for repeat in range(1, settings.shuffled_repeats):
        labels = np.random.default_rng(settings.seed + repeat).permutation(data["train_y"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = fit_model(best.family, best.params, data["train_x"], labels, settings, True)
        shuffled.repeat_aurocs.append(
            score_model(task, model, data["tune_x"], data["tune_y"])["auroc"]
        )
    log.info(
        "shuffled-label control (%s): tune AUROC %s",
        best.family,
        ", ".join(f"{x:.3f}" for x in shuffled.repeat_aurocs),
    )
    return [majority_fit, shuffled, shortcut_control(train, tune, task, settings)]


def shortcut_control(
    train: pd.DataFrame, tune: pd.DataFrame, task: Task, settings: Settings
) -> Fitted:
    """A flexible model that sees only length, composition and the end residues.

    If it comes close to the tuned baselines, the labels are predictable from
    properties no biologist would accept as the explanation (Tip 7). Not tuned:
    gradient boosting's defaults, as a floor.
    """
    model = HistGradientBoostingClassifier(
        max_iter=100,
        early_stopping=False,
        class_weight=settings.class_weight,
        random_state=settings.seed,
    )
    pipeline = Pipeline([("features", ShortcutFeatures()), ("model", model)])
    started = time.perf_counter()
    pipeline.fit(train["sequence"].tolist(), train["label"].to_numpy())
    return Fitted(
        "control_shortcut",
        "control",
        "hist_gradient_boosting",
        {"features": ["length", "composition", "first_residue", "last_residue"], "max_iter": 100},
        pipeline,
        time.perf_counter() - started,
        train=score_model(task, pipeline, train["sequence"].tolist(), train["label"].to_numpy()),
        tune=score_model(task, pipeline, tune["sequence"].tolist(), tune["label"].to_numpy()),
    )


def random_split_check(
    best: Fitted,
    train: pd.DataFrame,
    tune: pd.DataFrame,
    dataset: dict[str, Any],
    section: dict[str, Any],
    task: Task,
    settings: Settings,
) -> dict[str, Any]:
    """Refit the best family on a random (not homology-aware) split of train + tune, same sizes.

    The gap between its tune score and the homology-split score is the
    optimism a random split would have reported on this dataset (Tip 7).
    """
    pooled = pd.concat([train, tune], ignore_index=True)
    random_train, random_tune = train_test_split(
        pooled, test_size=len(tune), stratify=pooled["label"], random_state=settings.seed
    )
    features = feature_maker(dataset["sequence_type"], section).fit(random_train["sequence"])
    data = {
        "train_x": features.transform(random_train["sequence"]),
        "train_y": random_train["label"].to_numpy(),
        "tune_x": features.transform(random_tune["sequence"]),
        "tune_y": random_tune["label"].to_numpy(),
    }
    refit = final_model(best.family, best.params, features, data, task, settings)
    inflation = {m: refit.tune[m] - best.tune[m] for m in METRICS}
    log.info(
        "random split: %s %s %.4f vs %.4f across homology partitions (inflation %+.4f)",
        best.family,
        task.primary_metric,
        refit.tune[task.primary_metric],
        best.tune[task.primary_metric],
        inflation[task.primary_metric],
    )
    return {
        "family": best.family,
        "params": best.params,
        "primary_metric": task.primary_metric,
        "homology_split": best.tune,
        "random_split": refit.tune,
        "inflation": inflation,
        "sizes": {"train": len(random_train), "tune": len(random_tune)},
    }


def shuffled_warning(
    fitted: list[Fitted], settings: Settings, task: Task, tune_labels: np.ndarray
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
    tolerance = max(settings.shuffled_auroc_tolerance, 3 * chance_auroc_error(task, tune_labels))
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
    shuffled.note = "WARNING: not at chance"
    return [message]


def chance_auroc_error(task: Task, labels: np.ndarray) -> float:
    """Standard error of AUROC for scores unrelated to the labels (Mann-Whitney null).

    Var = (n1 + n0 + 1) / (12 n1 n0); for several classes the largest one-vs-rest value.
    """
    errors = []
    for cls in [task.positive_class] if task.binary else task.classes:
        positives = int(np.sum(labels == cls))
        negatives = len(labels) - positives
        if positives and negatives:
            errors.append(np.sqrt((positives + negatives + 1) / (12 * positives * negatives)))
    return float(max(errors, default=0.0))


# ---------------------------------------------------------------- outputs


def prediction_rows(
    fitted: list[Fitted], train: pd.DataFrame, tune: pd.DataFrame, task: Task
) -> pd.DataFrame:
    """id, partition, model, label, predicted, score_<class> per class, and (binary) score.

    `score` is the positive-class probability, the one column binary metrics need.
    """
    frames = []
    for model in fitted:
        for partition, table in (("train", train), ("tune", tune)):
            sequences = table["sequence"].tolist()
            probabilities = model.pipeline.predict_proba(sequences)
            frame = pd.DataFrame(
                {
                    "id": table["id"].to_numpy(),
                    "partition": partition,
                    "model": model.name,
                    "label": table["label"].to_numpy(),
                    "predicted": model.pipeline.predict(sequences),
                }
            )
            for index, cls in enumerate(task.classes):
                frame[f"score_{cls}"] = probabilities[:, index]
            if task.binary:
                frame["score"] = frame[f"score_{task.positive_class}"]
            frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def summary_table(fitted: list[Fitted], task: Task) -> pd.DataFrame:
    primary = task.primary_metric
    rows = [
        {
            "model": f.name,
            "kind": f.kind,
            "family": f.family,
            **{m: round(f.tune[m], 6) for m in METRICS},
            f"train_{primary}": round(f.train[primary], 6),
            "fit_seconds": round(f.fit_seconds, 3),
            "note": f.note,
        }
        for f in fitted
    ]
    table = pd.DataFrame(rows).sort_values(
        [primary, "auroc", "model"], ascending=[False, False, True]
    )
    table.insert(0, "rank", range(1, len(table) + 1))
    return table


def write_outputs(
    fitted: list[Fitted],
    trial_rows: list[dict[str, Any]],
    inflation: dict[str, Any],
    warnings_found: list[str],
    features: SequenceFeatures,
    train: pd.DataFrame,
    tune: pd.DataFrame,
    task: Task,
    settings: Settings,
    out_dir: Path,
) -> dict[str, Any]:
    for model in fitted:
        with atomic_write(out_dir / "models" / f"{model.name}.joblib", "wb") as handle:
            joblib.dump(model.pipeline, handle)
        write_json(
            out_dir / "params" / f"{model.name}.json",
            {"model": model.name, "family": model.family, "params": model.params},
        )
    write_tsv(out_dir / OUTPUT_FILES["trials"], pd.DataFrame(trial_rows))
    write_tsv(out_dir / OUTPUT_FILES["predictions"], prediction_rows(fitted, train, tune, task))
    table = summary_table(fitted, task)
    write_tsv(out_dir / OUTPUT_FILES["summary_table"], table)
    write_json(out_dir / OUTPUT_FILES["inflation"], inflation)
    plot_summary(table, task, out_dir / OUTPUT_FILES["summary_figure"])
    plot_inflation(inflation, out_dir / OUTPUT_FILES["inflation_figure"])
    best = table.iloc[0]
    tuned = table[table["kind"] == "tuned"].iloc[0]
    summary = {
        "task": "binary" if task.binary else "multiclass",
        "classes": list(task.classes),
        "positive_class": task.positive_class,
        "primary_metric": task.primary_metric,
        "partitions": {"train": len(train), "tune": len(tune)},
        "features": {
            "columns": len(features.get_feature_names_out()),
            "kmer_sizes": list(features.kmer_sizes),
            "descriptors": bool(features.descriptors),
        },
        "trials_per_family": settings.trials,
        "sampler": settings.sampler,
        "seed": settings.seed,
        "class_weight": settings.class_weight or "none",
        "best_model": best["model"],
        "best_tuned": {"model": tuned["model"], "params": _params_of(fitted, tuned["model"])},
        "models": {
            f.name: {"kind": f.kind, "family": f.family, "tune": f.tune, "train": f.train}
            for f in fitted
        },
        "random_split": inflation,
        "shuffled_control_aurocs": _shuffled_aurocs(fitted),
        "warnings": warnings_found,
        "model_input": "list of sequence strings; predict_proba columns follow classes",
    }
    write_json(out_dir / OUTPUT_FILES["summary"], summary)
    return summary


def _shuffled_aurocs(fitted: list[Fitted]) -> list[float]:
    return next((f.repeat_aurocs for f in fitted if f.name == "control_shuffled"), [])


def _params_of(fitted: list[Fitted], name: str) -> dict[str, Any]:
    return next(f.params for f in fitted if f.name == name)


def plot_summary(table: pd.DataFrame, task: Task, path: Path) -> None:
    """Every model's tune score (primary metric) with AUROC beside it, best on top."""
    ordered = table.iloc[::-1]
    positions = np.arange(len(ordered))
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(ordered) + 1.5))
    ax.barh(positions - 0.2, ordered[task.primary_metric], height=0.4, label=task.primary_metric)
    ax.barh(positions + 0.2, ordered["auroc"], height=0.4, label="AUROC")
    ax.set_yticks(positions, ordered["model"])
    ax.axvline(0.5, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("score on the tune partition")
    ax.legend(loc="lower right")
    _save(fig, path)


def plot_inflation(inflation: dict[str, Any], path: Path) -> None:
    """The best family's tune score on the homology split next to a random split."""
    metrics = [inflation["primary_metric"], "auroc"]
    positions = np.arange(len(metrics))
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for offset, split, label in (
        (-0.2, "homology_split", "homology split"),
        (0.2, "random_split", "random split"),
    ):
        values = [inflation[split][m] for m in metrics]
        bars = ax.bar(positions + offset, values, width=0.4, label=label)
        ax.bar_label(bars, fmt="%.3f", fontsize=8)
    ax.set_xticks(positions, metrics)
    ax.set_ylim(min(0.0, *ax.get_ylim()), 1.1)
    ax.set_ylabel(f"tune score, {inflation['family']}")
    ax.set_title("What a random split would have told you", fontsize=10)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2, frameon=False)
    _save(fig, path)


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    with atomic_write(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=120)
    plt.close(fig)
