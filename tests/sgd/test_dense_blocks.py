"""Block-scheduled dense adam's row catch-up (npmf.sgd._dense_blocks) equals the dense steps, in every regime."""

import numba
import numpy as np
import pytest

from npmf.sgd._dense_blocks import catch_up_row
from npmf.sgd._dense_kernels import record_state
from npmf.sgd.catchup import catch_up_tables
from npmf.sgd.optimizers import adam_step_sizes, adam_update

# sqrt(v) per element: every element at the short series' bound, at the narrow one, at the wide one (not all at the
# narrow), and one below the wide one (element by element; v = 0 with m != 0 takes the exact loop).
REGIMES = {
    "short": [1e-2, 3e-2, 2e-3, 5e-2, 4e-3],
    "narrow": [1e-2, 1e-4, 2e-3, 5e-2, 4e-3],
    "wide": [1e-2, 1e-4, 2e-6, 5e-6, 8e-7],
    "elements": [1e-2, 1e-4, 2e-6, 1e-7, 0.0],
}


@numba.njit(error_model="numpy", fastmath={"reassoc", "nsz"})  # as the block kernel compiles it
def _catch_up(X, width, tau, s, cu, Gw, row):  # width: every element trained
    lanes = np.empty(5, np.int8)  # the row widths as DenseBlocks passes them: arrays, their lengths at run time
    catch_up_row(X, 0, width, lanes, lanes, tau, tau + s, True, cu, Gw, row)


def _dense_steps(p, m, v, alphas, tau, s):
    p, m, v = p.copy(), m.copy(), v.copy()
    for j in range(s):
        adam_update(p, 0.0, m, v, alphas[tau + j], 0.9, 0.999, 1e-7)
    return p, m, v


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("regime", list(REGIMES))
@pytest.mark.parametrize("tau, s", [(0, 1), (3, 17), (10, 600), (10, 900), (2500, 500)])
def test_row_catch_up_equals_the_dense_steps(regime, tau, s, dtype):
    alphas = adam_step_sizes(40, 3000, 0.01, 0.9, 0.999)
    B, Q, P1, P2, thr = catch_up_tables(alphas, 0.9, 0.999, 1e-7)
    limits = thr[min(s, thr.shape[0] - 1)]
    x = np.array(REGIMES[regime])
    assert (x.min() >= limits[2]) == (regime == "short")
    assert (x.min() >= limits[0]) == (regime in ("short", "narrow"))
    assert (x.min() >= limits[1]) == (regime != "elements")
    rng = np.random.default_rng(tau + s)
    p, m, v = rng.normal(0, 0.3, 5), rng.normal(0, 1e-2, 5), x**2
    want = _dense_steps(p, m, v, alphas, tau, s)
    X = np.concatenate([p, m, v, np.zeros(5)]).astype(dtype)[None, :]  # [p | m | v | sqrt v], sqrt v not yet kept
    cu = record_state(B, Q, P1, P2, thr, np.empty(B.shape[1] + 1), alphas, 0.1, 0.001, 1e-7, dtype)
    _catch_up(X, 5, tau, s, cu, np.zeros(B.shape[1], dtype), np.zeros((2, 5), dtype))
    rtol = 1e-12 if dtype == np.float64 else 2e-6
    for a, b in zip((X[0, :5], X[0, 5:10], X[0, 10:15]), want, strict=True):
        if dtype == np.float32:  # float32 keeps no moment below its smallest normal (npmf.sgd._dense_kernels._narrow)
            b = np.where(np.abs(b) >= np.finfo(np.float32).tiny, b, 0.0)
        np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-300)
    np.testing.assert_array_equal(X[0, 15:], np.sqrt(v.astype(dtype)))  # the root it took, kept for the next time


@pytest.mark.parametrize("regime", ["short", "wide"])
def test_float32_row_catch_up_keeps_no_subnormal_moment(regime):
    """m = 1e-12 decayed by 0.9**700 (1e-32, a normal float32) is 1e-44, a float32 subnormal: stored as 0."""
    alphas = adam_step_sizes(40, 3000, 0.01, 0.9, 0.999)
    B, Q, P1, P2, thr = catch_up_tables(alphas, 0.9, 0.999, 1e-7)
    cu = record_state(B, Q, P1, P2, thr, np.empty(B.shape[1] + 1), alphas, 0.1, 0.001, 1e-7, np.float32)
    X = np.concatenate([np.full(5, 0.25), np.full(5, 1e-12), np.array(REGIMES[regime]) ** 2, np.zeros(5)])
    X = X.astype(np.float32)[None, :]
    _catch_up(X, 5, 10, 700, cu, np.zeros(B.shape[1], np.float32), np.zeros((2, 5), np.float32))
    assert np.all(X[0, 5:10] == 0) and np.all(X[0, 10:15] > 0)
