# CNN tuned with Keras Tuner on train vs tune (Tips 3, 5, 6). The tuner
# directory results/{dataset}/cnn/tuner/ is not an output on purpose: Snakemake
# deletes the outputs of a failed job, and this folder lets a killed job resume.


rule cnn:
    input:
        # with pre-training (Tip 5): the trunk, which the search may freeze or fine-tune
        unpack(pretrain_inputs),
        train="results/{dataset}/split/train.tsv",
        tune="results/{dataset}/split/tune.tsv",
        split_report="results/{dataset}/split/split_report.json",
        # ancient: training waits for the gate, but a rerun gate (explore.strict
        # switched) does not retrain anything
        gate=ancient("results/{dataset}/explore/gate.json"),
    output:
        model="results/{dataset}/cnn/model.keras",
        hyperparameters="results/{dataset}/cnn/best_hyperparameters.json",
        predictions="results/{dataset}/cnn/predictions.tsv",
        trials=report(
            "results/{dataset}/cnn/trials.tsv",
            category="CNN",
            caption="../report/cnn_trials.rst",
        ),
        curves=report(
            "results/{dataset}/cnn/training_curves.png",
            category="CNN",
            caption="../report/cnn_curves.rst",
        ),
        summary="results/{dataset}/cnn/summary.json",
    log:
        "results/{dataset}/logs/cnn.log",
    benchmark:
        "results/{dataset}/benchmarks/cnn.tsv"
    conda:
        "../../envs/tensorflow-gpu.yaml"
    threads: cnn_threads
    resources:
        mem_mb=stage_memory_mb("cnn"),
        runtime=stage_runtime("cnn"),
        gpu=cnn_gpus,
    params:
        settings=stage_settings("cnn"),
    script:
        "../scripts/cnn.py"


# With pre-training only: the same search without the trunk, so evaluate can compare
# the CNN with what it would have been without pre-training (Tip 5), paired on test.


rule cnn_scratch:
    input:
        train="results/{dataset}/split/train.tsv",
        tune="results/{dataset}/split/tune.tsv",
        split_report="results/{dataset}/split/split_report.json",
        gate=ancient("results/{dataset}/explore/gate.json"),
    output:
        model="results/{dataset}/cnn_scratch/model.keras",
        hyperparameters="results/{dataset}/cnn_scratch/best_hyperparameters.json",
        predictions="results/{dataset}/cnn_scratch/predictions.tsv",
        trials="results/{dataset}/cnn_scratch/trials.tsv",
        curves="results/{dataset}/cnn_scratch/training_curves.png",
        summary="results/{dataset}/cnn_scratch/summary.json",
    log:
        "results/{dataset}/logs/cnn_scratch.log",
    benchmark:
        "results/{dataset}/benchmarks/cnn_scratch.tsv"
    conda:
        "../../envs/tensorflow-gpu.yaml"
    threads: cnn_threads
    resources:
        mem_mb=stage_memory_mb("cnn_scratch"),
        runtime=stage_runtime("cnn_scratch"),
        gpu=cnn_gpus,
    params:
        settings=stage_settings("cnn_scratch"),
    script:
        "../scripts/cnn.py"
