"""What drives the predictions (Tip 8), read off the tune partition, never test.

Baselines: the features a model leans on, by coefficient for linear models and
by permutation importance (sklearn) for the others, computed on tune so that
the importance of a feature is what it contributes to held-out predictions.

CNN: per-position attributions for a sample of tune sequences, by two methods
that fail differently, so agreement between them is evidence:
- in-silico mutagenesis (ISM): mutate each position to every other letter and
  record how much the predicted probability drops (model-agnostic, exact);
- integrated gradients (IG): gradients along the path from an all-zero input
  (what the network sees as padding) to the sequence, times the input.
First-layer filters become position frequency matrices built from the
subsequences that activate them most (the DeepBind / Basset recipe) and are
drawn as sequence logos. Comparison with JASPAR motifs is not done: it needs
pyjaspar, an optional package; the summary says so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.inspection import permutation_importance
from sklearn.model_selection import train_test_split

from deeprules import encoding
from deeprules.evaluate import baseline_role
from deeprules.figures import save_figure
from deeprules.io import InputError, read_json, read_tsv, write_json, write_tsv

matplotlib.use("Agg")
import matplotlib.pyplot as plt

log = logging.getLogger("deeprules.interpret")

JASPAR_NOTE = "not run: comparing filters with JASPAR needs the optional pyjaspar package"


# --- baselines ----------------------------------------------------------------------


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


def _permutation_rows(labels: np.ndarray, most: int, seed: int) -> np.ndarray:
    """Tune rows permutation importance predicts on: all of them, or a seeded sample of
    `most` stratified by label. Every feature costs `permutation_repeats` predictions on
    these rows, and a kNN predicts slowly (0.4 s for 575 amp peptides with a Manhattan
    metric), so a large tune set would otherwise hold the stage for hours; the sample
    keeps the cost bounded and the result reproducible."""
    rows = np.arange(len(labels))
    if len(rows) <= most:
        return rows
    sample, _ = train_test_split(rows, train_size=most, stratify=labels, random_state=seed)
    return np.sort(sample)


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
    features = features.toarray() if hasattr(features, "toarray") else np.asarray(features)
    names = feature_names(featurizer, features.shape[1])
    classes = [str(c) for c in estimator.classes_]
    if hasattr(estimator, "coef_"):
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
        table = pd.DataFrame(
            {
                "feature": names,
                "importance": strongest,
                "importance_std": np.nan,
                "method": "coefficient",
                "favours": favours,
            }
        )
        order = np.argsort(-np.abs(table["importance"].to_numpy()), kind="stable")
    else:
        rows = _permutation_rows(labels, settings["permutation_max_sequences"], seed)
        features, labels = features[rows], labels[rows]
        spread = features.std(axis=0)
        columns = np.argsort(-spread, kind="stable")[: settings["permutation_max_features"]]
        columns = columns[spread[columns] > 0]
        result = permutation_importance(
            _VaryOnly(estimator, features, columns),
            features[:, columns],
            labels,
            scoring="roc_auc" if len(classes) == 2 else "roc_auc_ovr",
            n_repeats=settings["permutation_repeats"],
            random_state=seed,  # one process: each prediction is cheap, forking is not
        )
        table = pd.DataFrame(
            {
                "feature": np.asarray(names)[columns],
                "importance": result.importances_mean,
                "importance_std": result.importances_std,
                "method": f"permutation (AUROC drop, {len(rows)} tune sequences)",
                "favours": "",
            }
        )
        order = np.argsort(-table["importance"].to_numpy(), kind="stable")
    table = table.iloc[order].reset_index(drop=True)
    return table.assign(rank=np.arange(1, len(table) + 1))


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


# --- the CNN ------------------------------------------------------------------------------


@dataclass
class LoadedCNN:
    """The saved network, its class order and how it reads sequences."""

    model: Any
    classes: list[str]
    sequence_type: str

    @property
    def length(self) -> int:
        return int(self.model.input_shape[1])

    @property
    def alphabet(self) -> str:
        return encoding.ALPHABETS[self.sequence_type]

    def one_hot(self, sequences: list[str]) -> np.ndarray:
        return encoding.one_hot(sequences, self.sequence_type, self.length)

    def class_probability(self, output: Any, k: int) -> Any:
        """P(class k) from the network's output: one sigmoid unit (P of classes[1]) or softmax."""
        if output.shape[-1] == 1:
            return output[:, 0] if k == 1 else 1 - output[:, 0]
        return output[:, k]

    def predict(self, one_hot: np.ndarray, k: int, batch: int = 2048) -> np.ndarray:
        """P(class k) for a batch of one-hot sequences, in chunks."""
        import keras

        out = [
            keras.ops.convert_to_numpy(
                self.class_probability(self.model(one_hot[i : i + batch], training=False), k)
            )
            for i in range(0, len(one_hot), batch)
        ]
        return np.concatenate(out) if out else np.zeros(0)


def load_cnn(model_path: Path, summary_path: Path, sequence_type: str) -> LoadedCNN:
    """Load cnn/model.keras (importing deeprules.cnn registers its custom layers)."""
    import keras

    try:
        import deeprules.cnn  # noqa: F401  (registers PaddingMask for loading)
    except ImportError:
        log.warning("deeprules.cnn not importable; loading the model without its custom layers")
    model = keras.saving.load_model(model_path, compile=False)
    classes = [str(c) for c in read_json(summary_path)["classes"]]
    return LoadedCNN(model, classes, sequence_type)


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


def logo_figure(matrices: list[tuple[str, pd.DataFrame]], ylabel: str) -> plt.Figure:
    """One sequence logo per matrix (letters as columns), stacked."""
    import logomaker

    figure, axes = plt.subplots(
        max(1, len(matrices)), 1, figsize=(8, 1.6 * max(1, len(matrices))), squeeze=False
    )
    for axis, (title, matrix) in zip(axes[:, 0], matrices, strict=False):
        logomaker.Logo(
            matrix, ax=axis, color_scheme="classic" if matrix.shape[1] <= 4 else "chemistry"
        )
        axis.set_title(title, fontsize=8)
        axis.set_ylabel(ylabel, fontsize=7)
    if not matrices:
        axes[0, 0].text(0.5, 0.5, "nothing to draw", ha="center", va="center")
        axes[0, 0].axis("off")
    figure.tight_layout()
    return figure


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


def explain_cnn(
    cnn: LoadedCNN, tune: pd.DataFrame, settings: dict[str, Any], seed: int, out_dir: Path
) -> dict[str, Any]:
    """Attributions, filter motifs and their logos for the CNN; returns the summary part."""
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
    write_tsv(out_dir / "attributions.tsv", pd.DataFrame(rows))
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
    save_figure(logo_figure(examples, "attribution"), out_dir / "attributions.png")

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
    write_tsv(out_dir / "filters.tsv", table)
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
    save_figure(logo_figure(logos, "bits"), out_dir / "filter_logos.png")
    return {
        "sequences_explained": len(sample),
        "explained_for": sorted({cnn.classes[t] for t in targets}),
        "ism_ig_spearman_median": float(np.nanmedian(agreement)) if agreement else None,
        "filters": filters,
        "top_filters": [f["filter"] for f in ranked[: settings["logo_filters"]]],
        "jaspar": JASPAR_NOTE,
    }


def _information_matrix(probabilities: pd.DataFrame) -> pd.DataFrame:
    """Letter heights in bits: probability x information content of the position."""
    letters = probabilities.shape[1]
    information = np.log2(letters) + np.sum(probabilities * np.log2(probabilities), axis=1)
    return probabilities.mul(information, axis=0)


# --- the interpret rule -----------------------------------------------------------------


def interpret_models(
    tune_path: Path,
    baselines_summary: Path | None,
    baselines_models_dir: Path | None,
    cnn_model_path: Path | None,
    cnn_summary_path: Path | None,
    dataset: dict[str, Any],
    settings: dict[str, Any],
    seed: int,
    out_dir: Path,
) -> dict[str, Any]:
    """Explain every tuned baseline family and the CNN on the tune partition.

    Controls (majority, shuffled labels, trivial features) are not explained:
    they exist to be beaten, not understood. Writes baseline_importance.tsv/png,
    attributions.tsv/png, filters.tsv, filter_logos.png and summary.json.
    """
    import joblib

    tune = read_tsv(tune_path)
    missing = {"id", "sequence", "label"} - set(tune.columns)
    if missing:
        raise InputError(f"{tune_path}: missing columns {sorted(missing)}")
    tables: dict[str, pd.DataFrame] = {}
    controls = []
    if baselines_summary is not None:
        for _, row in read_tsv(baselines_summary).iterrows():
            if baseline_role(row) == "control":
                controls.append(row["model"])
                continue
            log.info("feature importance of %s on %d tune sequences", row["model"], len(tune))
            pipeline = joblib.load(baselines_models_dir / f"{row['model']}.joblib")
            tables[row["model"]] = feature_importance(
                pipeline,
                tune["sequence"].tolist(),
                tune["label"].to_numpy(),
                settings,
                seed,
            )
    importance = (
        pd.concat([t.assign(model=m) for m, t in tables.items()], ignore_index=True)
        if tables
        else pd.DataFrame(
            columns=[
                "model",
                "rank",
                "feature",
                "importance",
                "importance_std",
                "method",
                "favours",
            ]
        )
    )
    write_tsv(
        out_dir / "baseline_importance.tsv",
        importance[
            ["model", "rank", "feature", "importance", "importance_std", "method", "favours"]
        ],
    )
    save_figure(
        importance_figure(tables, settings["top_features"]), out_dir / "baseline_importance.png"
    )
    summary: dict[str, Any] = {
        "dataset": dataset.get("name"),
        "partition": "tune",
        "baselines": {
            model: table.head(settings["top_features"])[
                ["feature", "importance", "method", "favours"]
            ].to_dict("records")
            for model, table in tables.items()
        },
        "controls_not_explained": controls,
    }
    if cnn_model_path is not None:
        cnn = load_cnn(cnn_model_path, cnn_summary_path, dataset["sequence_type"])
        summary["cnn"] = explain_cnn(cnn, tune, settings, seed, out_dir)
    write_json(out_dir / "summary.json", summary)
    return summary
