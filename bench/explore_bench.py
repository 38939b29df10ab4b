"""Benchmark of the explore stage: the default amp dataset and 100,000 random proteins.

Usage: .venv/bin/python bench/explore_bench.py [--threads 2] [--skip-large]

Targets (issue 4): amp in under 60 s and 100,000 sequences of length 200 in
under 10 minutes on 2 cores. Both runs use the default settings of
config/config.yaml; above `explore.max_sequences` (20,000) the model-based
checks run on a class-stratified subsample, and above
`explore.near_duplicate_max_sequences` (20,000) the exhaustive
near-duplicate search runs on a subsample and its fraction is extrapolated.
The number of label shuffles is NOT reduced: the null needs no refits, so 999
shuffles per fold cost little at any size.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import modlamp
import numpy as np
import pandas as pd
import yaml

from deeprules import explore
from deeprules.config import explore_settings, validate_run_config
from deeprules.explore.stage import FIGURES, TABLES
from deeprules.io import read_json, setup_logging, write_json, write_tsv
from deeprules.rule import Job

ROOT = Path(__file__).resolve().parent.parent
AMINO_ACIDS = np.array(list("ACDEFGHIKLMNPQRSTVWY"))


def amp_table() -> pd.DataFrame:
    """modlAMP's AMPvsUniProt set de-duplicated as curate does (conflicting labels removed)."""
    path = Path(modlamp.__file__).parent / "data" / "AMPvsUniProt.csv"
    raw = pd.read_csv(path, skiprows=1, header=None, names=["sequence", "label"])
    raw["sequence"] = raw["sequence"].str.strip().str.upper()
    raw["label"] = raw["label"].map({0: "UniProt", 1: "AMP"})
    raw = raw[raw.groupby("sequence")["label"].transform("nunique") == 1]
    table = raw.drop_duplicates("sequence").reset_index(drop=True)
    table.insert(0, "id", [f"amp_{i}" for i in range(len(table))])
    table["source"] = "ampvsuniprot"
    table["database"] = table["label"].map({"AMP": "APD3", "UniProt": "UniProt"})
    return table


def random_table(n: int, length: int, seed: int) -> pd.DataFrame:
    """n random proteins of one length, two balanced classes, a random batch column."""
    rng = np.random.default_rng(seed)
    letters = rng.choice(AMINO_ACIDS, size=(n, length))
    return pd.DataFrame(
        {
            "id": [f"seq_{i}" for i in range(n)],
            "sequence": ["".join(row) for row in letters],
            "label": np.where(np.arange(n) % 2 == 0, "pos", "neg"),
            "source": "random",
            "batch": rng.choice(["plate1", "plate2", "plate3"], size=n),
        }
    )


def run_stage(
    table: pd.DataFrame, metadata: list[str], folder: Path, threads: int
) -> tuple[float, dict]:
    """Write curate-style inputs, run the stage with the default settings, time it."""
    write_tsv(folder / "sequences.tsv", table)
    write_json(folder / "summary.json", {"metadata_columns": metadata})
    ledger = pd.DataFrame(columns=["id", "sequence_sha256", "reason", "detail"])
    write_tsv(folder / "dropped.tsv", ledger)
    config = validate_run_config(yaml.safe_load((ROOT / "config" / "config.yaml").read_text()))
    dataset = {
        "name": folder.name,
        "sequence_type": "protein",
        "sources": [],
        "metadata": {"columns": [], "from_label": {}},
    }
    out = folder / "explore"
    outputs = {"checks": out / "checks.json"}
    outputs |= {name: out / f"{name}.tsv" for name in TABLES}
    outputs |= {name: out / f"{name.removesuffix('_png')}.png" for name in FIGURES}
    start = time.perf_counter()
    inputs = {
        name: folder / f"{name}.{suffix}"
        for name, suffix in (("sequences", "tsv"), ("summary", "json"), ("dropped", "tsv"))
    }
    explore.run(Job(inputs, outputs, explore_settings(config, dataset), threads=threads))
    return time.perf_counter() - start, read_json(outputs["checks"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-large", action="store_true", help="only the amp dataset")
    args = parser.parse_args()
    setup_logging()
    cases = [("amp (default dataset)", amp_table(), ["database"], 60)]
    if not args.skip_large:
        large = random_table(100_000, 200, seed=0)
        cases.append(("100,000 x 200 aa random", large, ["batch"], 600))
    rows = []
    for name, table, metadata, target in cases:
        with tempfile.TemporaryDirectory(prefix="explore-bench-") as scratch:
            seconds, result = run_stage(table, metadata, Path(scratch) / "data", args.threads)
        rows.append(
            {
                "case": name,
                "sequences": len(table),
                "modelled": result["sequences_modelled"],
                "seconds": round(seconds, 1),
                "target_s": target,
                "verdicts": " ".join(f"{k}={v}" for k, v in result["verdicts"].items()),
                "floor": result["floor"]["auroc"],
            }
        )
    print(f"\nmachine: {os.cpu_count()} cores, threads={args.threads}, no GPU")
    print(pd.DataFrame(rows).to_markdown(index=False))


if __name__ == "__main__":
    main()
