r"""Exercise: write the gradients of matrix factorisation's minibatch loss.

Fill in the body of :func:`gradients` below, then check it against central
finite differences (see ``README.md`` in this folder):

    npmf gradcheck --gradients examples/exercises/gradients_exercise.py:gradients

The model predicts ``r_hat = mu + bu[u] + bi[i] + W[u] @ H[i]``, and a
minibatch of ``B`` triples ``(u[b], i[b], r[b])`` has the loss

.. math::

    L = \frac{1}{B}\sum_{b=1}^{B} \Big[ e_b^2
        + \lambda \big(\lVert w_{u_b}\rVert^2 + \lVert h_{i_b}\rVert^2
        + b_{u_b}^2 + b_{i_b}^2\big) \Big],
    \qquad e_b = \hat r_{u_b i_b} - r_b .

The penalty sits inside the sum: a row that occurs twice in the batch is
penalised twice. Derive dL/dW, dL/dH, dL/dbu and dL/dbi with pencil and paper
first (``docs/derivation.md``, section 3, does it step by step if you are
stuck), then write them with NumPy.
"""

import numpy as np  # noqa: F401  (you will need it)


def gradients(W, H, bu, bi, u, i, e, reg=0.0):
    """Gradients of the minibatch loss ``L`` with respect to ``W``, ``H``, ``bu`` and ``bi``.

    Parameters
    ----------
    W : ndarray, shape (M, k)
        User factors; row ``W[u[b]]`` is the user of triple ``b``.
    H : ndarray, shape (N, k)
        Item factors.
    bu, bi : ndarray, shapes (M,) and (N,)
        User and item biases.
    u, i : ndarray of int, shape (B,)
        The batch's users and items (row numbers). A row may occur more than once.
    e : ndarray, shape (B,)
        The residuals ``e[b] = r_hat[b] - r[b]`` (prediction minus rating), already computed.
    reg : float
        The L2 strength lambda.

    Returns
    -------
    gW, gH, gbu, gbi : ndarrays shaped like W, H, bu, bi (float64)
        dL/dW, dL/dH, dL/dbu, dL/dbi. Rows absent from the batch have a zero gradient.
    """
    raise NotImplementedError("write the body of gradients(): see the docstring and README.md")
