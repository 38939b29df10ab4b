"""CNN: first-layer filters as position frequency matrices, built from the
subsequences that activate them most (the DeepBind / Basset recipe)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deeprules.figures import save_figure
from deeprules.interpret.logos import logo_figure
from deeprules.interpret.network import LoadedCNN
from deeprules.io import InputError, write_tsv

log = logging.getLogger("deeprules.interpret")

JASPAR_NOTE = "not run: comparing filters with JASPAR needs the optional pyjaspar package"


def first_conv_layer(model: Any) -> Any:
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv1D):
            return layer
    raise InputError("the CNN has no Conv1D layer whose filters could be read as motifs")


def filter_motifs(
    cnn: LoadedCNN, one_hot: np.ndarray, lengths: np.ndarray, threshold: float
) -> list[dict[str, Any]]:
    """Position frequency matrix of every first-layer filter from its most activating windows.

    A window counts when the filter's activation reaches `threshold` x its
    largest activation over all sequences; windows that stick out of the
    sequence (into padding) are skipped. The window of output position i
    starts at i - left, with left = (kernel - 1) x dilation // 2 for 'same'
    padding (0 for 'valid'), and reads every dilation-th letter.
    """
    import keras

    conv = first_conv_layer(cnn.model)
    width, dilation = conv.kernel_size[0], conv.dilation_rate[0]
    if conv.strides[0] != 1:
        raise InputError("filter motifs need a first convolution with stride 1")
    left = (width - 1) * dilation // 2 if conv.padding == "same" else 0
    activation_model = keras.Model(cnn.model.input, conv.output)
    activations = np.concatenate(
        [
            keras.ops.convert_to_numpy(activation_model(one_hot[i : i + 512]))
            for i in range(0, len(one_hot), 512)
        ]
    )
    starts = np.arange(activations.shape[1]) - left
    inside = (starts[None, :] >= 0) & (starts[None, :] + (width - 1) * dilation < lengths[:, None])
    taps = np.arange(width) * dilation
    motifs = []
    for f in range(activations.shape[2]):
        values = np.where(inside, activations[:, :, f], -np.inf)
        best = float(values.max())
        if not np.isfinite(best) or best <= 0:
            motifs.append(
                {
                    "filter": f,
                    "letter_spacing": dilation,
                    "sites": 0,
                    "max_activation": max(best, 0.0),
                    "counts": None,
                }
            )
            continue
        rows, positions = np.nonzero(values >= threshold * best)
        windows = one_hot[rows[:, None], starts[positions][:, None] + taps[None, :]]
        motifs.append(
            {
                "filter": f,
                "letter_spacing": dilation,  # a dilated filter reads every n-th letter
                "sites": len(rows),
                "max_activation": best,
                "counts": windows.sum(axis=0),
            }
        )
    return motifs


def frequency_matrix(counts: np.ndarray, pseudocount: float = 0.5) -> np.ndarray:
    """Letter probabilities per position, with a small pseudocount against empty columns."""
    counts = counts + pseudocount
    return counts / counts.sum(axis=1, keepdims=True)


def information_content(frequencies: np.ndarray) -> float:
    """Total information (bits) of a motif: sum over positions of log2(A) - entropy."""
    letters = frequencies.shape[1]
    return float(np.sum(np.log2(letters) + np.sum(frequencies * np.log2(frequencies), axis=1)))


def consensus(frequencies: np.ndarray, alphabet: str) -> str:
    return "".join(alphabet[i] for i in frequencies.argmax(axis=1))


def filter_table(motifs: list[dict[str, Any]], alphabet: str) -> tuple[pd.DataFrame, list[dict]]:
    """Long table of every filter's letter probabilities, and one summary row per filter."""
    rows, summaries = [], []
    for motif in motifs:
        summary = {k: motif[k] for k in ("filter", "letter_spacing", "sites", "max_activation")}
        if motif["counts"] is not None:
            frequencies = frequency_matrix(motif["counts"])
            summary["information_bits"] = information_content(frequencies)
            summary["consensus"] = consensus(frequencies, alphabet)
            for position, row in enumerate(frequencies, start=1):
                rows += [
                    {
                        "filter": motif["filter"],
                        "position": position,
                        "letter": letter,
                        "probability": float(p),
                        "count": float(c),
                    }
                    for letter, p, c in zip(
                        alphabet, row, motif["counts"][position - 1], strict=True
                    )
                ]
        summaries.append(summary)
    return pd.DataFrame(
        rows, columns=["filter", "position", "letter", "probability", "count"]
    ), summaries


def _information_matrix(probabilities: pd.DataFrame) -> pd.DataFrame:
    """Letter heights in bits: probability x information content of the position."""
    letters = probabilities.shape[1]
    information = np.log2(letters) + np.sum(probabilities * np.log2(probabilities), axis=1)
    return probabilities.mul(information, axis=0)


def explain_filters(
    cnn: LoadedCNN,
    tune: pd.DataFrame,
    settings: dict[str, Any],
    seed: int,
    table_path: Path,
    figure_path: Path,
) -> dict[str, Any]:
    """Every first-layer filter's letter probabilities from a seeded sample of tune, logos
    of the most informative ones, and the summary's part on filters."""
    rng = np.random.default_rng(seed)
    scanned = tune.iloc[np.sort(rng.permutation(len(tune))[: settings["filter_sequences"]])]
    log.info("first-layer filters: scanning %d tune sequences", len(scanned))
    motifs = filter_motifs(
        cnn,
        cnn.one_hot(scanned["sequence"].tolist()),
        np.minimum(scanned["sequence"].str.len().to_numpy(), cnn.length),
        settings["activation_threshold"],
    )
    table, filters = filter_table(motifs, cnn.alphabet)
    write_tsv(table_path, table)
    ranked = sorted(
        (f for f in filters if "information_bits" in f), key=lambda f: -f["information_bits"]
    )
    logos = []
    for motif in ranked[: settings["logo_filters"]]:
        probabilities = table[table["filter"] == motif["filter"]].pivot(
            index="position", columns="letter", values="probability"
        )[list(cnn.alphabet)]
        bits = _information_matrix(probabilities)
        logos.append(
            (
                f"filter {motif['filter']}: {motif['consensus']} ({motif['sites']} sites, "
                f"{motif['information_bits']:.1f} bits)",
                bits.reset_index(drop=True),
            )
        )
    save_figure(logo_figure(logos, "bits"), figure_path)
    return {
        "filters": filters,
        "top_filters": [f["filter"] for f in ranked[: settings["logo_filters"]]],
        "jaspar": JASPAR_NOTE,
    }
