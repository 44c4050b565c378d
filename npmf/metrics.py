r"""Accuracy of predicted ratings: one small function per formula.

Each raises ``ValueError`` on empty input, on inputs of different lengths and
on NaN or infinite values.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["mae", "rmse", "rounded_mae", "rating_step"]


def _check(y_true, y_pred):
    y_true = np.asarray(y_true, dtype=np.float64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.float64).ravel()
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true and y_pred must have the same length; got {len(y_true)} and {len(y_pred)}")
    if len(y_true) == 0:
        raise ValueError("y_true and y_pred are empty; at least one rating is needed")
    if not (np.isfinite(y_true).all() and np.isfinite(y_pred).all()):
        raise ValueError("y_true and y_pred must be finite; found NaN or infinite values")
    return y_true, y_pred


def mae(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    r"""Mean absolute error, :math:`\frac{1}{n}\sum_j |r_j - \hat r_j|`."""
    y_true, y_pred = _check(y_true, y_pred)
    return float(np.mean(np.abs(y_true - y_pred)))


def rmse(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    r"""Root mean squared error, :math:`\sqrt{\frac{1}{n}\sum_j (r_j - \hat r_j)^2}`."""
    y_true, y_pred = _check(y_true, y_pred)
    return float(np.sqrt(np.mean((y_true - y_pred) ** 2)))


def rounded_mae(
    y_true: ArrayLike, y_pred: ArrayLike, clip: tuple[float, float] | None = None, step: float = 1.0
) -> float:
    r"""MAE of predictions rounded to the rating grid, as the Keras recipe reports it.

    .. math:: \frac{1}{n}\sum_j \big|r_j - s\,\mathrm{round}(\mathrm{clip}(\hat r_j)/s)\big|

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n,)
    clip : (lo, hi) or None, default None
        Clip predictions to the rating scale before rounding. The recipe does
        not clip (``np.round(predictions)``), hence the default.
    step : float, default 1.0
        Grid to round to, e.g. 0.5 for ratings in half stars. ``np.round``
        rounds halves to even, as the recipe does.
    """
    y_true, y_pred = _check(y_true, y_pred)
    if not (np.isfinite(step) and step > 0):
        raise ValueError(f"step must be a positive number, got {step!r}")
    if clip is not None:
        lo, hi = clip
        if not lo <= hi:
            raise ValueError(f"clip must be (lo, hi) with lo <= hi, got {clip!r}")
        y_pred = np.clip(y_pred, lo, hi)
    return float(np.mean(np.abs(y_true - step * np.round(y_pred / step))))


def rating_step(ratings: ArrayLike) -> float:
    """The grid a rating scale lies on: the smallest gap between distinct ratings.

    1.0 for MovieLens-100k's 1-5 stars, 0.5 for half stars (ML-10M, ML-25M);
    1.0 when there are fewer than two distinct values.
    """
    values = np.unique(np.asarray(ratings, dtype=np.float64))
    if len(values) < 2:
        return 1.0
    return float(np.diff(values).min())
