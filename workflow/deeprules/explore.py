"""Confounder, batch-effect and shortcut checks before any model is trained.

Tip 4 (know your data: batch effects make models learn irrelevant signal) and
Tip 7 (skewed or biased data inflate accuracy). Each check gives a verdict
pass / warn / fail with a sentence a biologist can act on; together they end
in `checks.json`, whose `floor` — the best AUROC any trivial feature reaches —
is the score a real model must clearly beat.

The checks:
1. label x metadata association (chi-square, bias-corrected Cramér's V);
2. shortcut predictors: length, composition, di-residue composition, first
   and last residues, ambiguous symbols (see deeprules.shortcuts);
3. per-position composition from both ends;
4. duplicates: exact (from curation's ledger) and near-duplicates across
   labels (MMseqs2, deeprules.mmseqs);
5. class balance and the metrics that stay meaningful;
6. batch structure: PCA of k-mer profiles; metadata predicted from k-mers
   within each label.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from matplotlib.figure import Figure
from scipy.stats import chi2_contingency
from sklearn.decomposition import PCA
from threadpoolctl import threadpool_limits

from deeprules import shortcuts
from deeprules.io import InputError, atomic_write, read_json, read_tsv, write_json, write_tsv
from deeprules.mmseqs import similar_pairs

log = logging.getLogger("deeprules.explore")

VERDICTS = ("pass", "warn", "fail")
# Outputs of `explore`, by the keys the rule's `output:` uses.
TABLES = ("label_metadata", "shortcuts", "positions", "near_duplicates", "class_balance", "batch")
FIGURES = ("lengths_png", "composition_png", "pca_png", "shortcuts_png", "positions_png")
MAX_POINTS_PER_PLOT = 4000


class ChecksFailed(InputError):
    """explore.strict is on and at least one check failed."""


# --- input ---------------------------------------------------------------------


def load_inputs(
    sequences_path: Path, summary_path: Path, dataset: dict[str, Any], folds: int
) -> tuple[pd.DataFrame, list[str]]:
    """The curated table and the metadata columns to check, refusing what the checks cannot use."""
    table = read_tsv(sequences_path)
    missing = [c for c in ("id", "sequence", "label") if c not in table.columns]
    if missing:
        raise InputError(
            f"{sequences_path}: column(s) {', '.join(missing)} missing (columns are: "
            f"{', '.join(table.columns)}); rerun the curate rule."
        )
    metadata = list(read_json(summary_path).get("metadata_columns", []))
    for column, where in _configured_metadata(dataset):
        if column not in table.columns:
            raise InputError(
                f"metadata column '{column}' is named in the dataset file ({where}) but absent "
                f"from {sequences_path} (columns are: {', '.join(table.columns)}); fix the name "
                "in the dataset file or rerun the curate rule."
            )
        if column not in metadata:
            metadata.append(column)
    absent = [c for c in metadata if c not in table.columns]
    if absent:
        raise InputError(
            f"{summary_path} lists metadata column(s) {', '.join(absent)} that {sequences_path} "
            "does not have; rerun the curate rule."
        )
    if "source" in table.columns and "source" not in metadata:
        metadata.insert(0, "source")  # a class read from its own file is a batch too
    _check_classes(table, sequences_path, folds)
    return table, metadata


def _configured_metadata(dataset: dict[str, Any]) -> list[tuple[str, str]]:
    """Every metadata column the dataset file promises, with the key that names it."""
    found = [(c, "metadata.columns") for c in dataset.get("metadata", {}).get("columns", [])]
    found += [(c, "metadata.from_label") for c in dataset.get("metadata", {}).get("from_label", {})]
    for index, source in enumerate(dataset.get("sources", [])):
        found += [(c, f"sources[{index}].metadata") for c in source.get("metadata", {})]
    return found


def _check_classes(table: pd.DataFrame, path: Path, folds: int) -> None:
    counts = table["label"].value_counts()
    if len(counts) < 2:
        raise InputError(
            f"{path}: only one class ({', '.join(counts.index)}); the checks compare classes "
            "and need at least two. Check the labels section of the dataset file."
        )
    small = counts[counts < folds]
    if not small.empty:
        detail = ", ".join(f"'{label}' has {n} sequence(s)" for label, n in small.items())
        raise InputError(
            f"{path}: class {detail}; the checks cross-validate with explore.cv_folds = {folds} "
            f"folds and need at least {folds} sequences per class. Add sequences, merge the "
            "class into another, or lower explore.cv_folds (minimum 2)."
        )


def check_settings(settings: dict[str, Any]) -> None:
    """Threshold pairs the schema cannot compare: a warning must come before a failure."""
    pairs = [("auroc_warn", "auroc_fail"), ("cramers_v_warn", "cramers_v_fail"),
             ("position_v_warn", "position_v_fail"),
             ("duplicate_fraction_warn", "duplicate_fraction_fail"),
             ("balance_fail", "balance_warn")]  # smaller balance is worse
    for low, high in pairs:
        if settings[low] > settings[high]:
            raise InputError(
                f"config/config.yaml: key 'explore.{low}' ({settings[low]}) must not exceed "
                f"'explore.{high}' ({settings[high]})"
            )


def model_subsample(labels: pd.Series, limit: int, seed: int) -> np.ndarray:
    """Row positions of a class-stratified random subsample of at most `limit` sequences.

    Model-based checks run on it: at 20,000 sequences a cross-validated AUROC
    is already known to about +-0.01, and fitting on more only costs time.
    Every class keeps at least 50 sequences (or all it has).
    """
    if len(labels) <= limit:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    fraction = limit / len(labels)
    chosen = []
    for _, rows in labels.groupby(labels, sort=True).indices.items():
        take = min(len(rows), max(math.ceil(len(rows) * fraction), 50))
        chosen.append(rng.choice(rows, size=take, replace=False))
    return np.sort(np.concatenate(chosen))


# --- verdicts ------------------------------------------------------------------


def verdict(value: float, warn: float, fail: float) -> str:
    """pass below `warn`, warn from `warn`, fail from `fail` (larger is worse)."""
    return "fail" if value >= fail else "warn" if value >= warn else "pass"


def auroc_verdict(auroc: float, p_value: float, settings: dict[str, Any]) -> str:
    """AUROC above the thresholds counts only when shuffled labels rarely do as well.

    The issue's thresholds: pass <= 0.6 < warn <= 0.7 < fail (genomic-benchmarks-qc).
    """
    if p_value > settings["alpha"]:
        return "pass"
    if auroc > settings["auroc_fail"]:
        return "fail"
    return "warn" if auroc > settings["auroc_warn"] else "pass"


def make_check(
    name: str,
    kind: str,
    statistic: str,
    value: float,
    thresholds: dict[str, float],
    result: str,
    explanation: str,
    **details: Any,
) -> dict[str, Any]:
    """One entry of checks.json."""
    return {
        "name": name,
        "kind": kind,
        "statistic": statistic,
        "value": round(float(value), 4),
        "thresholds": thresholds,
        "verdict": result,
        "explanation": explanation,
        **details,
    }


# --- 1. label x metadata ---------------------------------------------------------


def cramers_v(contingency: pd.DataFrame) -> tuple[float, float]:
    """Chi-square p-value and bias-corrected Cramér's V (Bergsma 2013) of a contingency table.

    The correction keeps V near 0 for many-level columns (e.g. one batch per
    handful of sequences) that the raw V would call associated by chance.
    """
    observed = contingency.to_numpy(dtype=float)
    observed = observed[observed.sum(axis=1) > 0][:, observed.sum(axis=0) > 0]
    rows, cols = observed.shape
    if rows < 2 or cols < 2:
        return 1.0, 0.0
    chi2, p_value, _, _ = chi2_contingency(observed, correction=False)
    n = observed.sum()
    phi2 = max(0.0, chi2 / n - (rows - 1) * (cols - 1) / (n - 1))
    rows_c = rows - (rows - 1) ** 2 / (n - 1)
    cols_c = cols - (cols - 1) ** 2 / (n - 1)
    denominator = min(rows_c - 1, cols_c - 1)
    return float(p_value), float(math.sqrt(phi2 / denominator)) if denominator > 0 else 0.0


def label_metadata_checks(
    table: pd.DataFrame, metadata: list[str], settings: dict[str, Any]
) -> tuple[list[dict[str, Any]], pd.DataFrame]:
    """Check 1: is the label (almost) determined by a metadata column, e.g. the source database?"""
    checks, long_tables = [], []
    thresholds = {"warn": settings["cramers_v_warn"], "fail": settings["cramers_v_fail"]}
    for column in metadata:
        levels = table[column].replace("", "(missing)")
        contingency = pd.crosstab(table["label"], levels)
        long = contingency.stack().rename("count").reset_index()
        long.columns = ["label", "level", "count"]
        long_tables.append(long.assign(column=column)[["column", "label", "level", "count"]])
        if contingency.shape[1] < 2:
            checks.append(
                make_check(
                    f"label_x_{column}", "label_x_metadata", "bias-corrected Cramér's V", 0.0,
                    thresholds, "pass",
                    f"'{column}' has one value for every sequence, so it cannot explain the label.",
                    column=column, chi_square_p=1.0, levels=1,
                )
            )
            continue
        p_value, v = cramers_v(contingency)
        result = verdict(v, **thresholds)
        strength = {"fail": "almost determined by", "warn": "strongly associated with"}
        explanation = (
            f"The label is {strength[result]} '{column}' (Cramér's V {v:.2f}): a model can "
            f"learn '{column}' instead of biology; compare within one value of '{column}' "
            "or add data that breaks the link."
            if result != "pass"
            else f"The label is at most weakly associated with '{column}' (Cramér's V {v:.2f})."
        )
        checks.append(
            make_check(
                f"label_x_{column}", "label_x_metadata", "bias-corrected Cramér's V", v,
                thresholds, result, explanation,
                column=column, chi_square_p=p_value, levels=int(contingency.shape[1]),
            )
        )
    columns = ["column", "label", "level", "count"]
    return checks, pd.concat(long_tables) if long_tables else pd.DataFrame(columns=columns)


# --- 2. shortcut predictors -------------------------------------------------------


SHORTCUT_WORDS = {
    "length": "sequence length",
    "gc_content": "GC content",
    "composition": "residue composition",
    "di_residues": "di-residue composition",
    "first_residues": "the first residues",
    "last_residues": "the last residues",
    "ambiguous_fraction": "the fraction of ambiguous symbols",
}


def shortcut_features(
    encoded: shortcuts.EncodedSequences, sequence_type: str, end_positions: int
) -> dict[str, np.ndarray]:
    """The trivial feature sets a model could win with without reading the sequence as a whole."""
    features = {"length": encoded.lengths.astype(float)}
    if sequence_type != "protein":
        features["gc_content"] = shortcuts.gc_content(encoded)
    features["composition"] = shortcuts.composition(encoded)
    features["di_residues"] = shortcuts.kmer_profile(encoded, 2)
    features["first_residues"] = shortcuts.end_residues(encoded, end_positions, from_end=False)
    features["last_residues"] = shortcuts.end_residues(encoded, end_positions, from_end=True)
    features["ambiguous_fraction"] = shortcuts.ambiguous_fraction(encoded)
    return features


def shortcut_checks(
    features: dict[str, np.ndarray],
    labels: np.ndarray,
    settings: dict[str, Any],
    seed: int,
    threads: int = 1,
) -> tuple[list[dict[str, Any]], pd.DataFrame]:
    """Check 2: cross-validated AUROC of each trivial feature set alone."""
    checks, rows = [], []
    thresholds = {"warn": settings["auroc_warn"], "fail": settings["auroc_fail"]}
    # one single-threaded worker per feature set: robust on a busy machine, where
    # multi-threaded tree fitting stalls waiting for cores
    scores = Parallel(n_jobs=threads, backend="loky", inner_max_num_threads=1)(
        delayed(shortcuts.shortcut_auroc)(
            values,
            labels,
            folds=settings["cv_folds"],
            permutations=settings["permutations"],
            seed=seed,
        )
        for values in features.values()
    )
    for name, score in zip(features, scores, strict=True):
        result = auroc_verdict(score.best, score.p_value, settings)
        log.info(
            "shortcut %s: AUROC %s, p = %.3g -> %s",
            name,
            {model: round(value, 3) for model, value in score.auroc.items()},
            score.p_value,
            result,
        )
        for model, value in score.auroc.items():
            rows.append(
                {
                    "check": f"shortcut_{name}",
                    "feature_set": name,
                    "model": model,
                    "auroc": round(value, 4),
                    "auroc_fold_sd": round(float(np.std(score.fold_auroc[model])), 4)
                    if score.fold_auroc[model]
                    else 0.0,
                    "kept": model == score.best_model,
                    "p_value": score.p_value,
                    "shuffles": score.permutations,
                }
            )
        checks.append(
            make_check(
                f"shortcut_{name}", "shortcut", "cross-validated AUROC, larger of a linear and "
                "a flexible model", score.best, thresholds, result,
                _shortcut_explanation(name, score, result),
                model=score.best_model, auroc_per_model=score.auroc, p_value=score.p_value,
                shuffles=score.permutations,
            )
        )
    return checks, pd.DataFrame(rows)


def _shortcut_explanation(name: str, score: shortcuts.ShortcutScore, result: str) -> str:
    what = SHORTCUT_WORDS[name]
    if score.permutations == 0:
        return f"Using only {what}, no model can separate the classes: it is the same everywhere."
    if result == "pass":
        return f"Using only {what}, a model hardly separates the classes (AUROC {score.best:.2f})."
    return (
        f"Using only {what}, a {score.best_model} model separates the classes with AUROC "
        f"{score.best:.2f} (p = {score.p_value:.3g}): a model can score this without learning "
        "anything else, so treat it as the floor to beat."
    )


# --- 3. per-position composition ---------------------------------------------------


def position_composition(
    encoded: shortcuts.EncodedSequences, labels: pd.Series, settings: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Residue frequencies per class at each position from both ends, with Cramér's V.

    A position is scanned only while every class still has
    `min_sequences_per_position` sequences reaching it.
    """
    letters = np.array([*encoded.alphabet, "other"])
    classes = sorted(labels.unique())
    label_values = labels.to_numpy()
    frequency_rows, association_rows = [], []
    for end in ("start", "end"):
        for position in range(1, settings["position_window"] + 1):
            codes = shortcuts.residues_at(encoded, position, from_end=end == "end")
            reaches = codes >= 0
            per_class = pd.Series(label_values[reaches]).value_counts()
            fewest = per_class.reindex(classes, fill_value=0).min()
            if fewest < settings["min_sequences_per_position"]:
                break
            contingency = pd.crosstab(label_values[reaches], letters[codes[reaches]])
            p_value, v = cramers_v(contingency)
            association_rows.append(
                {"end": end, "position": position, "sequences": int(reaches.sum()),
                 "cramers_v": round(v, 4), "chi_square_p": p_value}
            )
            fractions = contingency.div(contingency.sum(axis=1), axis=0)
            for label, row in fractions.iterrows():
                for residue, fraction in row.items():
                    frequency_rows.append(
                        {"end": end, "position": position, "label": label,
                         "residue": residue, "fraction": round(float(fraction), 4)}
                    )
    return pd.DataFrame(frequency_rows), pd.DataFrame(association_rows)


def position_check(association: pd.DataFrame, settings: dict[str, Any]) -> dict[str, Any]:
    """Check 3: the most class-specific position (e.g. a start methionine in one class only)."""
    thresholds = {"warn": settings["position_v_warn"], "fail": settings["position_v_fail"]}
    if association.empty:
        return make_check(
            "position_composition", "position", "largest bias-corrected Cramér's V over positions",
            0.0, thresholds, "pass",
            "Too few sequences per class reach any position to compare positions.",
        )
    worst = association.loc[association["cramers_v"].idxmax()]
    v, side = float(worst["cramers_v"]), "start" if worst["end"] == "start" else "end"
    result = verdict(v, **thresholds)
    where = f"position {int(worst['position'])} from the {side}"
    explanation = (
        f"The residue at {where} differs strongly between classes (Cramér's V {v:.2f}); if it "
        "reflects how sequences were obtained (start methionine, tags, primers) rather than "
        "biology, trim or mask it."
        if result != "pass"
        else f"No single position differs much between classes (largest Cramér's V {v:.2f}, "
        f"at {where})."
    )
    return make_check(
        "position_composition", "position", "largest bias-corrected Cramér's V over positions",
        v, thresholds, result, explanation,
        end=str(worst["end"]), position=int(worst["position"]),
        positions_scanned=len(association),
    )


# --- 4. duplicates --------------------------------------------------------------


def exact_duplicate_check(
    table: pd.DataFrame, dropped: pd.DataFrame, settings: dict[str, Any]
) -> dict[str, Any]:
    """Check 4a: identical sequences with different labels (curation's ledger plus any left)."""
    reasons = dropped["reason"].value_counts() if "reason" in dropped else pd.Series(dtype=int)
    conflicts_dropped = int(reasons.get("label_conflict", 0))
    labels_per_sequence = table.groupby("sequence")["label"].transform("nunique")
    across_left = int((labels_per_sequence > 1).sum())
    within_left = int(table.duplicated(["sequence", "label"]).sum())
    fraction = (conflicts_dropped + across_left) / (len(table) + conflicts_dropped)
    thresholds = {
        "warn": settings["duplicate_fraction_warn"],
        "fail": settings["duplicate_fraction_fail"],
    }
    result = verdict(fraction, **thresholds)
    explanation = (
        f"{fraction:.1%} of the records are identical sequences carrying different labels "
        f"({conflicts_dropped} removed by curation, {across_left} still in the table): the "
        "labels are noisy or depend on something other than the sequence."
        if result != "pass"
        else f"Few identical sequences carry different labels ({fraction:.1%} of the records)."
    )
    return make_check(
        "exact_duplicates", "duplicates", "fraction of records that are identical sequences "
        "with different labels", fraction, thresholds, result, explanation,
        label_conflicts_dropped_by_curation=conflicts_dropped,
        exact_duplicates_dropped_by_curation=int(reasons.get("exact_duplicate", 0)),
        across_labels_in_table=across_left, within_label_in_table=within_left,
    )


def near_duplicate_check(
    table: pd.DataFrame,
    sequence_type: str,
    settings: dict[str, Any],
    workdir: Path,
    threads: int,
    seed: int,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Check 4b: near-identical sequences with different labels (MMseqs2, a search that
    cannot miss a pair).

    Above `near_duplicate_max_sequences` the search runs on a class-stratified
    random subsample and the fraction is extrapolated: a pair survives
    subsampling only if both of its sequences do (probability f squared), so the
    fraction of sampled sequences in a pair, divided by f, estimates the fraction
    in the whole set.
    """
    identity = settings["near_duplicate_identity"]
    rows = model_subsample(table["label"], settings["near_duplicate_max_sequences"], seed)
    searched = table.iloc[rows]
    sampling = len(searched) / len(table)
    log.info(
        "near-duplicates across labels at identity >= %.2f among %d of %d sequences",
        identity, len(searched), len(table),
    )
    pairs = similar_pairs(
        searched[["id", "sequence", "label"]],
        sequence_type,
        identity,
        denominator="longer",
        workdir=workdir,
        threads=threads,
        exhaustive=True,
        between="label",
    )
    label_of = table.set_index("id")["label"]
    pairs = pairs.assign(
        query_label=pairs["query"].map(label_of).to_numpy(),
        target_label=pairs["target"].map(label_of).to_numpy(),
    )
    involved = pd.unique(pd.concat([pairs["query"], pairs["target"]]))
    fraction = min(1.0, len(involved) / len(searched) / sampling)
    thresholds = {
        "warn": settings["duplicate_fraction_warn"],
        "fail": settings["duplicate_fraction_fail"],
    }
    result = verdict(fraction, **thresholds)
    estimated = "an estimated " if sampling < 1 else ""
    explanation = (
        f"{estimated.capitalize()}{fraction:.1%} of the sequences have a near-identical sequence "
        f"(>= {identity:.0%} identity) in another class: either the labels are noisy or tiny "
        "differences decide the label; check these pairs before trusting any model."
        if result != "pass"
        else f"Few sequences have a near-identical sequence in another class ({estimated}"
        f"{fraction:.1%} at >= {identity:.0%} identity)."
    )
    search = "exhaustive (cannot miss a pair)"
    if sampling < 1:
        search += f" among a random {len(searched)} of {len(table)} sequences, extrapolated"
    check = make_check(
        "near_duplicates_across_labels", "duplicates", "fraction of sequences with a "
        "near-duplicate in another class", fraction, thresholds, result, explanation,
        identity=identity, identity_denominator="longer", pairs=len(pairs),
        sequences_searched=len(searched), search=search,
    )
    return check, pairs


# --- 5. class balance -------------------------------------------------------------


def class_balance_check(
    labels: pd.Series, settings: dict[str, Any]
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Check 5: class sizes, and which metrics stay meaningful with them."""
    counts = labels.value_counts().sort_index()
    prevalence = counts / counts.sum()
    ratio = float(counts.min() / counts.max())
    table = pd.DataFrame(
        {
            "label": counts.index,
            "count": counts.to_numpy(),
            "prevalence": prevalence.round(4).to_numpy(),
            "auprc_baseline": prevalence.round(4).to_numpy(),
        }
    )
    thresholds = {"warn": settings["balance_warn"], "fail": settings["balance_fail"]}
    # smaller is worse here, so the verdict is taken on the reciprocal
    result = verdict(1 / ratio, warn=1 / thresholds["warn"], fail=1 / thresholds["fail"])
    majority = float(prevalence.max())
    metrics = {
        "accuracy": "meaningful" if ratio >= 0.8 else f"misleading: always predicting the largest "
        f"class scores {majority:.2f}",
        "balanced_accuracy": "meaningful",
        "mcc": "meaningful",
        "auroc": "meaningful, but can look good while the smallest class is poorly found"
        if ratio < thresholds["warn"]
        else "meaningful",
        "auprc": "meaningful against its baseline, the class prevalence: "
        + ", ".join(f"{label} {p:.2f}" for label, p in prevalence.items()),
    }
    explanation = (
        f"The smallest class is {ratio:.2f} times the size of the largest: report balanced "
        "accuracy, MCC and AUPRC against its prevalence baseline, not accuracy."
        if result != "pass"
        else f"Classes are reasonably balanced (smallest / largest = {ratio:.2f}); AUPRC baselines "
        "are the class prevalences."
    )
    check = make_check(
        "class_balance", "class_balance", "smallest class size / largest class size", ratio,
        thresholds, result, explanation,
        counts={str(k): int(v) for k, v in counts.items()},
        prevalence={str(k): round(float(v), 4) for k, v in prevalence.items()},
        metrics=metrics,
    )
    check["direction"] = "smaller is worse"
    return check, table


# --- 6. batch structure -----------------------------------------------------------


def kmer_pca(profiles: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """First two principal components of k-mer profiles and their explained variance."""
    pca = PCA(n_components=2, random_state=seed)
    return pca.fit_transform(profiles), pca.explained_variance_ratio_


def batch_checks(
    profiles: np.ndarray,
    sample: pd.DataFrame,
    metadata: list[str],
    settings: dict[str, Any],
    seed: int,
) -> tuple[list[dict[str, Any]], pd.DataFrame]:
    """Check 6: within one label, can k-mers tell which batch (metadata value) a sequence is from?

    If yes, the batch leaves a trace in the sequence features, and any
    label-batch imbalance becomes a shortcut a model can use.
    """
    checks, rows = [], []
    thresholds = {"warn": settings["auroc_warn"], "fail": settings["auroc_fail"]}
    folds = settings["cv_folds"]
    for column in metadata:
        worst: dict[str, Any] | None = None
        for label, within in sample.groupby("label", sort=True):
            levels = within[column].replace("", "(missing)")
            counts = levels.value_counts()
            usable = counts[counts >= folds].index
            keep = levels.isin(usable).to_numpy()
            if len(usable) < 2:
                rows.append({"column": column, "label": label, "levels": len(usable),
                             "sequences": int(keep.sum()), "auroc": None, "p_value": None})
                continue
            codes = pd.Categorical(levels[keep]).codes.astype(int)
            score = shortcuts.shortcut_auroc(
                profiles[within.index.to_numpy()[keep]],
                codes,
                folds=folds,
                permutations=settings["permutations"],
                seed=seed,
                models={"linear": shortcuts.linear_model()},
            )
            rows.append({"column": column, "label": label, "levels": len(usable),
                         "sequences": int(keep.sum()), "auroc": round(score.best, 4),
                         "p_value": score.p_value})
            if worst is None or score.best > worst["auroc"]:
                worst = {"auroc": score.best, "p_value": score.p_value, "label": label}
        checks.append(_batch_check(column, worst, thresholds, settings))
    return checks, pd.DataFrame(
        rows, columns=["column", "label", "levels", "sequences", "auroc", "p_value"]
    )


def _batch_check(
    column: str,
    worst: dict[str, Any] | None,
    thresholds: dict[str, float],
    settings: dict[str, Any],
) -> dict[str, Any]:
    statistic = "largest cross-validated AUROC, within one label, of k-mers predicting the column"
    if worst is None:
        return make_check(
            f"batch_{column}", "batch", statistic, 0.5, thresholds, "pass",
            f"Within each label '{column}' has fewer than two values with enough sequences, "
            "so a batch effect inside a label cannot be tested.",
            column=column, tested=False,
        )
    result = auroc_verdict(worst["auroc"], worst["p_value"], settings)
    explanation = (
        f"Within label '{worst['label']}', k-mer profiles predict '{column}' with AUROC "
        f"{worst['auroc']:.2f}: the batch leaves a trace in the sequences, so a model can use "
        f"it wherever '{column}' and the label are linked."
        if result != "pass"
        else f"Within each label, k-mer profiles hardly predict '{column}' (AUROC at most "
        f"{worst['auroc']:.2f})."
    )
    return make_check(
        f"batch_{column}", "batch", statistic, worst["auroc"], thresholds, result, explanation,
        column=column, tested=True, label=worst["label"], p_value=worst["p_value"],
    )


# --- figures ----------------------------------------------------------------------


def save_figure(figure: Figure, path: Path, tight: bool = True) -> None:
    """PNG through a temporary file, so a killed job leaves no half-written figure.

    `tight=False` for figures laid out by hand: automatic layout of many
    labelled heatmaps costs seconds.
    """
    if tight:
        figure.tight_layout()
    with atomic_write(path, "wb") as handle:
        figure.savefig(handle, format="png", dpi=110)


def plot_lengths(table: pd.DataFrame, path: Path) -> None:
    figure = Figure(figsize=(7, 4))
    axis = figure.subplots()
    lengths = table["sequence"].str.len()
    bins = np.linspace(lengths.min(), lengths.max() + 1, min(60, lengths.nunique() + 1))
    for label, group in lengths.groupby(table["label"]):
        axis.hist(group, bins=bins, density=True, histtype="step", linewidth=1.5, label=str(label))
    axis.set(xlabel="sequence length", ylabel="density", title="Length by class")
    axis.legend(title="label")
    save_figure(figure, path)


def plot_composition(composition: np.ndarray, labels: pd.Series, alphabet: str, path: Path) -> None:
    means = pd.DataFrame(composition, columns=list(alphabet)).groupby(labels.to_numpy()).mean()
    figure = Figure(figsize=(min(12, max(6, 0.45 * len(alphabet) * len(means))), 4))
    axis = figure.subplots()
    width = 0.8 / len(means)
    for offset, (label, row) in enumerate(means.iterrows()):
        axis.bar(np.arange(len(alphabet)) + offset * width, row.to_numpy(), width, label=str(label))
    axis.set_xticks(np.arange(len(alphabet)) + 0.4 - width / 2, list(alphabet))
    axis.set(ylabel="mean fraction per sequence", title="Composition by class")
    axis.legend(title="label")
    save_figure(figure, path)


def plot_pca(
    coordinates: np.ndarray, explained: np.ndarray, sample: pd.DataFrame, columns: list[str],
    k: int, seed: int, path: Path,
) -> None:
    """One scatter per colouring: by label, then by each metadata column."""
    shown = np.random.default_rng(seed).permutation(len(sample))[:MAX_POINTS_PER_PLOT]
    colourings = ["label", *columns]
    figure = Figure(figsize=(5 * len(colourings), 4.5))
    axes = figure.subplots(1, len(colourings), squeeze=False)
    for axis, column in zip(axes[0], colourings, strict=True):
        values = sample[column].replace("", "(missing)").to_numpy()[shown]
        levels = pd.Series(values).value_counts().index
        for level in levels[:10]:
            at = shown[values == level]
            axis.scatter(coordinates[at, 0], coordinates[at, 1], s=4, alpha=0.5, label=str(level))
        if len(levels) > 10:
            at = shown[~np.isin(values, levels[:10])]
            axis.scatter(coordinates[at, 0], coordinates[at, 1], s=4, alpha=0.5, c="grey",
                         label=f"{len(levels) - 10} more")
        axis.set(xlabel=f"PC1 ({explained[0]:.0%})", ylabel=f"PC2 ({explained[1]:.0%})",
                 title=f"{k}-mer profiles by {column}")
        axis.legend(markerscale=3, fontsize=7)
    save_figure(figure, path)


def plot_shortcuts(scores: pd.DataFrame, settings: dict[str, Any], path: Path) -> None:
    pivot = scores.pivot(index="feature_set", columns="model", values="auroc")
    pivot = pivot.loc[[name for name in SHORTCUT_WORDS if name in pivot.index]]
    figure = Figure(figsize=(8, 4))
    axis = figure.subplots()
    width = 0.8 / len(pivot.columns)
    for offset, model in enumerate(pivot.columns):
        axis.bar(np.arange(len(pivot)) + offset * width, pivot[model], width, label=model)
    axis.axhline(0.5, color="black", linewidth=0.8, linestyle=":", label="chance")
    axis.axhline(settings["auroc_warn"], color="orange", linestyle="--", label="warn")
    axis.axhline(settings["auroc_fail"], color="red", linestyle="--", label="fail")
    axis.set_xticks(np.arange(len(pivot)) + 0.4 - width / 2, pivot.index, rotation=20)
    axis.set(ylim=(0.4, 1.0), ylabel="cross-validated AUROC", title="Trivial features alone")
    axis.legend(fontsize=8)
    save_figure(figure, path)


def plot_positions(
    frequencies: pd.DataFrame, association: pd.DataFrame, settings: dict[str, Any], path: Path
) -> None:
    """Cramér's V per position (top) and per-class residue frequencies (heatmaps) from both ends."""
    labels = sorted(frequencies["label"].unique()) if not frequencies.empty else []
    shown = labels[:6]
    figure = Figure(figsize=(12, 2.5 + 2.5 * len(shown)))
    axes = figure.subplots(1 + len(shown), 2, squeeze=False)
    figure.subplots_adjust(left=0.06, right=0.97, bottom=0.06, top=0.95, hspace=0.6, wspace=0.2)
    for column, end in enumerate(("start", "end")):
        axis = axes[0, column]
        part = association[association["end"] == end] if not association.empty else association
        if not part.empty:
            axis.plot(part["position"], part["cramers_v"], marker="o", markersize=3)
        axis.axhline(settings["position_v_warn"], color="orange", linestyle="--")
        axis.axhline(settings["position_v_fail"], color="red", linestyle="--")
        axis.set(xlabel=f"position from the {end}", ylabel="Cramér's V", ylim=(0, 1),
                 title=f"Class differences by position, from the {end}")
        for row, label in enumerate(shown, start=1):
            axis = axes[row, column]
            cells = frequencies[(frequencies["end"] == end) & (frequencies["label"] == label)]
            if cells.empty:
                axis.set_axis_off()
                continue
            grid = cells.pivot(index="residue", columns="position", values="fraction").fillna(0)
            image = axis.imshow(grid.to_numpy(), aspect="auto", cmap="viridis", vmin=0)
            axis.set_yticks(range(len(grid.index)), grid.index, fontsize=6)
            axis.set_xticks(range(0, len(grid.columns), 5), grid.columns[::5])
            axis.set(title=f"{label}: residue frequency from the {end}", xlabel="position")
            figure.colorbar(image, ax=axis, fraction=0.03)
    save_figure(figure, path, tight=False)


# --- the stage -----------------------------------------------------------------------


@threadpool_limits.wrap(limits=1)
def explore(
    sequences_path: Path,
    summary_path: Path,
    dropped_path: Path,
    dataset: dict[str, Any],
    settings: dict[str, Any],
    seed: int,
    outputs: Mapping[str, Path],
    threads: int = 1,
) -> dict[str, Any]:
    """Run every check, write tables, figures and checks.json; return what checks.json holds.

    Maths libraries run single-threaded (the decorator); `threads` goes to the
    MMseqs2 search and the model fits that parallelise across folds.
    """
    check_settings(settings)
    sequence_type = dataset["sequence_type"]
    table, metadata = load_inputs(sequences_path, summary_path, dataset, settings["cv_folds"])
    dropped = read_tsv(dropped_path)
    log.info("%d sequences, classes %s, metadata %s", len(table),
             table["label"].value_counts().to_dict(), metadata)
    encoded = shortcuts.encode(table["sequence"].to_numpy(), sequence_type)
    checks: list[dict[str, Any]] = []

    label_checks, contingency = label_metadata_checks(table, metadata, settings)
    checks += label_checks
    write_tsv(outputs["label_metadata"], contingency)

    rows = model_subsample(table["label"], settings["max_sequences"], seed)
    sample = table.iloc[rows].reset_index(drop=True)
    sample_encoded = shortcuts.encode(sample["sequence"].to_numpy(), sequence_type)
    label_codes = pd.Categorical(sample["label"]).codes.astype(int)
    if len(rows) < len(table):
        log.info("model-based checks use a stratified subsample of %d sequences", len(rows))
    features = shortcut_features(sample_encoded, sequence_type, settings["end_positions"])
    shortcut_list, shortcut_table = shortcut_checks(features, label_codes, settings, seed, threads)
    checks += shortcut_list
    write_tsv(outputs["shortcuts"], shortcut_table)

    frequencies, association = position_composition(encoded, table["label"], settings)
    checks.append(position_check(association, settings))
    write_tsv(outputs["positions"], frequencies.merge(association, on=["end", "position"])
              if not frequencies.empty else frequencies)

    checks.append(exact_duplicate_check(table, dropped, settings))
    near_check, pairs = near_duplicate_check(
        table, sequence_type, settings, Path(outputs["checks"]).parent, threads, seed
    )
    checks.append(near_check)
    write_tsv(outputs["near_duplicates"], pairs)

    balance_check, balance_table = class_balance_check(table["label"], settings)
    checks.append(balance_check)
    write_tsv(outputs["class_balance"], balance_table)

    k = settings["kmer_size_protein" if sequence_type == "protein" else "kmer_size_nucleic"]
    profiles = shortcuts.kmer_profile(sample_encoded, k)
    coordinates, explained = kmer_pca(profiles, seed)
    batch_list, batch_table = batch_checks(profiles, sample, metadata, settings, seed)
    checks += batch_list
    write_tsv(outputs["batch"], batch_table)

    plot_lengths(table, outputs["lengths_png"])
    plot_composition(features["composition"], sample["label"], encoded.alphabet,
                     outputs["composition_png"])
    plot_pca(coordinates, explained, sample, metadata, k, seed, outputs["pca_png"])
    plot_shortcuts(shortcut_table, settings, outputs["shortcuts_png"])
    plot_positions(frequencies, association, settings, outputs["positions_png"])

    result = summarise(checks, table, dataset, settings, len(rows))
    write_json(outputs["checks"], result)
    log.info("verdicts %s; floor AUROC %.3f (%s)", result["verdicts"],
             result["floor"]["auroc"], result["floor"]["check"])
    for check in checks:
        if check["verdict"] != "pass":
            log.warning("%s %s: %s", check["verdict"].upper(), check["name"], check["explanation"])
    return result


def summarise(
    checks: list[dict[str, Any]],
    table: pd.DataFrame,
    dataset: dict[str, Any],
    settings: dict[str, Any],
    modelled: int,
) -> dict[str, Any]:
    """The body of checks.json: every check, the verdict counts, the failures and the floor."""
    shortcut = [c for c in checks if c["kind"] == "shortcut"]
    best = max(shortcut, key=lambda c: c["value"])
    return {
        "dataset": dataset["name"],
        "sequence_type": dataset["sequence_type"],
        "sequences": len(table),
        "sequences_modelled": int(modelled),
        "labels": {str(k): int(v) for k, v in table["label"].value_counts().sort_index().items()},
        "settings": dict(settings),
        "verdicts": {v: sum(c["verdict"] == v for c in checks) for v in VERDICTS},
        "failures": [c["name"] for c in checks if c["verdict"] == "fail"],
        "warnings": [c["name"] for c in checks if c["verdict"] == "warn"],
        "floor": {
            "auroc": best["value"],
            "check": best["name"],
            "model": best["model"],
            "explanation": "The best cross-validated AUROC any single trivial feature set "
            "reaches; a real model must clearly beat it.",
        },
        "checks": checks,
    }


def enforce_strict(checks_path: Path, gate_path: Path, strict: bool) -> dict[str, Any]:
    """Stop the workflow before training when explore.strict is on and a check failed.

    checks.json and the figures stay on disk so the user can read why.
    """
    result = read_json(checks_path)
    failed = [c for c in result["checks"] if c["verdict"] == "fail"]
    if strict and failed:
        listing = "\n".join(f"  - {c['name']}: {c['explanation']}" for c in failed)
        raise ChecksFailed(
            f"explore.strict is true and {len(failed)} check(s) failed (details in "
            f"{checks_path}):\n{listing}\nFix the data, or set explore.strict: false in "
            "config/config.yaml to carry on with the failures shown in the report."
        )
    gate = {"strict": strict, "failures": [c["name"] for c in failed], "stopped": False}
    write_json(gate_path, gate)
    return gate
