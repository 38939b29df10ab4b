"""Rule evaluate: score every final model on the test partition, once."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # deeprules package, also in conda envs

from deeprules.evaluate import (
    baseline_models,
    cnn_model,
    evaluate_test_partition,
    read_stage_predictions,
)
from deeprules.io import InputError, setup_logging

log = setup_logging(snakemake.log[0])
inputs = snakemake.input
try:
    evaluate_test_partition(
        test_path=Path(inputs.test),
        train_path=Path(inputs.train),
        models=[
            *baseline_models(Path(inputs.baselines_summary), Path(snakemake.params.models_dir)),
            cnn_model(
                Path(inputs.cnn_model),
                Path(inputs.cnn_summary),
                snakemake.params.dataset,
                snakemake.params.cnn,
            ),
        ],
        stage_predictions=read_stage_predictions(
            [Path(inputs.baselines_predictions), Path(inputs.cnn_predictions)],
            summaries={Path(inputs.cnn_predictions): Path(inputs.cnn_summary)},
        ),
        dataset=snakemake.params.dataset,
        settings=snakemake.params.settings,
        seed=snakemake.params.seed,
        ledger_path=Path(snakemake.params.ledger),
        out_dir=Path(snakemake.output.metrics).parent,
        threads=snakemake.threads,
    )
except InputError as error:
    log.error("%s", error)
    sys.exit(str(error))
