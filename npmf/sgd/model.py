r"""The estimator: :class:`MatrixFactorization`."""

from __future__ import annotations

import copy
import dataclasses
import time
import warnings

import numpy as np

from ..core import encoding as _encoding
from ..core.factor_model import FactorModel
from ..core.training import EpochLog
from ..core.typing import ArrayLike, Callback, Ids, RandomState, Triples
from ..core.validation import check_callback, check_int, check_random_state, check_triples, check_validation_data
from . import _block_kernels, _kernels, catchup
from .config import SGDConfig
from .fold_in import SGDFoldIn
from .state import check_saved_state, encode_growing, likely_cause, own_copies, predictions_finite, transaction

__all__ = ["MatrixFactorization"]


class MatrixFactorization(SGDFoldIn, FactorModel):
    r"""Matrix factorisation of explicit ratings, trained by minibatch Adam or SGD.

    The model predicts

    .. math:: \hat r_{ui} = \mu + b_u + b_i + w_u \cdot h_i

    with :math:`\mu = b_u = b_i = 0` unless ``biases=True``, and minimises the
    minibatch loss

    .. math::

        L = \frac{1}{B}\sum_{b} \big[(\hat r_{u_b i_b} - r_b)^2
            + \lambda(\lVert w_{u_b}\rVert^2 + \lVert h_{i_b}\rVert^2 + b_{u_b}^2 + b_{i_b}^2)\big]

    over shuffled minibatches, with hand-derived gradients (:mod:`npmf.sgd.gradients`)
    and Numba-compiled updates (:mod:`npmf.sgd._kernels`). With the defaults this is
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
        loss curve. ``"sgd"`` is plain minibatch SGD. See :mod:`npmf.sgd.optimizers`.
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
    non_negative : bool, default False
        Non-negative MF: after every step W and H are projected onto :math:`\ge 0` (Keras' ``NonNeg``
        constraint); biases stay free. They start in U(-init_scale, init_scale) as in Keras, so the first step
        reads negative entries. :meth:`partial_fit` first projects them, :meth:`fold_in` projects its rows.
    early_stopping_patience : int or None, default None
        With ``validation_data`` passed to :meth:`fit`, stop after this many
        epochs without a better validation loss and restore the best weights.
    n_threads : int or None, default None
        Threads for ``lazy_adam`` and ``sgd`` (None: all cores). From 200,000 ratings up these train in
        LibMF-style blocks on all threads (:mod:`npmf.sgd.blocks`): minibatches never straddle two blocks, and the
        result is the same bits for every ``n_threads``. Below that, and for dense ``adam`` (which warns when an
        epoch would be enormous), one thread runs the serial epoch. A fixed ``random_state`` gives the same bits.
    dtype : {"float64", "float32"}, default "float64"
        Floating type of the factors and the optimiser state. ``float32``
        halves their memory and is about 1.3x faster on large problems.
    random_state : int, numpy.random.Generator or None
        Seeds the initialisation and every epoch's shuffle. The same integer
        gives bit-identical factors and history.
    verbose : int, default 0
        As in Keras: 1 a progress bar on stderr (tqdm when installed), 2 one line per epoch.

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
        n_factors: int = 3,
        epochs: int = 100,
        batch_size: int = 32,
        optimizer: str = "adam",
        learning_rate: float = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        init_scale: float = 0.05,
        biases: bool = False,
        reg: float = 0.0,
        non_negative: bool = False,
        early_stopping_patience: int | None = None,
        n_threads: int | None = None,
        dtype: str = "float64",
        random_state: RandomState = None,
        verbose: int = 0,
    ) -> None:
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
        self.non_negative = non_negative
        self.early_stopping_patience = early_stopping_patience
        self.n_threads = n_threads
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        users: Ids,
        items: Ids,
        ratings: ArrayLike,
        validation_data: Triples | None = None,
        callback: Callback | None = None,
    ) -> MatrixFactorization:
        """Learn the factors from (user, item, rating) triples.

        Parameters
        ----------
        users, items : array-like or Series of shape (n,)
            Raw ids of any hashable type; encoded with category codes.
        ratings : array-like of shape (n,)
            Finite numbers, on any scale.
        validation_data : tuple (users, items, ratings), optional
            Evaluated after every epoch: ``history_`` gains ``val_loss`` (mean
            squared error) and ``val_rmse``. Needed by ``early_stopping_patience``.
        callback : callable, optional
            Called after every epoch as ``callback(epoch, seconds, loss)``.

        Returns
        -------
        self
        """
        config = self._config()
        users, items, ratings = check_triples(users, items, ratings)
        val = self._check_validation(validation_data, config)
        check_callback(callback)
        rng = check_random_state(self.random_state)
        k, dtype = config.n_factors, config.dtype
        # Built in a shadow and published whole at the end: a failed or interrupted fit leaves the
        # previous model, and a predict in another thread sees the old model or the new one.
        with transaction(self) as new:
            new._rng = rng
            new.user_ids_, new.item_ids_ = np.empty(0, users.dtype), np.empty(0, items.dtype)
            new.user_factors_, new.item_factors_ = np.empty((0, k), dtype), np.empty((0, k), dtype)
            new.user_bias_, new.item_bias_ = np.empty(0, dtype), np.empty(0, dtype)
            new._m = [np.zeros_like(p) for p in new._params()]
            new._v = [np.zeros_like(p) for p in new._params()]
            new.global_mean_ = float(ratings.mean())
            new.rating_range_ = (float(ratings.min()), float(ratings.max()))
            new.n_steps_ = 0
            new.history_ = {"loss": [], "seconds": []}
            new._seen = None
            new.__dict__.pop("best_epoch_", None)
            u, i = encode_growing(new, users, items, config)
            new._train(u, i, ratings, config, val, callback)
        return self

    def partial_fit(
        self,
        users: Ids,
        items: Ids,
        ratings: ArrayLike,
        epochs: int = 1,
        validation_data: Triples | None = None,
        callback: Callback | None = None,
    ) -> MatrixFactorization:
        """Continue training on (more) ratings from the current state.

        Users and items not seen before get new rows, initialised as in
        :meth:`fit` from the model's generator; Adam's moments and step count
        carry over; ``global_mean_`` stays as first fitted, so existing
        predictions do not shift. On an unfitted model this is :meth:`fit` with
        ``epochs`` epochs. ``n_factors`` and ``dtype`` cannot change.

        If it raises (or is interrupted) the model is as it was, bit for bit.
        Memory: the old state is kept until the call ends. The serial path
        trains copies of the parameters and Adam's moments (the state twice);
        the block path copies the parameters (its records already hold a copy
        of the moments), so it holds the old state, the records and the new
        parameters. Rows of new ids are new arrays either way, not copies.

        Parameters
        ----------
        users, items, ratings : array-like of shape (n,)
        epochs : int, default 1
        validation_data, callback
            As in :meth:`fit`.

        Returns
        -------
        self
        """
        epochs = check_int("epochs", epochs)
        if not hasattr(self, "user_factors_"):
            saved, self.epochs = self.epochs, epochs
            try:
                return self.fit(users, items, ratings, validation_data, callback)
            finally:
                self.epochs = saved
        config = self._config(epochs=epochs)
        for name, value, fitted in (
            ("n_factors", config.n_factors, self.user_factors_.shape[1]),
            ("dtype", config.dtype, self.user_factors_.dtype),
        ):
            if value != fitted:
                raise ValueError(
                    f"{name}={str(value)!r} differs from the fitted factors' {str(fitted)!r}; partial_fit cannot "
                    f"change it (set_params({name}={str(fitted)!r}) to continue, or fit anew)"
                )
        users, items, ratings = check_triples(users, items, ratings)
        # Without validation data partial_fit simply does not stop early.
        val = self._check_validation(validation_data, config) if validation_data is not None else None
        check_callback(callback)
        rng = None if hasattr(self, "_rng") else check_random_state(self.random_state)
        # Build the new state aside: copies of whatever training writes into, so a failed or interrupted call
        # leaves the old arrays. The block path trains copies of the moments in its records: it copies the parameters.
        with transaction(self) as new:
            new._rng = copy.deepcopy(new._rng if rng is None else rng)  # the last writer's state
            new.history_ = {name: list(values) for name, values in new.history_.items()}
            new._m, new._v = list(new._m), list(new._v)
            before = {id(a) for a in new._params() + new._m + new._v}
            lo, hi = new.rating_range_
            new.rating_range_ = (min(lo, float(ratings.min())), max(hi, float(ratings.max())))
            u, i = encode_growing(new, users, items, config)
            serial = not _block_kernels.use_blocks(config, len(ratings))
            own_copies(new, before, moments=serial and config.optimizer != "sgd")
            for p in new._params()[:2] if config.non_negative else ():  # own copies: the old model is untouched
                np.maximum(p, 0, out=p)  # so a model trained without it holds, as the catch-up needs (derivation 9)
            new._train(u, i, ratings, config, val, callback)
        return self

    def _config(self, **overrides) -> SGDConfig:
        """The checked parameters, as one frozen :class:`~npmf.sgd.SGDConfig` (``overrides`` replace some)."""
        return SGDConfig.from_estimator(self, **overrides)

    def _check_validation(self, validation_data, config):
        if validation_data is None:
            if config.early_stopping_patience is not None:
                raise ValueError(
                    "early_stopping_patience is set but fit() got no validation_data; "
                    "pass validation_data=(users, items, ratings) or set early_stopping_patience=None"
                )
            return None
        return check_validation_data(validation_data)

    def _params(self):
        return [self.user_factors_, self.item_factors_, self.user_bias_, self.item_bias_]

    def _train(self, u, i, r, config, val, callback):
        """Train ``config.epochs`` epochs on the ratings with codes ``u``, ``i`` (:class:`npmf.core.encoding.Codes`).

        lazy_adam and sgd on many ratings train block-scheduled on all cores
        (:mod:`npmf.sgd.blocks`). The blocks borrow the model's Adam moments
        into their records (the only copy while they train, so the model lets
        go of its own) and give them back when training ends, however it ends.
        Their copy of the ratings, block by block, holds the only per-rating
        codes, which the model keeps as its training pairs.
        """
        # A batch larger than the data is the whole data: no buffer bigger than the ratings.
        config = dataclasses.replace(config, batch_size=min(config.batch_size, len(r)))
        params = self._params()
        catchup.warn_if_dense_adam_is_slow(config, len(params[0]) + len(params[1]), -(-len(r) // config.batch_size))
        if not _block_kernels.use_blocks(config, len(r)):
            u, i = _encoding.codes_array(u), _encoding.codes_array(i)
            self._m = [np.ascontiguousarray(a) for a in self._m]  # the blocks give them back strided
            self._v = [np.ascontiguousarray(a) for a in self._v]
            self._remember_seen(u, i)
            self._epochs(_kernels.SerialEpochs(u, i, r, params, self._m, self._v, config), config, val, callback)
            return
        blocks = _block_kernels.BlockEpochs(u, i, params, self._m, self._v, config)
        self._m = self._v = None  # lent to the blocks' records until give_back
        try:
            u, i = blocks.copy_ratings(u, i, r)
            self._remember_seen(u, i)
            self._epochs(blocks, config, val, callback)
        finally:
            self._m, self._v = blocks.give_back()

    def _epochs(self, trainer, config, val, callback):
        """Run the epochs of ``trainer`` (serial or blocks), keeping the last finite weights and the history."""
        mu = self.global_mean_ if config.biases else 0.0
        params = self._params()
        log = EpochLog(self.history_, config.epochs, self.verbose, callback, config.early_stopping_patience)
        if val is not None:
            val_u, val_i = self._codes(self.user_ids_, val[0]), self._codes(self.item_ids_, val[1])
        best_params = None
        losses = self.history_["loss"]
        lowest, warned = (min(losses) if losses else None), False
        for epoch in range(config.epochs):
            start = time.perf_counter()
            total, steps = trainer.run(self._rng, mu, self.n_steps_)
            loss = total / len(trainer.r)
            if np.isfinite(loss):
                trainer.write_params(params)
            # A loss is of the weights before each step: the weights after the last one are checked too.
            if not np.isfinite(loss) or not predictions_finite(params):
                what = f"the loss became {loss}" if not np.isfinite(loss) else "the predictions overflowed"
                raise FloatingPointError(
                    f"training diverged: {what} in epoch {epoch + 1}; likely cause: "
                    f"{likely_cause(config, trainer.r, mu)}. The model is left as it was before this call."
                )
            if not warned and lowest is not None and loss > 1e3 * lowest:
                warned = True
                warnings.warn(
                    f"the loss grew from {lowest:.3g} to {loss:.3g} by epoch {epoch + 1}: training is diverging; "
                    f"likely cause: {likely_cause(config, trainer.r, mu)}",
                    RuntimeWarning,
                    stacklevel=4,
                )
            lowest = loss if lowest is None else min(lowest, loss)
            self.n_steps_ += steps
            seconds = time.perf_counter() - start
            val_loss = None
            if val is not None:
                err = self._predict_codes(val_u, val_i) - val[2]
                val_loss = float(np.mean(err * err))
            if log.end_epoch(epoch, seconds, loss, val_loss=val_loss) and config.early_stopping_patience is not None:
                best_params = [p.copy() for p in params]
                self.best_epoch_ = len(self.history_["loss"]) - 1
            if log.stop:
                break
        if best_params is not None:
            for p, kept in zip(params, best_params):
                p[...] = kept

    def _remember_seen(self, u, i):
        pairs = (u, i)  # the training codes themselves (int32; at scale the block copy's), not a copy
        if getattr(self, "_seen", None) is not None:
            pairs = tuple(np.concatenate([old, new]) for old, new in zip(self._seen, pairs))
        self._seen = pairs

    # ---------------------------------------------------------- persistence
    # Adam's state and step count are saved too, so partial_fit continues after load.
    def _state_arrays(self):
        arrays = {"n_steps": np.int64(self.n_steps_)}
        for q, name in enumerate(_BLOCKS):
            arrays[f"m_{name}"], arrays[f"v_{name}"] = self._m[q], self._v[q]
        return arrays

    @classmethod
    def _check_saved_state(cls, arrays, params):
        return check_saved_state(arrays, params, _BLOCKS)

    def _restore_state(self, arrays):
        self.n_steps_ = int(arrays["n_steps"])
        self._m = [arrays[f"m_{name}"] for name in _BLOCKS]
        self._v = [arrays[f"v_{name}"] for name in _BLOCKS]


# The model's four parameter blocks, in the order the kernels take them.
_BLOCKS = ("W", "H", "bu", "bi")
