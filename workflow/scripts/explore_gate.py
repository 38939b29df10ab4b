"""Rule explore_gate: with explore.strict, stop before any training if a check failed."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # deeprules package, also in conda envs

from deeprules.explore.gate import run
from deeprules.rule import run_rule

run_rule(snakemake, run)
