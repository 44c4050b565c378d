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

    ``S`` (n_rows, k) shifts the prior mean by (0, S[q]); a (n_rows, 0) array means no shift. Rows are
    taken in chunks, so that each chunk allocates its P and b once; each row's draw does not depend on the chunks.
    """
    n_rows, d = X.shape
    k_off = S.shape[1]
    n_chunks = (n_rows + ROW_CHUNK - 1) // ROW_CHUNK
    for chunk in prange(n_chunks):
        P = np.empty((d, d))
        b = np.empty(d)
        for q in range(chunk * ROW_CHUNK, min(n_rows, (chunk + 1) * ROW_CHUNK)):
            P[:] = Lam
            b[:] = Lam_mu
            for a in range(d):
                for c in range(k_off):
                    b[a] += Lam[a, 1 + c] * S[q, c]
            for p in range(ptr[q], ptr[q + 1]):
                j = partners[p]
                t = alpha * (target[p] - Z[j, 0])
                b[0] += t
                P[0, 0] += alpha
                for a in range(1, d):
                    za = Z[j, a]
                    b[a] += t * za
                    za *= alpha
                    P[a, 0] += za
                    for c in range(1, a + 1):  # lower triangle only: P is symmetric
                        P[a, c] += za * Z[j, c]
            _draw_gaussian(P, b, eps[q], X[q])


@njit(cache=True, parallel=True, fastmath=True)
def sample_implicit_numba(z, zeta, rho, D, item_ptr, item_users, scale, weight, eps):
    """Twin of :func:`npmf.bayes.gibbs.sample_implicit_coordinates`: the coordinates in parallel, in place.

    Coordinate ``a`` touches only row ``a`` of ``z``, ``zeta``, ``rho`` and ``eps``
    (hence their (k, n) layout): the coordinates are independent chains.
    """
    k, n_items = z.shape
    for a in prange(k):
        Da = D[a]
        for j in range(n_items):
            ell = weight[j] * z[a, j]
            for p in range(item_ptr[j], item_ptr[j + 1]):
                u = item_users[p]
                ell += scale[u] * (rho[a, u] - scale[u] * zeta[a, u])
            precision = 1.0 + Da * weight[j]
            new = Da * ell / precision + eps[a, j] / np.sqrt(precision)
            delta = new - z[a, j]
            z[a, j] = new
            for p in range(item_ptr[j], item_ptr[j + 1]):
                zeta[a, item_users[p]] += delta


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
