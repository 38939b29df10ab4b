"""Tests for the explore stage: each planted confounder fails its own check; clean data passes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deeprules import explore, shortcuts
from deeprules.config import explore_gate_settings, explore_settings, validate_run_config
from deeprules.contracts import ALPHABETS
from deeprules.explore import gate
from deeprules.explore.gate import ChecksFailed
from deeprules.explore.metadata import cramers_v
from deeprules.explore.stage import FIGURES, TABLES
from deeprules.io import InputError, read_json, write_json, write_tsv
from deeprules.rule import Job

AMINO_ACIDS = ALPHABETS["protein"]
PER_CLASS = 200


def defaults() -> dict:
    """The explore settings exactly as the schema fills them, with fewer shuffles for speed."""
    settings = validate_run_config({"datasets": ["amp"]})["explore"]
    return {**settings, "permutations": 199}


def random_sequence(rng: np.random.Generator, length: int, alphabet: str, gc: float | None = None):
    if gc is None:
        return "".join(rng.choice(list(alphabet), size=length))
    weights = np.array([(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2])  # A C G T
    return "".join(rng.choice(list("ACGT"), size=length, p=weights))


def clean_table(seed: int = 0, sequence_type: str = "protein") -> pd.DataFrame:
    """Two balanced classes of random sequences; length and a batch column independent of label."""
    rng = np.random.default_rng(seed)
    alphabet = ALPHABETS[sequence_type]
    rows = []
    for label in ("pos", "neg"):
        for index in range(PER_CLASS):
            length = int(rng.integers(30, 61))
            rows.append(
                {
                    "id": f"{label}_{index}",
                    "sequence": random_sequence(rng, length, alphabet),
                    "label": label,
                    "source": "file",
                    "batch": str(rng.choice(["b1", "b2", "b3"])),
                }
            )
    return pd.DataFrame(rows)


def run(
    tmp_path: Path,
    table: pd.DataFrame,
    sequence_type: str = "protein",
    metadata_columns: list[str] | None = None,
    dropped: pd.DataFrame | None = None,
    settings: dict | None = None,
) -> dict:
    """Write curate-style inputs, run the stage, return checks.json by check name."""
    metadata = metadata_columns if metadata_columns is not None else ["batch"]
    write_tsv(tmp_path / "sequences.tsv", table)
    write_json(tmp_path / "summary.json", {"metadata_columns": metadata})
    write_tsv(
        tmp_path / "dropped.tsv",
        dropped
        if dropped is not None
        else pd.DataFrame(columns=["id", "sequence_sha256", "reason", "detail"]),
    )
    dataset = {
        "name": "synthetic",
        "sequence_type": sequence_type,
        "sources": [{"name": "file", "kind": "local", "path": "x.tsv"}],
        "metadata": {"columns": metadata, "from_label": {}},
    }
    out = tmp_path / "explore"
    outputs = {"checks": out / "checks.json"}
    outputs |= {name: out / f"{name}.tsv" for name in TABLES}
    outputs |= {name: out / f"{name.removesuffix('_png')}.png" for name in FIGURES}
    inputs = {
        name: tmp_path / f"{name}.{suffix}"
        for name, suffix in (("sequences", "tsv"), ("summary", "json"), ("dropped", "tsv"))
    }
    config = {"explore": settings or defaults(), "seed": 1}
    explore.run(Job(inputs, outputs, explore_settings(config, dataset), threads=1))
    for path in outputs.values():
        assert path.is_file() and path.stat().st_size > 0, path
    result = json.loads(outputs["checks"].read_text())
    assert result["schema_version"] == 1
    return result


def by_name(result: dict) -> dict[str, dict]:
    return {check["name"]: check for check in result["checks"]}


def failing(result: dict) -> set[str]:
    return {c["name"] for c in result["checks"] if c["verdict"] == "fail"}


# --- clean data passes everything ------------------------------------------------------


@pytest.mark.parametrize("sequence_type", ["protein", "dna"])
def test_clean_balanced_random_dataset_passes_every_check(tmp_path, sequence_type):
    result = run(tmp_path, clean_table(seed=3, sequence_type=sequence_type), sequence_type)
    verdicts = {c["name"]: (c["verdict"], c["value"]) for c in result["checks"]}
    assert all(v == "pass" for v, _ in verdicts.values()), verdicts
    expected = {
        "label_x_batch",
        "shortcut_length",
        "shortcut_composition",
        "shortcut_first_residues",
        "shortcut_last_residues",
        "position_composition",
        "exact_duplicates",
        "near_duplicates_across_labels",
        "class_balance",
        "batch_batch",
    }
    assert expected <= set(verdicts)
    if sequence_type == "dna":
        assert "shortcut_gc_content" in verdicts
    assert result["floor"]["auroc"] < 0.6
    for check in result["checks"]:
        assert check["explanation"].endswith(".") and check["verdict"] in ("pass", "warn", "fail")


# --- each planted confounder fails its own check -----------------------------------------


def test_non_monotone_length_fails_length_check_although_linear_model_misses_it(tmp_path):
    table = clean_table(seed=4)
    rng = np.random.default_rng(4)
    for index in table.index:
        if table.at[index, "label"] == "pos":  # middle lengths
            length = int(rng.integers(40, 51))
        else:  # short or long, same mean
            length = int(rng.choice([rng.integers(20, 31), rng.integers(60, 71)]))
        table.at[index, "sequence"] = random_sequence(rng, length, AMINO_ACIDS)
    check = by_name(run(tmp_path, table))["shortcut_length"]
    assert check["verdict"] == "fail"
    assert check["auroc_per_model"]["linear"] < 0.6 < check["auroc_per_model"]["flexible"]
    assert check["model"] == "flexible" and check["p_value"] < 0.05


def test_first_residue_artefact_fails_first_residue_check(tmp_path):
    table = clean_table(seed=5)
    positive = table["label"] == "pos"
    table.loc[positive, "sequence"] = "M" + table.loc[positive, "sequence"].str[1:]
    result = run(tmp_path, table)
    checks = by_name(result)
    assert checks["shortcut_first_residues"]["verdict"] == "fail"
    assert checks["position_composition"]["verdict"] == "fail"
    assert (checks["position_composition"]["end"], checks["position_composition"]["position"]) == (
        "start",
        1,
    )
    assert checks["shortcut_last_residues"]["verdict"] == "pass"
    assert result["floor"]["check"] == "shortcut_first_residues"


def test_metadata_column_equal_to_label_fails_label_x_metadata(tmp_path):
    table = clean_table(seed=6)
    table["database"] = table["label"].map({"pos": "APD3", "neg": "UniProt"})
    checks = by_name(run(tmp_path, table, metadata_columns=["batch", "database"]))
    assert checks["label_x_database"]["verdict"] == "fail"
    assert checks["label_x_database"]["value"] > 0.99
    assert "database" in checks["label_x_database"]["explanation"]
    assert checks["label_x_batch"]["verdict"] == "pass"
    assert checks["batch_database"]["tested"] is False  # constant within each label


def test_gc_shift_fails_gc_check(tmp_path):
    table = clean_table(seed=7, sequence_type="dna")
    rng = np.random.default_rng(7)
    table["sequence"] = [
        random_sequence(rng, 100, "ACGT", gc=0.6 if label == "pos" else 0.4)
        for label in table["label"]
    ]
    checks = by_name(run(tmp_path, table, sequence_type="dna"))
    assert checks["shortcut_gc_content"]["verdict"] == "fail"
    assert checks["shortcut_length"]["verdict"] == "pass"


@pytest.mark.parametrize("searched", [2 * PER_CLASS, PER_CLASS])  # all, or half + extrapolation
def test_near_duplicates_across_labels_fail_duplicate_check(tmp_path, searched):
    table = clean_table(seed=8)
    negatives = table.index[table["label"] == "neg"][:30]
    positives = table.index[table["label"] == "pos"][:30]
    for pos, neg in zip(positives, negatives, strict=True):  # one substitution apart
        sequence = list(table.at[pos, "sequence"])
        sequence[len(sequence) // 2] = "W" if sequence[len(sequence) // 2] != "W" else "Y"
        table.at[neg, "sequence"] = "".join(sequence)
    settings = {**defaults(), "near_duplicate_max_sequences": searched}
    check = by_name(run(tmp_path, table, settings=settings))["near_duplicates_across_labels"]
    assert check["verdict"] == "fail"
    assert check["sequences_searched"] == searched
    if searched == len(table):  # 30 planted pairs: 60 of 400 sequences
        assert check["value"] == pytest.approx(60 / len(table)) and check["pairs"] == 30
    pairs = pd.read_csv(tmp_path / "explore" / "near_duplicates.tsv", sep="\t")
    assert (pairs["query_label"] != pairs["target_label"]).all()


def test_label_conflicts_in_curation_ledger_fail_exact_duplicate_check(tmp_path):
    table = clean_table(seed=9)
    ledger = pd.DataFrame(
        {
            "id": [f"c{i}" for i in range(40)],
            "sequence_sha256": "0" * 16,
            "reason": "label_conflict",
            "detail": "same sequence labelled pos and neg",
        }
    )
    check = by_name(run(tmp_path, table, dropped=ledger))["exact_duplicates"]
    assert check["verdict"] == "fail"
    assert check["label_conflicts_dropped_by_curation"] == 40


def test_batch_leaving_a_trace_in_sequences_fails_batch_check(tmp_path):
    table = clean_table(seed=13)
    rng = np.random.default_rng(13)
    plate1 = table["batch"] == "b1"  # e.g. a library prep that enriches W-rich sequences
    table.loc[plate1, "sequence"] = [
        "".join(rng.choice(list(AMINO_ACIDS + "W" * 20), size=len(s)))
        for s in table.loc[plate1, "sequence"]
    ]
    checks = by_name(run(tmp_path, table))
    assert checks["batch_batch"]["verdict"] == "fail"
    assert checks["label_x_batch"]["verdict"] == "pass"


# --- bad input ------------------------------------------------------------------------


def test_metadata_column_named_in_config_but_absent_is_a_clear_error(tmp_path):
    table = clean_table(seed=10).drop(columns="batch")
    with pytest.raises(InputError, match=r"metadata column 'batch' .*absent"):
        run(tmp_path, table)


def test_class_with_one_member_is_a_clear_error(tmp_path):
    table = clean_table(seed=11)
    lonely = table.iloc[[0]].assign(label="rare", id="rare_0")
    with pytest.raises(InputError, match=r"'rare' has 1 sequence.*explore.cv_folds"):
        run(tmp_path, pd.concat([table, lonely], ignore_index=True))


# --- strict gate ------------------------------------------------------------------------


def enforce_strict(checks: Path, gate_path: Path, strict: bool) -> dict:
    """Run the explore_gate rule's stage; return gate.json."""
    settings = explore_gate_settings({"explore": {"strict": strict}}, {"name": "synthetic"})
    gate.run(Job({"checks": checks}, {"gate": gate_path}, settings))
    return read_json(gate_path)


def checks_file(tmp_path: Path, verdicts: list[str]) -> Path:
    path = tmp_path / "checks.json"
    checks = [
        {"name": f"check_{i}", "verdict": v, "explanation": f"reason {i}."}
        for i, v in enumerate(verdicts)
    ]
    write_json(path, {"checks": checks})
    return path


def test_strict_gate_stops_on_a_failure_and_lists_it(tmp_path):
    path = checks_file(tmp_path, ["pass", "fail", "warn"])
    with pytest.raises(ChecksFailed, match=r"check_1: reason 1\.") as error:
        enforce_strict(path, tmp_path / "gate.json", strict=True)
    assert isinstance(error.value, InputError)
    assert not (tmp_path / "gate.json").exists()


def test_gate_carries_on_when_not_strict_or_nothing_failed(tmp_path):
    path = checks_file(tmp_path, ["pass", "fail"])
    assert enforce_strict(path, tmp_path / "gate.json", strict=False)["failures"] == ["check_1"]
    path = checks_file(tmp_path, ["pass", "warn"])
    assert enforce_strict(path, tmp_path / "gate.json", strict=True)["failures"] == []


# --- building blocks --------------------------------------------------------------------


def test_cramers_v_is_one_for_a_copy_of_the_label_and_near_zero_for_noise():
    rng = np.random.default_rng(0)
    labels = pd.Series(rng.choice(["a", "b"], size=500))
    _, copy_v = cramers_v(pd.crosstab(labels, labels.map({"a": "x", "b": "y"})))
    _, noise_v = cramers_v(pd.crosstab(labels, rng.choice(list("pqrst"), size=500)))
    assert copy_v > 0.99 and noise_v < 0.1


def test_kmer_profile_and_end_residues_count_what_they_should():
    encoded = shortcuts.encode(["ACGTN", "GG"], "dna")
    profile = shortcuts.kmer_profile(encoded, 2)
    names = shortcuts.kmer_names("ACGT", 2)
    first = dict(zip(names, profile[0], strict=True))
    assert first["AC"] == first["CG"] == first["GT"] == pytest.approx(1 / 3)  # "TN" skipped
    assert profile[1][names.index("GG")] == 1
    assert shortcuts.ambiguous_fraction(encoded)[0] == pytest.approx(0.2)
    last = shortcuts.end_residues(encoded, 3, from_end=True)
    names = shortcuts.end_residue_names("ACGT", 3, from_end=True)
    assert {n for n, v in zip(names, last[1], strict=True) if v} == {
        "last1_G",
        "last2_G",
        "last3_absent",
    }


def test_p_value_is_small_for_signal_and_never_below_its_floor():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 200)
    signal = labels + rng.normal(0, 0.5, size=400)
    score = shortcuts.shortcut_auroc(signal, labels, folds=5, permutations=99, seed=0)
    assert score.best > 0.8 and score.p_value == pytest.approx(2 / 100)
    noise = shortcuts.shortcut_auroc(rng.normal(size=400), labels, folds=5, permutations=99, seed=0)
    assert noise.p_value > 0.05


def test_warn_threshold_above_fail_threshold_is_a_clear_error(tmp_path):
    settings = {**defaults(), "auroc_warn": 0.8, "auroc_fail": 0.7}
    with pytest.raises(InputError, match=r"explore.auroc_warn.*explore.auroc_fail"):
        run(tmp_path, clean_table(seed=12), settings=settings)


def test_fold_auroc_matches_sklearn_one_vs_rest_macro_for_three_classes():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, size=300)
    probabilities = rng.dirichlet(np.ones(3), size=300) + np.eye(3)[labels] * 0.3
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    expected = roc_auc_score(labels, probabilities, multi_class="ovr", average="macro")
    assert shortcuts.fold_auroc(labels, probabilities, 3) == pytest.approx(expected)
    binary = (labels == 0).astype(int)
    two = np.column_stack([1 - probabilities[:, 0], probabilities[:, 0]])
    assert shortcuts.fold_auroc(binary, two, 2) == pytest.approx(
        roc_auc_score(binary, probabilities[:, 0])
    )
