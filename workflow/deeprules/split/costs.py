"""What balance costs: sequences kept vs length shift vs label drift, per balance setting.

Rule split_costs. Inputs: sequences (curate/sequences.tsv), assignments and pairs
(the split's partitions and homology graph). Outputs: costs (split/balance_costs.json),
figure (split/balance.png). Settings: the split's, plus `compare`
(split.balance.compare). A rule of its own because no model needs it: training
starts as soon as the split is verified, and a change of `compare` reruns only this
and the report.

Balancing strata removes sequences (separators through dense families, and
whatever still cannot be balanced), so a user should choose the tolerance
knowingly. The homology split is repartitioned on the same graph with balance
off (`none`: the label alone), as configured (`default`) and stricter (half the
tolerance, twice the length bins), and each is measured with the same yardsticks:
kept sequences, the largest length AUROC between two partitions (deeprules.split.shift),
the largest label-share gap and the largest stratum-share gap (strata of the
configured balance, or 4 length bins when it is off). The stricter variant takes
one partitioning attempt (the run itself takes the best of several), so it shows
the cost of that setting slightly pessimistically. No verification is needed:
every variant is cut on the same graph, so none has a cross-partition edge.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from deeprules.contracts import PARTITIONS
from deeprules.figures import save_figure
from deeprules.io import read_tsv, write_json
from deeprules.rule import Job
from deeprules.split.homology import RESTARTS
from deeprules.split.report import covariate_balance
from deeprules.split.settings import SplitSettings, build_settings
from deeprules.split.shift import shift_statistics
from deeprules.split.stage import assign_partitions

# Stratum gaps of an unbalanced split are measured on this many length bins.
YARDSTICK_BINS = 4

Partitioner = Callable[[SplitSettings], pd.Series]  # settings -> partition per id ('' removed)


def run(job: Job) -> None:
    """The rule's entry point: the table of variants and its figure."""
    settings = build_settings(job.settings)
    table = read_tsv(job.inputs["sequences"])
    rows = split_costs(
        table,
        read_tsv(job.inputs["pairs"]),
        read_tsv(job.inputs["assignments"]).set_index("id")["partition"],
        settings,
        bool(job.settings["compare"]),
        job.threads,
    )
    write_json(job.outputs["costs"], {"balance_costs": rows})
    plot_costs(rows, settings, job.outputs["figure"])


def split_costs(
    table: pd.DataFrame,
    pairs: pd.DataFrame,
    partition: pd.Series,
    settings: SplitSettings,
    compare: bool,
    threads: int = 1,
) -> list[dict[str, Any]]:
    """The cost table of a finished split: `partition` (id -> partition of the kept
    sequences) is the run's own; the other variants are cut on the same graph (their
    partitioning attempts on `threads` processes)."""
    return balance_costs(
        table,
        settings,
        partition,
        lambda variant: pd.Series(
            assign_partitions(table, pairs, variant, threads, restarts=_restarts(variant))[0],
            index=table["id"],
        ),
        lambda subset, yardstick: covariate_balance(table, subset, yardstick),
        compare,
    )


def _restarts(variant: SplitSettings) -> int:
    """Attempts for a variant: balancing the label alone is cheap (all of them, so
    `none` is exactly the label-only split); stratified variants take one."""
    return 1 if variant.length_bins > 1 or variant.balance_columns else RESTARTS


def variants(settings: SplitSettings, compare: bool) -> dict[str, SplitSettings]:
    """none / default / stricter versions of the configured balance; only the run's own
    split ("as split") for other methods or with split.balance.compare off."""
    if settings.method != "homology" or not compare:
        return {"as split": settings}
    bins = settings.length_bins if settings.length_bins > 1 else YARDSTICK_BINS
    return {
        "none": dataclasses.replace(settings, length_bins=0, balance_columns=()),
        "default": settings,
        "stricter": dataclasses.replace(
            settings, length_bins=2 * bins, covariate_tolerance=settings.covariate_tolerance / 2
        ),
    }


def balance_costs(
    table: pd.DataFrame,
    settings: SplitSettings,
    default_partition: pd.Series,
    partition: Partitioner,
    balance_of: Callable[[pd.DataFrame, SplitSettings], dict[str, Any]],
    compare: bool,
) -> list[dict[str, Any]]:
    """One row per variant. `default_partition` is the run's own result (id ->
    partition of kept sequences); `partition` repartitions for the other variants;
    `balance_of(kept, settings)` is the report's covariate balance (the yardstick)."""
    yardstick = dataclasses.replace(
        settings, length_bins=settings.length_bins if settings.length_bins > 1 else YARDSTICK_BINS
    )
    whole = table["label"].value_counts(normalize=True)
    rows = []
    for name, variant in variants(settings, compare).items():
        where = default_partition if variant is settings else partition(variant)
        kept = table.assign(partition=table["id"].map(where).fillna(""))
        kept = kept[kept["partition"] != ""].reset_index(drop=True)
        shift = shift_statistics(kept, settings.sequence_type, settings.seed)
        aurocs = [p["length_auroc"] for p in shift["pairs"].values() if p["length_auroc"]]
        label_gap = max(
            (kept.loc[kept["partition"] == p, "label"].value_counts(normalize=True) - whole)
            .abs()
            .reindex(whole.index, fill_value=1.0)
            .max()
            for p in PARTITIONS
        )
        balance = balance_of(kept, yardstick)
        rows.append(
            {
                "setting": name,
                "length_bins": variant.length_bins,
                "tolerance": variant.covariate_tolerance if variant.length_bins > 1 else None,
                "kept": len(kept),
                "max_length_auroc": max(aurocs) if aurocs else None,
                "max_label_gap_points": round(100 * float(label_gap), 2),
                "max_stratum_gap_points": round(
                    100
                    * max(p["max_stratum_share_deviation"] for p in balance["partitions"].values()),
                    2,
                ),
            }
        )
    return rows


def plot_costs(rows: list[dict[str, Any]], settings: SplitSettings, path: Path) -> None:
    """Kept sequences against the length shift they leave (one point per setting), and
    the table of all four measures beside it."""
    fig, (ax, table_ax) = plt.subplots(
        1, 2, figsize=(9.6, 3.8), gridspec_kw={"width_ratios": [1, 1.25]}
    )
    for row in rows:
        if row["max_length_auroc"] is not None:
            ax.scatter(row["kept"], row["max_length_auroc"], s=60)
            ax.annotate(
                row["setting"],
                (row["kept"], row["max_length_auroc"]),
                textcoords="offset points",
                xytext=(6, -4),
                fontsize=9,
            )
    ax.axhline(settings.shift_max_auroc, color="black", linestyle="--", label="shift gate")
    ax.axhline(0.5, color="grey", linestyle=":", label="indistinguishable")
    ax.set_xlabel("sequences kept")
    ax.set_ylabel("largest length AUROC, two partitions")
    ax.margins(x=0.25, y=0.15)
    ax.legend(fontsize=8, loc="center left")
    cells = [
        [
            row["setting"],
            "-" if row["tolerance"] is None else f"{row['length_bins']} / {row['tolerance']:g}",
            f"{row['kept']:,}",
            "-" if row["max_length_auroc"] is None else f"{row['max_length_auroc']:.3f}",
            f"{row['max_label_gap_points']:.1f}",
            f"{row['max_stratum_gap_points']:.1f}",
        ]
        for row in rows
    ]
    table_ax.axis("off")
    table = table_ax.table(
        cellText=cells,
        colLabels=[
            "balance",
            "bins / tol.",
            "kept",
            "length\nAUROC",
            "label\ngap pts",
            "stratum\ngap pts",
        ],
        loc="center",
    )
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    table.scale(1, 1.8)
    fig.suptitle("What covariate balance costs")
    save_figure(fig, path)
