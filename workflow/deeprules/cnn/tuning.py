"""One round of the search: the hypermodel, the tuners, the trial records; and the refit.

A round (`deeprules.cnn.growth`) runs exactly its share of `budget.trials`
trials in its own search space, in its own Keras Tuner project
(tuner/search/round_<n>/), scored by the Keras AUC (`OBJECTIVE`) on the tune
partition (above `budget.trial_subsample.tune_sequences`, on a sample of it).
Each start of a trial is recorded in the trial's folder (`RUNS_FILE`), so a
trial that a killed job interrupted shows two runs and a finished one is never
run again. A fingerprint of everything that shapes the search is kept in the
tuner directory; when it changes, the old search is discarded rather than reused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Any

import keras
import keras_tuner as kt

from deeprules import encoding
from deeprules.cnn.data import (
    Partition,
    input_pipeline,
    load_partitions,
    spec_classes,
    trial_partitions,
)
from deeprules.cnn.job import device_description
from deeprules.cnn.model import build_model, effective_values
from deeprules.cnn.predict import partition_auroc
from deeprules.cnn.training import OBJECTIVE, training_callbacks
from deeprules.io import read_json, write_json

log = logging.getLogger("deeprules.cnn")

PROJECT = "search"  # folder of the rounds' Keras Tuner projects inside the tuner directory
RUNS_FILE = "deeprules_runs.json"  # per trial folder: every start of the trial and its results


def trial_seed(seed: int, values: dict[str, Any]) -> int:
    """Seed of one trial, from the run seed and the trial's hyperparameters.

    Depending on the values rather than on how many models were built before
    means a trial gets the same initial weights and batch order whether it runs
    first, after a resume, or on another worker.
    """
    text = json.dumps({"seed": seed, **values}, sort_keys=True, default=str)
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) % (2**31 - 1)


class CNNHyperModel(kt.HyperModel):
    """build(hp) = `build_model`; fit(hp, ...) picks the batch size, adds early stopping
    (never before `cnn.min_epochs`) and the trial's learning-rate schedule."""

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(name="deeprules_cnn")
        self.spec = spec
        self.table = encoding.token_table(spec["sequence_type"])
        self.classes = spec_classes(spec)
        self.last_fit: dict[str, Any] = {}

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        if self.spec["deterministic"]:
            keras.utils.set_random_seed(trial_seed(self.spec["seed"], hp.values))
        return self.network(hp)

    def network(self, hp: kt.HyperParameters) -> keras.Model:
        """The compiled network of `hp` at this job's input length and classes."""
        return build_model(
            hp,
            length=self.spec["length"],
            alphabet_size=self.table.shape[1],
            classes=len(self.spec["classes"]),
            space=self.spec["cnn"]["search_space"],
            mask_padding=self.spec["cnn"]["mask_padding"],
            trunk=self.spec["trunk"],
        )

    def fit(
        self,
        hp: kt.HyperParameters,
        model: keras.Model,
        train: Partition,
        tune: Partition,
        callbacks: list | None = None,
        **fit_kwargs: Any,
    ) -> keras.callbacks.History:
        batch = hp.get("batch_size")
        cnn = self.spec["cnn"]
        values = effective_values(hp.values, self.spec["trunk"])
        own = training_callbacks(values, cnn["min_epochs"], cnn["patience"], cnn["max_epochs"])
        started = time.perf_counter()
        history = model.fit(
            input_pipeline(
                train,
                self.table,
                batch,
                shuffle_seed=trial_seed(self.spec["seed"], hp.values),
                reverse_complement=self.spec["reverse_complement"],
            ),
            validation_data=input_pipeline(tune, self.table, batch),
            callbacks=[*(callbacks or []), *own],
            shuffle=False,  # the pipeline shuffles, seeded
            verbose=2,
            **fit_kwargs,
        )
        seconds = time.perf_counter() - started
        epochs = len(history.history["loss"])
        self.last_fit = {
            "history": history.history,
            "initial_epoch": fit_kwargs.get("initial_epoch", 0),
            "epochs_trained": epochs,
            "stopped_early": own[0].stopped_epoch > 0,
            "train_sequences": len(train.ids),
            "tune_sequences": len(tune.ids),
            "sequences_per_second": len(train.ids) * epochs / seconds,
            "train_auroc": partition_auroc(model, train, self.table, batch, self.classes),
            "tune_auroc": partition_auroc(model, tune, self.table, batch, self.classes),
        }
        return history


class _RecordsRuns:
    """Tuner mixin: every start of a trial is written to its folder, and its results at the end.

    A trial that appears with two runs was interrupted (job killed) and rerun;
    trials.tsv reports the count, and the tests use it to prove that a resume
    repeats no finished trial.
    """

    def run_trial(self, trial: kt.engine.trial.Trial, *args: Any, **kwargs: Any) -> Any:
        path = Path(self.get_trial_dir(trial.trial_id)) / RUNS_FILE
        runs = read_json(path)["runs"] if path.exists() else []
        runs.append(
            {
                "tuner_id": self.tuner_id,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "device": device_description()["used"],
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "finished": False,
            }
        )
        write_json(path, {"runs": runs})
        started = time.perf_counter()
        result = super().run_trial(trial, *args, **kwargs)
        runs[-1].update(
            finished=True, seconds=time.perf_counter() - started, **self.hypermodel.last_fit
        )
        write_json(path, {"runs": runs})
        return result


class FloorHyperbandOracle(kt.oracles.HyperbandOracle):
    """Hyperband whose shortest bracket trains at least `floor_epochs` epochs.

    Keras Tuner's Hyperband adds brackets down to 1 epoch; a model judged
    after 1-2 epochs has often not started to learn (Tip 3). Dropping the
    brackets shorter than `cnn.min_epochs` keeps Hyperband's successive
    halving for the rest.
    """

    def __init__(self, floor_epochs: int, **kwargs: Any) -> None:
        self.floor_epochs = floor_epochs
        super().__init__(**kwargs)

    def _get_num_brackets(self) -> int:
        epochs, brackets = self.max_epochs, 0
        while epochs >= self.floor_epochs:
            epochs /= self.factor
            brackets += 1
        return max(brackets, 1)


class HyperbandSearch(_RecordsRuns, kt.Hyperband):
    """Hyperband with a floor on epochs, capped at the round's trials (see `make_tuner`)."""

    def __init__(self, hypermodel: CNNHyperModel, min_epochs: int, **kwargs: Any) -> None:
        oracle_keys = ("objective", "max_epochs", "factor", "hyperband_iterations", "seed")
        oracle = FloorHyperbandOracle(
            min_epochs,
            max_consecutive_failed_trials=kwargs.pop("max_consecutive_failed_trials"),
            **{key: kwargs.pop(key) for key in oracle_keys},
        )
        kt.Tuner.__init__(self, oracle=oracle, hypermodel=hypermodel, **kwargs)


class BayesianSearch(_RecordsRuns, kt.BayesianOptimization):
    """Gaussian-process Bayesian optimisation."""


class RandomSearch(_RecordsRuns, kt.RandomSearch):
    """Random search."""


def hyperband_trials_per_iteration(max_epochs: int, factor: int, min_epochs: int) -> int:
    """Trials in one full Hyperband iteration (all brackets, all rounds)."""
    oracle = FloorHyperbandOracle(
        min_epochs, objective=kt.Objective(OBJECTIVE, "max"), max_epochs=max_epochs, factor=factor
    )
    brackets = oracle._get_num_brackets()
    return sum(oracle._get_size(b, r) for b in range(brackets) for r in range(b + 1))


def make_tuner(spec: dict[str, Any], hypermodel: CNNHyperModel) -> kt.Tuner:
    """The configured tuner of this round (`spec` is a round's spec, see
    `deeprules.cnn.growth`), resuming whatever its project folder holds.

    Every tuner runs exactly the round's `trials` trials. Random search and Bayesian
    optimisation take that as max_trials. Hyperband has no max_trials: here it
    gets enough iterations (ceil(trials / trials per iteration)) and the
    oracle's trial cap is set to `trials`, so the search stops at the budget,
    possibly part-way through a bracket. Each Hyperband round (including a
    continuation that trains a promising model further) counts as one trial,
    as it does in Keras Tuner.
    """
    cnn, trials = spec["cnn"], spec["trials"]
    common = {
        "hypermodel": hypermodel,
        "objective": kt.Objective(OBJECTIVE, direction="max"),
        # each round draws fresh models: with one seed, a round in the same space would
        # repeat an earlier round's trials exactly
        "seed": spec["seed"] + spec["round"] - 1,
        "directory": str(Path(spec["tuner_dir"]) / PROJECT),
        "project_name": round_project(spec["round"]),
        "overwrite": False,
        "max_consecutive_failed_trials": 3,
    }
    if cnn["tuner"] == "bayesian":
        return BayesianSearch(max_trials=trials, **common)
    if cnn["tuner"] == "random":
        return RandomSearch(max_trials=trials, **common)
    per_iteration = hyperband_trials_per_iteration(
        cnn["max_epochs"], cnn["hyperband_factor"], cnn["min_epochs"]
    )
    tuner = HyperbandSearch(
        min_epochs=cnn["min_epochs"],
        max_epochs=cnn["max_epochs"],
        factor=cnn["hyperband_factor"],
        hyperband_iterations=math.ceil(trials / per_iteration),
        **common,
    )
    oracle = getattr(tuner.oracle, "_oracle", tuner.oracle)  # workers wrap it in a gRPC client
    oracle.max_trials = trials
    return tuner


def round_project(number: int) -> str:
    """Keras Tuner project folder of round `number` inside tuner/search/."""
    return f"round_{number}"


def search(spec: dict[str, Any]) -> None:
    """Run (or resume) one round's search in this process: single-process mode or a worker."""
    hypermodel = CNNHyperModel(spec)
    train, tune = trial_partitions(*load_partitions(spec), spec)
    tuner = make_tuner(spec, hypermodel)
    epochs = spec["cnn"]["max_epochs"]  # Hyperband sets its own per trial
    tuner.search(train=train, tune=tune, epochs=epochs)


def fingerprint(spec: dict[str, Any]) -> dict[str, Any]:
    """Everything that shapes the search; a different fingerprint means a fresh search."""
    keep = (
        "seed",
        "deterministic",
        "trials",
        "trial_subsample",
        "classes",
        "length",
        "reverse_complement",
    )
    # Where and how wide it runs does not define the search: a resume on other resources
    # keeps the finished trials (bit-for-bit equality needs the same hardware anyway).
    # Nor does the input path (in memory or streamed): both give the same batches.
    where_it_runs = ("threads", "gpus", "worker_launcher", "oracle_host", "in_memory_max_mb")
    cnn = {key: value for key, value in spec["cnn"].items() if key not in where_it_runs}
    stamp = {**{key: spec[key] for key in keep}, "cnn": cnn, "data_sha256": spec["data_sha256"]}
    if spec["trunk"] is not None:  # only then: searches without a trunk keep their stamp
        stamp["trunk"] = {key: value for key, value in spec["trunk"].items() if key != "path"}
    return stamp


def reuse_or_reset(spec: dict[str, Any]) -> bool:
    """Keep a previous search only if it was for exactly this job; True when resuming."""
    tuner_dir = Path(spec["tuner_dir"])
    stamp = tuner_dir / "fingerprint.json"
    current = json.loads(json.dumps(fingerprint(spec)))
    if stamp.exists() and (tuner_dir / PROJECT).exists():
        previous = {k: v for k, v in read_json(stamp).items() if k != "schema_version"}
        if previous == current:
            return True
        log.warning("settings or data changed since the last search; starting a new search")
    shutil.rmtree(tuner_dir / PROJECT, ignore_errors=True)
    write_json(stamp, current)
    return False


def read_trials(tuner_dir: str | Path, number: int | None = None) -> list[dict[str, Any]]:
    """Every trial Keras Tuner recorded (of every round, or of round `number`), in order.

    Keras Tuner numbers trials from 0 in each project, so a trial's id here is
    "<round>.<Keras Tuner id>" (e.g. "2.07"), unique over the whole search; the
    id it continues (Hyperband) gets the same prefix. `runs` are this module's
    records of every start of the trial.
    """
    trials = []
    rounds = [number] if number else _round_numbers(tuner_dir)
    for index in rounds:
        project = Path(tuner_dir) / PROJECT / round_project(index)
        for path in sorted(project.glob("trial_*/trial.json")):
            trial = read_json(path)
            runs_file = path.parent / RUNS_FILE
            trial["runs"] = read_json(runs_file)["runs"] if runs_file.exists() else []
            trial["round"], trial["round_trial_id"] = index, trial["trial_id"]
            trial["trial_id"] = f"{index}.{trial['trial_id']}"
            trials.append(trial)
    return trials


def _round_numbers(tuner_dir: str | Path) -> list[int]:
    folders = (Path(tuner_dir) / PROJECT).glob("round_*")
    return sorted(int(folder.name.rsplit("_", 1)[1]) for folder in folders if folder.is_dir())


def best_trial(trials: list[dict[str, Any]]) -> dict[str, Any]:
    """Highest tune AUC among completed trials; on a tie the earlier trial."""
    completed = [t for t in trials if t["status"] == "COMPLETED" and t.get("score") is not None]
    if not completed:
        raise RuntimeError("no tuning trial completed; see the log for the trials' errors")
    return max(completed, key=lambda t: (t["score"], -t["round"], -int(t["round_trial_id"])))


def refit(
    spec: dict[str, Any], values: dict[str, Any], train: Partition, tune: Partition
) -> tuple[keras.Model, dict[str, Any]]:
    """Train the chosen hyperparameters from scratch on train, early-stopped on tune.

    Refitting gives a Hyperband winner, which may have seen only a few epochs,
    its full training. `values` are the hyperparameters the chosen model was
    first built with (the start of its Hyperband chain, tuner keys included):
    the refit starts from the same seed, so the same initial weights and batch
    order. A model of an interaction can sit at chance for several epochs;
    from another start it may not begin to learn before early stopping ends
    it, and the search's best trial would be lost. `spec` is the spec of the
    round the trial came from (its `max_epochs` may have grown).
    """
    hypermodel = CNNHyperModel(spec)
    hp = kt.HyperParameters()
    hp.values = dict(values)
    if spec["deterministic"]:
        keras.utils.set_random_seed(trial_seed(spec["seed"], hp.values))
    model = hypermodel.network(hp)
    started = time.perf_counter()
    hypermodel.fit(hp, model, train, tune, epochs=spec["cnn"]["max_epochs"])
    return model, {**hypermodel.last_fit, "seconds": time.perf_counter() - started}


def chain_start(trials: list[dict[str, Any]], chosen: dict[str, Any]) -> dict[str, Any]:
    """The trial a Hyperband continuation chain began with (the chosen trial itself when
    it continues nothing): its values are what the chosen model was built with."""
    by_id = {trial["trial_id"]: trial for trial in trials}
    trial = chosen
    while (earlier := trial["hyperparameters"]["values"].get("tuner/trial_id")) is not None:
        trial = by_id[f"{trial['round']}.{earlier}"]
    return trial
