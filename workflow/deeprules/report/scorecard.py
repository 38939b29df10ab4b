"""The Ten-Tips scorecard: one row per tip, what was done on this dataset, with numbers.

A failed explore check, leakage or a repeated test access is a warning, never
hidden; a stage that did not run is 'not done'. One function per tip, each
reading only the stage summaries it quotes.
"""

from __future__ import annotations

from typing import Any

from deeprules.report.facts import median_lengths, metric
from deeprules.report.split_shift import shift_evidence

DONE, WARNING, NOT_DONE = "done", "warning", "not_done"
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


def _tip(number: int, status: str, action: str, evidence: str) -> dict[str, Any]:
    return {
        "tip": number,
        "title": TIP_TITLES[number],
        "status": status,
        "action": action,
        "evidence": evidence,
    }


def tip1(stages: Stages, dataset: dict[str, Any]) -> dict[str, Any]:
    """The CNN must beat the best baseline and every control; a miss is shown, not hidden."""
    ev, base = stages.get("evaluate"), stages.get("baselines")
    if not (ev and base):
        return _tip(1, NOT_DONE, "no test comparison", "evaluate did not run")
    mine = [c for c in ev["comparisons"] if c["candidate"] == "cnn"]
    best = [c for c in mine if c["why"].startswith("best baseline")]
    misses = [c for c in mine if c["outcome"] != "better"]
    shown = best + [c for c in misses if c not in best]
    return _tip(
        1,
        WARNING if misses or not best else DONE,
        "CNN compared with the best tuned baseline and every control on test",
        " ".join(c["verdict"] for c in shown) or "no CNN comparison",
    )


def tip2(stages: Stages, dataset: dict[str, Any]) -> dict[str, Any]:
    base, cnn = stages.get("baselines"), stages.get("cnn")
    if not (base and cnn):
        return _tip(2, NOT_DONE, "baselines or CNN missing", "")
    families = sum(m["kind"] == "tuned" for m in base["models"].values())
    status = DONE if base["trials_per_family"] == cnn["tuning"]["trials_budget"] else WARNING
    return _tip(
        2,
        status,
        "traditional families tuned with the CNN's budget, plus controls",
        f"{families} baseline families x {base['trials_per_family']} trials, "
        f"CNN {cnn['tuning']['trials']} trials; best baseline {base['best_model']}",
    )


def tip3(stages: Stages, dataset: dict[str, Any]) -> dict[str, Any]:
    cnn = stages.get("cnn")
    if not cnn:
        return _tip(3, NOT_DONE, "CNN did not run", "")
    repro = cnn["reproducibility"]
    return _tip(
        3,
        DONE if repro["deterministic"] else WARNING,
        "seeds everywhere; deterministic TensorFlow ops; device recorded",
        f"seed {repro['seed']}, deterministic ops {repro['op_determinism']}, "
        f"device {cnn['device']['used']}",
    )


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
    )


def tip5(stages: Stages, dataset: dict[str, Any]) -> dict[str, Any]:
    cnn = stages.get("cnn")
    if not cnn:
        return _tip(5, NOT_DONE, "CNN did not run", "")
    enc = cnn["encoding"]
    return _tip(
        5,
        DONE,
        "one-hot sequences into a convolutional network",
        f"one-hot {enc['sequence_type']}, length {enc['length']} "
        f"({enc['length_source']}), padding {enc['padding']}",
    )


def tip6(stages: Stages, dataset: dict[str, Any]) -> dict[str, Any]:
    cnn = stages.get("cnn")
    if not cnn:
        return _tip(6, NOT_DONE, "CNN did not run", "")
    return _tip(
        6,
        DONE,
        f"Keras Tuner {cnn['tuning']['tuner']} on the tune partition",
        f"{cnn['tuning']['trials']} trials, best tune AUC {cnn['best_trial']['tune_auc']:.3f}",
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
    shuffled = ev["models"].get("control_shuffled")
    if shuffled:
        parts.append(f"shuffled-label AUROC {metric(shuffled, 'auroc')}")
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
    status = WARNING if leaks or access > 1 or overfit or shifted else DONE
    return _tip(7, status, f"{split['method']} split; test partition opened once", "; ".join(parts))


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
    interp = stages.get("interpret")
    if not interp:
        return _tip(8, NOT_DONE, "interpret missing", "")
    parts = ["baseline importances"] + (
        ["CNN attributions and filter logos"] if "cnn" in interp else []
    )
    return _tip(
        8, DONE, "; ".join(parts), f"top features of {len(interp['baselines'])} baseline models"
    )


def tip9(stages: Stages, dataset: dict[str, Any]) -> dict[str, Any]:
    ev = stages.get("evaluate")
    if not ev:
        return _tip(9, NOT_DONE, "evaluate missing", "")
    flags = ev["failure_flags"]
    return _tip(
        9,
        WARNING if flags else DONE,
        "metrics per metadata group, length bin and identity-to-train bin",
        f"{len(flags)} group(s) where the primary metric drops",
    )


def tip10(stages: Stages, dataset: dict[str, Any]) -> dict[str, Any]:
    open_concerns = [e for e in dataset["ethics"] if e["status"] == "open"]
    return _tip(
        10,
        WARNING if open_concerns or not dataset["ethics"] else DONE,
        "ethics register and model card",
        f"{len(dataset['ethics'])} register entries, {len(open_concerns)} open; "
        f"sensitive data: {'yes' if dataset['sensitive'] else 'no'}",
    )


TIPS = (tip1, tip2, tip3, tip4, tip5, tip6, tip7, tip8, tip9, tip10)


def scorecard(stages: Stages, dataset: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per tip, in the paper's order; `stages` maps a stage to its summary
    (absent when the stage did not run)."""
    return [tip(stages, dataset) for tip in TIPS]
