"""recommend and similar_items: the top-n kernel against its NumPy twin, and against brute force over predict."""

import numpy as np
import pandas as pd
import pytest

from npmf import MatrixFactorization
from npmf.core import _topk
from tests.helpers import planted


def random_model(biases=True, seed=0, dtype="float64"):
    """A fitted model whose factors and biases are then drawn at random, so that scores rarely tie."""
    u, i, r = planted(n_users=40, n_items=30, n_ratings=500, seed=seed)
    model = MatrixFactorization(n_factors=4, epochs=1, biases=biases, dtype=dtype, random_state=0).fit(u, i, r)
    rng = np.random.default_rng(seed)
    model.user_factors_[...] = rng.normal(size=model.user_factors_.shape)
    model.item_factors_[...] = rng.normal(size=model.item_factors_.shape)
    if biases:
        model.user_bias_[...] = rng.normal(size=model.user_bias_.shape)
        model.item_bias_[...] = rng.normal(size=model.item_bias_.shape)
    return model, (u, i, r)


def brute_force(model, user, n, exclude_seen, train, min_count=0, items=None):
    """The top n by predict over the allowed items: sorted by score, ties by item code."""
    u, i, _ = train
    candidates = list(model.item_ids_) if items is None else list(items)
    counts = pd.Series(i).value_counts()
    candidates = [c for c in candidates if counts.get(c, 0) >= min_count]
    if exclude_seen:
        seen = set(i[u == user])
        candidates = [c for c in candidates if c not in seen]
    scores = model.predict(np.full(len(candidates), user), candidates)
    codes = model._codes(model.item_ids_, candidates)
    order = np.lexsort((codes, -scores))[:n]
    return np.asarray(candidates)[order], scores[order]


def random_block(rng, B=7, N=50, ties=False):
    dots = rng.normal(size=(B, N))
    if ties:
        dots = np.round(dots, 1)  # many equal scores: the order must still agree
    offsets = rng.normal(size=B)
    bi = np.round(rng.normal(size=N), 1) if ties else rng.normal(size=N)
    allowed = rng.random(N) < 0.8
    users = rng.integers(-1, 5, B)
    seen_u = rng.integers(0, 5, 60)
    seen_i = rng.integers(0, N, 60)
    indptr, indices = _topk.seen_csr(seen_u, seen_i, 5)
    return dots, offsets, bi, allowed, users, indptr, indices


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("n", [1, 3, 10, 60])
def test_top_n_kernel_equals_numpy_twin(n, ties):
    rng = np.random.default_rng(n)
    args = random_block(rng, ties=ties)
    items, scores, counts = _topk.top_n_numba(*args, n)
    items_np, scores_np, counts_np = _topk.top_n_numpy(*args, n)
    np.testing.assert_array_equal(items, items_np)
    np.testing.assert_allclose(scores, scores_np, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(counts, counts_np)
    # best first, ties by code
    for b in range(len(items)):
        s, j = scores[b, : counts[b]], items[b, : counts[b]]
        assert all((s[x] > s[x + 1]) or (s[x] == s[x + 1] and j[x] < j[x + 1]) for x in range(len(s) - 1))


def test_top_n_blocks_match_one_block(monkeypatch):
    model, _ = random_model()
    whole = model.recommend(model.user_ids_, n=5, clip=False)
    monkeypatch.setattr(_topk, "BLOCK_VALUES", 3 * len(model.item_ids_))  # blocks of 3 users
    pd.testing.assert_frame_equal(model.recommend(model.user_ids_, n=5, clip=False), whole)


@pytest.mark.parametrize("tile, users_per_block", [(1, 1), (7, 3), (29, 40), (30, 2), (31, 5), (10**6, 10**6)])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_tiles_and_blocks_of_any_size_select_what_the_twin_selects(monkeypatch, tile, users_per_block, dtype):
    # 30 items: tiles that split them unevenly, one item at a time, exactly, or all at once;
    # seen items on both sides of every tile edge, duplicate seen pairs, unknown users.
    rng = np.random.default_rng(tile)
    B, N, k, n = 12, 30, 4, 6
    W, H = rng.normal(size=(B, k)).astype(dtype), rng.normal(size=(N, k)).astype(dtype)
    W[-2:] = 0
    users = np.r_[np.arange(B - 2), -1, -1]
    seen_u = np.r_[rng.integers(0, B - 2, 80), [0, 0, 1, 1, 1]]
    seen_i = np.r_[rng.integers(0, N, 80), [6, 7, 28, 29, 29]]
    csr = _topk.seen_csr(seen_u, seen_i, B - 2)
    offsets, bi, allowed = rng.normal(size=B), np.round(rng.normal(size=N), 1), rng.random(N) < 0.9
    want = _topk.top_n(W, H, offsets, bi, users, allowed, csr, n, use_numba=False)
    monkeypatch.setattr(_topk, "ITEM_TILE", tile)
    monkeypatch.setattr(_topk, "BLOCK_VALUES", users_per_block * min(tile, N))
    got = _topk.top_n(W, H, offsets, bi, users, allowed, csr, n)
    if dtype == "float64":
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_allclose(got[1], want[1], rtol=1e-12)
    else:  # float32 products of another width round differently: near-ties may swap
        np.testing.assert_allclose(got[1], want[1], rtol=0, atol=1e-6)
    np.testing.assert_array_equal(got[2], want[2])
    for b in range(B - 2):  # nothing seen is recommended
        assert not set(got[0][b, : got[2][b]]) & set(seen_i[seen_u == b])


def test_seen_csr_sorts_each_users_items_and_top_n_refuses_codes_it_does_not_cover():
    indptr, indices = _topk.seen_csr(np.array([1, 0, 1, 1]), np.array([9, 4, 2, 5]), 3)
    np.testing.assert_array_equal(indptr, [0, 1, 4, 4])
    np.testing.assert_array_equal(indices, [4, 2, 5, 9])
    H = np.ones((10, 2))
    with pytest.raises(ValueError, match="seen pairs cover 3 users"):
        _topk.top_n(np.ones((1, 2)), H, np.zeros(1), np.zeros(10), np.array([3]), np.ones(10, bool),
                    (indptr, indices), 2)  # fmt: skip


@pytest.mark.parametrize("biases", [False, True])
@pytest.mark.parametrize("exclude_seen", [False, True])
def test_recommend_equals_brute_force_over_predict(biases, exclude_seen):
    model, train = random_model(biases=biases)
    users = list(model.user_ids_[:6]) + [99999]  # and an unknown user
    top = model.recommend(users, n=4, exclude_seen=exclude_seen, min_item_ratings=0, clip=False)
    assert list(top.columns) == ["user_id", "rank", "item_id", "score"]
    for user in users:
        got = top[top.user_id == user]
        items, scores = brute_force(model, user, 4, exclude_seen, train)
        assert list(got["rank"]) == [1, 2, 3, 4]
        if user == 99999 and not biases:
            continue  # every item ties at the mean: the lowest codes come first
        np.testing.assert_array_equal(got.item_id, items)
        np.testing.assert_allclose(got.score, scores, rtol=1e-12, atol=1e-12)


def test_recommend_numpy_twin_gives_the_same_frame():
    model, _ = random_model()
    fast = model.recommend(model.user_ids_, n=7)
    slow = model.recommend(model.user_ids_, n=7, use_numba=False)
    pd.testing.assert_frame_equal(fast, slow, rtol=1e-12)


def test_float32_factors_rank_as_predict():
    model, train = random_model(dtype="float32")
    top = model.recommend(model.user_ids_[:3], n=5, min_item_ratings=0, clip=False)
    np.testing.assert_allclose(top.score, model.predict(top.user_id, top.item_id), rtol=1e-5)


def test_min_item_ratings_items_and_clip():
    model, train = random_model()
    u, i, _ = train
    user = model.user_ids_[0]
    top = model.recommend(user, n=5, min_item_ratings=20, clip=False)
    items, scores = brute_force(model, user, 5, True, train, min_count=20)
    np.testing.assert_array_equal(top.item_id, items)
    counts = pd.Series(i).value_counts()
    assert (counts[top.item_id] >= 20).all()
    some = model.item_ids_[::3]
    top = model.recommend(user, n=50, items=some, min_item_ratings=0, clip=False)
    np.testing.assert_array_equal(top.item_id, brute_force(model, user, 50, True, train, items=some)[0])
    clipped = model.recommend(model.user_ids_, n=10)
    raw = model.recommend(model.user_ids_, n=10, clip=False)
    lo, hi = model.rating_range_
    assert clipped.score.between(lo, hi).all() and (raw.score > hi).any()  # random factors overshoot
    # clipping changes the reported scores only, never the order
    np.testing.assert_array_equal(clipped.item_id, raw.item_id)
    np.testing.assert_allclose(clipped.score, raw.score.clip(lo, hi))


def test_string_ids_batch_and_single_id_positional():
    u, i, r = planted()
    u, i = np.char.add("u", u.astype(str)), np.char.add("movie_", i.astype(str))
    model = MatrixFactorization(n_factors=2, epochs=2, random_state=0).fit(u, i, r)
    top = model.recommend(["u196", "u120", "u101"], 3, True, min_item_ratings=0)
    assert list(top.user_id) == ["u196"] * 3 + ["u120"] * 3 + ["u101"] * 3
    one = model.recommend("u120", 3, True, min_item_ratings=0)
    pd.testing.assert_frame_equal(one, top[top.user_id == "u120"].reset_index(drop=True))
    assert not set(one.item_id) & set(i[u == "u120"])


def test_fewer_candidates_than_n():
    model, _ = random_model()
    top = model.recommend(model.user_ids_[:2], n=100, exclude_seen=False, min_item_ratings=0)
    assert len(top) == 2 * len(model.item_ids_)
    assert list(top["rank"][: len(model.item_ids_)]) == list(range(1, len(model.item_ids_) + 1))


def test_similar_items_many_ids_equal_brute_force_cosine():
    model, _ = random_model()
    queries = list(model.item_ids_[[3, 0, 7]])
    sim = model.similar_items(queries, n=4)
    assert list(sim.columns) == ["query_item_id", "rank", "item_id", "similarity"]
    H = model.item_factors_
    for q in queries:
        c = model._codes(model.item_ids_, [q])[0]
        cos = H @ H[c] / (np.linalg.norm(H, axis=1) * np.linalg.norm(H[c]))
        cos[c] = -np.inf
        best = np.argsort(-cos, kind="stable")[:4]
        got = sim[sim.query_item_id == q]
        np.testing.assert_array_equal(got.item_id, model.item_ids_[best])
        np.testing.assert_allclose(got.similarity, cos[best], rtol=1e-12)
    pd.testing.assert_frame_equal(model.similar_items(queries, n=4, use_numba=False), sim, rtol=1e-12)


def test_bad_input_names_the_argument():
    model, _ = random_model()
    with pytest.raises(ValueError, match="n must be"):
        model.recommend(model.user_ids_[0], n=0)
    with pytest.raises(ValueError, match="min_item_ratings must be"):
        model.recommend(model.user_ids_[0], min_item_ratings=-1)
    with pytest.raises(ValueError, match="items holds ids not in the training data"):
        model.recommend(model.user_ids_[0], items=[123456])
    with pytest.raises(ValueError, match="users must be one id or a 1-D list"):
        model.recommend(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="item 'nope' was not in the training data"):
        model.similar_items([model.item_ids_[0], "nope"])


def test_seen_cache_follows_partial_fit():
    model, (u, i, r) = random_model()
    user = model.user_ids_[0]
    before = model.recommend(user, n=30, min_item_ratings=0)
    new_item = before.item_id[0]
    model.partial_fit([user], [new_item], [4.0], epochs=1)
    after = model.recommend(user, n=30, min_item_ratings=0)
    assert new_item not in set(after.item_id)


def test_top_n_puts_openblas_threads_back_as_they_were():
    blas = _topk._openblas()
    if blas is None:
        pytest.skip("numpy's OpenBLAS thread functions were not found")
    get, put = blas
    before = get()
    try:
        put(2)
        model, _ = random_model()
        model.recommend(model.user_ids_, n=3)
        assert get() == 2
    finally:
        put(before)
