r"""Folding new users into a fitted model: each user's row solved in closed form against the fixed items.

Both families fold a user in the same way. Seen from one user, the model is a
linear regression: with the item side fixed, the user's row :math:`x_u`
(their bias, when the model has biases, then their factors) predicts rating
:math:`r_{uj}` through the regressors :math:`z_j` (1 for the bias, then
:math:`h_j`) and the offset :math:`\mu + b_j`. Under a Gaussian prior
:math:`x_u \sim \mathcal N(\mu_0, \Lambda^{-1})` and noise precision
:math:`\alpha`, the posterior mean, which is also the minimiser of

.. math::

    \alpha \sum_{j \in R(u)} (r_{uj} - \mu - b_j - x_u \cdot z_j)^2
    + (x_u - \mu_0)^\top \Lambda (x_u - \mu_0),

is

.. math::

    x_u = P^{-1} \Big(\Lambda\mu_0 + \alpha \sum_j t_j z_j\Big), \qquad
    P = \Lambda + \alpha \sum_j z_j z_j^\top, \qquad t_j = r_{uj} - \mu - b_j.

:func:`posterior_means` computes it for many users, one small dense solve each (for a
user with fewer ratings :math:`n_u` than unknowns, by the Woodbury identity
:math:`x_u = \mu_0 + \Lambda^{-1}Z^\top(\alpha^{-1}I + Z\Lambda^{-1}Z^\top)^{-1}(t - Z\mu_0)`,
an :math:`n_u \times n_u` solve);
:func:`posterior_means_reference` is the same minimiser written as an
augmented least-squares problem, one user at a time, for the tests. When
:math:`P` is singular (no L2 and fewer ratings than unknowns) the
minimum-norm solution is taken. The families say what :math:`\alpha`,
:math:`\Lambda` and :math:`\mu_0` are (:mod:`npmf.sgd.fold_in`,
:mod:`npmf.bayes.fold_in`); :class:`FoldInMixin` does the rest: validation,
the id table, and swapping the new rows in.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .typing import ArrayLike, Ids
from .validation import check_triples

__all__ = ["FoldInMixin", "posterior_means", "posterior_means_reference"]

# Singular values below this fraction of the largest count as zero in the minimum-norm solve.
_RCOND = 1e-12


def posterior_means(Z, t, rows, n_rows, alpha, Lam, Lam_mu, scale=None):
    r"""The posterior mean (the regularised least-squares minimiser) of ``n_rows`` rows.

    Row :math:`g` has the prior precision :math:`s_g\Lambda` and mean
    :math:`\mu_0` (so :math:`s_g\Lambda\mu_0` on the right-hand side).

    Parameters
    ----------
    Z : ndarray of shape (n, d)
        The regressors :math:`z_j` of each rating.
    t : ndarray of shape (n,)
        The targets :math:`t_j` (the rating minus its offset).
    rows : int ndarray of shape (n,)
        Which row (0 .. n_rows - 1) each rating belongs to.
    n_rows : int
    alpha : float
        Noise precision :math:`\alpha`.
    Lam : ndarray of shape (d, d)
        Prior precision :math:`\Lambda`; may be zero.
    Lam_mu : ndarray of shape (d,)
        :math:`\Lambda\mu_0`.
    scale : ndarray of shape (n_rows,), optional
        :math:`s_g \ge 0`, each row's multiple of the prior (default 1).

    Returns
    -------
    ndarray of shape (n_rows, d)
        A row without ratings gets the prior mean (zero when its prior is zero).
    """
    d = Z.shape[1]
    scale = np.ones(n_rows) if scale is None else np.asarray(scale, np.float64)
    definite = (scale > 0) & (np.linalg.eigvalsh(Lam)[0] > 0)
    if definite.any():
        Lam_inv = np.linalg.inv(Lam)
        mu0 = Lam_inv @ Lam_mu
    order = np.argsort(rows, kind="stable")
    ptr = np.zeros(n_rows + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=ptr[1:])
    Z, t = Z[order], t[order]
    x = np.empty((n_rows, d))
    for g in range(n_rows):  # one small dense solve per row: BLAS does the work
        Zg, tg = Z[ptr[g] : ptr[g + 1]], t[ptr[g] : ptr[g + 1]]
        if not definite[g]:  # no prior: the minimum-norm least-squares solution
            x[g] = np.linalg.lstsq(Zg, tg, rcond=_RCOND)[0] if len(tg) else 0.0
        elif len(tg) < d:  # fewer ratings than unknowns: the same mean by Woodbury, an n_g x n_g solve
            C = (Lam_inv @ Zg.T) / scale[g]
            x[g] = mu0 + C @ np.linalg.solve(np.eye(len(tg)) / alpha + Zg @ C, tg - Zg @ mu0)
        else:
            P = scale[g] * Lam + alpha * (Zg.T @ Zg)
            x[g] = np.linalg.solve(P, scale[g] * Lam_mu + alpha * (Zg.T @ tg))
    return x


def posterior_means_reference(Z, t, rows, n_rows, alpha, Lam, Lam_mu, scale=None):
    r""":func:`posterior_means` one row at a time, as the least-squares problem it minimises.

    With :math:`\Lambda = L L^\top` and :math:`\mu_0 = \Lambda^{-1}(\Lambda\mu_0)`,
    the objective is :math:`\lVert A x - y \rVert^2` for :math:`A =
    (\sqrt\alpha Z; L^\top)` and :math:`y = (\sqrt\alpha t; L^\top\mu_0)`,
    solved by ``np.linalg.lstsq`` (minimum norm when rank-deficient).
    """
    d = Z.shape[1]
    scale = np.ones(n_rows) if scale is None else scale
    Lam = np.asarray(scale)[:, None, None] * Lam
    Lam_mu = np.asarray(scale)[:, None] * Lam_mu
    x = np.empty((n_rows, d))
    for q in range(n_rows):
        if np.linalg.eigvalsh(Lam[q])[0] > 0:
            Lt = np.linalg.cholesky(Lam[q]).T
            prior_rows, prior_target = Lt, Lt @ np.linalg.solve(Lam[q], Lam_mu[q])
        else:  # the zero prior adds nothing
            prior_rows, prior_target = np.zeros((0, d)), np.zeros(0)
        mine = rows == q
        A = np.vstack([np.sqrt(alpha) * Z[mine], prior_rows])
        y = np.concatenate([np.sqrt(alpha) * t[mine], prior_target])
        x[q] = np.linalg.lstsq(A, y, rcond=_RCOND)[0]
    return x


class FoldInMixin:
    """``fold_in``: serve new users without retraining. A family supplies ``_fold_in_rows``."""

    def fold_in(self, users: Ids, items: Ids, ratings: ArrayLike):
        """Solve the rows (and biases) of ``users`` from their ratings, the item side fixed.

        Each user given gets the exact minimiser of their part of the
        model's objective, in closed form (see :mod:`npmf.core.fold_in`): for
        :class:`~npmf.MatrixFactorization` a ridge regression with the
        model's L2 strength ``reg``, for
        :class:`~npmf.BayesianMatrixFactorization` the posterior mean under
        the fitted priors. No item, bias or other user changes, bit for bit,
        and ``global_mean_`` stays as fitted.

        Users not in the model are appended to ``user_ids_`` (in order of
        first appearance) with their new rows. A user already in the model is
        re-solved from the ratings given here alone: pass all of their
        ratings to keep the old ones. Ratings of items the model does not know
        are ignored (their items have no factors); a user with none left gets
        what an unknown user gets. The ratings join the training pairs, so
        ``recommend`` leaves their items out.

        Parameters
        ----------
        users, items : array-like of shape (n,)
            Raw ids, of the same kind (integers or strings) as the model's.
        ratings : array-like of shape (n,)

        Returns
        -------
        self
        """
        self._check_fitted()
        users, items, ratings = check_triples(users, items, ratings)
        group, uniques = pd.factorize(users)
        uniques = np.asarray(list(uniques))  # strings as str, not object, as the model keeps them
        if _kind(uniques) != _kind(self.user_ids_):
            raise ValueError(
                f"users must be ids of the model's kind ({_kind(self.user_ids_)}, like {self.user_ids_[0]!r}); "
                f"got {_kind(uniques)} ids such as {uniques[0]!r}"
            )
        codes = self._codes(self.user_ids_, uniques).astype(np.int64)
        new = codes < 0
        user_ids = np.concatenate([self.user_ids_, uniques[new]])
        i = self._codes(self.item_ids_, items)
        known = i >= 0
        g, i, r = group[known], i[known], ratings[known]
        factors, bias = self._fold_in_rows(g, i, r, len(uniques))

        # Everything is built aside and swapped in at the end: a failure changes nothing.
        codes[new] = len(self.user_ids_) + np.arange(int(new.sum()))
        W = _grown(self.user_factors_, int(new.sum()))
        bu = _grown(self.user_bias_, int(new.sum()))
        W[codes] = factors
        if self.biases:
            bu[codes] = bias
        seen = tuple(np.concatenate([old, add.astype(old.dtype)]) for old, add in zip(self._seen, (codes[g], i)))
        self._fold_in_grow(int(new.sum()))
        self.user_ids_, self.user_factors_, self.user_bias_, self._seen = user_ids, W, bu, seen
        return self

    def _fold_in_rows(self, g, i, r, n_users):
        """The family's solve: factors (n_users, K) and biases (n_users,) from ratings of known items ``i``."""
        raise NotImplementedError(f"{type(self).__name__} has no fold_in")

    def _fold_in_grow(self, n_new):
        """Grow whatever further per-user state the family keeps (Adam's moments) by ``n_new`` rows."""


def _kind(ids):
    """'integer', 'text' or the dtype's name: the kinds of id that may share one table."""
    kind = ids.dtype.kind
    if kind == "O" and len(ids) and all(isinstance(x, str) for x in ids):
        kind = "U"
    return {"i": "integer", "u": "integer", "U": "text", "S": "text"}.get(kind, str(ids.dtype))


def _grown(a, n_new):
    """A copy of ``a`` with ``n_new`` rows of zeros appended."""
    out = np.zeros((len(a) + n_new,) + a.shape[1:], a.dtype)
    out[: len(a)] = a
    return out
