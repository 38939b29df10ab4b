"""Where the models fail (Tip 9): the panel per metadata group, length bin and identity bin.

Before anyone explains why a model works, we look at where it does not: a
group is flagged when a metric falls more than `failure_drop` below the
model's value on the whole test set. Identity to the nearest training
sequence comes from an MMseqs2 search of test against train only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deeprules.contracts import Classes
from deeprules.evaluate.bootstrap import bootstrap_panels, interval
from deeprules.evaluate.panel import oriented, point_metrics

# What a grouping of the test set is made of (column `grouping_kind`).
KIND_METADATA, KIND_LENGTH, KIND_IDENTITY = "metadata", "length", "identity"
# Why a grouping or group was not scored (skipped_groups `reason_code`).
SKIP_TOO_MANY, SKIP_TOO_SMALL = "too_many_groups", "too_small"


@dataclass(frozen=True)
class Grouping:
    """One way to cut the test set: its kind (KIND_*) and each sequence's group."""

    kind: str
    groups: pd.Series


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


def groupings_of_test_set(
    test: pd.DataFrame, settings: dict[str, Any], identity: pd.Series | None
) -> dict[str, Grouping]:
    """Metadata columns, length bins and (given the identity search) identity-to-train bins."""
    groupings = {f"metadata: {c}": Grouping(KIND_METADATA, test[c]) for c in metadata_columns(test)}
    groupings["sequence length"] = Grouping(
        KIND_LENGTH, length_groups(test["sequence"], settings["length_bins"])
    )
    if identity is not None:
        groupings["identity to nearest training sequence"] = Grouping(
            KIND_IDENTITY, identity_groups(identity.set_axis(test.index), settings["identity_bins"])
        )
    return groupings


def _group_rows(
    where: dict[str, Any],
    members: np.ndarray,
    probabilities: dict[str, np.ndarray],
    truth: np.ndarray,
    classes: Classes,
    thresholds: dict[str, float | None],
    overall: dict[str, dict[str, float]],
    settings: dict[str, Any],
    seed: int,
) -> list[dict[str, Any]]:
    """The panel of every model within one group, with bootstrap CIs and drop flags."""
    bins = settings["calibration_bins"]
    dists = bootstrap_panels(
        {m: p[members] for m, p in probabilities.items()},
        truth[members],
        classes,
        thresholds,
        settings["bootstrap_resamples"],
        seed,
        bins,
    )
    counts = {f"n_{c}": int(np.sum(truth[members] == k)) for k, c in enumerate(classes.names)}
    rows = []
    for model, probs in probabilities.items():
        point = point_metrics(probs[members], truth[members], classes, thresholds[model], bins)
        for metric, value in point.items():
            low, high = interval(dists[model][metric], settings["ci_level"])
            drop = oriented(metric, overall[model][metric] - value)
            rows.append(
                {
                    "model": model,
                    **where,
                    **counts,
                    "metric": metric,
                    "value": value,
                    "ci_low": low,
                    "ci_high": high,
                    "overall": overall[model][metric],
                    "drop": drop,
                    "flagged": bool(metric != "auprc_baseline" and drop > settings["failure_drop"]),
                }
            )
    return rows


def failure_domains(
    groupings: dict[str, Grouping],
    probabilities: dict[str, np.ndarray],
    truth: np.ndarray,
    classes: Classes,
    thresholds: dict[str, float | None],
    overall: dict[str, dict[str, float]],
    settings: dict[str, Any],
    seed: int,
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """The metric panel within each group of each grouping, with bootstrap CIs.

    Groups smaller than `min_group_size` are listed as skipped, as are
    groupings with more than `max_groups` groups: their numbers would be noise.
    """
    rows, skipped = [], []
    for name, grouping in groupings.items():
        values = grouping.groups.to_numpy()
        distinct = pd.Series(values).value_counts()
        if len(distinct) < 2:
            continue  # one group is the whole test set: nothing to compare
        if len(distinct) > settings["max_groups"]:
            reason = f"{len(distinct)} groups (> max_groups)"
            skipped.append({"grouping": name, "reason": reason, "reason_code": SKIP_TOO_MANY})
            continue
        for group, n in distinct.sort_index().items():
            if n < settings["min_group_size"]:
                skipped.append(
                    {
                        "grouping": name,
                        "group": group,
                        "n": int(n),
                        "reason": "too small",
                        "reason_code": SKIP_TOO_SMALL,
                    }
                )
                continue
            where = {"grouping": name, "grouping_kind": grouping.kind, "group": group, "n": int(n)}
            rows += _group_rows(
                where,
                values == group,
                probabilities,
                truth,
                classes,
                thresholds,
                overall,
                settings,
                seed,
            )
    return pd.DataFrame(rows), skipped


def failure_flags(failures: pd.DataFrame, metric: str) -> list[dict[str, Any]]:
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
    columns = [*keys, "grouping_kind", "n", "metric", "value", "overall", "drop"]
    return flagged[columns].to_dict("records")
