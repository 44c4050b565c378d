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

:func:`posterior_means` computes it for many users at once (NumPy, batched);
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


def posterior_means(Z, t, rows, n_rows, alpha, Lam, Lam_mu):
    r"""The posterior mean (the regularised least-squares minimiser) of ``n_rows`` rows at once.

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
    Lam : ndarray of shape (d, d) or (n_rows, d, d)
        Prior precision :math:`\Lambda`, shared or per row; may be singular (zero).
    Lam_mu : ndarray of shape (d,) or (n_rows, d)
        :math:`\Lambda\mu_0`.

    Returns
    -------
    ndarray of shape (n_rows, d)
        A row without ratings gets the prior mean (zero when :math:`\Lambda = 0`).
    """
    d = Z.shape[1]
    P = np.array(np.broadcast_to(Lam, (n_rows, d, d)), dtype=np.float64)
    b = np.array(np.broadcast_to(Lam_mu, (n_rows, d)), dtype=np.float64)
    np.add.at(P, rows, alpha * (Z[:, :, None] * Z[:, None, :]))
    np.add.at(b, rows, alpha * (t[:, None] * Z))
    definite = np.linalg.eigvalsh(np.broadcast_to(Lam, (n_rows, d, d)))[:, 0] > 0
    x = np.empty((n_rows, d))
    if definite.any():
        x[definite] = np.linalg.solve(P[definite], b[definite][:, :, None])[:, :, 0]
    if not definite.all():  # no prior: the minimum-norm least-squares solution
        pinv = np.linalg.pinv(P[~definite], rcond=_RCOND, hermitian=True)
        x[~definite] = np.einsum("gab,gb->ga", pinv, b[~definite])
    return x


def posterior_means_reference(Z, t, rows, n_rows, alpha, Lam, Lam_mu):
    r""":func:`posterior_means` one row at a time, as the least-squares problem it minimises.

    With :math:`\Lambda = L L^\top` and :math:`\mu_0 = \Lambda^{-1}(\Lambda\mu_0)`,
    the objective is :math:`\lVert A x - y \rVert^2` for :math:`A =
    (\sqrt\alpha Z; L^\top)` and :math:`y = (\sqrt\alpha t; L^\top\mu_0)`,
    solved by ``np.linalg.lstsq`` (minimum norm when rank-deficient).
    """
    d = Z.shape[1]
    Lam = np.broadcast_to(Lam, (n_rows, d, d))
    Lam_mu = np.broadcast_to(Lam_mu, (n_rows, d))
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
