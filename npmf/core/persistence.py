"""Saving models as ``.npz`` without pickle, written atomically, and checked in full when loaded.

A loaded file is trusted only after :func:`check_fitted_arrays` (and the
estimator's ``_check_saved_state``) have checked every array against the
others: a file whose arrays disagree would otherwise make the kernels read
out of bounds. Every problem is a ``ValueError`` naming the file.
"""

import contextlib
import json
import numbers
import os
import tempfile
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from .validation import check_random_state

__all__ = ["save_estimator", "load_estimator", "save_model", "load_model", "check_fitted_arrays", "FORMAT"]

FORMAT = "npmf-matrix-factorization-1"

# The fitted attributes every npmf estimator has (npmf.core.factor_model.FactorModel).
FITTED = ("user_factors", "item_factors", "user_bias", "item_bias", "user_ids", "item_ids")
REQUIRED = FITTED + ("global_mean", "rating_range", "seen_users", "seen_items")

# A temporary file of a save older than this, from a writer that left no process id, is stale.
STALE_SECONDS = 600


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
    rng = getattr(model, "_rng", None)
    if rng is not None and isinstance(rng.bit_generator, np.random.PCG64):
        meta["rng"] = rng.bit_generator.state  # so that partial_fit after load draws what it would have
    save_model(path, arrays, json.dumps(meta))


def load_estimator(cls, path, base):
    """Rebuild the estimator written by :func:`save_estimator` to ``path``, after checking all of it.

    The file names its estimator class, which is looked up among the
    subclasses of ``base``; it must be ``cls`` or a subclass of it (so the
    common base class loads any npmf model).
    """
    arrays, meta = load_model(path)
    meta = _check_meta(path, meta)
    # Files from before the class was recorded hold a MatrixFactorization.
    name = meta.get("estimator", "MatrixFactorization")
    estimator = {c.__name__: c for c in _subclasses(base)}.get(name)
    if estimator is None:
        raise ValueError(f"{path} is damaged: it names an unknown estimator {name!r}")
    if not issubclass(estimator, cls):
        raise ValueError(f"{path} holds a {name}, not a {cls.__name__}; load it with npmf.{name}.load or npmf.load")
    try:
        model = estimator(**meta["params"])
        model._config()
        check_random_state(model.random_state)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path} is damaged: its parameters are not valid for {name}: {exc}") from exc
    check_fitted_arrays(path, arrays)
    problem = estimator._check_saved_state(arrays, model.get_params())
    if problem:
        raise ValueError(f"{path} is damaged: {problem}")
    for attr in FITTED:
        setattr(model, f"{attr}_", np.ascontiguousarray(arrays[attr]))
    model.global_mean_ = float(arrays["global_mean"])
    model.rating_range_ = tuple(float(x) for x in arrays["rating_range"])
    model._seen = tuple(arrays[f"seen_{side}"].astype(np.int32) for side in ("users", "items"))
    model._restore_state(arrays)
    model.history_ = meta["history"]
    if "rng" in meta:
        model._rng = _generator(path, meta["rng"])
    return model


def _generator(path, state):
    """The generator whose PCG64 state :func:`save_estimator` wrote."""
    rng = np.random.Generator(np.random.PCG64())
    try:
        if not isinstance(state, dict) or state.get("bit_generator") != "PCG64":
            raise ValueError("not a PCG64 state")
        rng.bit_generator.state = state
    except (TypeError, ValueError, KeyError) as exc:
        raise ValueError(f"{path} is damaged: its random generator's state is not valid ({exc})") from exc
    return rng


def check_fitted_arrays(path, arrays):
    """Raise ValueError naming ``path`` unless the fitted arrays agree with each other.

    Shapes, dtypes, finiteness, unique ids and training codes in range: what
    prediction and ranking index with must be in bounds.
    """

    def bad(what):
        return ValueError(f"{path} is damaged: {what}")

    missing = [name for name in REQUIRED if name not in arrays]
    if missing:
        raise bad(f"it lacks the array(s) {', '.join(missing)}")
    W, H = arrays["user_factors"], arrays["item_factors"]
    for name, X in (("user_factors", W), ("item_factors", H)):
        if X.ndim != 2 or X.dtype.name not in ("float32", "float64"):
            raise bad(f"{name} must be a 2-D float32 or float64 array; it is {X.ndim}-D of dtype {X.dtype}")
    if H.dtype != W.dtype or H.shape[1] != W.shape[1]:
        raise bad(f"item_factors {H.shape} {H.dtype} do not match user_factors {W.shape} {W.dtype}")
    sizes = {"user": len(W), "item": len(H)}
    for side, n in sizes.items():
        ids, bias = arrays[f"{side}_ids"], arrays[f"{side}_bias"]
        if ids.ndim != 1 or len(ids) != n or ids.dtype.kind not in "iuUS":
            raise bad(f"{side}_ids must be {n} integer or string ids (one per factor row); got {ids.shape} {ids.dtype}")
        if not pd.Index(ids).is_unique:
            raise bad(f"{side}_ids are not unique")
        if bias.ndim != 1 or len(bias) != n or bias.dtype != W.dtype:
            raise bad(f"{side}_bias must be {n} {W.dtype} values (one per factor row); got {bias.shape} {bias.dtype}")
    for name in ("user_factors", "item_factors", "user_bias", "item_bias"):
        if not np.isfinite(arrays[name]).all():
            raise bad(f"{name} holds NaN or infinite values")
    mu, lohi = arrays["global_mean"], arrays["rating_range"]
    if mu.shape != () or mu.dtype.kind != "f" or not np.isfinite(mu):
        raise bad(f"global_mean must be one finite float; got {mu.shape} {mu.dtype}")
    if lohi.shape != (2,) or lohi.dtype.kind != "f" or not np.isfinite(lohi).all() or lohi[0] > lohi[1]:
        raise bad(f"rating_range must be two finite floats, lowest first; got {lohi!r}")
    su, si = arrays["seen_users"], arrays["seen_items"]
    for side, codes in (("user", su), ("item", si)):
        if codes.ndim != 1 or codes.dtype.kind not in "iu":
            raise bad(f"seen_{side}s must be 1-D integer codes; got {codes.shape} {codes.dtype}")
        if len(codes) and (codes.min() < 0 or codes.max() >= sizes[side]):
            raise bad(f"seen_{side}s holds codes outside [0, {sizes[side]}), the {side} rows")
    if len(su) != len(si):
        raise bad(f"seen_users and seen_items differ in length ({len(su)} and {len(si)})")


def check_state_arrays(arrays, names_like):
    """A problem with the extra state arrays, or None: ``names_like`` maps each name to the array it must match."""
    for name, like in names_like.items():
        if name not in arrays:
            return f"it lacks the array {name}"
        a = arrays[name]
        if a.shape != like.shape or a.dtype != like.dtype:
            return f"{name} must be {like.shape} {like.dtype} like its parameter; got {a.shape} {a.dtype}"
        if not np.isfinite(a).all():
            return f"{name} holds NaN or infinite values"
    return None


def check_count(arrays, name, minimum):
    """A problem with the integer scalar ``arrays[name]`` (>= ``minimum``), or None."""
    a = arrays.get(name)
    if a is None:
        return f"it lacks the array {name}"
    if a.shape != () or a.dtype.kind not in "iu" or int(a) < minimum:
        return f"{name} must be one integer >= {minimum}; got {a!r}"
    return None


def _check_meta(path, meta):
    try:
        meta = json.loads(meta)
    except ValueError as exc:
        raise ValueError(f"{path} is damaged: its meta data is not JSON ({exc})") from exc
    if not isinstance(meta, dict) or not isinstance(meta.get("params"), dict):
        raise ValueError(f"{path} is damaged: its meta data lacks the estimator's parameters")
    if not isinstance(meta.get("estimator", ""), str):
        raise ValueError(f"{path} is damaged: the estimator's name is not a string")
    history = meta.get("history")
    number = (numbers.Real, type(None))
    if not isinstance(history, dict) or not all(
        isinstance(v, list) and all(isinstance(x, number) and not isinstance(x, bool) for x in v)
        for v in history.values()
    ):
        raise ValueError(f"{path} is damaged: its history is not lists of numbers")
    return meta


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def save_model(path, arrays, meta):
    """Write ``arrays`` (dict of ndarrays) and ``meta`` (a JSON string) to ``path`` (``~`` expanded).

    The file appears whole or not at all: it is written to a temporary file in
    the same folder (``.NAME.PID.XXXX.tmp``), flushed to disk, given the
    permissions numpy's own files get (0666 less the umask), then renamed over
    ``path``. Temporary files a killed save of ``path`` left behind are removed.
    """
    given = path
    path = Path(path).expanduser()
    folder = path.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"cannot save {given}: the folder {folder} does not exist")
    if path.is_dir():
        raise IsADirectoryError(f"cannot save {given}: it is a folder; give a file name")
    arrays = {name: _storable(name, a) for name, a in arrays.items()}
    _remove_stale_temporaries(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    except OSError as exc:
        raise type(exc)(exc.errno, f"cannot save {given}: {exc.strerror} in the folder {folder}") from exc
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, format=np.array(FORMAT), meta=np.array(meta), **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_folder(folder)


def _remove_stale_temporaries(path):
    """Remove ``.NAME.PID.XXXX.tmp`` files of ``path`` whose writer is dead (or, without a pid, old)."""
    prefix = f".{path.name}."
    for tmp in path.parent.glob(f"{glob_escape(prefix)}*.tmp"):
        middle = tmp.name[len(prefix) : -len(".tmp")].split(".")
        if len(middle) == 2 and middle[0].isdigit():
            stale = int(middle[0]) != os.getpid() and not _alive(int(middle[0]))
        elif len(middle) == 1:  # written before the pid was part of the name
            with contextlib.suppress(OSError):
                stale = time.time() - tmp.stat().st_mtime > STALE_SECONDS
        else:
            continue  # a temporary file of another target whose name starts with this one's
        if stale:
            with contextlib.suppress(OSError):
                tmp.unlink()


def glob_escape(text):
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_folder(folder):
    """Make the rename durable too (not possible on every platform)."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def load_model(path):
    """Read a file written by :func:`save_model`; returns ``(arrays, meta)``.

    Raises ValueError when the file is not an npmf model or is damaged.
    """
    given = path
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"model file {given} does not exist")
    if not path.is_file():
        raise ValueError(f"{given} is not a model file: it is a folder or a device")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{given} is not an npmf model file: it is not an .npz archive (written by save)")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError, KeyError, zlib.error) as exc:
        raise ValueError(f"{given} is not a readable npmf model file (.npz written by save): {exc}") from exc
    if "format" not in arrays or arrays["format"].shape != () or str(arrays["format"]) != FORMAT:
        raise ValueError(f"{given} is an .npz file but not an npmf model (expected format {FORMAT!r})")
    meta = arrays.pop("meta", None)
    if meta is None or meta.shape != () or meta.dtype.kind != "U":
        raise ValueError(f"{given} is damaged: it lacks its meta data")
    return arrays, str(meta)


def _storable(name, a):
    a = np.asarray(a)
    if a.dtype == object:
        # Raw ids of mixed or object type: store them as text; allow_pickle=False can't read objects.
        if not all(isinstance(x, str) for x in a):
            raise ValueError(f"{name}: ids must all be integers or all be strings to be saved without pickle")
        a = a.astype(str)
    return a
