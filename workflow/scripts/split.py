"""Rule split: homology-aware train / tune / test partitions, verified for leakage."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # deeprules package, also in conda envs

from deeprules.io import InputError, setup_logging
from deeprules.split import split_from_config

log = setup_logging(snakemake.log[0])
try:
    split_from_config(
        Path(snakemake.input.sequences),
        snakemake.config,
        snakemake.params.dataset,
        {name: Path(path) for name, path in snakemake.output.items()},
        threads=snakemake.threads,
    )
except InputError as error:
    log.error("%s", error)
    sys.exit(str(error))
