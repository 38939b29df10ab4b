# Interpret: what drives the predictions (Tip 8), on the tune partition only;
# test.tsv is never an input here. Weights, filters and example sequences are
# `shareable`: not in Snakemake's report when a dataset is sensitive (Tip 10).


rule interpret:
    input:
        tune="results/{dataset}/split/tune.tsv",
        baselines_summary="results/{dataset}/baselines/summary.tsv",
        baseline_models=baseline_files("models", "joblib"),
        cnn_model="results/{dataset}/cnn/model.keras",
        cnn_summary="results/{dataset}/cnn/summary.json",
    output:
        summary="results/{dataset}/interpret/summary.json",
        importance=shareable(
            "results/{dataset}/interpret/baseline_importance.tsv",
            category="Interpret",
            caption="../report/interpret_importance_table.rst",
        ),
        importance_plot=shareable(
            "results/{dataset}/interpret/baseline_importance.png",
            category="Interpret",
            caption="../report/interpret_importance.rst",
        ),
        attributions="results/{dataset}/interpret/attributions.tsv",
        attributions_plot=shareable(
            "results/{dataset}/interpret/attributions.png",
            category="Interpret",
            caption="../report/interpret_attributions.rst",
        ),
        filters=shareable(
            "results/{dataset}/interpret/filters.tsv",
            category="Interpret",
            caption="../report/interpret_filters.rst",
        ),
        filter_logos=shareable(
            "results/{dataset}/interpret/filter_logos.png",
            category="Interpret",
            caption="../report/interpret_filter_logos.rst",
        ),
    log:
        "results/{dataset}/logs/interpret.log",
    benchmark:
        "results/{dataset}/benchmarks/interpret.tsv"
    conda:
        "../../envs/tensorflow-gpu.yaml"
    threads: 2
    resources:
        mem_mb=stage_memory_mb("interpret"),
        runtime=stage_runtime("interpret"),
    params:
        settings=stage_settings("interpret"),
    script:
        "../scripts/interpret.py"
