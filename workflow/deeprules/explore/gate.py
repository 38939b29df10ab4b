"""Rule explore_gate: with explore.strict, stop the run before any training if a check failed.

A rule of its own, reading only checks.json, so switching `strict` reruns this
gate and not the checks; training rules take gate.json as input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deeprules.io import InputError, read_json, write_json
from deeprules.rule import Job


class ChecksFailed(InputError):
    """explore.strict is on and at least one check failed."""


def run(job: Job) -> None:
    enforce_strict(job.inputs["checks"], job.outputs["gate"], job.settings["strict"])


def enforce_strict(checks_path: Path, gate_path: Path, strict: bool) -> dict[str, Any]:
    """Stop the workflow before training when explore.strict is on and a check failed.

    checks.json and the figures stay on disk so the user can read why.
    """
    result = read_json(checks_path)
    failed = [c for c in result["checks"] if c["verdict"] == "fail"]
    if strict and failed:
        listing = "\n".join(f"  - {c['name']}: {c['explanation']}" for c in failed)
        raise ChecksFailed(
            f"explore.strict is true and {len(failed)} check(s) failed (details in "
            f"{checks_path}):\n{listing}\nFix the data, or set explore.strict: false in "
            "config/config.yaml to carry on with the failures shown in the report."
        )
    gate = {"strict": strict, "failures": [c["name"] for c in failed], "stopped": False}
    write_json(gate_path, gate)
    return gate
