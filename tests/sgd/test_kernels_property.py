"""Property test: the Numba epoch equals its NumPy twin on random problems of any shape."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from npmf.sgd._kernels import epoch_numba
from npmf.sgd.config import SGDConfig
from npmf.sgd.optimizers import OPTIMIZERS, adam_step_sizes, epoch_numpy


@settings(max_examples=40, deadline=None)
@given(
    n_users=st.integers(1, 6),
    n_items=st.integers(1, 6),
    n=st.integers(1, 40),
    k=st.integers(1, 5),
    batch_size=st.integers(1, 50),
    optimizer=st.sampled_from(OPTIMIZERS),
    fit_bias=st.booleans(),
    reg=st.sampled_from([0.0, 0.3]),
    seed=st.integers(0, 2**16),
)
def test_epoch_twin_on_random_problems(n_users, n_items, n, k, batch_size, optimizer, fit_bias, reg, seed):
    rng = np.random.default_rng(seed)
    u, i = rng.integers(0, n_users, n), rng.integers(0, n_items, n)
    r = rng.uniform(1, 5, n)
    start = [
        rng.normal(0, 0.3, (n_users, k)),
        rng.normal(0, 0.3, (n_items, k)),
        rng.normal(0, 0.1, n_users),
        rng.normal(0, 0.1, n_items),
    ]
    config = SGDConfig(
        n_threads=1,
        optimizer=optimizer,
        learning_rate=0.05,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-7,
        reg=reg,
        biases=fit_bias,
    )
    perm = rng.permutation(n)
    alphas = adam_step_sizes(3, -(-n // batch_size), 0.05, 0.9, 0.999)
    results = []
    for fn in (epoch_numpy, epoch_numba):
        params = [p.copy() for p in start]
        m = [np.full_like(p, 0.01) for p in start]
        v = [np.full_like(p, 0.02) for p in start]
        loss = fn(u, i, r, perm, batch_size, 3.0, params, m, v, alphas, config)
        results.append((loss, params + m + v))
    (loss_ref, ref), (loss, got) = results
    assert np.isclose(loss, loss_ref, rtol=1e-12, atol=0)
    for a, b in zip(ref, got, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-15)
