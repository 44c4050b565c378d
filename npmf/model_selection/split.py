"""Random train/test splits, without scikit-learn."""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd

from ..core.typing import RandomState

__all__ = ["kfold", "train_test_split"]


def train_test_split(*arrays, test_size: float | int = 0.2, random_state: RandomState = None) -> list:
    """Split DataFrames or arrays of equal length into random train and test parts.

        Like scikit-learn's function of the same name (which the Keras recipe
        uses), but with a ``numpy.random.Generator``: one permutation of the rows,
        the first ``n_test`` go to the test part.

        Parameters
        ----------
        *arrays : DataFrames, Series or array-likes of equal length
        test_size : float in (0, 1) or int >= 1, default 0.2
            Fraction, or number, of rows in the test part (a fraction is rounded up).
        random_state : int, numpy.random.Generator or None

        Returns
        -------
        list
            ``[train_0, test_0, train_1, test_1, ...]``; DataFrames keep their index.

        Examples
        --------
        >>> import pandas as pd

    from ..core.typing import RandomState
        >>> df = pd.DataFrame({"rating": range(10)})
        >>> train, test = train_test_split(df, test_size=0.2, random_state=0)
        >>> len(train), len(test)
        (8, 2)
    """
    if not arrays:
        raise ValueError("train_test_split needs at least one DataFrame or array to split")
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise ValueError(f"all inputs must have the same length; got {[len(a) for a in arrays]}")
    n_test = _n_test(test_size, n)
    perm = np.random.default_rng(random_state).permutation(n)
    test_idx, train_idx = perm[:n_test], perm[n_test:]
    out = []
    for a in arrays:
        take = a.iloc.__getitem__ if hasattr(a, "iloc") else np.asarray(a).__getitem__
        out += [take(train_idx), take(test_idx)]
    return out


def _n_test(test_size, n):
    if isinstance(test_size, numbers.Integral) and not isinstance(test_size, bool):
        if not 1 <= test_size < n:
            raise ValueError(f"test_size as an integer must be in [1, {n - 1}] for {n} rows, got {test_size}")
        return int(test_size)
    if isinstance(test_size, numbers.Real) and 0 < test_size < 1:
        n_test = int(np.ceil(test_size * n))
        if n_test >= n:
            raise ValueError(f"test_size={test_size} leaves no training rows out of {n}")
        return n_test
    raise ValueError(f"test_size must be a fraction in (0, 1) or an integer count, got {test_size!r}")


def kfold(
    df: pd.DataFrame, n_folds: int = 5, random_state: RandomState = None
) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    """Split a ratings DataFrame into ``n_folds`` random (train, test) pairs.

    One permutation of the rows is cut into ``n_folds`` nearly equal parts;
    fold ``k`` tests on part ``k`` and trains on the rest, so every rating is
    tested exactly once. The random counterpart of ML-100k's u1-u5
    (:func:`npmf.load_movielens_folds`), for any ratings file.

    Parameters
    ----------
    df : DataFrame
    n_folds : int >= 2, default 5
    random_state : int, numpy.random.Generator or None

    Returns
    -------
    list of (train, test) DataFrame pairs
    """
    if isinstance(n_folds, bool) or not isinstance(n_folds, numbers.Integral) or not 2 <= n_folds <= len(df):
        raise ValueError(f"n_folds must be an integer in [2, {len(df)}] for {len(df)} rows, got {n_folds!r}")
    parts = np.array_split(np.random.default_rng(random_state).permutation(len(df)), n_folds)
    out = []
    for k in range(n_folds):
        train = np.sort(np.concatenate(parts[:k] + parts[k + 1 :]))
        out.append((df.iloc[train], df.iloc[np.sort(parts[k])]))
    return out
