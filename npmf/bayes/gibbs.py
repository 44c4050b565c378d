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

With implicit feedback (SVD++), the rows are the effective rows, with factors
:math:`w_u + s_u`, and step 1 is followed by :func:`sample_implicit`, which
draws the implicit factors given them; with feedback on both sides, the same
function then draws the items' mirror image.

The Numba kernels in :mod:`npmf.bayes._kernels` draw exactly as
:func:`sample_rows` and :func:`sample_implicit_coordinates` do, from the same standard normals.
"""

import numpy as np

__all__ = [
    "ratings_by_row",
    "row_precision",
    "sample_rows",
    "implicit_weights",
    "sample_implicit",
    "sample_implicit_coordinates",
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


def sample_rows(X, Z, ptr, partners, target, alpha, Lam, Lam_mu, eps, S=None):
    r"""Draw every row of ``X`` (n_rows, d) from its Gaussian conditional, in place.

    Row ``q`` is rated against partner rows ``Z[partners[ptr[q]:ptr[q+1]]]``
    with ``target`` (the rating minus the global mean, aligned with
    ``partners``). With :math:`t_j` the target minus the partner's bias,

    .. math::

        P = \Lambda + \alpha \sum_j \tilde z_j \tilde z_j^\top, \qquad
        m = P^{-1}\Big(\Lambda(\mu_0 + (0, s_q)) + \alpha \sum_j t_j \tilde z_j\Big), \qquad
        x_q = m + L^{-\top}\varepsilon_q

    where :math:`P = L L^\top` (Cholesky) and :math:`\varepsilon_q` = ``eps[q]``
    are standard normals: :math:`\operatorname{Cov}(L^{-\top}\varepsilon) =
    (L L^\top)^{-1} = P^{-1}`. ``Lam_mu`` is :math:`\Lambda\mu_0`. With implicit
    feedback the rows are the effective rows :math:`(b_q, w_q + s_q)`, whose
    prior mean is shifted by the implicit offset ``S[q]`` (n_rows, k); None: no offset.
    """
    for q in range(len(X)):
        js = partners[ptr[q] : ptr[q + 1]]
        Z_q = Z[js]
        P = row_precision(Z_q, alpha, Lam)
        Zt = np.column_stack([np.ones(len(js)), Z_q[:, 1:]])
        prior = Lam_mu if S is None else Lam_mu + Lam[:, 1:] @ S[q]
        b = prior + alpha * Zt.T @ (target[ptr[q] : ptr[q + 1]] - Z_q[:, 0])
        L = np.linalg.cholesky(P)
        y = np.linalg.solve(L, b)  # L y = b, so m = L^{-T} y
        X[q] = np.linalg.solve(L.T, y + eps[q])


def implicit_weights(rows, partners, scale, n_partners):
    r""":math:`\omega_j = \sum_{u \ni j} c_u^2 m_{uj}^2` per partner ``j`` (:math:`m_{uj}`: times ``u`` rated ``j``)."""
    pairs, counts = np.unique(rows.astype(np.int64) * n_partners + partners, return_counts=True)
    weights = scale[pairs // n_partners] ** 2 * counts**2
    return np.bincount(pairs % n_partners, weights=weights, minlength=n_partners)


def sample_implicit(Y_imp, S, E, n_rated, scale, weight, item_ptr, item_users, prior_rows, prior_imp, eps, step=None):
    r"""Draw the implicit factors :math:`y_j` given the effective rows, in place (SVD++ feedback).

    Each row's effective factors are :math:`v_u = w_u + s_u`, with
    :math:`s_u = c_u \sum_{j \in R(u)} y_j` over the partners it rated,
    :math:`c_u = |R(u)|^{-1/2}` (``scale``; Koren's SVD++, sampled as in
    Rendle's Bayesian SVD++). The ratings see only :math:`v_u`, so given the
    effective rows ``E`` (n_rows, d) = :math:`(b_u, v_u)` the :math:`y_j` enter
    only the row prior :math:`(b_u, v_u - s_u) \sim \mathcal N(\mu_X, \Lambda_X^{-1})`:
    :math:`s_u` is "observed" as :math:`\rho_u = \Lambda_{ff}^{-1}[\Lambda_X(e_u - \mu_X)]_{1:}`
    with precision :math:`\Lambda_{ff} = \Lambda_{X,1:,1:}`. Take :math:`T` with
    :math:`T^\top\Lambda_Y T = I` and :math:`T^\top\Lambda_{ff}T = D` diagonal and
    put :math:`y_j = \mu_Y + T z_j`: the conditional splits into ``k`` independent
    coordinates, and in coordinate :math:`a`, with :math:`\zeta_u = \sum_{j\in R(u)} z_j`,

    .. math::

        \log p = -\tfrac12 \sum_j z_{ja}^2 - \tfrac{D_a}2 \sum_u \big(c_u\zeta_{ua} - \tilde\rho_{ua}\big)^2,
        \qquad \tilde\rho_u = T^{-1}\big(\rho_u - \sqrt{|R(u)|}\,\mu_Y\big)

    so :math:`z_{ja} \sim \mathcal N(D_a \ell_{ja} / \pi_{ja},\ 1/\pi_{ja})` with
    :math:`\pi_{ja} = 1 + D_a \omega_j` (:func:`implicit_weights`) and
    :math:`\ell_{ja} = \omega_j z_{ja} + \sum_{u \ni j} c_u\psi_{ua}`, :math:`\psi_u = \tilde\rho_u - c_u\zeta_u`,
    drawn item after item within a coordinate, the coordinates in parallel
    (:func:`sample_implicit_coordinates`). Part 7.3 of ``docs/derivation.md`` derives it.

    Parameters
    ----------
    Y_imp : (n_items, k), updated; S : (n_users, k), :math:`s_u`, updated
    E : (n_users, d), the effective rows; n_rated : (n_users,), :math:`|R(u)|`
    scale : (n_users,), :math:`c_u`; weight : (n_items,), :math:`\omega_j`
    item_ptr, item_users : the ratings grouped by item (:func:`ratings_by_row`)
    prior_rows, prior_imp : :math:`(\Lambda_X, \Lambda_X\mu_X)` and :math:`(\Lambda_Y, \Lambda_Y\mu_Y)`
    eps : (k, n_items) standard normals
    step : the coordinate sweep, :func:`sample_implicit_coordinates` or its Numba twin
    """
    # Small k x k factorisations, then einsum over the rows: no multi-threaded BLAS call, which
    # would spin against the kernels' threads (it made a sweep four times slower on two cores).
    (Lam_X, Lam_mu_X), (Lam_Y, Lam_mu_Y) = prior_rows, prior_imp
    mu_Y = np.linalg.solve(Lam_Y, Lam_mu_Y)
    L = np.linalg.cholesky(Lam_Y)
    L_inv = np.linalg.inv(L)
    D, Q = np.linalg.eigh(L_inv @ Lam_X[1:, 1:] @ L_inv.T)
    T, T_inv = L_inv.T @ Q, Q.T @ L.T
    root = np.sqrt(n_rated)
    A = T_inv @ np.linalg.inv(Lam_X[1:, 1:])  # rho_u = A (Lam_X e_u - Lam_X mu_X)[1:] - T^{-1} mu_Y sqrt|R(u)|
    rho = np.einsum("ab,nb->an", A @ Lam_X[1:], E) - (A @ Lam_mu_X[1:])[:, None] - np.outer(T_inv @ mu_Y, root)
    # psi_u = rho_u - c_u zeta_u, from S = sqrt|R(u)| mu_Y + c_u T zeta_u
    psi = rho - np.einsum("ab,nb->an", T_inv, S - np.outer(root, mu_Y))
    z = np.einsum("ab,nb->an", T_inv, Y_imp - mu_Y)
    c = scale[item_users]  # c_u at every rating, in item order
    (step or sample_implicit_coordinates)(z, psi, D, item_ptr, item_users, c, weight, eps)
    Y_imp[:] = mu_Y + np.einsum("ab,bn->na", T, z)
    S[:] = np.outer(root, mu_Y) + np.einsum("ab,bn->na", T, rho - psi)


def sample_implicit_coordinates(z, psi, D, item_ptr, item_users, c, weight, eps):
    r"""The coordinate sweep of :func:`sample_implicit`: every :math:`z_{ja}`, item after item, in place.

    ``z`` (k, n_items); ``psi`` (k, n_users), :math:`\psi_u = \tilde\rho_u - c_u\zeta_u`, kept current;
    ``D`` (k,); ``c`` the raters' :math:`c_u`, aligned with ``item_users``; ``eps`` (k, n_items).
    """
    for j in range(z.shape[1]):
        us = item_users[item_ptr[j] : item_ptr[j + 1]]
        c_j = c[item_ptr[j] : item_ptr[j + 1]]
        ell = weight[j] * z[:, j] + psi[:, us] @ c_j
        precision = 1.0 + D * weight[j]
        new = D * ell / precision + eps[:, j] / np.sqrt(precision)
        np.add.at(psi.T, us, -np.outer(c_j, new - z[:, j]))  # a user who rated j twice moves twice, as zeta does
        z[:, j] = new


def predict(X, Y, mu, users, items):
    """``mu + b_u + c_i + w_u . h_i`` from rows ``X[u] = (b_u, w_u)`` and ``Y[i] = (c_i, h_i)``."""
    Xu, Yi = X[users], Y[items]
    return mu + Xu[:, 0] + Yi[:, 0] + np.einsum("nk,nk->n", Xu[:, 1:], Yi[:, 1:])


def residuals(X, Y, mu, users, items, ratings):
    """``ratings`` minus :func:`predict`: what :func:`sample_global_mean` and the noise precision read."""
    return ratings - predict(X, Y, mu, users, items)


def sample_global_mean(mu, err, alpha, rng, prior=(0.0, 0.0), total=None):
    r"""Draw :math:`\mu` given everything else, under a prior :math:`\mathcal N(m_0, \tau_0^{-1})`.

    With residuals ``err`` :math:`= r - \hat r` computed at the current
    :math:`\mu`, the ratings say :math:`\mu + \bar e` with precision
    :math:`\alpha n`: :math:`\mu \sim \mathcal N\big((\tau_0 m_0 + \alpha n(\mu + \bar e))/\tau,\ 1/\tau\big)`,
    :math:`\tau = \tau_0 + \alpha n`. ``prior`` is :math:`(m_0, \tau_0)`; the
    default :math:`\tau_0 = 0` is the flat prior the estimator uses. ``total``:
    ``err.sum()`` when the caller has it.
    """
    m0, tau0 = prior
    n = len(err)
    mean = (err.sum() if total is None else total) / n
    tau = tau0 + alpha * n
    return float(rng.normal((tau0 * m0 + alpha * n * (mu + mean)) / tau, 1.0 / np.sqrt(tau)))


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
    (:math:`\Lambda = (LA)(LA)^\top` with :math:`LL^\top = W^*`, :math:`A` lower
    triangular with :math:`A_{jj}^2 \sim \chi^2_{\nu^* - j}` and standard
    normals below the diagonal), then :math:`\mu \sim \mathcal N(\mu^*, (\beta^*\Lambda)^{-1})`.

    Numerics: :math:`W^*` itself is never formed. :math:`(W^*)^{-1}` is
    symmetric positive definite by construction (:math:`W_0^{-1}` plus
    scatter), its eigenvalues at least :math:`W_0^{-1}`'s smallest, so its
    Cholesky factor :math:`(W^*)^{-1} = RR^\top` exists; it is computed
    stably for any condition number below about :math:`10^{15}`. Inverting
    :math:`(W^*)^{-1}` first, as this function once did, fails far earlier:
    the factors of 100 one-rating users once reached :math:`10^6`, with
    :math:`(W^*)^{-1}` conditioned at :math:`10^{13}`, and its computed
    inverse was not positive definite (LinAlgError in scikit-learn's
    checks). With :math:`L = R^{-\top}` (:math:`LL^\top = W^*`) and
    :math:`\mu = \mu^* + R A^{-\top} z / \sqrt{\beta^*}`, whose covariance is
    :math:`R (AA^\top)^{-1} R^\top / \beta^* = (\beta^*\Lambda)^{-1}`, only
    triangular solves follow: no inverse, no Cholesky of :math:`\Lambda`.
    Needs :math:`\nu_0 > d - 1`, so that every :math:`\chi^2` has positive
    degrees of freedom.

    Returns
    -------
    Lam : ndarray (d, d), symmetric
    Lam_mu : ndarray (d,), :math:`\Lambda\mu`, which is what the row conditionals use.
    """
    n, d = X.shape
    if not nu0 > d - 1:
        raise ValueError(f"nu0={nu0} must exceed d - 1 = {d - 1} for a proper Wishart")
    xbar = X.mean(axis=0)
    centred = X - xbar
    W_inv = W0_inv + np.einsum("na,nb->ab", centred, centred) + (beta0 * n / (beta0 + n)) * np.outer(xbar, xbar)
    R = np.linalg.cholesky(0.5 * (W_inv + W_inv.T))  # (W*)^{-1} = R R^T
    A = np.zeros((d, d))
    for j in range(d):
        A[j, j] = np.sqrt(rng.chisquare(nu0 + n - j))
        A[j, :j] = rng.standard_normal(j)
    LA = np.linalg.solve(R.T, A)  # L = R^{-T}: L L^T = (R R^T)^{-1} = W*
    Lam = LA @ LA.T
    Lam = 0.5 * (Lam + Lam.T)
    mu_star = n * xbar / (beta0 + n)
    mu = mu_star + R @ np.linalg.solve(A.T, rng.standard_normal(d)) / np.sqrt(beta0 + n)
    return Lam, Lam @ mu
