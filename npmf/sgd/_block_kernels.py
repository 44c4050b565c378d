"""Numba kernels for block-scheduled ``adam``, ``lazy_adam`` and ``sgd`` on every core.

:mod:`npmf.sgd.blocks` defines the epoch (LibMF/DSGD block scheduling: blocks that share no user and no item
stratum run at the same time, without locks) and holds its plain-NumPy twin,
:func:`npmf.sgd.blocks.epoch_blocks_numpy`; the tests hold :meth:`BlockEpochs.run` equal to it to 1e-12 in
float64, with one thread and with two. No two threads ever write the same memory, so unlike Hogwild (and unlike
umap's parallel layout) the result is the same bits with any number of threads.

Memory layout. The serial kernel gathers ``u[perm], i[perm], r[perm]`` and then, per rating, reads and writes
separate ``W, m, v, g`` arrays: eight rows in four arrays per side, far apart in memory, and with 25M ratings
nearly every one a cache miss. Here

* the ratings are stored once per fit block by block (``u``, ``i`` as int32), and each epoch shuffles every block
  in place just before training it, so the shuffle and the training read memory that is already in cache;
* each row's parameters and Adam moments sit side by side in one record, so a rating touches one contiguous
  record per side (the bias in slot ``k`` of each segment): ``[p | m | v]`` for ``lazy_adam`` and ``[p]`` for
  ``sgd``, their gradients in per-thread slots (:mod:`npmf.sgd._lazy_blocks`), and ``[p | m | v | sqrt v]`` for
  dense ``adam`` (:mod:`npmf.sgd._dense_blocks`);
* a block touches only 1/P of the rows, so its records stay in cache.

Records are built from the model's arrays when training starts; the parameters are copied back after every epoch
whose loss is finite (:meth:`BlockEpochs.write_params`), and Adam's moments live in the records only, until
training ends (:meth:`BlockEpochs.give_back`).

The per-block kernels are compiled with ``fastmath={"reassoc", "nsz"}`` so that LLVM vectorises the dot products
and the squared norms of the loss; they therefore agree with the twin to about 1e-16 relative, not to the bit (the
tests ask 1e-12). Compilation is deterministic, so reruns give the same bits. The formulas (residual, loss term,
gradients, Adam and SGD steps) are the serial kernel's, from :mod:`npmf.sgd._formulas`, inlined into these kernels
and so compiled under their fastmath flags.

Dense ``adam`` has kernels of its own (:mod:`npmf.sgd._dense_blocks`: the serial dense kernel's records and
catch-up, on the same schedule); :class:`BlockEpochs` holds its records and runs its epochs.
"""

import numba
import numpy as np
from numba import prange

from ..core.encoding import Codes, count_codes
from ..core.threads import numba_threads
from . import blocks
from ._block_data import _bucket, _keep_moments, _shuffle
from ._block_steps import AHEAD, _scratch, lines_of, prefetch_row
from ._dense_blocks import DenseBlocks
from ._formulas import (
    bias_gradient,
    factor_gradient,
    loss_term,
    penalty,
    project_row,
    residual,
    sgd_scalar,
)
from ._lazy_blocks import _block_slots
from .config import BLOCK_OPTIMIZERS
from .optimizers import adam_step_sizes, project_rows

__all__ = ["BlockEpochs", "BLOCK_MIN_RATINGS", "use_blocks"]

# Below this many ratings the serial kernels (npmf.sgd._rating_kernels) are
# used, above it the blocks on every core. Measured on 2 cores, k = 10, float32,
# blocks on 2 threads over serial: ML-100k (80,000 ratings) sgd 0.90, lazy_adam
# 2.3; make_ratings 160,000: 1.07 and 3.4; 400,000: 0.75 and 1.25 (s5 helper A).
BLOCK_MIN_RATINGS = 200_000
# Dense adam (Keras' algorithm) stays in Keras' sequential order below this many ratings, so the recipe on
# ML-100k gives Keras' curve step for step; the block order is another (equally valid) order of the same steps.
DENSE_BLOCK_MIN_RATINGS = 500_000

# The per-block kernels run without Numba's reference counting (``_nrt=False``; they allocate nothing, the caller
# passes the scratch, one set per thread slot): with it, every call of an inlined helper that branches (project_row,
# list_row, the catch-up) increments and decrements the shared U, V arrays' reference counts atomically, a cache line
# that both threads write.
_nonrt = numba.njit(cache=True, error_model="numpy", nogil=True, _nrt=False)
_fast = numba.njit(cache=True, error_model="numpy", nogil=True, _nrt=False, fastmath={"reassoc", "nsz"})


def use_blocks(config, n_ratings):
    """Whether the model trains with :class:`BlockEpochs` (on many ratings; dense ``adam`` on very many)."""
    least = DENSE_BLOCK_MIN_RATINGS if config.optimizer == "adam" else BLOCK_MIN_RATINGS
    return config.optimizer in BLOCK_OPTIMIZERS and n_ratings >= least


@_fast
def _block_sgd(u, i, r, start, stop, batch0, U, V, mu, fit_bias, lr, reg, tmp, nn):
    """Train one (shuffled) block with plain SGD, one rating per step, in place; returns its loss terms' sum.

    No gradient accumulator: each rating's step is applied at once. The residual, loss term and gradients
    are :mod:`npmf.sgd._formulas`' (the serial kernel's), on the records (bias in slot ``k``).
    ``nn`` (``non_negative``) projects the factors stepped, and a row as it is read (docs/derivation.md, 9).
    """
    k = U.shape[1] - 1
    zero = U[0, 0] * 0
    total = 0.0
    tmp[0] = 2.0
    c = tmp[0]
    lines = lines_of(U, U.shape[1])
    for j in range(start, stop):
        x = u[j]
        y = i[j]
        if j + AHEAD < stop:
            prefetch_row(U, u[j + AHEAD], 0, lines)
            prefetch_row(V, i[j + AHEAD], 0, lines)
        project_row(U, x, k, nn and batch0 + j > start)
        project_row(V, y, k, nn and batch0 + j > start)
        e = residual(mu, U[x, k], V[y, k], U, x, V, y, k, r, j)
        total += loss_term(e, reg, penalty(U, x, V, y, k, U[x, k], V[y, k], zero))
        for f in range(k):
            wf, hf = U[x, f], V[y, f]
            U[x, f] = sgd_scalar(wf, c * factor_gradient(e, hf, reg, wf), lr)
            V[y, f] = sgd_scalar(hf, c * factor_gradient(e, wf, reg, hf), lr)
        project_row(U, x, k, nn)
        project_row(V, y, k, nn)
        if fit_bias:
            U[x, k] = sgd_scalar(U[x, k], c * bias_gradient(e, reg, U[x, k]), lr)
            V[y, k] = sgd_scalar(V[y, k], c * bias_gradient(e, reg, V[y, k]), lr)
    return total


@numba.njit(cache=True, error_model="numpy", nogil=True, parallel=True)
def _epoch_blocks(u, i, r, offsets, first, P, plan, bounds, seeds, tag0, U, V, stamp_u, stamp_i, alphas, mu, bs, lazy,
                  fit_bias, lr, c1, c2, eps, reg, totals, tmps, rows, grads, slots, slot_u, slot_i, threads,
                  nn):  # fmt: skip
    """Sub-epoch by sub-epoch, the P blocks of a sub-epoch in parallel (they share no row).

    Slot ``t`` of sub-epoch ``s`` trains blocks ``s P + plan[s, c]`` for ``c`` in
    ``bounds[s, t] .. bounds[s, t + 1]`` (:func:`npmf.sgd.blocks.thread_plan`: the blocks dealt to
    the slots by their number of ratings); ``prange`` gives each slot one thread.
    Which thread trains a block changes no result, since the blocks of a
    sub-epoch share no row and ``totals`` is summed in schedule order.
    ``threads[b]`` records which thread took block ``b``. Each block is shuffled
    (:func:`npmf.sgd._block_data._shuffle`) just before it is trained, by
    :func:`_block_sgd` (``bs == 1`` plain SGD) or
    :func:`npmf.sgd._lazy_blocks._block_slots` (``lazy_adam``, minibatch SGD), with slot ``t``'s
    scratch (:func:`_scratch`).
    """
    T = bounds.shape[1] - 1
    for s in range(P):
        for t in prange(T):
            tmp, rows_u, rows_i, gw, gh = tmps[t], rows[t, 0], rows[t, 1], grads[t, 0], grads[t, 1]
            for c in range(bounds[s, t], bounds[s, t + 1]):
                b = s * P + plan[s, c]
                threads[b] = numba.get_thread_id()
                start, stop = offsets[b], offsets[b + 1]
                _shuffle(u, i, r, start, stop, seeds[b])
                if bs == 1 and not lazy:
                    totals[b] = _block_sgd(u, i, r, start, stop, first[b], U, V, mu, fit_bias, lr, reg, tmp, nn)
                else:
                    totals[b] = _block_slots(u, i, r, start, stop, tag0, first[b], U, V, slot_u, slot_i, alphas, mu,
                                             bs, lazy, fit_bias, lr, c1, c2, eps, reg, tmp, nn, rows_u, rows_i, gw, gh,
                                             slots[t, 0], slots[t, 1])  # fmt: skip
    total = 0.0
    for b in range(P * P):  # in schedule order, whatever thread computed each term
        total += totals[b]
    return total


class BlockEpochs:
    """Block-scheduled epochs over a fixed set of ratings, on ``n_threads`` threads.

    The model owns its arrays and lends them: ``BlockEpochs(...)`` copies the
    parameters (and, for ``lazy_adam``, Adam's moments) into its records, the
    model lets go of its moments, :meth:`copy_ratings` sorts the ratings into
    blocks, :meth:`run` trains an epoch on the records, :meth:`write_params`
    copies the parameters back into the model's arrays, and :meth:`give_back`
    returns the moments when training ends.

    Parameters
    ----------
    u, i : int ndarray of shape (n,), or :class:`npmf.core.encoding.Codes`
        User and item codes, in ``[0, n_users)`` and ``[0, n_items)``.
    params : list of ndarrays
        W (n_users, k), H (n_items, k), bu, bi; read, never replaced.
    m, v : lists of ndarrays shaped like ``params``
        Adam's moments. With ``lazy_adam`` they are copied into the records,
        the only copy until :meth:`give_back` (the caller should drop its own);
        otherwise they are kept as they are and given back unchanged.
    config : SGDConfig
    n_strata : int, optional
        P; by default :func:`npmf.sgd.blocks.n_strata`.

    Notes
    -----
    Results are identical for every ``n_threads`` (see :mod:`npmf.sgd.blocks`).
    Memory: the ratings once more as int32, int32 and ``dtype`` (12 or 16
    bytes each; ``u`` and ``i`` are the only per-rating codes there are when
    given as ``Codes``), and the records, ``(n_users + n_items) * segments *
    (k + 1)`` values with 4 segments for dense ``adam``, 3 for ``lazy_adam``
    and 1 for ``sgd``. The records are built before the ratings
    are copied, so the caller's moments are gone by then.
    """

    def __init__(self, u, i, params, m, v, config, n_strata=None):
        self.config = config
        self.dtype = np.dtype(config.dtype)
        bs = config.batch_size
        self.lazy = config.optimizer in ("adam", "lazy_adam")  # Adam's moments live in the records
        self.dense = config.optimizer == "adam"
        self.segments = 4 if self.dense else (3 if self.lazy else 1)  # [p | m | v | sqrt v], [p | m | v], [p]
        self.slotted = not self.dense and (self.lazy or bs > 1)
        # Segments of m and v: the last two, but dense adam's records are [p | m | v | sqrt v].
        self._mv = (1, 2) if self.dense else (self.segments - 2, self.segments - 1)
        self._pack(params, m, v)
        self.n_users, self.n_items = len(params[0]), len(params[1])
        self.n_ratings = len(u.keys if isinstance(u, Codes) else u)
        self.P = P = n_strata or blocks.n_strata(self.n_ratings, bs)
        self.su = blocks.strata(count_codes(_as_codes(u, self.n_users), self.n_users), P)
        self.si = blocks.strata(count_codes(_as_codes(i, self.n_items), self.n_items), P)

    def copy_ratings(self, u, i, r):
        """Copy the ratings into blocks, in schedule order; returns the copy's ``(u, i)`` int32 codes.

        Those are the only per-rating codes there are while the blocks train;
        the model keeps them as its training pairs.
        """
        u, i = _as_codes(u, self.n_users), _as_codes(i, self.n_items)
        self.u = np.empty(len(r), np.int32)
        self.i = np.empty(len(r), np.int32)
        self.r = np.empty(len(r), self.dtype)
        self.offsets = np.empty(self.P * self.P + 1, np.int64)
        _bucket(*u, *i, r, self.su, self.si, self.P, self.u, self.i, self.r, self.offsets)
        self.first = blocks.batch_offsets(self.offsets, self.config.batch_size)
        threads = min(self.config.n_threads, numba.config.NUMBA_NUM_THREADS)  # as numba_threads caps them
        self.plan, self.bounds = blocks.thread_plan(self.offsets, self.P, threads)
        self.n_batches = int(self.first[-1])
        self.stamp_u = np.full(self.n_users, -1, np.int64)
        self.stamp_i = np.full(self.n_items, -1, np.int64)
        self.threads = np.full(self.P * self.P, -1, np.int64)  # who trained each block in the last epoch
        self._scratch = None  # the thread slots' scratch, allocated by the first epoch (_scratch)
        if self.dense:
            s = self.records[0].shape[1] // 4
            T = self.bounds.shape[1] - 1
            self._dense = DenseBlocks(T, self.config.batch_size, s, self.dtype, self.n_users, self.n_items)
        return self.u, self.i

    def _pack(self, params, m, v):
        """Build the records from ``params`` (W, H, bu, bi) and, for ``lazy_adam``, Adam's ``m``, ``v``."""
        k = params[0].shape[1]
        s = k + 1
        self.records = []
        for side in (0, 1):
            X = np.zeros((params[side].shape[0], self.segments * s), self.dtype)
            X[:, :k], X[:, k] = params[side], params[side + 2]
            if self.lazy:
                for state, seg in zip((m, v), self._mv, strict=True):
                    X[:, seg * s : seg * s + k], X[:, seg * s + k] = state[side], state[side + 2]
            self.records.append(X)
        self._moments = None if self.lazy else (m, v)

    def write_params(self, params):
        """Copy the parameters from the records into ``params``, in place."""
        k = params[0].shape[1]
        for side, X in enumerate(self.records):
            params[side][...] = X[:, :k]
            params[side + 2][...] = X[:, k]

    def give_back(self):
        """Adam's moments ``(m, v)``, as lists of arrays shaped like the parameters; drops the records and ratings.

        No copy is made: each record array is compacted in place to its
        ``[m | v]`` segments, row after row, and then shrunk
        (``ndarray.resize``, a ``realloc`` that returns the freed tail to the
        system). Copying the moments out instead would hold them twice, next to
        the whole records, at the very end of ``fit``: the peak of a fit with
        many rows and few ratings per row. Only if something still holds a view
        of the records (``resize`` refuses then) are the moments copied.
        """
        self.r = self.u = self.i = None
        if not self.lazy:
            self.records = None
            return self._moments
        self._dense = None  # dense adam's thread scratch, which may hold views of the records
        s = self.records[0].shape[1] // self.segments
        m, v = [None] * 4, [None] * 4
        for side in (0, 1):
            X, self.records[side] = self.records[side], None
            _keep_moments(X, s, self.segments, self._mv[0])
            try:
                X.resize((len(X), 2 * s), refcheck=True)
            except ValueError:  # a view of the records is still held somewhere: copy instead
                X = X.reshape(-1)[: len(X) * 2 * s].reshape(len(X), 2 * s).copy()
            m[side], m[side + 2] = X[:, : s - 1], X[:, s - 1]
            v[side], v[side + 2] = X[:, s : 2 * s - 1], X[:, 2 * s - 1]
        self.records = None
        return m, v

    def moments(self):
        """Views ``(m, v)`` of the moments in the records while they train (``lazy_adam``), for inspection."""
        if not self.lazy:
            return self._moments
        s = self.records[0].shape[1] // self.segments
        m, v = ([X[:, a * s : (a + 1) * s - 1] for X in self.records] + [X[:, (a + 1) * s - 1] for X in self.records]
                for a in self._mv)  # fmt: skip
        return m, v

    def run(self, rng, mu, t0):
        """One epoch on the records; returns ``(sum of loss terms, number of optimiser steps)``.

        ``rng`` (a numpy Generator) supplies the blocks' shuffle seeds; ``t0`` is
        Adam's step count before the epoch. The parameters stay in the records
        until :meth:`write_params` (so a diverged epoch need not be undone);
        the moments too, until :meth:`give_back`.
        """
        c, dt = self.config, self.dtype.type
        seeds = rng.integers(0, 2**63, size=self.P * self.P, dtype=np.uint64)
        # SGD has no step sizes to precompute (with batch_size=1 they would be n floats per epoch).
        n_alphas = self.n_batches if self.lazy else 1
        alphas64 = adam_step_sizes(t0, n_alphas, c.learning_rate, c.beta_1, c.beta_2)
        alphas = alphas64.astype(self.dtype)
        totals = np.zeros(self.P * self.P)
        if self.dense:  # its own kernels (npmf.sgd._dense_blocks), the end-of-epoch flush on the threads included
            with numba_threads(c.n_threads), np.errstate(over="ignore"):
                total = self._dense.run(self, seeds, t0, alphas64, mu, totals)
            if c.non_negative:  # rows the epoch left unread since a step (docs/derivation.md, 9)
                for X in self.records:
                    project_rows(X[:, : X.shape[1] // self.segments - 1])
            return float(total), self.n_batches
        if self._scratch is None:
            s = self.records[0].shape[1] // self.segments
            self._scratch = _scratch(self.bounds.shape[1] - 1, c.batch_size, s, self.dtype, self.slotted, self.n_users,
                                     self.n_items)  # fmt: skip
        with numba_threads(c.n_threads):
            # Without JIT (NUMBA_DISABLE_JIT=1) SplitMix64's products wrap around in
            # NumPy scalars, on purpose; errstate keeps NumPy from warning about it.
            with np.errstate(over="ignore"):
                total = _epoch_blocks(
                    self.u, self.i, self.r, self.offsets, self.first, self.P, self.plan, self.bounds, seeds, int(t0),
                    *self.records,
                    self.stamp_u, self.stamp_i, alphas, dt(mu), int(c.batch_size), self.lazy, bool(c.biases),
                    dt(c.learning_rate), dt(1.0 - c.beta_1), dt(1.0 - c.beta_2), dt(c.epsilon),
                    dt(c.reg), totals, *self._scratch, self.threads, bool(c.non_negative),
                )  # fmt: skip
        if c.non_negative:  # rows the epoch left unread since a step (docs/derivation.md, 9)
            for X in self.records:
                project_rows(X[:, : X.shape[1] // self.segments - 1])
        return float(total), self.n_batches


def _as_codes(codes, n):
    """``codes`` as :class:`npmf.core.encoding.Codes` (plain int arrays through the identity table)."""
    return codes if isinstance(codes, Codes) else Codes(np.asarray(codes), 0, np.arange(n, dtype=np.int32))
