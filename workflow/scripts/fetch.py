"""Rule fetch: download and verify every source of one dataset."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # deeprules package, also in conda envs

from deeprules.fetch import fetch_dataset
from deeprules.io import InputError, setup_logging

log = setup_logging(snakemake.log[0])
try:
    fetch_dataset(
        snakemake.params.dataset,
        snakemake.config["fetch"],
        Path(snakemake.output.files),
        Path(snakemake.output.provenance),
    )
except InputError as error:
    log.error("%s", error)
    sys.exit(str(error))
