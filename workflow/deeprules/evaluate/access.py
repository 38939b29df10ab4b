"""The single look at the test partition: the access ledger (Tip 7).

"The data used for testing should be locked away and used only once": a user
must be able to rely on that without reading the code, so the ledger is keyed
by what is being protected, not by file names:

- one ledger per test partition CONTENT (SHA-256 of its sorted ids and
  sequences), `<evaluate.ledger_dir>/<that hash>.json`, by default
  `.deeprules/test_access/` in the working directory: outside results/, so
  deleting results/, `make clean`, renaming or copying the dataset file, or
  rerunning does not reset the count;
- every model by a fingerprint of what decides its predictions
  (deeprules.evaluate.fingerprint), so an identical retrain is the same model;
- append-only: an access, once written, is never changed or removed, and the
  file is left read-only so an editor warns before changing it.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import hashlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from deeprules.evaluate.fingerprint import model_fingerprint
from deeprules.io import InputError, read_json, sha256_of, write_json

log = logging.getLogger("deeprules.evaluate")


class TestReuseRefused(InputError):
    """A new set of models asked to see a test partition that was already used."""

    __test__ = False  # not a pytest test class, despite the name


def partition_content_hash(test_path: Path) -> str:
    """SHA-256 of the test partition's sorted (id, sequence) pairs: the same test set under
    another file name, dataset name, column order or row order has the same hash."""
    table = pd.read_csv(
        test_path, sep="\t", dtype=str, keep_default_na=False, usecols=["id", "sequence"]
    )
    digest = hashlib.sha256()
    for record_id, sequence in sorted(zip(table["id"], table["sequence"], strict=True)):
        digest.update(f"{record_id}\t{sequence}\n".encode())
    return digest.hexdigest()


def ledger_path(ledger_dir: Path, content_hash: str) -> Path:
    return Path(ledger_dir) / f"{content_hash}.json"


def record_test_access(
    ledger_dir: Path,
    dataset: str,
    test_path: Path,
    models: dict[str, tuple[Path, dict[str, Any]]],
    allow_reuse: bool,
    now: datetime.datetime | None = None,
) -> dict[str, Any]:
    """Check the ledger of this test partition, then append this access, BEFORE test is read.

    `models` maps a model's name to its file and what its scorer reads besides
    the file (cnn/summary.json for the CNN, {} otherwise).

    Rules: the first evaluation is access 1. Scoring exactly the models of an
    earlier access again (same names, same fingerprints) reveals nothing new,
    so it is allowed and not counted. Any other model set (a model added,
    removed or changed) is refused with TestReuseRefused, before anything is
    written, unless `allow_reuse`; then it becomes the next access. The access
    is recorded before test labels are read, so a run that crashes half-way
    still counts as a look.
    """
    content = partition_content_hash(test_path)
    path = ledger_path(ledger_dir, content)
    scored = {
        name: {
            "file": str(file),
            "sha256": sha256_of(file),
            "fingerprint": model_fingerprint(file, scoring),
        }
        for name, (file, scoring) in sorted(models.items())
    }
    with _locked(path):
        ledger = _read_ledger(path, content)
        for access in ledger["accesses"]:
            if _same_models(access["models"], scored):
                log.info("same models as access %d of %s: not a new look", access["access"], path)
                return _result(ledger, path, access["access"])
        if ledger["accesses"] and not allow_reuse:
            raise TestReuseRefused(_refusal(ledger, path, test_path, scored))
        number = len(ledger["accesses"]) + 1
        now = now or datetime.datetime.now(datetime.UTC)
        ledger["accesses"].append(
            {
                "access": number,
                "utc": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "dataset": dataset,
                "test_file": str(test_path),
                "test_sha256": sha256_of(test_path),
                "models": scored,
                "allow_reuse": allow_reuse,
            }
        )
        ledger["access_count"] = number
        _append(path, ledger)
    log.info("test partition access %d recorded in %s", number, path)
    return _result(ledger, path, number)


def _result(ledger: dict[str, Any], path: Path, current: int) -> dict[str, Any]:
    return {**ledger, "current_access": current, "ledger": str(path)}


def _same_models(before: dict[str, dict[str, str]], now: dict[str, dict[str, str]]) -> bool:
    """The same names, each with the same fingerprint or the very same file bytes."""
    return set(before) == set(now) and all(
        before[n]["fingerprint"] == now[n]["fingerprint"] or before[n]["sha256"] == now[n]["sha256"]
        for n in now
    )


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One evaluation at a time per test partition: two datasets with the same test set,
    run in parallel, must not both count as the first look."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read_ledger(path: Path, content: str) -> dict[str, Any]:
    if not path.exists():
        return {"test_content_sha256": content, "accesses": []}
    ledger = read_json(path)
    ledger.pop("schema_version", None)
    if ledger.get("test_content_sha256") != content or not isinstance(ledger.get("accesses"), list):
        raise InputError(
            f"{path}: not the access ledger of this test partition (expected key "
            f"'test_content_sha256': {content}); it was edited or replaced. Restore it from a "
            "backup; deleting it would reset the count of looks at this test set."
        )
    return ledger


def _append(path: Path, ledger: dict[str, Any]) -> None:
    """Write the ledger with one more access; earlier accesses must be unchanged."""
    if path.exists():
        before = read_json(path)["accesses"]
        if ledger["accesses"][: len(before)] != before:
            raise InputError(f"{path}: changed while this evaluation ran; run evaluate again")
    write_json(path, ledger)
    os.chmod(path, 0o444)


def _refusal(
    ledger: dict[str, Any],
    path: Path,
    test_path: Path,
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
    ]
    datasets = sorted({access.get("dataset", "?") for access in ledger["accesses"]})
    return (
        f"refusing to open the test partition {test_path} again: the same test sequences "
        f"(dataset(s) {', '.join(datasets)}) were already used {len(ledger['accesses'])} "
        f"time(s), last on {last['utc']} (access {last['access']}), and this run would score "
        f"a different set of models ({'; '.join(c for c in changes if c)}). Each look at the "
        "test set with new models leaks test information into model choice (Tip 7). If this "
        "evaluation is intended (e.g. after fixing a bug), set 'evaluate: allow_reuse: true' "
        "in config/config.yaml; the access count then goes up and the report shows it. "
        f"Ledger: {path}. Nothing was written."
    )
