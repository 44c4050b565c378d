"""The serial epoch of dense ``adam`` with the catch-up, over one record per row.

Dense Adam steps only the rows of each batch, as lazy Adam does; a row absent
since its last step is caught up (``docs/derivation.md``, section 8) when a
batch first needs it, and every row at the end of the epoch. For that the
kernel copies the model's separate arrays into one record per row,
``[w_0..w_{k-1}, b | m | v | x]`` (``s = k + 1`` each, :func:`pack`), so that

* a row's ``k + 1`` elements, which share their last step and hence the
  series' coefficients :math:`G_n(\\tau, s)`, are caught up by one branch-free
  loop over contiguous memory (:func:`catch_up_record_row`), independent
  chains the core runs side by side;
* ``x = sqrt(v)`` is kept from each row's last step, which computes it anyway
  (:func:`npmf.sgd._formulas.adam_scalar_root`), and :func:`pack` takes it
  for the rest, so the catch-up takes no square root: the same value, so the
  same bits in float64;
* a row whose elements all have :math:`\\epsilon / x \\le 10^{-4}` takes the series'
  first 4 terms, not 8 (:data:`npmf.sgd.catchup.SHORT_TERMS`, the same bound);
* float32 records take that series in float32 arithmetic (float32's rounding
  is far above its truncation), with no float32 subnormal as an operand, and
  their residuals and gradients in float32 too (float64 records: the same
  float64 as the plain loop);
* a batch catches all its rows up before it takes any residual, so the
  catch-ups, independent of each other, overlap instead of waiting on them;
* once caught up, a row's kept ``sqrt v`` has served, so the batch
  accumulates the row's gradient in that segment (cleared when the row is
  listed) and its step writes the new root there: the step reads and writes
  one record, and nothing as large as the model is cleared per step;
* up to :data:`FIXED_WIDTH` the kernel is compiled per record width (tuples
  ``lanes``, ``trained``, :func:`npmf.sgd._formulas.trip_count`), so its loops
  over a row have trip counts fixed at compile time; wider records share one
  kernel with run-time trip counts.

A row's steps, residuals, gradient sums and narrow catch-ups take a vector of
lanes at a time (:mod:`npmf.core._lanes`). Measured on the Keras recipe
(ML-100k, k = 3, batch 32, the parts timed one after another in one process;
``benchmarks/keras_bounds.py``, "inside dense_epoch", on an Intel Xeon), of the
kernel's 3.4 ms in float64 the residuals and gradients take 1.1, the steps 0.9
and the catch-ups (with the flush) 1.4; of its 3.5 ms in float32, 1.1, 0.5
and 1.8.

The arithmetic and its order are those of the plain dense loop's twin
(:func:`npmf.sgd.optimizers.epoch_numpy`), up to the catch-up's rounding; the
tests hold them equal to 1e-12 in float64.
"""

import numba
import numpy as np

from ..core._lanes import flush_below, load, store
from ..core._lanes import width as lane_count
from ._catchup_kernels import catch_up_state
from ._formulas import (
    adam_scalar_root,
    bias_gradient,
    catch_up_elements,
    catch_up_terms,
    factor_gradient,
    horner,
    loss_term,
    project_listed,
    project_row,
    residual_and_penalty,
    trip_count,
)
from .catchup import SERIES_TERMS, SHORT_TERMS

__all__ = ["dense_epoch", "dense_arguments", "dense_epoch_numba", "pack", "record_state"]

# Records up to this wide (k <= 4, the Keras recipe's k = 3 among them) get a kernel compiled for their width, whose
# row loops have compile-time trip counts (unrolled); wider ones share one kernel with run-time trip counts, since
# each width's kernel takes ~4 s to compile.
FIXED_WIDTH = 5

# Without reference counting (see npmf.sgd._kernels): the kernel allocates nothing, the caller passes the scratch.
_jit = numba.njit(cache=True, error_model="numpy", nogil=True, _nrt=False)
_inline = numba.njit(inline="always", error_model="numpy", nogil=True)


@_jit
def pack(X, P, b, M, mb, V, vb, out):
    """``X[x] = [P[x], b[x] | M[x], mb[x] | V[x], vb[x] | sqrt V[x], sqrt vb[x]]`` for every row ``x``; ``out`` reverses
    the first three segments.

    The fourth, :math:`\\sqrt v`, is what each row's last step kept (:func:`_adam_records`): the catch-up divides by
    it, and a row not yet stepped this epoch has it from here (``np.sqrt`` is correctly rounded in either dtype, as
    the step's).
    """
    k = P.shape[1]
    s = k + 1
    for x in range(X.shape[0]):
        for f in range(k):
            if out:
                P[x, f], M[x, f], V[x, f] = X[x, f], X[x, s + f], X[x, 2 * s + f]
            else:
                X[x, f], X[x, s + f], X[x, 2 * s + f] = P[x, f], M[x, f], V[x, f]
                X[x, 3 * s + f] = np.sqrt(V[x, f])
        if out:
            b[x], mb[x], vb[x] = X[x, k], X[x, s + k], X[x, 2 * s + k]
        else:
            X[x, k], X[x, s + k], X[x, 2 * s + k] = b[x], mb[x], vb[x]
            X[x, 3 * s + k] = np.sqrt(vb[x])


@_inline
def catch_up_record_row(X, x, lanes, trained, last, c, cu):
    """Bring record ``x`` of ``X`` (``[p | m | v | sqrt v]``), last stepped after step ``last``, up to step ``c``.

    ``lanes`` and ``trained`` have as many elements as a segment, ``s = k + 1``, and as a step moves (``k + 1``
    with biases, else ``k``): tuples, whose lengths the kernel is compiled for, or arrays (:func:`dense_epoch`).
    Where every trained element takes the narrow series, one branch-free loop replays them all; otherwise each
    element takes its own form (:func:`npmf.sgd._formulas.catch_up_elements`). ``cu`` is :func:`dense_epoch`'s.
    """
    G, Bn, Qn, B, Q, P1, P2, thr, alphas64, d1, d2, eps64, tiny, Gx, P1x, P2x, epsx, onex, tinyx = cu
    s = c - last
    if s <= 0:
        return
    n = len(lanes)
    width = len(trained)
    s_ = min(s, Q.shape[0] - 1)
    lim = thr[s_, 0]
    short = thr[s_, 2]
    narrow = lim > 0.0
    few = True
    for f in range(width):
        xf = np.float64(X[x, 3 * n + f])
        narrow = narrow & (xf >= lim)
        few = few & (xf >= short)
    if narrow and few:
        _narrow(X, x, n, width, last, s_, SHORT_TERMS, G, Gx, Bn, Qn, P1x[s], P2x[s], epsx, onex, tinyx)
    elif narrow:
        _narrow(X, x, n, width, last, s_, SERIES_TERMS, G, Gx, Bn, Qn, P1x[s], P2x[s], epsx, onex, tinyx)
    else:
        catch_up_terms(G, B, Q, last, s_)
        catch_up_elements(X, 0, X, n, X, 2 * n, x, width, last, s, s_, G, B, Q, thr[s_], P1[s], P2[s], alphas64, d1,
                          d2, eps64)  # fmt: skip
        for f in range(width):  # no subnormal moments in float32 records (see _narrow)
            X[x, n + f] = X[x, n + f] * (abs(X[x, n + f]) >= tiny)
            X[x, 2 * n + f] = X[x, 2 * n + f] * (X[x, 2 * n + f] >= tiny)


@_inline
def _narrow(X, x, n, width, tau, s_, terms, G, Gx, Bn, Qn, p1, p2, eps, one, tiny):
    """The narrow series' first ``terms`` terms on every element of record ``x``: one loop, no branch, no root.

    The loop takes a vector of lanes at a time (:mod:`npmf.core._lanes`; :func:`npmf.sgd._formulas.horner` and
    :func:`npmf.core._lanes.flush_below` take lanes as scalars), so a record's divisions are one vector division:
    the same operations on each element as the scalar loop, so the same bits. The loop reads all four segments
    before it writes any: a float32 vector spans 8 elements, two segments of a k = 3 record, and a load whose
    span overlaps a masked store still in flight waits for it (the core does not forward from masked stores).
    Reading ``v`` after writing ``m`` made the float32 kernel 4.0 ms an epoch on the Keras recipe, against 3.5
    reading it first (an Intel Xeon; float64's vectors are one segment each, and its kernel was 3.4 either way).

    ``x = sqrt v`` is the one the row's last step kept; ``p1, p2`` are :math:`\\beta_1^s, \\beta_2^s`. The terms
    ``G`` are formed in float64 (a difference that cancels) and rounded into ``Gx``; the rest is in the records'
    dtype (:func:`record_state`): float32 records take float32 arithmetic, float64 ones the same float64 as before.
    Moments that decay below ``tiny`` (float32's smallest normal for float32 records, else 0) are set to zero:
    a row absent for ~800 steps has float32-subnormal ``m``, on which x86 computes in microcode (slower by
    ~100 times), while its moves are below 1e-30 of the parameter's.
    """
    for t in range(terms):
        Gx[t] = Bn[tau, t] - Qn[s_, t] * Bn[tau + s_, t]  # in float64 (the difference cancels), then X's dtype
    for f in range(0, width, lane_count(X)):
        q = width - f
        inv = one / load(X, x, 3 * n + f, q)
        m0 = load(X, x, n + f, q)
        p0 = load(X, x, f, q)
        v0 = load(X, x, 2 * n + f, q)  # every load before the first store (see above)
        store(X, x, f, p0 - m0 * horner(Gx, terms, -eps * inv) * inv, q)
        store(X, x, n + f, flush_below(m0 * p1, tiny), q)
        store(X, x, 2 * n + f, flush_below(v0 * p2, tiny), q)


@_inline
def _adam_record(X, x, n, width, alpha, c1, c2, eps):
    """Keras' Adam (:func:`npmf.sgd._formulas.adam_scalar_root`) on record ``x`` of ``X``, its gradient in the
    fourth segment (``n`` wide), which then keeps the step's ``sqrt v``.

    The element loop takes a vector of lanes at a time (:mod:`npmf.core._lanes`): LLVM's own vectoriser left it
    scalar (a segment of 4 to 33 elements is shorter than its vector loop's step, and on indexed ``X[x, f]``,
    one array read and written at four offsets, it did not try), and the square roots and divisions are the
    step's cost. The same operations on each element, so the same bits.
    """
    for f in range(0, width, lane_count(X)):
        q = width - f
        p, m, v, root = adam_scalar_root(load(X, x, f, q), load(X, x, 3 * n + f, q), load(X, x, n + f, q),
                                         load(X, x, 2 * n + f, q), alpha, c1, c2, eps)  # fmt: skip
        store(X, x, f, p, q)
        store(X, x, n + f, m, q)
        store(X, x, 2 * n + f, v, q)
        store(X, x, 3 * n + f, root, q)


@_inline
def _adam_records(X, rows, n_rows, n, width, alpha, c1, c2, eps):
    """:func:`_adam_record` on records ``rows[:n_rows]`` of ``X``."""
    for a in range(n_rows):
        _adam_record(X, rows[a], n, width, alpha, c1, c2, eps)


@_inline
def _list(stamp, rows, X, x, b, count, n, width, zero):
    """List row ``x`` for batch ``b`` (its gradient, in the fourth segment, cleared); returns the new count.

    The row's kept ``sqrt v`` there has served its catch-up, which comes first, and its step writes a new one.
    """
    stamp[x] = b
    rows[count] = x
    for f in range(width):
        X[x, 3 * n + f] = zero
    return count + 1


@_jit
def dense_epoch(u, i, r, bs, mu, U, I, rows_u, rows_i, stamp_u, stamp_i, alphas, c1, c2, eps, reg, c_full, c_last,
                lanes, trained, nn, cu):  # fmt: skip
    """One epoch of dense ``adam`` over records ``U`` (users) and ``I`` (items), in place; returns the loss sum.

    Ratings come in visiting order. ``lanes`` and ``trained`` have ``k + 1``
    and ``width`` (``k + 1`` with biases, else ``k``: the bias slot is then read
    but never moved) elements: as tuples (up to :data:`FIXED_WIDTH`) the kernel
    is compiled for their lengths, so its loops over a row have trip counts
    fixed at compile time; as arrays, one kernel serves every width.
    ``stamp_*`` start at -1 and then hold the batch that last listed each row.
    ``c_full``, ``c_last`` are :math:`2/B` of a full batch and of the last one,
    in the records' dtype, as are ``mu`` and ``reg``. ``cu`` is the catch-up's
    state, :func:`record_state`; its ``Bn, Qn``, the narrow series' columns of
    ``B, Q``, are a table a quarter the size, which stays in cache.
    """
    n = r.shape[0]
    s = len(lanes)
    width = len(trained)
    k = s - 1
    zero = alphas[0] * 0
    total = 0.0
    n_batches = (n + bs - 1) // bs
    for b in range(n_batches):
        start = b * bs
        stop = min(start + bs, n)
        c = c_full if stop - start == bs else c_last
        nu = 0
        ni = 0
        for side in range(2):  # users, then items: independent rows; one copy of the catch-up (compile time)
            X, ids, stamp, rows = (U, u, stamp_u, rows_u) if side == 0 else (I, i, stamp_i, rows_i)
            count = 0
            for j in range(start, stop):
                x = ids[j]
                if stamp[x] != b:
                    catch_up_record_row(X, x, lanes, trained, stamp[x] + 1, b, cu)
                    project_row(X, x, k, nn and b > 0)  # non_negative: once after the catch-up equals per step (part 9)
                    count = _list(stamp, rows, X, x, b, count, s, width, zero)
            if side == 0:
                nu = count
            else:
                ni = count
        for j in range(start, stop):
            x = u[j]
            y = i[j]
            e, pen = residual_and_penalty(mu, U[x, k], I[y, k], U, x, I, y, k, r, j, zero)
            total += loss_term(e, reg, pen)
            for f in range(0, k, lane_count(U)):  # the gradient sums (fourth segment), a vector at a time
                q = k - f
                wf, hf = load(U, x, f, q), load(I, y, f, q)
                store(U, x, 3 * s + f, load(U, x, 3 * s + f, q) + c * factor_gradient(e, hf, reg, wf), q)
                store(I, y, 3 * s + f, load(I, y, 3 * s + f, q) + c * factor_gradient(e, wf, reg, hf), q)
            if width > k:
                U[x, 3 * s + k] += c * bias_gradient(e, reg, U[x, k])
                I[y, 3 * s + k] += c * bias_gradient(e, reg, I[y, k])
        for side in range(2):
            X, rows, count = (U, rows_u, nu) if side == 0 else (I, rows_i, ni)
            _adam_records(X, rows, count, s, width, alphas[b], c1, c2, eps)
            project_listed(X, rows, count, k, nn)
    _flush(U, stamp_u, lanes, trained, n_batches, cu)
    _flush(I, stamp_i, lanes, trained, n_batches, cu)
    return total


@_jit
def _flush(X, stamp, lanes, trained, n_steps, cu):
    """Catch every record of ``X`` up to the epoch's last step ``n_steps`` (a call, not inlined: compile time)."""
    for x in range(X.shape[0]):
        catch_up_record_row(X, x, lanes, trained, stamp[x] + 1, n_steps, cu)


def record_state(B, Q, P1, P2, thr, G, alphas64, d1, d2, eps64, dtype):
    """:func:`dense_epoch`'s ``cu``: :func:`npmf.sgd._catchup_kernels.catch_up_state`'s, for records of ``dtype``.

    Adds the narrow series' columns of ``B, Q``; ``tiny``, the smallest moment a
    record keeps (float32's smallest normal, else 0); and what the narrow series
    computes in the records' dtype (float32 arithmetic for float32 records, the
    same float64 for float64 ones): a scratch for its terms, :math:`\\beta_1^s,
    \\beta_2^s` with those below ``tiny`` zero (float32's :math:`0.9^{830}` would
    be a subnormal operand), :math:`\\epsilon`, 1 and ``tiny``.
    """
    ft = np.dtype(dtype).type
    tiny = float(np.finfo(dtype).tiny) if dtype == np.float32 else 0.0
    narrow = np.ascontiguousarray(B[:, :SERIES_TERMS]), np.ascontiguousarray(Q[:, :SERIES_TERMS])
    in_dtype = [np.where(P >= tiny, P, 0.0).astype(dtype) for P in (P1, P2)]
    return (G, *narrow, B, Q, P1, P2, thr, alphas64, d1, d2, eps64, tiny, np.empty(SERIES_TERMS, dtype), *in_dtype,
            ft(eps64), ft(1.0), ft(tiny))  # fmt: skip


def dense_arguments(u, i, r, batch_size, mu, params, m, v, alphas, config):
    """The records of ``params, m, v`` (:func:`pack`) and every argument of :func:`dense_epoch` for this epoch.

    Returns ``(records, args)``; ``dense_epoch(*args)`` runs the epoch on ``records``, which
    :func:`dense_epoch_numba` then unpacks.
    """
    W = params[0]
    k = W.shape[1]
    ft = W.dtype.type
    r = np.asarray(r, W.dtype)  # the kernel's arithmetic is in the records' dtype (the trainers pass it so already)
    records = [np.empty((len(P), 4 * (k + 1)), W.dtype) for P in params[:2]]
    for X, side in zip(records, range(2), strict=True):
        pack(X, params[side], params[side + 2], m[side], m[side + 2], v[side], v[side + 2], False)
    scratch = (np.empty(batch_size, np.int64), np.empty(batch_size, np.int64), np.full(len(W), -1, np.int64),
               np.full(len(params[1]), -1, np.int64))  # fmt: skip
    width = k + 1 if config.biases else k
    n = len(r)
    last = n - (-(-n // batch_size) - 1) * batch_size  # the last batch's size
    cu = record_state(*catch_up_state(alphas, config), W.dtype)
    args = (
        u, i, r, int(batch_size), ft(mu), *records, *scratch, alphas.astype(W.dtype, copy=False),
        ft(1.0 - config.beta_1), ft(1.0 - config.beta_2), ft(config.epsilon), ft(config.reg), ft(2.0 / batch_size),
        ft(2.0 / last), trip_count(k + 1, FIXED_WIDTH), trip_count(width, FIXED_WIDTH), bool(config.non_negative), cu,
    )  # fmt: skip
    return records, args


def dense_epoch_numba(u, i, r, batch_size, mu, params, m, v, alphas, config):
    """Dense ``adam``'s epoch in place on the model's arrays ``params, m, v``, ratings in visiting order.

    Packs the records, runs :func:`dense_epoch`, and unpacks them; returns the loss sum.
    """
    records, args = dense_arguments(u, i, r, batch_size, mu, params, m, v, alphas, config)
    total = dense_epoch(*args)
    for X, side in zip(records, range(2), strict=True):
        pack(X, params[side], params[side + 2], m[side], m[side + 2], v[side], v[side + 2], True)
    return total
