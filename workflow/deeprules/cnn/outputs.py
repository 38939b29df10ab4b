"""What the stage writes: the refitted model, its predictions, every trial, curves, summary.

summary.json is also the model's card for other stages: its `classes` and
`encoding` (sequence type, input length, padding mask) are all that
`deeprules.cnn.predict_proba` needs to score new sequences.
"""

from __future__ import annotations

import logging
import os
import platform
from pathlib import Path
from typing import Any

import keras
import keras_tuner as kt
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import tensorflow as tf

from deeprules import encoding
from deeprules.cnn.data import Partition, load_partitions, spec_classes
from deeprules.cnn.growth import read_rounds, round_spec
from deeprules.cnn.job import device_description
from deeprules.cnn.model import effective_values, receptive_field
from deeprules.cnn.predict import partition_probabilities
from deeprules.cnn.training import OBJECTIVE
from deeprules.cnn.tuning import best_trial, chain_start, read_trials, refit
from deeprules.contracts import ROLE_CNN, ROLE_SCRATCH, prediction_frame, write_predictions
from deeprules.figures import save_figure
from deeprules.io import write_json, write_tsv
from deeprules.sampling import trial_subsample_record

log = logging.getLogger("deeprules.cnn")


def write_outputs(spec: dict[str, Any], search_seconds: float, resumed: bool) -> None:
    """Choose the best trial, refit it and write every output of the rule."""
    outputs = {key: Path(value) for key, value in spec["outputs"].items()}
    trials = read_trials(spec["tuner_dir"])
    table = trials_table(trials, spec["length"], spec["trunk"])
    chosen = best_trial(trials)
    rounds = read_rounds(spec)
    sampled = chosen["hyperparameters"]["values"]
    values = {
        k: v
        for k, v in effective_values(sampled, spec["trunk"]).items()
        if not k.startswith("tuner/")
    }
    log.info(
        "best trial %s (tune AUC %.4f): %s; refitting", chosen["trial_id"], chosen["score"], values
    )
    train, tune = load_partitions(spec)
    start = chain_start(trials, chosen)["hyperparameters"]["values"]
    model, final = refit(round_spec(spec, rounds[chosen["round"] - 1]), start, train, tune)
    predictions = predictions_frames(model, spec, {"train": train, "tune": tune})

    save_model(model, outputs["model"])
    write_json(
        outputs["hyperparameters"],
        {
            "trial_id": chosen["trial_id"],
            "round": chosen["round"],
            "tune_auc": chosen["score"],
            "hyperparameters": values,
        },
    )
    write_predictions(outputs["predictions"], predictions)
    write_tsv(outputs["trials"], table)
    plot_training_curves(trials, final, outputs["curves"])
    run = {
        "search_seconds": search_seconds,
        "resumed": resumed,
        "rounds": rounds,
        "train_sequences": len(train.ids),
        "tune_sequences": len(tune.ids),
    }
    card = summary(spec, trials, chosen, values, final, train, tune, run)
    if spec["trunk"] is not None:  # only then: other datasets' summaries stay as they were
        card["pretrained"] = pretrained_summary(spec["trunk"], trials, values)
    write_json(outputs["summary"], card)
    log.info(
        "final model: train AUROC %.4f, tune AUROC %.4f", final["train_auroc"], final["tune_auroc"]
    )


def trials_table(
    trials: list[dict[str, Any]], length: int, trunk: dict[str, Any] | None = None
) -> pd.DataFrame:
    """One row per trial: round, hyperparameters (those the network had: a pre-trained
    one has the trunk's convolutions), receptive field (positions one feature sees),
    best epoch, tune/train score, training and tune sequences, seconds, runs."""
    rows = []
    for trial in trials:
        values = effective_values(trial["hyperparameters"]["values"], trunk)
        continues = values.get("tuner/trial_id")
        finished = [run for run in trial["runs"] if run["finished"]]
        last = finished[-1] if finished else {}
        best_step = trial.get("best_step")
        rows.append(
            {
                "trial_id": trial["trial_id"],
                "round": trial["round"],
                "status": trial["status"],
                "tune_auc": trial.get("score"),
                "best_epoch": None if best_step is None else int(best_step) + 1,
                "tune_auroc": last.get("tune_auroc"),
                "train_auroc": last.get("train_auroc"),
                "epochs_trained": last.get("epochs_trained"),
                "train_sequences": last.get("train_sequences"),
                "tune_sequences": last.get("tune_sequences"),
                "seconds": last.get("seconds"),
                "runs": len(trial["runs"]),
                "worker": last.get("tuner_id"),
                "device": last.get("device"),
                "continues_trial": None if continues is None else f"{trial['round']}.{continues}",
                "stopped_early": last.get("stopped_early"),
                "receptive_field": receptive_field(values, length),
                **{name: value for name, value in values.items() if not name.startswith("tuner/")},
                **{
                    name.replace("tuner/", "hyperband_"): value
                    for name, value in values.items()
                    if name in ("tuner/bracket", "tuner/round", "tuner/epochs")
                },
            }
        )
    return pd.DataFrame(rows)


def predictions_frames(
    model: keras.Model, spec: dict[str, Any], parts: dict[str, Partition]
) -> list[pd.DataFrame]:
    """The refitted model's class probabilities on train and tune, in the shared layout."""
    classes = spec_classes(spec)
    table = encoding.token_table(spec["sequence_type"])
    return [
        prediction_frame(
            part.ids,
            name,
            spec["model"],
            ROLE_CNN if spec["model"] == "cnn" else ROLE_SCRATCH,
            part.labels,
            partition_probabilities(model, part, table, batch=256),
            classes,
        )
        for name, part in parts.items()
    ]


def plot_training_curves(trials: list[dict[str, Any]], final: dict[str, Any], path: Path) -> None:
    """Left: tune AUC per epoch of every trial. Right: the refit's train and tune curves."""
    figure, (search_axis, refit_axis) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for trial in trials:
        finished = [run for run in trial["runs"] if run["finished"]]
        if finished:
            curve = finished[-1]["history"][OBJECTIVE]
            start = finished[-1]["initial_epoch"]  # Hyperband continues earlier trials
            epochs = np.arange(start + 1, start + len(curve) + 1)
            search_axis.plot(epochs, curve, color="0.5", lw=0.8, marker=".", ms=3)
    search_axis.set(xlabel="epoch", ylabel="tune AUC", title=f"Search: {len(trials)} trials")
    history = final["history"]
    epochs = np.arange(1, len(history["loss"]) + 1)
    refit_axis.plot(epochs, history["auc"], label="train AUC (running, with dropout)")
    refit_axis.plot(epochs, history[OBJECTIVE], label="tune AUC")
    best = int(np.argmax(history[OBJECTIVE])) + 1
    refit_axis.axvline(best, color="k", ls="--", lw=0.8, label=f"kept: epoch {best}")
    refit_axis.set(xlabel="epoch", ylabel="AUC", title="Refit of the best trial")
    refit_axis.legend(loc="lower right", fontsize=8)
    save_figure(figure, path, tight=False)  # constrained layout already fits the panels


def pretrained_summary(
    trunk: dict[str, Any], trials: list[dict[str, Any]], values: dict[str, Any]
) -> dict[str, Any]:
    """What the search did with the pre-trained trunk (Tip 5): how many trials tried each
    choice, the best tune AUC of each, and what the chosen model uses."""
    choices: dict[str, dict[str, Any]] = {}
    for trial in trials:
        choice = trial["hyperparameters"]["values"]["pretrained"]
        entry = choices.setdefault(choice, {"trials": 0, "best_tune_auc": None})
        entry["trials"] += 1
        if trial["status"] == "COMPLETED" and trial.get("score") is not None:
            entry["best_tune_auc"] = max(entry["best_tune_auc"] or 0.0, trial["score"])
    return {
        "choice": values["pretrained"],
        "choices": trunk["choices"],
        "trials_per_choice": choices,
        "trunk_sha256": trunk["sha256"],
        "trunk_architecture": trunk["values"],
        "finetune_learning_rate_factor": trunk["finetune_learning_rate_factor"],
    }


def save_model(model: keras.Model, path: Path) -> None:
    """model.keras written beside its final name, then renamed (Keras needs the suffix)."""
    temporary = path.with_name(f".{path.stem}.partial.keras")
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(temporary)
    os.replace(temporary, path)


def summary(
    spec: dict[str, Any],
    trials: list[dict[str, Any]],
    chosen: dict[str, Any],
    values: dict[str, Any],
    final: dict[str, Any],
    train: Partition,
    tune: Partition,
    run: dict[str, Any],
) -> dict[str, Any]:
    """summary.json: what was searched, what was kept, how to score with it, where it ran.
    `run` holds the search's wall time (`search_seconds`), whether it `resumed` and the
    `rounds` of the search (`deeprules.cnn.growth`)."""
    return {
        "dataset": spec["dataset"],
        "model": spec["model"],
        **spec_classes(spec).to_json(),
        "encoding": _encoding(spec, train, tune),
        "input_pipeline": _input_pipeline(spec["input"]),
        "tuning": _tuning(spec, trials, run),
        "search": {
            "growth": spec["cnn"]["growth"],
            "rounds": [_round(plan) for plan in run["rounds"]],
            "learning_check": spec["learning_check"],
        },
        "best_trial": {
            "trial_id": chosen["trial_id"],
            "round": chosen["round"],
            "tune_auc": chosen["score"],
        },
        "hyperparameters": values,
        "receptive_field": _receptive_field(values, spec["length"]),
        "final_model": _final_model(final),
        "reproducibility": {
            "seed": spec["seed"],
            "deterministic": spec["deterministic"],
            "op_determinism": spec["deterministic"],
            "pythonhashseed": os.environ.get("PYTHONHASHSEED"),
            "mixed_precision": keras.mixed_precision.global_policy().name,
        },
        "device": device_description(),
        "versions": {
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "keras_tuner": kt.__version__,
            "python": platform.python_version(),
        },
    }


def _encoding(spec: dict[str, Any], train: Partition, tune: Partition) -> dict[str, Any]:
    """How sequences become network input: what predict_proba repeats on new sequences."""
    mask_padding = spec["cnn"]["mask_padding"]
    return {
        "sequence_type": spec["sequence_type"],
        "alphabet": encoding.ALPHABETS[spec["sequence_type"]],
        "length": spec["length"],
        "length_source": spec["length_source"],
        "truncated": {"train": train.truncated, "tune": tune.truncated},
        "padding": "end, masked (no length signal)" if mask_padding else "end, unmasked",
        "mask_padding": mask_padding,
        "reverse_complement_augmentation": spec["reverse_complement"],
    }


def _input_pipeline(plan: dict[str, Any]) -> dict[str, Any]:
    """How train and tune reached the network: held in memory, or streamed from token
    files (cnn/tuner/encoded/, removed once the outputs are written)."""
    keys = ("streamed", "path", "one_hot_mb", "tokens_mb", "in_memory_max_mb")
    return {
        **{key: plan[key] for key in keys},
        "files": f"{plan['folder']} (removed when the stage finished)"
        if plan["streamed"]
        else None,
        "meaning": "one_hot_mb: train + tune as float32 one-hot (positions x alphabet x 4 "
        "bytes); above in_memory_max_mb the tokens (1 byte per position) are written once to "
        "memory-mapped files and each batch reads its rows; both paths give the same batches",
    }


def _tuning(
    spec: dict[str, Any], trials: list[dict[str, Any]], run: dict[str, Any]
) -> dict[str, Any]:
    cnn = spec["cnn"]
    return {
        "tuner": cnn["tuner"],
        "objective": "tune AUC (Keras, 1000 thresholds; macro one-vs-rest for 3+ classes)",
        "trials_budget": spec["trials"],
        "trials": len(trials),
        "trial_subsample": trial_subsample_record(
            run["train_sequences"], run["tune_sequences"], spec["trial_subsample"], spec["seed"]
        ),
        "statuses": pd.Series([t["status"] for t in trials]).value_counts().to_dict(),
        "trials_rerun_after_interruption": sum(len(t["runs"]) > 1 for t in trials),
        "resumed": run["resumed"],
        "workers": cnn["workers"],
        "max_epochs": cnn["max_epochs"],
        "min_epochs": cnn["min_epochs"],
        "epochs_per_round": [[r["min_epochs"], r["max_epochs"]] for r in run["rounds"]],
        "patience": cnn["patience"],
        "hyperband_factor": cnn["hyperband_factor"] if cnn["tuner"] == "hyperband" else None,
        "devices": sorted({r["device"] for t in trials for r in t["runs"]}),
        "seconds": run["search_seconds"],
    }


def _round(plan: dict[str, Any]) -> dict[str, Any]:
    """One round as summary.json shows it: what was searched, why, and how it ended."""
    keys = ("round", "trials", "max_epochs", "min_epochs", "best_trial_id", "best_tune_auroc")
    return {
        **{key: plan.get(key) for key in keys},
        "reasons": plan["reasons"],
        "space": plan["space"],
        "widened": plan["widened"],
        "outcome": plan.get("outcome", "last round"),
    }


def _receptive_field(values: dict[str, Any], length: int) -> dict[str, Any]:
    """The chosen model's receptive field against the input length (Tip 5)."""
    field = receptive_field(values, length)
    return {
        "positions": field,
        "input_length": length,
        "fraction_of_input": field / length,
        "meaning": "input positions one feature sees before the global max over positions; "
        "a rule (e.g. two motifs and their spacing) must fit in this window",
    }


def _final_model(final: dict[str, Any]) -> dict[str, Any]:
    return {
        "how": "best trial's hyperparameters refitted from scratch on train from the same "
        "start (initial weights and batch order) as the chosen model's first trial, for up to "
        "its round's max_epochs, "
        "early-stopped on tune AUC, weights of the best epoch kept",
        "epochs_trained": final["epochs_trained"],
        "best_epoch": int(np.argmax(final["history"][OBJECTIVE])) + 1,
        "train_auroc": final["train_auroc"],
        "tune_auroc": final["tune_auroc"],
        "seconds": final["seconds"],
        "train_sequences": final["train_sequences"],
        "train_sequences_per_second": final["sequences_per_second"],
        "load_with": "deeprules.cnn.load_model(path), or deeprules.cnn.predict_proba(path, "
        "sequences, summary) with this summary (the model uses the PaddingMask layer)",
    }
