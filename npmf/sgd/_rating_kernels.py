"""Numba kernels specialised per optimiser: the serial epoch of ``sgd`` and ``lazy_adam``.

The general serial kernel (:func:`npmf.sgd._kernels.epoch_numba`) serves all
three optimisers with one loop: it takes a permutation drawn in NumPy, gathers
the ratings through it, accumulates into gradient arrays as large as the
parameters and clears their rows after every step, and calls the optimiser
through a branch and tuples of arrays. For ``sgd`` and ``lazy_adam``, which
touch only the rows of the batch, all of that is overhead. Here

* :func:`shuffled_copy` copies the ratings, in the order given, into one of
  the trainer's buffers and shuffles them there by the SplitMix64-driven
  Fisher-Yates shuffle of the block kernels
  (:func:`npmf.sgd._block_data._shuffle_into`, twin
  :func:`npmf.sgd.blocks.shuffle_block`) from one seed per epoch: no
  permutation array, no gather, and the kernels then stream through memory.
  An epoch's order depends on its seed alone, not on the parameters, so
  :class:`npmf.sgd._kernels.SerialEpochs` prepares the next epoch's buffer on
  the second core while this one trains (and dense ``adam``'s permuted copy);
* ``sgd`` with ``batch_size=1`` (:func:`sgd_per_rating`) updates the two rows
  in place, rating by rating, with no gradient buffer at all;
* ``lazy_adam`` and batched ``sgd`` (:func:`batched`) accumulate each batch's
  gradients in a buffer of ``batch_size`` rows, one per distinct row of the
  batch (its slot), so nothing as large as the parameters is ever zeroed;
* the loss's penalty is summed in the dot product's loop
  (:func:`residual_and_penalty`), in the factors' dtype;
* a row's loops (the residual, the gradient sums, the steps) run a vector of
  lanes at a time (:mod:`npmf.core._lanes`: 8 float32 or 4 float64), the
  same operations on each element in the same order, so the same bits;
* they are compiled without reference counting and allocate nothing: the
  scratch comes from :func:`scratch`, once per fit, and the arguments from
  :func:`prepare`, so an epoch's Python work is one call (two with the shuffle).

On ML-100k (k = 10 and 3, float32 and float64; interleaved runs against the
kernels before these changes) that took ``sgd`` to 0.3-0.6 of its epoch time
and ``lazy_adam`` at batch 32 to 0.6-0.7, with the same parameters to the bit.

The NumPy twin is :func:`npmf.sgd.rating_epochs.epoch_rating_numpy` (the
shuffle, then :func:`npmf.sgd.optimizers.epoch_numpy` in that order); the tests
hold them equal to 1e-12 in float64. The formulas are :mod:`npmf.sgd._formulas`',
the serial kernel's, compiled without fastmath. Scalars come in the factors'
dtype, so float32 factors are trained in float32 arithmetic.
"""

import numba
import numpy as np

from ..core._lanes import load, store, width
from ._block_data import _shuffle_into
from ._formulas import (
    adam_scalar,
    bias_gradient,
    factor_gradient,
    loss_term,
    project_listed,
    project_row,
    residual_and_penalty,
    sgd_scalar,
    trip_count,
)
from .optimizers import StepSizes

__all__ = ["shuffled_copy", "sgd_per_rating", "batched", "prediction_bound"]

# Without Numba's reference counting (as npmf.sgd._kernels' epochs): the kernels allocate nothing (the caller passes
# the scratch), and the array arguments of the inlined helpers that branch cost no atomic increments per rating.
_jit = numba.njit(cache=True, error_model="numpy", nogil=True, _nrt=False)
_inline = numba.njit(inline="always", error_model="numpy", nogil=True)


@_jit
def shuffled_copy(u0, i0, r0, u, i, r, seed, js):
    """Copy the ratings ``u0, i0, r0`` into ``u, i, r`` and shuffle those in place from ``seed``.

    ``js`` is the shuffle's scratch (:func:`npmf.sgd._block_data._shuffle_into`).
    """
    for j in range(r0.shape[0]):
        u[j] = u0[j]
        i[j] = i0[j]
        r[j] = r0[j]
    _shuffle_into(u, i, r, 0, r.shape[0], seed, js)


@_jit
def sgd_per_rating(u, i, r, mu, W, H, bu, bi, lr, reg, fit_bias, two, nn, kt):
    """One epoch of plain SGD, one rating per step, over ``u, i, r`` in visiting order (:func:`shuffled_copy`).

    Returns the sum of the loss terms. ``two`` is 2 in the factors'
    dtype (the gradient's factor ``c = 2 / B`` with ``B = 1``). The penalty is
    summed in the factors' dtype (:func:`residual_and_penalty`); with ``reg = 0``
    its term is left out (it would be ``0 * penalty``). ``nn``
    (``non_negative``) projects the factors after each step and a row as it
    is read (docs/derivation.md, section 9). ``kt`` has as many entries as
    there are factors (:func:`factor_counts`).
    """
    k = len(kt)
    zero = two - two
    total = 0.0
    # The gradient's factor 2 goes onto the rate: lr * (2 g) and (2 lr) * g round the same real number (a factor
    # of 2 is exact), so the same bits (short of overflow) with one multiplication less per parameter.
    lr2 = lr * two
    for j in range(r.shape[0]):
        x = u[j]
        y = i[j]
        if nn and j > 0:
            project_row(W, x, k, True)
            project_row(H, y, k, True)
        e, pen = residual_and_penalty(mu, bu[x], bi[y], W, x, H, y, k, r, j, zero)
        total += loss_term(e, reg, pen) if reg != 0 else loss_term(e, reg, 0.0)
        for f in range(0, k, width(W)):
            wf = load(W, x, f, k - f)
            hf = load(H, y, f, k - f)
            store(W, x, f, sgd_scalar(wf, factor_gradient(e, hf, reg, wf), lr2), k - f)
            store(H, y, f, sgd_scalar(hf, factor_gradient(e, wf, reg, hf), lr2), k - f)
        if nn:
            project_row(W, x, k, True)
            project_row(H, y, k, True)
        if fit_bias:
            gx = bias_gradient(e, reg, bu[x])
            gy = bias_gradient(e, reg, bi[y])
            bu[x] = sgd_scalar(bu[x], gx, lr2)
            bi[y] = sgd_scalar(bi[y], gy, lr2)
    return total


@_inline
def _sgd_rows(P, B, G, rows, n_rows, fit_bias, lr, k):
    """Plain SGD (:func:`npmf.sgd._formulas.sgd_scalar`) on rows ``rows[:n_rows]`` of ``P`` (with ``fit_bias``, ``B``).

    ``G[a]`` holds row ``rows[a]``'s gradient, the bias's in column ``k``.
    """
    for a in range(n_rows):
        x = rows[a]
        for f in range(0, k, width(P)):
            store(P, x, f, sgd_scalar(load(P, x, f, k - f), load(G, a, f, k - f), lr), k - f)
        if fit_bias:
            B[x] = sgd_scalar(B[x], G[a, k], lr)


@_inline
def _lazy_adam_rows(P, B, M, V, MB, VB, G, rows, n_rows, fit_bias, alpha, c1, c2, eps, k):
    """Lazy Adam (:func:`npmf.sgd._formulas.adam_scalar`) on rows ``rows[:n_rows]`` of the factors ``P`` and, with
    ``fit_bias``, the biases ``B``, in place.

    ``G[a]`` holds row ``rows[a]``'s gradient, the bias's in column ``k``. A
    row is stepped where it lies, a vector of lanes (:mod:`npmf.core._lanes`)
    at a time: the square roots and divisions are the step's cost, and at
    k = 10 in float32 a row takes 2 vector ones where it took 10 scalar ones.
    Gathering the rows into contiguous scratch for one run of lanes, and
    stepping the bias in a free lane of the row's last vector, were both
    slower on ML-100k (k = 10, batch 32). The same operations on each element
    as the scalar loop, so the same bits.
    """
    for a in range(n_rows):
        x = rows[a]
        for f in range(0, k, width(P)):
            _adam_lanes(P, M, V, G, x, a, f, k - f, alpha, c1, c2, eps)
        if fit_bias:
            pj, mj, vj = adam_scalar(B[x], G[a, k], MB[x], VB[x], alpha, c1, c2, eps)
            MB[x] = mj
            VB[x] = vj
            B[x] = pj


@_inline
def _adam_lanes(P, M, V, G, x, a, f, n, alpha, c1, c2, eps):
    """Lazy Adam on the ``n`` (at most one vector's) elements from ``f`` of row ``x`` of ``P``, gradient ``G[a]``."""
    p, m, v = adam_scalar(load(P, x, f, n), load(G, a, f, n), load(M, x, f, n), load(V, x, f, n), alpha, c1, c2, eps)
    store(M, x, f, m, n)
    store(V, x, f, v, n)
    store(P, x, f, p, n)


@_inline
def _add_into(G, a, f, n, term, new, zero):
    """``G[a, f : f + n] += term`` (lanes), from ``zero`` for a ``new`` slot, whose old contents are not read.

    ``zero + term`` is what adding into a cleared slot gives, to the sign of a zero, without clearing it first:
    reading the slot's vector right after the clearing's stores made the core wait for them (a load that spans
    several earlier stores cannot take its data from them).
    """
    if new:
        store(G, a, f, zero + term, n)
    else:
        store(G, a, f, load(G, a, f, n) + term, n)


@_jit
def batched(u, i, r, bs, mu, W, H, bu, bi, mW, vW, mH, vH, mbu, vbu, mbi, vbi, alphas, lazy, lr, c1, c2, eps, reg,
            fit_bias, nn, kt, gu, gi, rows_u, rows_i, stamp_u, stamp_i, slot_u, slot_i, cbuf):  # fmt: skip
    """One epoch of ``lazy_adam`` (``lazy``) or SGD in batches of ``bs`` over ``u, i, r`` in visiting order
    (:func:`shuffled_copy`).

    Pass 1 of a batch takes each rating's residual at the old parameters and
    adds its gradient terms into the slot of its user and of its item (a row's
    slot is given when the row first appears in the batch; ``stamp`` marks
    it). Pass 2 steps the listed rows. ``alphas`` holds the epoch's Adam step
    sizes (one entry, unused, for SGD). ``nn`` (``non_negative``) projects the
    factor rows stepped and a row as it is read. Returns the sum of the loss terms.

    The scratch, allocated once per fit (:class:`npmf.sgd._kernels.SerialEpochs`):
    ``gu, gi`` (``bs`` rows of ``k + 1``, the factors'
    dtype) the slots' gradients, ``rows_u, rows_i`` (``bs``) the rows listed,
    ``stamp_u, stamp_i`` (one per row, all ``-1`` before the first epoch) the
    batch that last listed a row, ``slot_u, slot_i`` its slot, ``cbuf`` one
    value in the factors' dtype. The stamps are reset here, so every epoch starts alike.
    ``kt`` has as many entries as there are factors (:func:`factor_counts`).
    """
    n = r.shape[0]
    k = len(kt)
    for x in range(stamp_u.shape[0]):
        stamp_u[x] = -1
    for y in range(stamp_i.shape[0]):
        stamp_i[y] = -1
    zero = lr - lr
    total = 0.0
    for b in range((n + bs - 1) // bs):
        start = b * bs
        stop = min(start + bs, n)
        cbuf[0] = 2.0 / (stop - start)
        c = cbuf[0]
        nu = 0
        ni = 0
        for j in range(start, stop):
            x = u[j]
            y = i[j]
            new_u = stamp_u[x] != b  # the row's first rating in this batch: its slot's sum starts from zero
            if new_u:
                stamp_u[x] = b
                slot_u[x] = nu
                rows_u[nu] = x
                nu += 1
            new_i = stamp_i[y] != b
            if new_i:
                stamp_i[y] = b
                slot_i[y] = ni
                rows_i[ni] = y
                ni += 1
            if nn and b > 0:
                project_row(W, x, k, True)
                project_row(H, y, k, True)
            e, pen = residual_and_penalty(mu, bu[x], bi[y], W, x, H, y, k, r, j, zero)
            total += loss_term(e, reg, pen) if reg != 0 else loss_term(e, reg, 0.0)
            a = slot_u[x]
            q = slot_i[y]
            for f in range(0, k, width(W)):
                wf = load(W, x, f, k - f)
                hf = load(H, y, f, k - f)
                _add_into(gu, a, f, k - f, c * factor_gradient(e, hf, reg, wf), new_u, zero)
                _add_into(gi, q, f, k - f, c * factor_gradient(e, wf, reg, hf), new_i, zero)
            gu[a, k] = (zero if new_u else gu[a, k]) + c * bias_gradient(e, reg, bu[x])
            gi[q, k] = (zero if new_i else gi[q, k]) + c * bias_gradient(e, reg, bi[y])
        if lazy:
            alpha = alphas[b]
            _lazy_adam_rows(W, bu, mW, vW, mbu, vbu, gu, rows_u, nu, fit_bias, alpha, c1, c2, eps, k)
            _lazy_adam_rows(H, bi, mH, vH, mbi, vbi, gi, rows_i, ni, fit_bias, alpha, c1, c2, eps, k)
        else:
            _sgd_rows(W, bu, gu, rows_u, nu, fit_bias, lr, k)
            _sgd_rows(H, bi, gi, rows_i, ni, fit_bias, lr, k)
        project_listed(W, rows_u, nu, k, nn)
        project_listed(H, rows_i, ni, k, nn)
    return total


@_jit
def _max_sq_norm(P, zero):
    """The largest squared row norm of ``P``, summed from ``zero`` (in ``P``'s dtype); NaN if any row's is NaN."""
    most = zero
    for x in range(P.shape[0]):
        sq = zero
        for f in range(P.shape[1]):
            sq += P[x, f] * P[x, f]
        if not sq <= most:  # larger, or NaN, which is returned
            most = sq
            if sq != sq:
                break
    return most


@_jit
def _max_abs(b, zero):
    """The largest ``|b[x]|``, from ``zero``; NaN if any is NaN."""
    most = zero
    for x in range(b.shape[0]):
        a = abs(b[x])
        if not a <= most:
            most = a
            if a != a:
                break
    return most


@_jit
def prediction_bound(W, H, bu, bi, zero):
    """Twin of :func:`npmf.sgd.state.prediction_bound_numpy`: :math:`\\max\\lVert w\\rVert \\max\\lVert h\\rVert`
    plus the largest biases, all in the factors' dtype (``zero`` is 0 in it), so inf where it overflows."""
    return np.sqrt(_max_sq_norm(W, zero)) * np.sqrt(_max_sq_norm(H, zero)) + _max_abs(bu, zero) + _max_abs(bi, zero)


def factor_counts(k):
    """``kt``: the number of factors ``k`` as the kernels' loops take it, ``len(kt) == k``.

    A tuple's length is part of its Numba type, so a loop over it runs a
    compile-time number of times, which LLVM unrolls; over an array, a
    run-time number. Measured on ML-100k (sgd, batch 1, float32 and float64,
    one thread, interleaved, before the loops took lanes): the residual's loop
    was faster with a compile-time ``k`` at k = 3, 6 and 10 (by 15-25%). Up to
    32 factors ``kt`` is a tuple (a kernel compiled per ``k``, cached on disk);
    the same arithmetic either way, so the same bits.
    """
    return trip_count(k, 32)


def scratch(params, config):
    """:func:`batched`'s scratch for one fit, in its order from ``gu`` (empty for :func:`sgd_per_rating`).

    Allocated once per fit by :func:`prepare`, since the kernels, compiled
    without reference counting, allocate nothing.
    """
    W, H = params[0], params[1]
    k, bs, dt = W.shape[1], config.batch_size, W.dtype
    if config.optimizer == "sgd" and bs == 1:
        return ()
    rows = [np.empty(bs, np.int64) for _ in range(2)]
    stamps = [np.full(len(P), -1, np.int64) for P in (W, H)]
    slots = [np.empty(len(P), np.int64) for P in (W, H)]
    return (np.empty((bs, k + 1), dt), np.empty((bs, k + 1), dt), *rows, *stamps, *slots, np.zeros(1, dt))


def prepare(n, params, m, v, config):
    """The epoch of one fit of :class:`npmf.sgd._kernels.SerialEpochs`: a function ``epoch(u, i, r, mu, t0)``.

    It trains on the ``n`` ratings ``u, i, r`` in visiting order (:func:`shuffled_copy`).
    The kernel's other arguments (scalars in the factors' dtype, the scratch of
    :func:`scratch`) are built here once per fit, so an epoch only calls the
    kernel; ``lazy_adam``'s step sizes come from
    :class:`npmf.sgd.optimizers.StepSizes` at Adam's step count ``t0``.
    """
    c, (W, H, bu, bi), ft = config, params, np.dtype(config.dtype).type
    flags = (bool(c.biases), bool(c.non_negative))
    rest = scratch(params, config)
    kt = factor_counts(W.shape[1])
    if c.optimizer == "sgd" and c.batch_size == 1:
        factors = (W, H, bu, bi, ft(c.learning_rate), ft(c.reg), flags[0], ft(2.0), flags[1], kt)
        return lambda u, i, r, mu, t0: sgd_per_rating(u, i, r, ft(mu), *factors)
    lazy = c.optimizer == "lazy_adam"
    unused = np.zeros(1, c.dtype)  # SGD takes no step sizes
    alphas = StepSizes(c, -(-n // c.batch_size), c.dtype) if lazy else lambda t0: unused
    arrays = (W, H, bu, bi, *(a for q in range(4) for a in (m[q], v[q])))
    scalars = (lazy, ft(c.learning_rate), ft(1.0 - c.beta_1), ft(1.0 - c.beta_2), ft(c.epsilon), ft(c.reg))
    bs = int(c.batch_size)
    return lambda u, i, r, mu, t0: batched(u, i, r, bs, ft(mu), *arrays, alphas(t0), *scalars, *flags, kt, *rest)
