"""The single look at the test partition: the access ledger (Tip 7).

The ledger lives in results/<dataset>/evaluate_access/test_access.json, beside
the evaluate folder but outside the rule's outputs (see record_test_access for
why); it is keyed by the content of the test file and of every model.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import zipfile
from pathlib import Path
from typing import Any

from deeprules.io import InputError, read_json, sha256_of, write_json

log = logging.getLogger("deeprules.evaluate")


def access_ledger_path(metrics_path: Path) -> Path:
    """results/<dataset>/evaluate_access/test_access.json for results/<dataset>/evaluate/..."""
    return Path(metrics_path).parent.parent / "evaluate_access" / "test_access.json"


class TestReuseRefused(InputError):
    """A new set of models asked to see a test partition that was already used."""

    __test__ = False  # not a pytest test class, despite the name


def model_fingerprint(path: Path) -> str:
    """What identifies a model's content, for deciding whether it was scored before.

    A .keras file is a zip whose metadata.json holds the save date, so saving
    the same weights twice gives two file hashes; its fingerprint hashes the
    other members instead. Every other file is fingerprinted by its sha256.
    """
    if path.suffix == ".keras" and zipfile.is_zipfile(path):
        digest = hashlib.sha256()
        with zipfile.ZipFile(path) as archive:
            for name in sorted(archive.namelist()):
                if name != "metadata.json":
                    digest.update(name.encode() + b"\0" + archive.read(name))
        return digest.hexdigest()
    return sha256_of(path)


def record_test_access(
    ledger_path: Path,
    test_path: Path,
    model_files: dict[str, Path],
    allow_reuse: bool,
    now: datetime.datetime | None = None,
) -> dict[str, Any]:
    """Check the access ledger, then write this access into it, BEFORE the test file is read.

    Why a ledger outside the rule's outputs: Snakemake deletes a job's declared
    outputs before running it (and again if it fails), so a record kept only in
    results/<dataset>/evaluate/ would be gone exactly when it is needed, on the
    rerun. The ledger therefore lives in results/<dataset>/evaluate_access/,
    which no rule declares; Snakemake never touches it, and
    `--delete-all-output` leaves it too. The rule's declared test_access.json is
    a copy written at the end, for the report. (The rule flags its outputs
    update(), so Snakemake restores the previous results when a refusal fails
    the job.)

    Rules: the first evaluation is access 1. Re-running with exactly the models
    and test file of an earlier access reveals nothing new (same numbers), so it
    is allowed and not counted. Any other model set (a model added, removed or
    changed), or a changed test file, is refused with TestReuseRefused — before
    anything is written — unless `allow_reuse`; then it becomes the next access.
    The access is recorded before test labels are read, so a run that crashes
    half-way still counts as a look.
    """
    test_sha256 = sha256_of(test_path)
    models = {
        name: {"file": str(path), "sha256": sha256_of(path), "fingerprint": model_fingerprint(path)}
        for name, path in sorted(model_files.items())
    }
    ledger = read_json(ledger_path) if ledger_path.exists() else {"accesses": []}
    ledger.pop("schema_version", None)
    wanted = _access_key(test_sha256, models)
    for access in ledger["accesses"]:
        if _access_key(access["test_sha256"], access["models"]) == wanted:
            log.info("same models and test file as access %d: not a new look", access["access"])
            return {**ledger, "current_access": access["access"]}
    if ledger["accesses"] and not allow_reuse:
        raise TestReuseRefused(_refusal(ledger, ledger_path, test_path, test_sha256, models))
    number = len(ledger["accesses"]) + 1
    now = now or datetime.datetime.now(datetime.UTC)
    ledger["accesses"].append(
        {
            "access": number,
            "utc": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "test_file": str(test_path),
            "test_sha256": test_sha256,
            "models": models,
            "allow_reuse": allow_reuse,
        }
    )
    ledger.update(access_count=number, current_access=number)
    write_json(ledger_path, ledger)
    log.info("test partition access %d recorded in %s", number, ledger_path)
    return {**ledger, "current_access": number}


def _access_key(test_sha256: str, models: dict[str, dict[str, str]]) -> tuple:
    return test_sha256, tuple(sorted((name, m["fingerprint"]) for name, m in models.items()))


def _refusal(
    ledger: dict[str, Any],
    ledger_path: Path,
    test_path: Path,
    test_sha256: str,
    models: dict[str, dict[str, str]],
) -> str:
    """Say what changed since the last look and how to proceed."""
    last = ledger["accesses"][-1]
    before = {name: m["fingerprint"] for name, m in last["models"].items()}
    now = {name: m["fingerprint"] for name, m in models.items()}
    changes = [
        f"added: {', '.join(sorted(set(now) - set(before)))}" if set(now) - set(before) else "",
        f"removed: {', '.join(sorted(set(before) - set(now)))}" if set(before) - set(now) else "",
        "changed: " + ", ".join(sorted(n for n in set(now) & set(before) if now[n] != before[n]))
        if any(now[n] != before[n] for n in set(now) & set(before))
        else "",
        "the test file itself changed" if last["test_sha256"] != test_sha256 else "",
    ]
    return (
        f"refusing to open the test partition {test_path} again: it was already used "
        f"{len(ledger['accesses'])} time(s), last on {last['utc']} (access {last['access']}), "
        f"and this run would score a different set of models "
        f"({'; '.join(c for c in changes if c)}). Each look at the test set with new models "
        "leaks test information into model choice (Tip 7). If this evaluation is intended "
        "(e.g. after fixing a bug), set 'evaluate: allow_reuse: true' in config/config.yaml; "
        f"the access count then goes up and the report shows it. Ledger: {ledger_path}. "
        "Nothing was written."
    )
