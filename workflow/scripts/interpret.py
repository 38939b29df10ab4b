"""Rule interpret: baseline feature importance and CNN attributions and motifs, on tune."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # deeprules package, also in conda envs

from deeprules.interpret import interpret_models
from deeprules.io import InputError, setup_logging

log = setup_logging(snakemake.log[0])
inputs = snakemake.input
try:
    interpret_models(
        tune_path=Path(inputs.tune),
        baselines_summary=Path(inputs.baselines_summary),
        baselines_models_dir=Path(snakemake.params.models_dir),
        cnn_model_path=Path(inputs.cnn_model),
        cnn_summary_path=Path(inputs.cnn_summary),
        dataset=snakemake.params.dataset,
        settings=snakemake.params.settings,
        seed=snakemake.params.seed,
        out_dir=Path(snakemake.output.summary).parent,
    )
except InputError as error:
    log.error("%s", error)
    sys.exit(str(error))
