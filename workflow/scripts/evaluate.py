"""Rule evaluate: score every final model on the test partition, once."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # deeprules package, also in conda envs

from deeprules.evaluate import run
from deeprules.rule import run_rule

run_rule(snakemake, run)
