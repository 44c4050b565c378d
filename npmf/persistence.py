"""Saving models as ``.npz`` without pickle, written atomically."""

import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

__all__ = ["save_model", "load_model", "FORMAT"]

FORMAT = "npmf-matrix-factorization-1"


def save_model(path, arrays, meta):
    """Write ``arrays`` (dict of ndarrays) and ``meta`` (a JSON string) to ``path``.

    The file appears whole or not at all: it is written to a temporary file in
    the same folder, then renamed over ``path``.
    """
    path = Path(path)
    arrays = {name: _storable(name, a) for name, a in arrays.items()}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, format=np.array(FORMAT), meta=np.array(meta), **arrays)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def load_model(path):
    """Read a file written by :func:`save_model`; returns ``(arrays, meta)``.

    Raises ValueError when the file is not an npmf model or is damaged.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} does not exist")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not an npmf model file: it is not an .npz archive (written by save)")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise ValueError(f"{path} is not a readable npmf model file (.npz written by save): {exc}") from exc
    if "format" not in arrays or str(arrays["format"]) != FORMAT:
        raise ValueError(f"{path} is an .npz file but not an npmf model (expected format {FORMAT!r})")
    return arrays, str(arrays.pop("meta"))


def _storable(name, a):
    a = np.asarray(a)
    if a.dtype == object:
        # Raw ids of mixed or object type: store them as text; allow_pickle=False can't read objects.
        if not all(isinstance(x, str) for x in a):
            raise ValueError(f"{name}: ids must all be integers or all be strings to be saved without pickle")
        a = a.astype(str)
    return a
