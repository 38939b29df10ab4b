"""Stratified bootstrap of the metric panel: a confidence interval for every number (Tip 7)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from deeprules.contracts import Classes
from deeprules.evaluate.panel import metric_panel, point_metrics

log = logging.getLogger("deeprules.evaluate")

# Bootstrap weights are built in blocks of at most this many cells (resamples x
# sequences), so 1,000 resamples of a million test sequences still fit in memory.
BLOCK_CELLS = 20_000_000


def stratified_bootstrap(
    strata: np.ndarray, resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """Counts (resamples, n): each class resampled with replacement within itself.

    Stratifying keeps the class balance of the test set in every resample, so
    AUROC is always defined and prevalence-dependent metrics (AUPRC, precision)
    vary only through the model, not through a changing class mix. Classes are
    drawn in sorted order of their values (class names, in evaluate), so the
    resamples of a seed do not depend on the order the classes are listed in.
    """
    n = len(strata)
    counts = np.zeros((resamples, n), dtype=np.float64)
    offsets = (np.arange(resamples) * n)[:, None]
    for stratum in np.unique(strata):
        members = np.flatnonzero(strata == stratum)
        draws = members[rng.integers(0, len(members), size=(resamples, len(members)))]
        counts += np.bincount((draws + offsets).ravel(), minlength=resamples * n).reshape(
            resamples, n
        )
    return counts


def bootstrap_panels(
    probabilities: dict[str, np.ndarray],
    truth: np.ndarray,
    classes: Classes,
    thresholds: dict[str, float | None],
    resamples: int,
    seed: int,
    bins: int,
) -> dict[str, dict[str, np.ndarray]]:
    """Bootstrap distribution of every metric of every model, on shared resamples.

    All models see the same resamples (paired), so differences between models
    can be read off directly for the comparisons.
    """
    rng = np.random.default_rng(seed)
    strata = np.asarray(classes.names)[truth]
    block = max(1, min(resamples, BLOCK_CELLS // max(1, len(truth) * len(classes.names))))
    parts: dict[str, dict[str, list[np.ndarray]]] = {m: {} for m in probabilities}
    for start in range(0, resamples, block):
        weights = stratified_bootstrap(strata, min(block, resamples - start), rng)
        for model, probs in probabilities.items():
            panel = metric_panel(probs, truth, classes, thresholds[model], weights, bins)
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


@dataclass(frozen=True)
class TestScores:
    """Every model's test probabilities, its panel and the panel's bootstrap distribution."""

    __test__ = False  # not a pytest test class, despite the name

    truth: np.ndarray  # class index of each test sequence
    probabilities: dict[str, np.ndarray]  # model -> (sequences, classes)
    points: dict[str, dict[str, float]]  # model -> metric -> value
    distributions: dict[str, dict[str, np.ndarray]]  # model -> metric -> resampled values


def score_with_intervals(
    probabilities: dict[str, np.ndarray],
    truth: np.ndarray,
    classes: Classes,
    thresholds: dict[str, float | None],
    settings: dict[str, Any],
    seed: int,
) -> TestScores:
    """The panel of every model on test and its stratified bootstrap distribution."""
    bins = settings["calibration_bins"]
    points = {
        model: point_metrics(probs, truth, classes, thresholds[model], bins)
        for model, probs in probabilities.items()
    }
    log.info("bootstrap: %d stratified resamples", settings["bootstrap_resamples"])
    distributions = bootstrap_panels(
        probabilities, truth, classes, thresholds, settings["bootstrap_resamples"], seed, bins
    )
    return TestScores(truth, probabilities, points, distributions)
