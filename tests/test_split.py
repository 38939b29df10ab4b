"""The split stage with real MMseqs2: planted families, a giant family, balance, seeds, errors."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.sparse import csr_matrix

from deeprules.config import split_settings, validate_run_config
from deeprules.contracts import PARTITIONS, read_classes, read_partition
from deeprules.io import InputError, read_json, read_tsv, write_tsv
from deeprules.mmseqs import similar_pairs
from deeprules.rule import Job
from deeprules.split import build_settings, run, split_dataset
from deeprules.split.regions import minimum_vertex_cover

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
    if "positive_class" in split:
        dataset["positive_class"] = split.pop("positive_class")
    settings = build_settings(job_settings(split, dataset, seed))
    report = split_dataset(
        folder / "sequences.tsv", settings, split_outputs(folder), threads=2, workdir=tmp_path
    )
    return report, folder


def job_settings(split: dict, dataset: dict, seed: int = 1) -> dict:
    """`job.settings` as the rule passes it: the validated run config through the builder."""
    config = validate_run_config({"datasets": [dataset["name"]], "seed": seed, "split": split})
    return split_settings(config, dataset)


def split_outputs(folder: Path) -> dict[str, Path]:
    names = (*PARTITIONS, "assignments", "dropped", "pairs")
    outputs = {name: folder / f"{name}.tsv" for name in names}
    return outputs | {"report": folder / "split_report.json", "figure": folder / "identity.png"}


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
        part = read_partition(folder / f"{name}.tsv", name)
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
        part = read_partition(folder / f"{name}.tsv", name)
        shares = part["label"].value_counts(normalize=True)
        assert (shares.reindex(whole.index, fill_value=0) - whole).abs().max() <= 0.03 + 1e-9
        lengths = part["sequence"].str.len()
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
    random_report, random_folder = run_split(tmp_path, table, method="random")
    assert random_report["verification"]["pairs_at_or_above_threshold"] > 0  # families split
    assert not random_report["verification"]["passed"]
    # the verification took its candidates from the graph search's measurement and still
    # finds every leak a fresh search of the partitions finds
    assert (
        "measured once, by the similarity graph's search"
        in (random_report["verification"]["search"])
    )
    kept = table.merge(read_tsv(random_folder / "assignments.tsv"), on="id")
    fresh = similar_pairs(
        kept, "protein", 0.5, workdir=tmp_path, between="partition", co_optimal=True
    )
    assert random_report["verification"]["pairs_at_or_above_threshold"] == len(fresh)
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
        build_settings(job_settings(split, dataset))


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("method", "stratified", "config key 'split.method'"),
        ("threshold", -0.1, "config key 'split.threshold.protein'"),
        ("denominator", "query", "key 'split.denominator'"),
        ("label_tolerance", 1.0, "config key 'split.label_tolerance'"),
    ],
)
def test_unvalidated_settings_still_name_the_key(key, value, message):
    """A caller that skipped the schema (a script, a benchmark) still gets the key named."""
    settings = job_settings({}, {"name": "d", "sequence_type": "protein"})
    settings["split"][key] = value
    with pytest.raises(InputError, match=message):
        build_settings(settings)


def test_settings_come_from_the_job_settings():
    dataset = {"name": "d", "sequence_type": "dna", "positive_class": "pos"}
    settings = build_settings(job_settings({"method": "random"}, dataset, seed=5))
    assert settings.threshold == 0.8  # the nucleotide threshold of the schema
    assert (settings.method, settings.seed, settings.positive_class) == ("random", 5, "pos")
    assert settings.fractions == (0.7, 0.15, 0.15)
    assert settings.partition_column is None


def two_class_table(rng: np.random.Generator) -> pd.DataFrame:
    """Unrelated sequences, 40 'neg' and 20 'pos': 'pos' is the minority in train too."""
    labels = ["neg"] * 40 + ["pos"] * 20
    return pd.DataFrame(
        {
            "id": [f"s{k:02d}" for k in range(len(labels))],
            "sequence": [random_protein(rng, 50) for _ in labels],
            "label": labels,
            "source": "synthetic",
        }
    )


def split_job(folder: Path, positive_class: str | None) -> Job:
    """The job the rule hands to `run`, on two_class_table."""
    folder.mkdir()
    write_tsv(folder / "sequences.tsv", two_class_table(np.random.default_rng(8)))
    dataset = {"name": "synthetic", "sequence_type": "protein"}
    if positive_class is not None:
        dataset["positive_class"] = positive_class
    return Job(
        inputs={"sequences": folder / "sequences.tsv"},
        outputs=split_outputs(folder),
        settings=job_settings({"method": "random"}, dataset),
        threads=2,
    )


@pytest.mark.parametrize(("configured", "positive"), [("neg", "neg"), (None, "pos")])
def test_split_decides_and_records_the_classes(tmp_path, configured, positive):
    """The dataset's positive_class is recorded; without one, train's minority class."""
    job = split_job(tmp_path / "run", configured)
    run(job)
    classes = read_classes(job.outputs["report"])
    assert classes.positive == positive
    negative = "pos" if positive == "neg" else "neg"
    assert classes.names == (negative, positive)  # positive last: a sigmoid's class
    report = read_json(job.outputs["report"])
    assert report["classes"] == list(classes.names)
    assert report["positive_class"] == positive


def test_positive_class_that_is_not_a_label_names_the_key(tmp_path):
    job = split_job(tmp_path / "run", "AMP")
    with pytest.raises(InputError, match=r"dataset key 'positive_class': 'AMP' .*train\.tsv"):
        run(job)
    assert not job.outputs["report"].exists()


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
    cover = set(minimum_vertex_cover(csr_matrix(between)).tolist())
    edges = [(r, rows + c) for r, c in zip(*np.nonzero(between), strict=True)]
    assert all(a in cover or b in cover for a, b in edges)
    smaller = itertools.combinations(range(rows + columns), len(cover) - 1) if cover else []
    assert not any(all(a in s or b in s for a, b in edges) for s in map(set, smaller))
