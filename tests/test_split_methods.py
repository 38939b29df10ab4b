"""A split method per dataset: predefined and homology datasets side by side in one run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_split import families_table, split_outputs

from deeprules.config import split_settings, validate_run_config
from deeprules.io import InputError, write_tsv
from deeprules.report.split_shift import shift_evidence
from deeprules.split import build_settings, split_dataset

RUN = validate_run_config({"datasets": ["published", "ours"], "seed": 3})


def published_table(rng: np.random.Generator) -> pd.DataFrame:
    """A 'published benchmark': families shipped with their own partitions, some
    families split across train and test (the leak the report must state)."""
    table = families_table(rng, families=10, members=6, singles=40)
    table["fold"] = ["train", "train", "train", "valid", "test"] * (len(table) // 5)
    return table


def test_dataset_file_overrides_method_and_fractions():
    published = {
        "name": "published",
        "sequence_type": "protein",
        "split": {"method": "predefined", "partition_column": "fold", "threshold": 0.5},
    }
    ours = {
        "name": "ours",
        "sequence_type": "protein",
        "split": {"fractions": {"train": 0.8, "tune": 0.1, "test": 0.1}},
    }
    first, second = (build_settings(split_settings(RUN, d)) for d in (published, ours))
    assert (first.method, second.method) == ("predefined", "homology")
    assert first.fractions == (0.7, 0.15, 0.15) and second.fractions == (0.8, 0.1, 0.1)
    bad = ours | {"split": {"fractions": {"train": 0.8, "tune": 0.3, "test": 0.1}}}
    with pytest.raises(InputError, match=r"dataset 'ours' key 'split\.fractions'"):
        build_settings(split_settings(RUN, bad))


def test_predefined_and_homology_datasets_in_one_run(tmp_path):
    rng = np.random.default_rng(5)
    datasets = {
        "published": (
            published_table(rng),
            {"method": "predefined", "partition_column": "fold", "threshold": 0.5},
        ),
        "ours": (families_table(rng, families=12, members=5, singles=50), {"threshold": 0.5}),
    }
    reports = {}
    for name, (table, split) in datasets.items():
        folder = tmp_path / name
        folder.mkdir()
        write_tsv(folder / "sequences.tsv", table)
        dataset = {"name": name, "sequence_type": "protein", "split": split}
        settings = build_settings(split_settings(RUN, dataset))
        reports[name] = split_dataset(
            folder / "sequences.tsv", settings, split_outputs(folder), workdir=tmp_path
        )
    published, ours = reports["published"], reports["ours"]
    assert (published["method"], ours["method"]) == ("predefined", "homology")
    assert published["verification"]["pairs_at_or_above_threshold"] > 0
    assert ours["verification"]["pairs_at_or_above_threshold"] == 0
    for report in reports.values():
        assert set(report["shift"]["pairs"]) == {"train vs tune", "test vs train", "test vs tune"}
    text = shift_evidence(published)
    assert "the predefined split LEAKS" in text and "test vs train" in text
    assert "LEAKS" not in shift_evidence(ours)
