"""fold_in: the closed-form rows against brute-force solves, and nothing else moves."""

import numpy as np
import pandas as pd
import pytest

import npmf
from npmf.bayes import gibbs
from npmf.core.fold_in import posterior_means, posterior_means_reference
from npmf.sgd import gradients


def _data(seed=0):
    df = npmf.make_ratings(40, 30, 500, n_factors=3, random_state=seed)
    return df.user_id.to_numpy(), df.item_id.to_numpy(), df.rating.to_numpy()


def _problem(rng, n_rows=6, d=4, n=30):
    Z = rng.normal(size=(n, d))
    t = rng.normal(size=n)
    rows = rng.integers(0, n_rows - 1, n)  # the last row has no ratings
    return Z, t, rows, n_rows, d


@pytest.mark.parametrize("prior", ["ridge", "gaussian", "none", "ridge-wide", "gaussian-wide"])
def test_posterior_means_equals_the_least_squares_reference(prior):
    rng = np.random.default_rng(1)
    Z, t, rows, n_rows, d = _problem(rng, d=12 if prior.endswith("wide") else 4)  # wide: fewer ratings than d
    prior = prior.removesuffix("-wide")
    scale = None
    if prior == "ridge":  # n_u * lambda: the last row, without ratings, has no penalty and gets zero
        Lam, Lam_mu, alpha, scale = 0.3 * np.eye(d), np.zeros(d), 1.0, np.bincount(rows, minlength=n_rows)
    elif prior == "gaussian":
        A = rng.normal(size=(d, d))
        Lam, Lam_mu, alpha, scale = A @ A.T + np.eye(d), rng.normal(size=d), 2.5, rng.uniform(0.5, 2, n_rows)
    else:
        Lam, Lam_mu, alpha = np.zeros((d, d)), np.zeros(d), 1.0
        rows = np.arange(len(t)) % 3  # 10 ratings for each of 3 rows, 4 unknowns: full rank
        n_rows = 3
    x = posterior_means(Z, t, rows, n_rows, alpha, Lam, Lam_mu, scale)
    ref = posterior_means_reference(Z, t, rows, n_rows, alpha, Lam, Lam_mu, scale)
    if prior == "ridge":
        assert np.array_equal(x[-1], np.zeros(d))
    np.testing.assert_allclose(x, ref, rtol=1e-10, atol=1e-12)


def test_rank_deficient_rows_get_the_minimum_norm_solution():
    rng = np.random.default_rng(2)
    Z, t = rng.normal(size=(2, 4)), rng.normal(size=2)  # 2 ratings, 4 unknowns, no L2
    x = posterior_means(Z, t, np.zeros(2, np.int64), 1, 1.0, np.zeros((4, 4)), np.zeros(4))
    np.testing.assert_allclose(x[0], np.linalg.pinv(Z) @ t, atol=1e-12)
    np.testing.assert_allclose(Z @ x[0], t, atol=1e-12)  # fits exactly


@pytest.mark.parametrize("biases,reg", [(True, 0.05), (False, 0.05), (True, 0.0)])
def test_sgd_fold_in_minimises_the_users_part_of_the_training_loss(biases, reg):
    u, i, r = _data()
    model = npmf.MatrixFactorization(n_factors=3, epochs=3, learning_rate=0.01, biases=biases, reg=reg,
                                     random_state=0).fit(u, i, r)  # fmt: skip
    rng = np.random.default_rng(3)
    items = rng.choice(model.item_ids_, 8, replace=False)
    ratings = rng.integers(1, 6, 8).astype(float)
    model.fold_in(["new"] * 8 if model.user_ids_.dtype.kind in "US" else [999] * 8, items, ratings)
    q = len(model.user_ids_) - 1
    uu = np.full(8, q)
    ii = model._codes(model.item_ids_, items)
    mu = model.global_mean_ if biases else 0.0
    # The training loss over the user's ratings (one batch of them), its gradient in the user's row is zero.
    e = gradients.errors(model.user_factors_, model.item_factors_, model.user_bias_, model.item_bias_, mu, uu, ii,
                         ratings)  # fmt: skip
    gW, _, gbu, _ = gradients.gradients(model.user_factors_, model.item_factors_, model.user_bias_,
                                        model.item_bias_, uu, ii, e, reg)  # fmt: skip
    np.testing.assert_allclose(gW[q], 0.0, atol=1e-10)
    if biases:
        np.testing.assert_allclose(gbu[q], 0.0, atol=1e-10)
    else:  # no bias to solve: it stays zero
        assert model.user_bias_[q] == 0.0


def test_fold_in_changes_no_other_row_and_grows_the_id_table():
    u, i, r = _data()
    model = npmf.MatrixFactorization(n_factors=3, epochs=2, biases=True, reg=0.02, random_state=0).fit(u, i, r)
    before = {n: getattr(model, n).copy() for n in ("user_factors_", "item_factors_", "user_bias_", "item_bias_",
                                                    "user_ids_", "item_ids_")}  # fmt: skip
    old_pred = model.predict(u, i)
    known = model.user_ids_[3]
    users = np.array([9001, known, 9002, 9001, 9003])
    items = np.array([model.item_ids_[0], model.item_ids_[1], model.item_ids_[2], model.item_ids_[4], -77])
    model.fold_in(users, items, [5.0, 1.0, 4.0, 3.0, 2.0])
    M = len(before["user_ids_"])
    np.testing.assert_array_equal(model.user_ids_, np.concatenate([before["user_ids_"], [9001, 9002, 9003]]))
    changed = np.r_[np.arange(M) != 3, np.zeros(3, bool)]
    assert np.array_equal(model.user_factors_[:M][changed[:M]], before["user_factors_"][changed[:M]])
    assert np.array_equal(model.user_bias_[:M][changed[:M]], before["user_bias_"][changed[:M]])
    for n in ("item_factors_", "item_bias_", "item_ids_"):
        assert np.array_equal(getattr(model, n), before[n])
    other = u != known
    assert np.array_equal(model.predict(u[other], i[other]), old_pred[other])  # bit for bit
    assert not np.array_equal(model.user_factors_[3], before["user_factors_"][3])  # the known user re-solved
    # 9003 rated only an unknown item: it predicts as an unknown user does.
    assert model.predict([9003], [model.item_ids_[0]])[0] == model.predict([123456], [model.item_ids_[0]])[0]
    # The folded-in items are now seen: recommend leaves them out.
    assert model.item_ids_[0] not in set(model.recommend(9001, n=100).item_id)
    assert len(model._m[0]) == len(model.user_ids_) and len(model._v[2]) == len(model.user_ids_)
    model.partial_fit(users[:4], items[:4], [5.0, 1.0, 4.0, 3.0])  # the grown state trains on


def test_fold_in_bad_input_changes_nothing():
    u, i, r = _data()
    model = npmf.MatrixFactorization(n_factors=3, epochs=1, random_state=0).fit(u, i, r)
    ids, W = model.user_ids_.copy(), model.user_factors_.copy()
    with pytest.raises(ValueError, match="ratings must be finite"):
        model.fold_in([9001], [model.item_ids_[0]], [np.nan])
    with pytest.raises(ValueError, match="users must be ids of the model's kind"):
        model.fold_in(["abc"], [model.item_ids_[0]], [3.0])
    with pytest.raises(RuntimeError, match="not fitted"):
        npmf.MatrixFactorization().fold_in([1], [1], [3.0])
    assert np.array_equal(model.user_ids_, ids) and np.array_equal(model.user_factors_, W)


def test_fold_in_recovers_a_users_row_better_than_the_unknown_fallback():
    df = npmf.make_ratings(300, 80, 12000, n_factors=3, noise=0.3, random_state=4)
    new = df.user_id == df.user_id.iloc[0]
    train, mine = df[~new], df[new]
    model = npmf.MatrixFactorization(n_factors=3, epochs=15, optimizer="lazy_adam", learning_rate=0.01,
                                     biases=True, reg=0.02, random_state=0).fit(train.user_id, train.item_id,
                                                                                train.rating)  # fmt: skip
    half = len(mine) // 2
    fallback = npmf.metrics.rmse(mine.rating[half:], model.predict(mine.user_id[half:], mine.item_id[half:]))
    model.fold_in(mine.user_id[:half], mine.item_id[:half], mine.rating[:half])
    folded = npmf.metrics.rmse(mine.rating[half:], model.predict(mine.user_id[half:], mine.item_id[half:]))
    assert folded < 0.8 * fallback


def test_bayes_fold_in_is_each_samples_conditional_mean_averaged():
    u, i, r = _data()
    model = npmf.BayesianMatrixFactorization(n_factors=2, epochs=8, burn_in=3, n_kept_samples=4,
                                             implicit_feedback="none", random_state=0).fit(u, i, r)  # fmt: skip
    before_W, before_H = model.user_factors_.copy(), model.item_factors_.copy()
    rng = np.random.default_rng(5)
    items = rng.choice(model.item_ids_, 6, replace=False)
    ratings = rng.integers(1, 6, 6).astype(float)
    model.fold_in([777] * 6, items, ratings)
    S, k = model.n_samples_, 2
    ii = model._codes(model.item_ids_, items)
    alpha, Lam, Lam_mu = model._fold_in_prior
    assert len(alpha) == S and Lam.shape == (S, k + 1, k + 1)
    # Brute force: the sampler's own row conditional with zero noise is its mean.
    expect_w, expect_b = [], 0.0
    for s in range(S):
        H = before_H[:, s * k : (s + 1) * k] * np.sqrt(S)
        Y = np.column_stack([model.item_bias_, H])
        X = np.zeros((1, k + 1))
        ptr = np.array([0, len(ii)])
        gibbs.sample_rows(
            X, Y, ptr, ii, ratings - model.global_mean_, alpha[s], Lam[s], Lam_mu[s], np.zeros((1, k + 1))
        )
        expect_w.append(X[0, 1:] / np.sqrt(S))
        expect_b += X[0, 0] / S
    np.testing.assert_allclose(model.user_factors_[-1], np.concatenate(expect_w), rtol=1e-10, atol=1e-12)
    assert model.user_bias_[-1] == pytest.approx(expect_b, rel=1e-10)
    assert np.array_equal(model.user_factors_[:-1], before_W)


def test_bayes_fold_in_priors_survive_save_and_load(tmp_path):
    u, i, r = _data()
    model = npmf.BayesianMatrixFactorization(n_factors=2, epochs=6, burn_in=2, n_kept_samples=3,
                                             random_state=0).fit(u, i, r)  # fmt: skip
    model.save(tmp_path / "b.npz")
    loaded = npmf.load(tmp_path / "b.npz")
    args = ([555, 555], model.item_ids_[:2], [4.0, 2.0])
    model.fold_in(*args)
    loaded.fold_in(*args)
    assert np.array_equal(model.user_factors_, loaded.user_factors_)
    assert np.array_equal(model.user_bias_, loaded.user_bias_)
    loaded._fold_in_prior = None  # a file from before fold_in
    with pytest.raises(ValueError, match="refit it"):
        loaded.fold_in(*args)


def test_fold_in_with_string_ids():
    df = pd.DataFrame({"u": ["a", "b", "c", "a"], "i": ["x", "y", "x", "z"], "r": [5.0, 3, 4, 1]})
    model = npmf.MatrixFactorization(n_factors=2, epochs=2, reg=0.1, random_state=0).fit(df.u, df.i, df.r)
    model.fold_in(["newcomer", "newcomer"], ["x", "y"], [5.0, 1.0])
    assert model.user_ids_[-1] == "newcomer" and len(model.user_ids_) == 4
    assert model.predict(["newcomer"], ["x"])[0] != model.predict(["stranger"], ["x"])[0]


def test_a_known_user_is_re_solved_from_the_given_ratings_alone():
    u, i, r = _data()
    model = npmf.MatrixFactorization(n_factors=3, epochs=2, biases=True, reg=0.05, dtype="float32",
                                     random_state=0).fit(u, i, r)  # fmt: skip
    known, items, ratings = model.user_ids_[2], model.item_ids_[:6], [5.0, 4, 1, 2, 3, 3]
    model.fold_in([known] * 6 + [424242] * 6, list(items) * 2, ratings * 2)
    assert len(model.user_ids_) == 41 and model.user_factors_.dtype == np.float32
    assert np.array_equal(model.user_factors_[2], model.user_factors_[-1])  # as if new: old ratings ignored
    assert model.user_bias_[2] == model.user_bias_[-1]
