"""Numba kernels of the Gibbs sampler: draw rows from their Gaussian conditionals.

Twins of :func:`npmf.bayes.gibbs.sample_rows`, :func:`npmf.bayes.gibbs.sample_implicit_coordinates`
and :func:`npmf.bayes.gibbs.residuals` (the maths is in their docstrings).
Rows are independent of each other given the other side, and the implicit
step's coordinates are independent of each other, so both are drawn in
parallel (``prange``) and the result does not depend on the thread count. The
Cholesky factorisation and the two triangular solves are written out, in
place, for small d = k + 1: Numba's ``np.linalg`` would need SciPy's LAPACK.
"""

import numpy as np
from numba import njit, prange

__all__ = ["sample_rows_numba", "sample_implicit_numba", "residuals_numba"]

ROW_CHUNK = 32  # rows per parallel task of sample_rows_numba


@njit(cache=True, parallel=True, fastmath=True)
def sample_rows_numba(X, Z, ptr, partners, target, alpha, Lam, Lam_mu, S, eps):
    """Twin of :func:`npmf.bayes.gibbs.sample_rows`: every row of ``X`` drawn from its conditional, in place.

    ``S`` (n_rows, k) shifts the prior mean by (0, S[q]); a (n_rows, 0) array means no shift. Each row's
    partners are first gathered, transposed, into ``G`` (d, n_q) with ``G[0] = 1``, so that every entry of
    the sum of the outer products of the partners' rows is one contiguous dot product (SIMD). Rows are taken in chunks,
    so that each chunk allocates its buffers once; a row's draw does not depend on the chunks.
    """
    n_rows, d = X.shape
    k_off = S.shape[1]
    max_degree = 0
    for q in range(n_rows):
        max_degree = max(max_degree, ptr[q + 1] - ptr[q])
    n_chunks = (n_rows + ROW_CHUNK - 1) // ROW_CHUNK
    for chunk in prange(n_chunks):
        G = np.empty((d, max_degree))
        t = np.empty(max_degree)
        P = np.empty((d, d))
        b = np.empty(d)
        for q in range(chunk * ROW_CHUNK, min(n_rows, (chunk + 1) * ROW_CHUNK)):
            start, n_q = ptr[q], ptr[q + 1] - ptr[q]
            for p in range(n_q):
                j = partners[start + p]
                t[p] = target[start + p] - Z[j, 0]
                G[0, p] = 1.0
                for a in range(1, d):
                    G[a, p] = Z[j, a]
            for a in range(d):
                s = 0.0
                for p in range(n_q):
                    s += G[a, p] * t[p]
                b[a] = Lam_mu[a] + alpha * s
                for c in range(k_off):
                    b[a] += Lam[a, 1 + c] * S[q, c]
                for c in range(a + 1):  # lower triangle only: P is symmetric
                    s = 0.0
                    for p in range(n_q):
                        s += G[a, p] * G[c, p]
                    P[a, c] = Lam[a, c] + alpha * s
            _draw_gaussian(P, b, eps[q], X[q])


@njit(cache=True, parallel=True, fastmath=True)
def sample_implicit_numba(z, psi, D, item_ptr, item_users, c, weight, eps):
    """Twin of :func:`npmf.bayes.gibbs.sample_implicit_coordinates`: the coordinates in parallel, in place.

    Coordinate ``a`` touches only row ``a`` of ``z``, ``psi`` and ``eps`` (hence their (k, n) layout):
    the coordinates are independent chains.
    """
    k, n_items = z.shape
    for a in prange(k):
        Da = D[a]
        for j in range(n_items):
            ell = weight[j] * z[a, j]
            for p in range(item_ptr[j], item_ptr[j + 1]):
                ell += c[p] * psi[a, item_users[p]]
            precision = 1.0 + Da * weight[j]
            new = Da * ell / precision + eps[a, j] / np.sqrt(precision)
            delta = new - z[a, j]
            z[a, j] = new
            for p in range(item_ptr[j], item_ptr[j + 1]):
                psi[a, item_users[p]] -= c[p] * delta


@njit(cache=True, parallel=True, fastmath=True)
def residuals_numba(X, Y, mu, users, items, ratings, out):
    """Twin of :func:`npmf.bayes.gibbs.residuals`, into ``out``; returns their sum and their sum of squares.

    The sums run serially after the parallel loop, so that they do not depend on the thread count.
    """
    d = X.shape[1]
    for n in prange(len(ratings)):
        u, i = users[n], items[n]
        s = mu + X[u, 0] + Y[i, 0]
        for a in range(1, d):
            s += X[u, a] * Y[i, a]
        out[n] = ratings[n] - s
    total = 0.0
    squares = 0.0
    for n in range(len(ratings)):
        total += out[n]
        squares += out[n] * out[n]
    return total, squares


@njit(cache=True, fastmath=True)
def _draw_gaussian(P, b, eps, out):
    """out = P^{-1} b + L^{-T} eps with L L^T = P: a draw from N(P^{-1} b, P^{-1}); overwrites P and b."""
    d = len(b)
    _cholesky_lower(P)
    for a in range(d):  # L y = b, y into b
        s = b[a]
        for c in range(a):
            s -= P[a, c] * b[c]
        b[a] = s / P[a, a]
    for a in range(d):
        b[a] += eps[a]
    for a in range(d - 1, -1, -1):  # L^T out = y + eps
        s = b[a]
        for c in range(a + 1, d):
            s -= P[c, a] * out[c]
        out[a] = s / P[a, a]


@njit(cache=True, fastmath=True)
def _cholesky_lower(P):
    """P's lower triangle becomes L with L L^T = P (P symmetric positive definite; the upper triangle is not read)."""
    d = P.shape[0]
    for j in range(d):
        s = P[j, j]
        for c in range(j):
            s -= P[j, c] * P[j, c]
        P[j, j] = np.sqrt(s)
        for i in range(j + 1, d):
            s = P[i, j]
            for c in range(j):
                s -= P[i, c] * P[j, c]
            P[i, j] = s / P[j, j]
