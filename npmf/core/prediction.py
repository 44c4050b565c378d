r"""Prediction in plain NumPy, the reference for the kernel in :mod:`npmf.core._kernels`.

.. math:: \hat r_{ui} = \mu + b_u + b_i + w_u \cdot h_i
"""

__all__ = ["predict"]


def predict(W, H, bu, bi, mu, u, i):
    """Predicted ratings ``mu + bu[u] + bi[i] + sum_f W[u, f] * H[i, f]``.

    Parameters
    ----------
    W : ndarray of shape (M, k)
    H : ndarray of shape (N, k)
    bu : ndarray of shape (M,)
    bi : ndarray of shape (N,)
    mu : float
    u, i : int ndarray of shape (B,)
        Row indices into ``W``/``bu`` and ``H``/``bi``.

    Returns
    -------
    ndarray of shape (B,)
    """
    # The factor sum runs left to right over f, as the kernels do, so both
    # give the same bits.
    Wu, Hi = W[u], H[i]
    dot = Wu[:, 0] * Hi[:, 0]
    for f in range(1, W.shape[1]):
        dot = dot + Wu[:, f] * Hi[:, f]
    return mu + bu[u] + bi[i] + dot
