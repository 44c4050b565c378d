"""Class 5 and the "Resumed optimiser state" gap of issue 12.

``load(save(m)).partial_fit(...)`` must give the same bits as
``m.partial_fit(...)`` on the serial path and the block path, and
(serially) the same as one longer ``fit``: so Adam's m and v, the step count, the
generator and ``global_mean_`` all survive a save and a partial_fit.
"""

import numpy as np
import pytest
from helpers import model_state

import npmf
from npmf import MatrixFactorization
from npmf.data import make_ratings
from npmf.sgd import _block_kernels

DF = make_ratings(200, 100, 5000, random_state=0)
U, I, R = DF.user_id.to_numpy(), DF.item_id.to_numpy(), DF.rating.to_numpy(float)


def _same(a, b):
    a.history_["seconds"] = b.history_["seconds"] = []
    sa, sb = model_state(a), model_state(b)
    assert set(sa) == set(sb)
    for name in sa:
        assert sa[name] == sb[name], name


def _kw(optimizer):
    return dict(n_factors=4, batch_size=64, optimizer=optimizer, learning_rate=0.01, biases=True, random_state=3)


@pytest.fixture(params=["serial", "blocks"])
def path(request, monkeypatch):
    if request.param == "blocks":
        monkeypatch.setattr(_block_kernels, "BLOCK_MIN_RATINGS", 0)
        monkeypatch.setattr(_block_kernels, "DENSE_BLOCK_MIN_RATINGS", 0)
    return request.param


@pytest.mark.parametrize("optimizer", ["adam", "lazy_adam", "sgd"])
def test_save_load_partial_fit_gives_the_same_bits_as_partial_fit_and_as_one_longer_fit(path, tmp_path, optimizer):
    model = MatrixFactorization(epochs=2, **_kw(optimizer)).fit(U, I, R)
    model.save(tmp_path / "m.npz")
    loaded = npmf.load(tmp_path / "m.npz")
    model.partial_fit(U, I, R, epochs=2)
    loaded.partial_fit(U, I, R, epochs=2)
    _same(loaded, model)
    if path == "blocks":
        return  # the block schedule draws per call, so only the serial path equals one longer fit
    longer = MatrixFactorization(epochs=4, **_kw(optimizer)).fit(U, I, R)
    for name in ("user_factors_", "item_factors_", "user_bias_", "item_bias_"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(longer, name), err_msg=name)
    for a, b in zip(loaded._m + loaded._v, longer._m + longer._v, strict=True):
        np.testing.assert_array_equal(a, b)
    assert loaded.n_steps_ == longer.n_steps_ and loaded.history_["loss"] == longer.history_["loss"]


@pytest.mark.parametrize("optimizer", ["lazy_adam", "sgd"])
def test_resumed_with_new_ids_after_load(path, tmp_path, optimizer):
    model = MatrixFactorization(epochs=1, **_kw(optimizer)).fit(U, I, R)
    model.save(tmp_path / "m.npz")
    loaded = npmf.load(tmp_path / "m.npz")
    for m in (model, loaded):
        m.partial_fit(U + 1000, I, R[::-1], epochs=1)
    _same(loaded, model)


def test_partial_fit_keeps_the_global_mean_and_continues_the_steps():
    model = MatrixFactorization(epochs=1, **_kw("lazy_adam")).fit(U, I, R)
    mu, steps = model.global_mean_, model.n_steps_
    model.partial_fit(U, I, R + 1.5, epochs=1)
    assert model.global_mean_ == mu and model.n_steps_ == 2 * steps
    assert model.rating_range_ == (R.min(), R.max() + 1.5)


@pytest.mark.parametrize("optimizer", ["lazy_adam", "sgd"])
def test_partial_fit_on_the_serial_path_after_a_block_fit(monkeypatch, tmp_path, optimizer):
    # The blocks give Adam's moments back as strided views; the serial kernels took them as a TypingError.
    monkeypatch.setattr(_block_kernels, "BLOCK_MIN_RATINGS", 1000)
    model = MatrixFactorization(epochs=1, **_kw(optimizer)).fit(U, I, R)
    model.save(tmp_path / "m.npz")
    loaded = npmf.load(tmp_path / "m.npz")
    for m in (model, loaded):
        m.partial_fit(U[:500], I[:500], R[:500], epochs=2)  # 500 < 1000: serial
    _same(loaded, model)
    assert np.isfinite(model.predict(U, I)).all()
