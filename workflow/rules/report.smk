# Report: the reviewer's page (Ten-Tips scorecard, model card, DOME summary, REFORMS
# checklist, ethics register, provenance, every figure), built from results/ alone;
# and one summary page over every dataset of the run.


rule report:
    input:
        unpack(pretrain_summary_input),
        fetch="results/{dataset}/fetch/provenance.json",
        curate="results/{dataset}/curate/summary.json",
        explore="results/{dataset}/explore/checks.json",
        split="results/{dataset}/split/split_report.json",
        split_costs="results/{dataset}/split/balance_costs.json",
        baselines="results/{dataset}/baselines/summary.json",
        cnn="results/{dataset}/cnn/summary.json",
        evaluate="results/{dataset}/evaluate/metrics.json",
        interpret="results/{dataset}/interpret/summary.json",
        figures=report_figures,
    output:
        html=report(
            "results/{dataset}/report/report.html",
            category="Report",
            caption="../report/report_page.rst",
        ),
        scorecard="results/{dataset}/report/scorecard.json",
        dome="results/{dataset}/report/dome.json",
        reforms="results/{dataset}/report/reforms.json",
        model_card_md="results/{dataset}/report/model_card.md",
        model_card_html=report(
            "results/{dataset}/report/model_card.html",
            category="Report",
            caption="../report/report_model_card.rst",
        ),
    log:
        "results/{dataset}/logs/report.log",
    benchmark:
        "results/{dataset}/benchmarks/report.tsv"
    conda:
        "../../envs/core.yaml"
    resources:
        mem_mb=stage_memory_mb("report"),
        runtime=stage_runtime("report"),
    params:
        settings=stage_settings("report"),
    script:
        "../scripts/report.py"


rule report_summary:
    input:
        scorecards=expand("results/{dataset}/report/scorecard.json", dataset=DATASETS),
    output:
        html=report(
            "results/summary.html",
            category="Summary",
            caption="../report/report_summary.rst",
        ),
    log:
        "results/logs/report_summary.log",
    benchmark:
        "results/benchmarks/report_summary.tsv"
    conda:
        "../../envs/core.yaml"
    resources:
        mem_mb=stage_memory_mb("report_summary"),
        runtime=stage_runtime("report_summary"),
    params:
        settings={},
    script:
        "../scripts/report_summary.py"
