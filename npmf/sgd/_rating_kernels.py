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

from ._block_data import _shuffle_into
from ._formulas import (
    adam_scalar,
    bias_gradient,
    factor_gradient,
    loss_term,
    project_listed,
    project_row,
    sgd_scalar,
    trip_count,
)
from .optimizers import StepSizes

__all__ = ["shuffled_copy", "sgd_per_rating", "batched", "prediction_bound"]

# Without Numba's reference counting (as npmf.sgd._kernels' epochs): the kernels allocate nothing (the caller passes
# the scratch), and the array arguments of the inlined helpers that branch cost no atomic increments per rating.
_jit = numba.njit(cache=True, error_model="numpy", nogil=True, _nrt=False)


_inline = numba.njit(inline="always", error_model="numpy", nogil=True)


@_inline
def residual_and_penalty(mu, b_u, b_i, W, u, H, i, k, r, j, zero):
    """:func:`npmf.sgd._formulas.residual` and :func:`npmf.sgd._formulas.penalty` (from ``zero``) in one loop.

    The same sums in the same order, so the same bits (a test holds it): the
    dot product of :func:`npmf.core._kernels.dot` from its ``f = 0`` term, the
    squared norms from ``zero`` plus that term, each left to right; then
    ``((mu + b_u) + b_i) + dot - r[j]`` and ``sq + b_u^2 + b_i^2``. In one loop
    the two dependency chains run side by side and each factor is loaded once.
    """
    w0 = W[u, 0]
    h0 = H[i, 0]
    acc = w0 * h0
    sq = zero + (w0 * w0 + h0 * h0)
    for f in range(1, k):
        wf = W[u, f]
        hf = H[i, f]
        acc = acc + wf * hf
        sq += wf * wf + hf * hf
    return mu + b_u + b_i + acc - r[j], sq + b_u * b_u + b_i * b_i


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
def sgd_per_rating(u, i, r, mu, W, H, bu, bi, lr, reg, fit_bias, two, nn, kt, ku):
    """One epoch of plain SGD, one rating per step, over ``u, i, r`` in visiting order (:func:`shuffled_copy`).

    Returns the sum of the loss terms. ``two`` is 2 in the factors'
    dtype (the gradient's factor ``c = 2 / B`` with ``B = 1``). The penalty is
    summed in the factors' dtype (:func:`residual_and_penalty`); with ``reg = 0``
    its term is left out (it would be ``0 * penalty``). ``nn``
    (``non_negative``) projects the factors after each step and a row as it
    is read (docs/derivation.md, section 9). ``kt`` and ``ku`` have as many
    entries as there are factors (:func:`factor_counts`).
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
        for f in range(len(ku)):
            wf = W[x, f]
            hf = H[y, f]
            W[x, f] = sgd_scalar(wf, factor_gradient(e, hf, reg, wf), lr2)
            H[y, f] = sgd_scalar(hf, factor_gradient(e, wf, reg, hf), lr2)
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
def _sgd_rows(P, B, G, rows, n_rows, fit_bias, lr):
    """Plain SGD (:func:`npmf.sgd._formulas.sgd_scalar`) on rows ``rows[:n_rows]`` of ``P`` (with ``fit_bias``, ``B``).

    ``G[a]`` holds row ``rows[a]``'s gradient, the bias's in column ``k``.
    """
    k = P.shape[1]
    for a in range(n_rows):
        x = rows[a]
        for f in range(k):
            P[x, f] = sgd_scalar(P[x, f], G[a, f], lr)
        if fit_bias:
            B[x] = sgd_scalar(B[x], G[a, k], lr)


@_inline
def _lazy_adam_rows(P, B, M, V, MB, VB, G, rows, n_rows, fit_bias, alpha, c1, c2, eps, ku):
    """Lazy Adam (:func:`npmf.sgd._formulas.adam_scalar`) on rows ``rows[:n_rows]`` of the factors ``P`` and, with
    ``fit_bias``, the biases ``B``, in place.

    ``G[a]`` holds row ``rows[a]``'s gradient, the bias's in column ``k``.
    Stepping the rows where they are is the fastest form measured on ML-100k
    (k = 10, batch 32): gathering them into contiguous scratch for a vectorised
    step and scattering them back cost more than the scalar square roots and
    divisions it saved (benchmarks/cornac_compare.py). The bits are the same.
    ``len(ku)`` is the number of factors (:func:`factor_counts`).
    """
    k = len(ku)
    for a in range(n_rows):
        x = rows[a]
        for f in range(k):
            pj, mj, vj = adam_scalar(P[x, f], G[a, f], M[x, f], V[x, f], alpha, c1, c2, eps)
            M[x, f] = mj
            V[x, f] = vj
            P[x, f] = pj
        if fit_bias:
            pj, mj, vj = adam_scalar(B[x], G[a, k], MB[x], VB[x], alpha, c1, c2, eps)
            MB[x] = mj
            VB[x] = vj
            B[x] = pj


@_jit
def batched(u, i, r, bs, mu, W, H, bu, bi, mW, vW, mH, vH, mbu, vbu, mbi, vbi, alphas, lazy, lr, c1, c2, eps, reg,
            fit_bias, nn, kt, ku, gu, gi, rows_u, rows_i, stamp_u, stamp_i, slot_u, slot_i, cbuf):  # fmt: skip
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
    ``kt`` and ``ku`` have as many entries as there are factors (:func:`factor_counts`).
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
            if stamp_u[x] != b:
                stamp_u[x] = b
                slot_u[x] = nu
                rows_u[nu] = x
                for f in range(k + 1):
                    gu[nu, f] = zero
                nu += 1
            if stamp_i[y] != b:
                stamp_i[y] = b
                slot_i[y] = ni
                rows_i[ni] = y
                for f in range(k + 1):
                    gi[ni, f] = zero
                ni += 1
            if nn and b > 0:
                project_row(W, x, k, True)
                project_row(H, y, k, True)
            e, pen = residual_and_penalty(mu, bu[x], bi[y], W, x, H, y, k, r, j, zero)
            total += loss_term(e, reg, pen) if reg != 0 else loss_term(e, reg, 0.0)
            a = slot_u[x]
            q = slot_i[y]
            for f in range(k):
                gu[a, f] += c * factor_gradient(e, H[y, f], reg, W[x, f])
                gi[q, f] += c * factor_gradient(e, W[x, f], reg, H[y, f])
            gu[a, k] += c * bias_gradient(e, reg, bu[x])
            gi[q, k] += c * bias_gradient(e, reg, bi[y])
        if lazy:
            alpha = alphas[b]
            _lazy_adam_rows(W, bu, mW, vW, mbu, vbu, gu, rows_u, nu, fit_bias, alpha, c1, c2, eps, ku)
            _lazy_adam_rows(H, bi, mH, vH, mbi, vbi, gi, rows_i, ni, fit_bias, alpha, c1, c2, eps, ku)
        else:
            _sgd_rows(W, bu, gu, rows_u, nu, fit_bias, lr)
            _sgd_rows(H, bi, gi, rows_i, ni, fit_bias, lr)
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
    """``(kt, ku)``: the number of factors ``k`` as the kernels' loops take it, ``len(kt) == len(ku) == k``.

    A tuple's length is part of its Numba type, so a loop ``range(len(kt))``
    over a tuple runs a compile-time number of times, which LLVM unrolls; over
    an array, a run-time number. Measured on ML-100k (sgd, batch 1, float32 and
    float64, one thread, interleaved): the residual's loop is faster with a
    compile-time ``k`` at k = 3, 6 and 10 (by 15-25%), the update's loop only for
    small k (at k = 3 by another 15%; at k = 10 10% slower; lazy Adam's row
    step 3-6% faster at k = 3, the same at k = 10). Up to 32 factors the
    residual's is a tuple (a kernel compiled per ``k``, cached on disk), the
    update's (and :func:`batched`'s row steps') up to 4; the same arithmetic
    either way, so the same bits. ``batched`` takes its gradient loops over ``kt``.
    """
    return trip_count(k, 32), trip_count(k, 4)


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
    kt, ku = factor_counts(W.shape[1])
    if c.optimizer == "sgd" and c.batch_size == 1:
        factors = (W, H, bu, bi, ft(c.learning_rate), ft(c.reg), flags[0], ft(2.0), flags[1], kt, ku)
        return lambda u, i, r, mu, t0: sgd_per_rating(u, i, r, ft(mu), *factors)
    lazy = c.optimizer == "lazy_adam"
    unused = np.zeros(1, c.dtype)  # SGD takes no step sizes
    alphas = StepSizes(c, -(-n // c.batch_size), c.dtype) if lazy else lambda t0: unused
    arrays = (W, H, bu, bi, *(a for q in range(4) for a in (m[q], v[q])))
    scalars = (lazy, ft(c.learning_rate), ft(1.0 - c.beta_1), ft(1.0 - c.beta_2), ft(c.epsilon), ft(c.reg))
    bs = int(c.batch_size)
    return lambda u, i, r, mu, t0: batched(u, i, r, bs, ft(mu), *arrays, alphas(t0), *scalars, *flags, kt, ku, *rest)
