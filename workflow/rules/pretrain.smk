# Pretrain (Tip 5): the CNN's trunk, trained by masked-residue prediction on the
# unlabeled sources plus train, or (pretrain.from) by classification on another
# dataset's train partition and labels; either minus the split's list of homologues of
# tune and test. Only for datasets with pre-training (PRETRAINING in common.smk). It
# never reads a test.tsv (pretrain_data_inputs). The checkpoint folder
# results/{dataset}/pretrain/checkpoint/ is not an output on purpose: Snakemake deletes
# a failed job's outputs, and it lets a killed job resume after its last finished epoch.


rule pretrain:
    input:
        unpack(pretrain_data_inputs),
        gate=ancient("results/{dataset}/explore/gate.json"),
    output:
        trunk="results/{dataset}/pretrain/trunk.keras",
        summary="results/{dataset}/pretrain/summary.json",
    log:
        "results/{dataset}/logs/pretrain.log",
    benchmark:
        "results/{dataset}/benchmarks/pretrain.tsv"
    conda:
        "../../envs/tensorflow-gpu.yaml"
    threads: cnn_threads
    resources:
        mem_mb=stage_memory_mb("pretrain"),
        runtime=stage_runtime("pretrain"),
        gpu=cnn_gpus,
    params:
        settings=stage_settings("pretrain"),
    script:
        "../scripts/pretrain.py"
