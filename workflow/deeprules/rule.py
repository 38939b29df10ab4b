"""The one way a rule script hands its job to the package.

Every rule script is three lines: put the package on the path, import the
stage's `run`, call `run_rule(snakemake, run)`. The stage receives a `Job`:
its named inputs and outputs as paths, the rule's `params.settings` (built by
`deeprules.config` from the validated config and dataset file: the stage reads
nothing else), its threads and its log file. Logging goes to the rule's log,
and bad input ends the job with the message alone, not a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deeprules.io import InputError, setup_logging


@dataclass(frozen=True)
class Job:
    """What a stage may use: named files in and out, its settings, threads and log."""

    inputs: dict[str, Any]  # a Path, or a list of Paths for a named list of files
    outputs: dict[str, Any]
    settings: dict[str, Any]
    threads: int = 1
    log: Path | None = None

    @property
    def dataset(self) -> dict[str, Any]:
        """The keys of the dataset file this stage reads (always with its `name`)."""
        return self.settings["dataset"]


def job_from_snakemake(smk: Any) -> Job:
    """Turn Snakemake's script object into a Job (named entries only)."""
    return Job(
        inputs={name: _paths(value) for name, value in smk.input.items()},
        outputs={name: _paths(value) for name, value in smk.output.items()},
        settings=dict(smk.params.settings),
        threads=int(smk.threads),
        log=Path(smk.log[0]) if smk.log else None,
    )


def _paths(value: Any) -> Path | list[Path]:
    return Path(value) if isinstance(value, str) else [Path(item) for item in value]


def run_rule(smk: Any, stage: Callable[[Job], Any]) -> None:
    """Run `stage` on the rule's job; bad input exits non-zero with its message."""
    job = job_from_snakemake(smk)
    log = setup_logging(job.log)
    try:
        stage(job)
    except InputError as error:
        log.error("%s", error)
        sys.exit(str(error))
