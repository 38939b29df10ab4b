"""Reading and writing the files stages hand to each other.

Every stage writes through these helpers so that a killed job never leaves a
half-written table or summary behind (docs/architecture.md: data between stages).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pandas as pd

SCHEMA_VERSION = 1


class InputError(Exception):
    """Bad input from the user: the message names the file, line or key and the fix."""


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w") -> Iterator[IO]:
    """Open a temporary file beside `path` and rename it over `path` on success.

    The rename is atomic on POSIX file systems, so readers see either the old
    file or the complete new one; on error the temporary file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as handle:
            yield handle
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; results are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: str | Path, data: dict[str, Any]) -> None:
    """Write a machine-readable summary, always stamped with `schema_version`."""
    with atomic_write(path) as handle:
        json.dump({"schema_version": SCHEMA_VERSION, **data}, handle, indent=2, default=str)
        handle.write("\n")


def read_json(path: str | Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def write_tsv(path: str | Path, table: pd.DataFrame) -> None:
    """Write a tab-separated table with a header and no index column."""
    with atomic_write(path) as handle:
        table.to_csv(handle, sep="\t", index=False)


def read_tsv(path: str | Path) -> pd.DataFrame:
    """Read a table written by `write_tsv`, keeping every value as text.

    Text keeps identifiers such as '007' or 'NA' exactly as written; callers
    convert the numeric columns they need.
    """
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sequence_hash(sequence: str) -> str:
    """Short, stable fingerprint of a sequence for ledgers (first 16 hex of sha256)."""
    return hashlib.sha256(sequence.encode()).hexdigest()[:16]


def setup_logging(log_file: str | Path | None = None) -> logging.Logger:
    """Log to the rule's `log:` file and to stderr, so a failed job explains itself."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, mode="w", encoding="utf-8"))
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )
    return logging.getLogger("deeprules")
