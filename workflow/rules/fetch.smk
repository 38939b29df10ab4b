rule fetch:
    input:
        local=local_files,
    output:
        files=directory("results/{dataset}/fetch/files"),
        provenance="results/{dataset}/fetch/provenance.json",
    log:
        "results/{dataset}/logs/fetch.log",
    conda:
        "../../envs/core.yaml"
    resources:
        mem_mb=stage_memory_mb("fetch"),
        runtime=stage_runtime("fetch"),
    params:
        settings=stage_settings("fetch"),
    script:
        "../scripts/fetch.py"
