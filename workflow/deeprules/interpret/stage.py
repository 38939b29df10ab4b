"""Rule interpret: explain every tuned baseline and the CNN on the tune partition.

Writes (by the rule's output names) importance / importance_plot (baseline
features), attributions / attributions_plot (CNN ISM and integrated gradients),
filters / filter_logos (first-layer filter motifs) and summary.
"""

from __future__ import annotations

from typing import Any

from deeprules.contracts import read_partition
from deeprules.figures import save_figure
from deeprules.interpret.attributions import explain_attributions
from deeprules.interpret.baselines import explain_baselines, importance_figure, importance_table
from deeprules.interpret.filters import explain_filters
from deeprules.interpret.network import load_cnn
from deeprules.io import write_json, write_tsv
from deeprules.rule import Job


def run(job: Job) -> None:
    settings, seed, outputs = job.settings["interpret"], job.settings["seed"], job.outputs
    tune = read_partition(job.inputs["tune"], "tune")
    tables, controls = explain_baselines(
        job.inputs["baselines_summary"], job.inputs["baseline_models"], tune, settings, seed
    )
    write_tsv(outputs["importance"], importance_table(tables))
    save_figure(importance_figure(tables, settings["top_features"]), outputs["importance_plot"])
    summary: dict[str, Any] = {
        "dataset": job.dataset["name"],
        "partition": "tune",
        "baselines": {
            model: table.head(settings["top_features"])[
                ["feature", "importance", "method", "favours"]
            ].to_dict("records")
            for model, table in tables.items()
        },
        "controls_not_explained": controls,
        "permutation_importance": permutation_samples(tables, len(tune), settings),
    }
    cnn = load_cnn(job.inputs["cnn_model"], job.inputs["cnn_summary"], job.dataset["sequence_type"])
    summary["cnn"] = {
        **explain_attributions(
            cnn, tune, settings, seed, outputs["attributions"], outputs["attributions_plot"]
        ),
        **explain_filters(cnn, tune, settings, seed, outputs["filters"], outputs["filter_logos"]),
    }
    write_json(outputs["summary"], summary)


def permutation_samples(
    tables: dict[str, Any], tune_sequences: int, settings: dict[str, Any]
) -> dict[str, Any]:
    """What bounded each permutation importance: the tune sequences it predicted on (of
    how many), the features and shuffles, and per model how it was computed."""
    return {
        "tune_sequences": tune_sequences,
        "sequences_used": min(tune_sequences, settings["permutation_max_sequences"]),
        "max_features": settings["permutation_max_features"],
        "repeats": settings["permutation_repeats"],
        "incremental_above": settings["permutation_incremental_above"],
        "models": {
            model: table["method"].iloc[0]
            for model, table in tables.items()
            if len(table) and table["method"].iloc[0].startswith("permutation")
        },
    }
