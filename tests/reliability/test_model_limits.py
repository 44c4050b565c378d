"""Class 7 of issue 12 and the "Clipping" gap: limits, threads, and clip outside the training range."""

import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
from helpers import planted

from npmf import BayesianMatrixFactorization, MatrixFactorization
from npmf.sgd import _kernels

U, I, R = planted(n_users=30, n_items=20, n_ratings=600)


@pytest.mark.parametrize("optimizer", ["adam", "lazy_adam", "sgd"])
def test_a_batch_larger_than_the_data_is_the_whole_data_without_a_huge_buffer(monkeypatch, optimizer):
    sizes = []
    real = _kernels.SerialEpochs.__init__

    def spy(self, u, i, r, params, m, v, config):
        sizes.append(config.batch_size)
        real(self, u, i, r, params, m, v, config)

    monkeypatch.setattr(_kernels.SerialEpochs, "__init__", spy)
    huge = MatrixFactorization(epochs=2, optimizer=optimizer, batch_size=10**15, random_state=0).fit(U, I, R)
    whole = MatrixFactorization(epochs=2, optimizer=optimizer, batch_size=len(R), random_state=0).fit(U, I, R)
    assert sizes == [len(R), len(R)]
    np.testing.assert_array_equal(huge.user_factors_, whole.user_factors_)
    assert huge.batch_size == 10**15  # the parameter is kept as given


# Two readers predict, recommend for the ids being added and save+load, while partial_fit adds 1000
# users per call. Every read must equal the model after some call (never a mix of two), and no read
# may fail. Before the snapshot/publish fix this segfaulted or failed in 20 runs of 20.
THREADS = textwrap.dedent(
    """
    import os
    import sys
    import tempfile
    import threading

    import numpy as np

    import npmf

    rng = np.random.default_rng(0)
    model = npmf.MatrixFactorization(epochs=1, optimizer="lazy_adam", biases=True, random_state=0)
    model.fit(rng.integers(0, 50, 2000), rng.integers(0, 40, 2000), rng.uniform(1, 5, 2000))
    probe_u, probe_i = np.arange(50), rng.integers(0, 40, 50)
    versions = [model.predict(probe_u, probe_i)]  # the probe's predictions after each call
    reads, errors, stop, upcoming = [], [], threading.Event(), [49]
    path = os.path.join(tempfile.mkdtemp(), "m.npz")


    def reader(saves):
        n = 0
        while not stop.is_set():
            n += 1
            try:
                reads.append(model.predict(probe_u, probe_i))
                top = upcoming[0]  # ids of the call in progress: new while the arrays grow
                users = np.arange(top - 1500, top + 1)
                assert np.isfinite(model.predict(users, np.zeros(len(users), int))).all()
                rec = model.recommend([top, top - 1, top - 700], n=5)
                assert np.isfinite(rec.score).all()
                if saves and n % 8 == 0:
                    model.save(path)
                    reads.append(npmf.load(path).predict(probe_u, probe_i))
            except Exception as exc:  # noqa: BLE001 (every error is a failure; collected for the message)
                errors.append(repr(exc))


    threads = [threading.Thread(target=reader, args=(q == 0,)) for q in range(2)]
    for t in threads:
        t.start()
    step = 0
    # Each call adds 1000 users with 3 ratings each and trains 2 epochs: at least 30 calls, and more (up to 120)
    # until the readers have read often enough, however fast the calls run.
    while step < 30 or (len(reads) <= 40 and step < 120):
        new = np.repeat(np.arange(1000) + 50 + 1000 * step, 3)
        upcoming[0] = int(new[-1])
        model.partial_fit(new, rng.integers(0, 40, len(new)), rng.uniform(1, 5, len(new)), epochs=2)
        versions.append(model.predict(probe_u, probe_i))
        step += 1
    stop.set()
    for t in threads:
        t.join()
    mixed = sum(not any(np.array_equal(p, v) for v in versions) for p in reads)
    assert not errors, (len(errors), errors[:3])
    assert len(reads) > 40 and mixed == 0, (len(reads), mixed)
    print("ok", len(reads))
    """
)


@pytest.mark.slow
def test_predict_while_partial_fit_adds_users_in_another_thread_never_crashes():
    run = subprocess.run([sys.executable, "-c", THREADS], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and run.stdout.startswith("ok"), (run.returncode, run.stdout, run.stderr[-2000:])


def _in_threads(*jobs):
    """Run the callables at once, each in its own thread; re-raise the first exception."""
    errors = []

    def run(job):
        try:
            job()
        except BaseException as exc:  # noqa: BLE001 (re-raised below, in the test's thread)
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def test_two_writers_of_one_model_are_serialised_and_lose_nothing():
    model = MatrixFactorization(epochs=1, optimizer="lazy_adam", random_state=0).fit(U, I, R)
    steps, calls = model.n_steps_, 15

    def writer(offset):
        def job():
            for c in range(calls):
                model.partial_fit(U + offset + 100 * c, I, R, epochs=2)

        return job

    def folder():
        for c in range(calls):
            model.fold_in([90_000 + c] * 5, I[:5], R[:5])

    _in_threads(writer(1000), writer(50_000), folder)
    per_call = -(-len(R) // model.batch_size) * 2
    assert model.n_steps_ == steps + 2 * calls * per_call  # no call's steps were lost
    assert len(model.history_["loss"]) == 1 + 2 * calls * 2
    new_users = 2 * calls * len(np.unique(U)) + calls
    assert len(model.user_ids_) == len(np.unique(U)) + new_users == len(model.user_factors_) == len(model.user_bias_)
    assert len(np.unique(model.user_ids_)) == len(model.user_ids_)
    assert all(len(a) == len(model.user_factors_) for a in (model._m[0], model._v[0], model._m[2], model._v[2]))


class Probed:
    """Mixed into an estimator: after every attribute write (on whatever object a call builds in) it
    predicts with the published model, as a reader in another thread could at that moment."""

    published, reads = None, []

    def __setattr__(self, name, value):
        super().__setattr__(name, value)
        model = Probed.published
        if model is not None and name.endswith("_") and hasattr(model, "user_factors_"):
            try:
                Probed.reads.append(model.predict(PROBE[0], PROBE[1]))
            except RuntimeError as exc:  # e.g. arrays replaced under the ids: a torn read
                Probed.reads.append(exc)


# Known users, and users that partial_fit and fold_in below add.
PROBE = (np.concatenate([U[:40], U[:40] + 1000]), np.concatenate([I[:40], I[:40]]))


class ProbedMF(Probed, MatrixFactorization):
    pass


class ProbedBayes(Probed, BayesianMatrixFactorization):
    pass


@pytest.mark.parametrize(
    "make, call",
    [
        (lambda: ProbedMF(epochs=2, biases=True, random_state=0), lambda m: m.fit(U[::2], I[::2], R[::2])),
        (lambda: ProbedMF(epochs=2, biases=True, random_state=0), lambda m: m.partial_fit(U + 1000, I, R)),
        (lambda: ProbedMF(epochs=2, biases=True, random_state=0), lambda m: m.fold_in(U + 1000, I, R)),
        (
            lambda: ProbedBayes(n_factors=2, epochs=3, burn_in=1, random_state=0),
            lambda m: m.fit(U[::2], I[::2], R[::2]),
        ),
    ],
    ids=["fit", "partial_fit", "fold_in", "bayesian_fit"],
)
def test_a_reader_during_a_write_sees_the_old_or_the_new_model_never_a_mix(make, call):
    model = make().fit(U, I, R)
    old = model.predict(*PROBE)
    Probed.published, Probed.reads = model, []
    try:
        call(model)
    finally:
        Probed.published = None
    new = model.predict(*PROBE)
    assert len(Probed.reads) >= 3 and not np.array_equal(old, new)
    for read in Probed.reads:
        assert not isinstance(read, Exception), read
        assert np.array_equal(read, old) or np.array_equal(read, new)


def test_predict_refuses_codes_beyond_the_arrays_instead_of_reading_out_of_bounds():
    model = MatrixFactorization(epochs=1, random_state=0).fit(U, I, R)
    model.user_factors_ = model.user_factors_[:5]  # as if another thread were half-way through replacing them
    with pytest.raises(RuntimeError, match="ids and arrays disagree"):
        model.predict(U, I)


@pytest.mark.parametrize("biases", [False, True])
def test_clip_bounds_predictions_outside_the_training_range(biases):
    model = MatrixFactorization(epochs=1, biases=biases, random_state=0).fit(U, I, R)
    lo, hi = model.rating_range_
    rng = np.random.default_rng(0)
    model.user_factors_ = rng.normal(0, 3, model.user_factors_.shape)  # predictions far outside [lo, hi]
    model.item_factors_ = rng.normal(0, 3, model.item_factors_.shape)
    raw, clipped = model.predict(U, I), model.predict(U, I, clip=True)
    assert (raw < lo).any() and (raw > hi).any()
    np.testing.assert_array_equal(clipped, np.clip(raw, lo, hi))
    assert clipped.min() == lo and clipped.max() == hi
    inside = (raw >= lo) & (raw <= hi)
    np.testing.assert_array_equal(clipped[inside], raw[inside])
    # unknown ids fall back to the mean, inside the range either way
    assert model.predict([-1], [-1], clip=True)[0] == model.predict([-1], [-1])[0]


class Watched(MatrixFactorization):
    """Checks after every attribute write that no id is published before its rows exist."""

    def __setattr__(self, name, value):
        super().__setattr__(name, value)
        for side in ("user", "item"):
            ids = self.__dict__.get(f"{side}_ids_")
            rows = [self.__dict__.get(f"{side}_{kind}_") for kind in ("factors", "bias")]
            if ids is not None and all(r is not None for r in rows):
                assert len(ids) <= min(len(r) for r in rows), f"{name}: {side} ids published before their rows"


def test_new_ids_are_published_only_after_the_arrays_have_grown():
    model = Watched(epochs=1, random_state=0).fit(U, I, R)
    model.partial_fit(U + 1000, I + 1000, R)
    assert len(model.user_ids_) == 2 * len(np.unique(U)) and len(model.item_ids_) == 2 * len(np.unique(I))
