"""Bad input gets one clear error that names the argument and what is allowed."""

import numpy as np
import pandas as pd
import pytest

from npmf import MatrixFactorization

U, I, R = [1, 2, 3], [1, 1, 2], [4.0, 3.0, 5.0]


@pytest.mark.parametrize(
    "ratings, message",
    [
        ([4.0, np.nan, 5.0], "ratings must be finite numbers; 1 are NaN or infinite"),
        ([4.0, np.inf, 5.0], "ratings must be finite numbers"),
        (["a", "b", "c"], "ratings must be numeric"),
    ],
)
def test_bad_ratings(ratings, message):
    with pytest.raises(ValueError, match=message):
        MatrixFactorization(epochs=1).fit(U, I, ratings)


def test_different_lengths():
    with pytest.raises(ValueError, match="same length; got lengths"):
        MatrixFactorization(epochs=1).fit(U, I[:2], R)
    model = MatrixFactorization(epochs=1).fit(U, I, R)
    with pytest.raises(ValueError, match="same length"):
        model.predict([1, 2], [1])


def test_empty():
    with pytest.raises(ValueError, match="empty; at least one rating"):
        MatrixFactorization(epochs=1).fit([], [], [])


@pytest.mark.parametrize("name", ["n_factors", "epochs", "batch_size"])
@pytest.mark.parametrize(
    "value, error", [(0, ValueError), (-3, ValueError), (2.5, TypeError), ("8", TypeError), (True, TypeError)]
)
def test_integer_parameters(name, value, error):
    with pytest.raises(error, match=f"{name} must be an integer >= 1"):
        MatrixFactorization(**{name: value}).fit(U, I, R)


@pytest.mark.parametrize("name", ["learning_rate", "epsilon"])
@pytest.mark.parametrize("value", [0, -0.1, np.nan, np.inf])
def test_positive_floats(name, value):
    with pytest.raises(ValueError, match=rf"{name} must be a number in \(0, inf\)"):
        MatrixFactorization(**{name: value}).fit(U, I, R)


@pytest.mark.parametrize("name", ["beta_1", "beta_2"])
@pytest.mark.parametrize("value", [1.0, -0.01, 1.5])
def test_betas(name, value):
    with pytest.raises(ValueError, match=rf"{name} must be a number in \[0, 1\)"):
        MatrixFactorization(**{name: value}).fit(U, I, R)


def test_beta_zero_is_allowed():
    MatrixFactorization(epochs=1, beta_1=0.0).fit(U, I, R)


def test_unknown_optimizer_and_dtype():
    with pytest.raises(ValueError, match="optimizer must be one of 'adam', 'lazy_adam', 'sgd'; got 'rmsprop'"):
        MatrixFactorization(optimizer="rmsprop").fit(U, I, R)
    with pytest.raises(ValueError, match="dtype must be one of float64, float32; got 'int8'"):
        MatrixFactorization(dtype="int8").fit(U, I, R)


def test_failed_fit_leaves_no_half_state():
    model = MatrixFactorization(epochs=0)
    with pytest.raises(ValueError):
        model.fit(U, I, R)
    assert not hasattr(model, "user_factors_")


def test_predict_before_fit():
    with pytest.raises(RuntimeError, match="not fitted yet"):
        MatrixFactorization().predict([1], [1])


def test_early_stopping_needs_validation_data():
    with pytest.raises(ValueError, match="early_stopping_patience is set but fit\\(\\) got no validation_data"):
        MatrixFactorization(early_stopping_patience=2).fit(U, I, R)


def test_corrupt_and_foreign_model_files(tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip at all")
    with pytest.raises(ValueError, match="not an npmf model file"):
        MatrixFactorization.load(junk)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, a=np.arange(3))
    with pytest.raises(ValueError, match="not an npmf model"):
        MatrixFactorization.load(foreign)
    model = MatrixFactorization(epochs=1).fit(U, I, R)
    good = tmp_path / "good.npz"
    model.save(good)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ValueError, match="not"):
        MatrixFactorization.load(truncated)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        MatrixFactorization.load(tmp_path / "missing.npz")


def test_missing_ids():
    with pytest.raises(ValueError, match="users contain missing ids \\(NaN or None\\) at 1 positions"):
        MatrixFactorization(epochs=1).fit(pd.Series([1, None, 3]), I, R)
