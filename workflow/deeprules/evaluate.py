"""Open the test partition once and score every final model on it (Tips 7 and 9).

Tip 7: the test set is used once, after every choice has been made on train and
tune; a panel of metrics that does not assume a balanced test set replaces a
single AUROC, and every number carries a bootstrap confidence interval. Tip 9:
before anyone interprets the winner, we look at where it fails (metadata
groups, sequence length, distance to the training set) and at how much better
it really is than the baselines and the controls.

Everything the evaluation decides is decided without test labels: the
decision threshold of each binary model comes from its tune predictions, the
"best baseline" is the best on tune, and bins are fixed in the config.

Metrics are computed on *weighted* samples: a bootstrap resample is a vector
of counts (how often each test sequence was drawn), so the point estimate
(all weights 1) and a thousand resamples go through the same code, as one
matrix of weights, without copying data (fast, and the CI is guaranteed to be
of the number reported).
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
import scipy.sparse as sp

from deeprules.io import (
    InputError,
    atomic_write,
    read_json,
    read_tsv,
    resolve_positive_class,
    sha256_of,
    write_json,
    write_tsv,
)

matplotlib.use("Agg")
import matplotlib.pyplot as plt

log = logging.getLogger("deeprules.evaluate")

# Lower is better for these; every other metric is higher-is-better.
LOWER_IS_BETTER = frozenset({"brier", "ece"})
METRIC_NAMES = {
    "auroc": "AUROC",
    "auroc_macro": "macro AUROC",
    "auroc_micro": "micro AUROC",
    "auprc": "AUPRC",
    "auprc_macro": "macro AUPRC",
    "auprc_micro": "micro AUPRC",
    "auprc_baseline": "AUPRC of a random ranking (prevalence)",
    "mcc": "MCC",
    "balanced_accuracy": "balanced accuracy",
    "accuracy": "accuracy",
    "f1": "F1",
    "f1_macro": "macro F1",
    "f1_micro": "micro F1",
    "precision": "precision",
    "precision_macro": "macro precision",
    "precision_micro": "micro precision",
    "recall": "recall",
    "recall_macro": "macro recall",
    "recall_micro": "micro recall",
    "brier": "Brier score",
    "ece": "expected calibration error",
}
BINARY_METRICS = (
    "auroc auprc auprc_baseline mcc balanced_accuracy accuracy f1 precision recall brier ece"
)
MULTICLASS_METRICS = (
    "auroc_macro auroc_micro auprc_macro auprc_micro auprc_baseline mcc balanced_accuracy "
    "accuracy f1_macro f1_micro precision_macro precision_micro recall_macro recall_micro "
    "brier ece"
)
# Bootstrap weights are built in blocks of at most this many cells (resamples x
# sequences), so 1,000 resamples of a million test sequences still fit in memory.
BLOCK_CELLS = 20_000_000


# --- the task -----------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    """What is being predicted: class order, the positive class, calibration bins.

    Binary tasks are scored on the probability of `positive`; a sequence is
    called positive when that probability is at or above the model's
    threshold. Multi-class tasks call the most probable class.
    """

    classes: tuple[str, ...]
    positive: str | None = None
    calibration_bins: int = 10

    @property
    def binary(self) -> bool:
        return len(self.classes) == 2

    @property
    def positive_index(self) -> int:
        return self.classes.index(self.positive)

    def codes(self, labels: Iterable[str]) -> np.ndarray:
        """Class index of every label; an unknown label is an input error."""
        index = {name: i for i, name in enumerate(self.classes)}
        labels = list(labels)
        unknown = sorted(set(labels) - set(index))
        if unknown:
            raise InputError(f"labels {unknown} are not among the classes {list(self.classes)}")
        return np.array([index[label] for label in labels], dtype=np.int64)

    def metric_names(self) -> list[str]:
        if self.binary:
            return BINARY_METRICS.split()
        return MULTICLASS_METRICS.split()

    def resolve(self, metric: str) -> str:
        """The config's metric name for this task ('auroc' means macro AUROC for 3+ classes)."""
        if self.binary or metric in self.metric_names():
            return metric
        return f"{metric}_macro"


def make_task(labels: Iterable[str], positive_class: str | None, calibration_bins: int) -> Task:
    """Classes in sorted order (the order of every stage's `score_<class>` columns).

    A binary task's positive class follows `deeprules.io.resolve_positive_class`, the rule
    the baselines and cnn stages use too.
    """
    labels = list(labels)
    classes = tuple(sorted(set(labels)))
    if len(classes) < 2:
        raise InputError(f"evaluation needs at least two classes, found {list(classes)}")
    return Task(classes, resolve_positive_class(labels, positive_class, "train"), calibration_bins)


# --- metrics on weighted samples ------------------------------------------------


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray, empty: float) -> np.ndarray:
    """numerator / denominator, with `empty` where the denominator is 0 (as sklearn does)."""
    numerator, denominator = np.broadcast_arrays(
        np.asarray(numerator, dtype=np.float64), np.asarray(denominator, dtype=np.float64)
    )
    out = np.full(numerator.shape, empty, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def ranking_curves(
    scores: np.ndarray, positive: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted true- and false-positive counts at every distinct score, highest first.

    Sequences with equal scores enter together, so ties count half in AUROC and
    as one step in AUPRC, exactly as sklearn counts them.
    Returns tp, fp of shape (resamples, distinct scores).
    """
    order = np.argsort(-scores, kind="mergesort")
    ordered = scores[order]
    group_ends = np.flatnonzero(np.r_[ordered[1:] != ordered[:-1], True])
    w = weights[:, order]
    hits = positive[order]
    tp = np.cumsum(w * hits, axis=1)[:, group_ends]
    fp = np.cumsum(w, axis=1)[:, group_ends] - tp
    return tp, fp


def ranking_metrics(
    scores: np.ndarray, positive: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """AUROC (trapezoids = Mann-Whitney with half-counted ties) and average precision.

    Average precision is the area under the precision-recall steps, as sklearn
    defines it. Both come from one pass over the ranking.
    """
    tp, fp = ranking_curves(scores, positive, weights)
    zeros = np.zeros((len(tp), 1))
    tp0, fp0 = np.hstack([zeros, tp]), np.hstack([zeros, fp])
    area = np.sum(np.diff(fp0, axis=1) * (tp0[:, 1:] + tp0[:, :-1]) / 2, axis=1)
    auroc = _safe_divide(area, tp[:, -1] * fp[:, -1], np.nan)
    precision = _safe_divide(tp, tp + fp, 0.0)
    average_precision = _safe_divide(
        np.sum(np.diff(tp0, axis=1) * precision, axis=1), tp[:, -1], np.nan
    )
    return auroc, average_precision


def _times(weights: np.ndarray, matrix: np.ndarray | sp.spmatrix) -> np.ndarray:
    """weights (resamples, n) @ matrix (n, k), with a sparse matrix on the right."""
    if sp.issparse(matrix):
        return np.asarray((matrix.T @ weights.T).T)
    return weights @ matrix


def confusion_counts(
    truth: np.ndarray, called: np.ndarray, n_classes: int, weights: np.ndarray
) -> np.ndarray:
    """Weighted confusion matrices (resamples, true class, called class)."""
    cell = truth * n_classes + called
    indicator = sp.csr_matrix(
        (np.ones(len(cell)), (np.arange(len(cell)), cell)), shape=(len(cell), n_classes**2)
    )
    return _times(weights, indicator).reshape(len(weights), n_classes, n_classes)


def _confusion_metrics(confusion: np.ndarray, positive: int | None) -> dict[str, np.ndarray]:
    """MCC, accuracies, precision/recall/F1 from confusion matrices, as sklearn computes them."""
    diagonal = np.diagonal(confusion, axis1=1, axis2=2)
    true_totals = confusion.sum(axis=2)
    called_totals = confusion.sum(axis=1)
    total = true_totals.sum(axis=1)
    correct = diagonal.sum(axis=1)
    covariance = correct * total - np.sum(true_totals * called_totals, axis=1)
    spread = (total**2 - np.sum(called_totals**2, axis=1)) * (
        total**2 - np.sum(true_totals**2, axis=1)
    )
    recall = _safe_divide(diagonal, true_totals, np.nan)
    precision = _safe_divide(diagonal, called_totals, 0.0)
    f1 = _safe_divide(2 * diagonal, true_totals + called_totals, 0.0)
    # sklearn averages over the classes present among true or called labels
    present = (true_totals + called_totals) > 0
    out = {
        "mcc": _safe_divide(covariance, np.sqrt(spread), 0.0),
        "balanced_accuracy": _nanmean_rows(recall),
        "accuracy": _safe_divide(correct, total, np.nan),
    }
    if positive is not None:
        out["f1"] = f1[:, positive]
        out["precision"] = precision[:, positive]
        out["recall"] = np.nan_to_num(recall[:, positive], nan=0.0)
    else:
        out["f1_macro"] = _masked_mean(f1, present)
        out["precision_macro"] = _masked_mean(precision, present)
        out["recall_macro"] = _masked_mean(np.nan_to_num(recall, nan=0.0), present)
        # one label per sequence: micro precision = micro recall = micro F1 = accuracy
        for name in ("f1_micro", "precision_micro", "recall_micro"):
            out[name] = out["accuracy"]
    return out


def _nanmean_rows(values: np.ndarray) -> np.ndarray:
    present = ~np.isnan(values)
    return _safe_divide(np.where(present, values, 0).sum(axis=1), present.sum(axis=1), np.nan)


def _masked_mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return _safe_divide(np.where(mask, values, 0).sum(axis=1), mask.sum(axis=1), np.nan)


def calibration_error(
    confidence: np.ndarray, outcome: np.ndarray, bins: int, weights: np.ndarray
) -> np.ndarray:
    """Expected calibration error over equal-width bins of predicted probability.

    ECE = sum over bins of |observed frequency - mean predicted probability| x
    share of sequences in the bin; written as |sum(outcome - confidence)| per
    bin so that it is one sparse product per block of resamples.
    """
    which = np.minimum((confidence * bins).astype(np.int64), bins - 1)
    gaps = sp.csr_matrix(
        (outcome - confidence, (np.arange(len(which)), which)), shape=(len(which), bins)
    )
    return _safe_divide(np.abs(_times(weights, gaps)).sum(axis=1), weights.sum(axis=1), np.nan)


def called_classes(probabilities: np.ndarray, task: Task, threshold: float | None) -> np.ndarray:
    """Called class: positive-class probability vs threshold (binary), else most probable."""
    if task.binary:
        negative = 1 - task.positive_index
        return np.where(
            probabilities[:, task.positive_index] >= threshold, task.positive_index, negative
        )
    return np.argmax(probabilities, axis=1)


def metric_panel(
    probabilities: np.ndarray,
    truth: np.ndarray,
    task: Task,
    threshold: float | None,
    weights: np.ndarray,
) -> dict[str, np.ndarray]:
    """Every metric of the panel, one value per row of `weights` (resamples x sequences)."""
    called = called_classes(probabilities, task, threshold)
    n_classes = len(task.classes)
    panel = _confusion_metrics(
        confusion_counts(truth, called, n_classes, weights),
        task.positive_index if task.binary else None,
    )
    onehot = np.eye(n_classes)[truth]
    total = weights.sum(axis=1)
    if task.binary:
        p = task.positive_index
        is_positive = truth == p
        panel["auroc"], panel["auprc"] = ranking_metrics(probabilities[:, p], is_positive, weights)
        panel["auprc_baseline"] = _safe_divide(weights @ is_positive, total, np.nan)
        squared = (probabilities[:, p] - is_positive) ** 2
        panel["ece"] = calibration_error(
            probabilities[:, p], is_positive.astype(float), task.calibration_bins, weights
        )
    else:
        per_class = [
            ranking_metrics(probabilities[:, k], truth == k, weights) for k in range(n_classes)
        ]
        panel["auroc_macro"] = np.nanmean([auc for auc, _ in per_class], axis=0)
        panel["auprc_macro"] = np.nanmean([ap for _, ap in per_class], axis=0)
        flat_weights = np.repeat(weights, n_classes, axis=1)
        flat_scores, flat_truth = probabilities.ravel(), onehot.ravel().astype(bool)
        panel["auroc_micro"], panel["auprc_micro"] = ranking_metrics(
            flat_scores, flat_truth, flat_weights
        )
        panel["auprc_baseline"] = np.full(len(weights), 1 / n_classes)
        squared = np.sum((probabilities - onehot) ** 2, axis=1)
        top = probabilities.max(axis=1)
        panel["ece"] = calibration_error(
            top,
            (np.argmax(probabilities, axis=1) == truth).astype(float),
            task.calibration_bins,
            weights,
        )
    panel["brier"] = _safe_divide(weights @ squared, total, np.nan)
    return {name: panel[name] for name in task.metric_names()}


def point_metrics(
    probabilities: np.ndarray, truth: np.ndarray, task: Task, threshold: float | None
) -> dict[str, float]:
    """The panel on the sequences as they are (every weight 1)."""
    ones = np.ones((1, len(truth)))
    return {
        k: float(v[0]) for k, v in metric_panel(probabilities, truth, task, threshold, ones).items()
    }


# --- bootstrap ------------------------------------------------------------------


def stratified_bootstrap(truth: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Counts (resamples, n): each class resampled with replacement within itself.

    Stratifying keeps the class balance of the test set in every resample, so
    AUROC is always defined and prevalence-dependent metrics (AUPRC, precision)
    vary only through the model, not through a changing class mix.
    """
    n = len(truth)
    counts = np.zeros((resamples, n), dtype=np.float64)
    offsets = (np.arange(resamples) * n)[:, None]
    for k in np.unique(truth):
        members = np.flatnonzero(truth == k)
        draws = members[rng.integers(0, len(members), size=(resamples, len(members)))]
        counts += np.bincount((draws + offsets).ravel(), minlength=resamples * n).reshape(
            resamples, n
        )
    return counts


def bootstrap_panels(
    probabilities: dict[str, np.ndarray],
    truth: np.ndarray,
    task: Task,
    thresholds: dict[str, float | None],
    resamples: int,
    seed: int,
) -> dict[str, dict[str, np.ndarray]]:
    """Bootstrap distribution of every metric of every model, on shared resamples.

    All models see the same resamples (paired), so differences between models
    can be read off directly for the comparisons.
    """
    rng = np.random.default_rng(seed)
    block = max(1, min(resamples, BLOCK_CELLS // max(1, len(truth) * len(task.classes))))
    parts: dict[str, dict[str, list[np.ndarray]]] = {m: {} for m in probabilities}
    for start in range(0, resamples, block):
        weights = stratified_bootstrap(truth, min(block, resamples - start), rng)
        for model, probs in probabilities.items():
            panel = metric_panel(probs, truth, task, thresholds[model], weights)
            for name, values in panel.items():
                parts[model].setdefault(name, []).append(values)
    return {m: {k: np.concatenate(v) for k, v in panel.items()} for m, panel in parts.items()}


def interval(values: np.ndarray, level: float) -> tuple[float | None, float | None]:
    """Percentile interval of a bootstrap distribution (None if never defined)."""
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return None, None
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


# --- decisions made on tune -------------------------------------------------------


def choose_threshold(scores: np.ndarray, positive: np.ndarray, criterion: str) -> float:
    """Probability cut-off that maximises `criterion` (mcc, f1 or balanced_accuracy) on tune.

    Candidates lie halfway between consecutive distinct scores, so the cut does
    not sit exactly on a tune sequence; ties in the criterion go to the higher
    cut-off (fewer positive calls).
    """
    tp, fp = ranking_curves(scores, positive, np.ones((1, len(scores))))
    tp, fp = tp[0], fp[0]
    n_pos, n_neg = tp[-1], fp[-1]
    if n_pos == 0 or n_neg == 0:
        raise InputError(
            "the tune partition must contain both classes to choose a decision threshold"
        )
    fn, tn = n_pos - tp, n_neg - fp
    if criterion == "mcc":
        value = _safe_divide(
            tp * tn - fp * fn, np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)), 0.0
        )
    elif criterion == "f1":
        value = _safe_divide(2 * tp, 2 * tp + fp + fn, 0.0)
    elif criterion == "balanced_accuracy":
        value = (tp / n_pos + tn / n_neg) / 2
    else:
        raise InputError(f"config key 'evaluate.threshold_metric': unknown criterion '{criterion}'")
    best = int(np.argmax(value))
    distinct = np.unique(scores)[::-1]
    if best + 1 < len(distinct):
        return float((distinct[best] + distinct[best + 1]) / 2)
    return float(distinct[best])


def best_on_tune(
    stage_predictions: pd.DataFrame,
    candidates: list[str],
    task: Task,
    metric: str,
    thresholds: dict[str, float | None],
) -> str | None:
    """The baseline with the best tune score: chosen before test is looked at."""
    scores = {}
    for model in candidates:
        tune = stage_predictions[
            (stage_predictions["model"] == model) & (stage_predictions["partition"] == "tune")
        ]
        if len(tune):
            probs, truth = prediction_arrays(tune, task)
            scores[model] = _oriented(metric, point_metrics(probs, truth, task, thresholds[model]))
    return max(scores, key=scores.get) if scores else None


def _oriented(metric: str, values: dict[str, float]) -> float:
    """Higher is better for every metric, so 'best' is always the maximum."""
    value = values[metric]
    return -value if metric in LOWER_IS_BETTER else value


def prediction_arrays(table: pd.DataFrame, task: Task) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities in class order, class index) from a predictions table."""
    columns = [f"score_{name}" for name in task.classes]
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InputError(f"predictions table lacks the score columns {missing}")
    return table[columns].astype(float).to_numpy(), task.codes(table["label"])


def tune_thresholds(
    stage_predictions: pd.DataFrame, models: list[str], task: Task, criterion: str
) -> tuple[dict[str, float | None], dict[str, str]]:
    """Each binary model's decision threshold, chosen on its own tune predictions."""
    thresholds: dict[str, float | None] = {}
    sources: dict[str, str] = {}
    for model in models:
        if not task.binary:
            thresholds[model], sources[model] = None, "most probable class (multi-class)"
            continue
        tune = stage_predictions[
            (stage_predictions["model"] == model) & (stage_predictions["partition"] == "tune")
        ]
        if tune.empty:
            thresholds[model], sources[model] = 0.5, "0.5: no tune predictions for this model"
            log.warning("model %s has no tune predictions; using threshold 0.5", model)
            continue
        probs, truth = prediction_arrays(tune, task)
        thresholds[model] = choose_threshold(
            probs[:, task.positive_index], truth == task.positive_index, criterion
        )
        sources[model] = f"maximises {criterion} on tune"
    return thresholds, sources


# --- the single look at the test partition -----------------------------------------


class TestReuseRefused(InputError):
    """A new set of models asked to see a test partition that was already used."""

    __test__ = False  # not a pytest test class, despite the name


def model_fingerprint(path: Path) -> str:
    """What identifies a model's content, for deciding whether it was scored before.

    A .keras file is a zip whose metadata.json holds the save date, so saving
    the same weights twice gives two file hashes; its fingerprint hashes the
    other members instead. Every other file is fingerprinted by its sha256.
    """
    if path.suffix == ".keras" and zipfile.is_zipfile(path):
        digest = hashlib.sha256()
        with zipfile.ZipFile(path) as archive:
            for name in sorted(archive.namelist()):
                if name != "metadata.json":
                    digest.update(name.encode() + b"\0" + archive.read(name))
        return digest.hexdigest()
    return sha256_of(path)


def record_test_access(
    ledger_path: Path,
    test_path: Path,
    model_files: dict[str, Path],
    allow_reuse: bool,
    now: datetime.datetime | None = None,
) -> dict[str, Any]:
    """Check the access ledger, then write this access into it, BEFORE the test file is read.

    Why a ledger outside the rule's outputs: Snakemake deletes a job's declared
    outputs before running it (and again if it fails), so a record kept only in
    results/<dataset>/evaluate/ would be gone exactly when it is needed, on the
    rerun. The ledger therefore lives in results/<dataset>/evaluate_access/,
    which no rule declares; Snakemake never touches it, and
    `--delete-all-output` leaves it too. The rule's declared test_access.json is
    a copy written at the end, for the report. (The rule flags its outputs
    update(), so Snakemake restores the previous results when a refusal fails
    the job.)

    Rules: the first evaluation is access 1. Re-running with exactly the models
    and test file of an earlier access reveals nothing new (same numbers), so it
    is allowed and not counted. Any other model set (a model added, removed or
    changed), or a changed test file, is refused with TestReuseRefused — before
    anything is written — unless `allow_reuse`; then it becomes the next access.
    The access is recorded before test labels are read, so a run that crashes
    half-way still counts as a look.
    """
    test_sha256 = sha256_of(test_path)
    models = {
        name: {"file": str(path), "sha256": sha256_of(path), "fingerprint": model_fingerprint(path)}
        for name, path in sorted(model_files.items())
    }
    ledger = read_json(ledger_path) if ledger_path.exists() else {"accesses": []}
    ledger.pop("schema_version", None)
    wanted = _access_key(test_sha256, models)
    for access in ledger["accesses"]:
        if _access_key(access["test_sha256"], access["models"]) == wanted:
            log.info("same models and test file as access %d: not a new look", access["access"])
            return {**ledger, "current_access": access["access"]}
    if ledger["accesses"] and not allow_reuse:
        raise TestReuseRefused(_refusal(ledger, ledger_path, test_path, test_sha256, models))
    number = len(ledger["accesses"]) + 1
    now = now or datetime.datetime.now(datetime.UTC)
    ledger["accesses"].append(
        {
            "access": number,
            "utc": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "test_file": str(test_path),
            "test_sha256": test_sha256,
            "models": models,
            "allow_reuse": allow_reuse,
        }
    )
    ledger.update(access_count=number, current_access=number)
    write_json(ledger_path, ledger)
    log.info("test partition access %d recorded in %s", number, ledger_path)
    return {**ledger, "current_access": number}


def _access_key(test_sha256: str, models: dict[str, dict[str, str]]) -> tuple:
    return test_sha256, tuple(sorted((name, m["fingerprint"]) for name, m in models.items()))


def _refusal(
    ledger: dict[str, Any],
    ledger_path: Path,
    test_path: Path,
    test_sha256: str,
    models: dict[str, dict[str, str]],
) -> str:
    """Say what changed since the last look and how to proceed."""
    last = ledger["accesses"][-1]
    before = {name: m["fingerprint"] for name, m in last["models"].items()}
    now = {name: m["fingerprint"] for name, m in models.items()}
    changes = [
        f"added: {', '.join(sorted(set(now) - set(before)))}" if set(now) - set(before) else "",
        f"removed: {', '.join(sorted(set(before) - set(now)))}" if set(before) - set(now) else "",
        "changed: " + ", ".join(sorted(n for n in set(now) & set(before) if now[n] != before[n]))
        if any(now[n] != before[n] for n in set(now) & set(before))
        else "",
        "the test file itself changed" if last["test_sha256"] != test_sha256 else "",
    ]
    return (
        f"refusing to open the test partition {test_path} again: it was already used "
        f"{len(ledger['accesses'])} time(s), last on {last['utc']} (access {last['access']}), "
        f"and this run would score a different set of models "
        f"({'; '.join(c for c in changes if c)}). Each look at the test set with new models "
        "leaks test information into model choice (Tip 7). If this evaluation is intended "
        "(e.g. after fixing a bug), set 'evaluate: allow_reuse: true' in config/config.yaml; "
        f"the access count then goes up and the report shows it. Ledger: {ledger_path}. "
        "Nothing was written."
    )


# --- the other stages' files: the one place that knows their layout ------------------


@dataclass
class FinalModel:
    """A model to score on test: its name, role, file and a way to get class probabilities.

    role: 'baseline' (a tuned family), 'control' (majority, shuffled labels,
    trivial features) or 'cnn'. `probabilities(sequences)` returns a table with
    one column per class name.
    """

    name: str
    role: str
    path: Path
    probabilities: Callable[[list[str]], pd.DataFrame] = field(repr=False)


CONTROL_WORDS = ("control", "majority", "shuffled", "trivial", "shortcut", "dummy")


def baseline_role(row: pd.Series) -> str:
    """'control' or 'baseline' for a row of baselines/summary.tsv.

    Uses a `role` or `kind` column when the baselines stage writes one, else
    recognises controls by name (majority, shuffled labels, trivial features).
    """
    for column in ("role", "kind"):
        if column in row.index and row[column]:
            return "control" if "control" in row[column].lower() else "baseline"
    return "control" if any(w in row["model"].lower() for w in CONTROL_WORDS) else "baseline"


def baseline_models(summary_path: Path, models_dir: Path) -> list[FinalModel]:
    """Every model in baselines/summary.tsv, as saved in baselines/models/<model>.joblib."""
    import joblib

    def scorer(path: Path) -> Callable[[list[str]], pd.DataFrame]:
        def probabilities(sequences: list[str]) -> pd.DataFrame:
            pipeline = joblib.load(path)
            probs = pipeline.predict_proba(np.asarray(sequences, dtype=object))
            return pd.DataFrame(probs, columns=[str(c) for c in pipeline.classes_])

        return probabilities

    models = []
    for _, row in read_tsv(summary_path).iterrows():
        path = models_dir / f"{row['model']}.joblib"
        if not path.is_file():
            raise InputError(f"{summary_path}: model '{row['model']}' has no file {path}")
        models.append(FinalModel(row["model"], baseline_role(row), path, scorer(path)))
    return models


def cnn_model(
    model_path: Path, summary_path: Path, dataset: dict[str, Any], cnn_config: dict[str, Any]
) -> FinalModel:
    """The tuned CNN, scored by deeprules.cnn.predict_proba (class order from cnn/summary.json)."""
    classes = [str(c) for c in read_json(summary_path)["classes"]]

    def probabilities(sequences: list[str]) -> pd.DataFrame:
        from deeprules.cnn import predict_proba

        return pd.DataFrame(
            predict_proba(model_path, sequences, dataset, cnn_config), columns=classes
        )

    return FinalModel("cnn", "cnn", model_path, probabilities)


def read_stage_predictions(
    paths: Iterable[Path], summaries: dict[Path, Path] | None = None
) -> pd.DataFrame:
    """Train and tune predictions of every stage (id, partition, model, label, score_<class>).

    A two-class table with only `score` (P of the stage's positive class) gets
    its score_<class> columns from the stage's summary.json (`classes`, and
    `positive_class`, else the last class), given in `summaries` by table path.
    """
    tables = []
    for path in paths:
        table = read_tsv(path)
        missing = {"id", "partition", "model", "label"} - set(table.columns)
        if missing:
            raise InputError(f"{path}: missing columns {sorted(missing)}")
        if "test" in set(table["partition"]):
            raise InputError(f"{path}: holds test predictions; stages must not score test")
        if not any(c.startswith("score_") for c in table.columns) and path in (summaries or {}):
            table = _binary_score_columns(table, read_json(summaries[path]), path)
        tables.append(table)
    return pd.concat(tables, ignore_index=True)


def _binary_score_columns(table: pd.DataFrame, summary: dict[str, Any], path: Path) -> pd.DataFrame:
    classes = [str(c) for c in summary["classes"]]
    if len(classes) != 2 or "score" not in table.columns:
        raise InputError(f"{path}: needs one score_<class> column per class {classes}")
    positive = summary.get("positive_class") or classes[-1]
    negative = next(c for c in classes if c != positive)
    score = table["score"].astype(float)
    return table.assign(**{f"score_{positive}": score, f"score_{negative}": 1 - score})


def nearest_training_identity(
    test: pd.DataFrame,
    train: pd.DataFrame,
    sequence_type: str,
    settings: dict[str, Any],
    threads: int,
    workdir: Path | None = None,
) -> pd.Series:
    """Identity of each test sequence to its most similar training sequence (0 = no hit).

    MMseqs2 via deeprules.mmseqs.similar_pairs, searching only test-train
    pairs; the floor `identity_min` is low so nearly every test sequence finds
    its best hit. A sequence with no hit above the floor gets 0 (lowest bin).
    """
    from deeprules.mmseqs import similar_pairs

    table = pd.concat(
        [
            test[["id", "sequence"]].assign(partition="test"),
            train[["id", "sequence"]].assign(partition="train"),
        ],
        ignore_index=True,
    )
    pairs = similar_pairs(
        table,
        sequence_type,
        min_identity=settings["identity_min"],
        denominator=settings["identity_denominator"],
        workdir=workdir,
        threads=threads,
        exhaustive=settings["identity_exhaustive"],
        between="partition",
    )
    test_ids = set(test["id"])
    pairs = pairs.assign(
        test_id=np.where(pairs["query"].isin(test_ids), pairs["query"], pairs["target"])
    )
    best = pairs.groupby("test_id")["identity"].max()
    return best.reindex(test["id"]).fillna(0.0).astype(float)


# --- scoring, comparisons, overfitting ---------------------------------------------


def score_test(models: list[FinalModel], sequences: list[str], task: Task) -> dict[str, np.ndarray]:
    """Class probabilities of every model on the test sequences, columns in task order."""
    scored = {}
    for model in models:
        log.info("scoring %s (%s) on %d test sequences", model.name, model.role, len(sequences))
        table = model.probabilities(sequences)
        missing = sorted(set(task.classes) - set(table.columns))
        if missing:
            raise InputError(
                f"model {model.name} ({model.path}) does not predict classes {missing}"
            )
        scored[model.name] = table[list(task.classes)].to_numpy(dtype=np.float64)
    return scored


def predictions_table(
    test: pd.DataFrame,
    probabilities: dict[str, np.ndarray],
    task: Task,
    thresholds: dict[str, float | None],
) -> pd.DataFrame:
    """One row per test sequence and model: id, model, score, label, called class, score_<class>.

    `score` is the probability of the positive class (binary) or of the called
    class (multi-class).
    """
    rows = []
    for model, probs in probabilities.items():
        called = called_classes(probs, task, thresholds[model])
        score = (
            probs[:, task.positive_index] if task.binary else probs[np.arange(len(probs)), called]
        )
        rows.append(
            pd.DataFrame(
                {
                    "id": test["id"].to_numpy(),
                    "model": model,
                    "score": score,
                    "label": test["label"].to_numpy(),
                    "predicted": np.asarray(task.classes)[called],
                    **{f"score_{c}": probs[:, k] for k, c in enumerate(task.classes)},
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def display_name(model: str, role: str) -> str:
    return "the CNN" if role == "cnn" else model.replace("_", " ")


def compare(
    candidate: str,
    reference: str,
    roles: dict[str, str],
    metric: str,
    points: dict[str, dict[str, float]],
    distributions: dict[str, dict[str, np.ndarray]],
    level: float,
    why: str,
) -> dict[str, Any]:
    """Paired bootstrap comparison of two models on one metric, with a verdict in words.

    Both models were scored on the same resamples, so the difference per
    resample is paired. p is two-sided: twice the smaller share of resamples on
    either side of zero (with the +1 correction that keeps it above 0).
    """
    sign = -1 if metric in LOWER_IS_BETTER else 1  # positive difference = candidate better
    difference = sign * (distributions[candidate][metric] - distributions[reference][metric])
    difference = difference[~np.isnan(difference)]
    observed = sign * (points[candidate][metric] - points[reference][metric])
    low, high = interval(difference, level)
    n = len(difference)
    p_value = min(
        1.0,
        2 * min((1 + np.sum(difference <= 0)) / (n + 1), (1 + np.sum(difference >= 0)) / (n + 1)),
    )
    who, other = (
        display_name(candidate, roles[candidate]),
        display_name(reference, roles[reference]),
    )
    who = who[0].upper() + who[1:]
    label = METRIC_NAMES.get(metric, metric)
    numbers = (
        f"{label} {points[candidate][metric]:.3f} vs {points[reference][metric]:.3f}, "
        f"difference {observed:+.3f} ({level:.0%} CI {low:+.3f} to {high:+.3f}, "
        f"p {'<' if p_value <= 2 / (n + 1) else '='} {max(p_value, 2 / (n + 1)):.2g})"
    )
    if low is not None and low > 0:
        verdict = f"{who} is better than {other} here: {numbers}."
    elif high is not None and high < 0:
        verdict = f"{who} is worse than {other} here: {numbers}."
    else:
        verdict = (
            f"{who} is not better than {other} here: {numbers}; "
            "the interval includes no difference."
        )
    return {
        "candidate": candidate,
        "reference": reference,
        "reference_role": roles[reference],
        "why": why,
        "metric": metric,
        "candidate_value": points[candidate][metric],
        "reference_value": points[reference][metric],
        "difference": observed,
        "ci_low": low,
        "ci_high": high,
        "p_value": p_value,
        "method": "paired stratified bootstrap",
        "verdict": verdict,
    }


def overfitting_table(
    stage_predictions: pd.DataFrame,
    test_points: dict[str, dict[str, float]],
    task: Task,
    thresholds: dict[str, float | None],
    gap: float,
) -> pd.DataFrame:
    """Every metric on train, tune and test per model; gaps oriented so positive = worse later.

    train - tune large: the model memorised its training data. tune - test
    large: choices made on tune (hyperparameters, threshold, early stopping)
    fitted its noise, or test differs from tune.
    """
    rows = []
    for model, test_values in test_points.items():
        values = {"test": test_values}
        for partition in ("train", "tune"):
            part = stage_predictions[
                (stage_predictions["model"] == model)
                & (stage_predictions["partition"] == partition)
            ]
            if len(part):
                probs, truth = prediction_arrays(part, task)
                values[partition] = point_metrics(probs, truth, task, thresholds[model])
        for metric in task.metric_names():
            if metric == "auprc_baseline":
                continue
            sign = -1 if metric in LOWER_IS_BETTER else 1
            train, tune, test = (
                values.get(p, {}).get(metric, np.nan) for p in ("train", "tune", "test")
            )
            train_gap, tune_gap = sign * (train - tune), sign * (tune - test)
            rows.append(
                {
                    "model": model,
                    "metric": metric,
                    "train": train,
                    "tune": tune,
                    "test": test,
                    "train_minus_tune": train_gap,
                    "tune_minus_test": tune_gap,
                    "flagged": bool(np.nanmax([train_gap, tune_gap, -np.inf]) > gap),
                }
            )
    return pd.DataFrame(rows)


# --- failure domains ----------------------------------------------------------------


def length_groups(sequences: pd.Series, bins: int | list[int]) -> pd.Series:
    """Length bin of each sequence: `bins` equal-count bins, or explicit edges."""
    lengths = sequences.str.len().to_numpy()
    if isinstance(bins, int):
        edges = np.unique(np.quantile(lengths, np.linspace(0, 1, bins + 1)).round().astype(int))
    else:
        edges = np.asarray(sorted(bins), dtype=int)
    edges = np.unique(
        np.r_[min(edges[0], lengths.min()), edges[1:-1], max(edges[-1], lengths.max()) + 1]
    )
    which = np.clip(np.searchsorted(edges, lengths, side="right") - 1, 0, len(edges) - 2)
    names = [f"{edges[i]}-{edges[i + 1] - 1}" for i in range(len(edges) - 1)]
    return pd.Series(np.asarray(names)[which], index=sequences.index)


def identity_groups(identity: pd.Series, edges: list[float]) -> pd.Series:
    """Bin of identity to the nearest training sequence; no hit (0) falls in the lowest bin."""
    edges = sorted(edges)
    which = np.clip(
        np.searchsorted(edges, identity.to_numpy(), side="right") - 1, 0, len(edges) - 2
    )
    names = [f"{edges[i]:.0%}-{edges[i + 1]:.0%}" for i in range(len(edges) - 1)]
    return pd.Series(np.asarray(names)[which], index=identity.index)


def metadata_columns(test: pd.DataFrame) -> list[str]:
    """Columns describing the sequences besides id, sequence, label and homology component."""
    return [c for c in test.columns if c not in {"id", "sequence", "label", "component"}]


def failure_domains(
    groupings: dict[str, pd.Series],
    probabilities: dict[str, np.ndarray],
    truth: np.ndarray,
    task: Task,
    thresholds: dict[str, float | None],
    overall: dict[str, dict[str, float]],
    settings: dict[str, Any],
    seed: int,
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """The metric panel within each group of each grouping, with bootstrap CIs.

    A group is flagged when a metric falls more than `failure_drop` below the
    model's overall value (Tip 9: find where the model fails before explaining
    why it works). Groups smaller than `min_group_size` are listed as skipped:
    their numbers would be noise.
    """
    rows, skipped = [], []
    for grouping, groups in groupings.items():
        values = groups.to_numpy()
        distinct = pd.Series(values).value_counts()
        if len(distinct) < 2:
            continue  # one group is the whole test set: nothing to compare
        if len(distinct) > settings["max_groups"]:
            skipped.append(
                {"grouping": grouping, "reason": f"{len(distinct)} groups (> max_groups)"}
            )
            continue
        for group, n in distinct.sort_index().items():
            if n < settings["min_group_size"]:
                skipped.append(
                    {"grouping": grouping, "group": group, "n": int(n), "reason": "too small"}
                )
                continue
            members = values == group
            dists = bootstrap_panels(
                {m: p[members] for m, p in probabilities.items()},
                truth[members],
                task,
                thresholds,
                settings["bootstrap_resamples"],
                seed,
            )
            for model, probs in probabilities.items():
                point = point_metrics(probs[members], truth[members], task, thresholds[model])
                for metric, value in point.items():
                    low, high = interval(dists[model][metric], settings["ci_level"])
                    sign = -1 if metric in LOWER_IS_BETTER else 1
                    drop = sign * (overall[model][metric] - value)
                    rows.append(
                        {
                            "model": model,
                            "grouping": grouping,
                            "group": group,
                            "n": int(n),
                            **{
                                f"n_{c}": int(np.sum(truth[members] == k))
                                for k, c in enumerate(task.classes)
                            },
                            "metric": metric,
                            "value": value,
                            "ci_low": low,
                            "ci_high": high,
                            "overall": overall[model][metric],
                            "drop": drop,
                            "flagged": bool(
                                metric != "auprc_baseline" and drop > settings["failure_drop"]
                            ),
                        }
                    )
    return pd.DataFrame(rows), skipped


# --- figures --------------------------------------------------------------------------


def save_figure(figure: plt.Figure, path: Path) -> None:
    """PNG through a temporary file, so a killed job leaves no half-written figure."""
    with atomic_write(path, "wb") as handle:
        figure.savefig(handle, format="png", dpi=120, bbox_inches="tight")
    plt.close(figure)


def _ranking_inputs(
    probs: np.ndarray, truth: np.ndarray, task: Task
) -> tuple[np.ndarray, np.ndarray]:
    """Scores and hits for curves: the positive class, or all classes pooled (micro)."""
    if task.binary:
        return probs[:, task.positive_index], truth == task.positive_index
    return probs.ravel(), np.eye(len(task.classes), dtype=bool)[truth].ravel()


def curves_figure(
    probabilities: dict[str, np.ndarray], truth: np.ndarray, task: Task, kind: str
) -> plt.Figure:
    """ROC (kind 'roc') or precision-recall (kind 'pr') curves of every model on test."""
    from sklearn.metrics import (
        average_precision_score,
        precision_recall_curve,
        roc_auc_score,
        roc_curve,
    )

    figure, axis = plt.subplots(figsize=(6, 5))
    for model, probs in probabilities.items():
        scores, hits = _ranking_inputs(probs, truth, task)
        if kind == "roc":
            x, y, _ = roc_curve(hits, scores)
            axis.plot(x, y, label=f"{model} ({roc_auc_score(hits, scores):.3f})")
        else:
            y, x, _ = precision_recall_curve(hits, scores)
            axis.step(
                x, y, where="post", label=f"{model} ({average_precision_score(hits, scores):.3f})"
            )
    pooled = "" if task.binary else " (classes pooled, micro)"
    if kind == "roc":
        axis.plot([0, 1], [0, 1], color="grey", linestyle=":", label="random (0.5)")
        axis.set(
            xlabel="false positive rate", ylabel="true positive rate", title=f"ROC on test{pooled}"
        )
    else:
        prevalence = float(
            np.mean(_ranking_inputs(next(iter(probabilities.values())), truth, task)[1])
        )
        axis.axhline(prevalence, color="grey", linestyle=":", label=f"random ({prevalence:.3f})")
        axis.set(xlabel="recall", ylabel="precision", title=f"Precision-recall on test{pooled}")
    axis.legend(fontsize=7, loc="lower right" if kind == "roc" else "lower left")
    return figure


def calibration_figure(
    probabilities: dict[str, np.ndarray], truth: np.ndarray, task: Task
) -> plt.Figure:
    """Reliability diagram: mean predicted probability vs observed frequency per bin."""
    figure, axis = plt.subplots(figsize=(6, 5))
    edges = np.linspace(0, 1, task.calibration_bins + 1)
    for model, probs in probabilities.items():
        if task.binary:
            confidence = probs[:, task.positive_index]
            outcome = truth == task.positive_index
        else:
            confidence, outcome = probs.max(axis=1), np.argmax(probs, axis=1) == truth
        which = np.minimum(
            (confidence * task.calibration_bins).astype(int), task.calibration_bins - 1
        )
        used = np.unique(which)
        mean_confidence = [confidence[which == b].mean() for b in used]
        frequency = [outcome[which == b].mean() for b in used]
        axis.plot(mean_confidence, frequency, marker="o", label=model)
    axis.plot(
        edges[[0, -1]], edges[[0, -1]], color="grey", linestyle=":", label="perfectly calibrated"
    )
    what = f"P({task.positive})" if task.binary else "probability of the called class"
    axis.set(
        xlabel=f"mean predicted {what}", ylabel="observed frequency", title="Calibration on test"
    )
    axis.legend(fontsize=7)
    return figure


def confusion_figure(
    probabilities: dict[str, np.ndarray],
    truth: np.ndarray,
    task: Task,
    thresholds: dict[str, float | None],
) -> plt.Figure:
    """One confusion matrix per model: counts, shaded by the share of each true class."""
    columns = min(3, len(probabilities))
    rows = -(-len(probabilities) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 3.3 * rows), squeeze=False)
    ones = np.ones((1, len(truth)))
    k = len(task.classes)
    for axis, (model, probs) in zip(axes.flat, probabilities.items(), strict=False):
        counts = confusion_counts(truth, called_classes(probs, task, thresholds[model]), k, ones)[0]
        share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        axis.imshow(share, cmap="Blues", vmin=0, vmax=1)
        for i in range(k):
            for j in range(k):
                axis.text(
                    j,
                    i,
                    int(counts[i, j]),
                    ha="center",
                    va="center",
                    color="white" if share[i, j] > 0.5 else "black",
                    fontsize=8,
                )
        axis.set_xticks(range(k), task.classes, rotation=45, ha="right", fontsize=7)
        axis.set_yticks(range(k), task.classes, fontsize=7)
        axis.set(title=model, xlabel="called", ylabel="true")
    for axis in list(axes.flat)[len(probabilities) :]:
        axis.axis("off")
    figure.tight_layout()
    return figure


def failure_figure(table: pd.DataFrame, metric: str) -> plt.Figure:
    """Bars of one metric per group and model, with CIs, one panel per grouping."""
    groupings = list(dict.fromkeys(table["grouping"])) if len(table) else []
    figure, axes = plt.subplots(
        max(1, len(groupings)), 1, figsize=(8, 3 * max(1, len(groupings))), squeeze=False
    )
    if not groupings:
        axes[0, 0].text(0.5, 0.5, "no group was large enough", ha="center", va="center")
        axes[0, 0].axis("off")
        return figure
    for axis, grouping in zip(axes[:, 0], groupings, strict=True):
        part = table[(table["grouping"] == grouping) & (table["metric"] == metric)]
        groups = list(dict.fromkeys(part["group"]))
        models = list(dict.fromkeys(part["model"]))
        width = 0.8 / len(models)
        for index, model in enumerate(models):
            rows = part[part["model"] == model].set_index("group").reindex(groups)
            value = rows["value"].astype(float).to_numpy()
            low = np.nan_to_num(value - rows["ci_low"].astype(float).to_numpy())
            high = np.nan_to_num(rows["ci_high"].astype(float).to_numpy() - value)
            axis.bar(
                np.arange(len(groups)) + index * width,
                value,
                width,
                label=model,
                yerr=[low, high],
                capsize=2,
            )
        axis.set_xticks(
            np.arange(len(groups)) + 0.4 - width / 2,
            [
                f"{g}\n(n={n})"
                for g, n in part.drop_duplicates("group")
                .set_index("group")["n"]
                .reindex(groups)
                .items()
            ],
            fontsize=7,
        )
        axis.set(ylabel=METRIC_NAMES.get(metric, metric), title=grouping, ylim=(0, 1.05))
    axes[0, 0].legend(fontsize=7, ncol=min(4, len(models)))
    figure.tight_layout()
    return figure


# --- the evaluate rule ------------------------------------------------------------------


def evaluate_test_partition(
    test_path: Path,
    train_path: Path,
    models: list[FinalModel],
    stage_predictions: pd.DataFrame,
    dataset: dict[str, Any],
    settings: dict[str, Any],
    seed: int,
    ledger_path: Path,
    out_dir: Path,
    threads: int = 1,
    identity_search: bool = True,
) -> dict[str, Any]:
    """Score every final model on test once and write the panel, comparisons and failures.

    Order matters: every choice that must not see test (thresholds, the best
    baseline) is made first, then the access is checked and recorded, and only
    then is test.tsv read. A refused access raises TestReuseRefused having
    written nothing. `identity_search=False` skips the MMseqs2 search (the
    identity grouping is then absent).
    """
    names = [m.name for m in models]
    if len(set(names)) != len(names) or not names:
        raise InputError(f"model names must be unique and at least one model given, got {names}")
    roles = {m.name: m.role for m in models}
    train_labels = stage_predictions[stage_predictions["partition"] == "train"]
    task = make_task(
        train_labels.drop_duplicates("id")["label"],
        dataset.get("positive_class"),
        settings["calibration_bins"],
    )
    primary = task.resolve(settings["primary_metric"])
    thresholds, threshold_sources = tune_thresholds(
        stage_predictions, names, task, settings["threshold_metric"]
    )
    baselines = [m for m in names if roles[m] == "baseline"]
    best_baseline = best_on_tune(stage_predictions, baselines, task, primary, thresholds)

    ledger = record_test_access(
        ledger_path, test_path, {m.name: m.path for m in models}, settings["allow_reuse"]
    )
    test = read_tsv(test_path)
    missing = {"id", "sequence", "label"} - set(test.columns)
    if missing:
        raise InputError(f"{test_path}: missing columns {sorted(missing)}")
    truth = task.codes(test["label"])
    probabilities = score_test(models, test["sequence"].tolist(), task)

    points = {m: point_metrics(p, truth, task, thresholds[m]) for m, p in probabilities.items()}
    log.info("bootstrap: %d stratified resamples", settings["bootstrap_resamples"])
    distributions = bootstrap_panels(
        probabilities, truth, task, thresholds, settings["bootstrap_resamples"], seed
    )
    comparisons = _comparisons(roles, best_baseline, primary, points, distributions, settings)
    overfitting = overfitting_table(
        stage_predictions, points, task, thresholds, settings["overfitting_gap"]
    )
    groupings = {f"metadata: {c}": test[c] for c in metadata_columns(test)}
    groupings["sequence length"] = length_groups(test["sequence"], settings["length_bins"])
    if identity_search:
        train = read_tsv(train_path)
        identity = nearest_training_identity(
            test, train, dataset["sequence_type"], settings, threads, workdir=out_dir.parent
        )
        groupings["identity to nearest training sequence"] = identity_groups(
            identity.set_axis(test.index), settings["identity_bins"]
        )
    failures, skipped = failure_domains(
        groupings, probabilities, truth, task, thresholds, points, settings, seed
    )

    summary = {
        "dataset": dataset.get("name"),
        "task": "binary" if task.binary else "multi-class",
        "classes": list(task.classes),
        "positive_class": task.positive,
        "test_counts": {c: int(np.sum(truth == k)) for k, c in enumerate(task.classes)},
        "primary_metric": primary,
        "bootstrap": {
            "resamples": settings["bootstrap_resamples"],
            "ci_level": settings["ci_level"],
            "stratified": True,
            "seed": seed,
        },
        "threshold_metric": settings["threshold_metric"],
        "best_baseline": {"model": best_baseline, "chosen_by": f"{primary} on tune"},
        "models": {
            m.name: _model_summary(
                m,
                task,
                thresholds,
                threshold_sources,
                points,
                distributions,
                probabilities,
                truth,
                settings["ci_level"],
            )
            for m in models
        },
        "comparisons": comparisons,
        "overfitting_flags": overfitting[
            overfitting["flagged"] & (overfitting["metric"] == primary)
        ][["model", "train", "tune", "test"]].to_dict("records"),
        "failure_flags": _failure_flags(failures, primary),
        "skipped_groups": skipped,
        "test_access": {
            "access": ledger["current_access"],
            "access_count": ledger["access_count"],
            "ledger": str(ledger_path),
        },
    }
    _write_outputs(
        out_dir,
        test,
        probabilities,
        truth,
        task,
        thresholds,
        summary,
        overfitting,
        failures,
        ledger,
        primary,
    )
    return summary


COMPARISON_COLUMNS = (
    "candidate reference reference_role why metric candidate_value reference_value "
    "difference ci_low ci_high p_value method verdict"
)


def _comparisons(
    roles: dict[str, str],
    best_baseline: str | None,
    metric: str,
    points: dict[str, dict[str, float]],
    distributions: dict[str, dict[str, np.ndarray]],
    settings: dict[str, Any],
) -> list[dict[str, Any]]:
    """The CNN (else the best baseline) against the best baseline and against every control."""
    cnn = [m for m, role in roles.items() if role == "cnn"]
    candidate = cnn[0] if cnn else best_baseline
    if candidate is None:
        return []
    references = {}
    if best_baseline and best_baseline != candidate:
        references[best_baseline] = "best baseline on tune"
    references.update({m: "control" for m, role in roles.items() if role == "control"})
    return [
        compare(candidate, ref, roles, metric, points, distributions, settings["ci_level"], why)
        for ref, why in references.items()
    ]


def _model_summary(
    model: FinalModel,
    task: Task,
    thresholds: dict[str, float | None],
    threshold_sources: dict[str, str],
    points: dict[str, dict[str, float]],
    distributions: dict[str, dict[str, np.ndarray]],
    probabilities: dict[str, np.ndarray],
    truth: np.ndarray,
    level: float,
) -> dict[str, Any]:
    called = called_classes(probabilities[model.name], task, thresholds[model.name])
    counts = confusion_counts(truth, called, len(task.classes), np.ones((1, len(truth))))[0]
    return {
        "role": model.role,
        "file": str(model.path),
        "threshold": thresholds[model.name],
        "threshold_source": threshold_sources[model.name],
        "metrics": {
            metric: dict(
                zip(
                    ("value", "ci_low", "ci_high"),
                    (value, *interval(distributions[model.name][metric], level)),
                    strict=True,
                )
            )
            for metric, value in points[model.name].items()
        },
        "confusion_matrix": {
            "rows_true_columns_called": list(task.classes),
            "counts": counts.astype(int).tolist(),
        },
    }


def _failure_flags(failures: pd.DataFrame, metric: str) -> list[dict[str, Any]]:
    """Flagged groups on the primary metric, or on balanced accuracy where it is undefined.

    A group holding one class (e.g. a source database that supplied only
    positives) has no AUROC, but its balanced accuracy (the recall of that
    class) still shows whether the model fails there.
    """
    if failures.empty:
        return []
    keys = ["model", "grouping", "group"]
    primary = failures[failures["metric"] == metric].set_index(keys)["value"]
    undefined = set(primary[primary.isna()].index)
    fallback = failures["metric"] == "balanced_accuracy"
    chosen = (failures["metric"] == metric) | (
        fallback & failures[keys].apply(tuple, axis=1).isin(undefined)
    )
    flagged = failures[failures["flagged"] & chosen]
    return flagged[[*keys, "n", "metric", "value", "overall"]].to_dict("records")


def _clean(value: Any) -> Any:
    """JSON-safe: NaN becomes null, numpy numbers become Python numbers."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _write_outputs(
    out_dir: Path,
    test: pd.DataFrame,
    probabilities: dict[str, np.ndarray],
    truth: np.ndarray,
    task: Task,
    thresholds: dict[str, float | None],
    summary: dict[str, Any],
    overfitting: pd.DataFrame,
    failures: pd.DataFrame,
    ledger: dict[str, Any],
    primary: str,
) -> None:
    """Tables, figures, metrics.json and the copy of the access ledger."""
    write_tsv(out_dir / "predictions.tsv", predictions_table(test, probabilities, task, thresholds))
    flat = [
        {"model": model, "role": info["role"], "metric": metric, **values}
        for model, info in summary["models"].items()
        for metric, values in info["metrics"].items()
    ]
    write_tsv(out_dir / "metrics.tsv", pd.DataFrame(flat))
    write_tsv(
        out_dir / "comparisons.tsv",
        pd.DataFrame(summary["comparisons"], columns=COMPARISON_COLUMNS.split()),
    )
    write_tsv(out_dir / "overfitting.tsv", overfitting)
    write_tsv(out_dir / "failure_domains.tsv", failures)
    save_figure(curves_figure(probabilities, truth, task, "roc"), out_dir / "roc.png")
    save_figure(curves_figure(probabilities, truth, task, "pr"), out_dir / "pr.png")
    save_figure(calibration_figure(probabilities, truth, task), out_dir / "calibration.png")
    save_figure(confusion_figure(probabilities, truth, task, thresholds), out_dir / "confusion.png")
    save_figure(failure_figure(failures, "balanced_accuracy"), out_dir / "failure_domains.png")
    write_json(out_dir / "test_access.json", _clean(ledger))
    write_json(out_dir / "metrics.json", _clean(summary))
