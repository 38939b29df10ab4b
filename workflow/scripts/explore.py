"""Rule explore: confounder, batch-effect and shortcut checks, written to checks.json."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # deeprules package, also in conda envs

from deeprules.explore import explore
from deeprules.io import InputError, setup_logging

log = setup_logging(snakemake.log[0])
try:
    explore(
        Path(snakemake.input.sequences),
        Path(snakemake.input.summary),
        Path(snakemake.input.dropped),
        snakemake.params.dataset,
        snakemake.params.settings,
        snakemake.params.seed,
        {name: Path(path) for name, path in snakemake.output.items()},
        threads=snakemake.threads,
    )
except InputError as error:
    log.error("%s", error)
    sys.exit(str(error))
