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
        balance=report(
            "results/{dataset}/split/balance.png",
            category="Split",
            caption="../report/split_balance.rst",
        ),
    log:
        "results/{dataset}/logs/split.log",
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
