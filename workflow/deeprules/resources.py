"""What a cluster job asks for: memory and run time from the size of its data (issue 20).

Fixed requests (4 GB, an hour) either waste a cluster's queue on small runs or
kill a 100,000-sequence run at its first large stage. Every rule therefore
declares `resources: mem_mb=stage_memory_mb("<stage>"), runtime=stage_runtime("<stage>")`
(workflow/rules/common.smk imports these), and Snakemake calls them with the
job's input files and its `attempt` when the job is ready to run, so the
sizes are those of the real inputs. Per stage (`COSTS`):

    memory  (MB)      = max(floor_mb, base_mb + mb_per_data_mb x data MB
                                       + mb_per_other_mb x other input MB) x attempt
    runtime (minutes) = max(floor_minutes, minutes_per_data_mb x data MB) x attempt

"data MB" is the size of the inputs that hold the sequences (for curate: the
fetched source files, whose sizes fetch recorded in provenance.json); "other"
is every other input, e.g. the model files evaluate and interpret load. The
floors are the requests of the fixed profile before sizing, so a small run
(the default amp dataset, the tests' tiny sets) asks for exactly what it asked
for before; the slopes are round numbers on the generous side of the
measurements in docs/benchmarks.md and issue 20 (2 cores). A job that still
runs out of memory or time is resubmitted by the profile's `retries` with
`attempt` times as much. On a laptop these values only limit scheduling when
`--resources mem_mb=...` is given (Snakemake then caps each job at that total).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

BYTES_PER_MB = 1_000_000
SOURCES = "sources listed in provenance.json"  # curate's data: the fetched files


@dataclass(frozen=True)
class StageCost:
    """How one stage's memory and run time grow with its data (see the module docstring)."""

    floor_mb: int
    floor_minutes: int
    base_mb: int = 0
    mb_per_data_mb: float = 0.0
    mb_per_other_mb: float = 0.0
    minutes_per_data_mb: float = 0.0
    data: tuple[str, ...] = ()  # named inputs holding the sequences; () = every input
    why: str = "reads only small summaries: the floor"


COSTS: dict[str, StageCost] = {
    "fetch": StageCost(
        floor_mb=2000,
        floor_minutes=30,
        base_mb=1000,
        mb_per_data_mb=2,
        minutes_per_data_mb=0.1,
        why="local source files are read and checksummed; downloads stream to disk",
    ),
    "curate": StageCost(
        floor_mb=4000,
        floor_minutes=30,
        base_mb=1000,
        mb_per_data_mb=20,
        minutes_per_data_mb=0.5,
        data=(SOURCES,),
        why="the source files parsed into a table of strings (10-20 bytes per byte of text)",
    ),
    "explore": StageCost(
        floor_mb=4000,
        floor_minutes=60,
        base_mb=1000,
        mb_per_data_mb=50,
        minutes_per_data_mb=2,
        data=("sequences",),
        why="composition and position tables (N x letters), shortcut-feature models, a "
        "near-duplicate search on a bounded subsample",
    ),
    "explore_gate": StageCost(floor_mb=4000, floor_minutes=60),
    "split": StageCost(
        floor_mb=8000,
        floor_minutes=120,
        base_mb=2000,
        mb_per_data_mb=100,
        minutes_per_data_mb=10,
        data=("sequences",),
        why="MMseqs2's index and the table of pairs at the threshold, O(N) (958 MB peak for "
        "100,000 peptides); the exhaustive search is quadratic up to "
        "split.exhaustive_max_sequences, the prefilter beyond it",
    ),
    "split_costs": StageCost(
        floor_mb=4000,
        floor_minutes=60,
        base_mb=1000,
        mb_per_data_mb=50,
        minutes_per_data_mb=5,
        data=("sequences",),
        why="the homology graph's pairs and two more partitionings of it (balance off, "
        "stricter), each measured for length shift",
    ),
    "baselines": StageCost(
        floor_mb=4000,
        floor_minutes=60,
        base_mb=2000,
        mb_per_data_mb=250,
        minutes_per_data_mb=20,
        data=("train", "tune"),
        why="the k-mer matrix: dense float64, 5,460 columns for DNA k = 1-6, about 80 MB per "
        "MB of 500-bp sequences, for train and tune and a scaled copy; 7 families x trials, "
        "one family per thread at a time (3.4 GB peak at 14,000 x 500 bp train, 2 threads)",
    ),
    "cnn": StageCost(
        floor_mb=8000,
        floor_minutes=240,
        base_mb=3000,
        mb_per_data_mb=4,
        minutes_per_data_mb=30,
        data=("train", "tune"),
        why="TensorFlow itself plus the tokens (1 byte per position, about the input size) "
        "held up to 3 times in memory, or streamed above cnn.in_memory_max_mb; time grows "
        "with positions x trials x epochs (amp: 9 min for 0.3 MB on 2 CPU cores)",
    ),
    "evaluate": StageCost(
        floor_mb=4000,
        floor_minutes=60,
        base_mb=1000,
        mb_per_data_mb=20,
        mb_per_other_mb=2,
        minutes_per_data_mb=3,
        data=("test", "train"),
        why="every model file loaded (other inputs, x2) and the test features; the "
        "bootstrap panel grows with the test set; MMseqs2's nucleotide index (k = 13) "
        "adds 0.6 GB at any size (k = 15 took 8.5 GB)",
    ),
    "interpret": StageCost(
        floor_mb=4000,
        floor_minutes=60,
        base_mb=1000,
        mb_per_data_mb=20,
        mb_per_other_mb=2,
        minutes_per_data_mb=30,
        data=("tune",),
        why="the models loaded (other inputs, x2); permutation importance and attributions "
        "on (a bounded sample of) tune",
    ),
    "report": StageCost(floor_mb=4000, floor_minutes=60),
    "report_summary": StageCost(floor_mb=4000, floor_minutes=60),
}
# With pre-training (Tip 5): the search without the trunk costs what the CNN's costs,
# and the masked-residue pre-training trains the same trunk on the unlabeled pool + train.
COSTS["cnn_scratch"] = COSTS["cnn"]
COSTS["pretrain"] = StageCost(
    floor_mb=8000,
    floor_minutes=240,
    base_mb=3000,
    mb_per_data_mb=4,
    minutes_per_data_mb=30,
    data=("unlabeled", "train", "source_train"),  # those the job has (supervised: source_train)
    why="as the CNN: TensorFlow plus the one-hot sequences, over the unlabeled pool and train "
    "(or the pretrain.from dataset's train); time grows with positions x epochs",
)


def memory_mb(stage: str, data_mb: float, other_mb: float, attempt: int) -> int:
    """Memory (MB) a job of `stage` asks for, given its data and other inputs' sizes."""
    cost = COSTS[stage]
    need = cost.base_mb + cost.mb_per_data_mb * data_mb + cost.mb_per_other_mb * other_mb
    return math.ceil(max(cost.floor_mb, need)) * attempt


def runtime_minutes(stage: str, data_mb: float, attempt: int) -> int:
    """Run time (minutes) a job of `stage` asks for, given its data's size."""
    cost = COSTS[stage]
    return math.ceil(max(cost.floor_minutes, cost.minutes_per_data_mb * data_mb)) * attempt


def input_megabytes(stage: str, job_input: Any) -> tuple[float, float]:
    """(data MB, other MB) of a job's inputs (Snakemake's InputFiles).

    A missing input raises FileNotFoundError naming it, which Snakemake takes as
    "not known yet" (a dry run before the inputs exist) and asks again when the
    job is ready.
    """
    names = COSTS[stage].data
    every = _megabytes(job_input)
    if not names:
        return every, 0.0
    if names == (SOURCES,):
        (provenance,) = _files(job_input)
        return _source_megabytes(provenance), every
    present = [name for name in names if hasattr(job_input, name)]  # pretrain: one of two kinds
    if not present:
        raise KeyError(f"stage {stage!r}: the job has none of its data inputs {names}")
    data = sum(_megabytes(getattr(job_input, name)) for name in present)
    return data, max(every - data, 0.0)


def _files(files: Any) -> list[str]:
    """Paths of one input or a list of them (a named input may be a list, e.g. the models)."""
    if isinstance(files, str):
        return [files]
    return [path for item in files for path in _files(item)]


def _megabytes(files: Any) -> float:
    return sum(os.path.getsize(path) for path in _files(files)) / BYTES_PER_MB


def _source_megabytes(provenance: str) -> float:
    """The fetched files' sizes as fetch recorded them (curate reads those, not its input)."""
    with open(provenance, encoding="utf-8") as handle:
        sources = json.load(handle)["sources"]
    return sum(source["size"] for source in sources) / BYTES_PER_MB


def stage_memory_mb(stage: str) -> Callable[..., int]:
    """`resources: mem_mb=` of a rule: Snakemake calls it with the job's input and attempt."""
    _known(stage)

    def mem_mb(wildcards: Any, input: Any, attempt: int) -> int:
        data, other = input_megabytes(stage, input)
        return memory_mb(stage, data, other, attempt)

    return mem_mb


def stage_runtime(stage: str) -> Callable[..., int]:
    """`resources: runtime=` of a rule (minutes), called like `stage_memory_mb`'s function."""
    _known(stage)

    def runtime(wildcards: Any, input: Any, attempt: int) -> int:
        data, _ = input_megabytes(stage, input)
        return runtime_minutes(stage, data, attempt)

    return runtime


def _known(stage: str) -> None:
    """An unknown stage fails when the rule file is read, not at the job's submission."""
    if stage not in COSTS:
        raise KeyError(
            f"deeprules.resources has no cost model for stage {stage!r}: add it to COSTS"
        )
