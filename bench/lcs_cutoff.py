"""What rapidfuzz's score cutoff saves in the exhaustive searches' common-subsequence pass.

The exhaustive search measures the longest common subsequence (LCS) of every pair on
both strands before it aligns the few that could reach the threshold
(`deeprules.mmseqs.candidates`). Since issue 20 the pass gives rapidfuzz the fewest
identical residues any pair of a block needs, so it can stop measuring a pair that
cannot reach them. This runs explore's near-duplicate search (0.9 across labels) and
the split's graph search (0.8, keeping pairs from the verification's floor 0.72) on
random DNA with planted near-copies, with the cutoff and without it (the cutoff set to
0), and prints the time of each and whether the pairs found are the same.

    .venv/bin/python bench/lcs_cutoff.py [--sequences 4000] [--length 500] [--threads 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from deeprules import mmseqs

SEARCHES = {
    "explore: near-duplicates across labels": {"identity": 0.9, "between": "label"},
    "split: homology graph (record from 0.72)": {"identity": 0.8, "floor": 0.72},
}


def planted_dna(sequences: int, length: int, seed: int) -> pd.DataFrame:
    """Random sequences, one in ten followed by a copy with 5 % substitutions."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("ACGT"))
    rows = []
    while len(rows) < sequences:
        sequence = rng.choice(letters, length)
        rows.append("".join(sequence))
        if rng.random() < 0.1:
            changed = rng.random(length) < 0.05
            sequence[changed] = rng.choice(letters, int(changed.sum()))
            rows.append("".join(sequence))
    rows = rows[:sequences]
    return pd.DataFrame(
        {
            "id": [f"s{k:06d}" for k in range(len(rows))],
            "sequence": rows,
            "label": rng.choice(["a", "b"], len(rows)),
        }
    )


def timed_search(table: pd.DataFrame, search: dict, threads: int) -> tuple[float, pd.DataFrame]:
    """One exhaustive co-optimal search as explore or the split runs it."""
    floor = search.get("floor")
    record = None if floor is None else mmseqs.MeasuredPairs(floor, "longer", 0.0)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as workdir:
        pairs = mmseqs.similar_pairs(
            table,
            "dna",
            search["identity"],
            "longer",
            workdir=Path(workdir),
            threads=threads,
            exhaustive=True,
            co_optimal=True,
            between=search.get("between"),
            keep_measured=record,
        )
    return time.perf_counter() - start, pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=4000)
    parser.add_argument("--length", type=int, default=500)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    table = planted_dna(args.sequences, args.length, args.seed)
    with_cutoff = mmseqs._Search._fewest_needed
    rows = []
    for name, search in SEARCHES.items():
        mmseqs._Search._fewest_needed = lambda *arguments: 0  # rapidfuzz measures every pair
        without, expected = timed_search(table, search, args.threads)
        mmseqs._Search._fewest_needed = with_cutoff
        cut, found = timed_search(table, search, args.threads)
        rows.append(
            {
                "search": name,
                "sequences": len(table),
                "no cutoff s": round(without, 1),
                "cutoff s": round(cut, 1),
                "saved": f"{1 - cut / without:.0%}",
                "pairs": len(found),
                "same pairs": found.equals(expected),
            }
        )
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
