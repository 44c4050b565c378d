"""The specialised serial ``sgd``/``lazy_adam`` kernels equal their NumPy twin, epoch by epoch, in float64."""

import numpy as np
import pytest

import npmf
from npmf.sgd._kernels import SerialEpochs
from npmf.sgd.config import SGDConfig
from npmf.sgd.optimizers import adam_step_sizes
from npmf.sgd.rating_epochs import epoch_rating_numpy


def _problem(seed, M=6, N=4, n=45, k=3):
    rng = np.random.default_rng(seed)
    # Few rows and many ratings: minibatches hold the same row several times.
    u = rng.integers(0, M, n)
    i = rng.integers(0, N, n)
    r = rng.integers(1, 6, n).astype(float)
    params = [rng.uniform(-0.5, 0.5, (M, k)), rng.uniform(-0.5, 0.5, (N, k)), rng.uniform(-0.1, 0.1, M), np.zeros(N)]
    return u, i, r, params


def _config(optimizer, batch_size, fit_bias, reg, lr=0.01):
    return SGDConfig(
        n_threads=1, optimizer=optimizer, batch_size=batch_size, learning_rate=lr, beta_1=0.9, beta_2=0.999,
        epsilon=1e-7, reg=reg, biases=fit_bias,
    )  # fmt: skip


@pytest.mark.parametrize("optimizer, batch_size", [("sgd", 1), ("sgd", 8), ("lazy_adam", 8), ("lazy_adam", 1)])
@pytest.mark.parametrize("fit_bias, reg", [(False, 0.0), (True, 0.05)])
def test_specialised_kernels_equal_numpy_twin(optimizer, batch_size, fit_bias, reg, k=3):
    # 45 ratings in batches of 8: five full batches and a last one of 5; four epochs,
    # each shuffling the ratings in the order given.
    u, i, r, params = _problem(0, k=k)
    config = _config(optimizer, batch_size, fit_bias, reg)
    mu = 3.0 if fit_bias else 0.0
    ref_params = [p.copy() for p in params]
    ref_m, ref_v = ([np.zeros_like(p) for p in params] for _ in range(2))
    m, v = ([np.zeros_like(p) for p in params] for _ in range(2))
    trainer = SerialEpochs(u, i, r, params, m, v, config)
    rng, ref_rng = np.random.default_rng(1), np.random.default_rng(1)
    n_batches = trainer.n_batches
    for epoch in range(4):
        ref_u, ref_i, ref_r = u.copy(), i.copy(), r.copy()
        total, steps = trainer.run(rng, mu, epoch * n_batches)
        seed = ref_rng.integers(0, 2**63, dtype=np.uint64)
        alphas = adam_step_sizes(epoch * n_batches, n_batches, config.learning_rate, 0.9, 0.999)
        ref = epoch_rating_numpy(ref_u, ref_i, ref_r, seed, batch_size, mu, ref_params, ref_m, ref_v, alphas, config)
        assert steps == n_batches
        np.testing.assert_allclose(total, ref, rtol=1e-12)
        np.testing.assert_array_equal(trainer.u, ref_u)  # the same shuffle, rating by rating
        np.testing.assert_array_equal(trainer.r, ref_r)
        for a, b in zip(ref_params + ref_m + ref_v, params + m + v, strict=True):
            np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)
    if not fit_bias:
        np.testing.assert_array_equal(params[2], _problem(0)[3][2])  # biases not trained


@pytest.mark.slow
@pytest.mark.parametrize("optimizer, batch_size, k", [("sgd", 1, 6), ("lazy_adam", 8, 6), ("lazy_adam", 8, 40)])
def test_specialised_kernels_equal_numpy_twin_at_any_k(optimizer, batch_size, k):
    # k = 3 above takes the loops over the factors at a compile-time count (factor_counts) and in one vector of
    # lanes; 6 in one or two, by dtype; 40 at a run-time count, in several.
    from npmf.sgd._rating_kernels import factor_counts

    assert isinstance(factor_counts(k), tuple) == (k <= 32)
    test_specialised_kernels_equal_numpy_twin(optimizer, batch_size, True, 0.05, k=k)


def test_trainer_leaves_the_callers_ratings_alone():
    u, i, r, params = _problem(0)
    before = u.copy(), i.copy(), r.copy()
    m, v = ([np.zeros_like(p) for p in params] for _ in range(2))
    SerialEpochs(u, i, r, params, m, v, _config("sgd", 1, True, 0.0)).run(np.random.default_rng(0), 3.0, 0)
    for a, b in zip(before, (u, i, r), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("optimizer, batch_size", [("sgd", 1), ("lazy_adam", 32)])
def test_same_seed_same_bits_any_threads(optimizer, batch_size):
    df = npmf.make_ratings(n_users=40, n_items=30, n_ratings=600, random_state=0)
    fits = []
    for n_threads in (1, 2, 1):
        model = npmf.MatrixFactorization(
            n_factors=4, epochs=3, batch_size=batch_size, optimizer=optimizer, learning_rate=0.01, biases=True,
            n_threads=n_threads, random_state=7,
        )  # fmt: skip
        fits.append(model.fit(df.user_id, df.item_id, df.rating))
    for model in fits[1:]:
        np.testing.assert_array_equal(model.user_factors_, fits[0].user_factors_)
        assert model.history_["loss"] == fits[0].history_["loss"]
    other = npmf.MatrixFactorization(
        n_factors=4, epochs=3, batch_size=batch_size, optimizer=optimizer, learning_rate=0.01, biases=True,
        random_state=8,
    ).fit(df.user_id, df.item_id, df.rating)  # fmt: skip
    assert not np.array_equal(other.user_factors_, fits[0].user_factors_)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_residual_and_penalty_is_residual_and_penalty_bit_for_bit(dtype):
    # The fused loop of the serial kernels must give the bits of the two helpers it stands for.
    import numba

    from npmf.sgd._formulas import penalty, residual, residual_and_penalty

    @numba.njit
    def fused(mu, bu, bi, W, H, u, i, r, zero):
        e = np.empty(len(r), W.dtype)
        pen = np.empty(len(r), W.dtype)
        for j in range(len(r)):
            e[j], pen[j] = residual_and_penalty(mu, bu[u[j]], bi[i[j]], W, u[j], H, i[j], W.shape[1], r, j, zero)
        return e, pen

    @numba.njit
    def apart(mu, bu, bi, W, H, u, i, r, zero):
        e = np.empty(len(r), W.dtype)
        pen = np.empty(len(r), W.dtype)
        for j in range(len(r)):
            e[j] = residual(mu, bu[u[j]], bi[i[j]], W, u[j], H, i[j], W.shape[1], r, j)
            pen[j] = penalty(W, u[j], H, i[j], W.shape[1], bu[u[j]], bi[i[j]], zero)
        return e, pen

    rng = np.random.default_rng(3)
    for k in (1, 3, 8, 9, 10, 17, 33):  # the loops run a vector of lanes at a time: partial, whole, several
        W, H = rng.normal(size=(7, k)).astype(dtype), rng.normal(size=(5, k)).astype(dtype)
        W[6], H[4, : k // 2] = -0.0, 0.0  # products that are zeros of either sign
        bu, bi = rng.normal(size=7).astype(dtype), rng.normal(size=5).astype(dtype)
        u, i, r = rng.integers(0, 7, 200), rng.integers(0, 5, 200), rng.uniform(1, 5, 200).astype(dtype)
        args = (dtype(3.5), bu, bi, W, H, u, i, r, dtype(0))
        for a, b in zip(fused(*args), apart(*args), strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_prediction_bound_equals_its_numpy_twin(dtype):
    from npmf.sgd._rating_kernels import prediction_bound
    from npmf.sgd.state import prediction_bound_numpy, predictions_finite

    rng = np.random.default_rng(4)
    params = [rng.normal(size=(9, 3)), rng.normal(size=(6, 3)), rng.normal(size=9), -rng.uniform(size=6) * 4]
    params = [p.astype(dtype) for p in params]
    cases = {"random": params}
    planted = {"nan": (1, (2, 1), np.nan), "inf": (0, (4, 0), np.inf), "neg-inf bias": (3, 5, -np.inf),
               "huge": (0, (1, 2), np.finfo(dtype).max / 4)}  # fmt: skip
    for name, (q, at, value) in planted.items():
        case = [p.copy() for p in params]
        case[q][at] = value
        cases[name] = case
    cases["empty"] = [np.zeros((0, 3), dtype), np.zeros((0, 3), dtype), np.zeros(0, dtype), np.zeros(0, dtype)]
    for name, case in cases.items():
        want = prediction_bound_numpy(case)
        got = prediction_bound(*case, dtype(0))
        np.testing.assert_array_equal(got, want, err_msg=name)
        assert predictions_finite(case) == (name in ("random", "empty")), name


def test_step_sizes_are_adam_step_sizes_epoch_by_epoch():
    # Computed in stretches (here of 2 epochs, then refilled), handed out as the same bits as one call per epoch.
    from npmf.sgd.optimizers import StepSizes

    config = SGDConfig(optimizer="lazy_adam", epochs=2, learning_rate=0.003, beta_1=0.8, beta_2=0.99)
    for dtype in ("float32", "float64"):
        sizes = StepSizes(config, 37, dtype)
        for t0 in (0, 37, 74, 111, 5, 500, 537):
            want = adam_step_sizes(t0, 37, 0.003, 0.8, 0.99).astype(dtype)
            np.testing.assert_array_equal(sizes(t0), want)
