"""Class 7 of issue 12 and the "Clipping" gap: limits, threads, and clip outside the training range."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from helpers import planted

from npmf import MatrixFactorization
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


THREADS = textwrap.dedent(
    """
    import threading
    import numpy as np
    import npmf
    rng = np.random.default_rng(0)
    model = npmf.MatrixFactorization(epochs=1, optimizer="lazy_adam", biases=True, random_state=0)
    model.fit(rng.integers(0, 50, 2000), rng.integers(0, 40, 2000), rng.uniform(1, 5, 2000))
    stop, outcomes = threading.Event(), {"finite": 0, "raised": 0}

    def reader():
        users = np.arange(0, 100_000, 7)
        while not stop.is_set():
            try:
                assert np.isfinite(model.predict(users, np.zeros(len(users), int))).all()
                model.recommend(int(users[-1] % 5000), n=5)
                outcomes["finite"] += 1
            except RuntimeError as exc:
                assert "changed while predicting" in str(exc), exc
                outcomes["raised"] += 1

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for step in range(60):  # each call adds 1000 users, so the arrays grow under the readers
        new = np.arange(1000) + 50 + 1000 * step
        model.partial_fit(new, rng.integers(0, 40, 1000), rng.uniform(1, 5, 1000))
    stop.set()
    for t in threads:
        t.join()
    assert outcomes["finite"] > 0, outcomes
    print("ok", outcomes)
    """
)


@pytest.mark.slow
@pytest.mark.xfail(
    reason="open defect: in a clean-clone CI run of the merged code the child process segfaulted (-11) once; "
    "predict racing partial_fit is not yet safe (issue 12, class 7)",
    strict=False,
)
def test_predict_while_partial_fit_adds_users_in_another_thread_never_crashes():
    run = subprocess.run([sys.executable, "-c", THREADS], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and run.stdout.startswith("ok"), (run.returncode, run.stdout, run.stderr[-2000:])


def test_predict_refuses_codes_beyond_the_arrays_instead_of_reading_out_of_bounds():
    model = MatrixFactorization(epochs=1, random_state=0).fit(U, I, R)
    model.user_factors_ = model.user_factors_[:5]  # as if another thread were half-way through replacing them
    with pytest.raises(RuntimeError, match="changed while predicting"):
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
