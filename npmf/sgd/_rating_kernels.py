"""Numba kernels specialised per optimiser: the serial epoch of ``sgd`` and ``lazy_adam``.

The general serial kernel (:func:`npmf.sgd._kernels.epoch_numba`) serves all
three optimisers with one loop: it takes a permutation drawn in NumPy, gathers
the ratings through it, accumulates into gradient arrays as large as the
parameters and clears their rows after every step, and calls the optimiser
through a branch and tuples of arrays. For ``sgd`` and ``lazy_adam``, which
touch only the rows of the batch, all of that is overhead. Here

* the shuffle is drawn in the kernel, in place on the trainer's own copy of
  the ratings, by the SplitMix64-driven Fisher-Yates shuffle of the block
  kernels (:func:`npmf.sgd._block_data._shuffle`, twin
  :func:`npmf.sgd.blocks.shuffle_block`) from one seed per epoch: no
  permutation array, no gather, and the kernel then streams through memory;
* ``sgd`` with ``batch_size=1`` (:func:`sgd_per_rating`) updates the two rows
  in place, rating by rating, with no gradient buffer at all;
* ``lazy_adam`` and batched ``sgd`` (:func:`batched`) accumulate each batch's
  gradients in a buffer of ``batch_size`` rows, one per distinct row of the
  batch (its slot), so nothing as large as the parameters is ever zeroed.

The NumPy twin is :func:`npmf.sgd.rating_epochs.epoch_rating_numpy` (the
shuffle, then :func:`npmf.sgd.optimizers.epoch_numpy` in that order); the tests
hold them equal to 1e-12 in float64. The formulas are :mod:`npmf.sgd._formulas`',
the serial kernel's, compiled without fastmath. Scalars come in the factors'
dtype, so float32 factors are trained in float32 arithmetic.
"""

import numba
import numpy as np

from ._block_data import _shuffle
from ._formulas import (
    adam_scalar,
    bias_gradient,
    factor_gradient,
    loss_term,
    penalty,
    project_listed,
    project_row,
    residual,
    sgd_scalar,
)

__all__ = ["sgd_per_rating", "batched"]

_jit = numba.njit(cache=True, error_model="numpy", nogil=True)


@_jit
def sgd_per_rating(u, i, r, seed, mu, W, H, bu, bi, lr, reg, fit_bias, two, nn):
    """Shuffle the ratings in place, then one epoch of plain SGD, one rating per step; returns the loss sum.

    ``two`` is 2 in the factors' dtype (the gradient's factor ``c = 2 / B``
    with ``B = 1``). With ``reg = 0`` the penalty is not computed: its term
    would be ``0 * penalty``. ``nn`` (``non_negative``) projects the factors
    after each step and a row as it is read (docs/derivation.md, section 9).
    """
    n = r.shape[0]
    _shuffle(u, i, r, 0, n, seed)
    k = W.shape[1]
    total = 0.0
    for j in range(n):
        x = u[j]
        y = i[j]
        project_row(W, x, k, nn and j > 0)
        project_row(H, y, k, nn and j > 0)
        e = residual(mu, bu[x], bi[y], W, x, H, y, k, r, j)
        pen = penalty(W, x, H, y, k, bu[x], bi[y], 0.0) if reg != 0 else 0.0
        total += loss_term(e, reg, pen)
        for f in range(k):
            wf = W[x, f]
            hf = H[y, f]
            W[x, f] = sgd_scalar(wf, two * factor_gradient(e, hf, reg, wf), lr)
            H[y, f] = sgd_scalar(hf, two * factor_gradient(e, wf, reg, hf), lr)
        project_row(W, x, k, nn)
        project_row(H, y, k, nn)
        if fit_bias:
            gx = two * bias_gradient(e, reg, bu[x])
            gy = two * bias_gradient(e, reg, bi[y])
            bu[x] = sgd_scalar(bu[x], gx, lr)
            bi[y] = sgd_scalar(bi[y], gy, lr)
    return total


@_jit
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


@_jit
def _adam_flat(p, g, m, v, n, alpha, c1, c2, eps):
    """Keras' Adam (:func:`npmf.sgd._formulas.adam_scalar`) on elements ``0..n-1`` of flat contiguous arrays.

    Branch-free over contiguous scratch, so LLVM vectorises it (the square
    roots and divisions are exact, vector or not).
    """
    for j in range(n):
        pj, mj, vj = adam_scalar(p[j], g[j], m[j], v[j], alpha, c1, c2, eps)
        m[j] = mj
        v[j] = vj
        p[j] = pj


@_jit
def _lazy_adam_rows(P, B, M, V, MB, VB, G, rows, n_rows, fit_bias, ps, ms, vs, alpha, c1, c2, eps):
    """Lazy Adam on rows ``rows[:n_rows]`` of the factors ``P`` and, with ``fit_bias``, the biases ``B``.

    ``G[a]`` holds row ``rows[a]``'s gradient, the bias's in column ``k``. The
    rows' parameters and moments are gathered into the scratch ``ps, ms, vs``
    in the same layout, stepped there by :func:`_adam_flat` and scattered back.
    """
    k = P.shape[1]
    s = k + 1
    for a in range(n_rows):
        x = rows[a]
        for f in range(k):
            ps[a * s + f] = P[x, f]
            ms[a * s + f] = M[x, f]
            vs[a * s + f] = V[x, f]
        ps[a * s + k] = B[x]
        ms[a * s + k] = MB[x]
        vs[a * s + k] = VB[x]
    _adam_flat(ps, G.reshape(G.size), ms, vs, n_rows * s, alpha, c1, c2, eps)
    for a in range(n_rows):
        x = rows[a]
        for f in range(k):
            P[x, f] = ps[a * s + f]
            M[x, f] = ms[a * s + f]
            V[x, f] = vs[a * s + f]
        if fit_bias:
            B[x] = ps[a * s + k]
            MB[x] = ms[a * s + k]
            VB[x] = vs[a * s + k]


@_jit
def batched(u, i, r, seed, bs, mu, W, H, bu, bi, mW, vW, mH, vH, mbu, vbu, mbi, vbi, alphas, lazy, lr, c1, c2,
            eps, reg, fit_bias, nn):  # fmt: skip
    """Shuffle the ratings in place, then one epoch of ``lazy_adam`` (``lazy``) or SGD in batches of ``bs``.

    Pass 1 of a batch takes each rating's residual at the old parameters and
    adds its gradient terms into the slot of its user and of its item (a row's
    slot is given when the row first appears in the batch; ``stamp`` marks
    it). Pass 2 steps the listed rows. ``alphas`` holds the epoch's Adam step
    sizes (one entry, unused, for SGD). ``nn`` (``non_negative``) projects the
    factor rows stepped and a row as it is read. Returns the sum of the loss terms.
    """
    n = r.shape[0]
    _shuffle(u, i, r, 0, n, seed)
    k = W.shape[1]
    gu = np.empty((bs, k + 1), W.dtype)
    gi = np.empty((bs, k + 1), W.dtype)
    rows_u = np.empty(bs, np.int64)
    rows_i = np.empty(bs, np.int64)
    stamp_u = np.full(W.shape[0], -1, np.int64)
    stamp_i = np.full(H.shape[0], -1, np.int64)
    slot_u = np.empty(W.shape[0], np.int64)
    slot_i = np.empty(H.shape[0], np.int64)
    ps = np.empty(bs * (k + 1), W.dtype)
    ms = np.empty(bs * (k + 1), W.dtype)
    vs = np.empty(bs * (k + 1), W.dtype)
    cbuf = np.zeros(1, W.dtype)  # scalars in the factors' dtype
    zero = cbuf[0]
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
                gu[nu, :] = zero
                nu += 1
            if stamp_i[y] != b:
                stamp_i[y] = b
                slot_i[y] = ni
                rows_i[ni] = y
                gi[ni, :] = zero
                ni += 1
            project_row(W, x, k, nn and b > 0)
            project_row(H, y, k, nn and b > 0)
            e = residual(mu, bu[x], bi[y], W, x, H, y, k, r, j)
            pen = penalty(W, x, H, y, k, bu[x], bi[y], 0.0) if reg != 0 else 0.0
            total += loss_term(e, reg, pen)
            a = slot_u[x]
            q = slot_i[y]
            for f in range(k):
                gu[a, f] += c * factor_gradient(e, H[y, f], reg, W[x, f])
                gi[q, f] += c * factor_gradient(e, W[x, f], reg, H[y, f])
            gu[a, k] += c * bias_gradient(e, reg, bu[x])
            gi[q, k] += c * bias_gradient(e, reg, bi[y])
        if lazy:
            alpha = alphas[b]
            _lazy_adam_rows(W, bu, mW, vW, mbu, vbu, gu, rows_u, nu, fit_bias, ps, ms, vs, alpha, c1, c2, eps)
            _lazy_adam_rows(H, bi, mH, vH, mbi, vbi, gi, rows_i, ni, fit_bias, ps, ms, vs, alpha, c1, c2, eps)
        else:
            _sgd_rows(W, bu, gu, rows_u, nu, fit_bias, lr)
            _sgd_rows(H, bi, gi, rows_i, ni, fit_bias, lr)
        project_listed(W, rows_u, nu, k, nn)
        project_listed(H, rows_i, ni, k, nn)
    return total
