"""The DOME summary (Walsh et al. 2021): Data, Optimization, Model, Evaluation, one
function per section, filled from the stage summaries."""

from __future__ import annotations

from typing import Any

from deeprules.report.facts import listing, metrics_table
from deeprules.report.split_shift import balance_cost_table

Stages = dict[str, Any]


def dome(stages: Stages, dataset: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The four DOME sections; a stage that did not run leaves its entries empty."""
    return {
        "data": _data(stages, dataset),
        "optimization": _optimization(stages),
        "model": _model(stages, dataset),
        "evaluation": _evaluation(stages),
    }


def _data(stages: Stages, dataset: dict[str, Any]) -> dict[str, Any]:
    curate, split = stages["curate"], stages.get("split")
    return {
        "provenance": ", ".join(
            f"{s['name']} ({s['kind']}, sha256 {s['sha256'][:12]}...)"
            for s in stages["fetch"]["sources"]
        ),
        "dataset_size": f"{curate['records_kept']:,} sequences: {listing(curate['labels'])}",
        "redundancy_and_split": (
            f"{split['method']} split at {split['threshold']} identity, "
            f"{split['verification']['pairs_at_or_above_threshold']} "
            "cross-partition pairs at or above it"
            if split
            else "not split"
        ),
        "what_covariate_balance_costs": balance_cost_table(stages.get("split_costs") or {}),
        "availability": "sensitive: not to be shared"
        if dataset["sensitive"]
        else "as the sources' licences allow",
    }


def _optimization(stages: Stages) -> dict[str, Any]:
    base, cnn = stages.get("baselines"), stages.get("cnn")
    return {
        "algorithm": f"Keras Tuner {cnn['tuning']['tuner']} for the CNN; Optuna for baselines"
        if cnn
        else "",
        "meta_predictions": "no",
        "encoding": f"one-hot, length {cnn['encoding']['length']}" if cnn else "",
        "parameters": listing(cnn["hyperparameters"]) if cnn else "",
        "features": f"k-mer counts of sizes {', '.join(map(str, base['features']['kmer_sizes']))}"
        + ("; physico-chemical descriptors" if base["features"]["descriptors"] else "")
        if base
        else "",
        "fitting": "early stopping on tune; test never used for fitting or thresholds",
        "regularization": "dropout and L2 in the search space; early stopping",
        "configuration_availability": "config/config.yaml and config/datasets/*.yaml",
    }


def _model(stages: Stages, dataset: dict[str, Any]) -> dict[str, Any]:
    cnn = stages.get("cnn")
    return {
        "interpretability": "baseline importances; CNN in-silico mutagenesis, "
        "integrated gradients, filter logos",
        "output": "class probabilities",
        "execution_time": (
            f"CNN search {cnn['tuning']['seconds']:.0f} s on {cnn['device']['used']}" if cnn else ""
        ),
        "availability": "weights in results/ only"
        if dataset["sensitive"]
        else "model.keras and joblib pipelines in results/",
    }


def _evaluation(stages: Stages) -> dict[str, Any]:
    ev = stages.get("evaluate")
    return {
        "method": "independent homology-separated test partition, evaluated once" if ev else "",
        "performance_measures": metrics_table(ev) if ev else "",
        "comparison": " ".join(c["verdict"] for c in ev["comparisons"]) if ev else "",
        "confidence": f"{ev['bootstrap']['ci_level']:.0%} stratified bootstrap, "
        f"{ev['bootstrap']['resamples']} resamples"
        if ev
        else "",
        "availability_of_evaluation": "predictions.tsv and metrics.json in results/",
    }
