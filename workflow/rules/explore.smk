# Explore: confounder, batch-effect and shortcut checks before any model (Tips 4, 7).
# explore_gate is the stop sign: training rules take gate.json as input, so with
# explore.strict a failed check stops the run after checks.json and the figures exist.


rule explore:
    input:
        sequences="results/{dataset}/curate/sequences.tsv",
        summary="results/{dataset}/curate/summary.json",
        dropped="results/{dataset}/curate/dropped.tsv",
    output:
        checks="results/{dataset}/explore/checks.json",
        label_metadata=report(
            "results/{dataset}/explore/label_metadata.tsv",
            category="Explore",
            caption="../report/explore_label_metadata.rst",
        ),
        shortcuts=report(
            "results/{dataset}/explore/shortcuts.tsv",
            category="Explore",
            caption="../report/explore_shortcuts_table.rst",
        ),
        positions=report(
            "results/{dataset}/explore/positions.tsv",
            category="Explore",
            caption="../report/explore_positions_table.rst",
        ),
        near_duplicates=shareable(
            "results/{dataset}/explore/near_duplicates.tsv",
            category="Explore",
            caption="../report/explore_near_duplicates.rst",
        ),
        class_balance=report(
            "results/{dataset}/explore/class_balance.tsv",
            category="Explore",
            caption="../report/explore_class_balance.rst",
        ),
        batch=report(
            "results/{dataset}/explore/batch.tsv",
            category="Explore",
            caption="../report/explore_batch.rst",
        ),
        lengths_png=report(
            "results/{dataset}/explore/lengths.png",
            category="Explore",
            caption="../report/explore_lengths.rst",
        ),
        composition_png=report(
            "results/{dataset}/explore/composition.png",
            category="Explore",
            caption="../report/explore_composition.rst",
        ),
        pca_png=shareable(
            "results/{dataset}/explore/pca.png",
            category="Explore",
            caption="../report/explore_pca.rst",
        ),
        shortcuts_png=report(
            "results/{dataset}/explore/shortcuts.png",
            category="Explore",
            caption="../report/explore_shortcuts.rst",
        ),
        positions_png=report(
            "results/{dataset}/explore/positions.png",
            category="Explore",
            caption="../report/explore_positions.rst",
        ),
    log:
        "results/{dataset}/logs/explore.log",
    benchmark:
        "results/{dataset}/benchmarks/explore.tsv"
    conda:
        "../../envs/core.yaml"
    threads: 2
    resources:
        mem_mb=stage_memory_mb("explore"),
        runtime=stage_runtime("explore"),
    params:
        settings=stage_settings("explore"),
    script:
        "../scripts/explore.py"


rule explore_gate:
    input:
        checks="results/{dataset}/explore/checks.json",
    output:
        gate="results/{dataset}/explore/gate.json",
    log:
        "results/{dataset}/logs/explore_gate.log",
    benchmark:
        "results/{dataset}/benchmarks/explore_gate.tsv"
    conda:
        "../../envs/core.yaml"
    resources:
        mem_mb=stage_memory_mb("explore_gate"),
        runtime=stage_runtime("explore_gate"),
    params:
        settings=stage_settings("explore_gate"),
    script:
        "../scripts/explore_gate.py"
