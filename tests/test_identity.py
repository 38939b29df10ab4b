"""Conservative identity: the highest identity of any optimal-scoring local alignment."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from Bio.Align import substitution_matrices

from deeprules.identity import co_optimal_identities
from deeprules.mmseqs import similar_pairs

# The issue's pair: optimal local score 28, reached with 12 and with 15 identities.
TEST_PEPTIDE = "MKRTYQPSKIRRARTHGFLVRMKTRGGRAVINARRAKGRKRLAV"
TRAIN_PEPTIDE = "LIQRGRFGRFLGRIRRFRPRINFDIRARGSIRLG"
BLOSUM62 = substitution_matrices.load("BLOSUM62")


def reference(a: str, b: str, score, gap_open: int = 11, gap_extend: int = 1) -> tuple[int, int]:
    """Independent exact aligner: Gotoh's local alignment written out cell by cell, every
    value the pair (score, identities) compared lexicographically; a gap of length L
    costs gap_open + gap_extend (L - 1)."""
    worst = (-(10**9), 0)
    zero = (0, 0)
    h = [[zero] * (len(b) + 1) for _ in range(len(a) + 1)]
    e = [[worst] * (len(b) + 1) for _ in range(len(a) + 1)]  # gap in a (move along b)
    f = [[worst] * (len(b) + 1) for _ in range(len(a) + 1)]  # gap in b (move along a)
    best = zero
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            left, up = h[i][j - 1], h[i - 1][j]
            e[i][j] = max(
                (left[0] - gap_open, left[1]), (e[i][j - 1][0] - gap_extend, e[i][j - 1][1])
            )
            f[i][j] = max((up[0] - gap_open, up[1]), (f[i - 1][j][0] - gap_extend, f[i - 1][j][1]))
            diagonal = h[i - 1][j - 1]
            match = (diagonal[0] + score(a[i - 1], b[j - 1]), diagonal[1] + (a[i - 1] == b[j - 1]))
            h[i][j] = max(zero, match, e[i][j], f[i][j])
            best = max(best, h[i][j])
    return best


def blosum(x: str, y: str) -> int:
    return int(BLOSUM62[x][y])


def test_the_issue_pair_has_co_optimal_alignments_with_12_and_15_identities():
    scores, identities = co_optimal_identities([TEST_PEPTIDE], [TRAIN_PEPTIDE], False)
    assert (scores[0], identities[0]) == (28, 15)
    assert reference(TEST_PEPTIDE, TRAIN_PEPTIDE, blosum) == (28, 15)


def test_the_issue_pair_counts_as_homologous_at_0_3():
    table = pd.DataFrame({"id": ["test1", "train1"], "sequence": [TEST_PEPTIDE, TRAIN_PEPTIDE]})
    reported = similar_pairs(table, "protein", 0.3, "longer", co_optimal=False)
    assert reported.empty  # MMseqs2's own alignment: 12 / 44 = 0.27
    pairs = similar_pairs(table, "protein", 0.3, "longer", co_optimal=True)
    assert pairs["identity"].tolist() == pytest.approx([15 / 44])


def mutated_pairs(rng: np.random.Generator, count: int, letters: str) -> tuple[list, list]:
    """Related pairs (substitutions and indels), so ties between optimal alignments occur."""
    first, second = [], []
    for _ in range(count):
        a = "".join(rng.choice(list(letters), size=int(rng.integers(5, 30))))
        b = list(a)
        for _ in range(int(rng.integers(0, 8))):
            k = int(rng.integers(0, len(b)))
            kind = rng.integers(0, 3)
            if kind == 0:
                b[k] = str(rng.choice(list(letters)))
            elif kind == 1 and len(b) > 3:
                del b[k]
            else:
                b.insert(k, str(rng.choice(list(letters))))
        first.append(a)
        second.append("".join(b))
    return first, second


def test_judge_agrees_with_an_independent_exact_aligner_on_every_pair():
    rng = np.random.default_rng(0)
    first, second = mutated_pairs(rng, 150, "ACDEFGHIKLMNPQRSTVWY")
    first += ["KKKKLLLLKKKK", "GLFDIVKKVVGALGSL"]  # low complexity: many co-optimal alignments
    second += ["KLKLKLKLKLKL", "GLFDKVKKIVGALGSLG"]
    scores, identities = co_optimal_identities(first, second, False)
    for a, b, s, n in zip(first, second, scores, identities, strict=True):
        assert (s, n) == reference(a, b, blosum), (a, b)


def test_nucleotides_take_the_better_strand():
    def dna(x: str, y: str) -> int:
        return 2 if x == y else -3

    rng = np.random.default_rng(1)
    first, second = mutated_pairs(rng, 40, "ACGT")
    reverse = str.maketrans("ACGT", "TGCA")
    second = [s[::-1].translate(reverse) if k % 2 else s for k, s in enumerate(second)]
    scores, identities = co_optimal_identities(first, second, True)
    for a, b, s, n in zip(first, second, scores, identities, strict=True):
        expected = max(
            reference(a, b, dna, 5, 2), reference(a, b[::-1].translate(reverse), dna, 5, 2)
        )
        assert (s, n) == expected


def test_workers_give_the_same_answer():
    rng = np.random.default_rng(2)
    first, second = mutated_pairs(rng, 300, "ACDEFGHIKLMNPQRSTVWY")
    from deeprules import identity

    single = co_optimal_identities(first, second, False)
    original, identity.CHUNK = identity.CHUNK, 50
    try:
        parallel = co_optimal_identities(first, second, False, workers=2)
    finally:
        identity.CHUNK = original
    assert all((x == y).all() for x, y in zip(single, parallel, strict=True))


def test_the_split_verification_counts_the_issue_pair_as_leaked(tmp_path):
    from test_split import random_protein, run_split

    rng = np.random.default_rng(4)
    rows = [("test1", TEST_PEPTIDE, "pos", "test"), ("train1", TRAIN_PEPTIDE, "pos", "train")]
    for k in range(40):
        part = ["train", "train", "train", "tune", "test"][k % 5]
        rows.append((f"single{k}", random_protein(rng, 60), ["pos", "neg"][k % 2], part))
    table = pd.DataFrame(rows, columns=["id", "sequence", "label", "fold"])
    report, _ = run_split(
        tmp_path, table, threshold=0.3, method="predefined", partition_column="fold"
    )
    verification = report["verification"]
    assert verification["pairs_at_or_above_threshold"] >= 1
    assert verification["pairs_at_or_above_threshold_by_partitions"]["test vs train"] >= 1
    assert "ANY optimal-scoring local alignment" in report["identity_definition"]


def test_very_long_sequences_do_not_overflow_the_combined_score():
    """15,000 tryptophans and cysteines (BLOSUM62's highest self-scores): score * (longest
    + 1) passes 2**31, so 64-bit lanes are needed; a sequence against itself aligns end
    to end with every residue identical."""
    rng = np.random.default_rng(3)
    protein = "".join(rng.choice(list("WC"), 15000))
    scores, identities = co_optimal_identities([protein], [protein], False)
    assert scores[0] == sum(blosum(x, x) for x in protein) and identities[0] == 15000
