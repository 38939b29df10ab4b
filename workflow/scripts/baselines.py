"""Rule baselines: tuned traditional models and controls, train vs tune (never test)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # deeprules package, also in conda envs

from deeprules.baselines import run_baselines
from deeprules.io import InputError, setup_logging

log = setup_logging(snakemake.log[0])
try:
    run_baselines(
        Path(snakemake.input.train),
        Path(snakemake.input.tune),
        snakemake.params.dataset,
        snakemake.params.settings,
        Path(snakemake.output.summary).parent,
        threads=snakemake.threads,
    )
except InputError as error:
    log.error("%s", error)
    sys.exit(str(error))
