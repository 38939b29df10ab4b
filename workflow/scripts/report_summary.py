"""Rule report_summary: one page with a row per dataset of the run."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # deeprules package, also in conda envs

from deeprules.report.summary import run
from deeprules.rule import run_rule

run_rule(snakemake, run)
