"""The REFORMS checklist (Kapoor et al. 2024): every item answered from the run's files,
or marked as one the workflow cannot answer, with what the author must add.

The items live in workflow/report/reforms.yaml (`answered`: run, partly or
user); each item the run answers has one function here, named in ANSWERS by
the item's id, which reads only the stage summaries, the scorecard and the
provenance section. A stage that did not run says so instead of answering.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from deeprules.report.facts import (
    METRIC_COLUMNS,
    baseline_approximations,
    listing,
    metric_name,
    trial_subsample,
)

CHECKLIST = Path(__file__).resolve().parents[2] / "report" / "reforms.yaml"
NOT_ANSWERED = "not answered by the workflow"


@dataclass(frozen=True)
class Evidence:
    """What an answer may read: stage summaries, the dataset file's keys, the scorecard
    (tips by number) and the provenance section."""

    stages: dict[str, Any]
    dataset: dict[str, Any]
    tips: dict[int, dict[str, Any]]
    provenance: dict[str, Any]

    def stage(self, name: str) -> dict[str, Any]:
        """A stage's summary; MissingStage when it did not run."""
        if name not in self.stages:
            raise MissingStage(name)
        return self.stages[name]


class MissingStage(LookupError):
    """An answer needs a stage that did not run."""


def _sources(e: Evidence) -> str:
    return "; ".join(
        f"{s['name']} ({s['kind']}, {s['where']}, version {s['version'] or 'not recorded'}, "
        f"sha256 {s['sha256'][:12]}..., retrieved {s['retrieved_at']})"
        for s in e.provenance["sources"]
    )


def _split(e: Evidence) -> str:
    split = e.stage("split")
    sizes = listing({n: p["sequences"] for n, p in split["partitions"].items()})
    return (
        f"{split['method']} split at {split['threshold']} identity; partitions: {sizes}; "
        f"{split['verification']['pairs_at_or_above_threshold']} cross-partition pairs at or "
        "above the threshold"
    )


def _dropped(e: Evidence) -> str:
    curate = e.stage("curate")
    text = f"curation dropped {curate['records_dropped']} of {curate['records_read']} records "
    text += f"({listing(curate['dropped_per_reason'])}), each listed in curate/dropped.tsv"
    split = e.stages.get("split")
    if split:
        removed = split["sequences"]
        text += (
            f"; the split removed {removed['removed']} more "
            f"({listing(removed['removed_per_reason'])}; per class "
            f"{listing(removed['removed_per_label'])}), listed in split/dropped.tsv"
        )
    return text


def _models(e: Evidence) -> str:
    base, cnn = e.stage("baselines"), e.stage("cnn")
    tuned = [m for m, info in base["models"].items() if info["kind"] == "tuned"]
    controls = [m for m, info in base["models"].items() if info["kind"] != "tuned"]
    return (
        f"tuned baselines: {', '.join(tuned)}; controls: {', '.join(controls)}; CNN: "
        f"{listing(cnn['hyperparameters'])}"
    )


def _tuning(e: Evidence) -> str:
    base, cnn = e.stage("baselines"), e.stage("cnn")
    tuning = cnn["tuning"]
    approximations = baseline_approximations(base)
    affordable = f" (affordable forms: {'; '.join(approximations)})" if approximations else ""
    subsample = trial_subsample(base, cnn)
    return (
        f"baselines: Optuna ({base['sampler']} sampler), {base['trials_per_family']} trials per "
        f"family on the tune partition{affordable}; "
        + (f"{subsample}; " if subsample else "")
        + f"CNN: Keras Tuner {tuning['tuner']}, "
        f"{tuning['trials']} "
        f"trials (budget {tuning['trials_budget']}), up to {tuning['max_epochs']} epochs, early "
        f"stopping after {tuning['patience']} epochs without gain on tune"
    )


def _selection(e: Evidence) -> str:
    ev, cnn = e.stage("evaluate"), e.stage("cnn")
    return (
        f"best baseline: {ev['best_baseline']['model']}, by {ev['best_baseline']['chosen_by']}; "
        f"CNN: best trial on tune ({cnn['tuning']['objective']}), {cnn['final_model']['how']}; "
        f"decision thresholds chosen on tune ({ev['threshold_metric']})"
    )


def _metrics(e: Evidence) -> str:
    ev = e.stage("evaluate")
    used = [
        metric_name(n)
        for n in METRIC_COLUMNS
        if any(n in model["metrics"] for model in ev["models"].values())
    ]
    return f"{', '.join(used)}; primary (selects models): {metric_name(ev['primary_metric'])}"


def _uncertainty(e: Evidence) -> str:
    boot = e.stage("evaluate")["bootstrap"]
    return (
        f"{boot['ci_level']:.0%} intervals from {boot['resamples']} "
        f"{'stratified ' if boot['stratified'] else ''}bootstrap resamples of the test set "
        f"(seed {boot['seed']})"
    )


def _leakage_checks(e: Evidence) -> str:
    explore = e.stage("explore")
    failures = ", ".join(explore["failures"]) or "none"
    floor = explore["floor"]
    return (
        f"explore ran {len(explore['checks'])} checks before any model; failed: {failures}; "
        f"shortcut floor AUROC {floor['auroc']:.3f} ({floor['check']})"
    )


def _test_once(e: Evidence) -> str:
    ev, cnn = e.stage("evaluate"), e.stage("cnn")
    return (
        "model choice, hyperparameters, thresholds and early stopping use train and tune only; "
        f"CNN input length from {cnn['encoding']['length_source']}; the test partition was "
        f"opened {ev['test_access']['access_count']} time(s) (ledger {ev['test_access']['ledger']})"
    )


ANSWERS: dict[str, Callable[[Evidence], str]] = {
    "1c": lambda e: f"Tip 1: {e.tips[1]['answer']}",
    "2a": _sources,
    "2b": lambda e: f"deeprules workflow at git commit {e.provenance['git_commit']}",
    "2c": lambda e: f"{e.provenance['hardware']}; software: {listing(e.provenance['software'])}",
    "2d": lambda e: (
        "the workflow's README.md (how to run) and config/README.md (every setting); this "
        f"run's settings: config/config.yaml and config/datasets/{e.dataset['name']}.yaml"
    ),
    "2e": lambda e: (
        "snakemake on the workflow's Snakefile reruns every stage from the config; "
        f"snakemake --report rebuilds the Snakemake report; seed {e.provenance['seed']}"
    ),
    "3a": lambda e: (
        f"{_sources(e)}; records read per source: "
        f"{listing(e.stage('curate')['records_read_per_source'])}"
    ),
    "3d": lambda e: (
        f"class label; curated counts: {listing(e.stage('curate')['labels'])}; "
        f"positive class: {e.stage('evaluate')['positive_class'] or 'none (multi-class)'}"
    ),
    "3e": lambda e: (
        f"{e.stage('curate')['records_read']} records read, {e.stage('curate')['records_kept']} "
        f"kept; {_split(e)}"
    ),
    "3f": lambda e: (
        "no model input has missing values: a record without a sequence or label is dropped "
        f"and listed; {_dropped(e)}"
    ),
    "4a": _dropped,
    "4b": lambda e: (
        "sequences are normalised (upper case, no whitespace, trailing stop removed); records "
        "with letters outside the alphabet, no sequence, no label or a repeated id stop the run "
        "or are dropped (curate.on_invalid); dropped: "
        + listing(e.stage("curate")["dropped_per_reason"])
    ),
    "4c": lambda e: (
        f"CNN: one-hot {e.stage('cnn')['encoding']['sequence_type']}, length "
        f"{e.stage('cnn')['encoding']['length']} ({e.stage('cnn')['encoding']['length_source']}), "
        f"padding {e.stage('cnn')['encoding']['padding']}; baselines: k-mer counts "
        f"{e.stage('baselines')['features']['kmer_sizes']}, descriptors "
        f"{'yes' if e.stage('baselines')['features']['descriptors'] else 'no'}"
    ),
    "5a": _models,
    "5b": lambda e: f"Tip 2: {e.tips[2]['answer']} Controls show what trivial models reach.",
    "5c": lambda e: f"{_split(e)}; every model scored once on test",
    "5d": _selection,
    "5e": _tuning,
    "5f": lambda e: (
        f"{e.tips[2]['answer']} The CNN is compared with the best tuned baseline and every "
        "control by paired bootstrap on test."
    ),
    "6a": _test_once,
    "6b": lambda e: (
        f"exact duplicates and label conflicts removed at curation "
        f"({listing(e.stage('curate')['dropped_per_reason'])}); {_split(e)}; identity: "
        f"{e.stage('split')['identity_definition']}"
    ),
    "6c": _leakage_checks,
    "7a": _metrics,
    "7b": _uncertainty,
    "7c": lambda e: (
        "paired stratified bootstrap of each difference (the same resamples for every model), "
        "two-sided p-values; it assumes only that test sequences are independent, which the "
        "homology split supports; no distributional assumption"
    ),
    "8b": lambda e: f"Tip 9: {e.tips[9]['answer']}",
}


def checklist() -> list[dict[str, Any]]:
    """The modules and items of workflow/report/reforms.yaml, in the checklist's order."""
    return yaml.safe_load(CHECKLIST.read_text())["modules"]


def answer_item(item: dict[str, Any], evidence: Evidence) -> dict[str, Any]:
    """One item: what the run says (or NOT_ANSWERED) and what the author must add."""
    answer = NOT_ANSWERED
    if item["answered"] != "user":
        try:
            answer = ANSWERS[item["id"]](evidence)
        except MissingStage as missing:
            answer = f"{NOT_ANSWERED}: the {missing} stage did not run"
    return {
        "id": item["id"],
        "item": item["item"],
        "answered": item["answered"],
        "answer": answer,
        "user_must_add": item.get("user_must_add", ""),
    }


def reforms(evidence: Evidence) -> list[dict[str, Any]]:
    """Every module with its answered items."""
    return [
        {"module": module["module"], "items": [answer_item(i, evidence) for i in module["items"]]}
        for module in checklist()
    ]
