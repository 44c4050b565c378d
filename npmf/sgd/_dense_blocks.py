"""Block-scheduled dense ``adam`` (Keras' Adam with the catch-up) over the serial dense kernel's row records.

:class:`npmf.sgd._block_kernels.BlockEpochs` runs dense ``adam`` with these
kernels. A row's record is the serial kernel's (:mod:`npmf.sgd._dense_kernels`),
``[w_0..w_{k-1}, b | m | v | sqrt v]``, so that the catch-up is that kernel's:

* a row's elements, which share their stretch of absent steps and hence the
  series' coefficients, are caught up by one branch-free loop over the record
  (:func:`npmf.sgd._dense_kernels._narrow`), in the records' dtype (float32
  arithmetic for float32), with the ``sqrt v`` each row's last step kept;
* a row whose elements all reach the wide series' bound (rare rows in large
  batches: their ``sqrt v`` is a few ``epsilon``) takes that series on the whole
  row the same way (:func:`catch_up_row`), not element by element in float64;
  only rows with an element below it (or ``v = 0``) go element by element
  (:func:`npmf.sgd._dense_kernels.catch_up_record_row`);
* a batch catches all its rows up before it takes any residual, so the
  independent catch-ups overlap; each row's gradient then goes to its record's
  fourth segment, whose kept ``sqrt v`` has served (the serial kernel's ``_list``).

The step is the serial kernel's (:func:`npmf.sgd._dense_kernels._adam_record`, here through
:func:`_adam_prefetched`, which prefetches the records, as the residuals' pass does);
residual, loss term and gradients are :mod:`npmf.sgd._formulas`'. Rows trained at
once are in disjoint blocks and a row's catch-up depends only on its own state and
the fixed step numbering, so any thread count gives the sequential twin's result
(:func:`npmf.sgd.blocks.epoch_blocks_numpy`, the plain dense loop in block order).
"""

import numba
import numpy as np
from numba import prange

from ._block_data import _shuffle
from ._block_steps import AHEAD, ROWS_AHEAD, lines_of, prefetch_row
from ._catchup_kernels import catch_up_state
from ._dense_kernels import _adam_record, _list, catch_up_record_row, record_state
from ._formulas import (
    bias_gradient,
    factor_gradient,
    horner,
    loss_term,
    penalty,
    project_listed,
    project_row,
    residual,
    trip_count,
)
from .catchup import SERIES_TERMS, SHORT_TERMS, WIDE_TERMS

__all__ = ["DenseBlocks"]

_inline = numba.njit(inline="always", error_model="numpy", nogil=True)
# As the other block kernels: no reference counting, and fastmath so that LLVM vectorises the row loops.
_fast = numba.njit(cache=True, error_model="numpy", nogil=True, _nrt=False, fastmath={"reassoc", "nsz"})


@_inline
def catch_up_row(X, x, width, lanes, trained, last, c, fresh, cu, Gw, row):
    """Bring record ``x`` of ``X``, last stepped after epoch step ``last``, up to step ``c``.

    The choice of :func:`npmf.sgd._dense_kernels.catch_up_record_row` (the short or the narrow series on the whole
    row where every element reaches its bound, else element by element), with the wide series on the whole row too
    where every element reaches its bound; the row-wide series is :func:`_series_row`. ``cu`` is
    :func:`npmf.sgd._dense_kernels.record_state`'s, ``Gw`` (``WIDE_TERMS``) and ``row`` (2 x ``width``) scratch of
    the records' dtype. ``fresh``: not stepped this epoch, so the kept ``sqrt v`` is recomputed first.
    """
    s = c - last
    if s <= 0:
        return
    G, Bn, Qn, B, Q, P1, P2, thr, alphas64, d1, d2, eps64, tiny, Gx, P1x, P2x, epsx, onex, tinyx = cu
    n = X.shape[1] // 4
    root = X[x, 3 * n : 3 * n + width]
    if fresh:
        v = X[x, 2 * n : 2 * n + width]
        for f in range(width):
            root[f] = np.sqrt(v[f])  # correctly rounded: the value the last step kept
    s_ = min(s, Q.shape[0] - 1)
    low = root[0]
    for f in range(1, width):
        low = min(low, root[f])
    low = np.float64(low)
    if thr[s_, 0] > 0.0 and low >= thr[s_, 0]:
        # Each call with its number of terms as a constant, so that LLVM unrolls the Horner loop.
        if low >= thr[s_, 2]:
            _series_row(X, x, n, width, last, s_, SHORT_TERMS, Gx, Bn, Qn, P1x[s], P2x[s], epsx, onex, tinyx, row)
        else:
            _series_row(X, x, n, width, last, s_, SERIES_TERMS, Gx, Bn, Qn, P1x[s], P2x[s], epsx, onex, tinyx, row)
    elif thr[s_, 0] > 0.0 and B.shape[1] >= WIDE_TERMS and low >= thr[s_, 1]:
        _series_row(X, x, n, width, last, s_, WIDE_TERMS, Gw, B, Q, P1x[s], P2x[s], epsx, onex, tinyx, row)
    else:
        catch_up_record_row(X, x, lanes, trained, last, c, cu)


@_inline
def _series_row(X, x, n, width, tau, s_, terms, Gx, Bn, Qn, p1, p2, eps, one, tiny, row):
    """:func:`npmf.sgd._dense_kernels._narrow`'s series on record ``x`` (``row``: scratch of 2 x ``width``), vectorised.

    The same operations on each element, in the same order (Horner's form from
    :func:`npmf.sgd._formulas.horner`). Each loop reads and writes one segment of the record, as a view:
    ``X[x, n + f]`` would be wrapped around for a negative index, which keeps LLVM from vectorising the loop, and
    LLVM does not vectorise a loop that reads one segment and writes another, whose overlap it cannot rule out.
    ``row[0]`` carries each element's move, ``row[1]`` its :math:`1/x`.
    """
    acc, inv = row[0], row[1]
    p, m, v, root = X[x, :width], X[x, n : n + width], X[x, 2 * n : 2 * n + width], X[x, 3 * n : 3 * n + width]
    for t in range(terms):
        Gx[t] = Bn[tau, t] - Qn[s_, t] * Bn[tau + s_, t]  # in float64 (the difference cancels), then X's dtype
    for f in range(width):
        inv[f] = one / root[f]
        acc[f] = m[f] * _series(Gx, terms, -eps * inv[f]) * inv[f]  # the move
    for f in range(width):
        p[f] = p[f] - acc[f]
    zero = one - one
    for f in range(width):
        m1 = m[f] * p1
        m[f] = m1 if abs(m1) >= tiny else zero
    for f in range(width):
        v1 = v[f] * p2
        v[f] = v1 if v1 >= tiny else zero


# z = y ** SERIES_TERMS by squarings (SERIES_TERMS, 8, is a power of two; WIDE_TERMS is 4 of it).
_SQUARINGS = SERIES_TERMS.bit_length() - 1
assert 2**_SQUARINGS == SERIES_TERMS and WIDE_TERMS == 4 * SERIES_TERMS


@_inline
def _series(G, terms, y):
    """:func:`npmf.sgd._formulas.horner` of ``terms`` coefficients ``G``; the wide series' 32 in chunks of 8.

    With the chunks' values :math:`h_c` (each :func:`npmf.sgd._formulas.horner` of ``SERIES_TERMS`` terms), the
    series is :math:`h_0 + z (h_1 + z (h_2 + z h_3))` with :math:`z = y^8`: the same series, rounded a little
    differently. A loop of a constant 8 terms is unrolled, so the element loop around it vectorises; one of 32
    is not, and the row's wide series took 1.9 times as long (float32, k = 32).
    """
    if terms <= SERIES_TERMS:
        return horner(G, terms, y)
    N = SERIES_TERMS
    z = y
    for _ in range(_SQUARINGS):
        z = z * z
    h0, h1, h2, h3 = horner(G, N, y), horner(G[N:], N, y), horner(G[2 * N :], N, y), horner(G[3 * N :], N, y)
    return h0 + z * (h1 + z * (h2 + z * h3))


@_inline
def _catch_up_listed(X, x, stamp, rows, tag, tag0, c, count, width, lanes, trained, k, nn, cu, Gw, row, zero):
    """Catch row ``x`` up to epoch step ``c`` and list it for batch ``tag`` (once per batch); returns the count."""
    if stamp[x] == tag:
        return count
    last = stamp[x] - tag0 + 1 if stamp[x] >= tag0 else 0
    catch_up_row(X, x, width, lanes, trained, last, c, stamp[x] < tag0, cu, Gw, row)
    project_row(X, x, k, nn and c > 0)  # non_negative: once after the catch-up equals per step (derivation, 9)
    return _list(stamp, rows, X, x, tag, count, len(lanes), width, zero)  # clears the gradient segment


@_fast
def _dense_block(u, i, r, start, stop, tag0, batch0, U, V, stamp_u, stamp_i, alphas, mu, bs, width, lanes, trained,
                 fit_bias, c1, c2, eps, reg, tmp, cu, Gw, row, nn, rows_u, rows_i, gw, gh):  # fmt: skip
    """Train one (shuffled) block of dense ``adam`` in minibatches of ``bs``, in place; returns its loss terms' sum.

    ``stamp_*`` hold the global step (``tag0`` + epoch step) of the batch that last listed each row; ``rows_*``
    list the batch's rows, ``gw``, ``gh`` hold a rating's gradients. All scratch is the thread slot's, allocated
    once per fit. ``lanes``, ``trained``: arrays of ``k + 1`` and ``width`` elements (run-time lengths, so one
    compilation serves every k), for the serial kernel's per-element catch-up
    (:func:`npmf.sgd._dense_kernels.catch_up_record_row`).
    """
    s = U.shape[1] // 4
    k = s - 1
    zero = U[0, 0] * 0
    total = 0.0
    lines = lines_of(U, U.shape[1])
    for b in range((stop - start + bs - 1) // bs):
        lo = start + b * bs
        hi = min(lo + bs, stop)
        tmp[0] = 2.0 / (hi - lo)
        c = tmp[0]
        tag = tag0 + batch0 + b
        nu = 0
        ni = 0
        for side in range(2):  # users, then items: one inlined copy of the catch-up (compile time, as the serial's)
            X, ids, stamp, rows = (U, u, stamp_u, rows_u) if side == 0 else (V, i, stamp_i, rows_i)
            count = 0
            for j in range(lo, hi):
                if j + AHEAD < hi:
                    prefetch_row(X, ids[j + AHEAD], 0, lines)
                count = _catch_up_listed(X, ids[j], stamp, rows, tag, tag0, batch0 + b, count, width, lanes, trained,
                                         k, nn, cu, Gw, row, zero)  # fmt: skip
            if side == 0:
                nu = count
            else:
                ni = count
        for j in range(lo, hi):
            if j + AHEAD < hi:  # the records are in L3 since the catch-ups, no longer all in L2
                prefetch_row(U, u[j + AHEAD], 0, lines)
                prefetch_row(V, i[j + AHEAD], 0, lines)
            x = u[j]
            y = i[j]
            e = residual(mu, U[x, k], V[y, k], U, x, V, y, k, r, j)
            total += loss_term(e, reg, penalty(U, x, V, y, k, U[x, k], V[y, k], zero))
            for f in range(k):
                gw[f] = factor_gradient(e, V[y, f], reg, U[x, f])
                gh[f] = factor_gradient(e, U[x, f], reg, V[y, f])
            if fit_bias:
                gw[k] = bias_gradient(e, reg, U[x, k])
                gh[k] = bias_gradient(e, reg, V[y, k])
            # Into the records' gradient segments through views and the scratch rows, so that the loops vectorise.
            grad_u, grad_i = U[x, 3 * s : 3 * s + width], V[y, 3 * s : 3 * s + width]
            for f in range(width):
                grad_u[f] += c * gw[f]
            for f in range(width):
                grad_i[f] += c * gh[f]
        _adam_prefetched(U, rows_u, nu, s, width, alphas[batch0 + b], c1, c2, eps, lines)
        _adam_prefetched(V, rows_i, ni, s, width, alphas[batch0 + b], c1, c2, eps, lines)
        project_listed(U, rows_u, nu, k, nn)
        project_listed(V, rows_i, ni, k, nn)
    return total


@_inline
def _adam_prefetched(X, rows, n_rows, n, width, alpha, c1, c2, eps, lines):
    """The serial kernel's step (:func:`npmf.sgd._dense_kernels._adam_record`) on records ``rows[:n_rows]``, each
    prefetched :data:`npmf.sgd._block_steps.ROWS_AHEAD` rows ahead.

    At scale a batch's records (1,024 rows of 528 bytes a side at k = 32 in float32) no longer fit in L2 when their
    step comes, and without the prefetch the step waited on each row: with it and the residual pass's prefetch the
    epoch takes 0.72x (skewed shape) and 0.76x (ML-25M's) the time, at 5M ratings, k = 32, 2 threads
    (``benchmarks/results/dense-prefetch-ab/``).
    """
    for a in range(n_rows):
        if a + ROWS_AHEAD < n_rows:
            prefetch_row(X, rows[a + ROWS_AHEAD], 0, lines)
        _adam_record(X, rows[a], n, width, alpha, c1, c2, eps)


@_inline
def _own(cu, G, Gx):
    """The catch-up state ``cu`` (:func:`npmf.sgd._dense_kernels.record_state`) with its own scratch ``G``, ``Gx``."""
    return (G,) + cu[1:13] + (Gx,) + cu[14:]


@numba.njit(cache=True, error_model="numpy", nogil=True, parallel=True)
def _dense_epoch(u, i, r, offsets, first, P, plan, bounds, seeds, tag0, U, V, stamp_u, stamp_i, alphas, mu, bs, width,
                 lanes, trained, fit_bias, c1, c2, eps, reg, totals, tmps, rows, grads, Gws, series, threads, cu, Gs,
                 Gxs, nn):  # fmt: skip
    """Sub-epoch by sub-epoch, the blocks of a sub-epoch on the thread slots, as
    :func:`npmf.sgd._block_kernels._epoch_blocks` schedules them; slot ``t`` has scratch ``tmps[t]``, ``rows[t]``,
    ``grads[t]``, ``Gws[t]``, and ``Gs[t]``, ``Gxs[t]`` in its catch-up state (:func:`_own`)."""
    T = bounds.shape[1] - 1
    for s in range(P):
        for t in prange(T):
            cu_t = _own(cu, Gs[t], Gxs[t])
            for c in range(bounds[s, t], bounds[s, t + 1]):
                b = s * P + plan[s, c]
                threads[b] = numba.get_thread_id()
                start, stop = offsets[b], offsets[b + 1]
                _shuffle(u, i, r, start, stop, seeds[b])
                totals[b] = _dense_block(u, i, r, start, stop, tag0, first[b], U, V, stamp_u, stamp_i, alphas, mu, bs,
                                         width, lanes, trained, fit_bias, c1, c2, eps, reg, tmps[t], cu_t, Gws[t],
                                         series[t], nn, rows[t, 0], rows[t, 1], grads[t, 0], grads[t, 1])  # fmt: skip
    total = 0.0
    for b in range(P * P):  # in schedule order, whatever thread computed each term
        total += totals[b]
    return total


@_fast
def _flush_range(X, lo, hi, stamp, tag0, n_steps, width, lanes, trained, cu, Gw, row):
    """:func:`catch_up_row` on records ``lo:hi`` of ``X``, to the epoch's last step ``n_steps``."""
    for x in range(lo, hi):
        last = stamp[x] - tag0 + 1 if stamp[x] >= tag0 else 0
        catch_up_row(X, x, width, lanes, trained, last, n_steps, stamp[x] < tag0, cu, Gw, row)


@numba.njit(cache=True, error_model="numpy", nogil=True, parallel=True)
def _flush(X, stamp, tag0, n_steps, width, lanes, trained, cu, Gs, Gxs, Gws, series):
    """Every record of ``X`` up to the epoch's end, in one contiguous range per thread slot (rows are independent)."""
    T = Gws.shape[0]
    n = X.shape[0]
    for t in prange(T):
        _flush_range(
            X,
            t * n // T,
            (t + 1) * n // T,
            stamp,
            tag0,
            n_steps,
            width,
            lanes,
            trained,
            _own(cu, Gs[t], Gxs[t]),
            Gws[t],
            series[t],
        )


class DenseBlocks:
    """Dense ``adam``'s per-fit state for :class:`npmf.sgd._block_kernels.BlockEpochs`: scratch and epochs.

    ``T`` thread slots, batches of ``bs``, records of ``s = k + 1`` per segment and ``dtype``; ``n_users``,
    ``n_items`` rows.
    """

    def __init__(self, T, bs, s, dtype, n_users, n_items):
        self.dtype = np.dtype(dtype)
        self.tmps = np.zeros((T, 1), dtype)
        self.rows = np.zeros((T, 2, bs), np.int64)
        self.grads = np.zeros((T, 2, s), dtype)  # a rating's gradient rows
        self.Gws = np.zeros((T, WIDE_TERMS), dtype)
        self.series = np.zeros((T, 2, s), dtype)  # _series_row's moves and 1/x
        self.Gxs = np.zeros((T, SERIES_TERMS), dtype)
        self.Gs = None  # float64, one slot per tabulated term and a flag (their number is known with the tables)

    def run(self, trainer, seeds, t0, alphas64, mu, totals):
        """One epoch of ``trainer`` (a :class:`npmf.sgd._block_kernels.BlockEpochs`), the flush included."""
        c, dt = trainer.config, self.dtype.type
        tables = catch_up_state(alphas64, c)
        cu = record_state(*tables, self.dtype)
        if self.Gs is None or self.Gs.shape[1] != len(tables[5]):
            self.Gs = np.zeros((len(self.Gws), len(tables[5])))
        s = trainer.records[0].shape[1] // 4
        width = s if c.biases else s - 1
        # The serial kernel's row widths for its per-element path, never fixed at compile time: the kernels are then
        # compiled once for every k (with tuples they would be compiled per k, ~40 s each).
        lanes, trained = trip_count(s, 0), trip_count(width, 0)
        total = _dense_epoch(
            trainer.u, trainer.i, trainer.r, trainer.offsets, trainer.first, trainer.P, trainer.plan, trainer.bounds,
            seeds, int(t0), *trainer.records, trainer.stamp_u, trainer.stamp_i, alphas64.astype(self.dtype), dt(mu),
            int(c.batch_size), width, lanes, trained, bool(c.biases), dt(1.0 - c.beta_1), dt(1.0 - c.beta_2),
            dt(c.epsilon), dt(c.reg), totals, self.tmps, self.rows, self.grads, self.Gws,
            self.series, trainer.threads, cu, self.Gs, self.Gxs, bool(c.non_negative),
        )  # fmt: skip
        for X, stamp in zip(trainer.records, (trainer.stamp_u, trainer.stamp_i), strict=True):
            _flush(
                X,
                stamp,
                int(t0),
                trainer.n_batches,
                width,
                lanes,
                trained,
                cu,
                self.Gs,
                self.Gxs,
                self.Gws,
                self.series,
            )
        return total
