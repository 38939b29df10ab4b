"""The model card (Mitchell et al. 2019), filled from the run's own files.

One function per group of sections; each reads only the stage summaries it
quotes, so a stage that did not run leaves its sections short, not wrong.
"""

from __future__ import annotations

from typing import Any

from deeprules.report.facts import listing, median_lengths, metric_name, metrics_table

Stages = dict[str, Any]


def model_card(stages: Stages, dataset: dict[str, Any]) -> str:
    """The card as Markdown; `stages` maps a stage to its summary (absent if it did not run)."""
    lines = [f"# Model card: CNN for dataset '{dataset['name']}'", ""]
    lines += _model_and_use(stages, dataset)
    lines += _evaluation(stages)
    lines += _training_data(stages)
    lines += _quantitative_analyses(stages)
    lines += _ethics_and_caveats(stages, dataset)
    return "\n".join(lines) + "\n"


def _model_and_use(stages: Stages, dataset: dict[str, Any]) -> list[str]:
    """Model details, intended use and factors."""
    cnn, ev, curate = stages.get("cnn"), stages.get("evaluate"), stages["curate"]
    lines = ["## Model details", ""]
    if cnn:
        lines.append(
            f"Keras {cnn['versions']['keras']} convolutional network on one-hot "
            f"{dataset['sequence_type']} sequences (input length {cnn['encoding']['length']}), "
            f"tuned with Keras Tuner {cnn['tuning']['tuner']} over {cnn['tuning']['trials']} "
            f"trials; hyperparameters: {listing(cnn['hyperparameters'])}. "
            f"{cnn['final_model']['how']}."
        )
    return [
        *lines,
        "",
        "## Intended use",
        "",
        f"Research use: ranking {dataset['sequence_type']} sequences by the probability of "
        f"class '{(ev or {}).get('positive_class') or 'each class'}' for follow-up experiments, "
        "on sequences resembling the training data. Not for clinical or regulatory decisions.",
        "",
        "## Factors",
        "",
        f"Metadata columns examined: {', '.join(curate['metadata_columns']) or 'none'}; "
        "sequence length; identity of each test sequence to its nearest training sequence.",
    ]


def _evaluation(stages: Stages) -> list[str]:
    """Metrics and evaluation data: how test was scored, and what test is."""
    ev, split = stages.get("evaluate"), stages.get("split")
    lines = ["", "## Metrics", ""]
    if ev:
        lines.append(
            f"Primary metric {metric_name(ev['primary_metric'])}; all metrics with "
            f"{ev['bootstrap']['ci_level']:.0%} stratified bootstrap intervals "
            f"({ev['bootstrap']['resamples']} resamples); decision thresholds chosen on tune."
        )
    lines += ["", "## Evaluation data", ""]
    if split and ev:
        lines.append(
            f"The test partition ({sum(ev['test_counts'].values()):,} sequences: "
            f"{listing(ev['test_counts'])}), separated from training by a "
            f"{split['method']} split (guarantee: {split['guarantee']}; "
            f"{_leaked_pairs(split)} at or above {split['threshold']:g} identity, "
            f"{split['identity_definition']}); opened {ev['test_access']['access_count']} time(s)."
        )
    return lines


def _leaked_pairs(split: dict[str, Any]) -> str:
    """What the split's verification counted across partitions, in words."""
    pairs = split["verification"]["pairs_at_or_above_threshold"]
    return f"{pairs:,} cross-partition pair{'s' if pairs != 1 else ''} verified"


def _training_data(stages: Stages) -> list[str]:
    """What curation kept and dropped, from which sources, and the partitions' sizes."""
    curate, split = stages["curate"], stages.get("split")
    sources = ", ".join(source["name"] for source in stages["fetch"]["sources"])
    lines = [
        "",
        "## Training data",
        "",
        f"{curate['records_kept']:,} curated sequences ({listing(curate['labels'])}) from "
        f"{sources}; "
        f"{curate['records_dropped']:,} records dropped with reasons "
        f"({listing(curate['dropped_per_reason'])}).",
    ]
    if split:
        sizes = {name: p["sequences"] for name, p in split["partitions"].items()}
        medians = median_lengths(split)
        lengths = f"; median sequence length {listing(medians)}" if medians else ""
        lines.append(f" Partitions: {listing(sizes)}{lengths}.")
    return lines


def _quantitative_analyses(stages: Stages) -> list[str]:
    """Test metrics of every model, the comparisons and the groups where a model fails."""
    ev = stages.get("evaluate")
    lines = ["", "## Quantitative analyses", ""]
    if ev:
        lines += [metrics_table(ev), ""]
        for comparison in ev["comparisons"]:
            lines.append(f"- {comparison['verdict']}")
        for flag in ev["failure_flags"]:
            lines.append(
                f"- {flag['model']}: {flag['metric']} {flag['value']:.3f} in {flag['grouping']} = "
                f"{flag['group']} (n={flag['n']}) vs {flag['overall']:.3f} overall"
            )
    return lines


def _ethics_and_caveats(stages: Stages, dataset: dict[str, Any]) -> list[str]:
    """The ethics register (Tip 10) and the caveats a reader must know (shortcut floor)."""
    checks = stages.get("explore")
    lines = ["", "## Ethical considerations", ""]
    if dataset["sensitive"]:
        lines.append(
            "**Sensitive data: the model weights and per-sequence predictions must not be "
            "shared outside this project's results folder.** This card and the report leave "
            "out every figure or table showing sequences, weights, filters or per-sequence "
            "values (the report lists them)."
        )
    for entry in dataset["ethics"]:
        lines.append(
            f"- {entry['concern'].strip()} ({entry['status']}) "
            f"{entry.get('resolution', '')}".rstrip()
        )
    if not dataset["ethics"]:
        lines.append("- The dataset file declares no ethics register entries.")
    lines += ["", "## Caveats and recommendations", ""]
    if checks:
        lines.append(
            f"- Shortcut floor: trivial features alone reach AUROC {checks['floor']['auroc']:.3f} "
            f"({checks['floor']['check']}); failed data checks: "
            f"{', '.join(checks['failures']) or 'none'}."
        )
    lines.append(
        "- Performance on sequences far from the training data is lower; see the identity bins."
    )
    return lines
