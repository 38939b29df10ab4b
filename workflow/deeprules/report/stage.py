"""Rule report: read every stage's summary and write the reviewer's report files.

Inputs by the rule's names: one summary per stage (fetch, curate, explore,
split, baselines, cnn, evaluate, interpret) and `figures`, the PNGs to embed.
Outputs: html, scorecard (with the dataset's row for the summary page), dome,
reforms, model_card_md, model_card_html.
"""

from __future__ import annotations

import logging
from typing import Any

from deeprules.io import read_json, write_json
from deeprules.report.dome import dome
from deeprules.report.html import (
    embedded_markdown,
    figures,
    render_html,
    write_markdown_and_html,
)
from deeprules.report.model_card import model_card
from deeprules.report.provenance import provenance_section
from deeprules.report.reforms import Evidence, reforms
from deeprules.report.scorecard import scorecard
from deeprules.report.sensitive import shown_figures, withheld
from deeprules.report.summary import dataset_row
from deeprules.rule import Job

log = logging.getLogger("deeprules.report")


def run(job: Job) -> None:
    dataset, settings, out = job.dataset, job.settings, job.outputs
    stages = {name: read_json(path) for name, path in job.inputs.items() if name != "figures"}
    split, cnn = stages.get("split"), stages.get("cnn")
    card = scorecard(stages, dataset)
    card_md = model_card(stages, dataset)
    summary = dome(stages, dataset)
    provenance = provenance_section(
        stages["fetch"],
        settings["seed"],
        settings["deterministic"],
        split["mmseqs"]["version"] if split else None,
        cnn["device"]["used"] if cnn else None,
    )
    checklist = reforms(Evidence(stages, dataset, {t["tip"]: t for t in card}, provenance))
    write_json(
        out["scorecard"],
        {"dataset": dataset["name"], "tips": card, "summary": dataset_row(stages, dataset, card)},
    )
    write_json(out["dome"], {"dataset": dataset["name"], **summary})
    write_json(out["reforms"], {"dataset": dataset["name"], "modules": checklist})
    write_markdown_and_html(
        card_md, out["model_card_md"], out["model_card_html"], f"Model card: {dataset['name']}"
    )
    render_html(
        {
            "dataset": dataset["name"],
            "description": dataset.get("description", ""),  # optional, no schema default
            "scorecard": card,
            "model_card_html": embedded_markdown(card_md, heading_shift=1),
            "dome": _dome_html(summary),
            "reforms": checklist,
            "ethics": dataset["ethics"],
            "sensitive": dataset["sensitive"],
            "withheld": withheld(dataset["sensitive"]),
            "provenance": provenance,
            "figures": figures(shown_figures(job.inputs["figures"], dataset["sensitive"])),
        },
        out["html"],
    )
    log.info("report written to %s", out["html"])


def _dome_html(summary: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The DOME entries rendered for the page: a Markdown table becomes a table."""
    return {
        section: {key: embedded_markdown(str(value)) for key, value in entries.items()}
        for section, entries in summary.items()
    }
