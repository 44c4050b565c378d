"""The state of the Gibbs sampler of :class:`~npmf.BayesianMatrixFactorization`, and one sweep over it.

The conditionals are :mod:`npmf.bayes.gibbs` (NumPy, with their derivation); the
rows are drawn by their Numba twins in :mod:`npmf.bayes._kernels`.
"""

from typing import NamedTuple

import numpy as np

from . import gibbs
from ._kernels import residuals_numba, sample_implicit_numba, sample_rows_numba

__all__ = ["Chain", "Hyperpriors"]


class Hyperpriors(NamedTuple):
    """The fixed hyperpriors (Salakhutdinov & Mnih 2008): Normal-Wishart(0, beta_0, W_0 = I, nu_0) per block,
    Gamma(noise_shape, noise_rate) on the noise precision, N(mu_mean, 1 / mu_precision) on the global mean
    (precision 0: flat). ``nu_extra`` is nu_0 - d (0: nu_0 = d)."""

    beta_0: float = 2.0
    nu_extra: int = 0
    noise_shape: float = 1.0
    noise_rate: float = 1.0
    mu_mean: float = 0.0
    mu_precision: float = 0.0


DEFAULT_HYPERPRIORS = Hyperpriors()


class Chain:
    """The state of the Gibbs sampler, and one sweep over it (the order of :mod:`npmf.bayes.gibbs`).

    Side 0 is the users, side 1 the items. Each side has rows (bias, factors)
    as predictions see them, its ratings grouped by row, and, with implicit
    feedback on that side, the offset included in those factors: the scaled sum
    of the other side's implicit factors over the row's ratings (users: SVD++'s
    :math:`s_u`; items: its mirror). The prior is on the rows minus the offset.
    Every per-sweep array is allocated here, once.
    """

    def __init__(self, u, i, r, n_users, n_items, config, rng, hyper=DEFAULT_HYPERPRIORS):
        k = config.n_factors
        d = k + 1
        self.hyper = hyper
        self.codes, self.r = (u, i), np.array(r, dtype=np.float64)
        self.grouped = (gibbs.ratings_by_row(u, i, n_users), gibbs.ratings_by_row(i, u, n_items))
        self.rows = [np.zeros((n, d)) for n in (n_users, n_items)]  # (bias, factors + offset)
        for rows in self.rows:
            rows[:, 1:] = rng.normal(0.0, config.init_scale, (len(rows), k))
        self.priors = [(np.eye(d), np.zeros(d)), (np.eye(d), np.zeros(d))]  # (Lambda, Lambda mu) per block
        self.mu, self.alpha = float(r.mean()), 1.0
        self.implicit = {"none": (), "users": (0,), "both": (0, 1)}[config.implicit_feedback]
        self.offsets = [np.zeros((n, 0)) for n in (n_users, n_items)]  # per side: c_q sum of partners' implicit
        self.implicit_factors = [None, None]  # per side: the implicit factors of the *other* side's rows
        self.n_rated, self.scales, self.weights = [None, None], [None, None], [None, None]
        for side in self.implicit:
            other = 1 - side
            self.offsets[side] = np.zeros((len(self.rows[side]), k))
            self.implicit_factors[side] = np.zeros((len(self.rows[other]), k))
            self.n_rated[side] = np.diff(self.grouped[side][0]).astype(np.float64)
            self.scales[side] = 1.0 / np.sqrt(self.n_rated[side])
            mine, theirs = self.codes[side], self.codes[other]
            self.weights[side] = gibbs.implicit_weights(mine, theirs, self.scales[side], len(self.rows[other]))
            self.priors.append((np.eye(k), np.zeros(k)))
        # buffers, reused by every sweep
        self.sorted_r = [self.r[order] for _, _, order in self.grouped]
        self.targets = [np.empty(len(r)) for _ in (0, 1)]
        self.eps = [np.empty(rows.shape) for rows in self.rows]
        self.eps_implicit = [None if f is None else np.empty(f.shape[::-1]) for f in self.implicit_factors]
        # rows minus offsets, what the priors are drawn from (the rows themselves without an offset)
        self.base = [rows.copy() if side in self.implicit else rows for side, rows in enumerate(self.rows)]
        self.err = np.empty(len(r))

    def effective(self, side):
        """A side's rows as predictions see them: (bias, factors + implicit offset); not a copy."""
        return self.rows[side]

    def errors(self):
        """Residuals r - r_hat of every rating at the current state (a buffer the next sweep overwrites)."""
        self.err_sums = residuals_numba(self.rows[0], self.rows[1], self.mu, *self.codes, self.r, self.err)
        return self.err

    def sweep(self, rng):
        """Draw every block once from its conditional; returns the training MSE after the sweep."""
        hyper = self.hyper
        for side in (0, 1):
            ptr, partners, _ = self.grouped[side]
            np.subtract(self.sorted_r[side], self.mu, out=self.targets[side])
            rng.standard_normal(out=self.eps[side])
            sample_rows_numba(
                self.rows[side], self.rows[1 - side], ptr, partners, self.targets[side], self.alpha,
                *self.priors[side], self.offsets[side], self.eps[side],
            )  # fmt: skip
        for q, side in enumerate(self.implicit):
            rng.standard_normal(out=self.eps_implicit[side])
            ptr, partners, _ = self.grouped[1 - side]
            gibbs.sample_implicit(
                self.implicit_factors[side], self.offsets[side], self.rows[side], self.n_rated[side],
                self.scales[side], self.weights[side], ptr, partners, self.priors[side], self.priors[2 + q],
                self.eps_implicit[side], step=sample_implicit_numba,
            )  # fmt: skip
        mse = self.sample_mean_and_noise(rng)  # the implicit step moves no prediction: residuals are final
        for side in self.implicit:
            np.subtract(self.rows[side][:, 1:], self.offsets[side], out=self.base[side][:, 1:])
            self.base[side][:, 0] = self.rows[side][:, 0]
        blocks = self.base + [self.implicit_factors[side] for side in self.implicit]
        self.priors = [
            gibbs.sample_normal_wishart(Z, hyper.beta_0, np.eye(Z.shape[1]), Z.shape[1] + hyper.nu_extra, rng)
            for Z in blocks
        ]
        return mse

    def sample_mean_and_noise(self, rng):
        """Draw the global mean, then the noise precision from the residuals at the new mean; returns their MSE."""
        hyper = self.hyper
        err = self.errors()
        total, squares = self.err_sums
        new_mu = gibbs.sample_global_mean(self.mu, err, self.alpha, rng, (hyper.mu_mean, hyper.mu_precision), total)
        shift, n = new_mu - self.mu, len(err)
        self.mu = new_mu
        # the residuals at the new mu: sum (e - shift)^2, without a BLAS dot (its threads spin against ours)
        sse = squares - 2.0 * shift * total + n * shift * shift
        self.alpha = gibbs.sample_noise_precision(sse, n, hyper.noise_shape, hyper.noise_rate, rng)
        return sse / n

    def set_ratings(self, r):
        """Replace the ratings (same pairs, in the same order), as a joint-distribution test does between sweeps."""
        self.r[:] = r
        for side, (_, _, order) in enumerate(self.grouped):
            self.sorted_r[side][:] = r[order]
