"""Classes 2 and 8 of issue 12 on the model side: bad input gets one clear error and changes nothing.

Every case asserts the exception's type, that its message names the
argument, and that the fitted model is bit for bit as before
(:func:`helpers.assert_model_unchanged`), also after an interrupted call.
"""

import numpy as np
import pytest
from helpers import assert_model_unchanged, model_state, planted

import npmf
from npmf import MatrixFactorization
from npmf.sgd import _block_kernels

U, I, R = planted(n_users=30, n_items=20, n_ratings=600)


@pytest.fixture(params=["adam", "lazy_adam", "sgd"])
def fitted(request):
    return MatrixFactorization(epochs=2, optimizer=request.param, biases=True, random_state=0).fit(U, I, R)


PARAMS = [
    ("n_factors", 0, ValueError),
    ("n_factors", "3", TypeError),
    ("epochs", 0, ValueError),
    ("batch_size", 0, ValueError),
    ("batch_size", 2.5, TypeError),
    ("optimizer", "rmsprop", ValueError),
    ("learning_rate", 0.0, ValueError),
    ("learning_rate", -1e-3, ValueError),
    ("learning_rate", float("nan"), ValueError),
    ("learning_rate", "0.1", TypeError),
    ("beta_1", 1.0, ValueError),
    ("beta_2", -0.1, ValueError),
    ("epsilon", 0.0, ValueError),
    ("init_scale", -1.0, ValueError),
    ("reg", -1.0, ValueError),
    ("biases", "yes", ValueError),
    ("early_stopping_patience", 0, ValueError),
    ("n_threads", 0, ValueError),
    ("dtype", "float16", ValueError),
    ("random_state", "seed", TypeError),
    ("random_state", -1, ValueError),
    ("random_state", 1.5, TypeError),
]


@pytest.mark.parametrize("name, value, error", PARAMS, ids=[f"{n}={v!r}" for n, v, _ in PARAMS])
def test_a_bad_parameter_fails_fit_and_changes_nothing(fitted, name, value, error):
    fitted.set_params(**{name: value})
    before = model_state(fitted)
    with pytest.raises(error, match=name):
        fitted.fit(U, I, R)
    assert_model_unchanged(before, fitted)


GOOD = {"users": U, "items": I, "ratings": R}
FIT_ARGS = [
    ("users", {"users": U[:-1]}, ValueError, "same length"),
    ("users", {"users": U[:0], "items": I[:0], "ratings": R[:0]}, ValueError, "empty"),
    ("users", {"users": U.reshape(-1, 2)}, ValueError, "users"),
    ("users", {"users": [1, "1"] * 300}, ValueError, "users"),
    ("users", {"users": [None] + list(U[1:])}, ValueError, "users"),
    ("users", {"users": [2**64 + j for j in range(600)]}, ValueError, "users"),
    ("items", {"items": np.array([1, "a"] * 300, dtype=object)}, ValueError, "items"),
    ("ratings", {"ratings": np.r_[R[:-1], np.nan]}, ValueError, "ratings"),
    ("ratings", {"ratings": np.r_[R[:-1], np.inf]}, ValueError, "ratings"),
    ("ratings", {"ratings": ["inf"] * 600}, ValueError, "ratings"),
    ("ratings", {"ratings": ["five"] * 600}, ValueError, "ratings"),
    ("validation_data", {"validation_data": (U, I)}, ValueError, "validation_data"),
    ("validation_data", {"validation_data": (U, I, np.r_[R[:-1], np.nan])}, ValueError, "ratings"),
    ("callback", {"callback": 5}, TypeError, "callback"),
    ("callback", {"callback": "print"}, TypeError, "callback"),
]


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
@pytest.mark.parametrize("name, change, error, words", FIT_ARGS, ids=[f"{c[0]}-{j}" for j, c in enumerate(FIT_ARGS)])
def test_bad_data_fails_and_changes_nothing(fitted, method, name, change, error, words):
    args = {**GOOD, **change}
    before = model_state(fitted)
    with pytest.raises(error, match=words):
        getattr(fitted, method)(**args)
    assert_model_unchanged(before, fitted)


def test_early_stopping_without_validation_data_is_refused_before_anything(fitted):
    fitted.set_params(early_stopping_patience=2)
    before = model_state(fitted)
    with pytest.raises(ValueError, match="early_stopping_patience"):
        fitted.fit(U, I, R)
    assert_model_unchanged(before, fitted)


@pytest.mark.parametrize(
    "name, value, error", [("epochs", 0, ValueError), ("epochs", "1", TypeError), ("epochs", 1.0, TypeError)]
)
def test_bad_partial_fit_epochs(fitted, name, value, error):
    before = model_state(fitted)
    with pytest.raises(error, match=name):
        fitted.partial_fit(U, I, R, epochs=value)
    assert_model_unchanged(before, fitted)


@pytest.mark.parametrize("name, value", [("n_factors", 5), ("dtype", "float32")])
def test_partial_fit_refuses_a_changed_shape_or_dtype(fitted, name, value):
    fitted.set_params(**{name: value})
    before = model_state(fitted)
    with pytest.raises(ValueError, match=f"{name}=.*differs.*partial_fit cannot change it"):
        fitted.partial_fit(U, I, R)
    assert_model_unchanged(before, fitted)


class Interrupt:
    """A callback that raises ``exc`` after epoch ``at`` (0-based)."""

    def __init__(self, exc, at=1):
        self.exc, self.at = exc, at

    def __call__(self, epoch, seconds, loss):
        if epoch == self.at:
            raise self.exc


@pytest.mark.parametrize("exc", [KeyboardInterrupt, RuntimeError("callback failed")], ids=["interrupt", "error"])
@pytest.mark.parametrize("new_ids", [False, True], ids=["known-ids", "new-ids"])
def test_an_interrupted_partial_fit_leaves_the_model_as_it_was(fitted, exc, new_ids):
    users = U + 1000 if new_ids else U
    before = model_state(fitted)
    with pytest.raises(type(exc) if isinstance(exc, BaseException) else exc):
        fitted.partial_fit(users, I, R * 2, epochs=3, callback=Interrupt(exc))
    assert_model_unchanged(before, fitted)
    fitted.partial_fit(users, I, R, epochs=1)  # and it still trains


@pytest.mark.parametrize("exc", [KeyboardInterrupt, RuntimeError("callback failed")], ids=["interrupt", "error"])
def test_an_interrupted_fit_leaves_the_previous_model(fitted, exc):
    before = model_state(fitted)
    with pytest.raises(exc if isinstance(exc, type) else type(exc)):
        fitted.fit(U[::2] + 5, I[::2], R[::2], callback=Interrupt(exc))
    assert_model_unchanged(before, fitted)


def test_an_interrupted_first_fit_leaves_an_unfitted_model():
    model = MatrixFactorization(epochs=3, random_state=0)
    before = model_state(model)
    with pytest.raises(KeyboardInterrupt):
        model.fit(U, I, R, callback=Interrupt(KeyboardInterrupt))
    assert_model_unchanged(before, model)
    with pytest.raises(RuntimeError, match="not fitted"):
        model.predict(U, I)


@pytest.mark.parametrize("optimizer", ["lazy_adam", "sgd"])
def test_an_interrupted_block_partial_fit_leaves_the_model_as_it_was(monkeypatch, optimizer):
    monkeypatch.setattr(_block_kernels, "BLOCK_MIN_RATINGS", 0)
    monkeypatch.setattr(_block_kernels, "DENSE_BLOCK_MIN_RATINGS", 0)
    model = MatrixFactorization(epochs=1, optimizer=optimizer, biases=True, random_state=0).fit(U, I, R)
    before = model_state(model)
    with pytest.raises(KeyboardInterrupt):
        model.partial_fit(U, I, R, epochs=3, callback=Interrupt(KeyboardInterrupt))
    assert_model_unchanged(before, model)


@pytest.mark.parametrize("value", ["no", 1.5, None, "False"])
def test_recommend_exclude_seen_must_be_a_bool(fitted, value):
    before = model_state(fitted)
    with pytest.raises(ValueError, match="exclude_seen"):
        fitted.recommend(U[0], exclude_seen=value)
    assert_model_unchanged(before, fitted)


@pytest.mark.parametrize("cls", [npmf.MatrixFactorization, npmf.BayesianMatrixFactorization])
@pytest.mark.parametrize("name, kwargs, error", [
    ("random_state", {"random_state": "x"}, TypeError),
    ("callback", {}, TypeError),
])  # fmt: skip
def test_both_estimators_check_random_state_and_callback_before_the_first_epoch(cls, name, kwargs, error):
    calls = []
    model = cls(epochs=2, random_state=0).set_params(**kwargs)
    callback = 5 if name == "callback" else calls.append
    with pytest.raises(error, match=name):
        model.fit(U, I, R, callback=callback)
    assert not calls and not hasattr(model, "user_factors_")
