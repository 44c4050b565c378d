r"""The one prediction kernel every fitted model uses: :math:`\hat r = \mu + b_u + b_i + w_u \cdot h_i`.

Twin of :func:`npmf.core.prediction.predict`; the tests hold them equal.
"""

import numba
import numpy as np

__all__ = ["predict_numba"]

_jit = numba.njit(cache=True, error_model="numpy", nogil=True)


@_jit
def _predict(u, i, mu, W, H, bu, bi, out):
    k = W.shape[1]
    for j in range(u.shape[0]):
        uu = u[j]
        ii = i[j]
        dot = W[uu, 0] * H[ii, 0]
        for f in range(1, k):
            dot = dot + W[uu, f] * H[ii, f]
        out[j] = mu + bu[uu] + bi[ii] + dot
    return out


def predict_numba(W, H, bu, bi, mu, u, i):
    """Numba twin of :func:`npmf.core.prediction.predict`; float64 ndarray of shape (B,)."""
    return _predict(u, i, float(mu), W, H, bu, bi, np.empty(len(u), np.float64))
