"""Benchmark of the split stage (issues 5, 15): this split vs cluster-then-split vs random
vs GraphPart.

On the curated `amp` set at 0.3 identity over the longer sequence, each method's
partitions are judged by ONE independent exhaustive search under the
conservative definition (deeprules.mmseqs with co_optimal: a pair counts when any
optimal-scoring alignment reaches the threshold): sequences kept, cross-partition
pairs at or above the threshold, the worst label-share gap, the length AUROC
between every two partitions (deeprules.split.shift), wall time and peak memory
(each method runs in its own process). `homology-unbalanced` is the split with
`balance.length_bins: 0` (the label alone, as before covariate balance). Then
synthetic peptide families or random 200-bp DNA of growing size show how the
time grows.

    .venv/bin/python bench/split_bench.py                     # amp, all methods
    .venv/bin/python bench/split_bench.py --graphpart-csv out.csv   # judge a GraphPart run
    .venv/bin/python bench/split_bench.py --scale 10000 30000 --skip-amp
    .venv/bin/python bench/split_bench.py --dna 3000 20000 --skip-amp
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "workflow"))

from deeprules.contracts import PARTITIONS  # noqa: E402
from deeprules.io import read_tsv, write_tsv  # noqa: E402
from deeprules.mmseqs import find_mmseqs, similar_pairs  # noqa: E402
from deeprules.split.shift import shift_statistics  # noqa: E402

AMP_CSV = REPO / ".venv/lib/python3.11/site-packages/modlamp/data/AMPvsUniProt.csv"
CURATED = REPO / "results/amp/curate/sequences.tsv"
THRESHOLD = 0.3


def amp_table(curated: Path = CURATED) -> pd.DataFrame:
    """The curated amp set; without the curate output, the same cleaning done here."""
    if curated.is_file():
        return read_tsv(curated)
    raw = pd.read_csv(AMP_CSV, skiprows=1, header=None, names=["sequence", "label"], dtype=str)
    raw["sequence"] = raw["sequence"].str.strip().str.upper()
    raw["label"] = raw["label"].str.strip().map({"1": "AMP", "0": "UniProt"})
    conflicting = raw.groupby("sequence")["label"].nunique()
    raw = raw.drop_duplicates()
    raw = raw[raw["sequence"].map(conflicting) == 1].reset_index(drop=True)
    raw.insert(0, "id", [f"amp{k:05d}" for k in range(len(raw))])
    raw["source"] = "modlamp"
    return raw


def synthetic_table(n: int, seed: int = 0) -> pd.DataFrame:
    """Peptide families (sizes ~ geometric) of 15-60 residues, 10-40 % substituted."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("ACDEFGHIKLMNPQRSTVWY"))
    rows: list[tuple[str, str]] = []
    while len(rows) < n:
        founder = rng.choice(letters, size=int(rng.integers(15, 61)))
        label = "pos" if rng.random() < 0.5 else "neg"
        for _ in range(min(int(rng.geometric(0.15)), n - len(rows))):
            member = founder.copy()
            changed = rng.random(len(member)) < rng.uniform(0.1, 0.4)
            member[changed] = rng.choice(letters, size=int(changed.sum()))
            rows.append(("".join(member), label))
    table = pd.DataFrame(rows, columns=["sequence", "label"]).drop_duplicates("sequence")
    table.insert(0, "id", [f"syn{k:06d}" for k in range(len(table))])
    table["source"] = "synthetic"
    return table.reset_index(drop=True)


def dna_table(n: int, length: int = 200, seed: int = 0) -> pd.DataFrame:
    """Random DNA (no homology): the worst case for the common-subsequence skip."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("ACGT"))
    return pd.DataFrame(
        {
            "id": [f"dna{k:06d}" for k in range(n)],
            "sequence": ["".join(rng.choice(letters, size=length)) for _ in range(n)],
            "label": np.where(rng.random(n) < 0.5, "pos", "neg"),
            "source": "synthetic",
        }
    )


def run_method(
    sequences: Path, method: str, folder: Path, sequence_type: str = "protein", split: str = ""
) -> dict:
    """Run one split method in a child process, then its cost table (rule split_costs)
    in another: wall time and peak RSS of each from wait4. The split's time is what the
    training stages wait for; the cost table runs beside them."""
    settings = f"""
import sys
from pathlib import Path
sys.path.insert(0, {str(REPO / "workflow")!r})
from deeprules.config import split_costs_settings, split_settings, validate_run_config
from deeprules.contracts import PARTITIONS
from deeprules.split import build_settings, split_dataset
config = validate_run_config(
    {{"datasets": ["bench"], "seed": 42, "split": {{"method": {method!r}{split}}}}}
)
dataset = {{"name": "bench", "sequence_type": {sequence_type!r}}}
folder = Path({str(folder)!r})
"""
    split_code = (
        settings
        + f"""
outputs = {{k: folder / f"{{k}}.tsv" for k in (*PARTITIONS, "assignments", "dropped", "pairs")}}
outputs |= {{"report": folder / "split_report.json", "figure": folder / "identity.png"}}
split_dataset(Path({str(sequences)!r}), build_settings(split_settings(config, dataset)), outputs, 2)
"""
    )
    costs_code = (
        settings
        + f"""
from deeprules.rule import Job
from deeprules.split import costs
inputs = {{"sequences": Path({str(sequences)!r}), "assignments": folder / "assignments.tsv"}}
inputs["pairs"] = folder / "pairs.tsv"
outputs = {{"costs": folder / "balance_costs.json", "figure": folder / "balance.png"}}
costs.run(Job(inputs, outputs, split_costs_settings(config, dataset), threads=2))
"""
    )
    folder.mkdir(parents=True, exist_ok=True)
    seconds, usage = _child(split_code, f"{method} split")
    costs_seconds, costs_usage = _child(costs_code, f"{method} cost table")
    assignments = read_tsv(folder / "assignments.tsv")
    report = json.loads((folder / "split_report.json").read_text())
    return {
        "partition": assignments.set_index("id")["partition"],
        "seconds": seconds,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "peak_mb": usage.ru_maxrss / 1024,
        "costs_seconds": costs_seconds,
        "costs_peak_mb": costs_usage.ru_maxrss / 1024,
        "stage_timings": report["timings_s"],
    }


def _child(code: str, what: str) -> tuple[float, object]:
    """Wall seconds and rusage of `python -c code`."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise RuntimeError(f"{what} failed (status {status})")
    return time.perf_counter() - started, usage


def run_graphpart(table: pd.DataFrame, folder: Path) -> dict:
    """GraphPart 1.0.2 in mmseqs2 mode, longer-sequence identity, 0.70/0.15/0.15."""
    folder.mkdir(parents=True, exist_ok=True)
    fasta = folder / "amp.fasta"
    fasta.write_text(
        "".join(
            f">{i}|label={lab}\n{s}\n" for i, s, lab in table[["id", "sequence", "label"]].values
        )
    )
    env = dict(os.environ)
    env["PATH"] = f"{Path(find_mmseqs()).parent}:{Path(sys.executable).parent}:{env['PATH']}"
    command = [
        str(Path(sys.executable).parent / "graphpart"), "mmseqs2", "-ff", str(fasta),
        "-th", str(THRESHOLD), "-dn", "longest", "-te", "0.15", "-va", "0.15",
        "-ln", "label", "-of", str(folder / "graphpart.csv"), "-tf", "one-minus",
    ]  # fmt: skip
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if status != 0:
        raise RuntimeError(f"GraphPart failed (status {status})")
    result = graphpart_partition(folder / "graphpart.csv")
    result |= {
        "seconds": seconds,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "peak_mb": usage.ru_maxrss / 1024,
    }
    return result


def graphpart_partition(csv: Path, fasta: Path | None = None, table=None) -> dict:
    """GraphPart's clusters 0/1/2 are train/validation/test (largest is train). With the
    FASTA GraphPart read, its ids are mapped to `table` ids through the sequences."""
    out = pd.read_csv(csv, dtype={"AC": str})
    sizes = out["cluster"].value_counts()
    names = dict(zip(sizes.index, PARTITIONS, strict=True))
    partition = out.set_index("AC")["cluster"].map(names)
    if fasta is not None:
        lines = fasta.read_text().split()
        sequence_of = {h[1:].split("|")[0]: s for h, s in zip(lines[::2], lines[1::2], strict=True)}
        id_of = table.set_index("sequence")["id"]
        partition.index = id_of[[sequence_of[ac] for ac in partition.index]].to_numpy()
    return {"partition": partition}


def judge(table: pd.DataFrame, partition: pd.Series, workdir: Path) -> dict:
    """One yardstick for every method: the stage's exhaustive search under the
    conservative definition (a pair counts when any optimal-scoring alignment reaches
    0.3), the label shares, and the length AUROC between every two partitions."""
    kept = table[table["id"].isin(partition.index)].copy()
    kept["partition"] = kept["id"].map(partition)
    cross = similar_pairs(
        kept, "protein", THRESHOLD, "longer", workdir=workdir, threads=2, between="partition",
        co_optimal=True,
    )  # fmt: skip
    whole = table["label"].value_counts(normalize=True)
    shares = {
        name: kept.loc[kept["partition"] == name, "label"].value_counts(normalize=True)
        for name in PARTITIONS
    }
    shift = shift_statistics(kept, "protein", 42, ("length",))
    return {
        "kept": len(kept),
        "pairs_at_or_above": len(cross),
        "sizes": "/".join(str(int((kept["partition"] == p).sum())) for p in PARTITIONS),
        "label_gap_points": 100.0
        * float(
            max(abs(shares[p].reindex(whole.index, fill_value=0) - whole).max() for p in PARTITIONS)
        ),
        "length_auroc": " / ".join(
            f"{pair['length_auroc']:.3f}" for pair in shift["pairs"].values()
        ),  # train vs tune / test vs train / test vs tune
    }


def print_table(rows: list[dict]) -> None:
    frame = pd.DataFrame(rows)
    print(frame.to_string(index=False, float_format=lambda v: f"{v:.1f}"), flush=True)


def amp_rows(args: argparse.Namespace, scratch: Path) -> None:
    table = amp_table(args.amp_table)
    sequences = scratch / "amp.tsv"
    write_tsv(sequences, table)
    print(f"amp: {len(table)} sequences, label shares "
          f"{table['label'].value_counts(normalize=True).round(3).to_dict()}")  # fmt: skip
    rows = []
    for method in args.methods:
        split = (
            ', "balance": {"length_bins": 0}, "shift": {"fail_on_shift": False}'
            if method == "homology-unbalanced"
            else ""
        )
        name = "homology" if method == "homology-unbalanced" else method
        result = run_method(sequences, name, scratch / method, split=split)
        rows.append({
            "method": method, **judge(table, result["partition"], scratch),
            "wall_s": result["seconds"], "cpu_s": result["cpu_seconds"],
            "peak_mb": result["peak_mb"], "cost_table_s": result["costs_seconds"],
        })  # fmt: skip
        print(f"{method} stage timings: {result['stage_timings']}", flush=True)
    graphpart = None
    if args.graphpart:
        graphpart = run_graphpart(table, scratch / "graphpart")
    elif args.graphpart_csv:
        graphpart = graphpart_partition(args.graphpart_csv, args.graphpart_fasta, table)
    if graphpart is not None:
        rows.append({
            "method": "GraphPart 1.0.2", **judge(table, graphpart["partition"], scratch),
            "wall_s": graphpart.get("seconds", float("nan")),
            "cpu_s": graphpart.get("cpu_seconds", float("nan")),
            "peak_mb": graphpart.get("peak_mb", float("nan")),
        })  # fmt: skip
    print_table(rows)


def scale_rows(sizes: list[int], scratch: Path, dna: bool) -> None:
    """The homology split on synthetic peptide families or random 200-bp DNA."""
    rows = []
    for n in sizes:
        table = dna_table(n) if dna else synthetic_table(n)
        name = f"{'dna' if dna else 'synthetic'}{n}"
        sequences = scratch / f"{name}.tsv"
        write_tsv(sequences, table)
        result = run_method(
            sequences, "homology", scratch / name, "dna" if dna else "protein",
            ', "balance": {"compare": false}',
        )  # fmt: skip
        report = json.loads((scratch / name / "split_report.json").read_text())
        rows.append({
            "sequences": len(table), "search": report["similarity_search"].split(":")[0],
            "kept": report["sequences"]["kept"],
            "pairs": report["verification"]["pairs_at_or_above_threshold"],
            "wall_s": result["seconds"], "cpu_s": result["cpu_seconds"],
            "peak_mb": result["peak_mb"], **report["timings_s"],
        })  # fmt: skip
        print(rows[-1], flush=True)
    if rows:
        print_table(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graphpart", action="store_true", help="run GraphPart (slow)")
    parser.add_argument("--graphpart-csv", type=Path, help="judge an existing GraphPart output")
    parser.add_argument("--graphpart-fasta", type=Path, help="the FASTA that GraphPart read")
    parser.add_argument(
        "--methods", nargs="*", default=["homology", "homology-unbalanced", "cluster", "random"]
    )
    parser.add_argument("--skip-amp", action="store_true")
    parser.add_argument("--amp-table", type=Path, default=CURATED, help="curated amp table")
    parser.add_argument("--scale", type=int, nargs="*", default=[], help="synthetic sizes")
    parser.add_argument("--dna", type=int, nargs="*", default=[], help="random 200-bp DNA sizes")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="split-bench-") as scratch:
        scratch = Path(scratch)
        if not args.skip_amp:
            amp_rows(args, scratch)
        scale_rows(args.scale, scratch, dna=False)
        scale_rows(args.dna, scratch, dna=True)


if __name__ == "__main__":
    main()
