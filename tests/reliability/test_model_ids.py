"""Class 3 of issue 12: ids keep their identity; mixed types are refused, never merged or converted."""

import warnings

import numpy as np
import pandas as pd
import pytest
from helpers import assert_model_unchanged, model_state, planted

import npmf
from npmf import MatrixFactorization

U, I, R = planted(n_users=30, n_items=20, n_ratings=600)


@pytest.fixture
def fitted():
    return MatrixFactorization(epochs=2, biases=True, random_state=0).fit(U, I, R)


@pytest.mark.parametrize(
    "users",
    [[1, "1"] * 300, np.array([1, "1"] * 300, dtype=object), pd.Series([1, "a"] * 300), [1.5, "x"] * 300],
    ids=["list", "object-array", "series", "float-and-str"],
)
def test_fit_refuses_mixed_id_types(users):
    model = MatrixFactorization(epochs=1)
    with pytest.raises(ValueError, match="users mix ids of types"):
        model.fit(users, I, R)
    assert not hasattr(model, "user_factors_")


@pytest.mark.parametrize("side", ["users", "items"])
def test_partial_fit_with_ids_of_another_type_is_refused_and_converts_nothing(fitted, side):
    before = model_state(fitted)
    args = {"users": U, "items": I, "ratings": R}
    args[side] = np.array([str(x) for x in args[side]])
    with pytest.raises(ValueError, match=f"{side}: the model's .* ids are integers, these new ones are strings"):
        fitted.partial_fit(**args)
    assert_model_unchanged(before, fitted)
    assert fitted.user_ids_.dtype.kind == fitted.item_ids_.dtype.kind == "i"


def test_integer_and_string_models_keep_their_ids(fitted):
    strings = MatrixFactorization(epochs=2, random_state=0).fit([str(x) for x in U], I, R)
    assert strings.user_ids_.dtype.kind == "U" and fitted.user_ids_.dtype.kind == "i"
    # a new string user joins the string model without converting anything
    strings.partial_fit(["new"], [I[0]], [4.0])
    assert "new" in set(strings.user_ids_) and strings.user_ids_.dtype.kind == "U"


def test_new_integer_ids_of_another_width_keep_the_old_ones(fitted):
    old = fitted.user_ids_.copy()
    fitted.partial_fit(np.array([10**12], np.int64), np.array([I[0]], np.int32), [3.0])
    np.testing.assert_array_equal(fitted.user_ids_[: len(old)], old)
    assert fitted.user_ids_[-1] == 10**12
    top = fitted.recommend(U[0], n=len(fitted.item_ids_))
    assert not set(top.item_id) & set(I[U == U[0]])  # old users still known: seen items still excluded


def test_predict_warns_when_no_id_is_known_and_the_types_differ(fitted):
    with pytest.warns(
        UserWarning, match="none of the users is known: they are strings but the model's ids are integers"
    ):
        pred = fitted.predict([str(U[0]), str(U[1])], [I[0], I[1]])
    assert np.isfinite(pred).all()


@pytest.mark.parametrize("users", [[U[0], 99999], [99998, 99999]], ids=["one-known", "unknown-same-type"])
def test_predict_does_not_warn_for_unknown_ids_of_the_same_type(fitted, users):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fitted.predict(users, [I[0], I[1]])


def test_ids_above_2_63_fit_save_and_load(tmp_path):
    big = [2**63 + int(x) for x in U]
    model = MatrixFactorization(epochs=1, random_state=0).fit(big, I, R)
    assert model.user_ids_.dtype == np.uint64
    model.save(tmp_path / "m.npz")
    loaded = npmf.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.predict(big, I), model.predict(big, I))


@pytest.mark.parametrize("users", [[2**64 + int(x) for x in U], [-(2**63) - 1] + list(U[1:])], ids=["above", "below"])
def test_ids_beyond_64_bits_are_refused_at_fit(users):
    model = MatrixFactorization(epochs=1)
    with pytest.raises(ValueError, match="users must fit in 64-bit integers"):
        model.fit(users, I, R)


def test_missing_ids_are_named():
    with pytest.raises(ValueError, match="users contain missing ids"):
        MatrixFactorization(epochs=1).fit([None] + list(U[1:]), I, R)
