"""Rule split: homology-aware train / tune / test partitions, verified for leakage."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # deeprules package, also in conda envs

from deeprules.rule import run_rule
from deeprules.split import run

run_rule(snakemake, run)
