"""Rule report: the reviewer's page, model card and DOME summary for one dataset."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # deeprules package, also in conda envs

from deeprules.io import setup_logging
from deeprules.report import build_report

log = setup_logging(snakemake.log[0])
build_report(
    {name: Path(path) for name, path in snakemake.input.items()},
    snakemake.params.dataset,
    snakemake.config,
    {name: Path(path) for name, path in snakemake.output.items()},
)
log.info("report written to %s", snakemake.output.html)
