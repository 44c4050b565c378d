"""Helpers the tests share: data they generate, and where the real MovieLens files are."""

import os
from pathlib import Path

import numpy as np


def ml100k_dir():
    """The folder holding ml-100k/u.data, or None: tests that need it skip without it."""
    home = os.environ.get("NPMF_DATA_DIR")
    if home and (Path(home) / "ml-100k" / "u.data").is_file():
        return Path(home)
    return None


def planted(n_users=40, n_items=30, n_ratings=900, k=2, noise=0.1, seed=0):
    """Ratings from a planted rank-k model plus Gaussian noise (raw ids are offset ints)."""
    rng = np.random.default_rng(seed)
    W = rng.normal(0, 1, (n_users, k))
    H = rng.normal(0, 1, (n_items, k))
    u = rng.integers(0, n_users, n_ratings)
    i = rng.integers(0, n_items, n_ratings)
    r = 3 + (W[u] * H[i]).sum(1) + rng.normal(0, noise, n_ratings)
    return u + 100, i + 500, r


def write_ratings_file(path, n, sep=",", header=None, timestamp=False):
    """A delimited ratings file of ``n`` random ratings (29 users, 39 items, 1-5 stars)."""
    rng = np.random.default_rng(0)
    rows = zip(rng.integers(1, 30, n), rng.integers(1, 40, n), rng.integers(1, 6, n), strict=True)
    tail = f"{sep}0" if timestamp else ""
    lines = "".join(f"{u}{sep}{i}{sep}{r}{tail}\n" for u, i, r in rows)
    path.write_text((header + "\n" if header else "") + lines)
    return path


def model_state(model):
    """Every attribute of ``model``, deep-copied to compare later (arrays as dtype, shape and bytes)."""
    return {name: _frozen(value) for name, value in vars(model).items()}


def _frozen(value):
    if isinstance(value, np.ndarray):
        return ("ndarray", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, np.random.Generator):
        return ("Generator", repr(value.bit_generator.state))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [_frozen(x) for x in value])
    if isinstance(value, dict):
        return ("dict", {k: _frozen(x) for k, x in value.items()})
    if isinstance(value, (float, np.floating)) and not isinstance(value, bool):
        return ("float", float(value).hex())  # by value: a float64 from a kernel equals the float JSON gives back
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return ("int", int(value))
    return (type(value).__name__, repr(value))


def assert_model_unchanged(before, model):
    """Assert that ``model`` is bit for bit as when ``before = model_state(model)`` was taken."""
    after = model_state(model)
    assert set(after) == set(before), (
        f"attributes changed: added {set(after) - set(before)}, lost {set(before) - set(after)}"
    )
    for name, value in before.items():
        assert after[name] == value, f"{name} changed"
