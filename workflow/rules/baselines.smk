# Baselines: traditional models tuned with the CNN's trial budget, and the controls
# that give their scores meaning (Tips 1, 2, 7). Reads train and tune, never test.


rule baselines:
    input:
        train="results/{dataset}/split/train.tsv",
        tune="results/{dataset}/split/tune.tsv",
        split_report="results/{dataset}/split/split_report.json",
        # ancient: training waits for the gate, but a rerun gate (explore.strict
        # switched) does not retrain anything
        gate=ancient("results/{dataset}/explore/gate.json"),
    output:
        models=baseline_files("models", "joblib"),
        params=baseline_files("params", "json"),
        trials=report(
            "results/{dataset}/baselines/trials.tsv",
            category="Baselines",
            caption="../report/baselines_trials.rst",
        ),
        predictions="results/{dataset}/baselines/predictions.tsv",
        summary_table=report(
            "results/{dataset}/baselines/summary.tsv",
            category="Baselines",
            caption="../report/baselines_summary.rst",
        ),
        summary="results/{dataset}/baselines/summary.json",
        inflation="results/{dataset}/baselines/inflation.json",
        summary_figure=report(
            "results/{dataset}/baselines/summary.png",
            category="Baselines",
            caption="../report/baselines_figure.rst",
        ),
        inflation_figure=report(
            "results/{dataset}/baselines/inflation.png",
            category="Baselines",
            caption="../report/baselines_inflation.rst",
        ),
    log:
        "results/{dataset}/logs/baselines.log",
    benchmark:
        "results/{dataset}/benchmarks/baselines.tsv"
    conda:
        "../../envs/core.yaml"
    threads: 2
    resources:
        mem_mb=stage_memory_mb("baselines"),
        runtime=stage_runtime("baselines"),
    params:
        settings=stage_settings("baselines"),
    script:
        "../scripts/baselines.py"
