r"""What every fitted npmf model is: :math:`\hat r_{ui} = \mu + b_u + b_i + w_u \cdot h_i` over raw ids.

:class:`FactorModel` is the base of :class:`~npmf.MatrixFactorization` (trained
by Adam or SGD) and :class:`~npmf.BayesianMatrixFactorization` (sampled by
Gibbs). Both end with the same fitted attributes, so prediction, unknown-id
fallbacks, ranking (:class:`~npmf.core.ranking.RankingMixin`), presets and
persistence are written once, here.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
import weakref

import numpy as np
import pandas as pd

from . import _kernels
from .base import BaseEstimator
from .fold_in import FoldInMixin
from .persistence import load_estimator, save_estimator
from .ranking import RankingMixin
from .typing import ArrayLike, Ids, PathType
from .validation import check_triples, id_kind

__all__ = ["FactorModel"]

# Held for the few dictionary operations of a publish or a snapshot, never while computing.
_PUBLISH = threading.Lock()
# One reentrant lock per model that serialises its writers (fit, partial_fit, fold_in).
_WRITERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


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

    Threads: any number of readers (``predict``, ``recommend``,
    ``similar_items``, the embeddings, ``save``) may run at once, also while
    one writer (``fit``, ``partial_fit``, ``fold_in``) runs in another
    thread. A writer trains a shadow of the model and publishes it whole at
    the end, in one step under a lock; a reader takes a snapshot of the
    model in one step under that lock and computes on it. So a read sees the
    model before the write or after it, never a mix, and never reads out of
    bounds. Writers of one model are serialised: a second ``partial_fit``
    waits for the first and continues from its result. Reading or assigning
    the fitted attributes yourself (``model.user_factors_``) takes no
    snapshot: during a write it may see either state.
    """

    @classmethod
    def from_preset(cls, name: str, **overrides) -> FactorModel:
        """A model with preset ``name``'s parameters (see :mod:`npmf.presets`), updated by ``overrides``.

        ValueError when the preset belongs to another estimator class; then
        :func:`npmf.from_preset` builds it.
        """
        from ..presets import from_preset  # presets name the estimators, which stand on this class

        return from_preset(name, estimator=cls, **overrides)

    # ------------------------------------------------------------ threads
    def _snapshot(self):
        """A shallow copy of the model, taken in one step under the publish lock: what a reader computes on.

        Caches a reader builds on it (the seen-pairs index) go to ``_origin``, the model itself.
        """
        view = object.__new__(type(self))
        with _PUBLISH:
            view.__dict__.update(self.__dict__)
        view.__dict__["_origin"] = self.__dict__.get("_origin", self)
        return view

    @contextlib.contextmanager
    def _writing(self):
        """Serialise this model's writers; yield a shadow to build the new state in; publish it if the body returns.

        The shadow shares the model's arrays, so the body must replace, never
        write into, an array it found (training writes only into copies, see
        :func:`npmf.sgd.state.own_copies`). Lists and dicts of lists (Adam's
        moments, the history) are copied one level, so appending or
        replacing an element changes only the shadow. If the body raises
        (KeyboardInterrupt too), nothing is published: the model is as it was.
        """
        with _PUBLISH:
            lock = _WRITERS.setdefault(self, threading.RLock())
        with lock:
            shadow = object.__new__(type(self))
            with _PUBLISH:
                state = dict(self.__dict__)
            for name, value in state.items():
                if isinstance(value, list):
                    state[name] = list(value)
                elif isinstance(value, dict):
                    state[name] = {key: list(v) if isinstance(v, list) else v for key, v in value.items()}
            shadow.__dict__.update(state)
            yield shadow
            params = set(self._param_names())  # set_params in another thread meanwhile is kept
            fitted = {name: value for name, value in shadow.__dict__.items() if name not in params}
            with _PUBLISH:
                for name in [name for name in self.__dict__ if name not in params and name not in fitted]:
                    del self.__dict__[name]
                self.__dict__.update(fitted)

    def fold_in(self, users: Ids, items: Ids, ratings: ArrayLike):
        with self._writing() as new:
            FoldInMixin.fold_in(new, users, items, ratings)
        return self

    fold_in.__doc__ = FoldInMixin.fold_in.__doc__

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
        return self._snapshot()._predict(users, items, clip)

    def _predict(self, users, items, clip):
        """:meth:`predict` on a snapshot."""
        self._check_fitted()
        users, items, _ = check_triples(users, items)
        u, i = self._codes(self.user_ids_, users), self._codes(self.item_ids_, items)
        for name, codes, values, ids in (("users", u, users, self.user_ids_), ("items", i, items, self.item_ids_)):
            if len(ids) and (codes < 0).all() and id_kind(values) != id_kind(ids):
                warnings.warn(
                    f"none of the {name} is known: they are {id_kind(values)} but the model's ids are "
                    f"{id_kind(ids)} (1 and '1' are different ids); every prediction is a fallback",
                    UserWarning,
                    stacklevel=4,
                )
        pred = self._predict_codes(u, i)
        return np.clip(pred, *self.rating_range_) if clip else pred

    def _predict_codes(self, u, i):
        # On a snapshot the codes are in bounds by construction; this cheap check keeps the kernel
        # from reading out of bounds when the attributes were assigned by hand inconsistently.
        W, H, bu, bi = self.user_factors_, self.item_factors_, self.user_bias_, self.item_bias_
        if (len(u) and u.max() >= min(len(W), len(bu))) or (len(i) and i.max() >= min(len(H), len(bi))):
            raise RuntimeError(
                f"this {type(self).__name__}'s ids and arrays disagree (assigned by hand?): "
                f"codes reach {max(u.max(initial=-1), i.max(initial=-1))} but the arrays have "
                f"{min(len(W), len(bu))} user and {min(len(H), len(bi))} item rows"
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
        save_estimator(self._snapshot(), path)

    @classmethod
    def load(cls, path: PathType) -> FactorModel:
        """Load a model written by :meth:`save`; it predicts identically.

        ``FactorModel.load`` (or :func:`npmf.load`) accepts a file of any npmf
        estimator; a subclass accepts only its own files.
        """
        return load_estimator(cls, path, FactorModel)
