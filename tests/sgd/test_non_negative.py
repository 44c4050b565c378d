"""``non_negative=True``: every kernel path equals the plain per-step NumPy twin, which projects after each step.

The twin (:func:`npmf.sgd.optimizers.epoch_numpy`) projects all of W and H after every step; the kernels project
only the rows a step wrote, a row as it is first read in a batch and everything at the epoch's end, and dense
Adam's catch-up projects once after replaying a row's absent steps (``docs/derivation.md``, section 9). The
problems are skewed, so some rows are absent for hundreds of steps, and the rate is high enough that many
factors hit zero, some of them while their row is absent.
"""

import copy

import numpy as np
import pytest

from npmf import MatrixFactorization
from npmf.data import make_ratings
from npmf.sgd import _block_kernels, blocks
from npmf.sgd._kernels import SerialEpochs, epoch_numba
from npmf.sgd.config import SGDConfig
from npmf.sgd.optimizers import adam_step_sizes, epoch_numpy
from npmf.sgd.rating_epochs import epoch_rating_numpy
from npmf.sklearn import MatrixFactorizationRegressor

LR = 0.05
MU = 0.5


def _problem(seed=0, M=30, N=12, n=900, k=3):
    """Ratings where user 0 rates once, user 1 twice, item 0 twice, user M-1 never: rows absent for long.

    The factors start in U(-0.5, 0.5), half of them negative, as Keras' start is before its first step.
    Ratings are in -2..2 (the mean ``MU`` is added with biases), so many factors are driven to zero.
    """
    rng = np.random.default_rng(seed)
    u, i = rng.integers(2, M - 1, n), rng.integers(1, N, n)
    u[:3] = [0, 1, 1]
    i[3:5] = 0
    r = rng.integers(-2, 3, n).astype(float)  # some targets below any w.h >= 0: those push factors to zero
    params = [rng.uniform(-0.5, 0.5, (M, k)), rng.uniform(-0.5, 0.5, (N, k))]
    params += [rng.normal(0, 0.1, M), rng.normal(0, 0.1, N)]
    return u, i, r, params


def _config(optimizer, batch_size, fit_bias, reg, n_threads=1, non_negative=True):
    return SGDConfig(optimizer=optimizer, learning_rate=LR, reg=reg, biases=fit_bias, batch_size=batch_size,
                     n_threads=n_threads, non_negative=non_negative)  # fmt: skip


def _states(params, fit_bias):
    params = [p.copy() for p in params]
    if not fit_bias:
        params[2][:], params[3][:] = 0.0, 0.0
    return params, [np.zeros_like(p) for p in params], [np.zeros_like(p) for p in params]


def _assert_equal(got, want):
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def _assert_projected(params, fit_bias):
    """W, H >= 0 with many exact zeros (the projection acted); biases free, some negative."""
    W, H, bu, bi = params
    assert W.min() >= 0 and H.min() >= 0
    assert (W == 0).any() and (H == 0).any()
    if fit_bias:
        assert min(bu.min(), bi.min()) < 0


@pytest.mark.parametrize(
    "optimizer, batch_size, fit_bias, reg, dense_loop",
    [
        ("adam", 8, True, 0.05, False),  # the catch-up: rare rows replayed (and projected) when next needed
        ("adam", 1, False, 0.0, False),  # 900 steps an epoch: rows absent past the catch-up's horizon
        ("adam", 32, True, 0.02, True),  # the plain dense loop, repeated rows in a batch
        ("lazy_adam", 8, True, 0.05, False),
        ("sgd", 1, True, 0.0, False),
        ("sgd", 8, False, 0.05, False),
    ],
)  # fmt: skip
def test_serial_epoch_equals_the_per_step_twin(optimizer, batch_size, fit_bias, reg, dense_loop):
    u, i, r, params = _problem()
    config = _config(optimizer, batch_size, fit_bias, reg)
    ref, mine = _states(params, fit_bias), _states(params, fit_bias)
    rng1, rng2 = np.random.default_rng(3), np.random.default_rng(3)
    n_batches = -(-len(r) // batch_size)
    mu = MU if fit_bias else 0.0
    for epoch in range(3):
        alphas = adam_step_sizes(epoch * n_batches, n_batches, LR, 0.9, 0.999)
        want = epoch_numpy(u, i, r, rng1.permutation(len(r)), batch_size, mu, *ref, alphas, config)
        got = epoch_numba(u, i, r, rng2.permutation(len(r)), batch_size, mu, *mine, alphas, config,
                          dense_loop=dense_loop)  # fmt: skip
        _assert_equal(mine[0] + mine[1] + mine[2], ref[0] + ref[1] + ref[2])
        assert got == pytest.approx(want, rel=1e-12)
    _assert_projected(mine[0], fit_bias)


def test_the_catch_up_projects_rows_that_reached_zero_while_absent():
    """The case the derivation is about: an absent element whose m > 0 carries it below zero is projected to 0.

    User 0 is rated once, last in the epoch, so dense Adam's catch-up replays its ~110 absent steps just before
    its residual (and user M-1, never rated, at the epoch's end). Element 0 starts at 0.01 with m > 0, so it
    reaches zero within a few steps and must stay there; element 1 sits at zero with m > 0 (stays at zero);
    element 2 has m < 0 and only rises.
    """
    u, i, r, params = _problem()
    u[:3] = [5, 5, 5]
    u[-1] = 0
    perm = np.arange(len(r))  # user 0's only rating comes last
    ref, mine, free = _states(params, True), _states(params, True), _states(params, True)
    for p, m, v in (ref, mine, free):
        for row in (0, len(p[0]) - 1):
            p[0][row], m[0][row], v[0][row] = [0.01, 0.0, 0.02], [0.01, 0.01, -0.01], 1e-4
    alphas = adam_step_sizes(0, 113, LR, 0.9, 0.999)
    config = _config("adam", 8, True, 0.05)
    epoch_numpy(u, i, r, perm, 8, MU, *ref, alphas, config)
    epoch_numba(u, i, r, perm, 8, MU, *mine, alphas, config)
    epoch_numba(u, i, r, perm, 8, MU, *free, alphas, _config("adam", 8, True, 0.05, non_negative=False))
    _assert_equal(mine[0] + mine[1] + mine[2], ref[0] + ref[1] + ref[2])
    never = ref[0][0][-1]
    assert never[0] == 0 and never[1] == 0 and never[2] > 0.02
    assert free[0][0][-1][0] < 0 and free[0][0][-1][1] < 0  # left free, both would have gone below zero
    assert not np.allclose(free[0][0][0], mine[0][0][0])  # user 0 was stepped from the projected row


@pytest.mark.parametrize("optimizer, batch_size", [("sgd", 1), ("sgd", 8), ("lazy_adam", 8), ("lazy_adam", 1)])
@pytest.mark.parametrize("fit_bias, reg", [(False, 0.0), (True, 0.05)])
def test_specialised_kernels_equal_the_twin(optimizer, batch_size, fit_bias, reg):
    u, i, r, params = _problem()
    config = _config(optimizer, batch_size, fit_bias, reg)
    ref, mine = _states(params, fit_bias), _states(params, fit_bias)
    trainer = SerialEpochs(u, i, r, *mine, config)
    rng, ref_rng = np.random.default_rng(1), np.random.default_rng(1)
    mu = MU if fit_bias else 0.0
    n = trainer.n_batches
    for epoch in range(3):
        total, _ = trainer.run(rng, mu, epoch * n)
        seed = ref_rng.integers(0, 2**63, dtype=np.uint64)
        alphas = adam_step_sizes(epoch * n, n, LR, 0.9, 0.999)
        want = epoch_rating_numpy(u.copy(), i.copy(), r.copy(), seed, batch_size, mu, *ref, alphas, config)
        _assert_equal(mine[0] + mine[1] + mine[2], ref[0] + ref[1] + ref[2])
        assert total == pytest.approx(want, rel=1e-12)
    _assert_projected(mine[0], fit_bias)


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize(
    "optimizer, batch_size, fit_bias, reg",
    [("adam", 4, True, 0.05), ("adam", 8, False, 0.0), ("lazy_adam", 8, True, 0.05), ("sgd", 1, True, 0.0),
     ("sgd", 7, False, 0.02)],
)  # fmt: skip
def test_block_epochs_equal_the_twin(optimizer, batch_size, fit_bias, reg, n_threads):
    u, i, r, params = _problem(4, M=30, N=20, n=900, k=4)
    config = _config(optimizer, batch_size, fit_bias, reg, n_threads)
    ref, mine = _states(params, fit_bias), _states(params, fit_bias)
    fast = _block_kernels.BlockEpochs(u, i, *mine, config, n_strata=3)
    fast.copy_ratings(u, i, r)
    order, offsets = blocks.block_order(u, i, fast.su, fast.si, 3)
    U, I, R = u[order], i[order], r[order]
    rng1, rng2, t = np.random.default_rng(5), np.random.default_rng(5), 0
    mu = MU if fit_bias else 0.0
    for _ in range(3):
        total, steps = fast.run(rng1, mu, t)
        fast.write_params(mine[0])
        seeds = rng2.integers(0, 2**63, size=9, dtype=np.uint64)
        alphas = adam_step_sizes(t, steps, LR, 0.9, 0.999)
        want = blocks.epoch_blocks_numpy(U, I, R, offsets, seeds, batch_size, mu, *ref, alphas, config)
        t += steps
        m1, v1 = fast.moments()
        _assert_equal(mine[0] + list(m1) + list(v1), ref[0] + ref[1] + ref[2])
        assert total == pytest.approx(want, rel=1e-12)
    _assert_projected(mine[0], fit_bias)


@pytest.fixture
def always_blocks(monkeypatch):
    monkeypatch.setattr(_block_kernels, "BLOCK_MIN_RATINGS", 0)
    monkeypatch.setattr(_block_kernels, "DENSE_BLOCK_MIN_RATINGS", 0)


def _model(optimizer, **kw):
    params = dict(n_factors=4, epochs=2, batch_size=16, learning_rate=0.02, biases=True, non_negative=True)
    return MatrixFactorization(optimizer=optimizer, random_state=0, **{**params, **kw})


def _non_negative(model):
    W, H = model.user_factors_, model.item_factors_
    return W.min() >= 0 and H.min() >= 0 and (W == 0).any()


@pytest.mark.parametrize("blocked", [False, True])
@pytest.mark.parametrize("optimizer", ["adam", "lazy_adam", "sgd"])
def test_factors_stay_non_negative_through_fit_partial_fit_and_load(request, tmp_path, blocked, optimizer):
    if blocked:
        request.getfixturevalue("always_blocks")
    df = make_ratings(n_users=60, n_items=60, n_ratings=1500, random_state=1)
    model = _model(optimizer).fit(df.user_id, df.item_id, df.rating)
    assert _non_negative(model) and min(model.user_bias_.min(), model.item_bias_.min()) < 0
    more = make_ratings(n_users=70, n_items=65, n_ratings=400, random_state=2)  # new users and items too
    model.partial_fit(more.user_id, more.item_id, more.rating)
    assert _non_negative(model)
    model.save(tmp_path / "nn.npz")
    loaded = MatrixFactorization.load(tmp_path / "nn.npz")
    assert loaded.non_negative is True
    loaded.partial_fit(more.user_id, more.item_id, more.rating)
    assert _non_negative(loaded)


def test_partial_fit_projects_a_model_trained_without_the_constraint():
    """It starts from the projected factors (docs/derivation.md, 9.4): as if they had been projected by hand."""
    df = make_ratings(n_users=60, n_items=60, n_ratings=1500, random_state=1)
    model = _model("adam", epochs=1, non_negative=False).fit(df.user_id, df.item_id, df.rating)
    assert model.user_factors_.min() < 0
    by_hand = copy.deepcopy(model)
    for p in (by_hand.user_factors_, by_hand.item_factors_):
        np.maximum(p, 0, out=p)
    for m in (model, by_hand):
        m.set_params(non_negative=True).partial_fit(df.user_id, df.item_id, df.rating)
    assert _non_negative(model)
    np.testing.assert_array_equal(model.user_factors_, by_hand.user_factors_)
    assert model.history_["loss"] == by_hand.history_["loss"]


def test_without_the_constraint_factors_go_negative_and_results_differ():
    df = make_ratings(n_users=60, n_items=60, n_ratings=1500, random_state=1)
    on = _model("adam").fit(df.user_id, df.item_id, df.rating)
    off = _model("adam", non_negative=False).fit(df.user_id, df.item_id, df.rating)
    assert off.user_factors_.min() < 0 and not np.allclose(on.user_factors_, off.user_factors_)
    assert off.history_["loss"][0] != on.history_["loss"][0] or off.history_["loss"][1] != on.history_["loss"][1]


def test_fold_in_projects_the_new_rows_and_leaves_the_bias_free():
    df = make_ratings(n_users=60, n_items=60, n_ratings=1500, random_state=1)
    model = _model("lazy_adam", epochs=3).fit(df.user_id, df.item_id, df.rating)
    new = make_ratings(n_users=30, n_items=60, n_ratings=300, random_state=5)
    free = MatrixFactorization(**{**model.get_params(), "non_negative": False})
    free.__dict__.update({k: v for k, v in model.__dict__.items() if k.endswith("_") or k.startswith("_")})
    rows = model.fold_in(new.user_id + 1000, new.item_id, new.rating)
    free_rows = free.fold_in(new.user_id + 1000, new.item_id, new.rating)
    W, W_free = rows.user_factors_[-30:], free_rows.user_factors_[-30:]
    assert W_free.min() < 0 and W.min() >= 0
    np.testing.assert_array_equal(W, np.maximum(W_free, 0))
    np.testing.assert_array_equal(rows.user_bias_, free_rows.user_bias_)


@pytest.mark.parametrize("bad", [1, 0, "yes", None, 1.0, [True]])
def test_a_bad_value_raises_one_clear_error_and_changes_nothing(bad):
    df = make_ratings(n_users=20, n_items=10, n_ratings=100, random_state=0)
    model = _model("sgd").fit(df.user_id, df.item_id, df.rating)
    before = model.user_factors_.copy(), list(model.history_["loss"])
    for call in (model.fit, model.partial_fit):
        with pytest.raises(ValueError, match=r"non_negative must be True or False; got"):
            model.set_params(non_negative=bad)
            call(df.user_id, df.item_id, df.rating)
        np.testing.assert_array_equal(model.user_factors_, before[0])
        assert model.history_["loss"] == before[1]
    with pytest.raises(ValueError, match="non_negative"):
        SGDConfig(non_negative=np.int64(1))
    assert SGDConfig(non_negative=np.bool_(True)).non_negative is True


def test_the_scikit_learn_adapter_passes_the_parameter():
    pytest.importorskip("sklearn")
    df = make_ratings(n_users=30, n_items=20, n_ratings=250, random_state=0)
    reg = MatrixFactorizationRegressor(epochs=2, non_negative=True, random_state=0, learning_rate=0.02)
    assert reg.get_params()["non_negative"] is True
    reg.fit(df[["user_id", "item_id"]], df.rating)
    assert reg.model_.non_negative is True and reg.model_.item_factors_.min() >= 0


@pytest.mark.parametrize("optimizer", ["adam", "lazy_adam"])
def test_float32_factors_are_projected_in_float32(optimizer):
    df = make_ratings(n_users=60, n_items=60, n_ratings=1500, random_state=1)
    model = _model(optimizer, dtype="float32").fit(df.user_id, df.item_id, df.rating)
    assert model.user_factors_.dtype == np.float32 and _non_negative(model)
