"""The search in rounds: start in the configured (small) space, widen it where the evidence says.

Tip 3 says start with a small network and grow it as needed; Tip 6 says tune
systematically. A fixed small space can give a false "deep learning does not
help" (a CNN that needs 64 filters or a wide receptive field is never tried);
a big space from the start wastes the budget on models a small one would
match. So `budget.trials` (the same number every baseline family gets, Tip 2)
is split into `cnn.growth.rounds` rounds. Round 1 searches the configured
space. After each round, the best trial so far is read for evidence that the
space is too small:

- edge: its filters, conv_blocks, kernel_size or dilation is the largest
  choice of its range -> the next larger value joins the range (filters x2,
  blocks +1, kernel +4, dilation x2);
- receptive field: the positions it sees are fewer than
  `growth.receptive_field_fraction` of the input length -> the next dilation
  (if it has 2+ blocks) and the next block count join their ranges;
- still rising: its tune AUC was highest at its last epoch, the round's
  `max_epochs` -> `max_epochs` doubles;
- nothing learned yet: the best tune AUC is below `growth.learned_auroc` ->
  which trial is "best" is chance, and the small end of every capacity range
  has been tried in vain, so every range moves up a step (drops its smallest
  choice, adds the next larger value), and both
  `max_epochs` and `min_epochs` double, because a model of an interaction of
  motifs can sit at chance for several epochs before it starts to learn (on
  data where the small space finds a signal at once, like the default
  dataset, this never fires, so the extra epochs go only where needed).

Otherwise ranges only grow (the old choices stay), within `growth.limits`; a range with
one value is the user's fixed choice and never grows. When a round does not
beat the best tune AUC of the rounds before it (and some model has learned,
i.e. reached `learned_auroc`; two chance-level AUCs differ by noise), growth
stops and one last
round spends the rest of the budget in the space of the round that holds the
best trial (the widening that did not pay is dropped); when there is no
evidence, the last round stays in the current space. Every round, its space,
trials, best tune AUC and the reasons are recorded in tuner/search/rounds.json
(and copied to summary.json and trials.tsv). With `growth.enabled: false` the search is one round.

The record is written before a round starts, so a resumed job repeats exactly
the same rounds and never re-decides a round from a partial one.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from deeprules.cnn.model import receptive_field, uses_trunk
from deeprules.cnn.tuning import OBJECTIVE, PROJECT, best_trial, read_trials
from deeprules.io import read_json, write_json

log = logging.getLogger("deeprules.cnn")

ROUNDS_FILE = "rounds.json"
CAPACITY = ("filters", "conv_blocks", "kernel_size", "dilation")
EPOCHS = ("max_epochs", "min_epochs")
NEXT_VALUE = {
    "filters": lambda value: value * 2,
    "conv_blocks": lambda value: value + 1,
    "kernel_size": lambda value: value + 4,
    "dilation": lambda value: value * 2,
}


def round_budgets(trials: int, rounds: int) -> list[int]:
    """`trials` split as evenly as possible over `rounds` (earlier rounds get the rest)."""
    rounds = max(1, min(rounds, trials))
    return [trials // rounds + (index < trials % rounds) for index in range(rounds)]


def planned_budgets(spec: dict[str, Any]) -> list[int]:
    growth = spec["cnn"]["growth"]
    return round_budgets(spec["trials"], growth["rounds"] if growth["enabled"] else 1)


def first_round(spec: dict[str, Any]) -> dict[str, Any]:
    """Round 1: the configured space, its share of the budget."""
    cnn = spec["cnn"]
    return {
        "round": 1,
        "trials": planned_budgets(spec)[0],
        "space": copy.deepcopy(cnn["search_space"]),
        "max_epochs": cnn["max_epochs"],
        "min_epochs": cnn["min_epochs"],
        "reasons": ["the configured space: start small (Tip 3)"],
        "widened": {},
    }


def round_spec(spec: dict[str, Any], plan: dict[str, Any]) -> dict[str, Any]:
    """The job spec one round's tuner (and its workers) run with."""
    epochs = {key: plan[key] for key in EPOCHS}
    cnn = {**spec["cnn"], "search_space": plan["space"], **epochs}
    return {**spec, "round": plan["round"], "trials": plan["trials"], "cnn": cnn}


def rounds_file(spec: dict[str, Any]) -> Path:
    return Path(spec["tuner_dir"]) / PROJECT / ROUNDS_FILE


def read_rounds(spec: dict[str, Any]) -> list[dict[str, Any]]:
    path = rounds_file(spec)
    return read_json(path)["rounds"] if path.exists() else []


def _save(spec: dict[str, Any], plans: list[dict[str, Any]]) -> None:
    rounds_file(spec).parent.mkdir(parents=True, exist_ok=True)
    write_json(rounds_file(spec), {"rounds": plans})


def search_in_rounds(spec: dict[str, Any], run_round: Callable[[dict[str, Any]], None]) -> None:
    """Run (or resume) every round with `run_round(round_spec)`, deciding each next round."""
    plans = read_rounds(spec) or [first_round(spec)]
    _save(spec, plans)
    index = 0
    while True:
        plan = plans[index]
        if _finished(spec, plan) < plan["trials"]:
            log.info("round %d: %d trials, %s", plan["round"], plan["trials"], plan["reasons"])
            run_round(round_spec(spec, plan))
        _record_result(spec, plan)
        used = sum(p["trials"] for p in plans[: index + 1])
        if used >= spec["trials"]:
            break
        if index + 1 == len(plans):  # else decided before a kill: resume as decided
            plans.append(next_round(spec, plans, spec["trials"] - used))
        index += 1
        _save(spec, plans)
    _save(spec, plans)


def _finished(spec: dict[str, Any], plan: dict[str, Any]) -> int:
    trials = read_trials(spec["tuner_dir"], plan["round"])
    return sum(t["status"] in ("COMPLETED", "FAILED") for t in trials)


def _record_result(spec: dict[str, Any], plan: dict[str, Any]) -> None:
    completed = _completed(read_trials(spec["tuner_dir"], plan["round"]))
    best = best_trial(completed) if completed else None
    plan["best_trial_id"] = best["trial_id"] if best else None
    plan["best_tune_auroc"] = best["score"] if best else None


def _completed(trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [t for t in trials if t["status"] == "COMPLETED" and t.get("score") is not None]


def next_round(spec: dict[str, Any], plans: list[dict[str, Any]], left: int) -> dict[str, Any]:
    """The next round: widened when the evidence says the space is too small; otherwise
    growth stops and all `left` trials search the space of the round that holds the best
    trial (widening that did not pay is dropped). The last round's `outcome` says which."""
    last = plans[-1]
    completed = _completed(read_trials(spec["tuner_dir"]))
    earlier = [t for t in completed if t["round"] < last["round"]]
    home, reasons = last, []
    if not completed:
        stop = "no trial completed"
    elif (
        _learned(spec, earlier) and (last["best_tune_auroc"] or 0.0) <= best_trial(earlier)["score"]
    ):
        best = best_trial(earlier)
        home = plans[best["round"] - 1]
        stop = (
            f"round {last['round']} did not beat the earlier rounds' best tune AUC "
            f"({last['best_tune_auroc'] or 0.0:.4f} <= {best['score']:.4f})"
        )
    else:
        space, epochs, reasons = evidence(spec, last, best_trial(completed))
        stop = "" if reasons else "no evidence that the space is too small"
    number = last["round"] + 1
    if stop:
        last["outcome"] = f"{stop}: growth stops"
        space, epochs = home["space"], {key: home[key] for key in EPOCHS}
        reasons = [
            f"{stop}: the remaining {left} trials search the space of round {home['round']}"
            + (" (the best trial's)" if home is not last else "")
        ]
    else:
        last["outcome"] = "widened: " + "; ".join(reasons)
    return {
        "round": number,
        "trials": left if stop else min(left, planned_budgets(spec)[number - 1]),
        "space": space,
        **epochs,
        "reasons": reasons,
        "widened": {} if stop else _changes(last, space, epochs),
    }


def _learned(spec: dict[str, Any], trials: list[dict[str, Any]]) -> bool:
    """Some model reached growth.learned_auroc: only then is "did not beat it" evidence
    (two chance-level AUCs differ by noise)."""
    return bool(trials) and best_trial(trials)["score"] >= spec["cnn"]["growth"]["learned_auroc"]


def _changes(
    last: dict[str, Any], space: dict[str, Any], epochs: dict[str, int]
) -> dict[str, list]:
    """What grew, as {setting: [before, after]}."""
    changes = {key: [last["space"][key], space[key]] for key in CAPACITY}
    changes |= {key: [last[key], epochs[key]] for key in EPOCHS}
    return {key: pair for key, pair in changes.items() if pair[0] != pair[1]}


def evidence(
    spec: dict[str, Any], plan: dict[str, Any], best: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, int], list[str]]:
    """The widened space, the epochs (max_epochs, min_epochs) and the reasons, from the
    best trial so far. When nothing has learned yet, which model is "best" is chance,
    so its values say nothing about where to grow; the small end of every capacity
    range has been tried without success, so every range moves up a step."""
    growth = spec["cnn"]["growth"]
    space = copy.deepcopy(plan["space"])
    if best["score"] < growth["learned_auroc"]:
        moved = [
            f"{name} {plan['space'][name]} -> {space[name]}"
            for name in CAPACITY
            if _steps_up(space, name, growth)
        ]
        reasons = (
            [
                f"best tune AUC {best['score']:.3f} < {growth['learned_auroc']:g}: no model has "
                f"learned yet, so every capacity range moves up a step: {', '.join(moved)}"
            ]
            if moved
            else []
        )
    elif uses_trunk(best["hyperparameters"]["values"]):
        reasons = []  # its convolutions are the pre-trained trunk's, not the space's
    else:
        reasons = _at_the_edge(space, best, growth) + _too_narrow(spec, plan, space, best)
    epochs, reason = _longer(best, plan, growth)
    return space, epochs, reasons + reason


def _at_the_edge(space: dict[str, Any], best: dict[str, Any], growth: dict[str, Any]) -> list[str]:
    """Widen every capacity range whose largest choice the best trial has."""
    values, reasons = best["hyperparameters"]["values"], []
    for name in CAPACITY:
        choices = space[name]
        if values[name] == max(choices) and _grows(space, name, growth):
            reasons.append(
                f"best trial {best['trial_id']} has the largest {name} of {choices} "
                f"({values[name]}): add {space[name][-1]}"
            )
    return reasons


def _too_narrow(
    spec: dict[str, Any], plan: dict[str, Any], space: dict[str, Any], best: dict[str, Any]
) -> list[str]:
    """Widen dilation (2+ blocks) and conv_blocks when the best model sees too little."""
    growth, values = spec["cnn"]["growth"], best["hyperparameters"]["values"]
    field, length = receptive_field(values, spec["length"]), spec["length"]
    if field >= growth["receptive_field_fraction"] * length:
        return []
    names = (["dilation"] if values["conv_blocks"] > 1 else []) + ["conv_blocks"]
    added = [
        f"{name} {space[name][-1]}"
        for name in names
        if space[name] == plan["space"][name] and _grows(space, name, growth)
    ]
    if not added:
        return []
    return [
        f"best trial {best['trial_id']} sees {field} of {length} positions "
        f"(< {growth['receptive_field_fraction']:g} of the input): add {', '.join(added)}"
    ]


def _longer(
    best: dict[str, Any], plan: dict[str, Any], growth: dict[str, Any]
) -> tuple[dict[str, int], list[str]]:
    """Doubled epochs when the best trial was still rising or nothing has learned yet."""
    epochs = {key: plan[key] for key in EPOCHS}
    limit = growth["limits"]["max_epochs"]
    if epochs["max_epochs"] >= limit:
        return epochs, []
    grown = min(2 * epochs["max_epochs"], limit)
    if best["score"] < growth["learned_auroc"]:
        longer = {"max_epochs": grown, "min_epochs": min(2 * epochs["min_epochs"], grown)}
        why = (
            "nothing learned yet, and a model of an interaction can sit at chance for "
            "several epochs before it learns"
        )
    elif _still_rising(best, epochs["max_epochs"]):
        longer = {**epochs, "max_epochs": grown}
        why = f"best trial {best['trial_id']}'s tune AUC was still rising at its last epoch"
    else:
        return epochs, []
    changes = ", ".join(
        f"{key} {epochs[key]} -> {longer[key]}" for key in EPOCHS if longer[key] != epochs[key]
    )
    return longer, [f"{why}: {changes}"]


def _steps_up(space: dict[str, Any], name: str, growth: dict[str, Any]) -> bool:
    """Drop a range's smallest choice and add the next larger value (a range of the
    same size, one step up) if the limit allows; True when it moved."""
    smallest = min(space[name])
    if not _grows(space, name, growth):
        return False
    space[name] = [value for value in space[name] if value != smallest]
    return True


def _grows(space: dict[str, Any], name: str, growth: dict[str, Any]) -> bool:
    """Add the next larger value to a range (not a fixed one-value choice) if the limit
    allows; True when it grew."""
    if len(space[name]) < 2:
        return False
    value = NEXT_VALUE[name](max(space[name]))
    if value > growth["limits"][name]:
        return False
    space[name] = sorted({*space[name], value})
    return True


def _still_rising(trial: dict[str, Any], max_epochs: int) -> bool:
    """Best tune AUC at the last epoch, which was the round's `max_epochs`: the epoch cap,
    not early stopping, ended it (a Hyperband model cut by its bracket's shorter budget
    says nothing about max_epochs; Hyperband itself continues the promising ones)."""
    finished = [run for run in trial["runs"] if run["finished"]]
    if not finished:
        return False
    run = finished[-1]
    curve = run["history"][OBJECTIVE]
    reached_cap = run["initial_epoch"] + len(curve) >= max_epochs
    return reached_cap and len(curve) > 1 and int(np.argmax(curve)) == len(curve) - 1
