"""Argument checks shared by the public functions. Each raises one clear error
that names the argument, what was wrong and what is allowed."""

import numbers

import numpy as np
import pandas as pd


def check_int(name, value, minimum=1):
    """Return ``value`` as int if it is an integer >= ``minimum``, else raise."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {value!r} of type {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_float(name, value, low=None, high=None, low_open=True, high_open=True):
    """Return ``value`` as float if it is a finite real number in the interval, else raise.

    ``low``/``high`` of None leave that side unbounded; ``*_open`` excludes the bound.
    """
    lo_bracket, hi_bracket = ("(" if low_open else "["), (")" if high_open else "]")
    allowed = f"a number in {lo_bracket}{'-inf' if low is None else low}, {'inf' if high is None else high}{hi_bracket}"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {allowed}, got {value!r} of type {type(value).__name__}")
    value = float(value)
    bad = not np.isfinite(value)
    if low is not None:
        bad |= value <= low if low_open else value < low
    if high is not None:
        bad |= value >= high if high_open else value > high
    if bad:
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return value


def check_choice(name, value, choices):
    if value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {allowed}; got {value!r}")
    return value


def check_dtype(name, value, choices):
    """Return ``np.dtype(value)`` if it names one of ``choices``, else raise."""
    try:
        dt = np.dtype(value)
    except TypeError:
        dt = None
    if dt is None or dt.name not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return dt


def check_triples(users, items, ratings=None):
    """Validate parallel 1-D inputs; returns ndarrays (ratings as float64, or None).

    Raises ValueError for different lengths, empty input, ids of mixed types
    (see :func:`check_ids`), non-numeric, NaN or infinite ratings.
    """
    users = check_ids("users", users)
    items = check_ids("items", items)
    arrays = {"users": users, "items": items}
    if ratings is not None:
        arrays["ratings"] = _as_1d("ratings", ratings)
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"users, items and ratings must have the same length; got lengths {lengths}")
    if len(users) == 0:
        raise ValueError("users, items and ratings are empty; at least one rating is required")
    if ratings is None:
        return users, items, None
    ratings = arrays["ratings"]
    if ratings.dtype.kind not in "biuf":
        raise ValueError(f"ratings must be numeric; got values of dtype {ratings.dtype} (e.g. {ratings[0]!r})")
    ratings = ratings.astype(np.float64, copy=False)
    bad = ~np.isfinite(ratings)
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"ratings must be finite numbers; {int(bad.sum())} are NaN or infinite "
            f"(first at position {j}: {ratings[j]})"
        )
    return users, items, ratings


def check_validation_data(validation_data):
    """``validation_data`` as checked triples; ValueError unless it is ``(users, items, ratings)``."""
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 3:
        raise ValueError("validation_data must be a tuple (users, items, ratings)")
    return check_triples(*validation_data)


def _as_1d(name, values):
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional (a list, array or pandas Series); got shape {arr.shape}")
    return arr


def check_ids(name, values):
    """``values`` as a 1-D array of ids that keep their identity, else ValueError naming ``name``.

    ``np.asarray([1, "1"])`` would make the integer 1 and the string "1" one
    id, so ids of mixed types are refused (missing ids are left to the
    encoder, which names them). Integers too large for 64 bits are refused:
    they could not be saved.
    """
    arr = _as_1d(name, values)
    if arr.dtype == object or not isinstance(values, (np.ndarray, pd.Series, pd.Index)):
        kind = pd.api.types.infer_dtype(arr if arr.dtype == object else values, skipna=True)
        if kind in ("mixed", "mixed-integer"):
            types = sorted({type(x).__name__ for x in (arr if arr.dtype == object else values)})
            raise ValueError(
                f"{name} mix ids of types {', '.join(types)}: 1 and '1' would become one id; "
                "convert them to one type first (e.g. all str)"
            )
        if kind == "integer" and arr.dtype.kind not in "iu":  # Python ints beyond int64 (object or float64)
            for dtype in (np.int64, np.uint64):
                try:
                    return np.array(list(values), dtype=dtype)
                except OverflowError:
                    pass
                except TypeError:  # None among them: left to the encoder, which counts the missing ids
                    return arr
            raise ValueError(f"{name} must fit in 64-bit integers; got ids from {min(values)} to {max(values)}")
    return arr


def id_kind(ids):
    """What kind of ids these are, in words: 'integers', 'strings', 'floats' or the type's name."""
    arr = np.asarray(ids)
    kind = {"i": "integers", "u": "integers", "U": "strings", "S": "bytes", "f": "floats", "b": "booleans"}
    if arr.dtype.kind in kind:
        return kind[arr.dtype.kind]
    return {"integer": "integers", "string": "strings", "floating": "floats"}.get(
        pd.api.types.infer_dtype(arr, skipna=True), f"{arr.dtype} values"
    )


def check_random_state(random_state):
    """A ``numpy.random.Generator`` from ``random_state`` (None, an integer >= 0 or a Generator), else raise."""
    if isinstance(random_state, (bool, np.bool_)) or not (
        random_state is None
        or isinstance(random_state, (numbers.Integral, np.random.Generator, np.random.SeedSequence))
    ):
        raise TypeError(f"random_state must be None, an integer >= 0 or a numpy.random.Generator; got {random_state!r}")
    if isinstance(random_state, numbers.Integral) and random_state < 0:
        raise ValueError(f"random_state must be None, an integer >= 0 or a numpy.random.Generator; got {random_state}")
    return np.random.default_rng(random_state)


def check_callback(callback):
    """``callback`` if it is None or callable, else TypeError (before the first epoch, not after it)."""
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be a callable callback(epoch, seconds, loss) or None; got {callback!r}")
    return callback
