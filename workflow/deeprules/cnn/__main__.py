"""`python -m deeprules.cnn stage|chief|worker JOB.json`: the processes `run(job)` starts.

`stage` runs the whole stage (started by `deeprules.cnn.run` with PYTHONHASHSEED
set); `chief` and `worker` are the distributed search's processes (started by
`deeprules.cnn.distributed`). The network's layers live in deeprules.cnn.model,
an importable module, so a model saved from here names them by that module.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from deeprules.cnn.distributed import serve_oracle, worker_threads
from deeprules.cnn.job import configure_tensorflow
from deeprules.cnn.stage import run_search
from deeprules.cnn.tuning import search
from deeprules.io import InputError, read_json, setup_logging

log = logging.getLogger("deeprules.cnn")


def main(argv: list[str] | None = None) -> None:
    """Run one of the stage's processes on its job spec."""
    parser = argparse.ArgumentParser(prog="python -m deeprules.cnn", description=__doc__)
    parser.add_argument("role", choices=["stage", "chief", "worker"])
    parser.add_argument("job", type=Path)
    args = parser.parse_args(argv)
    setup_logging()
    spec = read_json(args.job)
    try:
        if args.role == "stage":
            run_search(args.job)
        elif args.role == "chief":
            configure_tensorflow(spec, threads=1)
            serve_oracle(spec)
        else:
            configure_tensorflow(spec, worker_threads(spec))
            search(spec)
    except InputError as error:
        log.error("%s", error)
        sys.exit(str(error))


if __name__ == "__main__":
    main()
