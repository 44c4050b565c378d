r"""The estimator: :class:`MatrixFactorization`."""

import json
import time

import numpy as np
import pandas as pd

from . import _kernels, optimizers
from ._estimator import BaseEstimator
from ._validation import check_choice, check_dtype, check_float, check_int, check_triples
from .persistence import load_model, save_model
from .presets import get_preset

__all__ = ["MatrixFactorization"]

# The four parameter blocks, in the order the kernels take them.
_BLOCKS = ("W", "H", "bu", "bi")


def _default_threads():
    import numba

    return numba.config.NUMBA_NUM_THREADS


class MatrixFactorization(BaseEstimator):
    r"""Matrix factorisation of explicit ratings, trained by minibatch Adam or SGD.

    The model predicts

    .. math:: \hat r_{ui} = \mu + b_u + b_i + w_u \cdot h_i

    with :math:`\mu = b_u = b_i = 0` unless ``biases=True``, and minimises the
    minibatch loss

    .. math::

        L = \frac{1}{B}\sum_{b} \big[(\hat r_{u_b i_b} - r_b)^2
            + \lambda(\lVert w_{u_b}\rVert^2 + \lVert h_{i_b}\rVert^2 + b_{u_b}^2 + b_{i_b}^2)\big]

    over shuffled minibatches, with hand-derived gradients (:mod:`npmf.gradients`)
    and Numba-compiled updates (:mod:`npmf._kernels`). With the defaults this is
    the Keras MovieLens recipe: k=3, U(-0.05, 0.05) initialisation, Adam(0.001,
    0.9, 0.999, 1e-7), batches of 32, 100 epochs, mean squared error.

    Parameters
    ----------
    n_factors : int, default 3
        Embedding size k.
    epochs : int, default 100
    batch_size : int, default 32
    optimizer : {"adam", "lazy_adam", "sgd"}, default "adam"
        ``"adam"`` is Keras' dense Adam exactly: every parameter's moments decay
        and every parameter moves at every step, also rows absent from the
        batch. ``"lazy_adam"`` updates only the rows in the batch, using the
        global step count in the bias correction; much faster, a different
        loss curve. ``"sgd"`` is plain minibatch SGD. See :mod:`npmf.optimizers`.
    learning_rate : float, default 0.001
    beta_1, beta_2 : float in [0, 1), defaults 0.9 and 0.999
    epsilon : float, default 1e-7
        Added to :math:`\sqrt{v}` outside the bias correction, as Keras does.
    init_scale : float, default 0.05
        Factors start uniform in ``[-init_scale, init_scale)``.
    biases : bool, default False
        Learn user and item biases around the training mean :math:`\mu`.
    reg : float, default 0.0
        L2 strength :math:`\lambda`, applied per occurrence in the batch.
    early_stopping_patience : int or None, default None
        With ``validation_data`` passed to :meth:`fit`, stop after this many
        epochs without a better validation loss and restore the best weights.
    n_threads : int or None, default None
        Threads for ``lazy_adam`` and ``sgd`` (None: all cores). Dense ``adam``
        runs on one thread. ``n_threads=1`` is bit-reproducible.
    dtype : {"float64", "float32"}, default "float64"
        Floating type of the factors and the optimiser state.
    random_state : int, numpy.random.Generator or None
        Seeds the initialisation and every epoch's shuffle. The same integer
        gives bit-identical factors and history.
    verbose : int, default 0
        1 prints one line per epoch, in Keras' style.

    Attributes
    ----------
    user_factors_ : ndarray of shape (n_users, n_factors)
        W, row ``u`` for the user with code ``u`` (see ``user_ids_``).
    item_factors_ : ndarray of shape (n_items, n_factors)
        H.
    user_bias_, item_bias_ : ndarray of shape (n_users,), (n_items,)
        Zero unless ``biases=True``.
    global_mean_ : float
        Mean training rating; :math:`\mu` when ``biases=True``, and the
        fallback prediction for unknown ids.
    user_ids_, item_ids_ : ndarray
        Raw ids in code order (sorted, as ``astype("category").cat.codes``).
    history_ : dict of lists
        ``loss`` (per epoch, the mean over the epoch's ratings of the loss of
        their minibatch before its step, which is what Keras reports) and
        ``seconds`` (wall time of each epoch).
    n_steps_ : int
        Optimiser steps taken, Adam's t.

    Examples
    --------
    >>> import npmf
    >>> model = npmf.MatrixFactorization(epochs=2, random_state=0)
    >>> model = model.fit([1, 1, 2, 3], ["a", "b", "a", "b"], [5, 3, 4, 1])
    >>> model.predict([1, 9], ["a", "a"]).shape
    (2,)
    """

    def __init__(
        self,
        n_factors=3,
        epochs=100,
        batch_size=32,
        optimizer="adam",
        learning_rate=0.001,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-7,
        init_scale=0.05,
        biases=False,
        reg=0.0,
        early_stopping_patience=None,
        n_threads=None,
        dtype="float64",
        random_state=None,
        verbose=0,
    ):
        self.n_factors = n_factors
        self.epochs = epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.init_scale = init_scale
        self.biases = biases
        self.reg = reg
        self.early_stopping_patience = early_stopping_patience
        self.n_threads = n_threads
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose

    @classmethod
    def from_preset(cls, name, **overrides):
        """A model with preset ``name``'s parameters (see :mod:`npmf.presets`), updated by ``overrides``."""
        return cls(**{**get_preset(name), **overrides})

    # ------------------------------------------------------------------ fit
    def fit(self, users, items, ratings, callback=None):
        """Learn the factors from (user, item, rating) triples.

        Parameters
        ----------
        users, items : array-like or Series of shape (n,)
            Raw ids of any hashable type; encoded with category codes.
        ratings : array-like of shape (n,)
            Finite numbers.
        callback : callable, optional
            Called after every epoch as ``callback(epoch, seconds, loss)``.

        Returns
        -------
        self
        """
        config = self._check_params()
        users, items, ratings = check_triples(users, items, ratings)
        ucat, icat = pd.Categorical(users), pd.Categorical(items)
        self.user_ids_ = np.asarray(ucat.categories)
        self.item_ids_ = np.asarray(icat.categories)
        self._rng = np.random.default_rng(self.random_state)
        M, N, k = len(self.user_ids_), len(self.item_ids_), config["n_factors"]
        s = config["init_scale"]
        dt = config["dtype"]
        self.user_factors_ = self._rng.uniform(-s, s, (M, k)).astype(dt)
        self.item_factors_ = self._rng.uniform(-s, s, (N, k)).astype(dt)
        self.user_bias_, self.item_bias_ = np.zeros(M, dt), np.zeros(N, dt)
        self.global_mean_ = float(ratings.mean())
        params = self._params()
        self._m = [np.zeros_like(p) for p in params]
        self._v = [np.zeros_like(p) for p in params]
        self.n_steps_ = 0
        self.history_ = {"loss": [], "seconds": []}
        u = ucat.codes.astype(np.int64)
        i = icat.codes.astype(np.int64)
        self._train(u, i, ratings, config, callback)
        return self

    def _check_params(self):
        c = {
            "n_factors": check_int("n_factors", self.n_factors),
            "epochs": check_int("epochs", self.epochs),
            "batch_size": check_int("batch_size", self.batch_size),
            "optimizer": check_choice("optimizer", self.optimizer, optimizers.OPTIMIZERS),
            "learning_rate": check_float("learning_rate", self.learning_rate, low=0),
            "beta_1": check_float("beta_1", self.beta_1, 0, 1, low_open=False),
            "beta_2": check_float("beta_2", self.beta_2, 0, 1, low_open=False),
            "epsilon": check_float("epsilon", self.epsilon, low=0),
            "init_scale": check_float("init_scale", self.init_scale, low=0, low_open=False),
            "reg": check_float("reg", self.reg, low=0, low_open=False),
            "fit_bias": bool(check_choice("biases", self.biases, (True, False))),
            "patience": None
            if self.early_stopping_patience is None
            else check_int("early_stopping_patience", self.early_stopping_patience),
            "n_threads": _default_threads() if self.n_threads is None else check_int("n_threads", self.n_threads),
            "dtype": check_dtype("dtype", self.dtype, ("float64", "float32")),
        }
        return c

    def _params(self):
        return [self.user_factors_, self.item_factors_, self.user_bias_, self.item_bias_]

    def _train(self, u, i, r, config, callback):
        n, bs = len(r), config["batch_size"]
        n_batches = -(-n // bs)
        mu = self.global_mean_ if config["fit_bias"] else 0.0
        params = self._params()
        grads = [np.zeros_like(p) for p in params]
        for epoch in range(config["epochs"]):
            start = time.perf_counter()
            snapshot = [p.copy() for p in params]
            perm = self._rng.permutation(n)
            alphas = optimizers.adam_step_sizes(
                self.n_steps_, n_batches, config["learning_rate"], config["beta_1"], config["beta_2"]
            )
            total = _kernels.epoch_numba(u, i, r, perm, bs, mu, params, self._m, self._v, alphas, config, grads)
            loss = total / n
            if not np.isfinite(loss):
                for p, old in zip(params, snapshot):
                    p[...] = old
                raise FloatingPointError(
                    f"training diverged: the loss became {loss} in epoch {epoch + 1}; "
                    f"learning_rate={config['learning_rate']} is too large for this data, try a smaller one. "
                    f"The model keeps the weights of the last finite epoch ({epoch})."
                )
            self.n_steps_ += n_batches
            seconds = time.perf_counter() - start
            self.history_["loss"].append(loss)
            self.history_["seconds"].append(seconds)
            if self.verbose:
                print(f"Epoch {epoch + 1}/{config['epochs']} - {seconds:.3f}s - loss: {loss:.4f}", flush=True)
            if callback is not None:
                callback(epoch, seconds, loss)

    # -------------------------------------------------------------- predict
    def predict(self, users, items):
        """Predicted ratings for (user, item) pairs of raw ids.

        An unknown user or item gets what is known: with ``biases=True``,
        :math:`\\mu` plus the biases of the known ids; without biases, the
        training mean ``global_mean_``.

        Returns
        -------
        ndarray of shape (n,), float64
        """
        self._check_fitted()
        users, items, _ = check_triples(users, items)
        u = self._codes(self.user_ids_, users)
        i = self._codes(self.item_ids_, items)
        known = (u >= 0) & (i >= 0)
        out = np.empty(len(u))
        uk, ik = u[known], i[known]
        mu = self.global_mean_ if self.biases else 0.0
        out[known] = _kernels.predict_numba(
            self.user_factors_, self.item_factors_, self.user_bias_, self.item_bias_, mu, uk, ik
        )
        unknown = ~known
        out[unknown] = self.global_mean_
        if self.biases:
            out[unknown] += np.where(u[unknown] >= 0, self.user_bias_[u[unknown]], 0.0)
            out[unknown] += np.where(i[unknown] >= 0, self.item_bias_[i[unknown]], 0.0)
        return out

    @staticmethod
    def _codes(categories, values):
        return pd.Categorical(values, categories=categories).codes.astype(np.int64)

    def user_embeddings(self):
        """User factors as a DataFrame indexed by raw user id (columns 0..k-1)."""
        self._check_fitted()
        return pd.DataFrame(self.user_factors_, index=pd.Index(self.user_ids_, name="user_id"))

    def item_embeddings(self):
        """Item factors as a DataFrame indexed by raw item id, as the recipe shows them."""
        self._check_fitted()
        return pd.DataFrame(self.item_factors_, index=pd.Index(self.item_ids_, name="item_id"))

    def _check_fitted(self):
        if not hasattr(self, "user_factors_"):
            raise RuntimeError("this MatrixFactorization is not fitted yet; call fit(users, items, ratings) first")

    # ---------------------------------------------------------- persistence
    def save(self, path):
        """Write the fitted model to ``path`` as ``.npz`` (no pickle), atomically."""
        self._check_fitted()
        arrays = {
            "user_factors": self.user_factors_,
            "item_factors": self.item_factors_,
            "user_bias": self.user_bias_,
            "item_bias": self.item_bias_,
            "global_mean": np.float64(self.global_mean_),
            "user_ids": self.user_ids_,
            "item_ids": self.item_ids_,
            "n_steps": np.int64(self.n_steps_),
        }
        # Adam's moments too, so that training can continue after loading.
        for q, name in enumerate(_BLOCKS):
            arrays[f"m_{name}"], arrays[f"v_{name}"] = self._m[q], self._v[q]
        meta = {"params": self.get_params(), "history": self.history_}
        if not isinstance(meta["params"]["random_state"], (int, type(None))):
            meta["params"]["random_state"] = None  # a Generator is not serialisable
        save_model(path, arrays, json.dumps(meta))

    @classmethod
    def load(cls, path):
        """Load a model written by :meth:`save`; it predicts identically."""
        arrays, meta = load_model(path)
        model = cls(**json.loads(meta)["params"])
        model.user_factors_ = arrays["user_factors"]
        model.item_factors_ = arrays["item_factors"]
        model.user_bias_ = arrays["user_bias"]
        model.item_bias_ = arrays["item_bias"]
        model.global_mean_ = float(arrays["global_mean"])
        model.user_ids_ = arrays["user_ids"]
        model.item_ids_ = arrays["item_ids"]
        model.n_steps_ = int(arrays["n_steps"])
        model._m = [arrays[f"m_{name}"] for name in _BLOCKS]
        model._v = [arrays[f"v_{name}"] for name in _BLOCKS]
        model.history_ = json.loads(meta)["history"]
        return model
