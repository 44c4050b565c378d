"""Each Numba kernel equals its plain-NumPy twin, epoch by epoch, in float64."""

import dataclasses

import numpy as np
import pytest

from npmf.core._kernels import predict_numba
from npmf.core.prediction import predict
from npmf.sgd import gradients
from npmf.sgd._kernels import epoch_numba
from npmf.sgd.config import SGDConfig
from npmf.sgd.optimizers import OPTIMIZERS, adam_step_sizes, adam_update, epoch_numpy


def _problem(seed, M=6, N=4, n=45, k=3):
    rng = np.random.default_rng(seed)
    # Few rows and many ratings: minibatches hold the same row several times.
    u = rng.integers(0, M, n)
    i = rng.integers(0, N, n)
    r = rng.integers(1, 6, n).astype(float)
    params = [rng.uniform(-0.5, 0.5, (M, k)), rng.uniform(-0.5, 0.5, (N, k)), np.zeros(M), np.zeros(N)]
    return u, i, r, params


def _run(epoch_fn, optimizer, fit_bias, reg, batch_size=8, epochs=4, lr=0.01):
    u, i, r, params = _problem(0)
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    config = SGDConfig(
        n_threads=1,
        optimizer=optimizer,
        learning_rate=lr,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-7,
        reg=reg,
        biases=fit_bias,
    )
    rng = np.random.default_rng(1)
    n_batches = -(-len(r) // batch_size)
    history = []
    for epoch in range(epochs):
        alphas = adam_step_sizes(epoch * n_batches, n_batches, lr, 0.9, 0.999)
        loss = epoch_fn(
            u, i, r, rng.permutation(len(r)), batch_size, 3.0 if fit_bias else 0.0, params, m, v, alphas, config
        )
        history.append(([p.copy() for p in params], [a.copy() for a in m + v], loss))
    return history


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("fit_bias, reg", [(False, 0.0), (True, 0.05)])
def test_kernel_equals_numpy_twin(optimizer, fit_bias, reg):
    # 45 ratings in batches of 8: five full batches and a last one of 5.
    numpy_run = _run(epoch_numpy, optimizer, fit_bias, reg)
    numba_run = _run(epoch_numba, optimizer, fit_bias, reg)
    for (p_ref, s_ref, loss_ref), (p, s, loss) in zip(numpy_run, numba_run, strict=True):
        for a, b in zip(p_ref + s_ref, p + s, strict=True):
            np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)
        assert loss == pytest.approx(loss_ref, rel=1e-12)
    # And training did move the parameters, so the comparison is not vacuous.
    assert not np.allclose(numpy_run[-1][0][0], _problem(0)[3][0])


def test_biases_untouched_without_fit_bias():
    run = _run(epoch_numba, "adam", fit_bias=False, reg=0.0)
    W, H, bu, bi = run[-1][0]
    assert not bu.any() and not bi.any()


def test_one_dense_adam_step_is_the_textbook_update():
    rng = np.random.default_rng(3)
    p, g = rng.normal(size=5), rng.normal(size=5)
    g[2] = 0.0  # a parameter not in the batch still moves: its moment decays
    m, v = rng.normal(size=5) * 0.1, rng.uniform(0.01, 0.1, 5)
    t, lr, b1, b2, eps = 7, 0.001, 0.9, 0.999, 1e-7
    # Textbook (Kingma & Ba), with epsilon applied outside the bias correction as Keras does.
    m_new = b1 * m + (1 - b1) * g
    v_new = b2 * v + (1 - b2) * g**2
    m_hat = m_new / (1 - b1**t)
    v_hat = v_new / (1 - b2**t)
    expected = p - lr * m_hat / (np.sqrt(v_hat) + eps / np.sqrt(1 - b2**t))

    alpha = adam_step_sizes(t - 1, 1, lr, b1, b2)[0]
    p1, m1, v1 = p.copy(), m.copy(), v.copy()
    adam_update(p1, g, m1, v1, alpha, b1, b2, eps)
    np.testing.assert_allclose(m1, m_new, rtol=1e-13)
    np.testing.assert_allclose(v1, v_new, rtol=1e-13)
    np.testing.assert_allclose(p1, expected, rtol=1e-13)
    assert p1[2] != p[2]

    # The kernel's dense loop gives the same numbers.
    from npmf.sgd._kernels import _adam_dense

    p2, m2, v2 = p.copy(), m.copy(), v.copy()
    _adam_dense(p2, g, m2, v2, alpha, 1.0 - b1, 1.0 - b2, eps)
    np.testing.assert_array_equal(p2, p1)


def test_lazy_adam_leaves_absent_rows_alone():
    u = np.array([0, 0, 1])
    i = np.array([0, 1, 1])
    r = np.array([5.0, 3.0, 4.0])
    params = [np.full((3, 2), 0.1), np.full((2, 2), 0.1), np.zeros(3), np.zeros(2)]
    before = params[0][2].copy()
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    m[0][2] = 0.5  # an absent row with momentum: dense Adam would move it, lazy Adam must not
    config = SGDConfig(
        n_threads=1,
        optimizer="lazy_adam",
        learning_rate=0.01,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-7,
        reg=0.0,
        biases=False,
    )
    epoch_numba(u, i, r, np.arange(3), 3, 0.0, params, m, v, adam_step_sizes(0, 1, 0.01, 0.9, 0.999), config)
    np.testing.assert_array_equal(params[0][2], before)
    assert m[0][2, 0] == 0.5
    config = dataclasses.replace(config, optimizer="adam")
    epoch_numba(u, i, r, np.arange(3), 3, 0.0, params, m, v, adam_step_sizes(1, 1, 0.01, 0.9, 0.999), config)
    assert not np.array_equal(params[0][2], before)


def test_repeated_row_gets_summed_gradient():
    # One batch with user 0 twice: the gradient is the sum of both terms (np.add.at),
    # so one SGD step moves w_0 by lr times that sum.
    u, i, r = np.array([0, 0]), np.array([0, 1]), np.array([4.0, 2.0])
    W, H = np.array([[0.3, -0.2]]), np.array([[0.5, 0.1], [-0.4, 0.2]])
    bu, bi = np.zeros(1), np.zeros(2)
    e = gradients.errors(W, H, bu, bi, 0.0, u, i, r)
    expected_gW = (2 / 2) * (e[0] * H[0] + e[1] * H[1])
    gW = gradients.gradients(W, H, bu, bi, u, i, e)[0]
    np.testing.assert_allclose(gW[0], expected_gW, rtol=1e-14)
    params = [W.copy(), H.copy(), bu.copy(), bi.copy()]
    config = SGDConfig(
        n_threads=1, optimizer="sgd", learning_rate=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-7, reg=0.0, biases=False
    )
    m = [np.zeros_like(p) for p in params]
    epoch_numba(u, i, r, np.arange(2), 2, 0.0, params, m, [a.copy() for a in m], np.ones(1), config)
    np.testing.assert_allclose(params[0][0], W[0] - 0.1 * expected_gW, rtol=1e-14)


def test_predict_kernel_equals_numpy():
    u, i, _, (W, H, bu, bi) = _problem(5)
    bu, bi = np.linspace(-1, 1, len(bu)), np.linspace(1, -1, len(bi))
    np.testing.assert_array_equal(predict_numba(W, H, bu, bi, 3.5, u, i), predict(W, H, bu, bi, 3.5, u, i))


@pytest.mark.parametrize("fit_bias, reg", [(False, 0.0), (True, 0.05)])
def test_dense_adam_as_the_plain_loop_equals_numpy_twin(fit_bias, reg):
    # Small models run dense adam as the plain loop over every parameter (SerialEpochs, DENSE_LOOP_ROWS).
    def loop(*args):
        return epoch_numba(*args, dense_loop=True)

    numpy_run = _run(epoch_numpy, "adam", fit_bias, reg)
    loop_run = _run(loop, "adam", fit_bias, reg)
    for (p_ref, s_ref, loss_ref), (p, s, loss) in zip(numpy_run, loop_run, strict=True):
        for a, b in zip(p_ref + s_ref, p + s, strict=True):
            np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)
        assert loss == pytest.approx(loss_ref, rel=1e-12)
