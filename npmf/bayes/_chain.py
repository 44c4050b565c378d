"""The state of the Gibbs sampler of :class:`~npmf.BayesianMatrixFactorization`, and one sweep over it.

The conditionals are :mod:`npmf.bayes.gibbs` (NumPy, with their derivation); the
rows are drawn by their Numba twins in :mod:`npmf.bayes._kernels`.
"""

import numpy as np

from . import gibbs
from ._kernels import sample_implicit_numba, sample_rows_numba

__all__ = ["Chain"]

# Hyperpriors (Salakhutdinov & Mnih 2008): Normal-Wishart with mean 0,
# beta_0 = 2, W_0 = I, nu_0 = d; a vague Gamma(1, 1) on the noise precision.
BETA_0 = 2.0
NOISE_SHAPE, NOISE_RATE = 1.0, 1.0


class Chain:
    """The state of the Gibbs sampler, and one sweep over it (the order of :mod:`npmf.bayes.gibbs`).

    Side 0 is the users, side 1 the items. Each side has rows (bias, factors),
    its ratings grouped by row, and, with implicit feedback on that side, an
    offset added to its factors: the scaled sum of the other side's implicit
    factors over the row's ratings (users: SVD++'s :math:`s_u`; items: its mirror).
    """

    def __init__(self, u, i, r, n_users, n_items, config, rng):
        k = config.n_factors
        d = k + 1
        self.codes, self.r = (u, i), r
        self.grouped = (gibbs.ratings_by_row(u, i, n_users), gibbs.ratings_by_row(i, u, n_items))
        self.rows = [np.zeros((n, d)) for n in (n_users, n_items)]  # (bias, factors)
        for rows in self.rows:
            rows[:, 1:] = rng.normal(0.0, config.init_scale, (len(rows), k))
        self.priors = [(np.eye(d), np.zeros(d)), (np.eye(d), np.zeros(d))]  # (Lambda, Lambda mu) per block
        self.mu, self.alpha = float(r.mean()), 1.0
        self.implicit = {"none": (), "users": (0,), "both": (0, 1)}[config.implicit_feedback]
        self.offsets = [None, None]  # per side: c_q sum of the partners' implicit factors
        self.implicit_factors = [None, None]  # per side: the implicit factors of the *other* side's rows
        self.scales = [None, None]
        for side in self.implicit:
            other = 1 - side
            self.offsets[side] = np.zeros((len(self.rows[side]), k))
            self.implicit_factors[side] = np.zeros((len(self.rows[other]), k))
            self.scales[side] = 1.0 / np.sqrt(np.diff(self.grouped[side][0]))
            self.priors.append((np.eye(k), np.zeros(k)))

    def effective(self, side):
        """A side's rows as predictions see them: (bias, factors + implicit offset)."""
        if self.offsets[side] is None:
            return self.rows[side]
        rows = self.rows[side].copy()
        rows[:, 1:] += self.offsets[side]
        return rows

    def errors(self):
        """Residuals r - r_hat of every rating at the current state."""
        u, i = self.codes
        return gibbs.residuals(self.effective(0), self.effective(1), self.mu, u, i, self.r)

    def sweep(self, rng):
        """Draw every block once from its conditional; returns the training MSE after the sweep."""
        for side in (0, 1):
            other = self.effective(1 - side)
            target = self.r - self.mu
            if self.offsets[side] is not None:  # the offset's part of the prediction is fixed here
                mine, theirs = self.codes[side], self.codes[1 - side]
                target = target - np.einsum("nk,nk->n", self.offsets[side][mine], other[theirs, 1:])
            _sample_side(self.rows[side], other, self.grouped[side], target, self.alpha, self.priors[side], rng)
        for q, side in enumerate(self.implicit):
            ptr, partners, order = self.grouped[side]
            other_ptr, other_partners, _ = self.grouped[1 - side]
            factors = np.ascontiguousarray(self.effective(1 - side)[:, 1:])
            eps = rng.standard_normal(self.implicit_factors[side].shape)
            sample_implicit_numba(
                self.implicit_factors[side], factors, self.offsets[side], ptr, partners, other_ptr, other_partners,
                self.errors()[order], self.scales[side], self.alpha, *self.priors[2 + q], eps,
            )  # fmt: skip
        err = self.errors()
        new_mu = gibbs.sample_global_mean(self.mu, err, self.alpha, rng)
        err -= new_mu - self.mu
        self.mu = new_mu
        sse = float(err @ err)
        self.alpha = gibbs.sample_noise_precision(sse, len(err), NOISE_SHAPE, NOISE_RATE, rng)
        blocks = self.rows + [self.implicit_factors[side] for side in self.implicit]
        self.priors = [gibbs.sample_normal_wishart(Z, BETA_0, np.eye(Z.shape[1]), Z.shape[1], rng) for Z in blocks]
        return sse / len(err)


def _sample_side(rows, other, grouped, target, alpha, prior, rng):
    """Draw every row of ``rows`` given the ``other`` side (gibbs.sample_rows, in Numba)."""
    ptr, partners, order = grouped
    eps = rng.standard_normal(rows.shape)
    sample_rows_numba(rows, other, ptr, partners, target[order], alpha, *prior, eps)
