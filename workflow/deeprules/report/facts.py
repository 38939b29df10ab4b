"""Numbers several sections of the report quote, formatted in one place so the
scorecard, the model card and the DOME summary never disagree."""

from __future__ import annotations

from typing import Any

from deeprules.evaluate.panel import METRIC_NAMES

METRIC_COLUMNS = ["auroc", "auprc", "mcc", "balanced_accuracy", "brier", "ece"]


def metric_name(name: str) -> str:
    """'AUROC' for 'auroc': the name evaluate's tables and figures use."""
    return METRIC_NAMES.get(name, name.replace("_", " "))


def metric(model: dict[str, Any], name: str) -> str:
    """A test metric with its bootstrap interval, or n/a."""
    value = model["metrics"].get(name, {})
    if value.get("value") is None:
        return "n/a"
    return f"{value['value']:.3f} [{value['ci_low']:.3f}, {value['ci_high']:.3f}]"


def listing(values: dict[str, Any]) -> str:
    """'AMP 2,310, UniProt 2,310' or 'filters 16, dropout 0.13, pooling max': a reader's
    list, not a Python dict; 'none' when empty."""

    def shown(value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return str(value)
        return f"{value:,}" if isinstance(value, int) else f"{value:.3g}"

    return ", ".join(f"{name} {shown(value)}" for name, value in values.items()) or "none"


def median_lengths(split: dict[str, Any]) -> dict[str, float]:
    """Median sequence length of each partition that recorded its quartiles."""
    return {
        name: part["length_quartiles"][1]
        for name, part in split["partitions"].items()
        if part.get("length_quartiles")
    }


def metrics_table(ev: dict[str, Any]) -> str:
    """Every evaluated model's test metrics, as a Markdown table."""
    present = [n for n in METRIC_COLUMNS if any(n in m["metrics"] for m in ev["models"].values())]
    header = " | ".join(metric_name(n) for n in present)
    lines = [f"| model | role | {header} |", "|---|---|" + "---|" * len(present)]
    for name, model in ev["models"].items():
        cells = " | ".join(metric(model, n) for n in present)
        lines.append(f"| {name} | {model['role']} | {cells} |")
    return "\n".join(lines)


def trial_subsample(base: dict[str, Any], cnn: dict[str, Any]) -> str:
    """What the tuning trials of both stages fitted on and were scored on, in words, when
    either was a subsample (budget.trial_subsample); empty when every trial saw all of
    train and tune (and for summaries written before the subsample existed)."""
    for record in _trial_records(base, cnn):
        if record and (record["subsampled"] or record.get("tune_subsampled")):
            return f"baselines and CNN: {record['how']}"
    return ""


def same_trial_data(base: dict[str, Any], cnn: dict[str, Any]) -> bool:
    """Did the baselines' and the CNN's trials fit on as many training sequences and were
    they scored on as many tune sequences (Tip 2)? Summaries from before the subsample
    existed fitted and scored every trial on all of train and tune."""
    sizes = {
        None if record is None else (record["trial_sequences"], record.get("trial_tune_sequences"))
        for record in _trial_records(base, cnn)
    }
    return len(sizes) == 1 or None in sizes


def _trial_records(base: dict[str, Any], cnn: dict[str, Any]) -> tuple[Any, Any]:
    """The baselines' and the CNN's trial_subsample records (None when absent)."""
    return base.get("trial_subsample"), cnn.get("tuning", {}).get("trial_subsample")


def baseline_approximations(base: dict[str, Any]) -> list[str]:
    """Every approximation the baselines stage used, in words: a model's affordable form
    on a large training set, a k-mer size hashed into fewer columns. Empty when every
    model was fitted exactly (a summary written before approximations existed is exact)."""
    used = base.get("approximations", {}).get("used", {})
    parts = [f"{model} {form}" for model, form in used.items()]
    for hashed in base.get("features", {}).get("hashed_kmers", []):
        parts.append(
            f"{hashed['k']}-mers hashed into {hashed['columns']:,} columns "
            f"({hashed['colliding_share']:.1%} of the training {hashed['k']}-mers share one)"
        )
    return parts
