"""Saving models as ``.npz`` without pickle, written atomically."""

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

__all__ = ["save_estimator", "load_estimator", "save_model", "load_model", "FORMAT"]

FORMAT = "npmf-matrix-factorization-1"

# The model's four parameter blocks, in the order the kernels take them.
BLOCKS = ("W", "H", "bu", "bi")


def save_estimator(model, path):
    """Save a fitted :class:`~npmf.MatrixFactorization`: its state as arrays, its parameters as JSON."""
    arrays = {
        "user_factors": model.user_factors_,
        "item_factors": model.item_factors_,
        "user_bias": model.user_bias_,
        "item_bias": model.item_bias_,
        "global_mean": np.float64(model.global_mean_),
        "rating_range": np.array(model.rating_range_),
        "user_ids": model.user_ids_,
        "item_ids": model.item_ids_,
        "n_steps": np.int64(model.n_steps_),
        "seen_users": model._seen[0],
        "seen_items": model._seen[1],
    }
    for q, name in enumerate(BLOCKS):
        arrays[f"m_{name}"], arrays[f"v_{name}"] = model._m[q], model._v[q]
    params = model.get_params()
    if not isinstance(params["random_state"], (int, type(None))):
        params["random_state"] = None  # a Generator cannot be written as JSON
    save_model(path, arrays, json.dumps({"params": params, "history": model.history_}))


def load_estimator(cls, path):
    """Rebuild an estimator of class ``cls`` from a file written by :func:`save_estimator`."""
    arrays, meta = load_model(path)
    try:
        meta = json.loads(meta)
        model = cls(**meta["params"])
        model.user_factors_ = arrays["user_factors"]
        model.item_factors_ = arrays["item_factors"]
        model.user_bias_ = arrays["user_bias"]
        model.item_bias_ = arrays["item_bias"]
        model.global_mean_ = float(arrays["global_mean"])
        model.rating_range_ = tuple(float(x) for x in arrays["rating_range"])
        model.user_ids_ = arrays["user_ids"]
        model.item_ids_ = arrays["item_ids"]
        model.n_steps_ = int(arrays["n_steps"])
        model._seen = (arrays["seen_users"], arrays["seen_items"])
        model._m = [arrays[f"m_{name}"] for name in BLOCKS]
        model._v = [arrays[f"v_{name}"] for name in BLOCKS]
        model.history_ = meta["history"]
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path} is an npmf file but its contents are incomplete or damaged: {exc!r}") from exc
    return model


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
