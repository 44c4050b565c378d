"""Lanes (npmf.core._lanes) give the scalar loop's bits, and touch nothing outside the elements they are given."""

import numba
import numpy as np
import pytest

from npmf.core import _lanes
from npmf.core._lanes import flush_below, load, negative_zero, store, sum_lanes, width
from npmf.sgd._formulas import adam_scalar_root, factor_gradient, horner

DTYPES = [np.float32, np.float64]


@numba.njit(error_model="numpy")
def _adam_lanes(P, G, M, V, alpha, c1, c2, eps):
    k = P.shape[1]
    for x in range(P.shape[0]):
        for f in range(0, k, width(P)):
            n = k - f
            p, m, v, root = adam_scalar_root(load(P, x, f, n), load(G, x, f, n), load(M, x, f, n), load(V, x, f, n),
                                             alpha, c1, c2, eps)  # fmt: skip
            store(P, x, f, p, n)
            store(M, x, f, m, n)
            store(V, x, f, v, n)
            store(G, x, f, root, n)


@numba.njit(error_model="numpy")
def _adam_scalars(P, G, M, V, alpha, c1, c2, eps):
    for x in range(P.shape[0]):
        for f in range(P.shape[1]):
            P[x, f], M[x, f], V[x, f], G[x, f] = adam_scalar_root(
                P[x, f], G[x, f], M[x, f], V[x, f], alpha, c1, c2, eps
            )


def _state(rng, k, dtype):
    P, G, M = (rng.standard_normal((5, k)).astype(dtype) for _ in range(3))
    V = np.abs(rng.standard_normal((5, k))).astype(dtype) * dtype(1e-3)
    G[0, 0], M[1, 0], V[2, 0] = dtype(-0.0), dtype(0.0), dtype(0.0)  # zeros, and a zero's sign
    return [P, G, M, V]


@pytest.mark.parametrize("dtype", DTYPES)
def test_adam_on_lanes_has_the_scalar_loops_bits_at_every_width(dtype):
    steps = tuple(dtype(s) for s in (1e-3, 0.1, 1e-3, 1e-7))
    for k in range(1, 41):  # partial vectors, whole ones, and several a row
        rng = np.random.default_rng(k)
        lanes = _state(rng, k, dtype)
        scalars = [a.copy() for a in lanes]
        _adam_lanes(*lanes, *steps)
        _adam_scalars(*scalars, *steps)
        for a, b in zip(lanes, scalars, strict=True):
            assert a.tobytes() == b.tobytes(), (dtype, k)  # bit for bit, signs of zeros included


@numba.njit
def _copy_through_lanes(src, dst, x, f, n):
    store(dst, x, f, load(src, x, f, n), n)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("jit", [True, False])
def test_load_and_store_touch_only_the_elements_asked_for(dtype, jit):
    def python(src, dst, x, f, n):  # the NumPy versions, which run without JIT
        _lanes._store_python(dst, x, f, _lanes._load_python(src, x, f, n), n)

    copy = _copy_through_lanes if jit else python
    L = _lanes._width_python(np.zeros((1, 1), dtype))
    assert L == 32 // np.dtype(dtype).itemsize
    src = np.arange(3 * 20, dtype=dtype).reshape(3, 20)
    for f, n in [(0, 1), (0, L), (3, L - 1), (5, 2 * L), (19, 1), (7, 0)]:
        dst = np.full((3, 20), -1, dtype)
        copy(src, dst, 1, f, n)
        want = np.full((3, 20), -1, dtype)
        m = min(n, L)
        want[1, f : f + m] = src[1, f : f + m]
        np.testing.assert_array_equal(dst, want)


@numba.njit
def _dot_lanes(W, H, x, y):
    k = W.shape[1]
    acc = negative_zero(W)
    for f in range(0, k, width(W)):
        acc = sum_lanes(acc, load(W, x, f, k - f) * load(H, y, f, k - f), k - f)
    return acc


def _dot_python(W, H, x, y):
    k = W.shape[1]
    acc = _lanes._negative_zero_python(W)
    for f in range(0, k, _lanes._width_python(W)):
        w, h = _lanes._load_python(W, x, f, k - f), _lanes._load_python(H, y, f, k - f)
        acc = _lanes._sum_lanes_python(acc, w * h, k - f)
    return acc


@numba.njit
def _dot_scalars(W, H, x, y):
    acc = W[x, 0] * H[y, 0]
    for f in range(1, W.shape[1]):
        acc = acc + W[x, f] * H[y, f]
    return acc


@pytest.mark.parametrize("dtype", DTYPES)
def test_sum_lanes_adds_left_to_right(dtype):
    rng = np.random.default_rng(0)
    for k in range(1, 41):
        W = (rng.standard_normal((4, k)) * 10.0 ** rng.integers(-6, 6, (4, k))).astype(dtype)
        H = rng.standard_normal((4, k)).astype(dtype)
        W[3] = -0.0  # every product -0: the sum is -0, as the scalar loop's
        for x in range(4):
            want = dtype(_dot_scalars(W, H, x, x)).tobytes()  # a jitted function returns a Python float
            assert dtype(_dot_lanes(W, H, x, x)).tobytes() == want, (k, x)
            assert dtype(_dot_python(W, H, x, x)).tobytes() == want, (k, x)


@numba.njit
def _gradient_lanes(e, W, H, reg):
    out = np.empty_like(W)
    k = W.shape[1]
    for f in range(0, k, width(W)):
        store(out, 0, f, e * load(H, 0, f, k - f) + reg * load(W, 0, f, k - f) - reg / e, k - f)
    return out


def test_lanes_take_scalars_of_their_dtype_on_either_side():
    W, H = np.full((1, 11), 0.5, np.float32), np.full((1, 11), 2.0, np.float32)
    out = _gradient_lanes(np.float32(3.0), W, H, np.float32(0.25))
    np.testing.assert_array_equal(out, factor_gradient(np.float32(3.0), H, np.float32(0.25), W) - np.float32(0.25 / 3))


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="a typing error is the compiler's")
def test_lanes_name_the_arrays_they_cannot_take():
    with pytest.raises(numba.TypingError, match="C-contiguous 2-D float32 or float64"):
        _copy_through_lanes(np.zeros((3, 4)).T, np.zeros((4, 3)), 0, 0, 2)
    with pytest.raises(numba.TypingError, match="C-contiguous 2-D float32 or float64"):
        _copy_through_lanes(np.zeros((3, 4), np.int64), np.zeros((3, 4), np.int64), 0, 0, 2)


@numba.njit(error_model="numpy")
def _flush_lanes(A, tiny):
    k = A.shape[1]
    for f in range(0, k, width(A)):
        store(A, 0, f, flush_below(load(A, 0, f, k - f), tiny), k - f)


@numba.njit(error_model="numpy")
def _flush_scalars(A, tiny):
    for f in range(A.shape[1]):
        A[0, f] = A[0, f] * (abs(A[0, f]) >= tiny)


@pytest.mark.parametrize("dtype", DTYPES)
def test_flush_below_is_the_scalar_products_bits(dtype):
    """``flush_below(v, tiny)`` on lanes is the scalar ``v * (abs(v) >= tiny)``: zeros keep their sign, NaN stays."""
    tiny = np.finfo(dtype).tiny
    special = [tiny, -tiny, np.nextafter(tiny, dtype(0)), -np.nextafter(tiny, dtype(0)), tiny * 4, 0.0, -0.0,
               np.inf, -np.inf, np.nan, 1e-3, -2.5, np.finfo(dtype).smallest_subnormal]  # fmt: skip
    rng = np.random.default_rng(0)
    for k in (1, 3, 4, 5, 8, 13, 17):
        A = np.array([special[(f * 7) % len(special)] for f in range(k)], dtype)[None, :]
        A[0, ::3] *= dtype(rng.standard_normal())
        want = A.copy()
        _flush_scalars(want, dtype(tiny))
        lanes = A.copy()
        _flush_lanes(lanes, dtype(tiny))  # the intrinsic (with JIT), or the NumPy version through load and store
        python = A.copy()
        python[0] = _lanes._flush_below_python(A[0], dtype(tiny))  # the NumPy version, whole rows
        for got in (lanes, python):
            assert got.tobytes() == want.tobytes(), (dtype, k)


@numba.njit(error_model="numpy")
def _horner_lanes(G, Y, terms):
    k = Y.shape[1]
    out = np.empty_like(Y)
    for f in range(0, k, width(Y)):
        store(out, 0, f, horner(G, terms, load(Y, 0, f, k - f)), k - f)
    return out


@numba.njit(error_model="numpy")
def _horner_scalars(G, Y, terms):
    out = np.empty_like(Y)
    for f in range(Y.shape[1]):
        out[0, f] = horner(G, terms, Y[0, f])
    return out


@pytest.mark.parametrize("dtype", DTYPES)
def test_horner_on_lanes_has_the_scalar_bits(dtype):
    rng = np.random.default_rng(1)
    G = rng.standard_normal(8).astype(dtype)
    Y = (-1e-4 * rng.random((1, 11))).astype(dtype)
    for terms in (2, 4, 8):
        assert _horner_lanes(G, Y, terms).tobytes() == _horner_scalars(G, Y, terms).tobytes(), terms
        want = sum(G[n] * Y.astype(np.float64) ** n for n in range(terms))
        np.testing.assert_allclose(_horner_scalars(G, Y, terms), want, rtol=1e-5 if dtype == np.float32 else 1e-12)
