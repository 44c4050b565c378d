"""Block-scheduled epochs: the Numba kernels equal their NumPy twin, with one thread and with two."""

import sys

import numba
import numpy as np
import pytest

from npmf import MatrixFactorization
from npmf.core.encoding import Codes
from npmf.data import make_ratings
from npmf.sgd import _block_kernels as _parallel
from npmf.sgd import blocks, catchup
from npmf.sgd.config import SGDConfig
from npmf.sgd.optimizers import adam_step_sizes


def _problem(seed=0, M=30, N=20, n=900, k=4):
    rng = np.random.default_rng(seed)
    u, i = rng.integers(0, M, n), rng.integers(0, N, n)
    r = rng.integers(1, 6, n).astype(float)
    params = [rng.uniform(-0.5, 0.5, (M, k)), rng.uniform(-0.5, 0.5, (N, k))]
    params += [rng.normal(0, 0.1, M), rng.normal(0, 0.1, N)]
    return u, i, r, params


def _config(optimizer, batch_size, fit_bias, reg, n_threads=1, dtype="float64"):
    return SGDConfig(optimizer=optimizer, learning_rate=0.01, beta_1=0.9, beta_2=0.999, epsilon=1e-7, reg=reg,
                     biases=fit_bias, batch_size=batch_size, n_threads=n_threads, dtype=dtype)  # fmt: skip


def _blocks(u, i, r, params, m, v, config, n_strata):
    """BlockEpochs as the model drives them: borrow the arrays, then copy the ratings into blocks."""
    trainer = _parallel.BlockEpochs(u, i, params, m, v, config, n_strata=n_strata)
    trainer.copy_ratings(u, i, r)
    return trainer


def _states(params):
    return [p.copy() for p in params], [np.zeros_like(p) for p in params], [np.zeros_like(p) for p in params]


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize(
    "optimizer, batch_size, fit_bias, reg",
    [("lazy_adam", 8, True, 0.05), ("lazy_adam", 8, False, 0.0), ("lazy_adam", 1, True, 0.0),
     ("sgd", 1, True, 0.05), ("sgd", 1, False, 0.0), ("sgd", 7, True, 0.02)],
)  # fmt: skip
def test_block_epochs_equal_numpy_twin(optimizer, batch_size, fit_bias, reg, n_threads):
    u, i, r, params = _problem()
    if not fit_bias:
        params[2][:], params[3][:] = 0.0, 0.0
    config = _config(optimizer, batch_size, fit_bias, reg, n_threads)
    p1, m1, v1 = _states(params)
    p2, m2, v2 = _states(params)
    fast = _blocks(u, i, r, p1, m1, v1, config, n_strata=3)
    order, offsets = blocks.block_order(u, i, fast.su, fast.si, 3)
    np.testing.assert_array_equal(fast.offsets, offsets)
    U, I, R = u[order], i[order], r[order]
    np.testing.assert_array_equal(fast.u, U)
    np.testing.assert_array_equal(fast.r, R)
    rng1, rng2, t = np.random.default_rng(5), np.random.default_rng(5), 0
    for _ in range(3):
        total, steps = fast.run(rng1, 3.0 if fit_bias else 0.0, t)
        fast.write_params(p1)
        seeds = rng2.integers(0, 2**63, size=9, dtype=np.uint64)
        alphas = adam_step_sizes(t, steps, 0.01, 0.9, 0.999)
        ref = blocks.epoch_blocks_numpy(U, I, R, offsets, seeds, batch_size, 3.0 if fit_bias else 0.0, p2, m2, v2,
                                        alphas, config)  # fmt: skip
        t += steps
        np.testing.assert_array_equal(fast.u, U)  # the same shuffles
        m1, v1 = fast.moments()
        for a, b in zip(p1 + m1 + v1, p2 + m2 + v2, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
        assert total == pytest.approx(ref, rel=1e-12)
    assert steps == blocks.batch_offsets(offsets, batch_size)[-1]
    del a, b, m1, v1  # views of the records: held, they would make give_back copy instead of shrinking in place
    records = [None if X is None else X.__array_interface__["data"][0] for X in fast.records]
    m1, v1 = fast.give_back()  # the moments, in the records until now, become arrays of their own
    assert fast.records is None and fast.r is None
    # Under a tracer (coverage) NumPy refuses resize(refcheck=True), so give_back copies instead (numpy#11538).
    if optimizer == "lazy_adam" and sys.gettrace() is None:  # the moments now live where the records did, compacted
        assert [m1[0].__array_interface__["data"][0], m1[1].__array_interface__["data"][0]] == records
    for a, b in zip(m1 + v1, m2 + v2, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    assert not np.allclose(p1[0], params[0])
    if not fit_bias:
        assert not p1[2].any() and not p1[3].any()


def test_release_copies_the_moments_when_a_view_of_the_records_is_held():
    u, i, r, params = _problem()
    config = _config("lazy_adam", 8, True, 0.05, 1)
    p1, m1, v1 = _states(params)
    fast = _blocks(u, i, r, p1, m1, v1, config, n_strata=3)
    fast.run(np.random.default_rng(5), 3.0, 0)
    m1, v1 = fast.moments()
    expected = [a.copy() for a in m1 + v1]
    held = m1[0]  # a caller's view of the user records
    del m1, v1
    m1, v1 = fast.give_back()
    for a, b in zip(m1 + v1, expected, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.shares_memory(m1[0], held)


def test_strata_balance_the_ratings():
    counts = np.random.default_rng(0).zipf(1.5, 1000).clip(max=200)
    su = blocks.strata(counts, 8)
    per = np.bincount(su, weights=counts, minlength=8)
    assert set(su) == set(range(8)) and per.max() - per.min() <= counts.max()


def test_shuffle_kernel_equals_twin_and_is_a_permutation():
    a = np.arange(50, dtype=np.int32)
    b, c = a.copy(), a.astype(float)
    blocks.shuffle_block((a,), 5, 45, 123)
    _parallel._shuffle(b, b.copy(), c, 5, 45, np.uint64(123))
    np.testing.assert_array_equal(a, b)
    assert sorted(a[5:45]) == list(range(5, 45)) and list(a[:5]) == [0, 1, 2, 3, 4]
    assert (a[5:45] != np.arange(5, 45)).any()


def test_n_strata_depends_on_the_problem_only():
    assert blocks.n_strata(100, 32) == 1
    assert blocks.n_strata(25_000_000, 1024) == 55
    assert blocks.n_strata(25_000_000, 1) == blocks.MAX_STRATA


@pytest.fixture
def always_blocks(monkeypatch):
    monkeypatch.setattr(_parallel, "BLOCK_MIN_RATINGS", 0)
    monkeypatch.setattr(_parallel, "DENSE_BLOCK_MIN_RATINGS", 0)


@pytest.mark.parametrize("optimizer, batch_size", [("lazy_adam", 64), ("sgd", 1)])
def test_reruns_and_thread_counts_give_the_same_bits(always_blocks, monkeypatch, optimizer, batch_size):
    df = make_ratings(200, 100, 5000, random_state=0)
    used_threads = set()
    run = _parallel.BlockEpochs.run

    def recording_run(self, *args):  # which threads trained the blocks, epoch by epoch
        out = run(self, *args)
        if self.config.n_threads == 2:
            used_threads.update(self.threads.tolist())
        return out

    monkeypatch.setattr(_parallel.BlockEpochs, "run", recording_run)
    fits = [
        MatrixFactorization(n_factors=4, epochs=3, batch_size=batch_size, optimizer=optimizer, learning_rate=0.01,
                            biases=True, n_threads=t, random_state=7).fit(df.user_id, df.item_id, df.rating)
        for t in (1, 1, 2)
    ]  # fmt: skip
    if numba.config.NUMBA_NUM_THREADS < 2 or numba.config.DISABLE_JIT:
        pytest.skip("Numba has one thread here (or no JIT): the two-thread fit ran serially")
    assert fits[2].n_threads == 2 and used_threads == {0, 1}  # the third fit really ran on two threads
    for other in fits[1:]:
        np.testing.assert_array_equal(other.user_factors_, fits[0].user_factors_)
        np.testing.assert_array_equal(other.item_bias_, fits[0].item_bias_)
        assert other.history_["loss"] == fits[0].history_["loss"]
    assert fits[0].n_steps_ >= 3 * -(-5000 // batch_size)


def test_thread_count_is_restored(always_blocks):
    before = numba.get_num_threads()
    df = make_ratings(50, 40, 600, random_state=0)
    MatrixFactorization(epochs=1, optimizer="sgd", n_threads=1, random_state=0).fit(df.user_id, df.item_id, df.rating)
    assert numba.get_num_threads() == before


def test_float32_blocks_track_float64(always_blocks):
    df = make_ratings(200, 100, 5000, random_state=1)
    kw = dict(n_factors=4, epochs=4, batch_size=32, optimizer="lazy_adam", learning_rate=0.01, random_state=0)
    f32 = MatrixFactorization(dtype="float32", **kw).fit(df.user_id, df.item_id, df.rating)
    f64 = MatrixFactorization(**kw).fit(df.user_id, df.item_id, df.rating)
    assert f32.user_factors_.dtype == np.float32 and f32._m[0].dtype == np.float32
    np.testing.assert_allclose(f32.history_["loss"], f64.history_["loss"], rtol=1e-3)


@pytest.mark.slow
@pytest.mark.parametrize(
    "optimizer, batch_size, learning_rate, epochs",
    [("lazy_adam", 32, 0.01, 40), ("sgd", 1, 0.005, 40)],
)
def test_loss_falls_to_the_noise_level_on_planted_data(always_blocks, optimizer, batch_size, learning_rate, epochs):
    df = make_ratings(300, 200, 20_000, n_factors=3, noise=0.3, random_state=0)
    floor = df.attrs["noise_mse"]
    fit = MatrixFactorization(n_factors=3, epochs=epochs, batch_size=batch_size, optimizer=optimizer,
                              learning_rate=learning_rate, init_scale=0.1, biases=True, random_state=0)  # fmt: skip
    fit.fit(df.user_id, df.item_id, df.rating)
    loss = fit.history_["loss"]
    assert loss[-1] < 1.25 * floor < loss[0]
    mse = np.mean((fit.predict(df.user_id, df.item_id) - df.rating) ** 2)
    assert mse < 1.25 * floor


def test_model_uses_blocks_from_the_threshold(monkeypatch):
    used = []
    real = _parallel.BlockEpochs
    monkeypatch.setattr(_parallel, "BlockEpochs", lambda *a, **k: used.append(1) or real(*a, **k))
    df = make_ratings(50, 40, 600, random_state=0)
    for optimizer in ("adam", "lazy_adam", "sgd"):
        MatrixFactorization(epochs=1, optimizer=optimizer, random_state=0).fit(df.user_id, df.item_id, df.rating)
    assert not used  # 600 ratings: the exact serial epoch
    monkeypatch.setattr(_parallel, "BLOCK_MIN_RATINGS", 600)
    for optimizer in ("adam", "lazy_adam", "sgd"):
        MatrixFactorization(epochs=1, optimizer=optimizer, random_state=0).fit(df.user_id, df.item_id, df.rating)
    assert len(used) == 2  # lazy_adam and sgd; dense adam keeps Keras' order below DENSE_BLOCK_MIN_RATINGS
    monkeypatch.setattr(_parallel, "DENSE_BLOCK_MIN_RATINGS", 600)
    MatrixFactorization(epochs=1, optimizer="adam", random_state=0).fit(df.user_id, df.item_id, df.rating)
    assert len(used) == 3  # adam, with its catch-up, in blocks too


def test_dense_adam_warns_and_points_to_lazy_adam(monkeypatch):
    df = make_ratings(50, 40, 600, random_state=0)
    monkeypatch.setattr(catchup, "DENSE_ADAM_WARN_UPDATES", 1000)
    with pytest.warns(UserWarning, match="optimizer='lazy_adam'"):  # betas that rule out the closed-form catch-up
        MatrixFactorization(epochs=1, beta_1=0.9999, random_state=0).fit(df.user_id, df.item_id, df.rating)
    import warnings

    with warnings.catch_warnings():  # the usual betas: the catch-up costs what lazy Adam does
        warnings.simplefilter("error")
        MatrixFactorization(epochs=1, random_state=0).fit(df.user_id, df.item_id, df.rating)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        MatrixFactorization(epochs=1, optimizer="lazy_adam", random_state=0).fit(df.user_id, df.item_id, df.rating)


def test_partial_fit_and_save_carry_the_block_state(always_blocks, tmp_path):
    df = make_ratings(200, 100, 5000, random_state=2)
    model = MatrixFactorization(n_factors=4, epochs=2, batch_size=64, optimizer="lazy_adam", learning_rate=0.01,
                                random_state=0).fit(df.user_id, df.item_id, df.rating)  # fmt: skip
    assert all(np.abs(m).sum() > 0 for m in model._m[:2])  # moments written back from the records
    model.save(tmp_path / "m.npz")
    loaded = MatrixFactorization.load(tmp_path / "m.npz")
    for a, b in zip(model._m + model._v, loaded._m + loaded._v, strict=True):
        np.testing.assert_array_equal(a, b)
    steps = model.n_steps_
    loss = model.history_["loss"][-1]
    model.partial_fit(df.user_id, df.item_id, df.rating, epochs=1)
    assert model.n_steps_ > steps and model.history_["loss"][-1] < loss


def test_block_epochs_read_codes_through_their_table():
    u, i, r, params = _problem(seed=3)
    config = _config("lazy_adam", 8, True, 0.0)
    plain = _blocks(u, i, r, *_states(params), config, n_strata=3)
    # The same codes as keys offset by 100 (users) and as a shuffled table (items).
    perm = np.random.default_rng(0).permutation(20).astype(np.int32)
    inverse = np.argsort(perm).astype(np.int32)
    coded = _blocks(Codes(u + 100, 100, np.arange(30, dtype=np.int32)), Codes(inverse[i], 0, perm), r,
                    *_states(params), config, n_strata=3)  # fmt: skip
    for name in ("u", "i", "r", "offsets"):
        np.testing.assert_array_equal(getattr(coded, name), getattr(plain, name))


def test_diverged_block_epoch_keeps_the_last_finite_weights(always_blocks):
    df = make_ratings(200, 100, 5000, random_state=0)
    model = MatrixFactorization(n_factors=4, epochs=1, batch_size=1, optimizer="sgd", learning_rate=0.01,
                                random_state=0).fit(df.user_id, df.item_id, df.rating)  # fmt: skip
    before = [p.copy() for p in model._params()]
    model.learning_rate = 1e4
    with pytest.raises(FloatingPointError, match="learning_rate=10000.0"):
        model.partial_fit(df.user_id, df.item_id, df.rating, epochs=5)
    for p, old in zip(model._params(), before, strict=True):
        np.testing.assert_array_equal(p, old)
    assert len(model.history_["loss"]) == 1


def test_blocks_keep_the_seen_pairs_without_a_copy_of_the_codes(always_blocks):
    df = make_ratings(200, 100, 5000, random_state=4)
    model = MatrixFactorization(n_factors=4, epochs=1, batch_size=64, optimizer="lazy_adam",
                                random_state=0).fit(df.user_id + 7, df.item_id, df.rating)  # fmt: skip
    seen = set(zip(model.user_ids_[model._seen[0]], model.item_ids_[model._seen[1]]))
    assert seen == set(zip(df.user_id + 7, df.item_id)) and len(model._seen[0]) == len(df)
    # the moments are views of the records shrunk to their m and v segments: the records' w and g are freed
    for a in model._m + model._v:
        assert a.base is None or (a.base.flags.owndata and a.base.shape == (len(a), 2 * (4 + 1)))
    user = int(df.user_id[0]) + 7
    top = model.recommend(user, n=100)
    assert not set(top.item_id) & set(df.item_id[df.user_id + 7 == user])


@pytest.mark.parametrize("P", [2, 3, 5, 8])
def test_blocks_run_together_share_no_user_or_item_stratum(P):
    # The kernel runs blocks s*P .. s*P + P-1 together (sub-epoch s); read the strata off the ratings stored there.
    rng = np.random.default_rng(P)
    u, i = rng.zipf(1.3, 4000) % 60, rng.zipf(1.2, 4000) % 40
    u[:60], i[:40] = np.arange(60), np.arange(40)  # every row rated, so every stratum is used
    _, _, r, params = _problem(M=60, N=40, n=4000)
    fast = _blocks(u, i, r, *_states(params), _config("sgd", 1, True, 0.0), n_strata=P)
    seen = np.zeros((P, P), bool)
    for s in range(P):
        users, items = [], []
        for b in range(s * P, s * P + P):
            lo, hi = fast.offsets[b], fast.offsets[b + 1]
            users.append(set(fast.su[fast.u[lo:hi]]))
            items.append(set(fast.si[fast.i[lo:hi]]))
            assert len(users[-1]) <= 1 and len(items[-1]) <= 1  # a block is one user stratum x one item stratum
            for p, q in zip(users[-1], items[-1]):
                seen[p, q] = True
        assert len(set().union(*users)) == sum(map(len, users))  # no user stratum twice in a sub-epoch
        assert len(set().union(*items)) == sum(map(len, items))  # no item stratum twice
    assert seen.sum() == np.count_nonzero(np.diff(fast.offsets))  # and every non-empty block (p, q) once per epoch


def test_block_epochs_really_run_on_two_threads():
    if numba.config.NUMBA_NUM_THREADS < 2 or numba.config.DISABLE_JIT:
        pytest.skip("Numba has one thread here (or no JIT): nothing runs in parallel")
    u, i, r, params = _problem(M=60, N=40, n=4000)
    fast = _blocks(u, i, r, *_states(params), _config("sgd", 1, True, 0.0, n_threads=2), n_strata=8)
    fast.run(np.random.default_rng(0), 3.0, 0)
    assert set(fast.threads) == {0, 1}  # both threads trained blocks, and nothing else did


@pytest.mark.parametrize("n_threads", [1, 2, 3, 64])
def test_thread_plan_deals_every_block_once_and_balances_the_slots(n_threads):
    rng = np.random.default_rng(0)
    P = 8
    sizes = rng.zipf(1.5, P * P).clip(max=10_000)  # skewed block sizes, some blocks empty-ish
    sizes[5] = 0
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    plan, bounds = blocks.thread_plan(offsets, P, n_threads)
    T = min(n_threads, P)
    assert plan.shape == (P, P) and bounds.shape == (P, T + 1)
    sizes = sizes.reshape(P, P)
    for s in range(P):
        assert sorted(plan[s]) == list(range(P))  # every block of the sub-epoch exactly once
        assert bounds[s, 0] == 0 and bounds[s, -1] == P and (np.diff(bounds[s]) >= 0).all()
        loads = [sizes[s, plan[s, bounds[s, t] : bounds[s, t + 1]]].sum() for t in range(T)]
        # LPT's guarantee: no slot holds more than the mean plus its largest block
        assert max(loads) <= sizes[s].sum() / T + sizes[s].max()
        if T == 2:  # and here it beats the static split into contiguous halves whenever that is unbalanced
            static = max(sizes[s, : P // 2].sum(), sizes[s, P // 2 :].sum())
            assert max(loads) <= static


@pytest.mark.parametrize("n", [513, 514, 1300])
def test_shuffle_kernel_equals_twin_across_its_chunks(n):
    # The kernel draws its swap targets in chunks of _CHUNK; the twin draws them one at a time.
    assert _parallel._shuffle.__module__.endswith("_block_data")
    a = np.arange(n + 10, dtype=np.int32)
    b, c = a.copy(), a.astype(np.float32)
    for seed in (1, 2**63 + 12345):
        blocks.shuffle_block((a,), 7, n + 7, seed)
        with np.errstate(over="ignore"):
            _parallel._shuffle(b, b.copy(), c, 7, n + 7, np.uint64(seed))
        np.testing.assert_array_equal(a, b)
    assert sorted(a) == list(range(n + 10))


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="no JIT, no LLVM to read")
def test_block_kernels_hold_no_references_and_adam_rows_vectorise():
    # Not a timing: the two properties the block path's speed rests on, read from the compiled code. A fresh,
    # uncached compile of each kernel's Python source with its own options, so the LLVM is there to read.
    def fresh(kernel):
        options = {k: v for k, v in kernel.targetoptions.items() if k not in ("cache", "nopython", "boundscheck")}
        return numba.njit(**options)(kernel.py_func)

    from npmf.sgd import _dense_blocks, _lazy_blocks

    kernels = (_dense_blocks._dense_block, _parallel._block_sgd, _lazy_blocks._block_slots, _lazy_blocks._adam_slots,
               _lazy_blocks._sgd_slots)  # fmt: skip
    for kernel in kernels:
        assert kernel.targetoptions.get("_nrt") is False, kernel  # no refcounts on the shared U, V in the hot loops
    f4 = np.float32
    step = (f4(0.01), f4(0.1), f4(0.001), f4(1e-7), False)
    # lazy_adam's step on [p | m | v] records with the gradients in slots
    for kernel, args in ((_lazy_blocks._adam_slots, (np.ones((6, 3 * 9), f4), np.array([1, 4, 2]), 3,
                                                     np.ones((3, 9), f4), 9, 9)),):  # fmt: skip
        adam_rows = fresh(kernel)
        adam_rows(*args, *step)
        llvm = adam_rows.inspect_llvm(adam_rows.signatures[0])
        assert "NRT_incref" not in llvm and "NRT_decref" not in llvm
        # The element loop is vectorised: a vector square root (any width) in the IR. A projection or a prefetch in
        # the row loop had kept LLVM from it (scalar Adam, ~4x the time per element), and so had indexing the slots
        # and the record as 2-D arrays in _adam_slots.
        assert "@llvm.sqrt.v" in llvm, kernel
