r"""What every fitted npmf model is: :math:`\hat r_{ui} = \mu + b_u + b_i + w_u \cdot h_i` over raw ids.

:class:`FactorModel` is the base of :class:`~npmf.MatrixFactorization` (trained
by Adam or SGD) and :class:`~npmf.BayesianMatrixFactorization` (sampled by
Gibbs). Both end with the same fitted attributes, so prediction, unknown-id
fallbacks, ranking (:class:`~npmf.core.ranking.RankingMixin`), presets and
persistence are written once, here.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from . import _kernels
from .base import BaseEstimator
from .fold_in import FoldInMixin
from .persistence import load_estimator, save_estimator
from .ranking import RankingMixin
from .typing import Ids, PathType
from .validation import check_triples, id_kind

__all__ = ["FactorModel"]


class FactorModel(FoldInMixin, RankingMixin, BaseEstimator):
    """Base class: prediction, presets and persistence of a fitted factor model.

    Fitted attributes the subclasses set: ``user_ids_``, ``item_ids_`` (raw ids
    in code order), ``user_factors_`` (M, k), ``item_factors_`` (N, k),
    ``user_bias_`` (M,), ``item_bias_`` (N,), ``global_mean_``,
    ``rating_range_``, ``history_`` and ``_seen`` (the training pairs as codes).

    Notes
    -----
    Failed calls change nothing: ``fit`` and ``partial_fit`` validate first,
    train new arrays beside the old ones and put every attribute back if they
    raise (bad input, divergence, an exception in ``callback``,
    KeyboardInterrupt). ``load`` checks every array of a file against the
    others before use.

    Threads: ``predict``, ``recommend`` and ``save`` may run in many threads
    at once. ``fit`` and ``partial_fit`` must not run concurrently with each
    other on one model (guard them with a lock). A ``predict`` while another
    thread runs ``partial_fit`` never reads out of bounds: new ids are
    published only after their rows exist, and a prediction that finds the
    arrays replaced under it raises RuntimeError; its numbers may mix the
    weights before and during the call.
    """

    @classmethod
    def from_preset(cls, name: str, **overrides) -> FactorModel:
        """A model with preset ``name``'s parameters (see :mod:`npmf.presets`), updated by ``overrides``.

        ValueError when the preset belongs to another estimator class; then
        :func:`npmf.from_preset` builds it.
        """
        from ..presets import from_preset  # presets name the estimators, which stand on this class

        return from_preset(name, estimator=cls, **overrides)

    def _config(self):
        """The estimator's checked parameters as its family's frozen config; raises for a bad one."""
        raise NotImplementedError

    # -------------------------------------------------------------- predict
    def predict(self, users: Ids, items: Ids, clip: bool = False) -> np.ndarray:
        """Predicted ratings for (user, item) pairs of raw ids.

        An unknown user or item gets what is known: with biases, :math:`\\mu`
        plus the bias of whichever id is known; without biases, the training
        mean ``global_mean_``. Never raises for unknown ids.

        Parameters
        ----------
        users, items : array-like of shape (n,)
        clip : bool, default False
            Clip to ``rating_range_``, the lowest and highest training rating.

        Returns
        -------
        ndarray of shape (n,), float64
        """
        self._check_fitted()
        users, items, _ = check_triples(users, items)
        u, i = self._codes(self.user_ids_, users), self._codes(self.item_ids_, items)
        for name, codes, values, ids in (("users", u, users, self.user_ids_), ("items", i, items, self.item_ids_)):
            if len(ids) and (codes < 0).all() and id_kind(values) != id_kind(ids):
                warnings.warn(
                    f"none of the {name} is known: they are {id_kind(values)} but the model's ids are "
                    f"{id_kind(ids)} (1 and '1' are different ids); every prediction is a fallback",
                    UserWarning,
                    stacklevel=2,
                )
        pred = self._predict_codes(u, i)
        return np.clip(pred, *self.rating_range_) if clip else pred

    def _predict_codes(self, u, i):
        # Thread safety: the ids were read before the arrays, and partial_fit publishes grown
        # arrays before the ids, so codes are in bounds unless another thread replaced the
        # model meanwhile in some other way; then this raises instead of reading out of bounds.
        W, H, bu, bi = self.user_factors_, self.item_factors_, self.user_bias_, self.item_bias_
        if (len(u) and u.max() >= min(len(W), len(bu))) or (len(i) and i.max() >= min(len(H), len(bi))):
            raise RuntimeError(
                f"this {type(self).__name__} changed while predicting (fit in another thread?); "
                "guard fit and predict of one model with a lock"
            )
        known = (u >= 0) & (i >= 0)
        out = np.empty(len(u))
        mu = self.global_mean_ if self.biases else 0.0
        out[known] = _kernels.predict_numba(W, H, bu, bi, mu, u[known], i[known])
        unknown = ~known
        uu, ii = u[unknown], i[unknown]
        out[unknown] = self.global_mean_
        if self.biases:
            out[unknown] += np.where(uu >= 0, bu[np.maximum(uu, 0)], 0.0)
            out[unknown] += np.where(ii >= 0, bi[np.maximum(ii, 0)], 0.0)
        return out

    @staticmethod
    def _codes(categories, values):
        """Codes of raw ids in ``categories``; -1 for ids not among them."""
        # int32 halves the memory of the codes of tens of millions of ratings.
        return pd.Index(categories).get_indexer(values).astype(np.int32)

    def _check_fitted(self):
        if not hasattr(self, "user_factors_"):
            name = type(self).__name__
            raise RuntimeError(f"this {name} is not fitted yet; call fit(users, items, ratings) first")

    # ---------------------------------------------------------- persistence
    def _state_arrays(self):
        """Arrays beyond the fitted attributes above that :meth:`save` must keep (none here)."""
        return {}

    def _restore_state(self, arrays):
        """Inverse of :meth:`_state_arrays`, called by :meth:`load`."""

    @classmethod
    def _check_saved_state(cls, arrays, params):
        """What is wrong with the state arrays of a file (the fitted ones are checked already), or None."""
        return None

    def save(self, path: PathType) -> None:
        """Write the fitted model to ``path`` as ``.npz`` (no pickle), atomically.

        The file holds the factors, biases, id mappings, the training pairs
        (for ``recommend(exclude_seen=True)``), the parameters, the history and
        whatever state the estimator needs to continue training.
        """
        self._check_fitted()
        save_estimator(self, path)

    @classmethod
    def load(cls, path: PathType) -> FactorModel:
        """Load a model written by :meth:`save`; it predicts identically.

        ``FactorModel.load`` (or :func:`npmf.load`) accepts a file of any npmf
        estimator; a subclass accepts only its own files.
        """
        return load_estimator(cls, path, FactorModel)
