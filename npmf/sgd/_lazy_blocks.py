"""The block kernel of ``lazy_adam`` and minibatch ``sgd``: a batch's gradients in per-thread slots, not in the records.

:func:`_block_slots` trains one block with the formulas of :mod:`npmf.sgd._formulas`, in the order of
the sequential twin (:func:`npmf.sgd.blocks.epoch_blocks_numpy`), but a row's gradient
accumulator is a slot of the thread's scratch, given when the row first appears in the batch (as the
serial kernel :func:`npmf.sgd._rating_kernels.batched` does), instead of a segment of its record. The
records are then ``[p | m | v]`` for ``lazy_adam`` and ``[p]`` for ``sgd``: 396 and 132 bytes at
k = 32 in float32 instead of 528 and 264. A block's records do not fit in L2 at scale (ML-25M's shape,
5M ratings, P = 24: ~9,300 rows a block), so every rating brings its two records from further away and
writes them back; the slots (``batch_size`` rows of ``k + 1``) stay in L1/L2, and the records lose the
quarter (``lazy_adam``) or half (``sgd``) of their bytes that only held a gradient. Dense ``adam`` has
kernels of its own (:mod:`npmf.sgd._dense_blocks`).
"""

import numba

from ._block_steps import AHEAD, ROWS_AHEAD, lines_of, prefetch_row
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

__all__ = []

_nonrt = numba.njit(cache=True, error_model="numpy", nogil=True, _nrt=False)
_fast = numba.njit(cache=True, error_model="numpy", nogil=True, _nrt=False, fastmath={"reassoc", "nsz"})


@_nonrt
def _adam_slots(X, rows, n_rows, G, n_trained, s, alpha, c1, c2, eps, nn):
    """Adam's step on records ``rows[:n_rows]`` of ``X`` (``[p | m | v]``, segments of ``s``), row ``a``'s gradient in
    ``G[a]``.

    The step is the serial kernel's, :func:`npmf.sgd._formulas.adam_scalar`; with ``nn`` the factors (not the
    bias, slot ``s - 1``) are then projected, in a pass of its own: with the projection, or a prefetch, in the
    element loop, LLVM did not vectorise it (scalar Adam, ~4 ns per element instead of ~1). The loop runs on 1-D
    views of the row's segments and the slot: indexed ``X[x, f]`` and ``G[a, f]`` (two arrays, one written), LLVM
    did not vectorise it (no vector square root in the IR). The prefetch of the record :data:`ROWS_AHEAD` rows
    on, in the row loop, leaves the element loop vectorised here.
    """
    lines = lines_of(X, X.shape[1])
    for a in range(n_rows):
        if a + ROWS_AHEAD < n_rows:
            prefetch_row(X, rows[a + ROWS_AHEAD], 0, lines)
        x = rows[a]
        P, M, V, g = X[x, :n_trained], X[x, s : s + n_trained], X[x, 2 * s : 2 * s + n_trained], G[a, :n_trained]
        for f in range(n_trained):
            P[f], M[f], V[f] = adam_scalar(P[f], g[f], M[f], V[f], alpha, c1, c2, eps)
    project_listed(X, rows, n_rows, s - 1, nn)


@_nonrt
def _sgd_slots(X, rows, n_rows, G, n_trained, lr, nn):
    """SGD's step (:func:`npmf.sgd._formulas.sgd_scalar`) on records ``rows[:n_rows]`` (``[p]``), as
    :func:`_adam_slots`."""
    s = X.shape[1]
    lines = lines_of(X, s)
    for a in range(n_rows):
        if a + ROWS_AHEAD < n_rows:
            prefetch_row(X, rows[a + ROWS_AHEAD], 0, lines)
        P, g = X[rows[a], :n_trained], G[a, :n_trained]
        for f in range(n_trained):
            P[f] = sgd_scalar(P[f], g[f], lr)
    project_listed(X, rows, n_rows, s - 1, nn)


@_fast
def _block_slots(u, i, r, start, stop, tag0, batch0, U, V, slot_u, slot_i, alphas, mu, bs, lazy,
                 fit_bias, lr, c1, c2, eps, reg, tmp, nn, rows_u, rows_i, gw, gh, Gu, Gi):  # fmt: skip
    """Train one (shuffled) block in minibatches of ``bs``, in place; returns the sum of its ratings' loss terms.

    ``lazy_adam`` (``lazy``) on records ``[p | m | v]`` or SGD on ``[p]`` (bias in slot ``k``). Pass 1 of a
    batch takes each rating's residual at the batch's old parameters and adds its gradient into the slot
    (``Gu[slot_u[x, 1]]``, ``Gi[slot_i[y, 1]]``) of its user and item; a row's slot is given, and zeroed, when
    ``slot_u[x, 0]`` (the batch that last gave it one) shows it new to the batch. Pass 2 steps the listed rows.
    The batch and the slot sit side by side, in one cache line, prefetched with the records (in two arrays, they
    were two more misses a rating: ``lazy_adam`` at 1.15x the time of the in-record gradients, not 0.67x).
    ``nn`` (``non_negative``) projects the factors stepped and a row as it is read (docs/derivation.md, 9).
    ``rows_u``, ``rows_i`` (``bs``), ``gw``, ``gh`` (``k + 1``), ``Gu``, ``Gi`` (``bs`` x ``k + 1``) are the
    thread slot's scratch.
    """
    s = U.shape[1] // (3 if lazy else 1)
    k = s - 1
    n_trained = s if fit_bias else k
    zero = U[0, 0] * 0
    total = 0.0
    lines = lines_of(U, U.shape[1])  # the whole record: pass 2 reads m, v too
    for b in range((stop - start + bs - 1) // bs):
        lo = start + b * bs
        hi = min(lo + bs, stop)
        tmp[0] = 2.0 / (hi - lo)
        c = tmp[0]
        tag = tag0 + batch0 + b
        nu = 0
        ni = 0
        for j in range(lo, hi):
            x = u[j]
            y = i[j]
            if j + AHEAD < stop:
                prefetch_row(U, u[j + AHEAD], 0, lines)
                prefetch_row(V, i[j + AHEAD], 0, lines)
                prefetch_row(slot_u, u[j + AHEAD], 0, 1)
                prefetch_row(slot_i, i[j + AHEAD], 0, 1)
            if slot_u[x, 0] != tag:
                slot_u[x, 0] = tag
                slot_u[x, 1] = nu
                rows_u[nu] = x
                for f in range(s):
                    Gu[nu, f] = zero
                nu += 1
            if slot_i[y, 0] != tag:
                slot_i[y, 0] = tag
                slot_i[y, 1] = ni
                rows_i[ni] = y
                for f in range(s):
                    Gi[ni, f] = zero
                ni += 1
            project_row(U, x, k, nn and batch0 + b > 0)
            project_row(V, y, k, nn and batch0 + b > 0)
            e = residual(mu, U[x, k], V[y, k], U, x, V, y, k, r, j)
            total += loss_term(e, reg, penalty(U, x, V, y, k, U[x, k], V[y, k], zero))
            for f in range(k):
                gw[f] = factor_gradient(e, V[y, f], reg, U[x, f])
                gh[f] = factor_gradient(e, U[x, f], reg, V[y, f])
            a = slot_u[x, 1]
            q = slot_i[y, 1]
            for f in range(k):
                Gu[a, f] += c * gw[f]
            for f in range(k):
                Gi[q, f] += c * gh[f]
            if fit_bias:
                Gu[a, k] += c * bias_gradient(e, reg, U[x, k])
                Gi[q, k] += c * bias_gradient(e, reg, V[y, k])
        if lazy:
            _adam_slots(U, rows_u, nu, Gu, n_trained, s, alphas[batch0 + b], c1, c2, eps, nn)
            _adam_slots(V, rows_i, ni, Gi, n_trained, s, alphas[batch0 + b], c1, c2, eps, nn)
        else:  # SGD gets no step sizes
            _sgd_slots(U, rows_u, nu, Gu, n_trained, lr, nn)
            _sgd_slots(V, rows_i, ni, Gi, n_trained, lr, nn)
    return total
