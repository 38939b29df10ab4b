"""Rule explore_gate: with explore.strict, stop before any training if a check failed."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # deeprules package, also in conda envs

from deeprules.explore import enforce_strict
from deeprules.io import InputError, setup_logging

log = setup_logging(snakemake.log[0])
try:
    enforce_strict(
        Path(snakemake.input.checks), Path(snakemake.output.gate), snakemake.params.strict
    )
except InputError as error:
    log.error("%s", error)
    sys.exit(str(error))
