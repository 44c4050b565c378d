"""The estimator: contract, determinism, ids, persistence, incremental training, ranking."""

import numpy as np
import pandas as pd
import pytest
from helpers import planted

import npmf
from npmf import MatrixFactorization, metrics


def test_estimator_contract():
    model = MatrixFactorization(n_factors=5, learning_rate=0.01)
    params = model.get_params()
    assert params["n_factors"] == 5 and params["learning_rate"] == 0.01 and params["epochs"] == 100
    assert model.set_params(epochs=7) is model and model.epochs == 7
    with pytest.raises(ValueError, match="invalid parameter 'bogus'"):
        model.set_params(bogus=1)
    copy = npmf.clone(model)
    assert copy is not model and copy.get_params() == model.get_params()
    # __init__ only stores: an invalid value is accepted until fit.
    MatrixFactorization(n_factors=-1)


def test_defaults_are_the_keras_recipe():
    p = MatrixFactorization().get_params()
    assert (p["n_factors"], p["epochs"], p["batch_size"], p["optimizer"]) == (3, 100, 32, "adam")
    assert (p["learning_rate"], p["beta_1"], p["beta_2"], p["epsilon"], p["init_scale"]) == (
        0.001,
        0.9,
        0.999,
        1e-7,
        0.05,
    )
    assert MatrixFactorization.from_preset("seed").get_params() == p


def test_fit_shapes_history_and_embeddings():
    users = np.array(["ann", "bob", "ann", "cy"])
    items = np.array([10, 20, 30, 10])
    model = MatrixFactorization(n_factors=4, epochs=3, random_state=0).fit(users, items, [5, 3, 4, 1])
    assert model.user_factors_.shape == (3, 4) and model.item_factors_.shape == (3, 4)
    assert list(model.user_ids_) == ["ann", "bob", "cy"]  # category-code order
    assert set(model.history_) == {"loss", "seconds"} and len(model.history_["loss"]) == 3
    emb = model.item_embeddings()
    assert list(emb.index) == [10, 20, 30] and emb.shape == (3, 4)
    np.testing.assert_array_equal(emb.loc[20].to_numpy(), model.item_factors_[1])
    assert model.user_embeddings().index.name == "user_id"
    assert np.all(
        np.abs(
            MatrixFactorization(epochs=1, learning_rate=1e-12, random_state=0)
            .fit(users, items, [5, 3, 4, 1])
            .user_factors_
        )
        <= 0.05
    )


@pytest.mark.parametrize("optimizer", ["adam", "lazy_adam", "sgd"])
def test_same_seed_is_bit_identical(optimizer):
    u, i, r = planted()
    fits = [
        MatrixFactorization(optimizer=optimizer, epochs=3, batch_size=16, n_threads=1, random_state=7).fit(u, i, r)
        for _ in range(2)
    ]
    np.testing.assert_array_equal(fits[0].user_factors_, fits[1].user_factors_)
    np.testing.assert_array_equal(fits[0].item_factors_, fits[1].item_factors_)
    assert fits[0].history_["loss"] == fits[1].history_["loss"]
    other = MatrixFactorization(optimizer=optimizer, epochs=3, batch_size=16, n_threads=1, random_state=8).fit(u, i, r)
    assert not np.array_equal(other.user_factors_, fits[0].user_factors_)


def test_learns_planted_low_rank_data():
    u, i, r = planted(noise=0.1)
    model = MatrixFactorization(n_factors=2, epochs=60, batch_size=16, learning_rate=0.02, biases=True, random_state=0)
    model.fit(u, i, r)
    assert model.history_["loss"][-1] < 0.1 * model.history_["loss"][0]
    assert metrics.rmse(r, model.predict(u, i)) < 0.35


def test_unknown_ids_fall_back_to_what_is_known():
    u, i, r = planted()
    plain = MatrixFactorization(epochs=2, random_state=0).fit(u, i, r)
    pred = plain.predict([100, -5, -5], [500, 500, -7])
    assert np.all(np.isfinite(pred))
    assert pred[1] == pred[2] == pytest.approx(r.mean())
    biased = MatrixFactorization(epochs=5, biases=True, learning_rate=0.01, random_state=0).fit(u, i, r)
    p_new_user, p_new_item, p_both = biased.predict([-5, 100, -5], [500, -7, -7])
    assert p_new_user == pytest.approx(biased.global_mean_ + biased.item_bias_[0])
    assert p_new_item == pytest.approx(biased.global_mean_ + biased.user_bias_[0])
    assert p_both == pytest.approx(biased.global_mean_)


def test_predict_clip_to_training_range():
    u, i, r = planted()
    model = MatrixFactorization(epochs=2, random_state=0).fit(u, i, r)
    clipped = model.predict(u, i, clip=True)
    assert clipped.min() >= r.min() and clipped.max() <= r.max()


def test_save_load_round_trip(tmp_path):
    u, i, r = planted()
    model = MatrixFactorization(epochs=3, biases=True, reg=0.01, random_state=0).fit(u.astype(str), i, r)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = MatrixFactorization.load(path)
    np.testing.assert_array_equal(loaded.predict(u.astype(str), i), model.predict(u.astype(str), i))
    assert loaded.get_params() == model.get_params()
    assert loaded.history_ == model.history_
    pd.testing.assert_frame_equal(loaded.recommend("101", n=5), model.recommend("101", n=5))
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]  # no temporary file left


def test_partial_fit_adds_a_new_user_and_keeps_old_ones():
    u, i, r = planted(n_ratings=1500, noise=0.1)
    new = u == 100
    model = MatrixFactorization(
        n_factors=2, epochs=40, batch_size=16, learning_rate=0.02, biases=True, optimizer="lazy_adam", random_state=0
    )
    model.fit(u[~new], i[~new], r[~new])
    assert 100 not in set(model.user_ids_)
    before_new = metrics.rmse(r[new], model.predict(u[new], i[new]))
    before_old = metrics.rmse(r[~new], model.predict(u[~new], i[~new]))
    steps = model.n_steps_
    model.partial_fit(u, i, r, epochs=10)
    assert model.user_ids_[-1] == 100 and model.user_factors_.shape[0] == 40
    assert model.n_steps_ > steps  # Adam's step count carried over
    after_new = metrics.rmse(r[new], model.predict(u[new], i[new]))
    after_old = metrics.rmse(r[~new], model.predict(u[~new], i[~new]))
    assert after_new < 0.7 * before_new
    assert after_old < before_old + 0.02


def test_partial_fit_on_unfitted_model_fits():
    u, i, r = planted()
    model = MatrixFactorization(epochs=50, random_state=0).partial_fit(u, i, r, epochs=2)
    assert len(model.history_["loss"]) == 2 and model.epochs == 50


def test_validation_history_and_early_stopping():
    u, i, r = planted(n_ratings=1200, noise=0.5)
    tr, va = slice(0, 1000), slice(1000, None)
    model = MatrixFactorization(
        n_factors=8,
        epochs=200,
        batch_size=8,
        learning_rate=0.05,
        optimizer="lazy_adam",
        early_stopping_patience=3,
        random_state=0,
    )
    model.fit(u[tr], i[tr], r[tr], validation_data=(u[va], i[va], r[va]))
    h = model.history_
    assert len(h["val_loss"]) == len(h["loss"]) < 200  # it stopped early
    assert h["val_rmse"] == pytest.approx(np.sqrt(h["val_loss"]))
    best = int(np.argmin(h["val_loss"]))
    assert model.best_epoch_ == best and len(h["loss"]) == best + 1 + 3
    restored = metrics.rmse(r[va], model.predict(u[va], i[va]))
    assert restored == pytest.approx(h["val_rmse"][best], rel=1e-9)


def test_recommend_and_similar_items():
    u, i, r = planted()
    model = MatrixFactorization(n_factors=2, epochs=20, learning_rate=0.02, biases=True, random_state=0).fit(u, i, r)
    top = model.recommend(100, n=5)
    assert list(top.columns) == ["user_id", "rank", "item_id", "score"] and len(top) == 5
    assert top.score.is_monotonic_decreasing
    seen = set(i[u == 100])
    assert not seen & set(top.item_id)
    all_items = model.recommend(100, n=1000, exclude_seen=False, min_item_ratings=0, clip=False)
    assert len(all_items) == 30
    np.testing.assert_allclose(all_items.score, model.predict(np.full(30, 100), all_items.item_id))
    sim = model.similar_items(500, n=3)
    assert 500 not in set(sim.item_id) and sim.similarity.between(-1, 1).all()
    H = model.item_embeddings()
    cos = H.loc[sim.item_id[0]] @ H.loc[500] / np.linalg.norm(H.loc[sim.item_id[0]]) / np.linalg.norm(H.loc[500])
    assert sim.similarity[0] == pytest.approx(cos)
    with pytest.raises(ValueError, match="item 'nope' was not in the training data"):
        model.similar_items("nope")


def test_half_star_scale():
    u, i, r = planted()
    r = np.clip(np.round(r * 2) / 2, 0.5, 5.0)
    model = MatrixFactorization(epochs=20, biases=True, learning_rate=0.01, random_state=0).fit(u, i, r)
    assert model.rating_range_ == (r.min(), r.max())
    pred = model.predict(u, i, clip=True)
    assert metrics.rounded_mae(r, pred, step=0.5) <= metrics.rounded_mae(r, pred, step=1.0) + 0.1


def test_float32():
    u, i, r = planted()
    model = MatrixFactorization(epochs=5, dtype="float32", optimizer="lazy_adam", random_state=0).fit(u, i, r)
    assert model.user_factors_.dtype == np.float32 and model.predict(u, i).dtype == np.float64
    ref = MatrixFactorization(epochs=5, optimizer="lazy_adam", random_state=0).fit(u, i, r)
    np.testing.assert_allclose(model.history_["loss"], ref.history_["loss"], rtol=1e-3)


def test_divergence_stops_and_leaves_the_model_as_it_was():
    u, i, r = planted()
    model = MatrixFactorization(epochs=50, optimizer="sgd", learning_rate=1e4, random_state=0)
    with pytest.raises(FloatingPointError, match="learning_rate=10000.0"):
        model.fit(u, i, r)
    assert not hasattr(model, "user_factors_")  # a failed fit of an unfitted model leaves it unfitted
