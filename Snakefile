# deeprules: the Ten Quick Tips for Deep Learning in Biology as a workflow.
# Stages, the files between them and where each concern lives: docs/architecture.md.
import sys
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")

# A YAML syntax error in the run config is named with file and line before Snakemake
# reads it (deeprules.config_checks).
sys.path.insert(0, str(Path(workflow.basedir) / "workflow"))
from deeprules.config_checks import check_yaml_syntax

check_yaml_syntax(["config/config.yaml"])


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/fetch.smk"
include: "workflow/rules/curate.smk"
include: "workflow/rules/explore.smk"
include: "workflow/rules/split.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/baselines.smk"
include: "workflow/rules/cnn.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/interpret.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        expand("results/{dataset}/curate/sequences.tsv", dataset=DATASETS),
        expand("results/{dataset}/explore/gate.json", dataset=DATASETS),
        expand("results/{dataset}/split/split_report.json", dataset=DATASETS),
        expand("results/{dataset}/baselines/summary.tsv", dataset=DATASETS),
        expand("results/{dataset}/pretrain/summary.json", dataset=PRETRAINING),
        expand("results/{dataset}/cnn/summary.json", dataset=DATASETS),
        expand("results/{dataset}/cnn_scratch/summary.json", dataset=PRETRAINING),
        expand("results/{dataset}/evaluate/metrics.json", dataset=DATASETS),
        expand("results/{dataset}/interpret/summary.json", dataset=DATASETS),
        expand("results/{dataset}/report/report.html", dataset=DATASETS),
        "results/summary.html",
