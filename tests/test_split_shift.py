"""Shift between partitions: two-sample classifier AUROCs, KS, quartiles, and the gate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_split import random_protein, run_split
from test_split_balance import short_core_long_periphery

from deeprules.split import ShiftError
from deeprules.split.shift import shift_statistics


def lengths_table(rng: np.random.Generator, partition_of_length) -> pd.DataFrame:
    lengths = rng.integers(10, 80, 600)
    return pd.DataFrame(
        {
            "sequence": [random_protein(rng, int(n)) for n in lengths],
            "label": np.where(rng.random(600) < 0.5, "pos", "neg"),
            "partition": [partition_of_length(n, rng) for n in lengths],
        }
    )


def at_random(_: int, rng: np.random.Generator) -> str:
    return str(rng.choice(["train", "tune", "test"], p=[0.6, 0.2, 0.2]))


def by_length(n: int, _: np.random.Generator) -> str:
    return "train" if n < 50 else "tune" if n < 65 else "test"


def test_random_partitions_are_indistinguishable():
    shift = shift_statistics(lengths_table(np.random.default_rng(0), at_random), "protein", 1)
    for pair in shift["pairs"].values():
        assert pair["length_auroc"] < 0.6 and pair["composition_auroc"] < 0.6
        assert pair["length_ks"] < 0.15


def test_length_sorted_partitions_are_told_apart():
    shift = shift_statistics(lengths_table(np.random.default_rng(0), by_length), "protein", 1)
    assert shift["pairs"]["test vs train"]["length_auroc"] > 0.95
    assert shift["pairs"]["test vs train"]["length_ks"] == 1.0
    quartiles = shift["length_quartiles_per_label"]
    assert quartiles["train"]["pos"][2] < quartiles["test"]["pos"][0]


def test_shift_gate_stops_a_shifted_homology_split(tmp_path):
    table = short_core_long_periphery(np.random.default_rng(3))
    shift = {"min_sequences": 10}
    with pytest.raises(ShiftError, match=r"split\.shift\.max_auroc"):
        run_split(tmp_path, table, name="stop", balance={"length_bins": 0}, shift=shift)
    report, _ = run_split(
        tmp_path,
        table,
        name="warn",
        balance={"length_bins": 0},
        shift=shift | {"fail_on_shift": False},
    )
    gate = report["shift"]["gate"]
    assert not gate["passed"] and gate["action"] == "warn"
    assert {e["pair"] for e in gate["exceeded"]} >= {"test vs train", "train vs tune"}
    assert_tip7_warns_of_the_shift(report)
    balanced, _ = run_split(
        tmp_path, table, name="balanced", balance={"length_bins": 2, "tolerance": 0.1}, shift=shift
    )
    assert balanced["shift"]["gate"]["passed"]


def assert_tip7_warns_of_the_shift(report: dict) -> None:
    """A split that only warned must not leave Tip 7 saying "done": the reader is told."""
    from deeprules.report.scorecard import tip7

    evaluate = {"test_access": {"access_count": 1}, "models": {}, "overfitting_flags": []}
    tip = tip7({"split": report, "evaluate": evaluate}, {})
    assert tip["status"] == "warning" and "SHIFTED beyond AUROC 0.6" in tip["evidence"]
    report = report | {
        "shift": report["shift"] | {"gate": report["shift"]["gate"] | {"passed": True}}
    }
    assert "SHIFTED" not in tip7({"split": report, "evaluate": evaluate}, {})["evidence"]


def test_small_partitions_are_not_gated(tmp_path):
    """Below split.shift.min_sequences the AUROC is reported but cannot stop the split."""
    table = short_core_long_periphery(np.random.default_rng(3))
    report, _ = run_split(tmp_path, table, balance={"length_bins": 0})
    assert report["shift"]["gate"]["passed"]
    assert report["shift"]["pairs"]["test vs train"]["length_auroc"] > 0.6


def test_scorecard_evidence_names_balance_and_shift(tmp_path):
    from deeprules.report.split_shift import shift_evidence

    table = short_core_long_periphery(np.random.default_rng(3))
    report, _ = run_split(
        tmp_path, table, balance={"length_bins": 2, "tolerance": 0.1}, shift={"min_sequences": 10}
    )
    text = shift_evidence(report)
    assert "balanced on label x length in 2 bins" in text
    assert "length AUROC (partition from length) train vs tune" in text
    assert "no length AUROC above 0.6" in text
    assert shift_evidence({"method": "homology"}) == ""


def test_balance_cost_table_for_the_report():
    from deeprules.report.split_shift import balance_cost_table

    rows = [
        {"setting": "none", "length_bins": 0, "tolerance": None, "kept": 4393,
         "max_length_auroc": 0.901, "max_label_gap_points": 3.0, "max_stratum_gap_points": 28.3},
        {"setting": "default", "length_bins": 3, "tolerance": 0.02, "kept": 4150,
         "max_length_auroc": 0.528, "max_label_gap_points": 2.8, "max_stratum_gap_points": 2.0},
    ]  # fmt: skip
    table = balance_cost_table({"balance_costs": rows}).splitlines()
    assert len(table) == 4
    assert table[3] == "| default | 3 / 0.02 | 4,150 | 0.528 | 2.8 | 2.0 |"
    assert balance_cost_table({}) == ""
