"""The split's list of unlabeled sequences pre-training must not use (Tip 5): every
homologue of a tune or test sequence, by the split's own identity definition, checked
here by an independent judge (deeprules.identity's exact co-optimal identity of every
unlabeled x held-out pair)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from planted import few_label_task, related_source
from test_split import job_settings, split_outputs

from deeprules.identity import co_optimal_identities
from deeprules.io import read_json, read_tsv, write_tsv
from deeprules.split import build_settings, split_dataset
from deeprules.split.pretraining import OF_TEST, OF_TUNE


def mutated(rng: np.random.Generator, sequence: str, rate: float) -> str:
    """Substitutions at about `rate` of the positions (DNA)."""
    letters = list(sequence)
    for position in np.flatnonzero(rng.random(len(letters)) < rate):
        letters[position] = rng.choice([b for b in "ACGT" if b != letters[position]])
    return "".join(letters)


def judged_exclusions(
    candidates: pd.DataFrame, labelled: pd.DataFrame, partition: pd.Series, threshold: float
) -> dict[str, str]:
    """The judge: exact co-optimal identity (over the longer sequence, both strands) of
    every pre-training candidate against every tune and test sequence; id -> reason."""
    held = labelled[labelled["id"].map(partition).isin(["tune", "test"])]
    first = np.repeat(candidates["sequence"].to_numpy(), len(held)).tolist()
    second = np.tile(held["sequence"].to_numpy(), len(candidates)).tolist()
    _, identical = co_optimal_identities(first, second, nucleotide=True, workers=2)
    longer = np.maximum([len(a) for a in first], [len(b) for b in second])
    identity = (identical / longer).reshape(len(candidates), len(held))
    reached = identity >= threshold - 1e-12
    in_test = (held["id"].map(partition) == "test").to_numpy()
    expected = {}
    for row, record_id in enumerate(candidates["id"]):
        if reached[row, in_test].any():
            expected[record_id] = OF_TEST
        elif reached[row, ~in_test].any():
            expected[record_id] = OF_TUNE
    return expected


def test_homologues_of_tune_and_test_are_listed_and_counted(tmp_path):
    labelled, pool = few_label_task(150, 200, seed=11)
    rng = np.random.default_rng(5)
    copies = pd.DataFrame(
        [
            {"id": f"near_{r.id}", "sequence": mutated(rng, r.sequence, 0.05), "source": "copies"}
            for r in labelled.iloc[::2].itertuples()
        ]
        + [
            {"id": f"far_{r.id}", "sequence": mutated(rng, r.sequence, 0.45), "source": "copies"}
            for r in labelled.iloc[1::4].itertuples()
        ]
    )
    unlabeled = pd.concat([pool, copies], ignore_index=True)
    write_tsv(tmp_path / "sequences.tsv", labelled.drop(columns=["component", "motif_start"]))
    write_tsv(tmp_path / "unlabeled.tsv", unlabeled)
    outputs = split_outputs(tmp_path) | {"pretrain_excluded": tmp_path / "excluded.tsv"}
    dataset = {"name": "planted", "sequence_type": "dna"}
    settings = build_settings(job_settings({}, dataset, seed=3))
    report = split_dataset(
        tmp_path / "sequences.tsv",
        settings,
        outputs,
        threads=2,
        workdir=tmp_path,
        unlabeled_path=tmp_path / "unlabeled.tsv",
    )
    excluded = read_tsv(tmp_path / "excluded.tsv").set_index("id")
    partition = read_tsv(tmp_path / "assignments.tsv").set_index("id")["partition"]

    expected = judged_exclusions(unlabeled, labelled, partition, settings.threshold)
    assert excluded["reason"].to_dict() == expected
    # the planted near copies of tune and test are all there; of train, none
    near = {f"near_{i}": partition[i] for i in labelled["id"].iloc[::2] if i in partition}
    assert {i for i, p in near.items() if p in ("tune", "test")} <= set(excluded.index)
    assert not {i for i, p in near.items() if p == "train"} & set(excluded.index)
    assert sum(p == "test" for p in near.values()) > 5  # the test is not vacuous
    assert (
        "to a test sequence (id withheld"
        in excluded.loc[excluded["reason"] == OF_TEST, "detail"].iat[0]
    )
    facts = read_json(outputs["report"])["pretraining"]
    assert facts == report["pretraining"]
    assert facts["removed"] == {
        OF_TUNE: sum(v == OF_TUNE for v in expected.values()),
        OF_TEST: sum(v == OF_TEST for v in expected.values()),
    }
    assert facts["kept"] == len(unlabeled) - len(expected)


def test_a_supervised_source_loses_its_copies_of_the_targets_tune_and_test(tmp_path):
    """pretrain.from: the target's split searches the source dataset's train partition
    as it searches an unlabeled pool. The source holds verbatim copies of every other
    target sequence and, under the same ids as the target's, sequences of its own (ids
    repeat across the datasets of a run): the copies of tune and test go, with ledger
    rows and counts, the copies of train and the namesakes stay."""
    labelled, _ = few_label_task(150, 1, seed=11)
    source = related_source(labelled, 120, seed=12, copied=labelled["id"].iloc[::2], prefix="lab")
    assert set(source["id"]) & set(labelled["id"])  # the namesakes
    write_tsv(tmp_path / "sequences.tsv", labelled.drop(columns=["component", "motif_start"]))
    write_tsv(tmp_path / "source_train.tsv", source.drop(columns=["motif_start"]))
    outputs = split_outputs(tmp_path) | {"pretrain_excluded": tmp_path / "excluded.tsv"}
    settings = build_settings(job_settings({}, {"name": "target", "sequence_type": "dna"}, seed=3))
    report = split_dataset(
        tmp_path / "sequences.tsv",
        settings,
        outputs,
        threads=2,
        workdir=tmp_path,
        pretrain_source=("related", tmp_path / "source_train.tsv"),
    )
    excluded = read_tsv(tmp_path / "excluded.tsv").set_index("id")
    partition = read_tsv(tmp_path / "assignments.tsv").set_index("id")["partition"]
    expected = judged_exclusions(source, labelled, partition, settings.threshold)
    assert excluded["reason"].to_dict() == expected
    copies = {f"copy_{i}": partition[i] for i in labelled["id"].iloc[::2] if i in partition}
    held_out = {i for i, p in copies.items() if p in ("tune", "test")}
    assert held_out <= set(excluded.index)
    assert sum(p == "test" for p in copies.values()) > 5  # the test is not vacuous
    assert not {i for i, p in copies.items() if p == "train"} & set(excluded.index)
    assert not set(excluded.index) - set(copies)  # the namesakes are unrelated sequences
    facts = read_json(outputs["report"])["pretraining"]
    assert facts == report["pretraining"]
    assert facts["source"] == {"dataset": "related", "partition": "train"}
    assert facts["source_sequences"] == len(source)
    assert facts["removed"] == {
        OF_TUNE: sum(v == OF_TUNE for v in expected.values()),
        OF_TEST: sum(v == OF_TEST for v in expected.values()),
    }
    assert facts["removed"][OF_TEST] > 5 and facts["kept"] == len(source) - len(expected)
