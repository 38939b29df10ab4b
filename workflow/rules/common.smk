# Shared set-up: config validation, dataset files, wildcard constraints and
# the input/params functions every rule file uses. Rules hold no logic.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "workflow"))

from deeprules.config import load_datasets, validate_run_config
from deeprules.io import InputError

try:
    validate_run_config(config)
    DATASETS = load_datasets(config)
except InputError as error:
    raise WorkflowError(str(error)) from None


wildcard_constraints:
    dataset="|".join(DATASETS),


def dataset_config(wildcards):
    """The validated dataset file of the job's dataset."""
    return DATASETS[wildcards.dataset]


def dataset_sources(wildcards):
    """What decides the download: a change here (and only here) refetches."""
    dataset = DATASETS[wildcards.dataset]
    return {key: dataset[key] for key in ("name", "sources", "allow_unpinned")}


def dataset_curation(wildcards):
    """What decides curation; split or model settings in the same file do not."""
    dataset = DATASETS[wildcards.dataset]
    keys = ("name", "sequence_type", "positive_class", "sources", "labels", "metadata")
    return {key: dataset[key] for key in keys if key in dataset}


def explore_settings(wildcards):
    """The explore settings (defaults filled by the schema); `strict` only concerns the gate,
    so switching it does not rerun the checks."""
    return {k: v for k, v in config["explore"].items() if k != "strict"}


def explore_strict(wildcards):
    """Whether a failed explore check stops the run before training."""
    return config["explore"]["strict"]


def run_seed(wildcards):
    """The run's seed: a param, so changing it reruns what it seeds."""
    return config["seed"]


def cnn_settings(wildcards):
    """Everything in the run config that changes the CNN (a change reruns the rule)."""
    return {
        "seed": config["seed"],
        "deterministic": config["deterministic"],
        "budget": config["budget"],
        "cnn": config["cnn"],
    }


def cnn_tuner_dir(wildcards):
    """Kept outside the rule's outputs so that a killed tuning job resumes from it."""
    return f"results/{wildcards.dataset}/cnn/tuner"


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


def baselines_settings(wildcards):
    """What decides the models: seed, the shared trial budget and the baselines section."""
    return {key: config[key] for key in ("seed", "budget", "baselines")}
