rule fetch:
    output:
        files=directory("results/{dataset}/fetch/files"),
        provenance="results/{dataset}/fetch/provenance.json",
    params:
        dataset=dataset_sources,
    log:
        "results/{dataset}/logs/fetch.log",
    conda:
        "../../envs/core.yaml"
    script:
        "../scripts/fetch.py"
