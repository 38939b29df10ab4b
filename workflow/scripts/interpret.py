"""Rule interpret: baseline feature importance and CNN attributions and motifs, on tune."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # deeprules package, also in conda envs

from deeprules.interpret import run
from deeprules.rule import run_rule

run_rule(snakemake, run)
