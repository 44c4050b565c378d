"""Dense Adam with the catch-up equals the plain dense loop (the NumPy twin), and the catch-up equals its twin."""

import math
import sys

import numba
import numpy as np
import pytest

import npmf.sgd._kernels as kernels
from npmf import MatrixFactorization
from npmf.sgd._catchup_kernels import backward_table_numba
from npmf.sgd._dense_kernels import catch_up_record_row, record_state
from npmf.sgd._formulas import catch_up_row
from npmf.sgd._kernels import epoch_numba
from npmf.sgd.catchup import (
    SERIES_TERMS,
    WIDE_MAX_STEPS,
    WIDE_TERMS,
    backward_table,
    catch_up,
    catch_up_horizon,
    catch_up_tables,
)
from npmf.sgd.config import SGDConfig
from npmf.sgd.optimizers import adam_step_sizes, adam_update, epoch_numpy


def _skewed_problem(seed, M=40, N=12, n=1500, k=3, dtype=np.float64):
    """Ratings where a few users and items are rare: absent for hundreds to thousands of steps.

    User 0 rates once, user 1 twice, user M-1 never; item 0 is rated twice.
    """
    rng = np.random.default_rng(seed)
    u = rng.integers(2, M - 1, n)
    i = rng.integers(1, N, n)
    u[:3] = [0, 1, 1]
    i[3:5] = 0
    r = rng.integers(1, 6, n).astype(float)
    params = [rng.uniform(-0.5, 0.5, (M, k)), rng.uniform(-0.5, 0.5, (N, k)), np.zeros(M), np.zeros(N)]
    return u, i, r, [p.astype(dtype) for p in params]


def _fit(epoch_fn, problem, batch_size, epochs, fit_bias=True, reg=0.05, lr=0.01, epsilon=1e-7, t0=0, state=None):
    u, i, r, params = problem
    params = [p.copy() for p in params]
    m = [np.zeros_like(p) for p in params] if state is None else [a.copy() for a in state[0]]
    v = [np.zeros_like(p) for p in params] if state is None else [a.copy() for a in state[1]]
    config = SGDConfig(n_threads=1, optimizer="adam", learning_rate=lr, epsilon=epsilon, reg=reg, biases=fit_bias)
    rng = np.random.default_rng(7)
    n_batches = -(-len(r) // batch_size)
    losses = []
    for epoch in range(epochs):
        alphas = adam_step_sizes(t0 + epoch * n_batches, n_batches, lr, 0.9, 0.999)
        mu = 3.0 if fit_bias else 0.0
        losses.append(epoch_fn(u, i, r, rng.permutation(len(r)), batch_size, mu, params, m, v, alphas, config))
    return params, m, v, losses


def _assert_close(got, want, rtol):
    for a, b in zip(got, want, strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_allclose(x, y, rtol=rtol, atol=rtol * np.abs(y).max())


@pytest.mark.parametrize(
    "batch_size, fit_bias, reg, epsilon",
    [
        (1, True, 0.05, 1e-7),  # 1500 steps an epoch: rows absent for thousands of steps, past the horizon
        (8, False, 0.0, 1e-7),
        (32, True, 0.05, 1e-7),  # repeated rows in a batch
        (4, True, 0.02, 3e-4),  # sqrt(v) often within 100 eps: about a quarter of the elements take the exact loop
    ],
)
def test_catch_up_equals_the_plain_dense_loop(batch_size, fit_bias, reg, epsilon):
    problem = _skewed_problem(0)
    ref = _fit(epoch_numpy, problem, batch_size, 3, fit_bias, reg, epsilon=epsilon)
    got = _fit(epoch_numba, problem, batch_size, 3, fit_bias, reg, epsilon=epsilon)
    _assert_close(got[:3], ref[:3], 1e-12)
    np.testing.assert_allclose(got[3], ref[3], rtol=1e-12)
    # The rare rows did move while absent (dense Adam), so the comparison covers the catch-up.
    assert not np.allclose(ref[0][0][1], problem[3][0][1])


@pytest.mark.slow  # compiles the kernel for two more record widths
@pytest.mark.parametrize("k, fit_bias", [(1, True), (6, False)])
def test_catch_up_equals_the_plain_dense_loop_at_other_widths(k, fit_bias):
    """The kernel is compiled per record width (its row loops' trip counts): k + 1 and the trained k or k + 1."""
    problem = _skewed_problem(5, n=600, k=k)
    ref = _fit(epoch_numpy, problem, 8, 2, fit_bias)
    got = _fit(epoch_numba, problem, 8, 2, fit_bias)
    _assert_close(got[:3], ref[:3], 1e-12)
    np.testing.assert_allclose(got[3], ref[3], rtol=1e-12)


def test_a_fit_continued_equals_the_dense_loop():
    # partial_fit's path: a second call starts from the flushed state with the global step count.
    problem = _skewed_problem(1)
    first = _fit(epoch_numpy, problem, 4, 1)
    n_steps = -(-len(problem[2]) // 4)
    cont = (problem[0], problem[1], problem[2], first[0])
    ref = _fit(epoch_numpy, cont, 4, 2, t0=n_steps, state=first[1:3])
    got = _fit(epoch_numba, cont, 4, 2, t0=n_steps, state=first[1:3])
    _assert_close(got[:3], ref[:3], 1e-12)


def test_partial_fit_of_the_estimator_equals_the_dense_loop(monkeypatch):
    u, i, r, _ = _skewed_problem(2, n=600)
    kw = dict(n_factors=3, epochs=2, batch_size=4, optimizer="adam", learning_rate=0.01, random_state=0, n_threads=1)

    def fitted():
        model = MatrixFactorization(**kw).fit(u, i, r)
        model.partial_fit(u, i, r, epochs=2)
        return model

    got = fitted()

    def twin(u, i, r, perm, *rest, **kw):  # SerialEpochs passes the ratings in visiting order (perm None)
        return epoch_numpy(u, i, r, np.arange(len(r)) if perm is None else perm, *rest[:7])

    monkeypatch.setattr(kernels, "epoch_numba", twin)
    ref = fitted()
    for name in ("user_factors_", "item_factors_"):
        np.testing.assert_allclose(getattr(got, name), getattr(ref, name), rtol=1e-12, atol=1e-13)
    assert got.n_steps_ == ref.n_steps_ == 4 * 150


def test_float32_to_float32_tolerance():
    problem = _skewed_problem(3, dtype=np.float32)
    ref = _fit(epoch_numpy, problem, 4, 2)
    got = _fit(epoch_numba, problem, 4, 2)
    assert got[0][0].dtype == np.float32
    _assert_close(got[:1], ref[:1], 2e-4)


def _row_states(seed, k=64):
    """One row's elements in every regime: ordinary (narrow series), sqrt(v) a few eps (wide series), tiny v (exact
    loop), v = 0 with m != 0, m = 0."""
    rng = np.random.default_rng(seed)
    m = rng.normal(0, 1e-2, k)
    v = rng.uniform(1e-6, 1e-2, k)
    v[:4] = rng.uniform(0, 1e-14, 4)  # sqrt(v) below about 3 eps: the exact loop
    v[4:8] = rng.uniform(1.2e-13, 1e-12, 4)  # sqrt(v) 3.5 to 10 eps: the wide series, near its limit
    v[8:10] = 0.0
    m[10:12] = 0.0
    p = rng.normal(0, 0.3, k)
    return p, m, v


def _dense_steps(p, m, v, alphas, tau, s):
    p, m, v = p.copy(), m.copy(), v.copy()
    for j in range(s):
        adam_update(p, 0.0, m, v, alphas[tau + j], 0.9, 0.999, 1e-7)
    return p, m, v


@numba.njit
def _catch_up_numba(p, m, v, tau, s, B, Q, P1, P2, thr, alphas):
    P, M, V = p.reshape(1, -1), m.reshape(1, -1), v.reshape(1, -1)
    catch_up_row(
        P, 0, M, 0, V, 0, 0, P.shape[1], tau, s, B, Q, P1, P2, thr, np.empty(B.shape[1] + 1), alphas, 0.1, 0.001, 1e-7
    )


@pytest.mark.parametrize("tau, s", [(0, 1), (3, 17), (10, 600), (0, 2999), (2500, 500)])
def test_catch_up_equals_the_dense_steps_and_its_twin(tau, s):
    alphas = adam_step_sizes(40, 3000, 0.01, 0.9, 0.999)
    tables = catch_up_tables(alphas, 0.9, 0.999, 1e-7)
    p, m, v = _row_states(tau + s)
    want = _dense_steps(p, m, v, alphas, tau, s)
    got = [a.copy() for a in (p, m, v)]
    catch_up(*got, tau, s, tables, alphas, 0.9, 0.999, 1e-7)
    for x, y in zip(got, want, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-300)
    twin = [a.copy() for a in (p, m, v)]
    _catch_up_numba(*twin, tau, s, *tables, alphas)
    for x, y in zip(twin, got, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-14, atol=1e-300)


@numba.njit
def _catch_up_record_numba(X, lanes, trained, tau, s, cu):
    catch_up_record_row(X, 0, lanes, trained, tau, tau + s, cu)


def _catch_up_record(X, width, tau, s, cu):
    """Record 0 of ``X`` (segments of 4) caught up, its kept sqrt(v) as the kernel's pack leaves it."""
    X[0, 12:] = np.sqrt(X[0, 8:12])
    _catch_up_record_numba(X, (0,) * 4, (0,) * width, tau, s, cu)


@pytest.mark.parametrize("regime", ["short", "narrow", "mixed"])
@pytest.mark.parametrize("tau, s", [(0, 1), (3, 17), (10, 600), (2500, 500)])
def test_record_catch_up_equals_the_dense_steps_and_its_twin(regime, tau, s):
    """The dense kernel's catch-up of one record (short or narrow series on the whole row, or per element)."""
    alphas = adam_step_sizes(40, 3000, 0.01, 0.9, 0.999)
    B, Q, P1, P2, thr = catch_up_tables(alphas, 0.9, 0.999, 1e-7)
    rng = np.random.default_rng(tau + s)
    p, m = rng.normal(0, 0.3, 4), rng.normal(0, 1e-2, 4)
    x = {"short": [1e-2, 3e-2, 2e-3, 5e-2], "narrow": [1e-2, 1e-4, 2e-3, 5e-2], "mixed": [1e-2, 1e-4, 1e-7, 0.0]}
    v = np.array(x[regime]) ** 2
    limits = thr[min(s, thr.shape[0] - 1)]
    assert (np.sqrt(v).min() >= limits[2]) == (regime == "short")
    assert (np.sqrt(v).min() >= limits[0]) == (regime != "mixed")
    want = _dense_steps(p, m, v, alphas, tau, s)
    twin = [a.copy() for a in (p, m, v)]
    catch_up(*twin, tau, s, (B, Q, P1, P2, thr), alphas, 0.9, 0.999, 1e-7)
    X = np.concatenate([p, m, v, np.zeros(4)])[None, :]
    cu = record_state(B, Q, P1, P2, thr, np.empty(B.shape[1] + 1), alphas, 0.1, 0.001, 1e-7, np.float64)
    _catch_up_record(X, 4, tau, s, cu)
    got = X[0, :4], X[0, 4:8], X[0, 8:12]
    for a, b, c in zip(got, twin, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-300)
        np.testing.assert_allclose(a, c, rtol=1e-12, atol=1e-300)


def test_row_states_take_every_form_of_the_catch_up():
    """The states above reach the narrow and the wide series and the exact loop (else the tests miss a branch)."""
    alphas = adam_step_sizes(40, 3000, 0.01, 0.9, 0.999)
    _, _, _, _, thr = catch_up_tables(alphas, 0.9, 0.999, 1e-7)
    assert thr.shape[1] == 3 and np.all(thr[:, 2] > thr[:, 0]) and np.all(thr[:, 0] > thr[:, 1])
    for tau, s in [(0, 1), (10, 600)]:
        _, m, v = _row_states(tau + s)
        x, limits = np.sqrt(v)[m != 0], thr[min(s, thr.shape[0] - 1)]
        narrow = x >= limits[0]
        wide = ~narrow & (x >= limits[1])
        assert narrow.sum() > 0 and wide.sum() > 0 and (~narrow & ~wide).sum() > 0


def test_wide_series_stays_off_for_huge_epochs():
    """Past WIDE_MAX_STEPS steps the table keeps the narrow terms only (its memory), and the wide limit is inf."""
    B, Q, _, _, thr = catch_up_tables(np.full(WIDE_MAX_STEPS + 1, 1e-3), 0.9, 0.999, 1e-7)
    assert B.shape[1] == Q.shape[1] == SERIES_TERMS and np.isinf(thr[:, 1]).all()
    B, _, _, _, thr = catch_up_tables(np.full(100, 1e-3), 0.9, 0.999, 1e-7)
    assert B.shape[1] == WIDE_TERMS and np.isfinite(thr[:, 1]).all()


def test_backward_table_equals_its_twin_and_its_definition():
    alphas = adam_step_sizes(0, 50, 0.001, 0.9, 0.999)
    q = 0.9 * 0.999 ** (-(np.arange(SERIES_TERMS) + 1) / 2)
    B = backward_table(alphas, q)
    np.testing.assert_array_equal(backward_table_numba(alphas, q), B)
    for c in (0, 13, 49, 50):
        direct = [sum(alphas[c + j - 1] * qn**j for j in range(1, 51 - c)) for qn in q]
        np.testing.assert_allclose(B[c], direct, rtol=1e-14)


def test_the_horizon_bounds_the_tail():
    L = catch_up_horizon(0.9, 0.999, 10**6)
    q0 = 0.9 / math.sqrt(0.999)
    assert 300 < L < 700
    assert q0**L / (1 - q0) / (0.1 * math.sqrt(0.001)) < 2.0**-64
    assert catch_up_horizon(0.9, 0.999, 100) == 100
    assert catch_up_horizon(0.99, 0.9, 5000) == 5000  # beta_1 >= sqrt(beta_2): no horizon, all exact


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("batch_size, fit_bias", [(4, True), (8, False)])
def test_block_path_equals_its_sequential_twin(n_threads, batch_size, fit_bias):
    from npmf.sgd import _block_kernels, blocks

    u, i, r, params = _skewed_problem(4, M=30, N=20, n=900, k=4)
    params[2][:], params[3][:] = (0.1, -0.1) if fit_bias else (0.0, 0.0)
    config = SGDConfig(optimizer="adam", learning_rate=0.01, reg=0.05 if fit_bias else 0.0, biases=fit_bias,
                       batch_size=batch_size, n_threads=n_threads)  # fmt: skip
    p1, p2 = [p.copy() for p in params], [p.copy() for p in params]
    m2, v2 = [np.zeros_like(p) for p in params], [np.zeros_like(p) for p in params]
    fast = _block_kernels.BlockEpochs(u, i, p1, [a.copy() for a in m2], [a.copy() for a in v2], config, n_strata=3)
    fast.copy_ratings(u, i, r)
    order, offsets = blocks.block_order(u, i, fast.su, fast.si, 3)
    U, I, R = u[order], i[order], r[order]
    rng1, rng2, t = np.random.default_rng(5), np.random.default_rng(5), 0
    for _ in range(3):
        total, steps = fast.run(rng1, 3.0 if fit_bias else 0.0, t)
        fast.write_params(p1)
        seeds = rng2.integers(0, 2**63, size=9, dtype=np.uint64)
        alphas = adam_step_sizes(t, steps, 0.01, 0.9, 0.999)
        mu = 3.0 if fit_bias else 0.0
        ref = blocks.epoch_blocks_numpy(U, I, R, offsets, seeds, batch_size, mu, p2, m2, v2, alphas, config)
        t += steps
        m1, v1 = fast.moments()
        for a, b in zip(p1 + m1 + v1, p2 + m2 + v2, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)
        assert total == pytest.approx(ref, rel=1e-12)
    assert not np.allclose(p1[0][1], params[0][1])  # a rare row, moved while absent
    del a, b, m1, v1  # views of the records: held, they would make give_back copy instead of compacting in place
    records = [X.__array_interface__["data"][0] for X in fast.records]
    m1, v1 = fast.give_back()
    if sys.gettrace() is None:  # under a tracer (coverage) NumPy refuses resize(refcheck=True): give_back copies
        assert [m1[0].__array_interface__["data"][0], m1[1].__array_interface__["data"][0]] == records
    for a, b in zip(m1 + v1, m2 + v2, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("v0", [1e-4, 1e-16])  # the narrow series on the row; the exact loop per element
def test_float32_records_drop_subnormal_moments(v0):
    """A float32 row absent for hundreds of steps has its decayed m set to 0 (not a subnormal); float64 keeps it."""
    alphas = adam_step_sizes(40, 3000, 0.01, 0.9, 0.999)
    B, Q, P1, P2, thr = catch_up_tables(alphas, 0.9, 0.999, 1e-7)
    for dtype, tiny in ((np.float32, float(np.finfo(np.float32).tiny)), (np.float64, 0.0)):
        p, m, v = np.full(4, 0.25), np.full(4, 1e-3), np.full(4, v0)
        X = np.concatenate([p, m, v, np.zeros(4)]).astype(dtype)[None, :]
        cu = record_state(B, Q, P1, P2, thr, np.empty(B.shape[1] + 1), alphas, 0.1, 0.001, 1e-7, dtype)
        assert cu[12] == tiny
        _catch_up_record(X, 4, 10, 800, cu)  # 0.9**800 * 1e-3 = 4e-40: subnormal in float32
        want = _dense_steps(p, m, v, alphas, 10, 800)
        np.testing.assert_allclose(X[0, :4], want[0], rtol=1e-12 if dtype == np.float64 else 1e-6)
        if dtype == np.float32:
            assert np.all(X[0, 4:8] == 0) and want[1][0] > 0
        else:
            np.testing.assert_allclose(X[0, 4:8], want[1], rtol=1e-12)


@pytest.mark.parametrize("regime", ["short", "narrow"])
@pytest.mark.parametrize("tau, s", [(3, 17), (10, 600), (5, 900)])
def test_float32_record_catch_up_in_float32(regime, tau, s):
    """A float32 record's series in float32 arithmetic: the dense steps (float64) to float32's rounding, and no
    subnormal operand (beta_1^s below float32's smallest normal is zero in the table)."""
    alphas = adam_step_sizes(40, 3000, 0.01, 0.9, 0.999)
    tables = catch_up_tables(alphas, 0.9, 0.999, 1e-7)
    cu = record_state(*tables, np.empty(tables[0].shape[1] + 1), alphas, 0.1, 0.001, 1e-7, np.float32)
    tiny = np.finfo(np.float32).tiny
    for P in cu[-5:-3]:
        assert P.dtype == np.float32 and not np.any((P > 0) & (P < tiny))
    assert isinstance(cu[-3], np.float32) and cu[-5][900] == 0 and tables[2][900] > 0  # 0.9**900 = 5e-42
    rng = np.random.default_rng(tau + s)
    p, m = rng.normal(0, 0.3, 4), rng.normal(0, 1e-2, 4)
    v = np.array({"short": [1e-2, 3e-2, 2e-3, 5e-2], "narrow": [1e-2, 1e-4, 2e-3, 5e-2]}[regime]) ** 2
    want = _dense_steps(p, m, v, alphas, tau, s)
    X = np.concatenate([p, m, v, np.zeros(4)]).astype(np.float32)[None, :]
    _catch_up_record(X, 4, tau, s, cu)
    moved = np.abs(want[0] - p)
    np.testing.assert_allclose(X[0, :4], want[0], rtol=0, atol=2e-6 * np.abs(p).max() + 1e-5 * moved.max())
    np.testing.assert_allclose(X[0, 4:8], np.where(np.abs(want[1]) >= tiny, want[1], 0), rtol=1e-6, atol=0)
