"""The Ten-Tips scorecard: one row per tip, what was done on this dataset, with numbers.

A failed explore check, leakage or a repeated test access is a warning, never
hidden; a stage that did not run is 'not done'. One function per tip, each
reading only the stage summaries it quotes. Every row carries a `verdict` code
(VERDICTS), a one-sentence `answer` and the `numbers` behind it; the tips that
ask a question (1, 2, 7, 8, 9) answer it from numbers in deeprules.report.verdicts.
"""

from __future__ import annotations

from typing import Any

from deeprules.evaluate.comparisons import WHY_BEST_BASELINE, WHY_CONTROL
from deeprules.report import verdicts as v
from deeprules.report.facts import (
    baseline_approximations,
    median_lengths,
    metric_name,
    same_trial_data,
    trial_subsample,
)
from deeprules.report.split_shift import shift_evidence, shift_gate_failed

DONE, WARNING, NOT_DONE = "done", "warning", "not_done"
# A tip without a question of its own: followed, or followed with something to look at.
FOLLOWED, NEEDS_ATTENTION = "followed", "needs_attention"
STATUS_VERDICTS = {DONE: FOLLOWED, WARNING: NEEDS_ATTENTION, NOT_DONE: v.NOT_ASSESSED}
EQUAL_BUDGETS, UNEQUAL_BUDGETS = "equal_budgets", "unequal_budgets"
# The verdict codes each tip can carry in scorecard.json.
GENERIC = (FOLLOWED, NEEDS_ATTENTION, v.NOT_ASSESSED)
VERDICTS = {
    1: (v.JUSTIFIED, v.NOT_JUSTIFIED, v.INCONCLUSIVE, v.NOT_ASSESSED),
    2: (EQUAL_BUDGETS, UNEQUAL_BUDGETS, v.NOT_ASSESSED),
    8: (
        v.INTERPRETABLE_IS_BEST,
        v.INTERPRETABLE_SUFFICES,
        v.ACCURACY_NEEDS_COMPLEX_MODEL,
        v.NOT_ASSESSED,
    ),
    9: (v.NO_FAILURE_DOMAIN, v.FAILURE_DOMAINS_FOUND, v.NOT_ASSESSED),
    5: (*GENERIC, *v.PRETRAINING_OUTCOMES.values()),
    **{tip: GENERIC for tip in (3, 4, 6, 7, 10)},
}
# Test median length this far (relative) from train's is worth a reviewer's attention.
LENGTH_SHIFT = 0.25
TIP_TITLES = {
    1: "Decide whether deep learning is appropriate",
    2: "Use traditional methods to establish baselines",
    3: "Understand the complexities of training deep networks",
    4: "Know your data and your question",
    5: "Choose an appropriate representation and architecture",
    6: "Tune hyperparameters extensively and systematically",
    7: "Address deep networks' tendency to overfit",
    8: "Make models more transparent",
    9: "Don't over-interpret predictions",
    10: "Actively consider the ethical implications",
}

Stages = dict[str, Any]


def _tip(
    number: int,
    status: str,
    action: str,
    evidence: str,
    verdict: str | None = None,
    answer: str = "",
    numbers: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One row; a tip without a question of its own takes its verdict from its status."""
    return {
        "tip": number,
        "title": TIP_TITLES[number],
        "status": status,
        "verdict": verdict or STATUS_VERDICTS[status],
        "answer": answer,
        "action": action,
        "evidence": evidence,
        "numbers": numbers or {},
    }


def tip1(stages: Stages, dataset: dict[str, Any]) -> dict[str, Any]:
    """The CNN must beat the best baseline and every control; a miss is shown, not hidden."""
    ev, base = stages.get("evaluate"), stages.get("baselines")
    if not (ev and base):
        return _tip(1, NOT_DONE, "no test comparison", "evaluate did not run")
    mine = [
        c
        for c in ev["comparisons"]
        if c["candidate"] == "cnn" and c["why"] in (WHY_BEST_BASELINE, WHY_CONTROL)
    ]
    best = [c for c in mine if c["why"] == WHY_BEST_BASELINE]
    misses = [c for c in mine if c["outcome"] != "better"]
    shown = best + [c for c in misses if c not in best]
    verdict, answer, numbers = v.deep_learning_verdict(stages)
    return _tip(
        1,
        WARNING if misses or not best else DONE,
        "CNN compared with the best tuned baseline and every control on test",
        " ".join(c["verdict"] for c in shown) or "no CNN comparison",
        verdict,
        answer,
        numbers,
    )


def tip2(stages: Stages, dataset: dict[str, Any]) -> dict[str, Any]:
    """The best tuned family (never a control) and whether it had the CNN's budget."""
    base, cnn = stages.get("baselines"), stages.get("cnn")
    if not (base and cnn):
        return _tip(2, NOT_DONE, "baselines or CNN missing", "")
    families = sum(m["kind"] == "tuned" for m in base["models"].values())
    equal = base["trials_per_family"] == cnn["tuning"]["trials_budget"]
    equal = equal and same_trial_data(base, cnn)
    best = best_tuned_baseline(stages)
    budgets = (
        f"{families} baseline families x {base['trials_per_family']} trials, "
        f"CNN {cnn['tuning']['trials']} trials (budget {cnn['tuning']['trials_budget']})"
    )
    approximations = baseline_approximations(base)
    affordable = f"; affordable forms on a large set: {'; '.join(approximations)}"
    subsample = trial_subsample(base, cnn)
    return _tip(
        2,
        DONE if equal else WARNING,
        "traditional families tuned with the CNN's budget, plus controls",
        f"{budgets}; best tuned baseline {best['model']} "
        f"({metric_name(best['metric'])} {best['tune']:.3f} on tune)"
        + (f"; {subsample}" if subsample else "")
        + (affordable if approximations else ""),
        EQUAL_BUDGETS if equal else UNEQUAL_BUDGETS,
        f"Best tuned family: {best['model']}; budgets were "
        + ("equal." if equal else "not equal: the comparison may favour the larger budget."),
        {
            "best_tuned_family": best["model"],
            "best_tuned_metric": best["metric"],
            "best_tuned_tune_score": best["tune"],
            "families": families,
            "trials_per_family": base["trials_per_family"],
            "cnn_trials_budget": cnn["tuning"]["trials_budget"],
            "cnn_trials": cnn["tuning"]["trials"],
            "approximations": approximations,
            "trial_subsample": subsample,
        },
    )


def best_tuned_baseline(stages: Stages) -> dict[str, Any]:
    """The best tuned family as evaluate chose it on tune (never a control), else as the
    baselines stage ranked its tuned families; with its tune score."""
    base, ev = stages["baselines"], stages.get("evaluate")
    if ev and ev["best_baseline"].get("model"):
        chosen = ev["best_baseline"]
        return {
            "model": chosen["model"],
            "metric": chosen["metric"],
            "tune": chosen["tune_scores"][chosen["model"]],
        }
    model, metric = base["best_tuned"]["model"], base["primary_metric"]
    return {"model": model, "metric": metric, "tune": base["models"][model]["tune"][metric]}


def tip3(stages: Stages, dataset: dict[str, Any]) -> dict[str, Any]:
    """Seeds and determinism, the "can it learn at all" check, and a search that started
    small and grew only where the evidence said so."""
    cnn = stages.get("cnn")
    if not cnn:
        return _tip(3, NOT_DONE, "CNN did not run", "")
    repro = cnn["reproducibility"]
    search = cnn.get("search", {})
    check = search.get("learning_check")
    rounds = search.get("rounds", [])
    learned = (
        f"smallest network fit {check['sequences']} training sequences to AUROC "
        f"{check['train_auroc']:.3f} in {check['epochs']} epochs; "
        if check
        else "no learning check; "
    )
    grew = [r for r in rounds if r["widened"]]
    growth = (
        f"search started in the configured space and grew in {len(grew)} of "
        f"{len(rounds)} round(s): " + "; ".join(_growth_line(r) for r in grew)
        if grew
        else f"search stayed in the configured space ({len(rounds)} round(s))"
    )
    return _tip(
        3,
        DONE if repro["deterministic"] and check else WARNING,
        "seeds everywhere; deterministic TensorFlow ops; device recorded; pipeline checked "
        "on a small batch; start small, grow on evidence",
        f"seed {repro['seed']}, deterministic ops {repro['op_determinism']}, "
        f"device {cnn['device']['used']}; {learned}{growth}",
    )


def _growth_line(search_round: dict[str, Any]) -> str:
    """'round 2: filters [16, 32] -> [16, 32, 64] (why...)'."""
    changes = ", ".join(
        f"{key} {old} -> {new}" for key, (old, new) in search_round["widened"].items()
    )
    return f"round {search_round['round']}: {changes} ({'; '.join(search_round['reasons'])})"


def tip4(stages: Stages, dataset: dict[str, Any]) -> dict[str, Any]:
    checks = stages.get("explore")
    if not checks:
        return _tip(4, NOT_DONE, "explore missing", "")
    failures, warnings, floor = checks["failures"], checks["warnings"], checks["floor"]
    return _tip(
        4,
        WARNING if failures or warnings else DONE,
        "provenance recorded; duplicates and label conflicts removed with a "
        "ledger; confounder and shortcut checks before any model",
        f"{len(checks['checks'])} checks: {len(failures)} fail "
        f"({', '.join(failures) or 'none'}), {len(warnings)} warn; shortcut "
        f"floor AUROC {floor['auroc']:.3f} ({floor['check']})",
        numbers={
            "checks": len(checks["checks"]),
            "failures": failures,
            "warnings": warnings,
            "shortcut_floor_auroc": floor["auroc"],
            "shortcut_floor_check": floor["check"],
        },
    )


def tip5(stages: Stages, dataset: dict[str, Any]) -> dict[str, Any]:
    """The representation, and what pre-training changed (transfer learning) if configured."""
    cnn = stages.get("cnn")
    if not cnn:
        return _tip(5, NOT_DONE, "CNN did not run", "")
    enc = cnn["encoding"]
    plan = cnn.get("input_pipeline") or {}  # summaries before issue 20 have none
    streamed = (
        f"; input streamed from memory-mapped token files ({plan['one_hot_mb']:,.1f} MB as "
        f"one-hot > cnn.in_memory_max_mb {plan['in_memory_max_mb']:g}), same batches as in memory"
        if plan.get("streamed")
        else ""
    )
    verdict, answer, pretraining = v.pretraining_verdict(stages)
    action = "one-hot sequences into a convolutional network"
    if pretraining["pretraining"] and pretraining["objective"] == "supervised":
        action += (
            f", its convolutions pre-trained on dataset '{pretraining['source_dataset']}' "
            "(its train labels)"
        )
    elif pretraining["pretraining"]:
        action += ", its convolutions pre-trained on unlabeled sequences (masked residues)"
    return _tip(
        5,
        DONE,
        action,
        f"one-hot {enc['sequence_type']}, length {enc['length']} "
        f"({enc['length_source']}), padding {enc['padding']}{streamed}",
        verdict=verdict,
        answer=answer,
        numbers={"encoding": enc["sequence_type"], "length": enc["length"], **pretraining},
    )


def tip6(stages: Stages, dataset: dict[str, Any]) -> dict[str, Any]:
    """The search's rounds (trials and best tune AUC each) and the chosen model's
    receptive field against the input length."""
    cnn = stages.get("cnn")
    if not cnn:
        return _tip(6, NOT_DONE, "CNN did not run", "")
    rounds = cnn.get("search", {}).get("rounds", [])
    per_round = ", ".join(
        f"round {r['round']}: {r['trials']} trials, best "
        + ("n/a" if r["best_tune_auroc"] is None else f"{r['best_tune_auroc']:.3f}")
        for r in rounds
    )
    field = cnn.get("receptive_field")
    seen = (
        f"; chosen model sees {field['positions']} of {field['input_length']} positions"
        if field
        else ""
    )
    return _tip(
        6,
        DONE,
        f"Keras Tuner {cnn['tuning']['tuner']} on the tune partition, in rounds that widen "
        "the space where the best trial says it is too small",
        f"{cnn['tuning']['trials']} trials, best tune AUC {cnn['best_trial']['tune_auc']:.3f}"
        + (f" ({per_round})" if per_round else "")
        + seen,
    )


def tip7(stages: Stages, dataset: dict[str, Any]) -> dict[str, Any]:
    """Leakage, test access, the shuffled-label control, overfitting and length shift."""
    split, base, ev = stages.get("split"), stages.get("baselines"), stages.get("evaluate")
    if not (split and ev):
        return _tip(7, NOT_DONE, "split or evaluate missing", "")
    leaks = split["verification"]["pairs_at_or_above_threshold"]
    access = ev["test_access"]["access_count"]
    parts = [
        f"test evaluated {access} time(s)",
        f"{leaks} cross-partition pairs >= {split['threshold']:.0%} identity",
    ]
    parts.extend(filter(None, [partition_sizes(split)]))
    shuffled = v.shuffled_label_control(base)
    if shuffled:
        parts.append(shuffled["text"])
    if base and base.get("random_split"):
        r = base["random_split"]
        name = r["primary_metric"]
        parts.append(
            f"random split would report {name} {r['random_split'][name]:.3f} vs "
            f"{r['homology_split'][name]:.3f} across homology partitions"
        )
    overfit = ev["overfitting_flags"]
    if overfit:
        parts.append(f"{len(overfit)} model(s) with a train/test gap above the threshold")
    parts.extend(filter(None, [shift_evidence(split)]))  # covariate balance and shift
    shifted = length_shift(split)
    if shifted:
        parts.append(shifted)
    flagged = bool(shuffled and shuffled["flagged"])
    unfair = shifted or shift_gate_failed(split)
    status = WARNING if leaks or access > 1 or overfit or unfair or flagged else DONE
    return _tip(
        7,
        status,
        f"{split['method']} split; {times_opened(access)}",
        "; ".join(parts),
        numbers=tip7_numbers(split, ev, shuffled),
    )


def tip7_numbers(
    split: dict[str, Any], ev: dict[str, Any], shuffled: dict[str, Any] | None
) -> dict[str, Any]:
    """The numbers behind Tip 7, for programs."""
    return {
        "cross_partition_pairs": split["verification"]["pairs_at_or_above_threshold"],
        "identity_threshold": split["threshold"],
        "test_access_count": ev["test_access"]["access_count"],
        "overfitting_flags": len(ev["overfitting_flags"]),
        "shuffled_control": {k: val for k, val in (shuffled or {}).items() if k != "text"},
        "median_lengths": median_lengths(split),
    }


def partition_sizes(split: dict[str, Any]) -> str:
    """The sizes the split reached next to the fractions asked for: whole homology groups
    and covariate balance move sequences between partitions, so a test set can end up
    smaller than configured, and a reader should see by how much."""
    names = list(split["partitions"])
    if not names:
        return ""
    sizes = "/".join(f"{split['partitions'][n]['sequences']:,}" for n in names)
    reached = "/".join(f"{100 * split['partitions'][n]['fraction']:.0f}" for n in names)
    asked = "/".join(f"{100 * split['target_fractions'][n]:.0f}" for n in names)
    return f"{'/'.join(names)} {sizes} sequences ({reached}% of those kept; asked {asked}%)"


def times_opened(count: int) -> str:
    """The access count from the ledger (evaluate.ledger_dir), never a fixed 'once'."""
    return "test partition opened once" if count == 1 else f"test partition opened {count} times"


def length_shift(split: dict[str, Any]) -> str:
    """A warning when test sequences are much longer or shorter than training ones: a
    homology split tends to carve loosely connected (often longer) sequences out of a
    large family, and test scores then measure transfer to other lengths too."""
    medians = median_lengths(split)
    if "test" not in medians or "train" not in medians:
        return ""
    if abs(medians["test"] - medians["train"]) <= LENGTH_SHIFT * medians["train"]:
        return ""
    shown = "/".join(f"{medians[name]:g}" for name in ("train", "tune", "test") if name in medians)
    return (
        f"median sequence length train/tune/test {shown}: the split shifted lengths, so "
        "test scores also measure transfer to other lengths"
    )


def tip8(stages: Stages, dataset: dict[str, Any]) -> dict[str, Any]:
    """Explanations made, and what interpretability costs on test (the rule of thumb)."""
    interp = stages.get("interpret")
    if not interp:
        return _tip(8, NOT_DONE, "interpret missing", "")
    parts = ["baseline importances"] + (
        ["CNN attributions and filter logos"] if "cnn" in interp else []
    )
    verdict, answer, numbers = v.interpretability_tradeoff(stages)
    return _tip(
        8,
        DONE,
        "; ".join(parts),
        f"top features of {len(interp['baselines'])} baseline models",
        verdict,
        answer,
        numbers,
    )


def tip9(stages: Stages, dataset: dict[str, Any]) -> dict[str, Any]:
    """Where models fail, by name: the worst flagged groups with size, metric and drop."""
    ev = stages.get("evaluate")
    if not ev:
        return _tip(9, NOT_DONE, "evaluate missing", "")
    flags = ev["failure_flags"]
    worst = v.worst_failure_domains(ev)
    named = "; ".join(v.failure_text(flag) for flag in worst)
    return _tip(
        9,
        WARNING if flags else DONE,
        "metrics per metadata group, length bin and identity-to-train bin",
        f"{len(flags)} group(s) where the primary metric drops",
        v.FAILURE_DOMAINS_FOUND if flags else v.NO_FAILURE_DOMAIN,
        f"Worst: {named}." if named else "No group falls clearly below the overall score.",
        {
            "flags": len(flags),
            "drop_limit": ev["flag_limits"]["failure_drop"],
            "worst": worst,
        },
    )


def tip10(stages: Stages, dataset: dict[str, Any]) -> dict[str, Any]:
    open_concerns = [e for e in dataset["ethics"] if e["status"] == "open"]
    return _tip(
        10,
        WARNING if open_concerns or not dataset["ethics"] else DONE,
        "ethics register and model card",
        f"{len(dataset['ethics'])} register entries, {len(open_concerns)} open; "
        f"sensitive data: {'yes' if dataset['sensitive'] else 'no'}",
        numbers={
            "register_entries": len(dataset["ethics"]),
            "open": len(open_concerns),
            "sensitive": dataset["sensitive"],
        },
    )


TIPS = (tip1, tip2, tip3, tip4, tip5, tip6, tip7, tip8, tip9, tip10)


def scorecard(stages: Stages, dataset: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per tip, in the paper's order; `stages` maps a stage to its summary
    (absent when the stage did not run)."""
    return [tip(stages, dataset) for tip in TIPS]
