"""The Normal-Wishart draw on degenerate rows: what made scikit-learn's checks fail with LinAlgError (issue 13)."""

import numpy as np
import pytest

from npmf.bayes import gibbs


@pytest.mark.parametrize("scale", [1e4, 1e6])
def test_rows_as_large_and_collinear_as_a_diverged_chain_still_give_a_positive_definite_draw(scale):
    # 8 rows of 10 columns, large and nearly collinear: (W*)^{-1} is conditioned at about 1e13 for
    # scale 1e6, as the implicit factors of 100 one-rating users once made it. Inverting it first
    # (the old draw) raised LinAlgError in 46 of 50 seeds at 1e4 and in all at 1e6.
    for seed in range(20):
        rng = np.random.default_rng(seed)
        X = rng.normal(size=(8, 10)) * scale + rng.normal(size=(8, 1)) * scale
        Lam, Lam_mu = gibbs.sample_normal_wishart(X, 2.0, np.eye(10), 10, rng)
        np.testing.assert_array_equal(Lam, Lam.T)
        np.linalg.cholesky(Lam)  # positive definite as computed, so the row conditionals can use it
        assert np.isfinite(Lam_mu).all()


def test_the_degrees_of_freedom_must_make_a_proper_wishart():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="nu0=2 must exceed d - 1 = 2"):
        gibbs.sample_normal_wishart(rng.normal(size=(5, 3)), 2.0, np.eye(3), 2, rng)
    gibbs.sample_normal_wishart(rng.normal(size=(5, 3)), 2.0, np.eye(3), 2.5, rng)  # real nu0 > d - 1 is proper
