"""Rule baselines: tuned traditional models and controls, train vs tune (never test)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # deeprules package, also in conda envs

from deeprules.baselines import run
from deeprules.rule import run_rule

run_rule(snakemake, run)
