"""Argument checks shared by the public functions. Each raises one clear error
that names the argument, what was wrong and what is allowed."""

import numbers

import numpy as np


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

    Raises ValueError for different lengths, empty input, non-numeric,
    NaN or infinite ratings.
    """
    users = _as_1d("users", users)
    items = _as_1d("items", items)
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
