"""The whole workflow on a planted DNA task, with the default config: time and memory per stage,
test AUROC per model and the scorecard's Tip 1 verdict.

    .venv/bin/python bench/end_to_end.py [--sequences 3000] [--length 200] [--workdir DIR]
        [--seed 1] [--cores 2] [--set key=value ...] [--until RULE ...] [--resume]

The task is tests/planted_interaction.py's promoter-spacing task: every sequence holds the
same two boxes in the same order and only the spacer between them carries the label, so
no k-mer count sees it (the tuned baselines must stay near chance) while a CNN that sees
31 contiguous bases can learn it (issue 19: Tip 1 must then say deep learning is
justified). The same generator at 5,000 / 20,000 / 100,000 x 500 bp is the size
benchmark of issue 20. The sequences are written as two local FASTA sources (one per
label) of a dataset file `planted.yaml`; the run config names only the dataset and the
seed (everything else is the schema's default) unless `--set` overrides a key, e.g.
`--set budget.trials=10`. `--resume` continues a run in an existing workdir (after
`--until`, or a stopped run) without rewriting its files, so Snakemake reruns nothing
that finished; the tables then cover every stage, and the end-to-end time is this
invocation's only.

Per stage: wall seconds, CPU seconds and peak resident memory from the rules' own
`benchmark:` files (Snakemake samples memory every 0.5 s for the first 15 s of a job,
then every 30 s, so a short spike in a long job can be missed).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "workflow"))
sys.path.insert(0, str(REPO / "tests"))  # the planted task's generator

import pandas as pd  # noqa: E402
import yaml  # noqa: E402
from planted import as_fasta  # noqa: E402
from planted_interaction import planted_interaction_table  # noqa: E402

from deeprules.io import read_json  # noqa: E402

DATASET = "planted"


def nested(assignments: list[str]) -> dict:
    """`a.b=3` settings as a nested mapping (values parsed as YAML)."""
    config: dict = {}
    for assignment in assignments:
        key, _, value = assignment.partition("=")
        *parents, leaf = key.split(".")
        node = config
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = yaml.safe_load(value)
    return config


def write_project(workdir: Path, args: argparse.Namespace) -> None:
    """Data files, the dataset file and a run config of defaults."""
    table = planted_interaction_table(args.sequences, args.seed, length=args.length)
    (workdir / "data").mkdir(parents=True, exist_ok=True)
    (workdir / "config/datasets").mkdir(parents=True, exist_ok=True)
    sources = []
    for label in sorted(table["label"].unique()):
        path = f"data/{label}.fa"
        (workdir / path).write_text(as_fasta(table[table["label"] == label]))
        sources.append({"name": label, "kind": "local", "path": path, "label": label})
    dataset = {
        "description": f"{args.sequences} planted promoter-spacing sequences of {args.length} bp",
        "sequence_type": "dna",
        "positive_class": "promoter",
        "sources": sources,
        "labels": {"from": "source"},
        "ethics": [{"concern": "Synthetic sequences only.", "status": "not_applicable"}],
    }
    config = {"datasets": [DATASET], "seed": 42, **nested(args.set)}
    (workdir / f"config/datasets/{DATASET}.yaml").write_text(yaml.safe_dump(dataset))
    (workdir / "config/config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def run(workdir: Path, cores: int, until: list[str] | None = None) -> float:
    """The workflow to its report (or to the `until` rules); wall seconds."""
    command = [
        str(REPO / ".venv/bin/snakemake"),
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(workdir / "config/config.yaml"),
        "--cores",
        str(cores),
        *(["--until", *until] if until else []),
    ]
    env = {**os.environ, "PATH": f"{REPO / '.venv/bin'}:{os.environ['PATH']}"}
    start = time.monotonic()
    with open(workdir / "snakemake.log", "w") as log:
        subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT, env=env)
    return time.monotonic() - start


def stage_table(results: Path) -> pd.DataFrame:
    """Wall, CPU and peak memory of every stage, in the order the stages ran."""
    rows = []
    for path in (results / "benchmarks").glob("*.tsv"):
        row = pd.read_csv(path, sep="\t").iloc[0]
        rows.append(
            {
                "stage": path.stem,
                "wall s": round(float(row["s"]), 1),
                "CPU s": pd.to_numeric(row["cpu_time"], errors="coerce"),
                "peak RSS MB": pd.to_numeric(row["max_rss"], errors="coerce"),
                "finished": path.stat().st_mtime,
            }
        )
    return pd.DataFrame(rows).sort_values("finished").drop(columns="finished")


def model_table(results: Path) -> pd.DataFrame:
    """Tune and test AUROC of every model evaluate scored."""
    metrics = read_json(results / "evaluate/metrics.json")
    tune = metrics["best_baseline"]["tune_scores"]
    rows = []
    for name, model in metrics["models"].items():
        auroc = model["metrics"]["auroc"]
        rows.append(
            {
                "model": name,
                "role": model["role"],
                "tune AUROC": tune.get(name),
                "test AUROC": round(auroc["value"], 3),
                "95% CI": f"{auroc['ci_low']:.3f}-{auroc['ci_high']:.3f}",
            }
        )
    return pd.DataFrame(rows).sort_values("test AUROC", ascending=False)


def tip(results: Path, number: int) -> dict:
    scorecard = read_json(results / "report/scorecard.json")
    return next(t for t in scorecard["tips"] if t["tip"] == number)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=3000)
    parser.add_argument("--length", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/deeprules-end-to-end"))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--until", nargs="+", metavar="RULE", help="stop after these rules (and what they need)"
    )
    parser.add_argument("--resume", action="store_true", help="continue the run in --workdir")
    args = parser.parse_args()
    if not args.resume:
        write_project(args.workdir, args)
    print(f"{args.sequences} x {args.length} bp in {args.workdir}; load {os.getloadavg()}")
    seconds = run(args.workdir, args.cores, args.until)
    results = args.workdir / "results" / DATASET
    pd.set_option("display.width", 200)
    print(stage_table(results).to_string(index=False))
    print(f"end to end: {seconds / 60:.1f} min; load {os.getloadavg()}")
    if args.until:
        return
    print(model_table(results).to_string(index=False))
    first = tip(results, 1)
    print(f"Tip 1: {first['verdict']}: {first['answer']}")
    print(f"Tip 2: {tip(results, 2)['evidence']}")


if __name__ == "__main__":
    main()
