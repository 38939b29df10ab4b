"""Rule explore: confounder, batch-effect and shortcut checks, written to checks.json."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # deeprules package, also in conda envs

from deeprules.explore import run
from deeprules.rule import run_rule

run_rule(snakemake, run)
