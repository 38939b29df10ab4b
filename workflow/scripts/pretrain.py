"""Rule pretrain: masked-residue pre-training of the CNN's trunk (see deeprules.pretrain)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # deeprules package, also in conda envs

from deeprules.pretrain import run
from deeprules.rule import run_rule

run_rule(snakemake, run)
