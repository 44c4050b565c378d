r"""``fold_in`` for :class:`~npmf.MatrixFactorization`: each new user's row is a ridge regression.

The training loss (:mod:`npmf.sgd.gradients`) applies L2 once per occurrence
of a row in a minibatch, so over an epoch user :math:`u` is penalised once per
rating. The part of the loss that depends on :math:`u`'s row, summed over their
:math:`n_u` ratings (the item penalties do not depend on it), is

.. math::

    L_u = \sum_{j \in R(u)} \big[(\mu + b_u + b_j + w_u \cdot h_j - r_{uj})^2
          + \lambda (\lVert w_u \rVert^2 + b_u^2)\big]
        = \lVert Z x_u - t \rVert^2 + n_u \lambda \lVert x_u \rVert^2

with :math:`x_u = (b_u, w_u)`, :math:`z_j = (1, h_j)` and
:math:`t_j = r_{uj} - \mu - b_j` (without biases :math:`x_u = w_u`,
:math:`z_j = h_j` and :math:`\mu = b_j = 0`). Its exact minimiser is the
ridge solution :math:`x_u = (Z^\top Z + n_u\lambda I)^{-1} Z^\top t`: the
posterior mean of :mod:`npmf.core.fold_in` with :math:`\alpha = 1`,
:math:`\Lambda = n_u\lambda I` (``scale`` :math:`n_u` times :math:`\lambda I`), :math:`\mu_0 = 0`.
With ``reg=0`` and fewer ratings than unknowns it is the minimum-norm least-squares solution.

With ``non_negative=True`` the factor part :math:`w_u` of that solution is
projected onto :math:`\ge 0` (the bias stays free), as training projects after
every step, so a folded-in row is as non-negative as a trained one. This is the
projection of the unconstrained minimiser, not the minimiser under the
constraint (a non-negative least-squares problem): cheap, and the same where
the ridge solution is already non-negative, but slightly worse in loss where
it is not.
"""

import numpy as np

from ..core.fold_in import posterior_means

__all__ = ["SGDFoldIn", "ridge_rows"]


def ridge_rows(H, bi, mu, reg, biases, g, i, r, n_users):
    """Each user's ridge solution (see the module docstring).

    Returns
    -------
    factors : ndarray (n_users, k), float64
    bias : ndarray (n_users,), zero without biases
    """
    H = np.asarray(H, np.float64)
    t = r - mu - bi[i] if biases else r.astype(np.float64)
    Z = np.column_stack([np.ones(len(i)), H[i]]) if biases else H[i]
    d = Z.shape[1]
    n_u = np.bincount(g, minlength=n_users).astype(np.float64)
    x = posterior_means(Z, t, g, n_users, 1.0, reg * np.eye(d), np.zeros(d), scale=n_u)
    if biases:
        return x[:, 1:], x[:, 0]
    return x, np.zeros(n_users)


class SGDFoldIn:
    """The :class:`~npmf.MatrixFactorization` side of :meth:`~npmf.core.fold_in.FoldInMixin.fold_in`."""

    def _fold_in_rows(self, g, i, r, n_users):
        mu = self.global_mean_ if self.biases else 0.0
        factors, bias = ridge_rows(self.item_factors_, self.item_bias_, mu, self.reg, self.biases, g, i, r, n_users)
        if self.non_negative:
            np.maximum(factors, 0, out=factors)
        return factors, bias

    def _fold_in_grow(self, n_new):
        # New users start with zero Adam moments, as partial_fit's new rows do (blocks 0 and 2: W and bu).
        for state in (self._m, self._v):
            for block in (0, 2):
                state[block] = np.concatenate([state[block], np.zeros((n_new,) + state[block].shape[1:])]).astype(
                    state[block].dtype
                )
