"""The report: built on the tiny run, opened in a real headless Chromium, rebuilt identically."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import run_workflow

from deeprules.io import read_json

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium through Selenium; skipped, saying why, where it is not installed."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip("Debian's chromium / chromium-driver missing (make test installs them as root)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,2000",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def test_scorecard_and_every_figure_render(tiny_run, browser):
    workdir, _ = tiny_run
    results = workdir / "results" / "tiny"
    page = results / "report" / "report.html"
    browser.get(page.as_uri())
    rows = browser.execute_script(
        "return Array.from(document.querySelectorAll('#scorecard-table tr')).slice(1)"
        ".map(r => [r.cells[0].innerText, r.cells[1].innerText]);"
    )
    assert [int(tip.split(".")[0]) for tip, _ in rows] == list(range(1, 11))
    assert {status for _, status in rows} <= {"done", "warning", "not done"}
    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.alt, i.complete && i.naturalWidth > 0]);"
    )
    pngs = [p for p in results.glob("*/**/*.png") if p.parts[-2] != "report"]
    assert len(images) == len(pngs) > 5
    assert all(loaded for _, loaded in images), [alt for alt, loaded in images if not loaded]
    shot = results / "report" / "screenshot.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000


def test_scorecard_evidence_matches_the_stages(tiny_run):
    results = tiny_run[0] / "results" / "tiny"
    tips = {t["tip"]: t for t in read_json(results / "report/scorecard.json")["tips"]}
    split = read_json(results / "split/split_report.json")
    assert (
        f"{split['verification']['pairs_at_or_above_threshold']} cross-partition pairs"
        in tips[7]["evidence"]
    )
    assert "test evaluated 1 time(s)" in tips[7]["evidence"]
    assert "x 2 trials, CNN 2 trials" in tips[2]["evidence"]
    card = (results / "report/model_card.md").read_text()
    for section in (
        "Model details",
        "Intended use",
        "Factors",
        "Metrics",
        "Evaluation data",
        "Training data",
        "Quantitative analyses",
        "Ethical considerations",
        "Caveats and recommendations",
    ):
        assert f"## {section}" in card
    dome = read_json(results / "report/dome.json")
    assert set(dome) >= {"data", "optimization", "model", "evaluation"}


def test_rebuilding_gives_the_same_content(tiny_run, tmp_path):
    """From results alone: the report rule rerun, and Snakemake's report built twice."""
    workdir, _ = tiny_run
    report_dir = workdir / "results" / "tiny" / "report"
    before = {p.name: p.read_bytes() for p in report_dir.iterdir() if p.name != "screenshot.png"}
    rerun = run_workflow(workdir, "--forcerun", "report")
    assert "rule report" in rerun.stdout + rerun.stderr
    assert "rule evaluate" not in rerun.stdout + rerun.stderr
    after = {p.name: p.read_bytes() for p in report_dir.iterdir() if p.name != "screenshot.png"}
    assert after == before
    first, second = tmp_path / "first.html", tmp_path / "second.html"
    run_workflow(workdir, "--report", str(first))
    run_workflow(workdir, "--report", str(second))
    assert first.stat().st_size > 100_000
    assert _without_timestamps(first) == _without_timestamps(second)
    shutil.copy(first, workdir / "results" / "report.html")


def _without_timestamps(path: Path) -> str:
    import re

    text = path.read_text()
    return re.sub(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?", "<time>", text)


def test_sensitive_dataset_model_card_forbids_sharing_weights():
    from deeprules.report.model_card import model_card
    from deeprules.report.scorecard import scorecard

    curate = {
        "metadata_columns": [],
        "records_kept": 10,
        "labels": {"a": 5, "b": 5},
        "records_dropped": 0,
        "dropped_per_reason": {},
    }
    dataset = {  # as deeprules.config.report_settings passes it: no sources
        "name": "patients",
        "sequence_type": "dna",
        "sensitive": True,
        "ethics": [{"concern": "Human genetic data.", "status": "open", "resolution": "IRB 12"}],
    }
    stages = {"fetch": {"sources": [{"name": "s"}]}, "curate": curate}
    card = model_card(stages, dataset)
    assert "weights and per-sequence predictions must not be shared" in card
    assert "- Human genetic data. (open) IRB 12" in card
    assert "curated sequences ({'a': 5, 'b': 5}) from s;" in card
    tips = {t["tip"]: t for t in scorecard(stages, dataset)}
    assert tips[10]["status"] == "warning" and "1 open" in tips[10]["evidence"]
    assert tips[7]["status"] == "not_done"


def test_tip7_warns_when_the_split_shifted_lengths():
    from deeprules.report.scorecard import length_shift as _length_shift

    def split(train: float, test: float) -> dict:
        parts = {"train": train, "tune": 30.0, "test": test}
        return {
            "partitions": {k: {"length_quartiles": [v - 5, v, v + 5]} for k, v in parts.items()}
        }

    assert "train/tune/test 25/30/44" in _length_shift(split(25.0, 44.0))
    assert _length_shift(split(25.0, 30.0)) == ""
    assert _length_shift({"partitions": {"train": {}, "test": {}}}) == ""


def test_tip1_reads_evaluate_outcomes_and_shows_every_miss():
    """Tip 1 warns unless the CNN is better than the best baseline and every control."""
    from deeprules.report.scorecard import tip1

    def comparison(reference: str, why: str, outcome: str) -> dict:
        return {
            "candidate": "cnn",
            "reference": reference,
            "why": why,
            "outcome": outcome,
            "verdict": f"CNN vs {reference}: {outcome}.",
        }

    best = comparison("random_forest", "best baseline on tune", "better")
    control = comparison("control_shortcut", "control", "better")
    stages = {
        "baselines": {"best_model": "random_forest"},
        "evaluate": {"comparisons": [best, control]},
    }
    tip = tip1(stages, {})
    assert tip["status"] == "done" and tip["evidence"] == "CNN vs random_forest: better."
    control.update(outcome="no_difference", verdict="CNN vs control_shortcut: no_difference.")
    tip = tip1(stages, {})
    assert tip["status"] == "warning"
    assert tip["evidence"] == (
        "CNN vs random_forest: better. CNN vs control_shortcut: no_difference."
    )
    assert tip1({"evaluate": stages["evaluate"]}, {})["status"] == "not_done"


def test_figures_embeds_exactly_the_given_pngs_by_stage_and_name(tmp_path):
    import base64

    from deeprules.report.html import figures

    paths = [tmp_path / "tiny/split/identity.png", tmp_path / "tiny/explore/pca_plot.png"]
    for index, path in enumerate(paths):
        path.parent.mkdir(parents=True)
        path.write_bytes(b"png %d" % index)
    (tmp_path / "tiny/explore/not_asked.png").write_bytes(b"other")
    shown = figures(paths)
    assert [(f["stage"], f["name"]) for f in shown] == [
        ("explore", "pca plot"),
        ("split", "identity"),
    ]
    assert base64.b64decode(shown[0]["data"]) == b"png 1"
