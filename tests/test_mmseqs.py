"""deeprules.mmseqs with the real MMseqs2 binary: identities are exact and no pair is missed."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from deeprules import mmseqs
from deeprules.io import InputError
from deeprules.mmseqs import cluster_ids, find_mmseqs, mmseqs_version, similar_pairs

AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"


def random_protein(rng: np.random.Generator, length: int) -> str:
    return "".join(rng.choice(list(AMINO_ACIDS), size=length))


def substitute(sequence: str, positions: list[int]) -> str:
    """Change the residue at each position to a different amino acid (no gaps)."""
    letters = list(sequence)
    for p in positions:
        letters[p] = "W" if letters[p] != "W" else "C"
    return "".join(letters)


def table(sequences: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"id": [f"s{k:03d}" for k in range(len(sequences))], "sequence": sequences})


def test_binary_found_and_version_recorded():
    binary = find_mmseqs()
    assert binary.endswith("mmseqs")
    assert mmseqs_version(binary).strip()


def test_identity_is_exact_and_at_or_above_counts(tmp_path):
    rng = np.random.default_rng(0)
    base = random_protein(rng, 60)
    variant = substitute(base, list(range(2, 60, 5)))  # 48 of 60 identical = 0.8
    unrelated = random_protein(rng, 60)
    data = table([base, variant, unrelated])
    exactly = similar_pairs(data, "protein", 0.8, workdir=tmp_path)
    assert exactly.to_dict("records") == [{"query": "s000", "target": "s001", "identity": 0.8}]
    above = similar_pairs(data, "protein", 0.8 + 1e-6, workdir=tmp_path)
    assert above.empty


def test_denominator_decides_identity_of_a_fragment(tmp_path):
    rng = np.random.default_rng(1)
    long = random_protein(rng, 40)
    data = table([long, long[10:30]])  # a 20-residue fragment of a 40-residue peptide
    shorter = similar_pairs(data, "protein", 0.3, "shorter", workdir=tmp_path)
    longer = similar_pairs(data, "protein", 0.3, "longer", workdir=tmp_path)
    assert shorter["identity"].tolist() == [1.0]
    assert longer["identity"].tolist() == [0.5]
    covered = similar_pairs(data, "protein", 0.3, "shorter", min_coverage=0.6, workdir=tmp_path)
    assert covered.empty  # the alignment covers only half of the longer peptide


def test_planted_family_pairs_all_found_and_each_once(tmp_path):
    rng = np.random.default_rng(2)
    sequences = []
    for _ in range(5):
        seed = random_protein(rng, 50)
        for _ in range(4):
            positions = rng.choice(50, size=5, replace=False).tolist()
            sequences.append(substitute(seed, positions))
    sequences += [random_protein(rng, 50) for _ in range(20)]
    pairs = similar_pairs(table(sequences), "protein", 0.7, workdir=tmp_path, threads=2)
    family = {f"s{k:03d}": k // 4 for k in range(20)}
    expected = {(a, b) for a in family for b in family if a < b and family[a] == family[b]}
    assert set(zip(pairs["query"], pairs["target"], strict=True)) == expected
    assert (pairs["query"] < pairs["target"]).all()
    assert pairs["identity"].between(0.7, 1.0).all()


def test_between_searches_only_pairs_across_groups(tmp_path):
    rng = np.random.default_rng(3)
    seed = random_protein(rng, 50)
    data = table([seed, substitute(seed, [1, 2]), substitute(seed, [3, 4])])
    data["group"] = ["a", "a", "b"]
    expected = {("s000", "s002"), ("s001", "s002")}
    pairs = similar_pairs(data, "protein", 0.5, workdir=tmp_path, between="group")
    assert set(zip(pairs["query"], pairs["target"], strict=True)) == expected
    # the prefilter searches only the smaller group against everything
    prefiltered = similar_pairs(
        data, "protein", 0.5, workdir=tmp_path, between="group", exhaustive=False
    )
    assert set(zip(prefiltered["query"], prefiltered["target"], strict=True)) == expected


@pytest.mark.parametrize("co_optimal", [False, True])
def test_between_equals_the_full_search_restricted_to_cross_group_pairs(tmp_path, co_optimal):
    """The common-subsequence bound is computed only across groups; nothing is lost."""
    rng = np.random.default_rng(8)
    sequences = []
    for _ in range(15):
        seed = random_protein(rng, int(rng.integers(20, 50)))
        sequences += [seed, substitute(seed, list(range(0, 8, 2))), substitute(seed, [1, 5, 9])]
    data = table(sequences)
    data["group"] = rng.choice(["train", "tune", "test"], size=len(data))
    search = {"workdir": tmp_path, "threads": 2, "co_optimal": co_optimal}
    everything = similar_pairs(data, "protein", 0.5, **search)
    group = data.set_index("id")["group"]
    across = everything[
        everything["query"].map(group) != everything["target"].map(group)
    ].reset_index(drop=True)
    between = similar_pairs(data, "protein", 0.5, between="group", **search)
    assert len(across) > 5
    pd.testing.assert_frame_equal(between, across)


def test_nucleotides_are_compared_on_both_strands(tmp_path):
    rng = np.random.default_rng(4)
    forward = "".join(rng.choice(list("ACGT"), size=120))
    reverse_complement = forward[::-1].translate(str.maketrans("ACGT", "TGCA"))
    unrelated = "".join(rng.choice(list("ACGT"), size=120))
    data = table([forward, reverse_complement, unrelated])
    pairs = similar_pairs(data, "dna", 0.8, workdir=tmp_path)
    assert pairs.to_dict("records") == [{"query": "s000", "target": "s001", "identity": 1.0}]
    prefiltered = similar_pairs(data, "dna", 0.8, workdir=tmp_path, exhaustive=False)
    assert prefiltered[["query", "target"]].values.tolist() == [["s000", "s001"]]


def related_and_odd_sequences(rng: np.random.Generator, letters: str) -> list[str]:
    """Families at 40-95 % identity with indels, lengths from 8 to 90, lower case and
    letters outside MMseqs2's alphabet: the cases a candidate skip could get wrong."""
    sequences = []
    for _ in range(12):
        seed = "".join(rng.choice(list(letters), size=int(rng.integers(8, 90))))
        for _ in range(5):
            member = [c for c in seed if rng.random() > 0.1]  # deletions
            for p in np.flatnonzero(rng.random(len(member)) < rng.uniform(0.05, 0.6)):
                member[p] = rng.choice(list(letters))
            cut = int(rng.integers(0, max(1, len(member) // 3)))
            sequences.append("".join(member[cut:]))
    return list(dict.fromkeys(s for s in sequences if s))


@pytest.mark.parametrize(
    ("sequence_type", "letters", "identity", "denominator", "co_optimal"),
    [
        ("protein", AMINO_ACIDS + "BZJOUXacd", 0.3, "longer", False),
        ("protein", AMINO_ACIDS + "BZUX", 0.5, "shorter", False),
        ("dna", "ACGTNRYacgt", 0.6, "longer", False),
        ("protein", AMINO_ACIDS + "BZJOUXacd", 0.3, "longer", True),
        ("dna", "ACGTNRYacgt", 0.5, "longer", True),
    ],
)
def test_skipped_candidates_could_never_reach_the_threshold(
    sequence_type, letters, identity, denominator, co_optimal, tmp_path, monkeypatch
):
    """The exhaustive search skips pairs whose longest common subsequence is too short;
    aligning every pair instead must find exactly the same pairs and identities."""
    data = table(related_and_odd_sequences(np.random.default_rng(6), letters))
    search = {"workdir": tmp_path, "threads": 2, "co_optimal": co_optimal}
    found = similar_pairs(data, sequence_type, identity, denominator, **search)
    skipped = []
    original = mmseqs._Search._candidates

    def every_pair(self, i, common, lengths):
        skipped.append(len(self.sequences) - i - 1 - len(original(self, i, common, lengths)))
        return np.arange(i + 1, len(self.sequences))

    monkeypatch.setattr(mmseqs._Search, "_candidates", every_pair)
    everything = similar_pairs(data, sequence_type, identity, denominator, **search)
    assert sum(skipped) > 0  # the bound did skip pairs, so the comparison means something
    assert len(found) > 10
    pd.testing.assert_frame_equal(found, everything)


def related_on_both_strands(sequence_type: str, letters: str) -> pd.DataFrame:
    """Families of related sequences; for DNA every third one reverse-complemented, so a
    pair can be related on the reverse strand only."""
    sequences = related_and_odd_sequences(np.random.default_rng(8), letters)
    if sequence_type == "dna":
        sequences = [
            s[::-1].translate(mmseqs.COMPLEMENT) if k % 3 == 0 else s
            for k, s in enumerate(sequences)
        ]
    return table(sequences)


def partitioned_subset(data: pd.DataFrame) -> pd.DataFrame:
    """Most of the sequences, in random order, each in one of three partitions."""
    subset = data.sample(frac=0.8, random_state=1).reset_index(drop=True)
    rng = np.random.default_rng(2)
    return subset.assign(partition=rng.choice(["train", "tune", "test"], size=len(subset)))


@pytest.mark.parametrize(
    ("sequence_type", "letters", "identity", "denominator"),
    [
        ("protein", AMINO_ACIDS, 0.3, "longer"),
        ("protein", AMINO_ACIDS, 0.4, "shorter"),
        ("dna", "ACGT", 0.5, "longer"),
    ],
)
def test_a_verification_from_the_graphs_measurement_finds_what_its_own_finds(
    sequence_type, letters, identity, denominator, tmp_path, monkeypatch
):
    """The split's verification takes its candidates from the common subsequences the
    graph search measured (from the verification's identity, below the graph's): on a
    reordered subset, across partitions, it finds exactly the pairs and identities its
    own measurement finds, reverse-strand pairs included, without measuring again."""
    data = related_on_both_strands(sequence_type, letters)
    search = {"workdir": tmp_path, "threads": 2, "co_optimal": True}
    record = mmseqs.MeasuredPairs(identity, denominator, 0.0)
    graph = similar_pairs(
        data, sequence_type, identity + 0.1, denominator, keep_measured=record, **search
    )
    assert record.complete and len(record.first) > len(graph) > 0
    subset = partitioned_subset(data)
    verify = {"between": "partition", **search}
    own = similar_pairs(subset, sequence_type, identity, denominator, **verify)

    def measure_again(*arguments):
        raise AssertionError("the verification measured the common subsequences again")

    monkeypatch.setattr(mmseqs._Search, "_common_subsequences", measure_again)
    shared = similar_pairs(subset, sequence_type, identity, denominator, measured=record, **verify)
    assert len(own) > 5
    pd.testing.assert_frame_equal(own, shared)


def test_a_measurement_that_does_not_cover_the_search_is_not_used(tmp_path, monkeypatch):
    """From below the record's floor, or over a sequence the record never saw, the
    verification measures for itself and finds what it would without the record."""
    data = related_on_both_strands("protein", AMINO_ACIDS)
    search = {"workdir": tmp_path, "threads": 2, "co_optimal": True}
    record = mmseqs.MeasuredPairs(0.4, "longer", 0.0)
    similar_pairs(data.iloc[1:], "protein", 0.5, keep_measured=record, **search)
    measured = []
    original = mmseqs._Search._common_subsequences

    def counted(self, *arguments):
        measured.append(len(arguments[-1]))
        return original(self, *arguments)

    monkeypatch.setattr(mmseqs._Search, "_common_subsequences", counted)
    verify = {"between": "partition", **search}
    unseen = partitioned_subset(data.iloc[1:]).assign(partition="train")
    unseen = pd.concat([unseen, data.iloc[:1].assign(partition="test")], ignore_index=True)
    for subset, identity in ((partitioned_subset(data.iloc[1:]), 0.3), (unseen, 0.4)):
        own = similar_pairs(subset, "protein", identity, **verify)
        count = len(measured)
        given = similar_pairs(subset, "protein", identity, measured=record, **verify)
        assert len(measured) > count  # it measured for itself
        pd.testing.assert_frame_equal(own, given)


def equal_length_dna_families(rng: np.random.Generator) -> list[str]:
    """30 families of 200-bp DNA, each a random sequence and three copies with 4-30 %
    substitutions, every fifth copy reverse-complemented: equal lengths, so the fewest
    identical residues a pair needs is the same for every pair and the measurement's
    cutoff is as high as it gets."""
    sequences = []
    for family in range(30):
        seed = "".join(rng.choice(list("ACGT"), 200))
        sequences.append(seed)
        for copy in range(3):
            changed = rng.choice(200, size=int(rng.integers(8, 60)), replace=False)
            mutated = list(seed)
            for position in changed:
                mutated[position] = rng.choice([c for c in "ACGT" if c != seed[position]])
            text = "".join(mutated)
            reverse = (family * 3 + copy) % 5 == 0
            sequences.append(text[::-1].translate(mmseqs.COMPLEMENT) if reverse else text)
    return sequences


def brute_force_common(sequences: list[str]) -> dict[tuple[int, int], int]:
    """LCS of every pair i < j, the longer of the two strands: rapidfuzz pair by pair,
    without the search's blocks or cutoff."""
    from rapidfuzz.distance import LCSseq

    return {
        (i, j): max(
            LCSseq.similarity(sequences[i], sequences[j]),
            LCSseq.similarity(sequences[i][::-1].translate(mmseqs.COMPLEMENT), sequences[j]),
        )
        for i in range(len(sequences))
        for j in range(i + 1, len(sequences))
    }


def test_the_measurement_keeps_every_pair_that_could_reach_the_threshold_exactly(tmp_path):
    """The common-subsequence pass stops measuring a pair below the fewest residues any
    pair needs (rapidfuzz's cutoff); judged by a pair-by-pair LCS on both strands, its
    candidates at the search's identity and the pairs it keeps from a lower floor, with
    their LCS, are exactly the ones that reach each."""
    data = table(equal_length_dna_families(np.random.default_rng(11)))
    search = mmseqs._Search(data, "dna", 0.8, "longer", 0.0, tmp_path, threads=2)
    search.keep_measured = mmseqs.MeasuredPairs(0.7, "longer", 0.0)
    n = len(search.sequences)
    candidates = {
        (key % n, int(target)) for key, targets in search._candidate_lists() for target in targets
    }
    truth = brute_force_common(search.sequences)
    record = search.keep_measured
    pairs = zip(record.first.tolist(), record.second.tolist(), strict=True)
    kept = dict(zip(pairs, record.common.tolist(), strict=True))
    assert kept == {pair: common for pair, common in truth.items() if common >= 140}
    assert candidates == {pair for pair, common in truth.items() if common >= 160}
    between = [common for common in truth.values() if 140 <= common < 160]
    assert len(between) > 5 and len(candidates) > 20  # both cutoffs decide real pairs


def test_cluster_ids_group_a_family(tmp_path):
    rng = np.random.default_rng(5)
    seed = random_protein(rng, 50)
    data = table([seed, substitute(seed, [1, 2, 3]), random_protein(rng, 50)])
    clusters = cluster_ids(data, "protein", 0.5, workdir=tmp_path)
    assert clusters.iloc[0] == clusters.iloc[1] != clusters.iloc[2]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"min_identity": 0.0}, "threshold"),
        ({"min_identity": 1.2}, "threshold"),
        ({"denominator": "mean"}, "denominator"),
        ({"sequence_type": "peptide"}, "sequence_type"),
    ],
)
def test_bad_arguments_are_named(arguments, message, tmp_path):
    call = {"sequence_type": "protein", "min_identity": 0.5} | arguments
    with pytest.raises(InputError, match=message):
        similar_pairs(table(["ACDEFGHIK", "ACDEFGHIK"]), workdir=tmp_path, **call)


PREFILTER_PEAK = """
import resource, sys
import numpy as np, pandas as pd
from deeprules.mmseqs import similar_pairs
rng = np.random.default_rng(4)
sequences = ["".join(rng.choice(list("ACGT"), 300)) for _ in range(200)]
sequences.append(sequences[0][::-1].translate(str.maketrans("ACGT", "TGCA")))
table = pd.DataFrame({"id": [f"s{k}" for k in range(201)], "sequence": sequences})
pairs = similar_pairs(table, "dna", 0.9, workdir=sys.argv[1], exhaustive=False)
print(len(pairs), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)
"""


def test_the_nucleotide_prefilter_finds_its_pair_without_a_fixed_gigabytes_index(tmp_path):
    """MMseqs2's own k = 15 for nucleotides builds a 4^15-entry index: 8.5 GB for any
    set, more than evaluate asks for. With k = 13 a 201-sequence search stays far below
    (docs/benchmarks.md) and still finds the planted reverse-complement pair."""
    result = subprocess.run(
        [sys.executable, "-c", PREFILTER_PEAK, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    found, peak_mb = map(int, result.stdout.split())
    assert found == 1
    assert peak_mb < 2000, f"MMseqs2 peaked at {peak_mb} MB"
