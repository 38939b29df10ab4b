"""Covariate balance of the homology split: strata, exact balance removals, refinement."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.sparse import csr_matrix
from test_split import mutate, random_protein, run_split

from deeprules.config import split_costs_settings, validate_run_config
from deeprules.contracts import PARTITIONS
from deeprules.io import InputError, read_json, read_tsv
from deeprules.rule import Job
from deeprules.split import costs
from deeprules.split.homology import partition_by_homology
from deeprules.split.partition import REMOVED, PartitionGraph
from deeprules.split.strata import Strata, build_strata
from deeprules.split.tolerance import enforce_tolerances


def short_core_long_periphery(rng: np.random.Generator) -> pd.DataFrame:
    """What amp looks like: one dense family of short peptides (a chain of sub-families,
    too large for tune or test but placeable whole in train) plus sparse long
    sequences (singletons), so a split balancing only the label puts every short
    peptide in train and tune and test get the long ones."""
    rows = []
    founder = random_protein(rng, 20)
    for sub in range(10):
        founder = mutate(rng, founder, 0.4)  # linked to the previous sub-family only
        for m in range(10):
            label = "pos" if (sub + m) % 2 else "neg"
            rows.append((f"short{sub:02d}_{m:02d}", mutate(rng, founder, 0.05), label))
    for s in range(100):
        rows.append((f"long{s:03d}", random_protein(rng, 70), "pos" if s % 2 else "neg"))
    table = pd.DataFrame(rows, columns=["id", "sequence", "label"])
    table["source"] = "synthetic"
    return table


def mean_length_by_partition(folder) -> pd.Series:
    assignments = read_tsv(folder / "assignments.tsv")
    train = read_tsv(folder / "train.tsv")
    lengths = pd.concat([read_tsv(folder / f"{p}.tsv") for p in PARTITIONS])
    lengths = lengths.set_index("id")["sequence"].str.len()
    assert len(train) > 0
    return lengths.groupby(assignments.set_index("id")["partition"]).mean()


def test_planted_length_shift_is_balanced_within_tolerance(tmp_path):
    table = short_core_long_periphery(np.random.default_rng(3))
    _, plain_folder = run_split(tmp_path, table, name="plain", balance={"length_bins": 0})
    means = mean_length_by_partition(plain_folder)
    assert means["train"] < 40 and means["tune"] > 60 and means["test"] > 60
    report, folder = run_split(
        tmp_path, table, name="balanced", balance={"length_bins": 2, "tolerance": 0.1}
    )
    balance = report["covariate_balance"]
    assert balance["balanced"] and balance["within_tolerance"]
    for name in PARTITIONS:
        assert balance["partitions"][name]["max_stratum_share_deviation"] <= 0.1 + 1e-9
    assert report["labels_within_tolerance"]
    assert report["verification"]["pairs_at_or_above_threshold"] == 0
    means = mean_length_by_partition(folder)
    assert means.max() - means.min() < 12  # a share off by 0.1 moves the mean by 5
    assert report["sequences"]["kept"] >= 0.8 * len(table)


def test_strata_are_label_then_label_by_covariate():
    table = pd.DataFrame(
        {
            "label": ["a", "a", "b", "b", "a", "b"],
            "sequence": ["A" * n for n in (5, 6, 7, 30, 31, 32)],
            "batch": ["x", "y", "x", "y", "x", "y"],
        }
    )
    strata = build_strata(table, 2, ("batch",))
    assert strata.blocks == ("label", "length", "batch")
    # every sequence is in exactly one group per block
    for block in range(strata.n_blocks):
        assert (strata.member[:, strata.block == block].sum(axis=1) == 1).all()
    assert "a | length 05-07" in strata.names and "b | batch=y" in strata.names


def test_unknown_balance_column_names_the_key():
    table = pd.DataFrame({"label": ["a"], "sequence": ["AC"]})
    with pytest.raises(InputError, match=r"split\.balance_columns"):
        build_strata(table, 2, ("species",))


def test_balance_removals_are_the_fewest():
    """No edges: the exact programme keeps the most sequences such that every share is
    within tolerance; brute force over the kept counts per cell agrees."""
    rng = np.random.default_rng(0)
    n = 60
    labels = np.array(["a"] * 30 + ["b"] * 30)
    lengths = np.where((np.arange(n) % 30) < 15, 10, 50) + rng.integers(0, 3, n)
    table = pd.DataFrame({"label": labels, "sequence": ["A" * int(k) for k in lengths]})
    strata = build_strata(table, 2)
    graph = PartitionGraph(csr_matrix((n, n)), labels, (0.5, 0.25, 0.25), rng, strata)
    tune = np.r_[0:20, 40:50]  # a: 15 short, 5 long; b: 5 short, 5 long
    graph.partition[:] = 0
    graph.partition[tune] = 1
    tolerances = np.array([0.05, 0.05])
    enforce_tolerances(graph, tolerances)
    deviation = np.abs(graph.deviations(graph.counts()))[1]
    assert (deviation <= tolerances[strata.block] + 1e-9).all()
    tune_members = graph.member[tune]
    cells, cell_of = np.unique(tune_members, axis=0, return_inverse=True)
    available = np.bincount(cell_of)
    best = 0
    for keep in np.ndindex(*(available + 1)):
        counts = np.asarray(keep) @ cells
        size = sum(keep)
        if size and np.all(
            np.abs(counts / size - graph.group_share) <= tolerances[strata.block] + 1e-12
        ):
            best = max(best, size)
    assert (graph.partition[tune] == 1).sum() == best


def chain_graph_with_lengths(
    rng: np.random.Generator, n: int, edges: int, reach: int
) -> tuple[csr_matrix, np.ndarray, Strata]:
    """A random sparse chain-like graph (each edge joins nodes fewer than `reach` apart),
    random labels, and two length strata: the first half short, the second long."""
    a = rng.integers(0, n, edges)
    b = (a + rng.integers(1, reach, edges)) % n
    adjacency = csr_matrix((np.ones(2 * edges), (np.r_[a, b], np.r_[b, a])), shape=(n, n))
    adjacency.data[:] = 1
    labels = np.where(rng.random(n) < 0.5, "pos", "neg")
    lengths = np.where(np.arange(n) < n // 2, 15, 60) + rng.integers(0, 5, n)
    table = pd.DataFrame({"label": labels, "sequence": ["A" * int(k) for k in lengths]})
    return adjacency, labels, build_strata(table, 2)


@pytest.mark.parametrize("seed", range(3))
def test_refined_stratified_partition_has_no_cross_edge(seed):
    """A random sparse graph with a length covariate: every attempt ends without an edge
    between partitions (partition_by_homology asserts it) and with shares in tolerance."""
    rng = np.random.default_rng(seed)
    adjacency, labels, strata = chain_graph_with_lengths(rng, 300, 600, 6)
    tolerances = np.array([0.05, 0.05])
    codes, reasons = partition_by_homology(
        adjacency, labels, (0.7, 0.15, 0.15), tolerances, rng, strata
    )
    assert set(np.flatnonzero(codes == REMOVED)) == set(reasons)
    graph = PartitionGraph(adjacency, labels, (0.7, 0.15, 0.15), rng, strata)
    graph.partition = codes
    assert graph.cross_edges() == 0
    assert (np.abs(graph.deviations(graph.counts())) <= 0.05 + 1e-9).all()


def balance_cost_rows(folder, **split) -> list[dict]:
    """The split_costs stage on a finished run_split folder, settings as its rule
    builds them."""
    dataset = {"name": "synthetic", "sequence_type": "protein", "split": {"threshold": 0.5}}
    config = validate_run_config({"datasets": ["synthetic"], "seed": 7, "split": split})
    names = ("sequences", "assignments", "pairs")
    job = Job(
        inputs={name: folder / f"{name}.tsv" for name in names},
        outputs={"costs": folder / "balance_costs.json", "figure": folder / "balance.png"},
        settings=split_costs_settings(config, dataset),
        threads=2,
    )
    costs.run(job)
    return read_json(folder / "balance_costs.json")["balance_costs"]


def test_balance_costs_compare_none_default_stricter(tmp_path):
    table = short_core_long_periphery(np.random.default_rng(3))
    balance = {"length_bins": 2, "tolerance": 0.1}
    report, folder = run_split(tmp_path, table, balance=balance)
    rows = {row["setting"]: row for row in balance_cost_rows(folder, balance=balance)}
    assert list(rows) == ["none", "default", "stricter"]
    assert rows["default"]["kept"] == report["sequences"]["kept"]
    assert rows["stricter"]["length_bins"] == 4 and rows["stricter"]["tolerance"] == 0.05
    assert rows["none"]["max_stratum_gap_points"] > rows["default"]["max_stratum_gap_points"]
    assert rows["none"]["max_length_auroc"] > rows["default"]["max_length_auroc"]
    assert (folder / "balance.png").stat().st_size > 0
    # the none variant is the label-only split, exactly as the split itself would cut it
    unbalanced, _ = run_split(tmp_path, table, balance={"length_bins": 0}, name="plain")
    assert rows["none"]["kept"] == unbalanced["sequences"]["kept"]
    off = balance_cost_rows(folder, balance={**balance, "compare": False})
    assert [row["setting"] for row in off] == ["as split"]
    _, random_folder = run_split(tmp_path, table, method="random")
    assert [row["setting"] for row in balance_cost_rows(random_folder, method="random")] == [
        "as split"
    ]


def test_attempts_in_parallel_give_the_same_partitions_as_one_after_another():
    """Two worker processes run the attempts side by side; seeds, judge and choice are
    those of the sequential run, so the partitions and the removals are identical."""
    adjacency, labels, strata = chain_graph_with_lengths(np.random.default_rng(5), 400, 900, 8)
    judged = []

    def acceptable(codes: np.ndarray) -> bool:  # prefers an attempt that is not the largest
        judged.append(int((codes != REMOVED).sum()))
        return int(codes[0]) == 0

    runs = [
        partition_by_homology(
            adjacency,
            labels,
            (0.7, 0.15, 0.15),
            np.array([0.05, 0.05]),
            np.random.default_rng(9),
            strata,
            acceptable,
            restarts=4,
            workers=workers,
        )
        for workers in (1, 2)
    ]
    (sequential, sequential_reasons), (parallel, parallel_reasons) = runs
    assert len(judged) == 4  # the parallel attempts were judged in the workers
    assert (sequential == parallel).all() and sequential_reasons == parallel_reasons
