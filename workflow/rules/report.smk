# Report: the reviewer's page (Ten-Tips scorecard, model card, DOME summary,
# ethics register, provenance, every figure), built from results/ alone.


rule report:
    input:
        fetch="results/{dataset}/fetch/provenance.json",
        curate="results/{dataset}/curate/summary.json",
        explore="results/{dataset}/explore/checks.json",
        split="results/{dataset}/split/split_report.json",
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
        model_card_md="results/{dataset}/report/model_card.md",
        model_card_html=report(
            "results/{dataset}/report/model_card.html",
            category="Report",
            caption="../report/report_model_card.rst",
        ),
    log:
        "results/{dataset}/logs/report.log",
    conda:
        "../../envs/core.yaml"
    params:
        settings=stage_settings("report"),
    script:
        "../scripts/report.py"
