"""CNN: per-position attributions by two methods that fail differently, so agreement
between them is evidence.

- in-silico mutagenesis (ISM): mutate each position to every other letter and
  record how much the predicted probability drops (model-agnostic, exact);
- integrated gradients (IG): gradients along the path from an all-zero input
  (what the network sees as padding) to the sequence, times the input.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from deeprules.figures import save_figure
from deeprules.interpret.logos import logo_figure
from deeprules.interpret.network import LoadedCNN
from deeprules.io import write_tsv

log = logging.getLogger("deeprules.interpret")


def in_silico_mutagenesis(
    cnn: LoadedCNN, one_hot: np.ndarray, lengths: np.ndarray, targets: np.ndarray
) -> np.ndarray:
    """Per-position ISM score (n, length): P(target) minus its mean over the other letters.

    Positive = the letter there supports the target class; padding positions are 0.
    """
    n, length, letters = one_hot.shape
    scores = np.zeros((n, length))
    identity = np.eye(letters, dtype=one_hot.dtype)
    for row in range(n):
        positions = np.arange(lengths[row])
        variants = np.repeat(one_hot[row][None], len(positions) * letters, axis=0)
        variants[np.arange(len(variants)), np.repeat(positions, letters)] = np.tile(
            identity, (len(positions), 1)
        )
        reference = cnn.predict(one_hot[row][None], targets[row])[0]
        mutated = cnn.predict(variants, targets[row]).reshape(len(positions), letters)
        is_reference = np.isclose(one_hot[row, positions], 1.0)
        others = np.where(is_reference, np.nan, mutated)
        with np.errstate(invalid="ignore"):
            scores[row, positions] = reference - np.nanmean(others, axis=1)
    return np.nan_to_num(scores)


def integrated_gradients(
    cnn: LoadedCNN, one_hot: np.ndarray, targets: np.ndarray, steps: int
) -> np.ndarray:
    """Per-position integrated gradients (n, length) from an all-zero (padding) input.

    Midpoint Riemann sum of the gradient of P(target) along the straight path,
    times the input, summed over the alphabet; positions sum to P(x) - P(0).
    """
    import tensorflow as tf

    alphas = ((np.arange(steps) + 0.5) / steps).astype(np.float32)
    scores = np.zeros(one_hot.shape[:2])
    for row in range(len(one_hot)):
        path = tf.constant(alphas[:, None, None] * one_hot[row][None])
        with tf.GradientTape() as tape:
            tape.watch(path)
            probability = cnn.class_probability(cnn.model(path, training=False), targets[row])
        gradients = tape.gradient(probability, path).numpy().mean(axis=0)
        scores[row] = (gradients * one_hot[row]).sum(axis=1)
    return scores


def attribution_sample(
    tune: pd.DataFrame, classes: list[str], count: int, seed: int
) -> tuple[pd.DataFrame, np.ndarray]:
    """Tune sequences to explain, and the class index each is explained for.

    Two classes: sequences of the positive class (classes[1]), explained for
    it. More classes: a stratified sample, each explained for its own class.
    """
    rng = np.random.default_rng(seed)
    if len(classes) == 2:
        pool = tune[tune["label"] == classes[1]]
        chosen = pool.iloc[np.sort(rng.permutation(len(pool))[:count])]
    else:
        share = max(1, count // len(classes))
        parts = [
            part.iloc[np.sort(rng.permutation(len(part))[:share])]
            for _, part in tune.groupby("label", sort=True)
        ]
        chosen = pd.concat(parts)
    targets = np.array([classes.index(label) for label in chosen["label"]])
    return chosen.reset_index(drop=True), targets


def explain_attributions(
    cnn: LoadedCNN,
    tune: pd.DataFrame,
    settings: dict[str, Any],
    seed: int,
    table_path: Path,
    figure_path: Path,
) -> dict[str, Any]:
    """ISM and integrated gradients for a sample of tune sequences: the per-position
    table, logos of the first few examples, and the summary's part on attributions."""
    sample, targets = attribution_sample(tune, cnn.classes, settings["attribution_samples"], seed)
    one_hot = cnn.one_hot(sample["sequence"].tolist())
    lengths = np.minimum(sample["sequence"].str.len().to_numpy(), cnn.length)
    log.info("attributions for %d tune sequences (ISM and integrated gradients)", len(sample))
    ism = in_silico_mutagenesis(cnn, one_hot, lengths, targets)
    ig = integrated_gradients(cnn, one_hot, targets, settings["ig_steps"])
    rows = []
    for row, record in sample.iterrows():
        for position in range(lengths[row]):
            rows.append(
                {
                    "id": record["id"],
                    "label": record["label"],
                    "explained_class": cnn.classes[targets[row]],
                    "position": position + 1,
                    "letter": record["sequence"][position],
                    "ism": ism[row, position],
                    "integrated_gradients": ig[row, position],
                }
            )
    write_tsv(table_path, pd.DataFrame(rows))
    agreement = [
        spearmanr(ism[i, : lengths[i]], ig[i, : lengths[i]]).statistic
        for i in range(len(sample))
        if lengths[i] > 2
    ]
    examples = []
    for i in range(min(settings["example_sequences"], len(sample))):
        for method, values in (("ISM", ism), ("integrated gradients", ig)):
            matrix = one_hot[i, : lengths[i]] * values[i, : lengths[i], None]
            examples.append(
                (
                    f"{sample['id'][i]} ({sample['label'][i]}): {method}",
                    pd.DataFrame(matrix, columns=list(cnn.alphabet)),
                )
            )
    save_figure(logo_figure(examples, "attribution"), figure_path)
    return {
        "sequences_explained": len(sample),
        "explained_for": sorted({cnn.classes[t] for t in targets}),
        "ism_ig_spearman_median": float(np.nanmedian(agreement)) if agreement else None,
    }
