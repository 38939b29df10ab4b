"""The reviewer's report: Ten-Tips scorecard, model card, DOME summary, ethics, provenance.

Tip 10 and the whole paper: a result is only as trustworthy as the account of
how it was made. Everything here is read from files the stages wrote under
results/, so the report can be rebuilt at any time without rerunning a stage,
and rebuilding from unchanged results gives the same bytes.

`scorecard` (one function per tip), `model_card`, `dome` and `provenance` build
the content, `facts` formats the numbers they share, `html` writes the pages and
`stage` runs the rule.
"""

from deeprules.report.stage import run

__all__ = ["run"]
