# Split: train / tune / test with no cross-partition pair at or above the identity
# threshold (Tip 7), checked by an independent search. Only evaluate may list test.tsv.
# For a dataset with pre-training the split also lists the pre-training sequences (the
# unlabeled pool, or the train partition of the pretrain.from dataset) that are
# homologues of tune or test (pretrain_excluded.tsv): it is the stage that reads every
# partition before the test set is locked, so the pretrain rule never needs test.tsv.


rule split:
    input:
        unpack(pretraining_input),
        sequences="results/{dataset}/curate/sequences.tsv",
    output:
        train="results/{dataset}/split/train.tsv",
        tune="results/{dataset}/split/tune.tsv",
        test="results/{dataset}/split/test.tsv",
        assignments="results/{dataset}/split/assignments.tsv",
        dropped=shareable(
            "results/{dataset}/split/dropped.tsv",
            category="Split",
            caption="../report/split_dropped.rst",
        ),
        report="results/{dataset}/split/split_report.json",
        pretrain_excluded="results/{dataset}/split/pretrain_excluded.tsv",
        figure=report(
            "results/{dataset}/split/identity.png",
            category="Split",
            caption="../report/split_identity.rst",
        ),
        pairs="results/{dataset}/split/homology_pairs.tsv",
    log:
        "results/{dataset}/logs/split.log",
    benchmark:
        "results/{dataset}/benchmarks/split.tsv"
    conda:
        "../../envs/mmseqs2.yaml"
    threads: 8
    resources:
        mem_mb=stage_memory_mb("split"),
        runtime=stage_runtime("split"),
    params:
        settings=stage_settings("split"),
    script:
        "../scripts/split.py"


# What covariate balance costs: the same graph repartitioned with balance off and
# stricter. No model waits for it; it runs beside the training stages.
rule split_costs:
    input:
        sequences="results/{dataset}/curate/sequences.tsv",
        assignments="results/{dataset}/split/assignments.tsv",
        pairs="results/{dataset}/split/homology_pairs.tsv",
    output:
        costs="results/{dataset}/split/balance_costs.json",
        figure=report(
            "results/{dataset}/split/balance.png",
            category="Split",
            caption="../report/split_balance.rst",
        ),
    log:
        "results/{dataset}/logs/split_costs.log",
    benchmark:
        "results/{dataset}/benchmarks/split_costs.tsv"
    conda:
        "../../envs/core.yaml"
    threads: 2
    resources:
        mem_mb=stage_memory_mb("split_costs"),
        runtime=stage_runtime("split_costs"),
    params:
        settings=stage_settings("split_costs"),
    script:
        "../scripts/split_costs.py"
