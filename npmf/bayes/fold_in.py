r"""``fold_in`` for :class:`~npmf.BayesianMatrixFactorization`: the posterior mean of a new user's row.

The fitted model keeps :math:`S` samples of the item factors side by side
(scaled by :math:`1/\sqrt S`) and, from the fit (``_fold_in_prior``), each
kept sample's noise precision :math:`\alpha^{(s)}` and user prior
:math:`(\Lambda^{(s)}_U, \Lambda^{(s)}_U\mu^{(s)}_U)`. Given sample
:math:`s`, a user's row :math:`x_u = (b_u, w_u)` has the Gaussian conditional
of :func:`npmf.bayes.gibbs.sample_rows`; its mean is

.. math::

    m^{(s)}_u = \big(\Lambda^{(s)}_U + \alpha^{(s)} \textstyle\sum_j \tilde z_j \tilde z_j^\top\big)^{-1}
    \big(\Lambda^{(s)}_U\mu^{(s)}_U + \alpha^{(s)} \textstyle\sum_j t_j \tilde z_j\big),
    \qquad \tilde z_j = (1, h^{(s)}_j),\ t_j = r_{uj} - \mu - c_j.

The fold-in row is :math:`m^{(s)}_u` for every kept sample, laid side by side
like the fitted rows (factors over :math:`\sqrt S`, bias averaged), so the
prediction is the average over samples of each sample's posterior-mean
prediction. Two approximations, because the model does not keep what the exact
answer needs: the item biases :math:`c_j` and :math:`\mu` are their posterior
means, not each sample's; and with implicit feedback the new user's factors
are solved as the effective factors :math:`w_u + s_u` under the prior of
:math:`w_u`, since the items' implicit factors :math:`y_j` are not kept.
"""

import numpy as np

from ..core.fold_in import posterior_means

__all__ = ["BayesFoldIn", "posterior_rows"]


def posterior_rows(H_all, bi, mu, n_samples, prior, g, i, r, n_users):
    """The fold-in rows: per kept sample the posterior mean, side by side (see the module docstring).

    Parameters
    ----------
    H_all : ndarray (n_items, S k), the fitted item factors (samples side by side over sqrt(S))
    bi, mu : posterior means of the item biases and the global mean
    n_samples : S
    prior : (alpha (S,), Lam (S, d, d), Lam_mu (S, d)), each kept sample's
    g, i, r : the ratings' user (0 .. n_users - 1), item code and value

    Returns
    -------
    factors : ndarray (n_users, S k); bias : ndarray (n_users,)
    """
    S = n_samples
    k = H_all.shape[1] // S
    alpha, Lam, Lam_mu = prior
    t = r - mu - bi[i]
    factors, bias = np.empty((n_users, S * k)), np.zeros(n_users)
    for s in range(S):
        Z = np.column_stack([np.ones(len(i)), np.sqrt(S) * H_all[i, s * k : (s + 1) * k]])
        x = posterior_means(Z, t, g, n_users, alpha[s], Lam[s], Lam_mu[s])
        factors[:, s * k : (s + 1) * k] = x[:, 1:] / np.sqrt(S)
        bias += x[:, 0]
    return factors, bias / S


class BayesFoldIn:
    """The :class:`~npmf.BayesianMatrixFactorization` side of :meth:`~npmf.core.fold_in.FoldInMixin.fold_in`."""

    def _fold_in_rows(self, g, i, r, n_users):
        prior = getattr(self, "_fold_in_prior", None)
        if prior is None:
            raise ValueError(
                "this model was fitted by an npmf older than fold_in and does not keep its priors; "
                "refit it to fold users in"
            )
        return posterior_rows(
            self.item_factors_, self.item_bias_, self.global_mean_, self.n_samples_, prior, g, i, r, n_users
        )
