"""How many pairs at or above the split's threshold does MMseqs2's prefilter miss?

Above `split.exhaustive_max_sequences` (and `split.verify.exhaustive_max_sequences`)
the homology graph and the leakage verification use MMseqs2's most sensitive
prefilter instead of the exhaustive search, so the split's guarantee is only as
good as the prefilter. This plants pairs of related sequences among unrelated
ones (a random sequence and a mutated copy: substitutions, optionally indels, and
for DNA half of the copies reverse-complemented), runs both searches with the
split's own settings (co-optimal identity over the longer sequence), and counts
the pairs the exhaustive search finds at or above the threshold that the
prefilter does not. The exhaustive search is the judge: it cannot miss a pair
(its only skip is the common-subsequence proof, tested in tests/test_mmseqs.py).

    .venv/bin/python bench/prefilter_sensitivity.py                    # DNA, 500 bp, 0.8
    .venv/bin/python bench/prefilter_sensitivity.py --type protein --length 300 --threshold 0.3
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from deeprules.mmseqs import COMPLEMENT, similar_pairs

ALPHABETS = {"dna": "ACGT", "protein": "ACDEFGHIKLMNPQRSTVWY"}
INDEL_SHARES = (0.0, 0.2, 0.5)  # share of the mutations that are insertions or deletions


def mutated(sequence: str, rate: float, indel_share: float, rng: np.random.Generator) -> str:
    """A copy with `rate` mutations per residue, `indel_share` of them indels."""
    letters = ALPHABETS["dna"] if set(sequence) <= set("ACGT") else ALPHABETS["protein"]
    out = []
    for residue in sequence:
        draw = rng.random()
        if draw < rate * (1 - indel_share):
            out.append(rng.choice([c for c in letters if c != residue]))
        elif draw < rate * (1 - indel_share / 2):
            continue  # deletion
        elif draw < rate:
            out += [residue, rng.choice(list(letters))]  # insertion after the residue
        else:
            out.append(residue)
    return "".join(out)


def planted_table(args: argparse.Namespace) -> pd.DataFrame:
    """`background` unrelated sequences and `pairs` planted pairs; each pair's mutation
    rate is drawn so that its identity falls around the threshold."""
    rng = np.random.default_rng(args.seed)
    letters = np.array(list(ALPHABETS[args.type]))
    rows = [
        {"id": f"bg{k:05d}", "sequence": "".join(rng.choice(letters, args.length)), "pair": -1}
        for k in range(args.background)
    ]
    low, high = args.rates
    for k in range(args.pairs):
        original = "".join(rng.choice(letters, args.length))
        copy = mutated(original, rng.uniform(low, high), INDEL_SHARES[k % 3], rng)
        if args.type == "dna" and k % 2:
            copy = copy[::-1].translate(COMPLEMENT)
        rows += [
            {"id": f"p{k:04d}a", "sequence": original, "pair": k},
            {"id": f"p{k:04d}b", "sequence": copy, "pair": k},
        ]
    return pd.DataFrame(rows)


def search(table: pd.DataFrame, args: argparse.Namespace, exhaustive: bool) -> tuple:
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        pairs = similar_pairs(
            table[["id", "sequence"]],
            args.type,
            args.threshold,
            "longer",
            workdir=Path(scratch),
            threads=args.threads,
            exhaustive=exhaustive,
            co_optimal=True,
        )
        return pairs, time.perf_counter() - started


def missed_table(truth: pd.DataFrame, found: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """Per identity bin and indel share: true pairs, pairs the prefilter found, missed."""
    found_keys = set(zip(found["query"], found["target"], strict=True))
    truth = truth.copy()
    truth["found"] = [
        key in found_keys for key in zip(truth["query"], truth["target"], strict=True)
    ]
    pair_of = table.set_index("id")["pair"]
    planted = pair_of[truth["query"]].to_numpy()
    truth["indel_share"] = np.where(planted >= 0, np.array(INDEL_SHARES)[planted % 3], np.nan)
    truth["identity_bin"] = pd.cut(
        truth["identity"], [0, 0.3, 0.35, 0.4, 0.5, 0.8, 0.83, 0.86, 0.9, 1.0], right=False
    )
    grouped = truth.groupby(["identity_bin", "indel_share"], observed=True)["found"]
    summary = grouped.agg(true_pairs="size", prefilter_found="sum").reset_index()
    summary["missed"] = summary["true_pairs"] - summary["prefilter_found"]
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--type", choices=sorted(ALPHABETS), default="dna")
    parser.add_argument("--length", type=int, default=500)
    parser.add_argument("--threshold", type=float, default=0.8)
    parser.add_argument("--background", type=int, default=1500)
    parser.add_argument("--pairs", type=int, default=400)
    parser.add_argument(
        "--rates",
        type=float,
        nargs=2,
        default=(0.08, 0.22),
        help="range of the mutation rate per residue of a planted copy",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    rows = []
    for seed in args.seeds:
        args.seed = seed
        table = planted_table(args)
        truth, exhaustive_s = search(table, args, exhaustive=True)
        found, prefilter_s = search(table, args, exhaustive=False)
        summary = missed_table(truth, found, table)
        summary.insert(0, "seed", seed)
        rows.append(summary)
        print(
            f"seed {seed}: {len(table)} sequences, {len(truth)} pairs at or above "
            f"{args.threshold:g} (exhaustive, {exhaustive_s:.0f} s), prefilter found "
            f"{int(summary['prefilter_found'].sum())} ({prefilter_s:.0f} s), "
            f"missed {int(summary['missed'].sum())}"
        )
    together = pd.concat(rows)
    per_bin = together.groupby(["identity_bin", "indel_share"], observed=True)[
        ["true_pairs", "prefilter_found", "missed"]
    ].sum()
    print(per_bin.to_string())


if __name__ == "__main__":
    main()
