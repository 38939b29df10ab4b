"""Rule split_costs: what covariate balance costs (kept vs shift vs drift per setting)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # deeprules package, also in conda envs

from deeprules.rule import run_rule
from deeprules.split.costs import run

run_rule(snakemake, run)
