"""At the end of a run where jobs failed: which datasets failed, in which rule, and why.

The profiles run with keep-going, so one bad dataset does not stop the others;
Snakemake then reports each failure as it happens, between hundreds of lines of
progress. This summary repeats, after the last line, each failed dataset with
the error its rule logged (the InputError message naming file and line), and
names the datasets that had no failure.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# Snakemake's block for a failed job, and the rule log inside it (workflow/rules/*.smk).
FAILED_RULE = re.compile(r"^Error in rule (\w+):")
RULE_LOG = re.compile(r"^\s+log: (results/([^/\s]+)/logs/\S+)")
# deeprules.io.setup_logging's format: "<date> <time> ERROR <logger>: <message>"
LOGGED_ERROR = re.compile(r"^\S+ \S+ ERROR [\w.]+: (.*)$")


@dataclass(frozen=True)
class Failure:
    dataset: str
    rule: str
    log: str
    message: str


def failed_jobs(snakemake_logs: Sequence[str | Path]) -> list[Failure]:
    """The failed jobs named in Snakemake's log(s) of this run, with their rule log's error."""
    failures, rule = [], None
    lines = [
        line
        for path in snakemake_logs
        for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    ]
    for line in lines:
        started = FAILED_RULE.match(line)
        if started:
            rule = started.group(1)
            continue
        found = RULE_LOG.match(line) if rule else None
        if found:
            failures.append(
                Failure(found.group(2), rule, found.group(1), _logged_error(found.group(1)))
            )
            rule = None
    return list(dict.fromkeys(failures))


def _logged_error(log: str) -> str:
    """The last error the rule logged; an unexpected failure logs none (its traceback is
    in Snakemake's output)."""
    path = Path(log)
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines() if path.exists() else []
    messages = [m.group(1) for m in map(LOGGED_ERROR.match, lines) if m]
    return (
        messages[-1]
        if messages
        else "unexpected error; the traceback is above, in Snakemake's output"
    )


def failure_summary(snakemake_log: str | Path | Sequence[str | Path], datasets: list[str]) -> str:
    """What to print once the run has stopped: every failed dataset, then the others.
    `snakemake_log` is what Snakemake hands `onerror:` (a path, or a list of paths)."""
    logs = [snakemake_log] if isinstance(snakemake_log, str | Path) else list(snakemake_log)
    failures = failed_jobs(logs)
    if not failures:
        return ""
    failed = list(dict.fromkeys(f.dataset for f in failures))
    lines = [f"deeprules: {len(failed)} of {len(datasets)} dataset(s) failed:"]
    for failure in failures:
        lines.append(f"  {failure.dataset}: rule {failure.rule}: {failure.message}")
        lines.append(f"    (log: {failure.log})")
    others = [name for name in datasets if name not in failed]
    if others:
        lines.append(
            f"Dataset(s) without a failed job, run as far as they could: {', '.join(others)}."
        )
    lines.append("Fix the input named above and rerun the same command: finished jobs are kept.")
    return "\n".join(lines)
