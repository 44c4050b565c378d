"""Numba kernels of the Gibbs sampler: draw rows from their Gaussian conditionals.

Twins of :func:`npmf.bayes.gibbs.sample_rows` and :func:`npmf.bayes.gibbs.sample_implicit`
(the maths is in their docstrings).
Rows are independent of each other given the other side, so they are drawn in
parallel (``prange``) and the result does not depend on the thread count. The
Cholesky factorisation and the two triangular solves are written out, for
small d = k + 1: Numba's ``np.linalg`` would need SciPy's LAPACK.
"""

import numpy as np
from numba import njit, prange

__all__ = ["sample_rows_numba", "sample_implicit_numba"]


@njit(cache=True, parallel=True)
def sample_rows_numba(X, Z, ptr, partners, target, alpha, Lam, Lam_mu, eps):
    """Twin of :func:`npmf.bayes.gibbs.sample_rows`: every row of ``X`` drawn from its conditional, in place."""
    n_rows, d = X.shape
    for q in prange(n_rows):
        P = Lam.copy()
        b = Lam_mu.copy()
        z = np.empty(d)
        for p in range(ptr[q], ptr[q + 1]):
            j = partners[p]
            z[0] = 1.0
            for a in range(1, d):
                z[a] = Z[j, a]
            t = alpha * (target[p] - Z[j, 0])
            for a in range(d):
                b[a] += t * z[a]
                za = alpha * z[a]
                for c in range(a + 1):  # lower triangle only: P is symmetric
                    P[a, c] += za * z[c]
        _draw_gaussian(P, b, eps[q], X[q])


@njit(cache=True)
def sample_implicit_numba(Y_imp, H, S, user_ptr, user_items, item_ptr, item_users, err, scale, alpha, Lam, Lam_mu, eps):
    """Twin of :func:`npmf.bayes.gibbs.sample_implicit`: draw the implicit factors one item at a time.

    Sequential over items: each draw changes the residuals of every user who
    rated the item, which the next item's conditional reads (through ``g``).
    """
    n_users, k = S.shape
    G = np.zeros((n_users, k, k))  # G_u = sum_i h_i h_i^T over the user's items
    g = np.zeros((n_users, k))  # g_u = sum_i h_i e_ui, kept current as Y_imp changes
    for u in range(n_users):
        for p in range(user_ptr[u], user_ptr[u + 1]):
            i = user_items[p]
            for a in range(k):
                g[u, a] += H[i, a] * err[p]
                for c in range(k):
                    G[u, a, c] += H[i, a] * H[i, c]
    b = np.empty(k)
    t = np.empty(k)
    new = np.empty(k)
    for j in range(len(item_ptr) - 1):
        P = Lam.copy()
        b[:] = Lam_mu
        for p in range(item_ptr[j], item_ptr[j + 1]):
            u = item_users[p]
            c_u = scale[u]
            for a in range(k):
                t[a] = 0.0
                for c in range(k):
                    t[a] += G[u, a, c] * Y_imp[j, c]
            for a in range(k):
                b[a] += alpha * c_u * (g[u, a] + c_u * t[a])
                for c in range(a + 1):
                    P[a, c] += alpha * c_u * c_u * G[u, a, c]
        _draw_gaussian(P, b, eps[j], new)
        for a in range(k):
            new[a] -= Y_imp[j, a]  # now the change
            Y_imp[j, a] += new[a]
        for p in range(item_ptr[j], item_ptr[j + 1]):
            u = item_users[p]
            c_u = scale[u]
            for a in range(k):
                S[u, a] += c_u * new[a]
                s = 0.0
                for c in range(k):
                    s += G[u, a, c] * new[c]
                g[u, a] -= c_u * s


@njit(cache=True)
def _draw_gaussian(P, b, eps, out):
    """out = P^{-1} b + L^{-T} eps with L L^T = P: a draw from N(P^{-1} b, P^{-1})."""
    d = len(b)
    L = _cholesky_lower(P)
    y = np.empty(d)
    for a in range(d):  # L y = b
        s = b[a]
        for c in range(a):
            s -= L[a, c] * y[c]
        y[a] = s / L[a, a]
    for a in range(d):
        y[a] += eps[a]
    for a in range(d - 1, -1, -1):  # L^T out = y + eps
        s = y[a]
        for c in range(a + 1, d):
            s -= L[c, a] * out[c]
        out[a] = s / L[a, a]


@njit(cache=True)
def _cholesky_lower(P):
    """L with L L^T = P, reading only P's lower triangle (P symmetric positive definite)."""
    d = P.shape[0]
    L = np.zeros((d, d))
    for j in range(d):
        s = P[j, j]
        for c in range(j):
            s -= L[j, c] * L[j, c]
        L[j, j] = np.sqrt(s)
        for i in range(j + 1, d):
            s = P[i, j]
            for c in range(j):
                s -= L[i, c] * L[j, c]
            L[i, j] = s / L[j, j]
    return L
