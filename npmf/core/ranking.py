"""Ranking with a fitted model: top-n recommendations and similar items, for one id or many."""

from __future__ import annotations

import numbers
from collections.abc import Hashable

import numpy as np
import pandas as pd

from . import _topk
from .validation import check_choice, check_int

__all__ = ["RankingMixin", "MIN_ITEM_RATINGS"]

# The default of ``recommend(min_item_ratings=)``: measured on ML-100k by benchmarks/recommend.py
# (benchmarks/results/recommend/); with fewer training ratings an item's factors are mostly noise.
MIN_ITEM_RATINGS = 10


class RankingMixin:
    """``recommend``, ``similar_items`` and the embeddings as DataFrames.

    Mixed into :class:`~npmf.FactorModel`; relies on its fitted attributes,
    ``_seen`` (the training pairs as codes) and its ``_codes`` helper.
    """

    def recommend(
        self,
        users: Hashable | list,
        n: int = 10,
        exclude_seen: bool = True,
        items: list | None = None,
        min_item_ratings: int = MIN_ITEM_RATINGS,
        clip: bool = True,
        use_numba: bool = True,
    ) -> pd.DataFrame:
        r"""The ``n`` items with the highest predicted rating for each of ``users``.

        Scores are :meth:`predict`'s, :math:`\hat r_{ui} = \mu + b_u + b_i + w_u \cdot h_i`,
        computed for a block of users at once (one BLAS product, then a
        parallel top-n kernel, :mod:`npmf.core._topk`): every user of a
        162k x 59k model with k=32 in seconds (``benchmarks/recommend.py``).

        Parameters
        ----------
        users : a raw user id, or a list-like of them
            An unknown user is ranked as :meth:`predict` would score it
            (by item bias with ``biases=True``; otherwise all items tie and
            the lowest item codes come first).
        n : int, default 10
        exclude_seen : bool, default True
            Leave out the items the user rated in training.
        items : list-like of raw item ids, optional
            Rank only these (all training items by default). ValueError for an
            id not seen in training.
        min_item_ratings : int >= 0, default 10
            Leave out items with fewer training ratings: their factors are
            fitted to one or two ratings and their scores are extreme (on
            ML-100k the default Keras-recipe model otherwise fills a list with
            such items, scored above the top of the scale). 0 or 1 keeps all.
        clip : bool, default True
            Report scores clipped to ``rating_range_``. The ranking always uses
            the unclipped scores, so clipping creates no ties.
        use_numba : bool, default True
            False selects with the plain-NumPy twin (same results, slower).

        Returns
        -------
        DataFrame
            Columns ``user_id``, ``rank`` (1 is best), ``item_id``, ``score``:
            ``n`` rows per user (fewer when fewer items qualify), users in the
            order given.
        """
        self._check_fitted()
        check_choice("exclude_seen", exclude_seen, (True, False))
        view = self._snapshot()  # one consistent model, also while partial_fit runs in another thread
        csr = view._seen_csr() if exclude_seen else None
        return view._rank(users, n, csr, items, min_item_ratings, clip, use_numba)

    def _rank(self, users, n, csr, items, min_item_ratings, clip, use_numba):
        """:meth:`recommend` with the items to leave out given as CSR by user code (or None)."""
        n = check_int("n", n)
        min_item_ratings = check_int("min_item_ratings", min_item_ratings, minimum=0)
        users = _as_ids("users", users)
        N = len(self.item_ids_)
        allowed = np.ones(N, np.bool_)
        if items is not None:
            items = _as_ids("items", items)
            codes = self._codes(self.item_ids_, items)
            if (codes < 0).any():
                bad = items[codes < 0][:5].tolist()  # tolist: plain Python ids in the message
                raise ValueError(f"items holds ids not in the training data (e.g. {bad}); pass training item ids")
            allowed[:] = False
            allowed[codes] = True
        if min_item_ratings > 1:
            allowed &= self._item_counts() >= min_item_ratings
        W, H, bu, bi, mu = self._ranking_factors()
        u = self._codes(self.user_ids_, users).astype(np.int64)
        known = u >= 0
        rows = np.zeros((len(u), W.shape[1]), W.dtype)
        rows[known] = W[u[known]]
        offsets = np.where(known, mu + bu[np.maximum(u, 0)], self.global_mean_)
        top, scores, counts = _topk.top_n(rows, H, offsets, bi, u, allowed, csr, n, use_numba)
        if clip:
            scores = np.clip(scores, *self.rating_range_)
        return _long(users, "user_id", top, scores, counts, self.item_ids_, "score")

    def similar_items(self, items: Hashable | list, n: int = 10, use_numba: bool = True) -> pd.DataFrame:
        r"""The ``n`` items whose factors have the highest cosine similarity to each of ``items``.

        :math:`\cos(h_i, h_j) = h_i \cdot h_j / (\lVert h_i \rVert \lVert h_j \rVert)`
        (0 for an all-zero factor row). The item itself is left out.

        Parameters
        ----------
        items : a raw item id, or a list-like of them
            ValueError for an item not seen in training.
        n : int, default 10
        use_numba : bool, default True
            False selects with the plain-NumPy twin.

        Returns
        -------
        DataFrame
            Columns ``query_item_id``, ``rank``, ``item_id``, ``similarity``,
            most similar first, queries in the order given.
        """
        self._check_fitted()
        view = self._snapshot()  # one consistent model while a writer may publish
        n = check_int("n", n)
        queries = _as_ids("items", items)
        codes = view._codes(view.item_ids_, queries).astype(np.int64)
        if (codes < 0).any():
            item = queries[codes < 0][0]
            item = item.item() if isinstance(item, np.generic) else item
            raise ValueError(f"item {item!r} was not in the training data, so it has no factors to compare")
        H = view._ranking_factors()[1].astype(np.float64)
        unit = H / np.maximum(np.linalg.norm(H, axis=1), np.finfo(float).tiny)[:, None]
        B, N = len(codes), len(H)
        # each query "has seen" only itself, so the selection leaves it out
        csr = (np.arange(B + 1, dtype=np.int64), codes)
        top, sims, counts = _topk.top_n(
            unit[codes], unit, np.zeros(B), np.zeros(N), np.arange(B), np.ones(N, np.bool_), csr, n, use_numba
        )
        return _long(queries, "query_item_id", top, sims, counts, view.item_ids_, "similarity")

    def user_embeddings(self) -> pd.DataFrame:
        """User factors as a DataFrame indexed by raw user id (columns 0..k-1)."""
        self._check_fitted()
        view = self._snapshot()
        return pd.DataFrame(view.user_factors_, index=pd.Index(view.user_ids_, name="user_id"))

    def item_embeddings(self) -> pd.DataFrame:
        """Item factors as a DataFrame indexed by raw item id, as the recipe shows them."""
        self._check_fitted()
        view = self._snapshot()
        return pd.DataFrame(view.item_factors_, index=pd.Index(view.item_ids_, name="item_id"))

    # ------------------------------------------------------------- helpers
    def _ranking_factors(self):
        """(W, H, b_u, b_i, mu) that score as :meth:`predict` does for known ids; mu is 0 without biases."""
        mu = self.global_mean_ if self.biases else 0.0
        bu = np.asarray(self.user_bias_, np.float64)
        return self.user_factors_, self.item_factors_, bu, np.asarray(self.item_bias_, np.float64), mu

    def _seen_csr(self):
        """The training pairs as CSR by user, cached on the model until ``_seen`` or the ids are replaced.

        Called on a snapshot (:meth:`_snapshot`): the cache is kept on the
        model itself, keyed by the snapshot's pairs and id counts, so it
        always fits the snapshot that uses it.
        """
        owner = getattr(self, "_origin", self)
        key = (self._seen, len(self.user_ids_), len(self.item_ids_))
        cache = getattr(owner, "_seen_cache", None)
        if cache is None or cache[0][0] is not key[0] or cache[0][1:] != key[1:]:
            seen_u, seen_i = self._seen
            csr = _topk.seen_csr(seen_u, seen_i, key[1])
            counts = np.bincount(seen_i, minlength=key[2])
            owner._seen_cache = cache = (key, csr, counts)
        self._seen_cache = cache
        return cache[1]

    def _item_counts(self):
        """Training ratings per item code."""
        self._seen_csr()
        return self._seen_cache[2]


def _as_ids(name, ids):
    """One id or a list-like of ids as a 1-D ndarray."""
    if isinstance(ids, (str, bytes, numbers.Number)) or np.ndim(ids) == 0:
        return np.asarray([ids])
    out = np.asarray(ids)
    if out.dtype.kind in "US" and not all(isinstance(x, str) for x in ids):
        out = np.empty(len(ids), object)  # mixed ids (e.g. 500 and "nope") stay as given, not all strings
        out[:] = list(ids)
    if out.ndim != 1:
        raise ValueError(f"{name} must be one id or a 1-D list of ids; got an array of shape {out.shape}")
    return out


def _long(queries, query_column, top, scores, counts, ids, column):
    """The per-query top lists as one long DataFrame (query, rank, item_id, column)."""
    mask = np.arange(top.shape[1])[None, :] < counts[:, None]
    q = np.repeat(np.arange(len(queries)), counts)
    return pd.DataFrame(
        {
            query_column: queries[q],
            "rank": np.nonzero(mask)[1] + 1,
            "item_id": ids[top[mask]],
            column: scores[mask],
        }
    )
