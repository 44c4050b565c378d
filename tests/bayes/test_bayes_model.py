"""BayesianMatrixFactorization: the sampler's kernels against their NumPy twins, the
conditionals against their closed forms and Monte Carlo, and the estimator contract."""

import numpy as np
import pytest
from helpers import planted

import npmf
from npmf.bayes import gibbs
from npmf.bayes._kernels import residuals_numba, sample_implicit_numba, sample_rows_numba


def problem(n_rows=9, n_other=7, n=80, k=3, seed=0):
    """A random rows-vs-partners problem: every row has at least one rating."""
    rng = np.random.default_rng(seed)
    rows = np.concatenate([np.arange(n_rows), rng.integers(0, n_rows, n - n_rows)])
    cols = np.concatenate([rng.integers(0, n_other, n - n_other), np.arange(n_other)])
    r = rng.normal(0, 1, n)
    d = k + 1
    A = rng.normal(0, 0.3, (d, d))
    Lam = A @ A.T + np.eye(d)
    return rows, cols, r, rng.normal(0, 0.5, (n_rows, d)), rng.normal(0, 0.5, (n_other, d)), Lam, rng


def test_row_kernel_matches_numpy_twin():
    rows, cols, r, X, Z, Lam, rng = problem()
    ptr, partners, order = gibbs.ratings_by_row(rows, cols, len(X))
    Lam_mu = rng.normal(0, 1, X.shape[1])
    eps = rng.standard_normal(X.shape)
    for S in (None, rng.normal(0, 1, (len(X), X.shape[1] - 1))):
        X_np, X_nb = X.copy(), X.copy()
        gibbs.sample_rows(X_np, Z, ptr, partners, r[order], 1.7, Lam, Lam_mu, eps, S)
        S_nb = np.zeros((len(X), 0)) if S is None else S
        sample_rows_numba(X_nb, Z, ptr, partners, r[order], 1.7, Lam, Lam_mu, S_nb, eps)
        assert not np.allclose(X_np, X)
        np.testing.assert_allclose(X_nb, X_np, rtol=1e-12, atol=1e-12)


def test_residual_kernel_matches_numpy_twin():
    rows, cols, r, X, Z, Lam, rng = problem(seed=9)
    out = np.empty(len(r))
    total, squares = residuals_numba(X, Z, 0.7, rows, cols, r, out)
    expected = gibbs.residuals(X, Z, 0.7, rows, cols, r)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    assert total == pytest.approx(expected.sum(), rel=1e-12) and squares == pytest.approx(
        expected @ expected, rel=1e-12
    )


def test_row_draw_with_zero_noise_is_the_ridge_solution():
    """eps = 0 gives the posterior mean, which is ridge regression on (1, z_j) with offsets c_j."""
    rows, cols, r, X, Z, Lam, rng = problem(seed=3)
    ptr, partners, order = gibbs.ratings_by_row(rows, cols, len(X))
    alpha, Lam_mu = 2.5, rng.normal(0, 1, X.shape[1])
    sample_rows_numba(X, Z, ptr, partners, r[order], alpha, Lam, Lam_mu, np.zeros((len(X), 0)), np.zeros_like(X))
    for q in range(len(X)):
        mine = rows == q
        design = np.column_stack([np.ones(mine.sum()), Z[cols[mine], 1:]])
        target = r[mine] - Z[cols[mine], 0]
        expected = np.linalg.solve(Lam + alpha * design.T @ design, Lam_mu + alpha * design.T @ target)
        np.testing.assert_allclose(X[q], expected, rtol=1e-10, atol=1e-12)


def test_row_draws_have_the_posterior_covariance():
    rows, cols, r, X, Z, Lam, rng = problem(n_rows=1, n=12, seed=5)
    ptr, partners, order = gibbs.ratings_by_row(rows, cols, 1)
    alpha = 3.0
    P = gibbs.row_precision(Z[partners], alpha, Lam)
    draws = np.empty((20000, X.shape[1]))
    for s in range(len(draws)):
        eps = rng.standard_normal(X.shape)
        sample_rows_numba(X, Z, ptr, partners, r[order], alpha, Lam, np.zeros(X.shape[1]), np.zeros((1, 0)), eps)
        draws[s] = X[0]
    cov = np.cov(draws.T)
    np.testing.assert_allclose(cov, np.linalg.inv(P), atol=0.05 * np.abs(np.linalg.inv(P)).max())


def implicit_problem(seed=0, k=3, n_users=8, n_items=6, n=30):
    """Users' effective rows, implicit item factors and priors; user 0 rates item 1 twice."""
    rng = np.random.default_rng(seed)
    users, items = np.divmod(rng.choice(n_users * n_items, n, replace=False), n_items)
    users[:n_users], items[:n_items] = np.arange(n_users), np.arange(n_items)  # everyone rated something
    users, items = np.append(users, 0), np.append(items, 1)
    by_user = gibbs.ratings_by_row(users, items, n_users)
    by_item = gibbs.ratings_by_row(items, users, n_items)
    n_rated = np.diff(by_user[0]).astype(float)
    scale = 1 / np.sqrt(n_rated)
    weight = gibbs.implicit_weights(users, items, scale, n_items)

    def spd(d):
        A = rng.normal(0, 0.5, (d, d))
        return A @ A.T + np.eye(d)

    Lam_X, Lam_Y = spd(k + 1), spd(k)
    priors = ((Lam_X, Lam_X @ rng.normal(0, 1, k + 1)), (Lam_Y, Lam_Y @ rng.normal(0, 1, k)))
    E = rng.normal(0, 1, (n_users, k + 1))
    Y = rng.normal(0, 0.3, (n_items, k))
    S = np.zeros((n_users, k))
    np.add.at(S, users, scale[users, None] * Y[items])
    args = (n_rated, scale, weight, *by_item[:2], *priors)
    return users, items, E, Y, S, args, rng


def test_implicit_kernel_matches_numpy_twin():
    users, items, E, Y0, S0, args, rng = implicit_problem()
    eps = rng.standard_normal(Y0.shape[::-1])
    out = []
    for step in (gibbs.sample_implicit_coordinates, sample_implicit_numba):
        Y, S = Y0.copy(), S0.copy()
        gibbs.sample_implicit(Y, S, E, *args, eps, step=step)
        out.append((Y, S))
    assert not np.allclose(out[0][0], Y0)
    np.testing.assert_allclose(out[1][0], out[0][0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out[1][1], out[0][1], rtol=1e-12, atol=1e-12)
    # s_u still sums the (new) implicit factors of the user's items, counting user 0's repeat twice
    S_new = np.zeros_like(S0)
    np.add.at(S_new, users, args[1][users, None] * out[0][0][items])
    np.testing.assert_allclose(out[0][1], S_new, atol=1e-12)


def implicit_conditional(users, items, E, args):
    """Mean and covariance of all implicit factors given the effective rows, by dense linear algebra (vec row-major)."""
    n_rated, scale, weight, _, _, (Lam_X, Lam_mu_X), (Lam_Y, Lam_mu_Y) = args
    n_users, n_items, k = len(E), len(weight), Lam_Y.shape[0]
    C = np.zeros((n_users, n_items))
    np.add.at(C, (users, items), scale[users])  # s = C Y
    precision = np.kron(np.eye(n_items), Lam_Y) + np.kron(C.T @ C, Lam_X[1:, 1:])
    linear = np.tile(Lam_mu_Y, n_items) + (C.T @ (E @ Lam_X - Lam_mu_X)[:, 1:]).ravel()
    cov = np.linalg.inv(precision)
    return (cov @ linear).reshape(n_items, k), cov


def test_implicit_step_without_noise_converges_to_the_dense_conditional_mean():
    """eps = 0 makes the coordinate sweep Gauss-Seidel on the exact conditional: its fixed point is the mean."""
    users, items, E, Y, S, args, rng = implicit_problem(seed=2)
    mean, _ = implicit_conditional(users, items, E, args)
    eps = np.zeros(Y.shape[::-1])
    for _ in range(400):
        gibbs.sample_implicit(Y, S, E, *args, eps, step=sample_implicit_numba)
    np.testing.assert_allclose(Y, mean, rtol=1e-9, atol=1e-10)


@pytest.mark.slow
def test_implicit_step_leaves_the_dense_conditional_invariant():
    """Draws from the exact conditional, pushed through one step, keep its covariance."""
    users, items, E, Y, S, args, rng = implicit_problem(seed=4, k=2, n_users=5, n_items=4, n=12)
    mean, cov = implicit_conditional(users, items, E, args)
    chol = np.linalg.cholesky(cov)
    draws = []
    for _ in range(20000):
        Y = mean + (chol @ rng.standard_normal(mean.size)).reshape(mean.shape)
        S = np.zeros_like(S)
        np.add.at(S, users, args[1][users, None] * Y[items])
        gibbs.sample_implicit(Y, S, E, *args, rng.standard_normal(Y.shape[::-1]), step=sample_implicit_numba)
        draws.append(Y.ravel().copy())
    draws = np.array(draws)
    np.testing.assert_allclose(draws.mean(0), mean.ravel(), atol=4 * np.sqrt(np.diag(cov).max() / len(draws)))
    np.testing.assert_allclose(np.cov(draws.T), cov, atol=0.05 * np.abs(cov).max())


def test_normal_wishart_draws_have_the_posterior_mean():
    rng = np.random.default_rng(0)
    X = rng.normal([0.5, -1.0], [1.0, 0.5], (50, 2))
    beta0, W0_inv, nu0 = 2.0, np.eye(2), 2
    n = len(X)
    xbar = X.mean(0)
    W_inv = W0_inv + (X - xbar).T @ (X - xbar) + beta0 * n / (beta0 + n) * np.outer(xbar, xbar)
    draws = [gibbs.sample_normal_wishart(X, beta0, W0_inv, nu0, rng) for _ in range(4000)]
    mean_Lam = np.mean([Lam for Lam, _ in draws], axis=0)
    np.testing.assert_allclose(mean_Lam, (nu0 + n) * np.linalg.inv(W_inv), rtol=0.05, atol=0.05)
    mean_mu = np.mean([np.linalg.solve(Lam, Lam_mu) for Lam, Lam_mu in draws], axis=0)
    np.testing.assert_allclose(mean_mu, n * xbar / (beta0 + n), atol=0.03)


def test_noise_precision_and_global_mean_draws():
    rng = np.random.default_rng(1)
    alphas = [gibbs.sample_noise_precision(50.0, 100, 1.0, 1.0, rng) for _ in range(20000)]
    assert np.mean(alphas) == pytest.approx((1 + 50) / (1 + 25), rel=0.02)
    err = rng.normal(0.3, 1.0, 400)
    mus = [gibbs.sample_global_mean(3.0, err, 2.0, rng) for _ in range(20000)]
    assert np.mean(mus) == pytest.approx(3.0 + err.mean(), abs=0.002)
    assert np.std(mus) == pytest.approx(1 / np.sqrt(2.0 * 400), rel=0.03)


@pytest.mark.parametrize("implicit", ["none", "users", "both"])
def test_fit_learns_a_planted_model(implicit):
    u, i, r = planted(n_users=60, n_items=40, n_ratings=1500, k=2, noise=0.1, seed=1)
    test = slice(1300, None)
    model = npmf.BayesianMatrixFactorization(
        n_factors=2, epochs=60, burn_in=20, n_kept_samples=20, implicit_feedback=implicit, random_state=0
    )
    model.fit(u[:1300], i[:1300], r[:1300], validation_data=(u[test], i[test], r[test]))
    rmse = npmf.metrics.rmse(r[test], model.predict(u[test], i[test]))
    baseline = npmf.metrics.rmse(r[test], np.full(len(r[test]), r[:1300].mean()))
    assert rmse < 0.35 * baseline
    assert model.history_["noise_std"][-1] < 0.3  # the sampler finds the noise level (0.1), not the spread
    assert len(model.history_["val_rmse"]) == 60 and model.history_["val_rmse"][-1] == pytest.approx(rmse)
    assert model.user_factors_.shape == (60, 20 * 2) and model.n_samples_ == 20


def test_predictions_average_the_kept_samples():
    """The side-by-side factors over sqrt(S) predict the average of the samples' predictions."""
    u, i, r = planted(seed=2)
    samples = []
    model = npmf.BayesianMatrixFactorization(n_factors=2, epochs=6, burn_in=3, n_kept_samples=3, random_state=0)
    model.fit(u, i, r, callback=lambda epoch, seconds, loss: samples.append(epoch))
    k = 2
    W = model.user_factors_ * np.sqrt(3)
    H = model.item_factors_ * np.sqrt(3)
    uc, ic = model._codes(model.user_ids_, u), model._codes(model.item_ids_, i)
    per_sample = [(W[uc, s * k : (s + 1) * k] * H[ic, s * k : (s + 1) * k]).sum(1) for s in range(3)]
    expected = model.global_mean_ + model.user_bias_[uc] + model.item_bias_[ic] + np.mean(per_sample, axis=0)
    np.testing.assert_allclose(model.predict(u, i), expected, rtol=1e-12)
    assert samples == list(range(6))


@pytest.mark.slow
def test_same_seed_same_model_for_any_thread_count():
    u, i, r = planted(seed=3)
    fits = [
        npmf.BayesianMatrixFactorization(
            epochs=8, burn_in=2, implicit_feedback="both", n_threads=t, random_state=7
        ).fit(u, i, r)
        for t in (1, 2, 1)
    ]
    assert fits[0].n_samples_ == 6  # n_kept_samples (100) is capped by the 6 sweeps after burn-in
    for other in fits[1:]:
        np.testing.assert_array_equal(other.user_factors_, fits[0].user_factors_)
        np.testing.assert_array_equal(other.item_bias_, fits[0].item_bias_)
        assert other.history_["loss"] == fits[0].history_["loss"]


def test_unknown_ids_fall_back_to_the_known_bias():
    u, i, r = planted(seed=4)
    model = npmf.BayesianMatrixFactorization(epochs=5, burn_in=1, random_state=0).fit(u, i, r)
    known_item = i[0]
    code = model._codes(model.item_ids_, [known_item])[0]
    pred = model.predict([-1, -1], [known_item, -7])
    np.testing.assert_allclose(pred, [model.global_mean_ + model.item_bias_[code], model.global_mean_])


def test_save_load_roundtrip_and_class_checks(tmp_path):
    u, i, r = planted(seed=5)
    model = npmf.BayesianMatrixFactorization(epochs=5, burn_in=1, random_state=0).fit(u, i, r)
    path = tmp_path / "bpmf.npz"
    model.save(path)
    for loader in (npmf.BayesianMatrixFactorization.load, npmf.load):
        again = loader(path)
        assert type(again) is npmf.BayesianMatrixFactorization and again.n_samples_ == model.n_samples_
        np.testing.assert_array_equal(again.predict(u, i), model.predict(u, i))
        assert again.recommend(u[0], n=3).equals(model.recommend(u[0], n=3))
    with pytest.raises(ValueError, match="holds a BayesianMatrixFactorization, not a MatrixFactorization"):
        npmf.MatrixFactorization.load(path)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"epochs": 10, "burn_in": 10}, "burn_in must be below epochs"),
        ({"n_kept_samples": 0}, "n_kept_samples must be an integer >= 1"),
        ({"implicit_feedback": True}, "implicit_feedback must be one of"),
        ({"n_factors": 0}, "n_factors must be an integer >= 1"),
        ({"init_scale": -1.0}, "init_scale must be"),
    ],
)
def test_bad_parameters_raise_one_clear_error(params, message):
    u, i, r = planted(seed=6)
    model = npmf.BayesianMatrixFactorization(**params)
    with pytest.raises(ValueError, match=message):
        model.fit(u, i, r)
    assert not hasattr(model, "user_factors_")


def test_unfitted_model_says_so():
    with pytest.raises(RuntimeError, match="this BayesianMatrixFactorization is not fitted yet"):
        npmf.BayesianMatrixFactorization().predict([1], [2])


@pytest.mark.slow
def test_accurate_preset_on_ml100k_u1_short_chain(ml100k_home):
    """A short chain of the accurate preset already beats the recipe's point estimate clearly on u1."""
    ((train, test),) = npmf.load_movielens_folds("ml-100k", data_home=ml100k_home, splits=["u1"])
    model = npmf.from_preset("accurate", epochs=40, burn_in=10, n_kept_samples=30, random_state=0)
    model.fit(train.user_id, train.item_id, train.rating)
    assert npmf.metrics.rmse(test.rating, model.predict(test.user_id, test.item_id)) < 0.93


def test_an_interrupted_refit_leaves_the_fitted_model_whole():
    u, i, r = planted(seed=7)
    model = npmf.BayesianMatrixFactorization(epochs=6, random_state=0).fit(u, i, r)
    before = model.predict(u, i)

    def stop(epoch, seconds, loss):
        if epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        model.fit(u + 1000, i, r, callback=stop)  # other user ids: a half-written model would mix them
    np.testing.assert_array_equal(model.predict(u, i), before)
    assert len(model.history_["loss"]) == 6


def test_embeddings_are_the_posterior_mean_factors_and_survive_save_and_load(tmp_path):
    u, i, r = planted(seed=10)
    model = npmf.BayesianMatrixFactorization(n_factors=2, epochs=6, burn_in=2, implicit_feedback="both").fit(u, i, r)
    S, k = model.n_samples_, 2
    side_by_side = (model.item_factors_ * np.sqrt(S)).reshape(len(model.item_ids_), S, k)
    emb = model.item_embeddings()
    assert emb.shape == (len(model.item_ids_), k) and list(emb.index) == list(model.item_ids_)
    np.testing.assert_allclose(emb.to_numpy(), side_by_side.mean(axis=1), rtol=1e-12, atol=1e-14)
    assert model.user_embeddings().shape == (len(model.user_ids_), k)
    model.save(tmp_path / "m.npz")
    again = npmf.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(again.item_embeddings().to_numpy(), emb.to_numpy())


def test_a_0_1_0_file_gets_the_mean_of_its_samples_as_embeddings():
    from pathlib import Path

    model = npmf.load(Path(__file__).resolve().parents[1] / "fixtures" / "bayes-0.1.0.npz")
    S = model.n_samples_
    k = model.user_factors_.shape[1] // S
    expected = (model.user_factors_ * np.sqrt(S)).reshape(-1, S, k).mean(axis=1)
    np.testing.assert_allclose(model.user_embeddings().to_numpy(), expected, rtol=1e-12)
    assert model.item_embeddings().shape == (len(model.item_ids_), k)
