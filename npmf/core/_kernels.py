r"""The one prediction kernel every fitted model uses: :math:`\hat r = \mu + b_u + b_i + w_u \cdot h_i`.

Twin of :func:`npmf.core.prediction.predict`; the tests hold them equal.

The formula itself is written once, in :func:`dot` and :func:`prediction`,
which the training kernels of :mod:`npmf.sgd` inline too (``sgd`` may import
``core``, never the other way round), so the prediction that training fits and
the one ``predict`` serves cannot drift apart.
"""

import numba
import numpy as np

__all__ = ["predict_numba", "dot", "prediction"]

_jit = numba.njit(cache=True, error_model="numpy", nogil=True)
# Inlined into the caller's Numba IR before typing, so each use is typed with the
# caller's dtypes and compiled under the caller's flags (the block kernel's
# fastmath reassociation vectorises the loop; the serial kernels stay exact).
_inline = numba.njit(inline="always", error_model="numpy", nogil=True)


@_inline
def dot(W, u, H, i, k):
    r"""The factor product :math:`w_u \cdot h_i` over columns ``0..k-1`` of row ``u`` of ``W`` and ``i`` of ``H``.

    Parameters
    ----------
    W, H : 2-D ndarrays
        Factor matrices, or the block kernel's records, whose first ``k``
        columns are the factors; hence ``k`` is passed, not read from a shape.
    u, i : int
        Row indices. Rows are passed as indices, not slices, so one helper serves
        separate arrays and records alike, and no array view is built per rating.
    k : int
        Number of factors, at least 1.

    Notes
    -----
    The sum starts from the ``f = 0`` product and adds left to right, the order
    of :func:`npmf.core.prediction.predict`, so kernel and twin give the same bits.
    """
    acc = W[u, 0] * H[i, 0]
    for f in range(1, k):
        acc = acc + W[u, f] * H[i, f]
    return acc


@_inline
def prediction(mu, b_u, b_i, W, u, H, i, k):
    r"""One predicted rating, :math:`\hat r_{ui} = \mu + b_u + b_i + w_u \cdot h_i`.

    ``b_u`` and ``b_i`` are the bias values themselves (they live in 1-D arrays,
    in ``(M, 1)`` views or in slot ``k`` of a record, depending on the caller).
    Added left to right: ``((mu + b_u) + b_i) + dot``, as the NumPy twin does.
    """
    return mu + b_u + b_i + dot(W, u, H, i, k)


@_jit
def _predict(u, i, mu, W, H, bu, bi, out):
    k = W.shape[1]
    for j in range(u.shape[0]):
        uu = u[j]
        ii = i[j]
        out[j] = prediction(mu, bu[uu], bi[ii], W, uu, H, ii, k)
    return out


def predict_numba(W, H, bu, bi, mu, u, i):
    """Numba twin of :func:`npmf.core.prediction.predict`; float64 ndarray of shape (B,)."""
    return _predict(u, i, float(mu), W, H, bu, bi, np.empty(len(u), np.float64))
