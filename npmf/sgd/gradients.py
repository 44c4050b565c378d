r"""The model, its loss and its hand-derived gradients, in plain NumPy.

This module is the reference implementation and the text to learn from; the
Numba kernels in :mod:`npmf.sgd._kernels` compute exactly the same numbers and the
tests hold them to it. ``docs/derivation.md`` derives every line below.

Notation (the code uses the same symbols):

* ``W`` — user factors, shape ``(M, k)``; row ``w_u``.
* ``H`` — item factors, shape ``(N, k)``; row ``h_i``.
* ``bu``, ``bi`` — user and item biases, shapes ``(M,)`` and ``(N,)``;
  ``mu`` the global mean. Without biases all three are zero.
* ``u``, ``i``, ``r`` — a minibatch of ``B`` (user, item, rating) triples.

Prediction

.. math:: \hat r_{ui} = \mu + b_u + b_i + w_u \cdot h_i

Minibatch loss, with L2 applied once per occurrence of a row in the batch
(as Surprise and Funk's SVD do, so a row is shrunk in proportion to how often
it is trained):

.. math::

    L = \frac{1}{B}\sum_{b=1}^{B} \Big[ e_b^2
        + \lambda \big(\lVert w_{u_b}\rVert^2 + \lVert h_{i_b}\rVert^2
        + b_{u_b}^2 + b_{i_b}^2\big) \Big],
    \qquad e_b = \hat r_{u_b i_b} - r_b

Gradients: each occurrence ``b`` contributes

.. math::

    \frac{\partial L}{\partial w_{u_b}} \mathrel{+}= \frac{2}{B}(e_b h_{i_b} + \lambda w_{u_b}), \quad
    \frac{\partial L}{\partial h_{i_b}} \mathrel{+}= \frac{2}{B}(e_b w_{u_b} + \lambda h_{i_b}),

    \frac{\partial L}{\partial b_{u_b}} \mathrel{+}= \frac{2}{B}(e_b + \lambda b_{u_b}), \quad
    \frac{\partial L}{\partial b_{i_b}} \mathrel{+}= \frac{2}{B}(e_b + \lambda b_{i_b}),

and a row that occurs twice in the batch receives the sum of both
contributions (``np.add.at``, a scatter-add). Rows absent from the batch get a
zero gradient.
"""

import numpy as np

from ..core.prediction import predict

__all__ = ["predict", "errors", "loss", "gradients", "loss_and_gradients"]


def errors(W, H, bu, bi, mu, u, i, r):
    """Residuals ``e = r_hat - r``, shape ``(B,)``."""
    return predict(W, H, bu, bi, mu, u, i) - r


def loss(W, H, bu, bi, mu, u, i, r, reg=0.0):
    """Minibatch loss ``L`` (see the module docstring); a float."""
    e = errors(W, H, bu, bi, mu, u, i, r)
    penalty = (W[u] ** 2).sum(axis=1) + (H[i] ** 2).sum(axis=1) + bu[u] ** 2 + bi[i] ** 2
    return float(np.mean(e * e + reg * penalty))


def gradients(W, H, bu, bi, u, i, e, reg=0.0):
    """Gradients of ``L`` with respect to ``W, H, bu, bi``, from residuals ``e``.

    Returns
    -------
    gW, gH, gbu, gbi : ndarrays shaped like ``W, H, bu, bi``
        Zero in every row that is not in the batch.
    """
    c = 2.0 / len(e)
    gW, gH = np.zeros_like(W), np.zeros_like(H)
    gbu, gbi = np.zeros_like(bu), np.zeros_like(bi)
    # np.add.at, not gW[u] += ...: a row present twice must get both terms.
    np.add.at(gW, u, c * (e[:, None] * H[i] + reg * W[u]))
    np.add.at(gH, i, c * (e[:, None] * W[u] + reg * H[i]))
    np.add.at(gbu, u, c * (e + reg * bu[u]))
    np.add.at(gbi, i, c * (e + reg * bi[i]))
    return gW, gH, gbu, gbi


def loss_and_gradients(W, H, bu, bi, mu, u, i, r, reg=0.0):
    """``L`` and its four gradients, computing the residuals once.

    Returns
    -------
    L : float
    grads : tuple (gW, gH, gbu, gbi)
    """
    e = errors(W, H, bu, bi, mu, u, i, r)
    penalty = (W[u] ** 2).sum(axis=1) + (H[i] ** 2).sum(axis=1) + bu[u] ** 2 + bi[i] ** 2
    L = float(np.mean(e * e + reg * penalty))
    return L, gradients(W, H, bu, bi, u, i, e, reg)
