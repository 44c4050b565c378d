"""make_ratings: planted MovieLens-like data; read_ratings on MovieLens 1M/10M's '::' format."""

import numpy as np
import pandas as pd
import pytest

from npmf.data import make_ratings, read_ratings


def test_shape_values_and_unique_pairs():
    df = make_ratings(500, 300, 20_000, random_state=0)
    assert list(df.columns) == ["user_id", "item_id", "rating"] and len(df) == 20_000
    assert df.user_id.between(0, 499).all() and df.item_id.between(0, 299).all()
    assert set(df.rating.unique()) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert not df.duplicated(["user_id", "item_id"]).any()
    assert df.equals(df.sort_values(["user_id", "item_id"]))


def test_reproducible_and_seed_dependent():
    a, b = make_ratings(100, 80, 2000, random_state=3), make_ratings(100, 80, 2000, random_state=3)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(make_ratings(100, 80, 2000, random_state=4))


def test_popularity_is_skewed_like_movielens():
    df = make_ratings(2000, 1000, 100_000, random_state=0)
    items = np.sort(np.bincount(df.item_id, minlength=1000))[::-1]
    users = np.sort(np.bincount(df.user_id, minlength=2000))[::-1]
    assert items[:10].sum() > 10 * items[-10:].sum() and items[0] > 10 * np.median(items)
    assert users[0] > 5 * np.median(users)


def test_noise_level_is_the_planted_models_loss():
    quiet = make_ratings(300, 200, 10_000, noise=0.0, random_state=0).attrs["noise_mse"]
    loud = make_ratings(300, 200, 10_000, noise=1.0, random_state=0).attrs["noise_mse"]
    assert 0.05 < quiet < 0.12  # rounding alone: about 1/12, a little less with clipping
    assert 0.7 < loud < 1.1


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_ratings=60 is more than half"):
        make_ratings(10, 10, 60)
    with pytest.raises(ValueError, match="noise must be"):
        make_ratings(10, 10, 5, noise=-1)
    with pytest.raises(TypeError, match="n_users must be an integer"):
        make_ratings(10.5, 10, 5)


def test_read_ratings_reads_the_double_colon_format(tmp_path):
    df = make_ratings(300, 200, 5000, random_state=0)
    path = tmp_path / "ratings.dat"
    ts = np.arange(len(df)) + 978300760
    lines = [f"{u + 1}::{i + 1}::{int(r)}::{t}" for u, i, r, t in zip(df.user_id, df.item_id, df.rating, ts)]
    path.write_text("\n".join(lines) + "\n")
    got = read_ratings(path)
    assert list(got.columns) == ["user_id", "item_id", "rating", "timestamp"]
    np.testing.assert_array_equal(got.user_id, df.user_id + 1)
    np.testing.assert_array_equal(got.item_id, df.item_id + 1)
    np.testing.assert_array_equal(got.rating, df.rating)
    np.testing.assert_array_equal(got.timestamp, ts)


def test_pair_kernels_equal_numpy():
    from npmf.data import _synthetic_kernels as _synthetic

    rng = np.random.default_rng(0)
    u, i = rng.integers(0, 40, 3000).astype(np.int32), rng.integers(0, 30, 3000).astype(np.int32)
    keys = np.unique(u.astype(np.int64) * 30 + i)
    got_u, got_i = _synthetic.unique_pairs(u, i, 40, 30)
    np.testing.assert_array_equal(got_u.astype(np.int64) * 30 + got_i, keys)
    a_u, a_i = _synthetic.unique_pairs(u[:2000], i[:2000], 40, 30)
    b_u, b_i = _synthetic.unique_pairs(u[1000:], i[1000:], 40, 30)
    m_u, m_i = _synthetic.merge_unique(a_u, a_i, b_u, b_i)
    np.testing.assert_array_equal(m_u.astype(np.int64) * 30 + m_i, keys)


def test_planted_ratings_kernel_equals_its_formula():
    from npmf.data import _synthetic_kernels as _synthetic

    rng = np.random.default_rng(1)
    u, i = rng.integers(0, 20, 500).astype(np.int32), rng.integers(0, 10, 500).astype(np.int32)
    W, H = rng.normal(0, 0.7, (20, 4)).astype(np.float32), rng.normal(0, 0.7, (10, 4)).astype(np.float32)
    bu, bi, eps = rng.normal(0, 0.3, 20), rng.normal(0, 0.5, 10), rng.normal(0, 0.5, 500)
    score = 3.5 + bu[u] + bi[i] + np.sum(W[u].astype(float) * H[i], axis=1)
    rating = eps.copy()
    mse = _synthetic.planted_ratings(u, i, W, H, bu, bi, 3.5, rating, block=64)
    np.testing.assert_array_equal(rating, np.clip(np.rint(score + eps), 1, 5))
    assert mse == pytest.approx(np.mean((rating - score) ** 2), rel=1e-6)
