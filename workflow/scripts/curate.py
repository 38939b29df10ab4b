"""Rule curate: one validated, de-duplicated table and the ledger of what was dropped."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # deeprules package, also in conda envs

from deeprules.curate import run
from deeprules.rule import run_rule

run_rule(snakemake, run)
