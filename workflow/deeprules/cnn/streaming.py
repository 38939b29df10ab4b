"""Partitions too big to hold in memory: token files written once, read batch by batch.

The in-memory path keeps every partition's tokens in memory (one byte per
position, copied into TensorFlow and its shuffle buffer), which is what small
sets want: no files, no extra reads. Above `cnn.in_memory_max_mb`, compared with
the one-hot size of train + tune (positions x alphabet x 4 bytes of float32,
what the network's input would take if it were held whole), the tokens are
encoded once into memory-mapped `.npy` files and the pipeline reads only the
rows of each batch; what stays in memory is a row number (8 bytes) and a target
per sequence.

The files live in results/<dataset>/cnn/tuner/encoded/ (`<partition>.tokens.npy`
and a stamp `<partition>.json`): inside the tuner directory, like the tuner
state not an output of the rule. A file is reused while its stamp (the
partition file's SHA-256, sequence type, input length, rows) matches, so the
learning check, every round and the refit share one encoding, a resumed job
encodes nothing again, and a changed partition is re-encoded. The folder is
removed when the stage has written its outputs.

Both paths give the same batches in the same order: the streamed pipeline
shuffles row numbers with the same seed and buffer as the in-memory pipeline
shuffles rows, so with deterministic ops the trained weights are the same
(tests/test_cnn.py checks it).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from deeprules import encoding
from deeprules.contracts import ALPHABETS
from deeprules.io import read_json, write_json

log = logging.getLogger("deeprules.cnn")

FOLDER = "encoded"  # inside the tuner directory
IN_MEMORY = "in memory"
STREAMED = "streamed from memory-mapped token files"
CHUNK = 20_000  # sequences tokenized at a time while writing a file
BYTES_PER_MB = 1_000_000


def input_plan(
    cnn: dict[str, Any], rows: int, length: int, sequence_type: str, tuner_dir: str | Path
) -> dict[str, Any]:
    """Which path feeds the network, and the sizes that decided it (train + tune rows)."""
    positions = rows * length
    one_hot_mb = positions * len(ALPHABETS[sequence_type]) * 4 / BYTES_PER_MB
    streamed = one_hot_mb > cnn["in_memory_max_mb"]
    return {
        "streamed": streamed,
        "path": STREAMED if streamed else IN_MEMORY,
        "one_hot_mb": round(one_hot_mb, 3),
        "tokens_mb": round(positions / BYTES_PER_MB, 3),
        "in_memory_max_mb": cnn["in_memory_max_mb"],
        "folder": str(Path(tuner_dir) / FOLDER),
    }


def stored_tokens(
    plan: dict[str, Any],
    name: str,
    sequences: Sequence[str],
    sequence_type: str,
    length: int,
    sha256: str,
) -> np.memmap:
    """The partition's tokens as a read-only memory map, written first unless a file with
    the same stamp is already there."""
    folder = Path(plan["folder"])
    path, stamp_path = folder / f"{name}.tokens.npy", folder / f"{name}.json"
    stamp = {"sha256": sha256, "sequence_type": sequence_type, "length": length}
    stamp["rows"] = len(sequences)
    if not (path.exists() and _stamp_of(stamp_path) == stamp):
        stamp_path.unlink(missing_ok=True)  # a file without its stamp is never trusted
        _write_tokens(path, sequences, sequence_type, length)
        write_json(stamp_path, stamp)
    else:
        log.info("reusing the encoded %s partition %s", name, path)
    return np.load(path, mmap_mode="r")


def _stamp_of(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    return {key: value for key, value in read_json(path).items() if key != "schema_version"}


def _write_tokens(path: Path, sequences: Sequence[str], sequence_type: str, length: int) -> None:
    """Tokenize in chunks straight into a .npy file (then renamed), so the encoding never
    holds more than CHUNK sequences' tokens in memory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.stem}.{os.getpid()}.partial.npy")
    shape = (len(sequences), length)
    tokens = np.lib.format.open_memmap(temporary, mode="w+", dtype=np.uint8, shape=shape)
    for start in range(0, len(sequences), CHUNK):
        chunk = sequences[start : start + CHUNK]
        tokens[start : start + len(chunk)] = encoding.tokenize(chunk, sequence_type, length)
        log.info("encoding %s: %d of %d sequences", path.name, start + len(chunk), len(sequences))
    tokens.flush()
    del tokens
    os.replace(temporary, path)


def remove_stored(plan: dict[str, Any]) -> None:
    """Delete the token files once the stage has written its outputs."""
    folder = Path(plan["folder"])
    if folder.exists():
        shutil.rmtree(folder)
        log.info("removed the encoded partitions in %s", folder)


def row_numbers(rows: int) -> tf.data.Dataset:
    """The elements of a streamed partition: its row numbers (shuffled like rows would be)."""
    return tf.data.Dataset.range(rows)


def batch_reader(
    tokens: np.memmap, targets: np.ndarray
) -> Callable[[tf.Tensor], tuple[tf.Tensor, tf.Tensor]]:
    """A tf.data map function: a batch of row numbers -> (tokens, targets) of those rows,
    the tokens read from the memory-mapped file."""
    target_rows = tf.constant(targets)
    length = tokens.shape[1]

    def read_rows(rows: np.ndarray) -> np.ndarray:
        return np.asarray(tokens[rows])

    def read(rows: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        batch = tf.numpy_function(read_rows, [rows], tf.uint8, stateful=False)
        batch.set_shape((None, length))
        return batch, tf.gather(target_rows, rows)

    return read
