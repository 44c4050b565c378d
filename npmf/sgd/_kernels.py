"""Numba kernels: one epoch of shuffled-minibatch training, and prediction.

Each kernel computes the same numbers as its plain-NumPy twin
(:func:`npmf.sgd.optimizers.epoch_numpy`, :func:`npmf.sgd.gradients.predict`), in the
same order, and the tests hold them equal. The formulas are derived in
:mod:`npmf.sgd.gradients`, :mod:`npmf.sgd.optimizers` and ``docs/derivation.md``,
and written once, for this kernel and the block kernel alike, in
:mod:`npmf.sgd._formulas` (the prediction in :mod:`npmf.core._kernels`).

Everything random (the permutation) is drawn in Python and passed in; the
kernels read no mutable globals, so they are cached on disk (``cache=True``).
``error_model="numpy"`` lets a division by zero give inf/nan instead of raising,
and keeps the check out of the hot loops (Adam divides by ``sqrt(v) + eps > 0``).
"""

import warnings

import numba
import numpy as np

from . import _rating_kernels
from ._catchup_kernels import NO_CATCH_UP, catch_up, catch_up_state, flush
from ._formulas import (
    adam_scalar,
    bias_gradient,
    factor_gradient,
    list_row,
    loss_term,
    penalty,
    project,
    project_listed,
    project_row,
    residual,
    sgd_scalar,
)
from .catchup import SERIES_TERMS, catch_up_horizon
from .config import OPTIMIZERS
from .optimizers import adam_step_sizes, project_rows

__all__ = ["epoch_numba", "SerialEpochs", "OPTIMIZER_CODES", "warn_if_dense_adam_is_slow"]

OPTIMIZER_CODES = {name: code for code, name in enumerate(OPTIMIZERS)}
_ADAM, _LAZY, _SGD = (OPTIMIZER_CODES[name] for name in ("adam", "lazy_adam", "sgd"))
# Dense Adam as the plain loop over every parameter at every step, for small models (see DENSE_LOOP_ROWS).
_ADAM_LOOP = len(OPTIMIZERS)

# Up to this many model rows (M + N) per rating of a batch, dense Adam in the serial kernel runs the plain loop
# over all parameters (the reference's own arithmetic, so the recipe keeps 0.1.0's bits) instead of the
# catch-up. On the Keras recipe (2,625 rows at batch 32) the two cost about the same per epoch on this
# machine (0.049 s against 0.052 s in one kernel probe, Intel Xeon, 2 cores); at scale only the catch-up is
# affordable. Both are Keras' dense Adam to rounding.
DENSE_LOOP_ROWS = 200

_jit = numba.njit(cache=True, error_model="numpy", nogil=True)


@_jit
def _adam_dense(p, g, m, v, alpha, c1, c2, epsilon):
    """Keras' Adam on every element of the flat arrays ``p, g, m, v``.

    The cost of dense Adam is this loop, run on all (M + N)k parameters at every
    step. It is kept branch-free over contiguous memory so LLVM vectorises it.
    ``c1 = 1 - beta_1`` and ``c2 = 1 - beta_2``; every scalar comes in ``p``'s
    dtype, so float32 factors are updated in float32 arithmetic (twice the
    vector width), not promoted to float64 and rounded back. The step itself is
    :func:`npmf.sgd._formulas.adam_scalar`.
    """
    for j in range(p.shape[0]):
        pj, mj, vj = adam_scalar(p[j], g[j], m[j], v[j], alpha, c1, c2, epsilon)
        m[j] = mj
        v[j] = vj
        p[j] = pj


@_jit
def _adam_rows(p, g, m, v, rows, n_rows, alpha, c1, c2, epsilon):
    """Keras' Adam on rows ``rows[:n_rows]`` of the 2-D arrays ``p, g, m, v``."""
    for a in range(n_rows):
        row = rows[a]
        for f in range(p.shape[1]):
            pj, mj, vj = adam_scalar(p[row, f], g[row, f], m[row, f], v[row, f], alpha, c1, c2, epsilon)
            m[row, f] = mj
            v[row, f] = vj
            p[row, f] = pj


@_jit
def _sgd_rows(p, g, rows, n_rows, learning_rate):
    """Plain SGD (:func:`npmf.sgd._formulas.sgd_scalar`) on rows ``rows[:n_rows]`` of the 2-D arrays ``p, g``."""
    for a in range(n_rows):
        row = rows[a]
        for f in range(p.shape[1]):
            p[row, f] = sgd_scalar(p[row, f], g[row, f], learning_rate)


@_jit
def _zero_rows(g, rows, n_rows):
    for a in range(n_rows):
        g[rows[a], :] = 0.0


@_jit
def _update(opt, p, g, m, v, rows, n_rows, alpha, lr, c1, c2, epsilon, nn):
    """Apply one optimiser step to rows ``rows[:n_rows]`` of ``p`` (2-D) and clear their gradient rows.

    With ``nn`` (``non_negative``, factors only) the rows stepped are projected, all of them in the plain loop.
    """
    if opt == _ADAM_LOOP:  # every parameter, every step; branch-free over contiguous memory
        n = p.size
        _adam_dense(p.reshape(n), g.reshape(n), m.reshape(n), v.reshape(n), alpha, c1, c2, epsilon)
    elif opt == _ADAM or opt == _LAZY:
        # Dense Adam steps the rows of the batch here; the absent ones are caught up (_catch_up).
        _adam_rows(p, g, m, v, rows, n_rows, alpha, c1, c2, epsilon)
    else:
        _sgd_rows(p, g, rows, n_rows, lr)
    if nn and opt == _ADAM_LOOP:  # non_negative (factors only): all of them in the plain loop, flat
        q = p.reshape(p.size)
        for j in range(q.shape[0]):
            q[j] = project(q[j], nn)
    else:  # else the rows stepped
        project_listed(p, rows, n_rows, p.shape[1], nn)
    _zero_rows(g, rows, n_rows)


@_jit
def _epoch(u, i, r, batch_size, mu, W, H, bu, bi, m, v, g, alphas, opt, lr, c1, c2, epsilon, reg, fit_bias, cu, nn):
    """One epoch in place over ratings already in visiting order; see :func:`epoch_numba`.

    ``bu``, ``bi`` and their state/gradients are passed as ``(M, 1)`` and
    ``(N, 1)`` views so that one set of row routines serves all four blocks.
    ``m``, ``v``, ``g`` are tuples (W, H, bu, bi) of arrays shaped like them.
    Dense Adam steps only the rows in each batch: a row absent since its last
    step is caught up (:func:`npmf.sgd._formulas.catch_up_row`) when a batch
    first needs it, before its residual is taken, and every row at the end of
    the epoch, so that the epoch leaves the state the plain dense loop leaves.
    The per-rating formulas are those of :mod:`npmf.sgd._formulas`, shared with
    the block kernel; the loss's squared norms are summed from the Python float
    ``0.0``, so in float64 even for float32 factors.
    """
    n = r.shape[0]
    k = W.shape[1]
    gW, gH, gbu, gbi = g
    rows_u = np.empty(batch_size, np.int64)
    rows_i = np.empty(batch_size, np.int64)
    # stamp[x] == b marks row x as already listed for batch b.
    stamp_u = np.full(W.shape[0], -1, np.int64)
    stamp_i = np.full(H.shape[0], -1, np.int64)
    total = 0.0
    dense = opt == _ADAM
    n_batches = (n + batch_size - 1) // batch_size
    for b in range(n_batches):
        start = b * batch_size
        stop = min(start + batch_size, n)
        c = 2.0 / (stop - start)
        nu = 0
        ni = 0
        # Pass 1: residual once per rating; it feeds the loss and all gradients.
        for j in range(start, stop):
            uu = u[j]
            ii = i[j]
            if dense and stamp_u[uu] != b:
                catch_up(W, m[0], v[0], uu, stamp_u[uu] + 1, b, cu)
                if fit_bias:
                    catch_up(bu, m[2], v[2], uu, stamp_u[uu] + 1, b, cu)
            nu = list_row(stamp_u, uu, b, rows_u, nu)
            if dense and stamp_i[ii] != b:
                catch_up(H, m[1], v[1], ii, stamp_i[ii] + 1, b, cu)
                if fit_bias:
                    catch_up(bi, m[3], v[3], ii, stamp_i[ii] + 1, b, cu)
            ni = list_row(stamp_i, ii, b, rows_i, ni)
            project_row(W, uu, k, nn and b > 0)  # non_negative: absent since its last step (docs/derivation.md, 9)
            project_row(H, ii, k, nn and b > 0)
            e = residual(mu, bu[uu, 0], bi[ii, 0], W, uu, H, ii, k, r, j)
            total += loss_term(e, reg, penalty(W, uu, H, ii, k, bu[uu, 0], bi[ii, 0], 0.0))
            for f in range(k):
                gW[uu, f] += c * factor_gradient(e, H[ii, f], reg, W[uu, f])
                gH[ii, f] += c * factor_gradient(e, W[uu, f], reg, H[ii, f])
            gbu[uu, 0] += c * bias_gradient(e, reg, bu[uu, 0])
            gbi[ii, 0] += c * bias_gradient(e, reg, bi[ii, 0])
        # Pass 2: the step, with every gradient taken at the old parameters.
        alpha = alphas[b]
        _update(opt, W, gW, m[0], v[0], rows_u, nu, alpha, lr, c1, c2, epsilon, nn)
        _update(opt, H, gH, m[1], v[1], rows_i, ni, alpha, lr, c1, c2, epsilon, nn)
        if fit_bias:
            _update(opt, bu, gbu, m[2], v[2], rows_u, nu, alpha, lr, c1, c2, epsilon, False)
            _update(opt, bi, gbi, m[3], v[3], rows_i, ni, alpha, lr, c1, c2, epsilon, False)
        else:
            _zero_rows(gbu, rows_u, nu)
            _zero_rows(gbi, rows_i, ni)
    if dense:
        flush(W, m[0], v[0], stamp_u, n_batches, cu)
        flush(H, m[1], v[1], stamp_i, n_batches, cu)
        if fit_bias:
            flush(bu, m[2], v[2], stamp_u, n_batches, cu)
            flush(bi, m[3], v[3], stamp_i, n_batches, cu)
    return total


def _col(a):
    return a.reshape(-1, 1)


def epoch_numba(u, i, r, perm, batch_size, mu, params, m, v, alphas, config, grads=None, dense_loop=False):
    """Run one epoch in place with the Numba kernel; same contract as
    :func:`npmf.sgd.optimizers.epoch_numpy`.

    ``grads`` may be a list of zero arrays shaped like ``params`` to reuse across
    epochs (they are left zero); it is allocated when omitted. ``dense_loop``
    runs dense ``adam`` as the plain loop over every parameter instead of the
    catch-up (the same algorithm; faster for small models, :data:`DENSE_LOOP_ROWS`).
    """
    W, H, bu, bi = params
    if grads is None:
        grads = [np.zeros_like(p) for p in params]
    cols = [_col(a) for a in (bu, bi)]
    # Step scalars in the factors' dtype (1 - beta computed exactly as the twin does).
    ft = W.dtype.type
    opt = OPTIMIZER_CODES[config.optimizer]
    if opt == _ADAM and dense_loop:
        opt, cu = _ADAM_LOOP, NO_CATCH_UP
    else:
        cu = catch_up_state(alphas, config) if opt == _ADAM else NO_CATCH_UP
    # Gather in visiting order first: the kernel then streams through memory
    # instead of jumping through the permutation (twice as fast on ML-100k).
    total = _epoch(
        u[perm],
        i[perm],
        r[perm],
        int(batch_size),
        float(mu),
        W,
        H,
        *cols,
        (m[0], m[1], _col(m[2]), _col(m[3])),
        (v[0], v[1], _col(v[2]), _col(v[3])),
        (grads[0], grads[1], _col(grads[2]), _col(grads[3])),
        alphas.astype(W.dtype, copy=False),
        opt,
        ft(config.learning_rate),
        ft(1.0 - config.beta_1),
        ft(1.0 - config.beta_2),
        ft(config.epsilon),
        float(config.reg),
        bool(config.biases),
        cu,
        bool(config.non_negative),
    )
    _project_all(config, W, H)
    return total


def _project_all(config, W, H):
    """With ``non_negative``, project all of ``W`` and ``H`` at an epoch's end (rows the kernel left unread)."""
    if config.non_negative:
        project_rows(W)
        project_rows(H)


class SerialEpochs:
    """The serial epoch behind the interface of :class:`npmf.sgd._block_kernels.BlockEpochs`.

    ``adam`` runs :func:`epoch_numba` over a permutation drawn in NumPy.
    ``sgd`` and ``lazy_adam`` run the kernels specialised for them
    (:mod:`npmf.sgd._rating_kernels`), which shuffle a copy of the ratings, in
    the order given, in place from one seed per epoch; their twin is
    :func:`npmf.sgd.rating_epochs.epoch_rating_numpy`.

    It trains the model's arrays in place, so it keeps a copy of the
    parameters from before each epoch to undo a diverged one.
    """

    def __init__(self, u, i, r, params, m, v, config):
        self.params, self.m, self.v, self.config = params, m, v, config
        self.specialised = config.optimizer in ("sgd", "lazy_adam")
        if self.specialised:
            # Each epoch shuffles a fresh copy of the ratings in the order given (two memcpy's, cheaper than a
            # gather through a permutation), so epoch e's order depends on its seed alone and two calls of
            # partial_fit give the same bits as one fit with their epochs.
            self.u0, self.i0 = np.array(u, np.int32), np.array(i, np.int32)
            self.r0 = np.array(r, np.dtype(config.dtype))
            self.u, self.i, self.r = self.u0.copy(), self.i0.copy(), self.r0.copy()
        else:
            self.u, self.i, self.r = u, i, r
            self.grads = [np.zeros_like(p) for p in params]
        self.snapshot = [p.copy() for p in params]
        self.n_batches = -(-len(r) // config.batch_size)

    def run(self, rng, mu, t0):
        """One epoch in place; returns ``(sum of loss terms, number of optimiser steps)``."""
        c = self.config
        for p, old in zip(self.params, self.snapshot):
            old[...] = p
        if self.specialised:
            self.u[...], self.i[...], self.r[...] = self.u0, self.i0, self.r0
            total = self._run_specialised(rng.integers(0, 2**63, dtype=np.uint64), mu, t0)
            _project_all(c, self.params[0], self.params[1])
            return total, self.n_batches
        perm = rng.permutation(len(self.r))
        alphas = adam_step_sizes(t0, self.n_batches, c.learning_rate, c.beta_1, c.beta_2)
        n_rows = len(self.params[0]) + len(self.params[1])
        total = epoch_numba(
            self.u,
            self.i,
            self.r,
            perm,
            c.batch_size,
            mu,
            self.params,
            self.m,
            self.v,
            alphas,
            c,
            self.grads,
            dense_loop=n_rows <= DENSE_LOOP_ROWS * c.batch_size,
        )
        return total, self.n_batches

    def _run_specialised(self, seed, mu, t0):
        c = self.config
        W, H, bu, bi = self.params
        ft = W.dtype.type
        with np.errstate(over="ignore"):  # without JIT, SplitMix64's products wrap around in NumPy scalars
            if c.optimizer == "sgd" and c.batch_size == 1:
                return _rating_kernels.sgd_per_rating(
                    self.u, self.i, self.r, seed, ft(mu), W, H, bu, bi, ft(c.learning_rate), ft(c.reg),
                    bool(c.biases), ft(2.0), bool(c.non_negative),
                )  # fmt: skip
            lazy = c.optimizer == "lazy_adam"
            n_alphas = self.n_batches if lazy else 1
            alphas = adam_step_sizes(t0, n_alphas, c.learning_rate, c.beta_1, c.beta_2).astype(W.dtype)
            m, v = self.m, self.v
            return _rating_kernels.batched(
                self.u, self.i, self.r, seed, int(c.batch_size), ft(mu), W, H, bu, bi, m[0], v[0], m[1], v[1],
                m[2], v[2], m[3], v[3], alphas, lazy, ft(c.learning_rate), ft(1.0 - c.beta_1), ft(1.0 - c.beta_2),
                ft(c.epsilon), ft(c.reg), bool(c.biases), bool(c.non_negative),
            )  # fmt: skip

    def undo(self, params):
        for p, old in zip(params, self.snapshot):
            p[...] = old

    def write_params(self, params):
        """Nothing to do: the serial kernel trains ``params`` themselves."""


# Dense Adam's catch-up replays a row's absent steps by a series that costs a few
# flops per element. Where the series cannot be used (beta_1 >= beta_2 ** (SERIES_TERMS / 2),
# so q_n >= 1: then every element replays its absent steps one by one, up to the
# horizon) an epoch costs up to this many per-step updates before it warns
# (about a minute on one core at ~2e8 updates/s).
DENSE_ADAM_WARN_UPDATES = 1e10


def warn_if_dense_adam_is_slow(config, n_rows, n_batches):
    """Warn when dense Adam's catch-up must replay absent steps one by one and that would be enormous.

    With the usual betas the catch-up is a closed form and dense ``adam`` costs
    about what ``lazy_adam`` does, so it does not warn. ``n_rows`` is M + N.
    """
    if config.optimizer != "adam" or config.beta_1 < config.beta_2 ** (SERIES_TERMS / 2):
        return
    per_step = n_rows * (config.n_factors + config.biases)
    horizon = catch_up_horizon(config.beta_1, config.beta_2, n_batches)
    updates = min(per_step, config.batch_size * 2 * (config.n_factors + 1)) * n_batches * horizon
    if updates > DENSE_ADAM_WARN_UPDATES:
        warnings.warn(
            f"optimizer='adam' with beta_1={config.beta_1} >= beta_2 ** {SERIES_TERMS // 2} cannot replay absent rows "
            f"in closed form: up to {updates:.1e} per-step updates per epoch, which will be very slow. "
            "Use optimizer='lazy_adam', which updates only the rows in each batch and runs on all cores "
            "(or a smaller beta_1).",
            UserWarning,
            stacklevel=4,
        )
