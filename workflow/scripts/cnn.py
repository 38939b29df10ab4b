"""Rule cnn: tune, choose and refit the CNN on train vs tune (see deeprules.cnn)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # deeprules package, also in conda envs

from deeprules.cnn import run
from deeprules.rule import run_rule

run_rule(snakemake, run)
