"""Class 4 of issue 12: divergence is caught after every epoch, undone in full and blamed on its likely cause."""

import warnings

import numpy as np
import pytest
from helpers import assert_model_unchanged, model_state, planted

from npmf import MatrixFactorization
from npmf.sgd import _block_kernels

U, I, R = planted(n_users=30, n_items=20, n_ratings=600)


def _fitted(optimizer="lazy_adam", **kw):
    return MatrixFactorization(epochs=2, optimizer=optimizer, biases=True, random_state=0, **kw).fit(U, I, R)


@pytest.mark.parametrize("optimizer", ["adam", "lazy_adam", "sgd"])
def test_a_diverged_partial_fit_restores_weights_moments_steps_and_generator(optimizer):
    model, twin = _fitted(optimizer), _fitted(optimizer)
    before = model_state(model)
    model.learning_rate = 1e300
    with pytest.raises(FloatingPointError, match="learning_rate=1e[+]300") as info:
        model.partial_fit(U, I, R, epochs=5)
    assert "left as it was" in str(info.value)
    model.learning_rate = 0.001
    before["learning_rate"] = model_state(model)["learning_rate"]
    assert_model_unchanged(before, model)
    # Nothing of the failed call lingers (NaN moments, steps, draws): the next call is as if it never happened.
    model.partial_fit(U, I, R, epochs=2)
    twin.partial_fit(U, I, R, epochs=2)
    for model_ in (model, twin):
        model_.history_["seconds"] = []
    for name, value in model_state(twin).items():
        assert model_state(model)[name] == value, name


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_one_batch_per_epoch_with_a_huge_rate_does_not_return_a_model_predicting_inf(optimizer):
    model = _fitted(optimizer)
    before = model_state(model)
    model.set_params(learning_rate=1e300, batch_size=len(R))
    before.update({k: v for k, v in model_state(model).items() if k in ("learning_rate", "batch_size")})
    with pytest.raises(FloatingPointError, match="overflowed|loss became"):
        model.partial_fit(U, I, R, epochs=1)
    assert_model_unchanged(before, model)
    assert np.isfinite(model.predict(U, I)).all()


def test_a_first_fit_that_diverges_leaves_no_fitted_model():
    model = MatrixFactorization(epochs=3, optimizer="sgd", learning_rate=1e300, batch_size=len(R), random_state=0)
    with pytest.raises(FloatingPointError):
        model.fit(U, I, R)
    assert not hasattr(model, "user_factors_")


def test_an_exploding_but_finite_loss_warns():
    model = MatrixFactorization(epochs=5, optimizer="sgd", learning_rate=30, batch_size=len(R), random_state=0)
    with pytest.warns(RuntimeWarning, match="the loss grew from .* training is diverging; likely cause: learning_rate"):
        model.fit(U, I, R)
    assert np.isfinite(model.history_["loss"]).all()


def test_a_sane_fit_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _fitted("sgd", learning_rate=0.01)


@pytest.mark.parametrize(
    "kw, scale, cause",
    [
        ({"learning_rate": 1e300}, 1, "learning_rate=1e[+]300 is too large"),
        ({"learning_rate": 0.01, "optimizer": "sgd"}, 1e8, "the ratings' scale"),
        ({"learning_rate": 0.01, "optimizer": "sgd", "init_scale": 1e3}, 1, "init_scale=1000.0"),
    ],
    ids=["rate", "ratings-scale", "init-scale"],
)
def test_divergence_names_its_likely_cause(kw, scale, cause):
    model = MatrixFactorization(**{"epochs": 20, "optimizer": "sgd", "random_state": 0, **kw})
    with pytest.raises(FloatingPointError, match=cause):
        model.fit(U, I, R * scale)


@pytest.mark.parametrize("optimizer", ["lazy_adam", "sgd"])
def test_a_diverged_block_partial_fit_restores_everything(monkeypatch, optimizer):
    monkeypatch.setattr(_block_kernels, "BLOCK_MIN_RATINGS", 0)
    monkeypatch.setattr(_block_kernels, "DENSE_BLOCK_MIN_RATINGS", 0)
    model = _fitted(optimizer, learning_rate=0.01)
    before = model_state(model)
    model.learning_rate = 1e300
    with pytest.raises(FloatingPointError):
        model.partial_fit(U + 1000, I, R, epochs=3)  # new users too: the grown arrays are dropped again
    model.learning_rate = 0.01
    assert_model_unchanged(before, model)
