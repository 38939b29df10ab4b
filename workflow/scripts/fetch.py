"""Rule fetch: download and verify every source of one dataset."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # deeprules package, also in conda envs

from deeprules.fetch import run
from deeprules.rule import run_rule

run_rule(snakemake, run)
