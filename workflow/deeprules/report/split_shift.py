"""Tip 7 evidence from the split: how far the partitions differ besides homology.

A scorecard reader should see whether the test set is a fair sample, not only an
independent one: the covariate balance the split reached and how well a
classifier tells the partitions apart by length and composition (split_report.json,
`covariate_balance` and `shift`). Reports written before these sections existed
give no evidence here.
"""

from __future__ import annotations

from typing import Any


def shift_evidence(split: dict[str, Any]) -> str:
    """One sentence: a comparison split's leakage said plainly, the balance achieved,
    length / composition AUROC per pair and the gate's verdict; empty for a report
    without a shift section."""
    shift = split.get("shift")
    if not shift:
        return ""
    parts = []
    leaks = split["verification"]["pairs_at_or_above_threshold"]
    if split["method"] != "homology" and leaks:
        by = split["verification"]["pairs_at_or_above_threshold_by_partitions"]
        parts.append(
            f"the {split['method']} split LEAKS: {leaks:,} cross-partition pairs at or above "
            f"{split['threshold']:g} identity ({by.get('test vs train', 0):,} test vs train), "
            "so test scores include recognising relatives of training sequences"
        )
    balance = split.get("covariate_balance")
    if balance and balance["balanced"]:
        worst = max(p["max_stratum_share_deviation"] for p in balance["partitions"].values())
        covariates = ", ".join(
            f"length in {balance['length_bins']} bins" if c == "length" else c
            for c in balance["covariates"]
        )
        parts.append(
            f"balanced on label x {covariates}: largest stratum-share gap "
            f"{100 * worst:.1f} points (tolerance {100 * balance['tolerance']:g})"
        )
    for feature in ("length", "composition"):
        values = [
            f"{name} {pair[f'{feature}_auroc']:.2f}"
            for name, pair in shift["pairs"].items()
            if pair[f"{feature}_auroc"] is not None
        ]
        if values:
            parts.append(f"{feature} AUROC (partition from {feature}) " + ", ".join(values))
    gate = shift["gate"]
    if gate["passed"]:
        parts.append(f"no {'/'.join(gate['gated'])} AUROC above {gate['max_auroc']:g}")
    else:
        shown = ", ".join(f"{e['pair']} {e['feature']}" for e in gate["exceeded"])
        parts.append(
            f"SHIFTED beyond AUROC {gate['max_auroc']:g} ({shown}): test scores also "
            "measure transfer to a different population"
        )
    return "; ".join(parts)


def shift_gate_failed(split: dict[str, Any]) -> bool:
    """Whether the split's shift gate found partitions a classifier tells apart (a split
    configured to warn instead of stop gets here): Tip 7 must then warn, not pass."""
    shift = split.get("shift")
    return bool(shift) and not shift["gate"]["passed"]


def balance_cost_table(costs: dict[str, Any]) -> str:
    """What covariate balance costs (split/balance_costs.json) as a Markdown table, for
    the report next to balance.png; empty for a report without it."""
    rows = costs.get("balance_costs")
    if not rows:
        return ""
    lines = [
        "| balance | length bins / tolerance | kept | largest length AUROC | "
        "largest label-share gap (points) | largest stratum-share gap (points) |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        setting = (
            "-" if row["tolerance"] is None else f"{row['length_bins']} / {row['tolerance']:g}"
        )
        auroc = "-" if row["max_length_auroc"] is None else f"{row['max_length_auroc']:.3f}"
        lines.append(
            f"| {row['setting']} | {setting} | {row['kept']:,} | {auroc} | "
            f"{row['max_label_gap_points']:.1f} | {row['max_stratum_gap_points']:.1f} |"
        )
    return "\n".join(lines)
