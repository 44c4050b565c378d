"""Ranking with a fitted model: top-n recommendations and similar items."""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
import pandas as pd

from .validation import check_choice, check_int

__all__ = ["RankingMixin"]


class RankingMixin:
    """``recommend``, ``similar_items`` and the embeddings as DataFrames.

    Mixed into :class:`~npmf.MatrixFactorization`; relies on its fitted
    attributes and its ``_predict_codes``/``_codes`` helpers.
    """

    def recommend(self, user: Hashable, n: int = 10, exclude_seen: bool = True) -> pd.DataFrame:
        """The ``n`` items with the highest predicted rating for ``user``.

        Parameters
        ----------
        user : a raw user id
            An unknown user is ranked as :meth:`predict` would score it
            (by item bias with ``biases=True``; otherwise all items tie).
        n : int, default 10
        exclude_seen : bool, default True
            Leave out the items the user rated in training.

        Returns
        -------
        DataFrame with columns ``item_id`` and ``score``, best first.
        """
        self._check_fitted()
        n = check_int("n", n)
        check_choice("exclude_seen", exclude_seen, (True, False))
        u = self._codes(self.user_ids_, [user])
        scores = self._predict_codes(np.repeat(u, len(self.item_ids_)), np.arange(len(self.item_ids_)))
        if exclude_seen and u[0] >= 0:
            seen_u, seen_i = self._seen
            scores[seen_i[seen_u == u[0]]] = -np.inf
        return _top_n(scores, self.item_ids_, n, "score")

    def similar_items(self, item: Hashable, n: int = 10) -> pd.DataFrame:
        """The ``n`` items whose factors have the highest cosine similarity to ``item``'s.

        Returns
        -------
        DataFrame with columns ``item_id`` and ``similarity``, most similar first;
        ``item`` itself is left out. ValueError for an item not seen in training.
        """
        self._check_fitted()
        n = check_int("n", n)
        code = self._codes(self.item_ids_, [item])[0]
        if code < 0:
            raise ValueError(f"item {item!r} was not in the training data, so it has no factors to compare")
        H = self.item_factors_.astype(np.float64)
        norms = np.linalg.norm(H, axis=1)
        sims = H @ H[code] / np.maximum(norms * norms[code], np.finfo(float).tiny)
        sims[code] = -np.inf
        return _top_n(sims, self.item_ids_, n, "similarity")

    def user_embeddings(self) -> pd.DataFrame:
        """User factors as a DataFrame indexed by raw user id (columns 0..k-1)."""
        self._check_fitted()
        return pd.DataFrame(self.user_factors_, index=pd.Index(self.user_ids_, name="user_id"))

    def item_embeddings(self) -> pd.DataFrame:
        """Item factors as a DataFrame indexed by raw item id, as the recipe shows them."""
        self._check_fitted()
        return pd.DataFrame(self.item_factors_, index=pd.Index(self.item_ids_, name="item_id"))


def _top_n(scores, ids, n, column):
    """The ``n`` best finite scores, best first, as a DataFrame (item_id, column)."""
    n = min(n, int(np.isfinite(scores).sum()))
    top = np.argpartition(-scores, n - 1)[:n] if n else np.empty(0, np.int64)
    top = top[np.lexsort((top, -scores[top]))]  # by score, ties by code: deterministic
    return pd.DataFrame({"item_id": ids[top], column: scores[top]})
