"""Rule curate: one validated, de-duplicated table and the ledger of what was dropped."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # deeprules package, also in conda envs

from deeprules.curate import curate, write_outputs
from deeprules.io import InputError, setup_logging

log = setup_logging(snakemake.log[0])
try:
    table, ledger, summary = curate(
        Path(snakemake.input.provenance), snakemake.params.dataset, snakemake.config["curate"]
    )
except InputError as error:
    log.error("%s", error)
    sys.exit(str(error))
write_outputs(
    table,
    ledger,
    summary,
    Path(snakemake.output.sequences),
    Path(snakemake.output.dropped),
    Path(snakemake.output.summary),
)
