"""The answers to the tips that ask a question, computed from the stages' numbers only.

Tip 1 asks whether deep learning is appropriate, Tip 7 whether the controls
behave, Tip 8 what interpretability costs, Tip 9 where the models fail. Each
answer is a verdict code for programs (the enums below), one sentence for
people and the numbers it rests on; nothing here parses a stage's prose.
"""

from __future__ import annotations

from typing import Any

from deeprules.contracts import INTERPRETABILITY, ROLE_BASELINE, ROLE_CNN, ROLE_SCRATCH
from deeprules.report.facts import metric, metric_name

Stages = dict[str, Any]

# Lee et al. 2021, Tip 1: deep learning "can be considered for datasets with at least one
# hundred samples per class", and works best with orders of magnitude more.
MIN_PER_CLASS = 100
# Tip 8's rule of thumb ("a simpler and more interpretable model that gives up only a
# little performance is often more useful"): "a little" is at most this much of the
# primary metric (AUROC, MCC, balanced accuracy: all on a 0-1 scale).
SMALL_LOSS = 0.02
# The shuffled-label control is clearly above chance when every repeat is above chance
# and their mean is more than this above it: labels then leak through something else.
SHUFFLED_MARGIN = 0.05
CHANCE_AUROC = 0.5
# The trivial-feature control, as deeprules.baselines.controls names it.
SHORTCUT_CONTROL = "control_shortcut"

JUSTIFIED, NOT_JUSTIFIED, INCONCLUSIVE, NOT_ASSESSED = (
    "justified",
    "not_justified",
    "inconclusive",
    "not_assessed",
)
INTERPRETABLE_IS_BEST = "interpretable_model_is_best"
INTERPRETABLE_SUFFICES = "interpretable_model_suffices"
ACCURACY_NEEDS_COMPLEX_MODEL = "accuracy_needs_complex_model"
NO_FAILURE_DOMAIN, FAILURE_DOMAINS_FOUND = "no_failure_domain", "failure_domains_found"
# Tip 5 with pre-training: the CNN against the same search without the trunk, on test.
PRETRAINING_HELPED, PRETRAINING_HURT = "pretraining_helped", "pretraining_hurt"
PRETRAINING_NO_DIFFERENCE = "pretraining_no_difference"
PRETRAINING_OUTCOMES = {
    "better": PRETRAINING_HELPED,
    "worse": PRETRAINING_HURT,
    "no_difference": PRETRAINING_NO_DIFFERENCE,
}
NO_PRETRAINING = "No pre-training configured (the dataset file declares no unlabeled source)."


def samples_per_class(stages: Stages) -> dict[str, int]:
    """Training sequences per class (the split's train partition), else the curated counts."""
    split = stages.get("split")
    if split and split["partitions"].get("train", {}).get("label_counts"):
        return dict(split["partitions"]["train"]["label_counts"])
    return dict(stages.get("curate", {}).get("labels", {}))


def _cnn_comparison(ev: dict[str, Any], reference: str | None) -> dict[str, Any] | None:
    return next(
        (
            c
            for c in ev["comparisons"]
            if c["candidate"] == ROLE_CNN and reference and c["reference"] == reference
        ),
        None,
    )


def difference_text(comparison: dict[str, Any], level: float) -> str:
    """'AUROC +0.236, 95% CI +0.198 to +0.273' for a paired comparison."""
    return (
        f"{metric_name(comparison['metric'])} {comparison['difference']:+.3f}, {level:.0%} CI "
        f"{comparison['ci_low']:+.3f} to {comparison['ci_high']:+.3f}"
    )


def deep_learning_verdict(stages: Stages) -> tuple[str, str, dict[str, Any]]:
    """Tip 1: justified / not justified / inconclusive, one sentence why, and its numbers.

    Justified needs the CNN better than the best tuned baseline AND the shortcut
    control on test (paired intervals above zero) with at least MIN_PER_CLASS
    training sequences in every class. Worse than either is not justified, and
    so is a small dataset without that double win; a double win on a small
    dataset, a tie or a missing comparison is inconclusive.
    """
    ev = stages.get("evaluate")
    counts = samples_per_class(stages)
    smallest = min(counts, key=counts.get) if counts else None
    numbers: dict[str, Any] = {
        "samples_per_class": counts,
        "smallest_class": smallest,
        "min_per_class_guidance": MIN_PER_CLASS,
    }
    if not ev:
        return NOT_ASSESSED, "Not assessed: evaluate did not run.", numbers
    references = {
        "best tuned baseline": ev["best_baseline"]["model"],
        "shortcut control": SHORTCUT_CONTROL,
    }
    found = {part: _cnn_comparison(ev, model) for part, model in references.items()}
    numbers["comparisons"] = {
        part: {k: c[k] for k in ("reference", "outcome", "difference", "ci_low", "ci_high")}
        for part, c in found.items()
        if c
    }
    enough = smallest is not None and counts[smallest] >= MIN_PER_CLASS
    verdict, reason = _weigh(found, ev["bootstrap"]["ci_level"], enough, smallest is not None)
    size = (
        f"{counts[smallest]} training sequences in the smallest class ({smallest}), "
        f"{'at or above' if enough else 'below'} the paper's guidance of at least "
        f"{MIN_PER_CLASS} per class"
        if smallest
        else "no class counts recorded"
    )
    return verdict, f"{reason} Data: {size}.", numbers


def _weigh(
    found: dict[str, dict[str, Any] | None], level: float, enough: bool, counted: bool
) -> tuple[str, str]:
    """Tip 1's verdict and its reason from the comparisons with the two references."""
    described = {
        part: f"the {part} ({c['reference']}: {difference_text(c, level)})"
        for part, c in found.items()
        if c
    }
    by_outcome = {
        outcome: [described[p] for p, c in found.items() if c and c["outcome"] == outcome]
        for outcome in ("better", "worse", "no_difference")
    }
    better = " and ".join(by_outcome["better"])
    if by_outcome["worse"]:
        return (
            NOT_JUSTIFIED,
            f"Not justified: the CNN is worse than {' and '.join(by_outcome['worse'])}.",
        )
    if len(by_outcome["better"]) == len(found):
        if enough:
            return JUSTIFIED, f"Justified: the CNN beats {better}."
        return INCONCLUSIVE, f"Inconclusive: the CNN beats {better}, but on too little data."
    if counted and not enough:
        return NOT_JUSTIFIED, "Not justified: too little data, and the CNN shows no double win."
    reasons = [f"it cannot be told apart from {t}" for t in by_outcome["no_difference"]]
    reasons += [f"there is no comparison with the {part}" for part, c in found.items() if not c]
    won = f"the CNN beats {better}, but " if better else ""
    return INCONCLUSIVE, f"Inconclusive: {won}{'; '.join(reasons)}."


def shuffled_label_control(base: dict[str, Any] | None) -> dict[str, Any] | None:
    """Tip 7: the shuffled-label control over all its repeats (tune AUROC), flagged when
    clearly above chance; None when baselines recorded no repeats."""
    repeats = (base or {}).get("shuffled_control_aurocs") or []
    if not repeats:
        return None
    mean = sum(repeats) / len(repeats)
    flagged = min(repeats) > CHANCE_AUROC and mean > CHANCE_AUROC + SHUFFLED_MARGIN
    return {
        "repeats": len(repeats),
        "mean": mean,
        "min": min(repeats),
        "max": max(repeats),
        "chance": CHANCE_AUROC,
        "flagged": flagged,
        "text": f"shuffled-label control over {len(repeats)} repeats: tune AUROC mean "
        f"{mean:.3f} (range {min(repeats):.3f}-{max(repeats):.3f}; chance {CHANCE_AUROC})"
        + ("; clearly above chance: labels leak through something" if flagged else ""),
    }


def _test_value(ev: dict[str, Any], model: str) -> float | None:
    return ev["models"][model]["metrics"].get(ev["primary_metric"], {}).get("value")


def interpretability_tradeoff(stages: Stages) -> tuple[str, str, dict[str, Any]]:
    """Tip 8: the most interpretable tuned model against the best model on test.

    The best model is the best tuned baseline or CNN on the primary metric
    (controls are not candidates); the difference carries a paired interval
    when evaluate compared these two models. The paper's rule of thumb decides:
    giving up at most SMALL_LOSS (or no difference within the interval) makes
    the interpretable model the one to prefer.
    """
    ev, interp = stages.get("evaluate"), stages.get("interpret")
    if not (ev and interp):
        return NOT_ASSESSED, "Not assessed: evaluate or interpret did not run.", {}
    candidates = {
        m: _test_value(ev, m)
        for m, info in ev["models"].items()
        if info["role"] in (ROLE_BASELINE, ROLE_CNN, ROLE_SCRATCH)
        and _test_value(ev, m) is not None
    }
    readable = [m for m in INTERPRETABILITY if m in candidates and m in interp["baselines"]]
    if not readable:
        return NOT_ASSESSED, "Not assessed: no interpretable tuned family ran.", {}
    simple, best = readable[0], max(candidates, key=candidates.get)
    name, loss = ev["primary_metric"], candidates[best] - candidates[simple]
    interval = _paired_loss_interval(ev, best, simple)
    top = interp["baselines"][simple][:3]
    numbers = {
        "interpretable_model": simple,
        "best_model": best,
        "metric": name,
        "interpretable_value": candidates[simple],
        "best_value": candidates[best],
        "loss": loss,
        "loss_ci": interval,
        "small_loss": SMALL_LOSS,
        "top_features": top,
    }
    verdict, sentence = _tradeoff_answer(ev, simple, best, loss, interval, top)
    return verdict, sentence, numbers


def _tradeoff_answer(
    ev: dict[str, Any],
    simple: str,
    best: str,
    loss: float,
    interval: list[float] | None,
    top: list[dict[str, Any]],
) -> tuple[str, str]:
    """Tip 8's verdict and its sentence: the rule of thumb applied to the loss."""
    features = f"{simple}'s top features: " + ", ".join(
        f"{f['feature']} {f['importance']:.3g}"
        + (f" (favours {f['favours']})" if f["favours"] else "")
        for f in top
    )
    if best == simple:
        return INTERPRETABLE_IS_BEST, f"The most interpretable model is the best. {features}."
    name, models = ev["primary_metric"], ev["models"]
    within = (
        f"paired interval {interval[0]:+.3f} to {interval[1]:+.3f}"
        if interval
        else "no paired interval recorded by evaluate"
    )
    gap = (
        f"the most interpretable model, {simple} ({metric_name(name)} "
        f"{metric(models[simple], name)}), is {loss:.3f} below the best, {best} "
        f"({metric(models[best], name)}; {within})"
    )
    rule = f"the {SMALL_LOSS} a simpler model may give up (the paper's rule of thumb)"
    if loss <= SMALL_LOSS or (interval and interval[0] <= 0):
        return INTERPRETABLE_SUFFICES, f"Prefer {simple}: {gap}, at most {rule}. {features}."
    return (
        ACCURACY_NEEDS_COMPLEX_MODEL,
        f"The accuracy costs interpretability: {gap}, more than {rule}. {features}.",
    )


def _paired_loss_interval(ev: dict[str, Any], best: str, simple: str) -> list[float] | None:
    """The paired interval of best minus simple, when evaluate compared the two."""
    pair = next(
        (c for c in ev["comparisons"] if {c["candidate"], c["reference"]} == {best, simple}),
        None,
    )
    if pair is None:
        return None
    sign = 1 if pair["candidate"] == best else -1
    return sorted((sign * pair["ci_low"], sign * pair["ci_high"]))


def worst_failure_domains(ev: dict[str, Any], shown: int = 3) -> list[dict[str, Any]]:
    """Tip 9: the flagged groups of tuned models and the CNN with the largest drops (a
    control failing somewhere says little), each with group, size, metric and drop."""
    roles = {m: info["role"] for m, info in ev["models"].items()}
    flags = sorted(
        (
            f
            for f in ev["failure_flags"]
            if roles.get(f["model"]) in (ROLE_BASELINE, ROLE_CNN, ROLE_SCRATCH)
        ),
        key=lambda f: -f["drop"],
    )
    keys = (
        "model",
        "grouping",
        "grouping_kind",
        "group",
        "n",
        "metric",
        "value",
        "overall",
        "drop",
    )
    return [{k: flag[k] for k in keys} for flag in flags[:shown]]


def failure_text(flag: dict[str, Any]) -> str:
    return (
        f"{flag['model']} in {flag['grouping']} = {flag['group']} (n={flag['n']}): "
        f"{metric_name(flag['metric'])} {flag['value']:.3f} vs {flag['overall']:.3f} overall "
        f"(drop {flag['drop']:.3f})"
    )


def _pretraining_facts(
    pre: dict[str, Any], cnn: dict[str, Any] | None
) -> tuple[dict[str, Any], str]:
    """What the trunk learned from and what was removed first: masked residues on the
    unlabeled pool + train, or (pretrain.from) another dataset's train labels."""
    used = pre["sequences"]
    supervised = pre.get("kind") == "supervised"  # summaries before pretrain.from have none
    removed = used["source_train_removed" if supervised else "unlabeled_removed"]
    numbers: dict[str, Any] = {
        "pretraining": True,
        "objective": "supervised" if supervised else "masked",
        "sequences": used,
        "removed_homologs_of_tune": removed.get("pretrain_homolog_of_tune", 0),
        "removed_homologs_of_test": removed.get("pretrain_homolog_of_test", 0),
        "trunk_choice": (cnn or {}).get("pretrained", {}).get("choice"),
    }
    if supervised:
        numbers["source_dataset"] = used["source_dataset"]
        numbers["final_tune_accuracy"] = pre["final_tune_accuracy"]
        learned = (
            f"pre-trained on the labels of {used['source_train_used']} train sequences of "
            f"dataset '{used['source_dataset']}'"
        )
    else:
        numbers["final_tune_masked_accuracy"] = pre["final_tune_masked_accuracy"]
        learned = (
            f"pre-trained on {used['total']} sequences ({used['unlabeled_used']} unlabeled, "
            f"{used['train_used']} train"
        )
    facts = (
        f"{learned}{' (' if supervised else '; '}{numbers['removed_homologs_of_tune']} "
        f"homologues of tune and {numbers['removed_homologs_of_test']} of test removed "
        f"first), the search chose the trunk '{numbers['trunk_choice']}'"
    )
    return numbers, facts


def pretraining_verdict(stages: Stages) -> tuple[str | None, str, dict[str, Any]]:
    """Tip 5's transfer learning: what pre-training changed on test, as the paired
    comparison of the CNN (which could use the trunk) with the from-scratch CNN; None as
    the verdict when the dataset has no pre-training (the row keeps its status)."""
    pre, ev, cnn = stages.get("pretrain"), stages.get("evaluate"), stages.get("cnn")
    if not pre:
        return None, NO_PRETRAINING, {"pretraining": False}
    numbers, facts = _pretraining_facts(pre, cnn)
    found = next(
        (c for c in (ev or {}).get("comparisons", []) if c["reference_role"] == ROLE_SCRATCH),
        None,
    )
    if not found:
        return NOT_ASSESSED, f"Not assessed on test: {facts}.", numbers
    numbers["comparison"] = {
        k: found[k] for k in ("reference", "outcome", "difference", "ci_low", "ci_high")
    }
    change = difference_text(found, ev["bootstrap"]["ci_level"])
    said = {
        "better": "improved the CNN on test",
        "worse": "made the CNN worse on test",
        "no_difference": "changed nothing the interval can tell on test",
    }[found["outcome"]]
    answer = f"Pre-training {said} against the from-scratch CNN: {change}; {facts}."
    return PRETRAINING_OUTCOMES[found["outcome"]], answer, numbers
