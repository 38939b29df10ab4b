"""The report: built on the tiny run, opened in a real headless Chromium, rebuilt identically."""

from __future__ import annotations

import json
import re
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
        "--window-size=1280,2000",  # the narrowest screen the page must fit
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


MARKUP = ("<h1", "<h2", "<h3", "<p>", "</td>", "<tr", "<table", "| --- |", "|---|", "&lt;", "&amp;")
# Python containers printed as text ({'AMP': 12}, ['a', 'b']) instead of words
PYTHON_TEXT = ("{'", "['", "'}")
COMPARISON_FIGURES = ("roc", "pr", "calibration", "confusion", "failure domains")


def _styles_of(image_src: str) -> dict:
    """The model styles evaluate wrote into a figure's PNG metadata, read from the image
    exactly as the page embeds it."""
    import base64
    import io
    import json

    from PIL import Image

    data = base64.b64decode(image_src.split(",", 1)[1])
    return json.loads(Image.open(io.BytesIO(data)).text["Description"])


def _screenshots(browser, folder: Path, anchors: list[str]) -> list[Path]:
    """One screenshot per section (scrolled to its anchor), kept as test artifacts."""
    shots = []
    for anchor in anchors:
        browser.execute_script(f"document.getElementById('{anchor}').scrollIntoView()")
        shot = folder / f"{anchor}.png"
        browser.save_screenshot(str(shot))
        shots.append(shot)
    print(f"report screenshots: {folder}")
    return shots


def test_a_reader_sees_formatted_sections_readable_figures_and_no_markup(
    tiny_run, browser, artifacts
):
    """What a reader sees in Chromium at 1280 px: no markup as text, the model card's
    headings as headings, DOME and REFORMS as tables, every image loaded, nothing
    wider than the window, and the CNN and shortcut control drawn in different colours."""
    page = tiny_run[0] / "results" / "tiny" / "report" / "report.html"
    browser.get(page.as_uri())
    text = browser.execute_script("return document.body.innerText;")
    assert not [m for m in MARKUP if m in text], [m for m in MARKUP if m in text]
    printed = [line for line in text.splitlines() if any(p in line for p in PYTHON_TEXT)]
    assert not printed, printed
    headings = browser.execute_script(
        "return Array.from(document.querySelectorAll('#model-card h2, #model-card h3'))"
        ".map(h => h.innerText);"
    )
    for section in ("Model details", "Intended use", "Metrics", "Quantitative analyses"):
        assert section in headings
    assert browser.execute_script("return document.querySelectorAll('#model-card table').length")
    assert browser.execute_script("return document.querySelectorAll('#dome-table table').length")
    reforms = browser.execute_script(
        "return Array.from(document.querySelectorAll('#reforms-table tr'))"
        ".filter(r => r.cells.length === 4 && r.cells[0].tagName === 'TD')"
        ".map(r => [r.cells[0].innerText, r.cells[2].innerText]);"
    )
    assert len(reforms) == 32 and all(answer for _, answer in reforms)
    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.alt, i.complete && i.naturalWidth > 0,"
        " i.src]);"
    )
    assert all(loaded for _, loaded, _ in images), [alt for alt, ok, _ in images if not ok]
    widths = browser.execute_script(
        "return [document.documentElement.scrollWidth, window.innerWidth];"
    )
    assert widths[0] <= widths[1] <= 1280, widths
    compared = [(alt, _styles_of(src)) for alt, _, src in images if alt in COMPARISON_FIGURES]
    assert sorted(alt for alt, _ in compared) == sorted(COMPARISON_FIGURES)
    for alt, styles in compared:
        cnn, shortcut = styles["cnn"], styles["control_shortcut"]
        assert cnn["colour"] != shortcut["colour"] and cnn["line"] != shortcut["line"], alt
        assert cnn["emphasised"] and shortcut["emphasised"], alt
    for shot in _screenshots(browser, artifacts, ["scorecard", "model-card", "dome", "reforms"]):
        assert shot.stat().st_size > 10_000


def test_the_summary_page_has_a_row_per_dataset(tiny_run, browser, artifacts):
    results = tiny_run[0] / "results"
    browser.get((results / "summary.html").as_uri())
    rows = browser.execute_script(
        "return Array.from(document.querySelectorAll('#summary-table tr[data-dataset]'))"
        ".map(r => [r.dataset.dataset, r.cells[6].dataset.verdict, r.innerText]);"
    )
    tips = {t["tip"]: t for t in read_json(results / "tiny/report/scorecard.json")["tips"]}
    assert [(name, verdict) for name, verdict, _ in rows] == [("tiny", tips[1]["verdict"])]
    assert tips[1]["answer"] in rows[0][2]
    assert browser.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth;"
    )
    browser.save_screenshot(str(artifacts / "summary.png"))
    print(f"summary screenshot: {artifacts / 'summary.png'}")


def test_every_tip_has_a_verdict_from_its_enum_and_numbers(tiny_run):
    from deeprules.report.scorecard import VERDICTS

    results = tiny_run[0] / "results" / "tiny"
    tips = read_json(results / "report/scorecard.json")["tips"]
    assert [t["tip"] for t in tips] == list(range(1, 11))
    for tip in tips:
        assert tip["verdict"] in VERDICTS[tip["tip"]], tip
    for number in (1, 2, 4, 7, 8, 9, 10):
        assert tips[number - 1]["numbers"], number
    for number in (1, 2, 8, 9):
        assert tips[number - 1]["answer"], number


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
    assert "10 curated sequences (a 5, b 5) from s;" in card
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


def test_tip7_states_the_sizes_reached_next_to_the_fractions_asked():
    """amp's default split: whole homology groups leave test at 10% of the kept, not 15%."""
    from deeprules.report.scorecard import partition_sizes

    sizes = {"train": 3142, "tune": 554, "test": 402}
    split = {
        "partitions": {k: {"sequences": n, "fraction": n / 4098} for k, n in sizes.items()},
        "target_fractions": {"train": 0.7, "tune": 0.15, "test": 0.15},
    }
    assert partition_sizes(split) == (
        "train/tune/test 3,142/554/402 sequences (77/14/10% of those kept; asked 70/15/15%)"
    )


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
            "metric": "auroc",
            "difference": 0.1,
            "ci_low": 0.05,
            "ci_high": 0.15,
        }

    best = comparison("random_forest", "best baseline on tune", "better")
    control = comparison("control_shortcut", "control", "better")
    stages = {
        "baselines": {"best_model": "random_forest"},
        "evaluate": {
            "comparisons": [best, control],
            "bootstrap": {"ci_level": 0.95},
            "best_baseline": {"model": "random_forest"},
        },
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


# --- verdicts from numbers ------------------------------------------------------------


def _comparison(reference: str, outcome: str, difference: float = 0.1) -> dict:
    low, high = {"better": (0.05, 0.2), "worse": (-0.2, -0.05)}.get(outcome, (-0.05, 0.1))
    return {
        "candidate": "cnn",
        "reference": reference,
        "why": "",
        "metric": "auroc",
        "outcome": outcome,
        "difference": difference,
        "ci_low": low,
        "ci_high": high,
        "verdict": f"{reference}: {outcome}",
    }


def _stages(per_class: int, best: str, shortcut: str) -> dict:
    """Just what Tip 1 reads: train class counts and the CNN's two comparisons."""
    return {
        "split": {"partitions": {"train": {"label_counts": {"a": per_class, "b": 500}}}},
        "evaluate": {
            "bootstrap": {"ci_level": 0.95},
            "best_baseline": {"model": "random_forest"},
            "comparisons": [
                _comparison("random_forest", best),
                _comparison("control_shortcut", shortcut),
            ],
        },
    }


@pytest.mark.parametrize(
    ("per_class", "best", "shortcut", "verdict"),
    [
        (150, "better", "better", "justified"),
        (150, "better", "no_difference", "inconclusive"),
        (150, "no_difference", "better", "inconclusive"),
        (150, "worse", "better", "not_justified"),
        (150, "better", "worse", "not_justified"),
        (60, "better", "better", "inconclusive"),
        (60, "no_difference", "better", "not_justified"),
    ],
)
def test_tip1_verdict_weighs_data_size_and_both_comparisons(per_class, best, shortcut, verdict):
    from deeprules.report.verdicts import deep_learning_verdict

    found, sentence, numbers = deep_learning_verdict(_stages(per_class, best, shortcut))
    assert found == verdict
    assert sentence.startswith(verdict.replace("_", " ").capitalize() + ":")
    assert f"{per_class} training sequences in the smallest class (a)" in sentence
    assert numbers["samples_per_class"] == {"a": per_class, "b": 500}
    assert numbers["comparisons"]["shortcut control"]["outcome"] == shortcut


def test_tip1_without_a_shortcut_comparison_is_inconclusive_and_says_so():
    from deeprules.report.verdicts import deep_learning_verdict

    stages = _stages(150, "better", "better")
    stages["evaluate"]["comparisons"].pop()
    verdict, sentence, _ = deep_learning_verdict(stages)
    assert verdict == "inconclusive" and "no comparison with the shortcut control" in sentence


def _panel(value: float) -> dict:
    return {"auroc": {"value": value, "ci_low": value - 0.05, "ci_high": value + 0.05}}


def test_tip2_names_the_best_tuned_family_never_a_control():
    from deeprules.report.scorecard import tip2

    base = {
        "models": {
            "knn": {"kind": "tuned", "tune": {"auroc": 0.81}},
            "control_shortcut": {"kind": "control", "tune": {"auroc": 0.95}},
        },
        "trials_per_family": 4,
        "best_model": "control_shortcut",
        "best_tuned": {"model": "knn"},
        "primary_metric": "auroc",
    }
    cnn = {"tuning": {"trials": 4, "trials_budget": 4}}
    ev = {"best_baseline": {"model": "knn", "metric": "auroc", "tune_scores": {"knn": 0.81}}}
    tip = tip2({"baselines": base, "cnn": cnn, "evaluate": ev}, {})
    assert tip["verdict"] == "equal_budgets" and tip["numbers"]["best_tuned_family"] == "knn"
    assert "control" not in tip["answer"] and "knn (AUROC 0.810 on tune)" in tip["evidence"]
    assert tip["numbers"]["approximations"] == [] and "affordable" not in tip["evidence"]
    cnn["tuning"]["trials_budget"] = 8
    assert tip2({"baselines": base, "cnn": cnn}, {})["verdict"] == "unequal_budgets"


def test_tip2_names_every_approximation_the_baselines_used():
    """A large training set's affordable forms and a hashed k-mer size are named in Tip 2's
    evidence and numbers, as baselines/summary.json records them."""
    from deeprules.report.scorecard import tip2

    base = {
        "models": {"knn": {"kind": "tuned", "tune": {"auroc": 0.7}}},
        "trials_per_family": 4,
        "best_tuned": {"model": "knn"},
        "primary_metric": "auroc",
        "features": {
            "hashed_kmers": [{"k": 9, "columns": 65536, "colliding_share": 0.9826}],
        },
        "approximations": {
            "used": {"knn": "reference subsample 5,000 of 14,000 (class-stratified, seed 1)"}
        },
    }
    ev = {"best_baseline": {"model": "knn", "metric": "auroc", "tune_scores": {"knn": 0.7}}}
    tip = tip2(
        {"baselines": base, "cnn": {"tuning": {"trials": 4, "trials_budget": 4}}, "evaluate": ev},
        {},
    )
    assert "knn reference subsample 5,000 of 14,000 (class-stratified" in tip["evidence"]
    assert "9-mers hashed into 65,536 columns (98.3% of the training 9-mers" in tip["evidence"]
    assert len(tip["numbers"]["approximations"]) == 2


def tip2_summaries(record: dict) -> tuple[dict, dict]:
    """The baselines' and the CNN's summaries as Tip 2 reads them, both with `record` as
    their trials' subsample record."""
    base = {
        "models": {"knn": {"kind": "tuned", "tune": {"auroc": 0.7}}},
        "trials_per_family": 4,
        "best_tuned": {"model": "knn"},
        "primary_metric": "auroc",
        "trial_subsample": record,
    }
    return base, {"tuning": {"trials": 4, "trials_budget": 4, "trial_subsample": dict(record)}}


def test_tip2_names_the_trials_subsample_and_warns_when_the_stages_differ():
    """Above budget.trial_subsample.above_sequences Tip 2 says what every trial fitted on;
    a CNN whose trials saw more sequences than the baselines' had a larger budget."""
    from deeprules.report.scorecard import tip2

    how = (
        "every trial fitted on 2,000 of 14,000 training sequences (class-stratified, seed 42), "
        "scored on all of tune; the chosen configuration refitted on all of train and scored "
        "on all of tune"
    )
    record = {"trial_sequences": 2000, "subsampled": True, "how": how}
    base, cnn = tip2_summaries(record)
    tip = tip2({"baselines": base, "cnn": cnn}, {})
    assert tip["verdict"] == "equal_budgets"
    assert f"baselines and CNN: {how}" in tip["evidence"]
    assert tip["numbers"]["trial_subsample"].endswith("scored on all of tune")
    cnn["tuning"]["trial_subsample"] = {"trial_sequences": 14000, "subsampled": False}
    assert tip2({"baselines": base, "cnn": cnn}, {})["verdict"] == "unequal_budgets"


def test_tip2_names_the_trials_tune_sample_and_warns_when_the_stages_scored_on_more():
    """Above budget.trial_subsample.tune_sequences Tip 2 says what every trial was scored
    on; a CNN whose trials were scored on another number of tune sequences than the
    baselines' was not tuned on the same data (a summary without the count is older)."""
    from deeprules.report.scorecard import tip2

    how = (
        "every trial fitted on 2,000 of 70,000 training sequences (class-stratified, seed 42), "
        "scored on 3,000 of 15,000 tune sequences (class-stratified, seed 42); the chosen "
        "configuration refitted on all of train and scored on all of tune"
    )
    record = {
        "trial_sequences": 2000,
        "subsampled": True,
        "trial_tune_sequences": 3000,
        "tune_subsampled": True,
        "how": how,
    }
    base, cnn = tip2_summaries(record)
    tip = tip2({"baselines": base, "cnn": cnn}, {})
    assert tip["verdict"] == "equal_budgets"
    assert f"baselines and CNN: {how}" in tip["evidence"]
    only_tune = {**record, "subsampled": False, "trial_sequences": 70000}
    base["trial_subsample"] = only_tune
    cnn["tuning"]["trial_subsample"] = dict(only_tune)
    assert (
        "scored on 3,000 of 15,000 tune sequences"
        in tip2({"baselines": base, "cnn": cnn}, {})["numbers"]["trial_subsample"]
    )
    cnn["tuning"]["trial_subsample"]["trial_tune_sequences"] = 15000
    assert tip2({"baselines": base, "cnn": cnn}, {})["verdict"] == "unequal_budgets"


def test_tip7_reports_the_shuffled_control_over_its_repeats_and_flags_a_leak():
    from deeprules.report.verdicts import shuffled_label_control

    spread = shuffled_label_control({"shuffled_control_aurocs": [0.45, 0.48, 0.61, 0.40, 0.62]})
    assert spread["repeats"] == 5 and spread["mean"] == pytest.approx(0.512)
    assert (spread["min"], spread["max"], spread["flagged"]) == (0.40, 0.62, False)
    assert "mean 0.512 (range 0.400-0.620" in spread["text"]
    leak = shuffled_label_control({"shuffled_control_aurocs": [0.62, 0.66, 0.7]})
    assert leak["flagged"] and "clearly above chance" in leak["text"]
    assert shuffled_label_control({}) is None


def _tradeoff_stages(simple: float, best: float, pair: dict | None = None) -> dict:
    models = {
        "logistic_regression": {"role": "baseline", "metrics": _panel(simple)},
        "random_forest": {"role": "baseline", "metrics": _panel(best - 0.01)},
        "cnn": {"role": "cnn", "metrics": _panel(best)},
        "control_shortcut": {"role": "control", "metrics": _panel(0.99)},
    }
    coefficient = {"feature": "kmer_K", "importance": 2.5, "favours": "amp"}
    return {
        "evaluate": {
            "primary_metric": "auroc",
            "models": models,
            "comparisons": [pair] if pair else [],
        },
        "interpret": {"baselines": {"logistic_regression": [coefficient], "random_forest": []}},
    }


def test_tip8_applies_the_rule_of_thumb_to_the_most_interpretable_model():
    from deeprules.report.verdicts import interpretability_tradeoff

    verdict, sentence, numbers = interpretability_tradeoff(_tradeoff_stages(0.89, 0.9))
    assert verdict == "interpretable_model_suffices"  # a control is never "the best model"
    assert (
        numbers["best_model"] == "cnn" and numbers["interpretable_model"] == "logistic_regression"
    )
    assert numbers["loss"] == pytest.approx(0.01) and "kmer_K 2.5 (favours amp)" in sentence
    verdict, sentence, numbers = interpretability_tradeoff(_tradeoff_stages(0.7, 0.9))
    assert verdict == "accuracy_needs_complex_model" and numbers["loss_ci"] is None
    pair = {"candidate": "cnn", "reference": "logistic_regression", "ci_low": -0.01, "ci_high": 0.4}
    verdict, sentence, numbers = interpretability_tradeoff(_tradeoff_stages(0.7, 0.9, pair))
    assert verdict == "interpretable_model_suffices" and numbers["loss_ci"] == [-0.01, 0.4]
    assert "paired interval -0.010 to +0.400" in sentence


def test_tip9_names_the_worst_failure_domains_of_real_models():
    from deeprules.report.scorecard import tip9

    def flag(model: str, group: str, drop: float) -> dict:
        return {
            "model": model,
            "grouping": "metadata: source",
            "grouping_kind": "metadata",
            "group": group,
            "n": 12,
            "metric": "balanced_accuracy",
            "value": 0.8 - drop,
            "overall": 0.8,
            "drop": drop,
        }

    ev = {
        "models": {
            "cnn": {"role": "cnn"},
            "knn": {"role": "baseline"},
            "control_majority": {"role": "control"},
        },
        "failure_flags": [
            flag("knn", "lab A", 0.2),
            flag("control_majority", "lab B", 0.5),
            flag("cnn", "lab C", 0.3),
        ],
        "flag_limits": {"failure_drop": 0.1},
    }
    tip = tip9({"evaluate": ev}, {})
    assert tip["verdict"] == "failure_domains_found" and tip["numbers"]["flags"] == 3
    assert [w["group"] for w in tip["numbers"]["worst"]] == ["lab C", "lab A"]
    assert tip["answer"].startswith(
        "Worst: cnn in metadata: source = lab C (n=12): balanced accuracy 0.500 vs 0.800 overall "
        "(drop 0.300)"
    )
    ev["failure_flags"] = []
    assert tip9({"evaluate": ev}, {})["verdict"] == "no_failure_domain"


# --- rendering and the checklists -------------------------------------------------------


def test_embedded_markdown_renders_headings_one_level_down_tables_and_escapes_text():
    from markupsafe import Markup

    from deeprules.report.html import embedded_markdown

    shown = embedded_markdown("# Card\n\n## Part\n\n| a | b |\n|---|---|\n| 1 | x<y |\n", 1)
    assert isinstance(shown, Markup)
    assert "<h2>Card</h2>" in shown and "<h3>Part</h3>" in shown
    assert "<table>" in shown and "<td>x&lt;y</td>" in shown


def test_the_reforms_checklist_has_32_items_in_8_modules_each_answered_or_marked():
    from deeprules.report.reforms import ANSWERS, checklist

    modules = checklist()
    items = [item for module in modules for item in module["items"]]
    assert [m["module"] for m in modules] == [
        "Study goals",
        "Computational reproducibility",
        "Data quality",
        "Data preprocessing",
        "Modelling",
        "Data leakage",
        "Metrics and uncertainty",
        "Generalisability and limitations",
    ]
    assert len(items) == 32 and len({i["id"] for i in items}) == 32
    for item in items:
        assert item["answered"] in {"run", "partly", "user"}, item
        assert (item["id"] in ANSWERS) == (item["answered"] != "user"), item
        assert bool(item.get("user_must_add")) == (item["answered"] != "run"), item
    assert set(ANSWERS) <= {i["id"] for i in items}


def test_a_reforms_answer_whose_stage_did_not_run_says_so():
    from deeprules.report.reforms import NOT_ANSWERED, Evidence, answer_item

    evidence = Evidence({"curate": {}}, {"name": "x"}, {}, {})
    item = {"id": "7b", "item": "uncertainty", "answered": "run"}
    assert (
        answer_item(item, evidence)["answer"] == f"{NOT_ANSWERED}: the evaluate stage did not run"
    )
    user = {"id": "1a", "item": "population", "answered": "user", "user_must_add": "the claim"}
    assert answer_item(user, evidence)["answer"] == NOT_ANSWERED


def test_the_summary_page_lists_every_dataset_given(tmp_path):
    from deeprules.io import write_json
    from deeprules.report.summary import run
    from deeprules.rule import Job

    paths = []
    for name, verdict in (("amp", "inconclusive"), ("tf", "justified")):
        row = {
            "dataset": name,
            "sequences": 10,
            "per_class": {"a": 5, "b": 5},
            "split": "homology at 0.3 identity",
            "leakage_pairs": 0,
            "shortcut_floor_auroc": 0.6,
            "shortcut_floor_check": "length",
            "metric": "AUROC",
            "best_baseline": "knn",
            "best_baseline_test": "0.7 [0.6, 0.8]",
            "cnn_test": "0.9 [0.8, 1.0]",
            "tip1_verdict": verdict,
            "tip1_answer": "because",
        }
        paths.append(tmp_path / name / "scorecard.json")
        write_json(paths[-1], {"summary": row})
    page = tmp_path / "summary.html"
    run(Job(inputs={"scorecards": paths}, outputs={"html": page}, settings={}))
    html = page.read_text()
    assert html.count("<tr data-dataset=") == 2 and 'href="tf/report/report.html"' in html
    assert 'data-verdict="justified"' in html and "0.600 (length)" in html


def test_tip7_states_the_access_count_from_the_ledger():
    """The Tip 7 row says how often test was opened, not a fixed 'once'."""
    from deeprules.report.scorecard import tip7

    split = {
        "verification": {"pairs_at_or_above_threshold": 0},
        "threshold": 0.8,
        "method": "homology",
        "partitions": {},
    }
    evaluate = {"test_access": {"access_count": 1}, "models": {}, "overfitting_flags": []}
    tip = tip7({"split": split, "evaluate": evaluate}, {})
    assert tip["action"] == "homology split; test partition opened once"
    assert tip["status"] == "done"
    evaluate["test_access"]["access_count"] = 3
    tip = tip7({"split": split, "evaluate": evaluate}, {})
    assert tip["action"] == "homology split; test partition opened 3 times"
    assert tip["status"] == "warning" and "test evaluated 3 time(s)" in tip["evidence"]


def test_sensitive_report_withholds_sequences_weights_and_filters_and_says_so(tmp_path):
    """With sensitive: true the page embeds no figure showing sequences, weights, filters or
    one point per sequence, and lists what it left out (Tip 10)."""
    import base64

    from deeprules.report import run
    from deeprules.rule import Job

    fetch = {
        "sources": [
            {
                "name": "s",
                "kind": "local",
                "sha256": "0" * 64,
                "pinned": True,
                "retrieved_at": "2026-01-01T00:00:00+00:00",
            }
        ],
        "tools": {"python": "3"},
        "workflow": {"version": "0", "git_commit": None},
    }
    curate = {
        "metadata_columns": [],
        "records_kept": 10,
        "labels": {"a": 5, "b": 5},
        "records_read": 10,
        "records_read_per_source": {"s": 10},
        "records_dropped": 0,
        "dropped_per_reason": {},
    }
    inputs = {}
    for name, summary in (("fetch", fetch), ("curate", curate)):
        inputs[name] = tmp_path / f"{name}.json"
        inputs[name].write_text(json.dumps(summary))
    figures = []
    for stage, figure in (
        ("explore", "lengths"),
        ("explore", "pca"),
        ("evaluate", "roc"),
        ("interpret", "attributions"),
        ("interpret", "filter_logos"),
        ("interpret", "baseline_importance"),
    ):
        path = tmp_path / stage / f"{figure}.png"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(f"png of {stage}/{figure}".encode())
        figures.append(path)
    inputs["figures"] = figures
    dataset = {"name": "patients", "sequence_type": "dna", "ethics": [], "sensitive": True}
    for sensitive in (False, True):
        out = tmp_path / f"sensitive_{sensitive}"
        outputs = {
            "html": out / "report.html",
            "scorecard": out / "scorecard.json",
            "dome": out / "dome.json",
            "reforms": out / "reforms.json",
            "model_card_md": out / "model_card.md",
            "model_card_html": out / "model_card.html",
        }
        settings = {
            "dataset": {**dataset, "sensitive": sensitive},
            "seed": 1,
            "deterministic": True,
        }
        run(Job(inputs, outputs, settings))
        page = outputs["html"].read_text()
        embedded = {
            base64.b64decode(data).decode()
            for data in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)
        }
        if not sensitive:
            assert len(embedded) == 6 and "Withheld" not in page
            continue
        assert embedded == {"png of explore/lengths", "png of evaluate/roc"}
        assert "Withheld from this page" in page
        for item in (
            "interpret/attributions.png",
            "interpret/filter_logos.png",
            "explore/pca.png",
            "interpret/filters.tsv",
        ):
            assert item in page
        assert "leave out every figure or table" in outputs["model_card_md"].read_text()


def test_tip5_states_what_pretraining_changed_or_that_there_was_none():
    from deeprules.report.scorecard import VERDICTS, tip5

    cnn = {
        "encoding": {"sequence_type": "dna", "length": 60, "length_source": "x", "padding": "end"},
        "pretrained": {"choice": "finetune"},
    }
    plain = tip5({"cnn": cnn}, {})
    assert plain["verdict"] == "followed" and plain["answer"].startswith("No pre-training")
    assert plain["numbers"]["pretraining"] is False
    pretrain = {
        "sequences": {
            "unlabeled_read": 50,
            "unlabeled_removed": {"pretrain_homolog_of_test": 3},
            "unlabeled_used": 47,
            "train_used": 20,
            "total": 67,
        },
        "final_tune_masked_accuracy": 0.4,
    }
    scratch = {**_comparison("cnn_scratch", "better", 0.12), "reference_role": "cnn_scratch"}
    control = {**_comparison("control_shortcut", "worse"), "reference_role": "control"}
    evaluate = {"bootstrap": {"ci_level": 0.95}, "comparisons": [control, scratch]}
    row = tip5({"cnn": cnn, "pretrain": pretrain, "evaluate": evaluate}, {})
    assert row["verdict"] == "pretraining_helped" and row["verdict"] in VERDICTS[5]
    assert "AUROC +0.120, 95% CI +0.050 to +0.200" in row["answer"]
    assert "0 homologues of tune and 3 of test removed" in row["answer"]
    assert row["numbers"]["trunk_choice"] == "finetune"
    assert row["numbers"]["removed_homologs_of_test"] == 3
    no_test = tip5({"cnn": cnn, "pretrain": pretrain}, {})
    assert no_test["verdict"] == "not_assessed"
    # supervised pre-training (pretrain.from): the source dataset and its removals
    supervised = {
        "kind": "supervised",
        "sequences": {
            "source_dataset": "related",
            "source_train_read": 40,
            "source_train_removed": {"pretrain_homolog_of_tune": 1, "pretrain_homolog_of_test": 4},
            "source_train_used": 35,
            "total": 35,
        },
        "final_tune_accuracy": 0.8,
    }
    row = tip5({"cnn": cnn, "pretrain": supervised, "evaluate": evaluate}, {})
    assert row["verdict"] == "pretraining_helped"
    assert "pre-trained on dataset 'related' (its train labels)" in row["action"]
    assert "labels of 35 train sequences of dataset 'related'" in row["answer"]
    assert "(1 homologues of tune and 4 of test removed first)" in row["answer"]
    assert row["numbers"]["removed_homologs_of_test"] == 4
    assert row["numbers"]["objective"] == "supervised"
