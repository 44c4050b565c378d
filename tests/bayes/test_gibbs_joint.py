"""The Gibbs sampler as a whole: Geweke's joint-distribution test, a conjugate problem with a known posterior,
the Normal-Wishart draw's full covariance, and which sweeps the estimator keeps.

Geweke (2004), "Getting it right": draw parameters from the prior, then alternate data given parameters and one
sweep of the sampler given the data. If every conditional is right, the chain's parameters are distributed as the
prior; any wrong conditional moves some moment. The prior here is proper (a Normal prior on the global mean, Wishart
degrees of freedom high enough for finite moments) through the chain's ``Hyperpriors``.
"""

import numpy as np
import pytest
from helpers import planted

import npmf
from npmf.bayes import gibbs
from npmf.bayes._chain import Chain, Hyperpriors
from npmf.bayes.config import GibbsConfig

HYPER = Hyperpriors(beta_0=2.0, nu_extra=4, noise_shape=4.0, noise_rate=4.0, mu_mean=0.5, mu_precision=1.0)
# 3 users x 4 items, k = 1; user 0 rated item 1 twice (the implicit sums count it twice)
USERS = np.array([0, 0, 0, 1, 1, 2, 2, 2, 0], np.int32)
ITEMS = np.array([0, 1, 2, 1, 3, 0, 2, 3, 1], np.int32)
K = 1


def wishart(nu, dim, rng):
    """Wishart(I, nu) as a sum of nu outer products: independent of the Bartlett draw under test."""
    G = rng.standard_normal((nu, dim))
    return G.T @ G


def prior_draw(rng):
    """(blocks, mu, alpha): each block (Lam, mu_block, rows) from the Normal-Wishart prior and its rows."""
    sizes = [(3, K + 1), (4, K + 1), (4, K), (3, K)]  # user rows, item rows, items' y, users' z
    blocks = []
    for n, dim in sizes:
        Lam = wishart(dim + HYPER.nu_extra, dim, rng)
        mean = np.linalg.solve(np.linalg.cholesky(HYPER.beta_0 * Lam).T, rng.standard_normal(dim))
        rows = mean + np.linalg.solve(np.linalg.cholesky(Lam).T, rng.standard_normal((dim, n))).T
        blocks.append((Lam, mean, rows))
    mu = HYPER.mu_mean + rng.standard_normal() / np.sqrt(HYPER.mu_precision)
    alpha = rng.gamma(HYPER.noise_shape, 1.0 / HYPER.noise_rate)
    return blocks, mu, alpha


def offsets(blocks):
    """s_u = c_u sum of the items' y over u's ratings, and the items' mirror over the users' z."""
    s = [np.zeros((3, K)), np.zeros((4, K))]
    c = [1 / np.sqrt(np.bincount(USERS)), 1 / np.sqrt(np.bincount(ITEMS))]
    np.add.at(s[0], USERS, c[0][USERS, None] * blocks[2][2][ITEMS])
    np.add.at(s[1], ITEMS, c[1][ITEMS, None] * blocks[3][2][USERS])
    return s


def effective_rows(blocks):
    s = offsets(blocks)
    rows = [blocks[0][2].copy(), blocks[1][2].copy()]
    for side in (0, 1):
        rows[side][:, 1:] += s[side]
    return rows


def ratings(rows, mu, alpha, rng):
    X, Y = rows
    return gibbs.predict(X, Y, mu, USERS, ITEMS) + rng.standard_normal(len(USERS)) / np.sqrt(alpha)


def statistics(blocks, mu, alpha, fit):
    """The moments compared: mu, alpha, alpha times the mean squared residual of the data the parameters go with,
    and per block Lambda's entries, its mean and squares, a row's square."""
    out = [mu, mu * mu, alpha, 1 / alpha, alpha * fit]
    for Lam, mean, rows in blocks:
        out += list(Lam[np.tril_indices(len(Lam))]) + list(mean) + list(mean**2) + [rows[0, 0], rows[0, 0] ** 2]
    return np.array(out)


def chain_state(chain):
    blocks = []
    base = [chain.rows[0].copy(), chain.rows[1].copy()]
    for side in (0, 1):
        base[side][:, 1:] -= chain.offsets[side]
    for Z, (Lam, Lam_mu) in zip(base + [chain.implicit_factors[0], chain.implicit_factors[1]], chain.priors):
        blocks.append((Lam, np.linalg.solve(Lam, Lam_mu), Z))
    return blocks, chain.mu, chain.alpha


def geweke(n_iter, seed=0):
    """z-scores of the statistics: successive-conditional chain (batch means) against independent prior draws."""
    rng = np.random.default_rng(seed)
    marginal = []
    for _ in range(n_iter):
        blocks, mu, alpha = prior_draw(rng)
        rows = effective_rows(blocks)
        err = ratings(rows, mu, alpha, rng) - gibbs.predict(*rows, mu, USERS, ITEMS)
        marginal.append(statistics(blocks, mu, alpha, np.mean(err**2)))
    marginal = np.array(marginal)
    blocks, mu, alpha = prior_draw(rng)
    s = offsets(blocks)
    rows = effective_rows(blocks)
    config = GibbsConfig(n_factors=K, epochs=2, implicit_feedback="both", n_threads=1)
    chain = Chain(USERS, ITEMS, ratings(rows, mu, alpha, rng), 3, 4, config, rng, hyper=HYPER)
    chain.rows, chain.offsets = rows, s
    chain.base = [rows[0].copy(), rows[1].copy()]
    chain.implicit_factors = [blocks[2][2].copy(), blocks[3][2].copy()]
    chain.priors = [(Lam, Lam @ mean) for Lam, mean, _ in blocks]
    chain.mu, chain.alpha = mu, alpha
    successive = np.empty_like(marginal)
    for t in range(n_iter):
        chain.sweep(rng)
        fit = np.mean((chain.r - gibbs.predict(*chain.rows, chain.mu, USERS, ITEMS)) ** 2)  # the data swept on
        successive[t] = statistics(*chain_state(chain), fit)
        chain.set_ratings(ratings(chain.rows, chain.mu, chain.alpha, rng))
    batches = successive.reshape(50, -1, successive.shape[1]).mean(axis=1)
    se2 = batches.var(axis=0, ddof=1) / len(batches) + marginal.var(axis=0, ddof=1) / n_iter
    return (successive.mean(0) - marginal.mean(0)) / np.sqrt(se2)


@pytest.mark.slow
def test_geweke_joint_distribution():
    z = geweke(5000)
    assert np.all(np.abs(z) < 4.5), np.round(z, 1)


def test_conjugate_global_mean_and_noise():
    """With every row at zero, the chain's (mu, alpha) step is Gibbs for the normal model r ~ N(mu, 1/alpha):
    its posterior, by quadrature over mu, is known; E[alpha (mu - rbar)^2] needs alpha drawn at the new mu."""
    rng = np.random.default_rng(1)
    r = rng.normal(1.0, 0.7, 3)
    hyper = Hyperpriors(noise_shape=1.0, noise_rate=0.5, mu_mean=0.0, mu_precision=0.1)
    users = items = np.arange(3, dtype=np.int32)
    chain = Chain(users, items, r, 3, 3, GibbsConfig(n_factors=1, implicit_feedback="none"), rng, hyper=hyper)
    for rows in chain.rows:
        rows[:] = 0.0
    draws = np.empty((20000, 3))
    for t in range(len(draws)):
        chain.sample_mean_and_noise(rng)
        draws[t] = chain.mu, chain.alpha, chain.alpha * (chain.mu - r.mean()) ** 2
    a = hyper.noise_shape + len(r) / 2
    grid = np.linspace(-30, 30, 60001)
    rate = hyper.noise_rate + 0.5 * ((r[None, :] - grid[:, None]) ** 2).sum(1)
    log_post = -0.5 * hyper.mu_precision * (grid - hyper.mu_mean) ** 2 - a * np.log(rate)
    w = np.exp(log_post - log_post.max())
    w /= w.sum()
    expected = [w @ grid, w @ (a / rate), w @ (a / rate * (grid - r.mean()) ** 2)]  # E[alpha | mu] = a / rate
    batches = draws.reshape(100, -1, 3).mean(1)
    z = (draws.mean(0) - expected) / (batches.std(0, ddof=1) / 10)
    assert np.all(np.abs(z) < 4.5), z


@pytest.mark.slow
def test_normal_wishart_draws_have_the_posterior_covariance():
    """Few rows, so nu* is small and an off-by-one or a missing normal shows; Var(Lam_ij) = nu (W_ij^2 + W_ii W_jj),
    Cov(mu) = E[(beta* Lam)^-1] = (W*)^-1 / (beta* (nu* - d - 1))."""
    rng = np.random.default_rng(2)
    X = rng.normal([0.5, -1.0, 0.2], [1.0, 0.5, 0.8], (4, 3))
    beta0, nu0, (n, d) = 2.0, 4, X.shape
    xbar = X.mean(0)
    W = np.linalg.inv(np.eye(d) + (X - xbar).T @ (X - xbar) + beta0 * n / (beta0 + n) * np.outer(xbar, xbar))
    nu, beta = nu0 + n, beta0 + n
    draws = [gibbs.sample_normal_wishart(X, beta0, np.eye(d), nu0, rng) for _ in range(20000)]
    Lams = np.array([Lam for Lam, _ in draws])
    mus = np.array([np.linalg.solve(Lam, Lam_mu) for Lam, Lam_mu in draws])
    scale = np.sqrt(np.outer(np.diag(W), np.diag(W)))
    np.testing.assert_allclose(Lams.mean(0) / scale, nu * W / scale, atol=0.03 * nu)
    var = nu * (W**2 + np.outer(np.diag(W), np.diag(W)))
    np.testing.assert_allclose(Lams.reshape(len(Lams), -1).var(0), var.ravel(), rtol=0.06)
    np.testing.assert_allclose(mus.mean(0), n * xbar / beta, atol=0.03)
    cov = np.linalg.inv(W) / (beta * (nu - d - 1))
    np.testing.assert_allclose(np.cov(mus.T), cov, atol=0.06 * np.abs(cov).max())


def test_the_fit_averages_exactly_the_sweeps_after_burn_in():
    """A chain rerun by hand from the same seed: the estimator's means are those of sweeps 4-7, not 0-7."""
    u, i, r = planted(seed=8)
    model = npmf.BayesianMatrixFactorization(
        n_factors=2, epochs=8, burn_in=4, n_kept_samples=None, implicit_feedback="both", random_state=3
    ).fit(u, i, r)
    uc, ic = model._codes(model.user_ids_, u), model._codes(model.item_ids_, i)
    rng = np.random.default_rng(3)
    chain = Chain(uc.astype(np.int32), ic.astype(np.int32), r, len(model.user_ids_), len(model.item_ids_),
                  model._config(), rng)  # fmt: skip
    kept = []
    for _ in range(8):
        chain.sweep(rng)
        kept.append((chain.rows[0].copy(), chain.rows[1].copy(), chain.mu))
    X = np.mean([x for x, _, _ in kept[4:]], axis=0)
    Y = np.mean([y for _, y, _ in kept[4:]], axis=0)
    assert model.n_samples_ == 4
    np.testing.assert_allclose(model.user_bias_, X[:, 0], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(model.item_factor_means_, Y[:, 1:], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(model.global_mean_, np.mean([m for _, _, m in kept[4:]]), rtol=1e-12)
    emb = model.item_embeddings()
    assert emb.shape == (len(model.item_ids_), 2) and list(emb.index) == list(model.item_ids_)


@pytest.mark.parametrize("implicit", ["users", "both"])
def test_implicit_feedback_sides(implicit):
    """ "both" gives the items an offset of their own that moves, "users" leaves the items' rows their own."""
    u, i, r = planted(seed=9)
    config = GibbsConfig(n_factors=2, implicit_feedback=implicit)
    rng = np.random.default_rng(0)
    chain = Chain(u - 100, i - 500, r, 40, 30, config, rng)
    for _ in range(3):
        chain.sweep(rng)
    assert np.abs(chain.offsets[0]).max() > 0
    assert (chain.offsets[1].size > 0 and np.abs(chain.offsets[1]).max() > 0) == (implicit == "both")
    assert len(chain.priors) == {"users": 3, "both": 4}[implicit]
