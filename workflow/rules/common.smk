# Shared set-up: config validation, dataset files, wildcard constraints and
# the input/params functions every rule file uses. Rules hold no logic.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "workflow"))

from deeprules.config import (
    STAGE_SETTINGS,
    config_layers,
    load_datasets,
    pretrains,
    supervised_source,
    validate_run_config,
)
from deeprules.failures import failure_summary
from deeprules.io import InputError

# every rule's `resources: mem_mb=..., runtime=...`: sized from its inputs and attempt
from deeprules.resources import stage_memory_mb, stage_runtime

try:
    # the files (and --config values) Snakemake merged, so an error names the right one
    LAYERS = config_layers(
        workflow.configfiles,
        workflow.overwrite_configfiles,
        workflow.config_settings.config,
    )
    validate_run_config(config, layers=LAYERS)
    DATASETS = load_datasets(config, layers=LAYERS)
except InputError as error:
    raise WorkflowError(str(error)) from None


wildcard_constraints:
    dataset="|".join(DATASETS),


onerror:
    # the profiles keep going past a failed dataset; name every failed one last
    print(failure_summary(log, list(DATASETS)), file=sys.stderr)


def stage_settings(stage):
    """The rule's `params.settings`: exactly what the stage reads, built by
    deeprules.config from the validated config and dataset file. A change of any of
    it reruns the rule (and what depends on it); nothing else does."""
    build = STAGE_SETTINGS[stage]
    return lambda wildcards: build(config, DATASETS[wildcards.dataset])


# Datasets with `sensitive: true` (Tip 10). Snakemake's report registers outputs for
# every dataset alike, so one sensitive dataset keeps them out for the whole run.
SENSITIVE = sorted(name for name, dataset in DATASETS.items() if dataset["sensitive"])


def shareable(path, **report_options):
    """An output showing sequences, weights, filters or per-sequence values: registered
    for Snakemake's report unless a dataset of the run is sensitive (then only kept in
    results/; deeprules.report.sensitive lists them on the reviewer's page)."""
    return path if SENSITIVE else report(path, **report_options)


def local_files(wildcards):
    """The files a dataset reads where they are (kind: local sources, its labels.table):
    inputs of fetch, so that editing one reruns fetch and every stage after it, and a
    missing one stops the run before any job."""
    dataset = DATASETS[wildcards.dataset]
    files = [
        source["path"] for source in dataset["sources"] if source["kind"] == "local"
    ]
    if dataset["labels"]["from"] == "table":
        files.append(dataset["labels"]["table"])
    return files


# Datasets with pre-training (Tip 5): an unlabeled source, or another dataset named by
# pretrain.from. Only they get the pretrain rule, a CNN search with the pre-trained
# trunk as an option, and the from-scratch CNN beside it.
PRETRAINING = sorted(
    name for name, dataset in DATASETS.items() if pretrains(config, dataset)
)


def source_of(wildcards):
    """The dataset whose train partition pre-trains this one (pretrain.from), or None."""
    return supervised_source(config, DATASETS[wildcards.dataset])


def pretraining_input(wildcards):
    """What the split filters for pre-training (it lists the homologues of tune and
    test): curate/unlabeled.tsv, or the pretrain.from dataset's split/train.tsv (never
    its tune or test); nothing without pre-training, so that split stays as it was."""
    if wildcards.dataset not in PRETRAINING:
        return {}
    source = source_of(wildcards)
    if source is not None:
        return {"pretrain_source": f"results/{source}/split/train.tsv"}
    return {"unlabeled": f"results/{wildcards.dataset}/curate/unlabeled.tsv"}


def pretrain_data_inputs(wildcards):
    """The pretrain rule's data, never a test.tsv. Masked residues: the unlabeled pool,
    train and tune. Supervised: the source dataset's train (its labels), tune (measured
    each epoch) and split report (its classes). Both: the split's exclusion ledger."""
    excluded = f"results/{wildcards.dataset}/split/pretrain_excluded.tsv"
    source = source_of(wildcards)
    if source is None:
        folder = f"results/{wildcards.dataset}"
        return {
            "unlabeled": f"{folder}/curate/unlabeled.tsv",
            "excluded": excluded,
            "train": f"{folder}/split/train.tsv",
            "tune": f"{folder}/split/tune.tsv",
        }
    folder = f"results/{source}/split"
    return {
        "excluded": excluded,
        "source_train": f"{folder}/train.tsv",
        "source_tune": f"{folder}/tune.tsv",
        "source_split_report": f"{folder}/split_report.json",
        # its labels are learned from only once its own checks allowed training
        "source_gate": ancient(f"results/{source}/explore/gate.json"),
    }


def pretrain_inputs(wildcards):
    """The pre-trained trunk and its summary, for the CNN search of a dataset with
    pre-training (the trunk then is a tuned option); nothing for the others."""
    if wildcards.dataset not in PRETRAINING:
        return {}
    folder = f"results/{wildcards.dataset}/pretrain"
    return {
        "trunk": f"{folder}/trunk.keras",
        "pretrain_summary": f"{folder}/summary.json",
    }


def scratch_cnn_inputs(wildcards):
    """The from-scratch CNN (the search without the trunk), which evaluate compares with
    the CNN that could use it; nothing for a dataset without pre-training."""
    if wildcards.dataset not in PRETRAINING:
        return {}
    folder = f"results/{wildcards.dataset}/cnn_scratch"
    return {
        "scratch_model": f"{folder}/model.keras",
        "scratch_summary": f"{folder}/summary.json",
        "scratch_predictions": f"{folder}/predictions.tsv",
    }


def pretrain_summary_input(wildcards):
    """pretrain/summary.json for the report of a dataset with pre-training."""
    if wildcards.dataset not in PRETRAINING:
        return {}
    return {"pretrain": f"results/{wildcards.dataset}/pretrain/summary.json"}


def cnn_gpus(wildcards):
    """GPUs the job asks the cluster for (0 on a laptop)."""
    return config["cnn"]["gpus"]


def cnn_threads(wildcards):
    """Threads of the CNN job (TensorFlow intra-op parallelism)."""
    return config["cnn"]["threads"]


# Controls fitted beside the tuned families (as deeprules.baselines.CONTROLS).
BASELINE_CONTROLS = ["control_majority", "control_shuffled", "control_shortcut"]


def baseline_files(folder, suffix):
    """One file per model: every enabled family, then the three controls."""
    models = [*config["baselines"]["families"], *BASELINE_CONTROLS]
    return expand(
        "results/{{dataset}}/baselines/{folder}/{model}.{suffix}",
        folder=folder,
        model=models,
        suffix=suffix,
    )


# Every figure the reviewer's page shows, by stage: declared as the report rule's
# inputs, so the page shows exactly these and is rebuilt when one changes.
FIGURES = {
    "explore": ["lengths", "composition", "pca", "shortcuts", "positions"],
    "split": ["identity", "balance"],
    "baselines": ["summary", "inflation"],
    "cnn": ["training_curves"],
    "evaluate": ["roc", "pr", "calibration", "confusion", "failure_domains"],
    "interpret": ["baseline_importance", "attributions", "filter_logos"],
}


def report_figures(wildcards):
    return [
        f"results/{wildcards.dataset}/{stage}/{name}.png"
        for stage, names in FIGURES.items()
        for name in names
    ]
