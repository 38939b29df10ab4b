"""Reading the user's text files: plain or gzipped, with line numbers, and a clear
message instead of a traceback when a file is not what its source says.

A binary file given as FASTA (an .xlsx, a .bam), a file saved in another
encoding, or a .gz cut short by an interrupted copy otherwise ends in
UnicodeDecodeError or EOFError deep inside a parser. Here each ends in an
InputError naming the file and, where there is one, the line.
"""

from __future__ import annotations

import contextlib
import gzip
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from deeprules.io import InputError

# What a damaged or truncated gzip stream raises while it is read.
GZIP_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)
# The first bytes looked at for binary content (a NUL byte never occurs in text).
SNIFF_BYTES = 1 << 16
# A lone carriage return ends a line too (universal newlines), as in old Mac files.
LONE_CR = re.compile(r"(?<=\r)(?!\n)")


def is_gzip(path: Path) -> bool:
    """gzip is recognised by its magic bytes, not by the file name."""
    with open(path, "rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


def open_text(path: Path) -> IO[str]:
    """Open plain or gzipped UTF-8 text (newlines kept as written)."""
    if is_gzip(path):
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def _open_bytes(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if is_gzip(path) else open(path, "rb")


def damaged_gzip(path: Path, error: BaseException) -> InputError:
    return InputError(
        f"{path}: the gzip file is damaged or cut short ({type(error).__name__}: {error}). "
        "Download or copy it again (for a fetched source, delete its folder under "
        "results/<dataset>/fetch/ and rerun), or check it with 'gzip -t'."
    )


def refuse_binary(path: Path) -> None:
    """Stop before parsing a file whose first bytes hold a NUL byte: it is not text."""
    try:
        with _open_bytes(path) as handle:
            head = handle.read(SNIFF_BYTES)
    except GZIP_ERRORS as error:
        raise damaged_gzip(path, error) from None
    if b"\0" in head:
        line = head[: head.index(b"\0")].count(b"\n") + 1
        raise InputError(_binary_message(path, line))


def _binary_message(path: Path, line: int) -> str:
    return (
        f"{path}, line {line}: binary data (a NUL byte), not FASTA, CSV or TSV text. Is it "
        "a spreadsheet, an archive or an alignment file? Export the sequences as FASTA or "
        "CSV/TSV (an archive: set 'member' in the dataset file)."
    )


def text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, line) of a plain or gzipped UTF-8 file, line endings kept.

    Decoded line by line, so undecodable bytes are reported with their line.
    """
    number = 0
    try:
        with _open_bytes(path) as handle:
            for raw in handle:
                if b"\0" in raw:
                    raise InputError(_binary_message(path, number + 1))
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as error:
                    raise InputError(_encoding_message(path, number + 1, raw, error)) from None
                for line in LONE_CR.split(text):
                    number += 1
                    yield number, line
    except GZIP_ERRORS as error:
        raise damaged_gzip(path, error) from None


def _encoding_message(path: Path, line: int, raw: bytes, error: UnicodeDecodeError) -> str:
    return (
        f"{path}, line {line}, column {error.start + 1}: byte 0x{raw[error.start]:02x} is not "
        "UTF-8 text. Save the file as UTF-8 (most editors: 'Save as' > encoding UTF-8), "
        "or remove the character."
    )


def locate_unreadable(path: Path) -> None:
    """After a parser failed on `path`: raise the line-level message if the cause is
    an undecodable byte, binary data or a damaged gzip stream; else do nothing."""
    with contextlib.closing(text_lines(path)) as lines:
        for _ in lines:
            pass
