"""Rule cnn: tune, choose and refit the CNN on train vs tune (see deeprules.cnn)."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # deeprules package, also in conda envs

from deeprules.cnn import run_stage
from deeprules.io import InputError, setup_logging

log = setup_logging(snakemake.log[0])
# the GPUs this job was given (a cluster sets it; the SLURM test reads this line)
log.info("CUDA_VISIBLE_DEVICES=%s", os.environ.get("CUDA_VISIBLE_DEVICES", ""))
try:
    run_stage(
        log_file=snakemake.log[0],
        train_path=snakemake.input.train,
        tune_path=snakemake.input.tune,
        dataset=snakemake.params.dataset,
        config=snakemake.config,
        outputs=dict(snakemake.output.items()),
        tuner_dir=snakemake.params.tuner_dir,
        threads=snakemake.threads,
    )
except InputError as error:
    log.error("%s", error)
    sys.exit(str(error))
