"""Confounder, batch-effect and shortcut checks before any model is trained.

Tip 4 (know your data: batch effects make models learn irrelevant signal) and
Tip 7 (skewed or biased data inflate accuracy). Each check gives a verdict
pass / warn / fail with a sentence a biologist can act on; together they end
in `checks.json`, whose `floor` — the best AUROC any trivial feature reaches —
is the score a real model must clearly beat.

One module per family of check:
1. `metadata`: label x metadata association (chi-square, bias-corrected Cramér's V);
2. `shortcut_checks`: length, composition, di-residue composition, first and
   last residues, ambiguous symbols (features in deeprules.shortcuts);
3. `positions`: per-position composition from both ends;
4. `duplicates`: exact (from curation's ledger) and near-duplicates across
   labels (MMseqs2, deeprules.mmseqs);
5. `balance`: class balance and the metrics that stay meaningful;
6. `batch`: PCA of k-mer profiles; metadata predicted from k-mers within each label.
`inputs` reads and checks what curation wrote, `verdicts` turns numbers into
pass / warn / fail, `figures` draws, `stage` runs the rule `explore` and
`gate` the rule `explore_gate` (explore.strict).
"""

from deeprules.explore.stage import run

__all__ = ["run"]
