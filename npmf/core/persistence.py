"""Saving models as ``.npz`` without pickle, written atomically."""

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

__all__ = ["save_estimator", "load_estimator", "save_model", "load_model", "FORMAT"]

FORMAT = "npmf-matrix-factorization-1"

# The fitted attributes every npmf estimator has (npmf.core.factor_model.FactorModel).
FITTED = ("user_factors", "item_factors", "user_bias", "item_bias", "user_ids", "item_ids")


def save_estimator(model, path):
    """Save a fitted npmf estimator: its state as arrays, its class, parameters and history as JSON."""
    arrays = {name: getattr(model, f"{name}_") for name in FITTED}
    arrays.update(
        global_mean=np.float64(model.global_mean_),
        rating_range=np.array(model.rating_range_),
        seen_users=model._seen[0],
        seen_items=model._seen[1],
        **model._state_arrays(),
    )
    params = model.get_params()
    if not isinstance(params["random_state"], (int, type(None))):
        params["random_state"] = None  # a Generator cannot be written as JSON
    meta = {"estimator": type(model).__name__, "params": params, "history": model.history_}
    save_model(path, arrays, json.dumps(meta))


def load_estimator(cls, path, base):
    """Rebuild the estimator written by :func:`save_estimator` to ``path``.

    The file names its estimator class, which is looked up among the
    subclasses of ``base``; it must be ``cls`` or a subclass of it (so the
    common base class loads any npmf model).
    """
    arrays, meta = load_model(path)
    try:
        meta = json.loads(meta)
        # Files from before the class was recorded hold a MatrixFactorization.
        name = meta.get("estimator", "MatrixFactorization")
        estimator = {c.__name__: c for c in _subclasses(base)}[name]
    except (KeyError, ValueError, AttributeError) as exc:
        raise ValueError(f"{path} is an npmf file but its contents are incomplete or damaged: {exc!r}") from exc
    if not issubclass(estimator, cls):
        raise ValueError(f"{path} holds a {name}, not a {cls.__name__}; load it with npmf.{name}.load or npmf.load")
    try:
        model = estimator(**meta["params"])
        for attr in FITTED:
            setattr(model, f"{attr}_", arrays[attr])
        model.global_mean_ = float(arrays["global_mean"])
        model.rating_range_ = tuple(float(x) for x in arrays["rating_range"])
        model._seen = (arrays["seen_users"], arrays["seen_items"])
        model._restore_state(arrays)
        model.history_ = meta["history"]
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path} is an npmf file but its contents are incomplete or damaged: {exc!r}") from exc
    return model


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


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
