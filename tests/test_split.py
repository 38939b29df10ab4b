"""The split stage with real MMseqs2: planted families, a giant family, balance, seeds, errors."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.sparse import csr_matrix

from deeprules.io import InputError, read_json, read_tsv, write_tsv
from deeprules.mmseqs import similar_pairs
from deeprules.split import (
    PARTITIONS,
    _minimum_vertex_cover,
    settings_from_config,
    split_dataset,
)

AMINO_ACIDS = list("ACDEFGHIKLMNPQRSTVWY")


def mutate(rng: np.random.Generator, sequence: str, rate: float) -> str:
    """Substitute about `rate` of the residues (no indels), so identity is ~1 - rate."""
    letters = list(sequence)
    for p in np.flatnonzero(rng.random(len(letters)) < rate):
        letters[p] = rng.choice([a for a in AMINO_ACIDS if a != letters[p]])
    return "".join(letters)


def random_protein(rng: np.random.Generator, length: int) -> str:
    return "".join(rng.choice(AMINO_ACIDS, size=length))


def families_table(rng: np.random.Generator, families: int, members: int, singles: int):
    """Families of ~90%-identical members (one label per family) plus unrelated singles."""
    rows = []
    for f in range(families):
        seed = random_protein(rng, 60)
        label = "pos" if f % 2 else "neg"
        for m in range(members):
            rows.append((f"fam{f:02d}_{m}", mutate(rng, seed, 0.1), label, f"fam{f:02d}"))
    for s in range(singles):
        rows.append((f"single{s:03d}", random_protein(rng, 60), "pos" if s % 2 else "neg", ""))
    table = pd.DataFrame(rows, columns=["id", "sequence", "label", "family"])
    table["source"] = "synthetic"
    return table


def giant_family_table(rng: np.random.Generator) -> pd.DataFrame:
    """One family holding most sequences: a chain of sub-families, each ~90% identical to
    its own founder and founders ~75% identical to the previous one, so the family is
    one connected component at 0.5 that no single partition can hold."""
    rows = []
    founder = random_protein(rng, 80)
    for sub in range(12):
        founder = mutate(rng, founder, 0.25)
        for m in range(12):
            label = "pos" if (sub + m) % 2 else "neg"
            rows.append((f"giant{sub:02d}_{m:02d}", mutate(rng, founder, 0.1), label))
    for s in range(40):
        rows.append((f"single{s:03d}", random_protein(rng, 80), "pos" if s % 2 else "neg"))
    table = pd.DataFrame(rows, columns=["id", "sequence", "label"])
    table["source"] = "synthetic"
    return table


def run_split(
    tmp_path: Path,
    table: pd.DataFrame,
    seed: int = 7,
    threshold: float = 0.5,
    name: str = "",
    **split,
) -> tuple[dict, Path]:
    folder = tmp_path / (name or f"run{seed}_{split.get('method', 'homology')}")
    folder.mkdir()
    write_tsv(folder / "sequences.tsv", table)
    dataset = {"name": "synthetic", "sequence_type": "protein", "split": {"threshold": threshold}}
    if "partition_column" in split:
        dataset["split"]["partition_column"] = split.pop("partition_column")
    settings = settings_from_config({"seed": seed, "split": split}, dataset)
    outputs = {name: folder / f"{name}.tsv" for name in (*PARTITIONS, "assignments", "dropped")}
    outputs |= {"report": folder / "split_report.json", "figure": folder / "identity.png"}
    report = split_dataset(folder / "sequences.tsv", settings, outputs, threads=2, workdir=tmp_path)
    return report, folder


def partition_of(folder: Path) -> pd.Series:
    assignments = read_tsv(folder / "assignments.tsv")
    return assignments.set_index("id")["partition"]


def test_planted_families_never_straddle_partitions(tmp_path):
    table = families_table(np.random.default_rng(1), families=16, members=6, singles=60)
    report, folder = run_split(tmp_path, table)
    where = partition_of(folder)
    kept = table[table["id"].isin(where.index)]
    families = (
        kept[kept["family"] != ""].groupby("family")["id"].apply(lambda ids: where[ids].nunique())
    )
    assert (families == 1).all()
    assert report["verification"]["pairs_at_or_above_threshold"] == 0
    assert report["verification"]["passed"]
    assert report["comparison"] == "at or above"
    # small families fit whole: nothing needed removing
    assert report["sequences"]["removed"] == 0
    for name in PARTITIONS:
        part = read_tsv(folder / f"{name}.tsv")
        assert "component" in part.columns and len(part) > 0
    assert (folder / "identity.png").stat().st_size > 0


def test_giant_family_still_splits_with_removals_and_zero_leakage(tmp_path):
    table = giant_family_table(np.random.default_rng(2))
    report, folder = run_split(tmp_path, table)
    assert report["graph"]["largest_component_fraction"] > 0.7
    dropped = read_tsv(folder / "dropped.tsv")
    assert len(dropped) > 0
    assert set(dropped["reason"]) <= {"homology_cut", "label_balance"}
    assert set(dropped.columns) == {"id", "sequence_sha256", "reason", "detail"}
    # every partition got sequences and none kept a homologous pair across partitions
    assert all(report["partitions"][name]["sequences"] > 0 for name in PARTITIONS)
    assert report["verification"]["pairs_at_or_above_threshold"] == 0
    # an independent check with the search used for the graph: no cross pair at >= 0.5
    kept = table.merge(read_tsv(folder / "assignments.tsv"), on="id")
    cross = similar_pairs(kept, "protein", 0.5, workdir=tmp_path, between="partition")
    assert cross.empty
    assert report["sequences"]["kept"] + report["sequences"]["removed"] == len(table)


def test_label_proportions_within_tolerance(tmp_path):
    table = families_table(np.random.default_rng(3), families=20, members=5, singles=100)
    report, folder = run_split(tmp_path, table, label_tolerance=0.03)
    whole = table["label"].value_counts(normalize=True)
    for name in PARTITIONS:
        shares = read_tsv(folder / f"{name}.tsv")["label"].value_counts(normalize=True)
        assert (shares.reindex(whole.index, fill_value=0) - whole).abs().max() <= 0.03 + 1e-9
        lengths = read_tsv(folder / f"{name}.tsv")["sequence"].str.len()
        assert report["partitions"][name]["length_quartiles"][1] == lengths.median()
    assert report["labels_within_tolerance"]


def test_same_seed_same_split(tmp_path):
    table = giant_family_table(np.random.default_rng(4))
    _, first = run_split(tmp_path, table, seed=11, name="first")
    _, second = run_split(tmp_path, table, seed=11, name="second")
    assert partition_of(first).equals(partition_of(second))
    assert read_tsv(first / "dropped.tsv").equals(read_tsv(second / "dropped.tsv"))


def test_comparison_methods_report_their_leakage(tmp_path):
    table = families_table(np.random.default_rng(5), families=10, members=8, singles=40)
    table["published"] = np.where(np.arange(len(table)) % 5 == 0, "test", "train")
    table.loc[table.index % 5 == 1, "published"] = "validation"
    random_report, _ = run_split(tmp_path, table, method="random")
    assert random_report["verification"]["pairs_at_or_above_threshold"] > 0  # families split
    assert not random_report["verification"]["passed"]
    cluster_report, _ = run_split(tmp_path, table, method="cluster")
    assert cluster_report["method"] == "cluster"
    predefined, folder = run_split(
        tmp_path, table, method="predefined", partition_column="published"
    )
    assert predefined["verification"]["pairs_at_or_above_threshold"] > 0
    assert partition_of(folder).value_counts()["tune"] == (table.index % 5 == 1).sum()
    report = read_json(folder / "split_report.json")
    assert report["schema_version"] == 1


@pytest.mark.parametrize(
    ("split", "dataset_split", "message"),
    [
        ({}, {"threshold": 0.0}, "split.threshold"),
        ({}, {"threshold": 1.5}, "split.threshold"),
        ({"threshold": {"protein": -0.1}}, {}, "split.threshold.protein"),
        ({"fractions": {"train": 0.7, "tune": 0.1, "test": 0.1}}, {}, "split.fractions"),
        ({"method": "stratified"}, {}, "split.method"),
        ({"method": "predefined"}, {}, "split.partition_column"),
    ],
)
def test_bad_settings_name_the_key(split, dataset_split, message):
    dataset = {"name": "d", "sequence_type": "protein", "split": dataset_split}
    with pytest.raises(InputError, match=message):
        settings_from_config({"seed": 1, "split": split}, dataset)


def test_class_too_small_for_every_partition(tmp_path):
    rng = np.random.default_rng(6)
    table = pd.DataFrame(
        {
            "id": [f"s{k}" for k in range(53)],
            "sequence": [random_protein(rng, 40) for _ in range(53)],
            "label": ["common"] * 50 + ["rare"] * 3,
            "source": "synthetic",
        }
    )
    with pytest.raises(InputError, match=r"class 'rare' has 3 sequences.*split\.fractions"):
        run_split(tmp_path, table)


@pytest.mark.parametrize("seed", range(20))
def test_separator_is_a_smallest_vertex_cover(seed):
    """The cut removes a minimum vertex cover of the edges between a region and the rest:
    it touches every edge, and no smaller set does (checked by brute force)."""
    rng = np.random.default_rng(seed)
    rows, columns = int(rng.integers(1, 7)), int(rng.integers(1, 7))
    between = (rng.random((rows, columns)) < rng.uniform(0.2, 0.7)).astype(int)
    cover = set(_minimum_vertex_cover(csr_matrix(between)).tolist())
    edges = [(r, rows + c) for r, c in zip(*np.nonzero(between), strict=True)]
    assert all(a in cover or b in cover for a, b in edges)
    smaller = itertools.combinations(range(rows + columns), len(cover) - 1) if cover else []
    assert not any(all(a in s or b in s for a, b in edges) for s in map(set, smaller))
