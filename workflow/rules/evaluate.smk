# Evaluate: the only rule that reads the test partition (Tips 7 and 9); it scores
# every final model once.
# - The access ledger ({evaluate.ledger_dir}/<hash of the test partition>.json, outside
#   results/) is NOT an output: Snakemake deletes a job's outputs before running it,
#   so a ledger among them would vanish on exactly the rerun it has to police.
# - Every output is flagged update(): Snakemake then keeps the previous files while
#   the job runs and restores them if it fails, so a refused second look at test
#   (a different model set without evaluate.allow_reuse) changes nothing on disk.


rule evaluate:
    input:
        # with pre-training (Tip 5): the from-scratch CNN, compared with the CNN
        unpack(scratch_cnn_inputs),
        test="results/{dataset}/split/test.tsv",
        train="results/{dataset}/split/train.tsv",
        split_report="results/{dataset}/split/split_report.json",
        baselines_summary="results/{dataset}/baselines/summary.tsv",
        baselines_predictions="results/{dataset}/baselines/predictions.tsv",
        baseline_models=baseline_files("models", "joblib"),
        cnn_model="results/{dataset}/cnn/model.keras",
        cnn_summary="results/{dataset}/cnn/summary.json",
        cnn_predictions="results/{dataset}/cnn/predictions.tsv",
    output:
        metrics=update("results/{dataset}/evaluate/metrics.json"),
        predictions=update("results/{dataset}/evaluate/predictions.tsv"),
        metrics_table=report(
            update("results/{dataset}/evaluate/metrics.tsv"),
            category="Evaluate",
            caption="../report/evaluate_metrics.rst",
        ),
        comparisons=report(
            update("results/{dataset}/evaluate/comparisons.tsv"),
            category="Evaluate",
            caption="../report/evaluate_comparisons.rst",
        ),
        overfitting=report(
            update("results/{dataset}/evaluate/overfitting.tsv"),
            category="Evaluate",
            caption="../report/evaluate_overfitting.rst",
        ),
        failure_domains=report(
            update("results/{dataset}/evaluate/failure_domains.tsv"),
            category="Evaluate",
            caption="../report/evaluate_failure_domains.rst",
        ),
        test_access=report(
            update("results/{dataset}/evaluate/test_access.json"),
            category="Evaluate",
            caption="../report/evaluate_test_access.rst",
        ),
        roc=report(
            update("results/{dataset}/evaluate/roc.png"),
            category="Evaluate",
            caption="../report/evaluate_roc.rst",
        ),
        pr=report(
            update("results/{dataset}/evaluate/pr.png"),
            category="Evaluate",
            caption="../report/evaluate_pr.rst",
        ),
        calibration=report(
            update("results/{dataset}/evaluate/calibration.png"),
            category="Evaluate",
            caption="../report/evaluate_calibration.rst",
        ),
        confusion=report(
            update("results/{dataset}/evaluate/confusion.png"),
            category="Evaluate",
            caption="../report/evaluate_confusion.rst",
        ),
        failure_plot=report(
            update("results/{dataset}/evaluate/failure_domains.png"),
            category="Evaluate",
            caption="../report/evaluate_failure_plot.rst",
        ),
    log:
        "results/{dataset}/logs/evaluate.log",
    benchmark:
        "results/{dataset}/benchmarks/evaluate.tsv"
    conda:
        "../../envs/tensorflow-gpu.yaml"
    threads: 2
    resources:
        mem_mb=stage_memory_mb("evaluate"),
        runtime=stage_runtime("evaluate"),
    params:
        settings=stage_settings("evaluate"),
    script:
        "../scripts/evaluate.py"
