rule curate:
    input:
        provenance="results/{dataset}/fetch/provenance.json",
    output:
        sequences="results/{dataset}/curate/sequences.tsv",
        dropped=shareable(
            "results/{dataset}/curate/dropped.tsv",
            category="Curate",
            caption="../report/dropped.rst",
        ),
        summary="results/{dataset}/curate/summary.json",
        # sources with role: unlabeled (pre-training only, Tip 5); header-only without
        unlabeled="results/{dataset}/curate/unlabeled.tsv",
        unlabeled_dropped="results/{dataset}/curate/unlabeled_dropped.tsv",
    log:
        "results/{dataset}/logs/curate.log",
    benchmark:
        "results/{dataset}/benchmarks/curate.tsv"
    conda:
        "../../envs/core.yaml"
    resources:
        mem_mb=stage_memory_mb("curate"),
        runtime=stage_runtime("curate"),
    params:
        settings=stage_settings("curate"),
    script:
        "../scripts/curate.py"
