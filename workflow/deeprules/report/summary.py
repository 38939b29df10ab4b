"""Several datasets, one page: a row per dataset with the numbers a reviewer compares first.

Each dataset's report stage writes its row into scorecard.json (`summary`); the
summary rule (report_summary) reads only those files, so it never reopens a
stage's outputs and reruns whenever one dataset's report changes.
"""

from __future__ import annotations

import logging
from typing import Any

from deeprules.io import read_json
from deeprules.report.facts import metric, metric_name
from deeprules.report.html import render_html
from deeprules.rule import Job

log = logging.getLogger("deeprules.report")
Stages = dict[str, Any]


def dataset_row(stages: Stages, dataset: dict[str, Any], tips: list[dict[str, Any]]) -> dict:
    """The dataset's line on the summary page; a stage that did not run leaves its cells
    empty."""
    curate, split = stages["curate"], stages.get("split")
    explore, ev = stages.get("explore"), stages.get("evaluate")
    tip1 = next(t for t in tips if t["tip"] == 1)
    row: dict[str, Any] = {
        "dataset": dataset["name"],
        "sequences": curate["records_kept"],
        "per_class": curate["labels"],
        "split": "",
        "leakage_pairs": None,
        "shortcut_floor_auroc": explore["floor"]["auroc"] if explore else None,
        "shortcut_floor_check": explore["floor"]["check"] if explore else "",
        "metric": "",
        "best_baseline": "",
        "best_baseline_test": "",
        "cnn_test": "",
        "tip1_verdict": tip1["verdict"],
        "tip1_answer": tip1["answer"],
    }
    if split:
        row["split"] = f"{split['method']} at {split['threshold']} identity"
        row["leakage_pairs"] = split["verification"]["pairs_at_or_above_threshold"]
    if ev:
        primary, best = ev["primary_metric"], ev["best_baseline"]["model"]
        cnn = [m for m, info in ev["models"].items() if info["role"] == "cnn"]
        row["metric"] = metric_name(primary)
        row["best_baseline"] = best or ""
        row["best_baseline_test"] = metric(ev["models"][best], primary) if best else ""
        row["cnn_test"] = metric(ev["models"][cnn[0]], primary) if cnn else ""
    return row


def run(job: Job) -> None:
    """Rule report_summary: every dataset's scorecard.json in, one HTML page out."""
    rows = [read_json(path)["summary"] for path in job.inputs["scorecards"]]
    render_html({"rows": rows}, job.outputs["html"], "summary.html.j2")
    log.info("summary of %d dataset(s) written to %s", len(rows), job.outputs["html"])
