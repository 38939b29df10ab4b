# Pretrain (Tip 5): masked-residue pre-training of the CNN's trunk on the unlabeled
# sources (minus the split's list of homologues of tune and test) plus train. Only for
# datasets with a source of role unlabeled (PRETRAINING in common.smk). It never reads
# test.tsv. The checkpoint folder results/{dataset}/pretrain/checkpoint/ is not an
# output on purpose: Snakemake deletes a failed job's outputs, and it lets a killed
# job resume after its last finished epoch.


rule pretrain:
    input:
        unlabeled="results/{dataset}/curate/unlabeled.tsv",
        excluded="results/{dataset}/split/pretrain_excluded.tsv",
        train="results/{dataset}/split/train.tsv",
        tune="results/{dataset}/split/tune.tsv",
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
