r"""Gibbs sampling for Bayesian matrix factorisation, in plain NumPy: the reference.

The model (Salakhutdinov & Mnih, *Bayesian probabilistic matrix factorization
using MCMC*, ICML 2008, with biases folded into the factors) is

.. math::

    r_{ui} \sim \mathcal N\big(\mu + b_u + c_i + w_u \cdot h_i,\ \alpha^{-1}\big)

For sampling, each user row is :math:`x_u = (b_u, w_u)` and each item row is
:math:`y_i = (c_i, h_i)`, both of length :math:`d = k + 1`. Seen from the user
side, an item enters as :math:`\tilde y_i = (1, h_i)` with offset :math:`c_i`:

.. math:: \hat r_{ui} = \mu + c_i + x_u \cdot \tilde y_i

and symmetrically from the item side. Priors and hyperpriors:

.. math::

    x_u \sim \mathcal N(\mu_U, \Lambda_U^{-1}),\quad
    (\mu_U, \Lambda_U) \sim \mathcal{NW}(0, \beta_0, W_0, \nu_0)
    \quad\text{(the same for items)},\qquad
    \alpha \sim \mathrm{Gamma}(a_0, b_0),\qquad p(\mu) \propto 1.

Every conditional is conjugate, so a sweep draws each block exactly from its
conditional given all the others (``docs/derivation.md``, part 3, derives them):

1. :func:`sample_rows`: every user row given items and hyperparameters
   (the rows are independent of each other given the items), then every item row;
2. :func:`sample_global_mean` and :func:`sample_noise_precision`;
3. :func:`sample_normal_wishart` for each side's :math:`(\mu, \Lambda)`.

With implicit feedback (SVD++), step 1 is followed by :func:`sample_implicit`,
and the user factors seen by the items are :math:`w_u + s_u`; with feedback on
both sides, the same function then draws the items' mirror image.

The Numba kernels in :mod:`npmf.bayes._kernels` draw exactly as
:func:`sample_rows` and :func:`sample_implicit` do, from the same standard normals.
"""

import numpy as np

__all__ = [
    "ratings_by_row",
    "row_precision",
    "sample_rows",
    "sample_implicit",
    "sample_global_mean",
    "sample_noise_precision",
    "sample_normal_wishart",
    "predict",
    "residuals",
]


def ratings_by_row(rows, cols, n_rows):
    """Group ratings by row (CSR): ``ptr`` (n_rows + 1,), ``cols[order]`` and ``order``.

    Row ``q``'s ratings are ``order[ptr[q]:ptr[q + 1]]`` (positions in the input),
    with partner indices ``cols[order][ptr[q]:ptr[q + 1]]``.
    """
    order = np.argsort(rows, kind="stable")
    ptr = np.zeros(n_rows + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=ptr[1:])
    return ptr, np.ascontiguousarray(cols[order]), order


def row_precision(Z, alpha, Lam):
    r"""Posterior precision of one row given its partners' rows ``Z`` (n, d).

    .. math:: P = \Lambda + \alpha \sum_j \tilde z_j \tilde z_j^\top, \qquad \tilde z_j = (1, z_{j,1:})

    The partner's own bias (column 0) is an offset, not a regressor: it is
    replaced by the constant 1 that multiplies this row's bias.
    """
    Zt = np.column_stack([np.ones(len(Z)), Z[:, 1:]])
    return Lam + alpha * Zt.T @ Zt


def sample_rows(X, Z, ptr, partners, target, alpha, Lam, Lam_mu, eps):
    r"""Draw every row of ``X`` (n_rows, d) from its Gaussian conditional, in place.

    Row ``q`` is rated against partner rows ``Z[partners[ptr[q]:ptr[q+1]]]``
    with ``target`` (the rating minus the global mean, aligned with
    ``partners``). With :math:`t_j` the target minus the partner's bias,

    .. math::

        P = \Lambda + \alpha \sum_j \tilde z_j \tilde z_j^\top, \qquad
        m = P^{-1}\Big(\Lambda\mu_0 + \alpha \sum_j t_j \tilde z_j\Big), \qquad
        x_q = m + L^{-\top}\varepsilon_q

    where :math:`P = L L^\top` (Cholesky) and :math:`\varepsilon_q` = ``eps[q]``
    are standard normals: :math:`\operatorname{Cov}(L^{-\top}\varepsilon) =
    (L L^\top)^{-1} = P^{-1}`. ``Lam_mu`` is :math:`\Lambda\mu_0`.
    """
    for q in range(len(X)):
        js = partners[ptr[q] : ptr[q + 1]]
        Z_q = Z[js]
        P = row_precision(Z_q, alpha, Lam)
        Zt = np.column_stack([np.ones(len(js)), Z_q[:, 1:]])
        b = Lam_mu + alpha * Zt.T @ (target[ptr[q] : ptr[q + 1]] - Z_q[:, 0])
        L = np.linalg.cholesky(P)
        y = np.linalg.solve(L, b)  # L y = b, so m = L^{-T} y
        X[q] = np.linalg.solve(L.T, y + eps[q])


def sample_implicit(Y_imp, H, S, user_ptr, user_items, item_ptr, item_users, err, scale, alpha, Lam, Lam_mu, eps):
    r"""Draw the implicit item factors :math:`y_j` one item at a time, in place (SVD++ feedback).

    With implicit feedback each user's factors are :math:`w_u + s_u`, where
    :math:`s_u = c_u \sum_{j \in R(u)} y_j` sums the implicit factors of the
    items the user rated in training, :math:`c_u = |R(u)|^{-1/2}` (``scale``;
    Koren's SVD++, sampled as in Rendle's Bayesian SVD++). :math:`y_j` enters
    the prediction of every rating :math:`(u, i)` of every user :math:`u` who
    rated :math:`j` as :math:`c_u\, y_j \cdot h_i`: a linear regression with
    regressors :math:`c_u h_i` and targets :math:`e_{ui} + c_u y_j \cdot h_i`
    (the residual without :math:`y_j`'s part). With
    :math:`G_u = \sum_{i \in R(u)} h_i h_i^\top` and
    :math:`g_u = \sum_{i \in R(u)} e_{ui} h_i`,

    .. math::

        P_j = \Lambda + \alpha \sum_{u \ni j} c_u^2 G_u, \qquad
        b_j = \Lambda\mu_0 + \alpha \sum_{u \ni j} c_u \big(g_u + c_u G_u y_j\big)

    and :math:`y_j \sim \mathcal N(P_j^{-1} b_j, P_j^{-1})`. After the draw,
    the change :math:`\Delta` moves :math:`s_u` by :math:`c_u\Delta` and
    :math:`g_u` by :math:`-c_u G_u \Delta` for every :math:`u \ni j`, so each
    sweep costs :math:`O(\mathrm{nnz}\, k^2)`, not :math:`O(\sum_u |R(u)|^2 k)`.
    Part 7.3 of ``docs/derivation.md`` derives it.

    Parameters
    ----------
    Y_imp : (n_items, k), updated; H : (n_items, k), the item factors
    S : (n_users, k), :math:`s_u`, updated
    user_ptr, user_items : the ratings grouped by user (:func:`ratings_by_row`)
    item_ptr, item_users : grouped by item
    err : residuals :math:`r - \hat r`, aligned with ``user_items``
    scale : (n_users,), :math:`c_u`
    alpha : the noise precision :math:`\alpha`
    Lam, Lam_mu : the prior's precision :math:`\Lambda` and :math:`\Lambda\mu_0`
    eps : (n_items, k) standard normals
    """
    n_users, k = S.shape
    G = np.zeros((n_users, k, k))
    g = np.zeros((n_users, k))
    for u in range(n_users):
        Hu = H[user_items[user_ptr[u] : user_ptr[u + 1]]]
        G[u] = Hu.T @ Hu
        g[u] = Hu.T @ err[user_ptr[u] : user_ptr[u + 1]]
    for j in range(len(Y_imp)):
        us = item_users[item_ptr[j] : item_ptr[j + 1]]
        c = scale[us]
        P = Lam + alpha * np.einsum("u,uab->ab", c * c, G[us])
        b = Lam_mu + alpha * (c @ g[us] + np.einsum("u,uab,b->a", c * c, G[us], Y_imp[j]))
        L = np.linalg.cholesky(P)
        delta = np.linalg.solve(L.T, np.linalg.solve(L, b) + eps[j]) - Y_imp[j]
        Y_imp[j] += delta
        # add.at: a user who rated j twice is moved twice, as the sums above count them
        np.add.at(S, us, c[:, None] * delta)
        np.add.at(g, us, -c[:, None] * (G[us] @ delta))


def predict(X, Y, mu, users, items):
    """``mu + b_u + c_i + w_u . h_i`` from rows ``X[u] = (b_u, w_u)`` and ``Y[i] = (c_i, h_i)``."""
    Xu, Yi = X[users], Y[items]
    return mu + Xu[:, 0] + Yi[:, 0] + np.einsum("nk,nk->n", Xu[:, 1:], Yi[:, 1:])


def residuals(X, Y, mu, users, items, ratings):
    """``ratings`` minus :func:`predict`: what :func:`sample_global_mean` and the noise precision read."""
    return ratings - predict(X, Y, mu, users, items)


def sample_global_mean(mu, err, alpha, rng):
    r"""Draw :math:`\mu` given everything else, under a flat prior.

    With residuals ``err`` :math:`= r - \hat r` computed at the current
    :math:`\mu`, the ratings say :math:`\mu + \bar e` with precision
    :math:`\alpha n`: :math:`\mu \sim \mathcal N(\mu + \bar e, 1/(\alpha n))`.
    """
    return float(rng.normal(mu + err.mean(), 1.0 / np.sqrt(alpha * len(err))))


def sample_noise_precision(sse, n, a0, b0, rng):
    r"""Draw the noise precision :math:`\alpha \sim \mathrm{Gamma}(a_0 + n/2,\ b_0 + \mathrm{SSE}/2)` (shape, rate)."""
    return float(rng.gamma(a0 + n / 2.0, 1.0 / (b0 + sse / 2.0)))


def sample_normal_wishart(X, beta0, W0_inv, nu0, rng):
    r"""Draw a side's prior :math:`(\mu, \Lambda)` given its rows ``X`` (n, d).

    Normal-Wishart posterior, prior mean 0: with :math:`\bar x` and
    :math:`S = \frac1n\sum (x - \bar x)(x - \bar x)^\top`,

    .. math::

        \nu^* = \nu_0 + n,\quad \beta^* = \beta_0 + n,\quad
        \mu^* = \frac{n \bar x}{\beta_0 + n},\quad
        (W^*)^{-1} = W_0^{-1} + nS + \frac{\beta_0 n}{\beta_0 + n}\bar x \bar x^\top

    :math:`\Lambda \sim \mathcal W(W^*, \nu^*)` by Bartlett's construction
    (:math:`\Lambda = (LA)(LA)^\top`, :math:`W^* = LL^\top`, :math:`A` lower
    triangular with :math:`A_{jj}^2 \sim \chi^2_{\nu^* - j}` and standard
    normals below the diagonal), then :math:`\mu \sim \mathcal N(\mu^*, (\beta^*\Lambda)^{-1})`.

    Returns
    -------
    Lam : ndarray (d, d)
    Lam_mu : ndarray (d,), :math:`\Lambda\mu`, which is what the row conditionals use.
    """
    n, d = X.shape
    xbar = X.mean(axis=0)
    centred = X - xbar
    W_inv = W0_inv + centred.T @ centred + (beta0 * n / (beta0 + n)) * np.outer(xbar, xbar)
    L = np.linalg.cholesky(np.linalg.inv(W_inv))
    A = np.zeros((d, d))
    for j in range(d):
        A[j, j] = np.sqrt(rng.chisquare(nu0 + n - j))
        A[j, :j] = rng.standard_normal(j)
    LA = L @ A
    Lam = LA @ LA.T
    mu_star = n * xbar / (beta0 + n)
    C = np.linalg.cholesky((beta0 + n) * Lam)  # mu = mu* + C^{-T} z has covariance ((beta0 + n) Lam)^{-1}
    mu = mu_star + np.linalg.solve(C.T, rng.standard_normal(d))
    return Lam, Lam @ mu
