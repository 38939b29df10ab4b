"""What identifies a model for the test-access ledger: what decides its predictions.

The ledger (deeprules.evaluate.access) must call a bit-identical retrain the
same model, or a `--forcerun` would be refused as a new look at test; and it
must call any model that can predict differently a new one. File bytes do
neither well: a .keras file records its save date and, in config.json,
`shared_object_id` values that change on every save; layer names carry
per-process counters (`dropout_3`), which differ between an interrupted and
an uninterrupted tuning run; a pickle may hold padding bytes and memo order.
So a model is hashed by content:

- .keras: every layer weight array (name, dtype, shape, values; not the
  optimizer's state), the architecture with the noise above removed, and the
  encoding that turns sequences into the network's input (from
  cnn/summary.json: sequence type, alphabet, input length, padding mask) and
  the class order;
- .joblib (a scikit-learn pipeline): its fitted state, walked object by object
  (arrays by value, structured arrays field by field), so the vectoriser's
  vocabulary, the scaler and the estimator's parameters all count.
"""

from __future__ import annotations

import copyreg
import hashlib
import io
import json
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from deeprules.io import sha256_of

# The parts of cnn/summary.json's `encoding` that deeprules.cnn.predict_proba uses.
ENCODING_KEYS = ("sequence_type", "alphabet", "length", "mask_padding")
# Keras config keys that change between saves or processes without changing a prediction.
KERAS_NOISE_KEYS = {"shared_object_id", "compile_config"}
Seen = dict[int, tuple[int, Any]]


def model_fingerprint(path: Path, scoring: dict[str, Any] | None = None) -> str:
    """SHA-256 of what decides the model's predictions (see the module docstring).

    `scoring` is what the scorer reads besides the model file (cnn/summary.json
    for the CNN); only its class order and encoding count.
    """
    path = Path(path)
    digest = hashlib.sha256()
    if path.suffix == ".keras" and zipfile.is_zipfile(path):
        _feed_keras(digest, path)
    elif path.suffix == ".joblib":
        import joblib

        _feed(digest, joblib.load(path), {})
    else:
        digest.update(bytes.fromhex(sha256_of(path)))
    if scoring:
        encoding = scoring.get("encoding", {})  # only the CNN's summary has one
        _feed(digest, {"classes": list(scoring.get("classes", []))}, {})
        _feed(digest, {key: encoding.get(key) for key in ENCODING_KEYS}, {})
    return digest.hexdigest()


def _feed_keras(digest: Any, path: Path) -> None:
    """Layer weights by name and value, then the architecture without noise."""
    import h5py  # comes with Keras; only the CNN's file needs it

    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
        weights = io.BytesIO(archive.read("model.weights.h5"))
    arrays: dict[str, np.ndarray] = {}
    with h5py.File(weights, "r") as h5:
        h5.visititems(
            lambda name, item: (
                arrays.__setitem__(name, item[()])
                if isinstance(item, h5py.Dataset) and not name.startswith("optimizer")
                else None
            )
        )
    _feed(digest, dict(sorted(arrays.items())), {})
    _feed(digest, _canonical_config(config), {})


def _canonical_config(config: dict[str, Any]) -> Any:
    """The Keras config with save noise dropped, and the model's and layers' names (which
    carry per-process counters) replaced by their position."""
    model = config.get("config", {})
    layers = model.get("layers", [])
    alias = {
        layer["name"]: f"layer{index}" for index, layer in enumerate(layers) if "name" in layer
    }
    if "name" in model:
        alias[model["name"]] = "model"

    def canonical(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: canonical(v) for k, v in value.items() if k not in KERAS_NOISE_KEYS}
        if isinstance(value, list):
            return [canonical(v) for v in value]
        if isinstance(value, str):
            return alias.get(value, value)
        return value

    return canonical(config)


def _feed(digest: Any, value: Any, seen: Seen) -> None:
    """Hash `value` by content, recursively; `seen` numbers the objects already hashed
    (a shared reference or a cycle is hashed as a back-reference) and keeps them alive,
    so that no temporary object's id is reused for another during the walk."""
    if value is None or isinstance(value, bool | int | float | complex | str):
        digest.update(f"{type(value).__name__}:{value!r};".encode())
    elif isinstance(value, bytes | bytearray):
        digest.update(b"bytes:%d:" % len(value) + bytes(value))
    elif isinstance(value, np.ndarray):
        _feed_array(digest, value, seen)
    elif isinstance(value, np.generic):
        _feed_array(digest, np.asarray(value), seen)
    elif isinstance(value, dict):
        digest.update(b"dict:%d{" % len(value))
        for key in sorted(value, key=repr):
            _feed(digest, key, seen)
            _feed(digest, value[key], seen)
        digest.update(b"}")
    elif isinstance(value, list | tuple):
        _feed_items(digest, type(value).__name__, value, seen)
    elif isinstance(value, set | frozenset):
        _feed_items(digest, "set", sorted(value, key=repr), seen)
    elif isinstance(value, type) or (callable(value) and hasattr(value, "__qualname__")):
        digest.update(f"ref:{getattr(value, '__module__', '')}.{value.__qualname__};".encode())
    else:
        _feed_object(digest, value, seen)


def _feed_items(digest: Any, kind: str, items: Iterable[Any], seen: Seen) -> None:
    items = list(items)
    digest.update(f"{kind}:{len(items)}[".encode())
    for item in items:
        _feed(digest, item, seen)
    digest.update(b"]")


def _feed_array(digest: Any, array: np.ndarray, seen: Seen) -> None:
    """By dtype, shape and values; a structured array field by field (its padding bytes
    are uninitialised memory), an object array element by element."""
    digest.update(f"array:{array.dtype.str}:{array.shape};".encode())
    if array.dtype.names:
        for name in array.dtype.names:
            digest.update(name.encode())
            _feed_array(digest, np.ascontiguousarray(array[name]), seen)
    elif array.dtype.hasobject:
        _feed_items(digest, "objects", array.ravel().tolist(), seen)
    else:
        digest.update(np.ascontiguousarray(array).tobytes())


def _feed_object(digest: Any, value: Any, seen: Seen) -> None:
    """Any other object by what pickling it would save: its class and its state."""
    if id(value) in seen:
        digest.update(b"seen:%d;" % seen[id(value)][0])
        return
    seen[id(value)] = (len(seen), value)
    reduced = value.__reduce_ex__(4)
    if isinstance(reduced, str):  # a module-level singleton
        digest.update(f"global:{reduced};".encode())
        return
    constructor, arguments, *rest = (*reduced, None, None, None)[:5]
    if constructor is copyreg.__newobj__:
        constructor, arguments = arguments[0], arguments[1:]
    elif constructor is copyreg.__newobj_ex__:
        constructor, arguments = arguments[0], (arguments[1], arguments[2])
    _feed(digest, constructor, seen)
    _feed(digest, tuple(arguments or ()), seen)
    state, items, pairs = rest
    _feed(digest, state, seen)
    _feed_items(digest, "items", items or (), seen)
    _feed_items(digest, "pairs", pairs or (), seen)
