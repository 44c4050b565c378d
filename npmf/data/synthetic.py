"""Synthetic MovieLens-like ratings from a planted low-rank model: :func:`make_ratings`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.typing import RandomState
from . import _synthetic_kernels as _kernels

__all__ = ["make_ratings"]


def make_ratings(
    n_users: int,
    n_items: int,
    n_ratings: int,
    n_factors: int = 10,
    noise: float = 0.5,
    random_state: RandomState = None,
) -> pd.DataFrame:
    r"""Synthetic ratings from a planted low-rank model with biases, MovieLens-like.

    Each rating is

    .. math::

        r_{ui} = \operatorname{clip}\big(\operatorname{round}(\mu + b_u + b_i + w_u \cdot h_i
                 + \varepsilon_{ui}),\ 1,\ 5\big),
        \qquad \varepsilon_{ui} \sim \mathcal N(0, \sigma^2),

    with :math:`\mu = 3.5`, :math:`b_u \sim \mathcal N(0, 0.3^2)`,
    :math:`b_i \sim \mathcal N(0, 0.5^2)` and factors with i.i.d. normal entries
    scaled so that :math:`w_u \cdot h_i` has standard deviation 0.8. Users and
    items are drawn from skewed popularity laws, :math:`P(\text{rank } j) \propto
    (j + 10)^{-a}` with :math:`a = 1.1` for items and 0.9 for users, the ranks
    shuffled over the ids. Each (user, item) pair occurs at most once.

    Parameters
    ----------
    n_users, n_items, n_ratings : int
        ``n_ratings`` must not exceed ``n_users * n_items / 2``.
    n_factors : int, default 10
        Rank of the planted model.
    noise : float, default 0.5
        :math:`\sigma`.
    random_state : int, numpy.random.Generator or None

    Returns
    -------
    DataFrame
        ``user_id`` and ``item_id`` (int32 codes in ``[0, n_users)`` and
        ``[0, n_items)``) and ``rating`` (float64, whole numbers 1 to 5), sorted
        by user then item, as MovieLens files are. ``attrs["noise_mse"]`` is the
        mean squared difference between the ratings and the planted model's
        noiseless scores: the loss a perfect fit would reach, noise and rounding
        included.

    Examples
    --------
    >>> df = make_ratings(1000, 500, 20_000, random_state=0)
    >>> len(df), df.rating.between(1, 5).all()
    (20000, True)
    """
    from ..core.validation import check_float, check_int

    n_users, n_items = check_int("n_users", n_users), check_int("n_items", n_items)
    n_ratings, k = check_int("n_ratings", n_ratings), check_int("n_factors", n_factors)
    noise = check_float("noise", noise, low=0, low_open=False)
    if n_ratings > n_users * n_items // 2:
        raise ValueError(
            f"n_ratings={n_ratings} is more than half of n_users * n_items = {n_users * n_items}; "
            "ask for fewer ratings or more users or items"
        )
    rng = np.random.default_rng(random_state)
    u, i, kept = np.empty(0, np.int32), np.empty(0, np.int32), 1.0
    while len(u) < n_ratings:  # draw, drop repeated pairs, top up
        want = int((n_ratings - len(u)) / kept * 1.1) + 16
        new_u = _zipf_codes(rng, n_users, 0.9, want)
        new_i = _zipf_codes(rng, n_items, 1.1, want)
        new_u, new_i = _kernels.merge_unique(u, i, *_kernels.unique_pairs(new_u, new_i, n_users, n_items))
        kept, u, i = max((len(new_u) - len(u)) / want, 0.05), new_u, new_i
    if len(u) > n_ratings:
        keep = np.ones(len(u), bool)
        keep[rng.choice(len(u), len(u) - n_ratings, replace=False)] = False
        u, i = u[keep], i[keep]
    scale = (0.64 / k) ** 0.25
    W = rng.normal(0, scale, (n_users, k)).astype(np.float32)
    H = rng.normal(0, scale, (n_items, k)).astype(np.float32)
    bu, bi = rng.normal(0, 0.3, n_users), rng.normal(0, 0.5, n_items)
    rating = rng.normal(0, noise, n_ratings)  # the noise, turned into the ratings in place
    noise_mse = _kernels.planted_ratings(u, i, W, H, bu, bi, 3.5, rating)
    out = pd.DataFrame({"user_id": u, "item_id": i, "rating": rating}, copy=False)
    out.attrs["noise_mse"] = float(noise_mse)
    return out


def _zipf_codes(rng, n, a, size, chunk=1 << 20):
    """``size`` int32 codes in [0, n) with P(rank j) ~ (j + 10)^-a (continuous inverse CDF), ranks shuffled."""
    lo, hi = 10.0 ** (1 - a), (n + 10.0) ** (1 - a)
    # The uniforms in chunks through one buffer: the same stream as rng.random(size), without its memory.
    x, out = np.empty(min(size, chunk)), np.empty(size, np.int32)
    for start in range(0, size, chunk):
        stop = min(start + chunk, size)
        rng.random(out=x[: stop - start])
        _kernels.zipf_ranks(x[: stop - start], lo, hi - lo, 1 / (1 - a), n, out[start:stop])
    _kernels.relabel(out, rng.permutation(n))
    return out
