"""The serial epochs prepared ahead on a second thread give the bits of one thread, and leave the generator alike."""

import concurrent.futures
import threading

import numpy as np
import pytest

import npmf
from npmf.sgd import _kernels
from npmf.sgd._kernels import SerialEpochs
from npmf.sgd.config import SGDConfig

DF = npmf.make_ratings(n_users=50, n_items=40, n_ratings=700, random_state=0)
TRAIN, VAL = DF.iloc[:600], DF.iloc[600:]
CASES = [("sgd", 1), ("sgd", 8), ("lazy_adam", 8), ("adam", 8)]


def _model(optimizer, batch_size, n_threads, **kw):
    kw = {"n_factors": 3, "epochs": 4, "learning_rate": 0.01, "biases": True, "reg": 0.01, **kw}
    return npmf.MatrixFactorization(
        optimizer=optimizer, batch_size=batch_size, n_threads=n_threads, random_state=5, **kw
    )  # fmt: skip


def _state(model):
    arrays = [model.user_factors_, model.item_factors_, model.user_bias_, model.item_bias_, *model._m, *model._v]
    history = {name: list(values) for name, values in model.history_.items() if name != "seconds"}
    return arrays, history, model.n_steps_, model._rng.bit_generator.state


def _assert_same(a, b):
    for x, y in zip(a[0], b[0], strict=True):
        np.testing.assert_array_equal(x, y)
    assert a[1:] == b[1:]  # history (loss, val_loss, val_rmse; not seconds), steps, the generator's state


@pytest.fixture
def count_ahead(monkeypatch):
    """The number of epochs prepared ahead (so a test sees the pipeline ran, not only that the bits agree)."""
    calls = []
    real = _kernels.ahead

    def spy(fn, *args):
        calls.append(fn)
        return real(fn, *args)

    monkeypatch.setattr(_kernels, "ahead", spy)
    return calls


@pytest.mark.parametrize("optimizer, batch_size", CASES)
def test_two_threads_fit_and_partial_fit_equal_one_thread(count_ahead, optimizer, batch_size):
    states = []
    for n_threads in (1, 2):
        model = _model(optimizer, batch_size, n_threads)
        model.fit(TRAIN.user_id, TRAIN.item_id, TRAIN.rating, validation_data=(VAL.user_id, VAL.item_id, VAL.rating))
        first = _state(model)
        first = ([a.copy() for a in first[0]], *first[1:])
        model.partial_fit(VAL.user_id, VAL.item_id, VAL.rating, epochs=3)
        states.append((first, _state(model)))
    # One thread prepared nothing ahead; two prepared every epoch but the first of each call.
    assert len(count_ahead) == (4 - 1) + (3 - 1)
    for a, b in zip(*states, strict=True):
        _assert_same(a, b)


@pytest.mark.parametrize("optimizer, batch_size, lr", [("sgd", 1, 0.05), ("adam", 8, 0.2)])
def test_early_stopping_leaves_the_generator_as_one_thread(optimizer, batch_size, lr):
    fits = []
    for n_threads in (1, 2):
        model = _model(optimizer, batch_size, n_threads, epochs=40, learning_rate=lr, early_stopping_patience=1)
        model.fit(TRAIN.user_id, TRAIN.item_id, TRAIN.rating, validation_data=(VAL.user_id, VAL.item_id, VAL.rating))
        fits.append(_state(model))
    assert len(fits[0][1]["loss"]) < 40  # it stopped early, with an epoch prepared ahead that never ran
    _assert_same(*fits)


@pytest.mark.parametrize("optimizer, batch_size", [("lazy_adam", 8), ("adam", 8)])
def test_a_draw_between_epochs_discards_the_epoch_prepared_ahead(optimizer, batch_size):
    data = np.random.default_rng(1)
    u, i, r = data.integers(0, 40, 600), data.integers(0, 30, 600), data.uniform(1, 5, 600)
    runs = []
    for n_threads in (1, 2):
        config = SGDConfig(optimizer=optimizer, batch_size=batch_size, epochs=3, n_threads=n_threads, n_factors=3)
        rng = np.random.default_rng(0)
        params = [rng.normal(0, 0.1, (40, 3)), rng.normal(0, 0.1, (30, 3)), np.zeros(40), np.zeros(30)]
        m, v = ([np.zeros_like(p) for p in params] for _ in range(2))
        trainer = SerialEpochs(u, i, r, params, m, v, config)
        losses = [trainer.run(rng, 0.0, 0)[0]]
        rng.random()  # not the state the next epoch was drawn from: it must be drawn again
        losses += [trainer.run(rng, 0.0, 75)[0], trainer.run(rng, 0.0, 150)[0]]
        runs.append((params + m + v, losses, rng.bit_generator.state))
    for a, b in zip(runs[0][0], runs[1][0], strict=True):
        np.testing.assert_array_equal(a, b)
    assert runs[0][1:] == runs[1][1:]


def test_an_error_on_the_worker_fails_the_fit_and_changes_nothing(monkeypatch):
    real = SerialEpochs._fill

    def fill(self, gen, buf):
        if threading.current_thread() is not threading.main_thread():
            raise MemoryError("planted on the worker")
        return real(self, gen, buf)

    def finished(fn, *args):  # the worker's task has run by the next epoch (else that epoch may cancel and do it)
        future = real_ahead(fn, *args)
        concurrent.futures.wait([future])
        return future

    real_ahead = _kernels.ahead
    model = _model("lazy_adam", 8, 2).fit(TRAIN.user_id, TRAIN.item_id, TRAIN.rating)
    before = _state(model)
    before = ([a.copy() for a in before[0]], *before[1:])
    monkeypatch.setattr(SerialEpochs, "_fill", fill)
    monkeypatch.setattr(_kernels, "ahead", finished)
    with pytest.raises(MemoryError, match="planted on the worker"):
        model.partial_fit(TRAIN.user_id, TRAIN.item_id, TRAIN.rating, epochs=3)
    _assert_same(_state(model), before)


@pytest.mark.parametrize("optimizer, batch_size", [("sgd", 1), ("adam", 8)])
def test_an_epoch_not_started_ahead_is_drawn_in_the_caller(monkeypatch, optimizer, batch_size):
    # A worker with no free core (or busy with another fit's epoch) has not started: the epoch cancels it and
    # draws its order itself, from the model's generator, as one thread does.
    fits = []
    for n_threads in (1, 2):
        model = _model(optimizer, batch_size, n_threads).fit(TRAIN.user_id, TRAIN.item_id, TRAIN.rating)
        fits.append(_state(model))
        monkeypatch.setattr(_kernels, "ahead", lambda fn, *args: concurrent.futures.Future())  # never started
    _assert_same(*fits)


def test_the_workers_gather_is_numpys():
    # adam's order on the worker: the permutation drawn in NumPy, the ratings gathered through it by a kernel that
    # releases the GIL (np.take held it, and the training thread waited for it).
    rng = np.random.default_rng(3)
    u0, i0, r0 = rng.integers(0, 50, 300), rng.integers(0, 40, 300), rng.uniform(1, 5, 300)
    perm = rng.permutation(300)
    u, i, r = np.empty_like(u0), np.empty_like(i0), np.empty_like(r0)
    _kernels._gather(u0, i0, r0, perm, u, i, r)
    for got, want in ((u, u0[perm]), (i, i0[perm]), (r, r0[perm])):
        np.testing.assert_array_equal(got, want)
