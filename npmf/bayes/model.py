r"""The Gibbs-sampled estimator: :class:`BayesianMatrixFactorization`."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from ..core.encoding import factorize_ids
from ..core.factor_model import FactorModel
from ..core.persistence import check_count
from ..core.threads import numba_threads
from ..core.training import EpochLog
from ..core.typing import ArrayLike, Callback, Ids, RandomState, Triples
from ..core.validation import check_callback, check_random_state, check_triples, check_validation_data
from . import gibbs
from ._chain import Chain
from .config import GibbsConfig
from .fold_in import BayesFoldIn

__all__ = ["BayesianMatrixFactorization"]


class BayesianMatrixFactorization(BayesFoldIn, FactorModel):
    r"""Biased matrix factorisation whose predictions average Gibbs samples of the posterior.

    Same model as :class:`~npmf.MatrixFactorization` with ``biases=True``,

    .. math:: \hat r_{ui} = \mu + b_u + b_i + w_u \cdot h_i,

    but instead of one point estimate it draws the factors, biases, global
    mean, noise level and the priors' means and covariances from their
    posterior (BPMF, Salakhutdinov & Mnih 2008; the sampler and its
    derivation are in :mod:`npmf.bayes.gibbs` and ``docs/derivation.md``). Priors
    adapt to the data, so there is no learning rate or L2 strength to tune,
    and averaging the samples' predictions guards against overfitting.

    The average of the samples' predictions is itself a factor model: with
    :math:`S` kept samples, :math:`\frac1S\sum_s w^{(s)}_u\cdot h^{(s)}_i`
    is the dot product of the samples' factors laid side by side and scaled
    by :math:`1/\sqrt S`. So the fitted ``user_factors_`` have
    ``n_kept_samples * n_factors`` columns, and ``predict``, ``recommend``,
    ``similar_items``, ``save`` and ``load`` are those of every npmf model.

    Parameters
    ----------
    n_factors : int, default 10
        k, the rank of each sample.
    epochs : int, default 200
        Gibbs sweeps; each draws every user row, every item row and the
        hyperparameters once.
    burn_in : int or None, default None
        Sweeps discarded before samples are kept; must be below ``epochs``.
        None: a tenth of ``epochs``.
    n_kept_samples : int or None, default 100
        At most this many samples are averaged, spread evenly over the sweeps
        after ``burn_in`` (None: all of them). The fitted factors' memory
        grows with it.
    implicit_feedback : {"users", "both", "none"}, default "users"
        SVD++'s implicit feedback (Koren 2008). ``"users"``: a user's factors
        are :math:`w_u + |R(u)|^{-1/2}\sum_{j \in R(u)} y_j`, where
        :math:`R(u)` are the items the user rated in training and each item
        has a second factor vector :math:`y_j`, sampled like the others:
        which items a user chose to rate says something about their taste.
        ``"both"`` also gives items the mirror image, :math:`h_i +
        |U(i)|^{-1/2}\sum_{v \in U(i)} z_v` over the users who rated them
        (Rendle et al.'s "flipped" SVD++). ``"none"``: plain BPMF.
    init_scale : float, default 0.1
        Standard deviation of the normal initial factors (biases start at 0).
    n_threads : int or None, default None
        Threads drawing rows in parallel (None: all cores). Rows are drawn
        from the same random numbers whatever the count: same result.
    random_state : int, numpy.random.Generator or None
        Seeds the initialisation and every draw.
    verbose : int, default 0
        1 a progress bar on stderr (tqdm when installed), 2 one line per sweep, burn-in marked.

    Attributes
    ----------
    user_factors_, item_factors_ : ndarray of shape (n_users, S k), (n_items, S k)
        The kept samples' factors side by side, scaled by :math:`1/\sqrt S`.
    user_bias_, item_bias_ : ndarray
        Posterior means of the biases.
    user_factor_means_, item_factor_means_ : ndarray of shape (n_users, k), (n_items, k)
        Posterior means of the factors (with implicit feedback, of the
        effective factors predictions use): what ``user_embeddings`` and
        ``item_embeddings`` return. Predictions average the samples instead.
    global_mean_ : float
        Posterior mean of :math:`\mu`.
    n_samples_ : int
        S, the number of samples averaged.
    history_ : dict of lists
        Per sweep: ``loss`` (training MSE of the current sample),
        ``noise_std`` (:math:`\alpha^{-1/2}` drawn), ``seconds``; with
        ``validation_data``, ``val_loss`` and ``val_rmse`` of the average of
        the samples kept so far (of the current sample during burn-in).

    Notes
    -----
    A sweep costs :math:`O(\mathrm{nnz}\,k^2 + (M + N)k^3)`; on ML-100k
    (80,000 ratings, k=5, implicit feedback on both sides) about 0.05 s. There
    is no ``partial_fit``: a chain is cheap enough to rerun on all the data,
    and new ratings change every conditional they touch. For incremental
    training use :class:`~npmf.MatrixFactorization` (preset ``accurate_sgd``).

    Examples
    --------
    >>> import npmf
    >>> model = npmf.BayesianMatrixFactorization(epochs=20, burn_in=5, random_state=0)
    >>> model = model.fit([1, 1, 2, 3], ["a", "b", "a", "b"], [5, 3, 4, 1])
    >>> model.predict([1, 9], ["a", "a"]).shape
    (2,)
    """

    # The sampled model always has biases (FactorModel's prediction reads this).
    biases = True

    def __init__(
        self,
        n_factors: int = 10,
        epochs: int = 200,
        burn_in: int | None = None,
        n_kept_samples: int | None = 100,
        implicit_feedback: str = "users",
        init_scale: float = 0.1,
        n_threads: int | None = None,
        random_state: RandomState = None,
        verbose: int = 0,
    ) -> None:
        self.n_factors = n_factors
        self.epochs = epochs
        self.burn_in = burn_in
        self.n_kept_samples = n_kept_samples
        self.implicit_feedback = implicit_feedback
        self.init_scale = init_scale
        self.n_threads = n_threads
        self.random_state = random_state
        self.verbose = verbose

    def _config(self) -> GibbsConfig:
        """The checked parameters, as one frozen :class:`~npmf.bayes.GibbsConfig`."""
        return GibbsConfig.from_estimator(self)

    def fit(
        self,
        users: Ids,
        items: Ids,
        ratings: ArrayLike,
        validation_data: Triples | None = None,
        callback: Callback | None = None,
    ) -> BayesianMatrixFactorization:
        """Sample the posterior given (user, item, rating) triples and keep the average model.

        Parameters
        ----------
        users, items : array-like or Series of shape (n,)
            Raw ids of any hashable type.
        ratings : array-like of shape (n,)
            Finite numbers, on any scale.
        validation_data : tuple (users, items, ratings), optional
            Scored after every sweep (``val_loss``, ``val_rmse`` in ``history_``).
        callback : callable, optional
            Called after every sweep as ``callback(epoch, seconds, loss)``.

        Returns
        -------
        self
        """
        config = self._config()
        users, items, ratings = check_triples(users, items, ratings)
        val = None if validation_data is None else check_validation_data(validation_data)
        check_callback(callback)
        check_random_state(self.random_state)
        u, user_ids = factorize_ids("user", users)
        i, item_ids = factorize_ids("item", items)
        u, i = u.astype(np.int32), i.astype(np.int32)
        r = ratings.astype(np.float64)
        if val is not None:
            val = (self._codes(user_ids, val[0]), self._codes(item_ids, val[1]), val[2])

        # Only a finished chain replaces the model, published whole: an interrupted fit leaves the
        # previous one, and a predict in another thread sees the old model or the new one.
        with self._writing() as new, numba_threads(config.n_threads):
            fitted = new._sample(u, i, r, (len(user_ids), len(item_ids)), config, val, callback)
            new.__dict__.update(fitted)
            new.user_ids_, new.item_ids_ = user_ids, item_ids
            new.rating_range_ = (float(r.min()), float(r.max()))
            new._seen = (u, i)
        return self

    def _sample(self, u, i, r, shape, config, val, callback):
        """Run the chain; returns the fitted attributes (the average of the kept samples, and the history)."""
        rng = np.random.default_rng(self.random_state)
        chain = Chain(u, i, r, *shape, config, rng)
        (M, N), k = shape, config.n_factors
        keep = set(np.linspace(config.burn_in, config.epochs - 1, config.n_kept_samples).round().astype(int))
        S = len(keep)
        W_all, H_all = np.empty((M, S * k)), np.empty((N, S * k))
        sums = {"bu": np.zeros(M), "bi": np.zeros(N), "mu": 0.0, "W": np.zeros((M, k)), "H": np.zeros((N, k))}
        priors = []  # per kept sample: alpha and the user prior, for fold_in (npmf.bayes.fold_in)
        history = {"loss": [], "noise_std": [], "seconds": []}
        log = EpochLog(history, config.epochs, self.verbose, callback, label="Sweep", burn_in=config.burn_in)
        if val is not None:
            val_sum = np.zeros(len(val[0]))

        s = 0
        for epoch in range(config.epochs):
            start = time.perf_counter()
            loss = chain.sweep(rng)
            X, Y = chain.effective(0), chain.effective(1)
            if epoch in keep:
                W_all[:, s * k : (s + 1) * k] = X[:, 1:]
                H_all[:, s * k : (s + 1) * k] = Y[:, 1:]
                sums["bu"] += X[:, 0]
                sums["bi"] += Y[:, 0]
                sums["W"] += X[:, 1:]
                sums["H"] += Y[:, 1:]
                sums["mu"] += chain.mu
                priors.append((chain.alpha, *chain.priors[0]))
                s += 1
            seconds = time.perf_counter() - start
            val_loss = None
            if val is not None:
                pred = _predict_sample(X, Y, chain.mu, val[0], val[1])
                if epoch in keep:
                    val_sum += pred
                if s:  # after burn-in: the average of the samples kept so far
                    pred = val_sum / s
                val_loss = float(np.mean((pred - val[2]) ** 2))
            log.end_epoch(epoch, seconds, loss, extra=[("noise_std", 1.0 / np.sqrt(chain.alpha))], val_loss=val_loss)

        # The average of S dot products is one dot product of the samples side by side, over sqrt(S) each.
        return {
            "n_samples_": S,
            "user_factors_": W_all / np.sqrt(S),
            "item_factors_": H_all / np.sqrt(S),
            "user_bias_": sums["bu"] / S,
            "item_bias_": sums["bi"] / S,
            "global_mean_": sums["mu"] / S,
            "user_factor_means_": sums["W"] / S,
            "item_factor_means_": sums["H"] / S,
            "history_": history,
            "_fold_in_prior": tuple(np.array(p) for p in zip(*priors)),
        }

    def user_embeddings(self) -> pd.DataFrame:
        """Posterior-mean user factors (k columns) as a DataFrame indexed by raw user id."""
        self._check_fitted()
        view = self._snapshot()
        return pd.DataFrame(view.user_factor_means_, index=pd.Index(view.user_ids_, name="user_id"))

    def item_embeddings(self) -> pd.DataFrame:
        """Posterior-mean item factors (k columns) as a DataFrame indexed by raw item id."""
        self._check_fitted()
        view = self._snapshot()
        return pd.DataFrame(view.item_factor_means_, index=pd.Index(view.item_ids_, name="item_id"))

    def _state_arrays(self):
        prior = dict(zip(_PRIOR, self._fold_in_prior)) if getattr(self, "_fold_in_prior", None) else {}
        return {
            "n_samples": np.int64(self.n_samples_),
            "user_factor_means": self.user_factor_means_,
            "item_factor_means": self.item_factor_means_,
            **prior,
        }

    def _restore_state(self, arrays):
        self.n_samples_ = int(arrays["n_samples"])
        for side in ("user", "item"):
            name = f"{side}_factor_means"
            if name in arrays:
                setattr(self, f"{name}_", arrays[name])
            else:  # a 0.1.0 file: the mean of the side-by-side samples, each stored over sqrt(S)
                factors = getattr(self, f"{side}_factors_")
                S = self.n_samples_
                setattr(self, f"{name}_", (factors * np.sqrt(S)).reshape(len(factors), S, -1).mean(axis=1))
        # Files written before fold_in lack the priors; fold_in then says so.
        self._fold_in_prior = tuple(arrays[n] for n in _PRIOR) if all(n in arrays for n in _PRIOR) else None

    @classmethod
    def _check_saved_state(cls, arrays, params):
        problem = check_count(arrays, "n_samples", 1)
        width, k = arrays["user_factors"].shape[1], params["n_factors"]
        if problem is None and width != int(arrays["n_samples"]) * k:
            problem = f"the factors' {width} columns are not n_samples times n_factors={k}"
        return problem


# The kept samples' noise precision and user prior, saved for fold_in.
_PRIOR = ("fold_in_alpha", "fold_in_Lam", "fold_in_Lam_mu")


def _predict_sample(X, Y, mu, u, i):
    """One sample's predictions for codes ``u``, ``i``; an unknown id (-1) falls back to the known bias.

    Code -1 indexes the last row, so each side gets a row of zeros appended.
    """
    zero = np.zeros((1, X.shape[1]))
    return gibbs.predict(np.vstack([X, zero]), np.vstack([Y, zero]), mu, u, i)
