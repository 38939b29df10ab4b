"""Everything the baselines stage writes: models, tables, summary and figures.

Every file goes to the path the rule declares for it (`job.outputs`). Models
and their parameters are one file per model under `models/` and `params/`;
predictions follow the shared layout of `deeprules.contracts`, and summary.tsv
says each model's role (baseline or control), so later stages never guess it
from a name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import Patch

from deeprules.baselines.controls import CONTROLS
from deeprules.baselines.fitting import Fitted
from deeprules.baselines.scaling import NO_APPROXIMATION, Affordable
from deeprules.baselines.scoring import METRICS
from deeprules.baselines.settings import BaselineSettings
from deeprules.contracts import Classes, prediction_frame, write_predictions
from deeprules.features import SequenceFeatures
from deeprules.figures import save_figure
from deeprules.io import atomic_write, write_json, write_tsv
from deeprules.sampling import trial_subsample_record

# The rule's named outputs that are one file each, and their names in the stage folder.
OUTPUT_FILES = {
    "trials": "trials.tsv",
    "predictions": "predictions.tsv",
    "summary_table": "summary.tsv",
    "summary": "summary.json",
    "inflation": "inflation.json",
    "summary_figure": "summary.png",
    "inflation_figure": "inflation.png",
}


def output_paths(out_dir: Path, families: list[str]) -> dict[str, Any]:
    """The outputs the rule declares, for callers outside Snakemake (tests, benchmarks)."""
    models = [*families, *CONTROLS]
    return {
        "models": [out_dir / "models" / f"{name}.joblib" for name in models],
        "params": [out_dir / "params" / f"{name}.json" for name in models],
        **{key: out_dir / name for key, name in OUTPUT_FILES.items()},
    }


@dataclass(frozen=True)
class Results:
    """What the stage found, ready to be written."""

    fitted: list[Fitted]
    trial_rows: list[dict[str, Any]]
    inflation: dict[str, Any]
    warnings: list[str]
    features: SequenceFeatures
    forms: Affordable  # the families' forms decided for this training set


def write_outputs(
    results: Results,
    train: pd.DataFrame,
    tune: pd.DataFrame,
    classes: Classes,
    settings: BaselineSettings,
    outputs: dict[str, Any],
) -> None:
    """Write every output the rule declares."""
    write_models(results.fitted, outputs)
    write_tsv(outputs["trials"], pd.DataFrame(results.trial_rows))
    write_predictions(
        outputs["predictions"], prediction_frames(results.fitted, train, tune, classes)
    )
    table = summary_table(results.fitted, settings.primary_metric)
    write_tsv(outputs["summary_table"], table)
    write_json(outputs["inflation"], results.inflation)
    plot_summary(table, settings.primary_metric, outputs["summary_figure"])
    plot_inflation(results.inflation, outputs["inflation_figure"])
    summary = summary_json(
        results, table, classes, settings, {"train": len(train), "tune": len(tune)}
    )
    write_json(outputs["summary"], summary)


def write_models(fitted: list[Fitted], outputs: dict[str, Any]) -> None:
    """Each model's pipeline (sequences in) and its parameters, at the rule's paths."""
    models = {Path(path).stem: path for path in outputs["models"]}
    params = {Path(path).stem: path for path in outputs["params"]}
    for model in fitted:
        if model.name not in models or model.name not in params:
            raise ValueError(f"the rule declares no model or params file for {model.name}")
        with atomic_write(models[model.name], "wb") as handle:
            joblib.dump(model.pipeline, handle)
        write_json(
            params[model.name],
            {"model": model.name, "family": model.family, "params": model.params},
        )


def prediction_frames(
    fitted: list[Fitted], train: pd.DataFrame, tune: pd.DataFrame, classes: Classes
) -> list[pd.DataFrame]:
    """Every model on train and tune in the shared predictions layout.

    `predicted` is the class the model itself calls (`predict`), the one its MCC
    and F1 in summary.tsv are computed from, not re-derived from the scores.
    """
    frames = []
    for model in fitted:
        for partition, table in (("train", train), ("tune", tune)):
            made = model.predictions[partition]
            frame = prediction_frame(
                table["id"].tolist(),
                partition,
                model.name,
                model.role,
                table["label"].tolist(),
                made.scores,
                classes,
            )
            frame["predicted"] = made.predicted
            frames.append(frame)
    return frames


def summary_table(fitted: list[Fitted], primary: str) -> pd.DataFrame:
    """One row per model, best tune score (primary metric, then AUROC, then name) first."""
    rows = [
        {
            "model": f.name,
            "kind": f.kind,
            "role": f.role,
            "family": f.family,
            **{m: round(f.tune[m], 6) for m in METRICS},
            f"train_{primary}": round(f.train[primary], 6),
            "fit_seconds": round(f.fit_seconds, 3),
            "approximation": f.approximation,
            "note": f.note,
        }
        for f in fitted
    ]
    table = pd.DataFrame(rows).sort_values(
        [primary, "auroc", "model"], ascending=[False, False, True]
    )
    table.insert(0, "rank", range(1, len(table) + 1))
    return table


def summary_json(
    results: Results,
    table: pd.DataFrame,
    classes: Classes,
    settings: BaselineSettings,
    sizes: dict[str, int],
) -> dict[str, Any]:
    """The run in one file: classes, features, budget, best models, controls, warnings."""
    fitted = {f.name: f for f in results.fitted}
    tuned = table[table["kind"] == "tuned"].iloc[0]["model"]
    features = results.features
    return {
        "task": "binary" if classes.binary else "multiclass",
        **classes.to_json(),
        "primary_metric": settings.primary_metric,
        "partitions": sizes,
        "features": {
            "columns": len(features.get_feature_names_out()),
            "kmer_sizes": list(features.kmer_sizes),
            "descriptors": bool(features.descriptors),
            "table": "dense" if features.dense_ else "sparse (CSR)",
            "kmer_max_columns": features.max_kmer_columns,
            "hashed_kmers": features.kmers_.hashing_,
        },
        "approximations": approximations(results, settings),
        "trials_per_family": settings.trials,
        "trial_subsample": trial_subsample_record(
            sizes["train"], sizes["tune"], settings.trial_subsample, settings.seed
        ),
        "sampler": settings.sampler,
        "seed": settings.seed,
        "class_weight": settings.fitting.class_weight or "none",
        "best_model": table.iloc[0]["model"],
        "best_tuned": {"model": tuned, "params": fitted[tuned].params},
        "models": {
            f.name: {
                "kind": f.kind,
                "role": f.role,
                "family": f.family,
                "tune": f.tune,
                "train": f.train,
            }
            for f in results.fitted
        },
        "random_split": results.inflation,
        "shuffled_control_aurocs": fitted["control_shuffled"].repeat_aurocs,
        "warnings": results.warnings,
        "model_input": "list of sequence strings; predict_proba columns follow model.classes_",
    }


def approximations(results: Results, settings: BaselineSettings) -> dict[str, Any]:
    """The size thresholds, this training set's size and kernel work, and every model's
    form ('none' when exact): what the report names wherever an approximation was used."""
    fitted, forms = results.fitted, results.forms
    return {
        "above_sequences": settings.large_data.above_sequences,
        "train_sequences": forms.train_sequences,
        "kernel_map_above": settings.large_data.kernel_map_above,
        "kernel_work": forms.kernel_work,
        "models": {f.name: f.approximation for f in fitted},
        "used": {f.name: f.approximation for f in fitted if f.approximation != NO_APPROXIMATION},
    }


# How the figures name a metric (one name per metric, as the report's tables do).
METRIC_LABELS = {
    "auroc": "AUROC",
    "auprc": "AUPRC",
    "mcc": "MCC",
    "macro_f1": "macro F1",
    "balanced_accuracy": "balanced accuracy",
}


METRIC_COLOURS = ("#0072B2", "#E69F00")


def shown_metrics(primary: str) -> list[str]:
    """The primary metric, then AUROC unless the primary metric already is AUROC."""
    return list(dict.fromkeys([primary, "auroc"]))


def plot_summary(table: pd.DataFrame, primary: str, path: Path) -> None:
    """Every model's tune score (primary metric, AUROC beside it), best on top; controls
    hatched and marked, so a control is never read as a baseline."""
    ordered = table.iloc[::-1]
    positions = np.arange(len(ordered))
    metrics = shown_metrics(primary)
    height = 0.8 / len(metrics)
    controls = (ordered["role"] == "control").to_numpy()
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(ordered) + 1.5))
    for index, (name, colour) in enumerate(zip(metrics, METRIC_COLOURS, strict=False)):
        bars = ax.barh(
            positions - 0.4 + (index + 0.5) * height,
            ordered[name],
            height=height,
            label=METRIC_LABELS.get(name, name),
            color=colour,
        )
        for bar, control in zip(bars, controls, strict=True):
            if control:
                bar.set_hatch("//")
                bar.set_edgecolor("white")
    labels = [f"{m} (control)" if c else m for m, c in zip(ordered["model"], controls, strict=True)]
    ax.set_yticks(positions, labels)
    ax.axvline(0.5, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("score on the tune partition")
    handles = [
        Patch(color=colour, label=METRIC_LABELS.get(name, name))
        for name, colour in zip(metrics, METRIC_COLOURS, strict=False)
    ]
    handles.append(Patch(facecolor="#8c8c8c", edgecolor="white", hatch="//", label="control"))
    ax.legend(handles=handles, loc="lower right")
    fig.tight_layout()
    save_figure(fig, path, dpi=120, tight=False)


def plot_inflation(inflation: dict[str, Any], path: Path) -> None:
    """The best family's tune scores on the homology split next to a random split: every
    metric once, the primary metric first."""
    primary = inflation["primary_metric"]
    metrics = list(dict.fromkeys([primary, *inflation["homology_split"]]))
    positions = np.arange(len(metrics))
    fig, ax = plt.subplots(figsize=(1.3 * len(metrics) + 1.5, 3.5))
    for offset, split, label in (
        (-0.2, "homology_split", "homology split"),
        (0.2, "random_split", "random split"),
    ):
        values = [inflation[split][m] for m in metrics]
        bars = ax.bar(positions + offset, values, width=0.4, label=label)
        ax.bar_label(bars, fmt="%.3f", fontsize=8)
    ax.set_xticks(positions, [METRIC_LABELS.get(m, m) for m in metrics])
    ax.set_ylim(min(0.0, *ax.get_ylim()), 1.1)
    ax.set_ylabel(f"tune score, {inflation['family']}")
    ax.set_title("What a random split would have told you", fontsize=10)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2, frameon=False)
    fig.tight_layout()
    save_figure(fig, path, dpi=120, tight=False)
