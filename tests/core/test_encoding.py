"""Id encoding: compact integer ids are their own keys; the codes equal pandas' category codes."""

import numpy as np
import pandas as pd
import pytest

from npmf import MatrixFactorization
from npmf.core import encoding as _encoding


@pytest.mark.parametrize(
    "values",
    [
        np.array([5, -3, 5, 7, 100, -3], np.int64),
        np.array([2, 0, 2, 9], np.int8),
        np.array([4_000_000_000, 4_000_000_003, 4_000_000_000], np.uint32),
        np.array([10**12, 3, 10**12], np.int64),  # too sparse for a table: pd.factorize
        np.array(["b", "a", "b"], object),
        np.array([2**63 + 5, 7, 7], np.uint64),  # uint64: pd.factorize
    ],
)
def test_codes_are_category_codes(values):
    keys, base, index, uniques = _encoding.factorize("user", values)
    codes = _encoding.codes_array(_encoding.Codes(keys, base, index))
    expected = pd.Series(values).astype("category")
    np.testing.assert_array_equal(codes, expected.cat.codes)
    np.testing.assert_array_equal(uniques, expected.cat.categories)
    assert uniques.dtype == values.dtype and codes.dtype == np.int32
    counts = _encoding.count_codes(_encoding.Codes(keys, base, index), len(uniques))
    np.testing.assert_array_equal(counts, np.bincount(codes, minlength=len(uniques)))


def test_integer_ids_need_no_copy_per_rating():
    values = np.arange(1000, dtype=np.int32) % 37 + 1
    keys, base, index, uniques = _encoding.factorize("item", values)
    assert keys is values and base == 1 and len(index) == 37


def test_missing_ids_are_named():
    with pytest.raises(ValueError, match="items contain missing ids"):
        _encoding.factorize("item", np.array([1.0, np.nan]))


def test_partial_fit_codes_match_for_integer_and_string_ids():
    rng = np.random.default_rng(0)
    u, i, r = rng.integers(0, 50, 400), rng.integers(0, 30, 400), rng.integers(1, 6, 400).astype(float)
    more_u, more_i = rng.integers(40, 70, 100), rng.integers(25, 35, 100)
    kw = dict(n_factors=3, epochs=2, optimizer="lazy_adam", random_state=0)
    a = MatrixFactorization(**kw).fit(u, i, r).partial_fit(more_u, more_i, r[:100])
    b = MatrixFactorization(**kw).fit(u.astype(str), i.astype(str), r)
    b.partial_fit(more_u.astype(str), more_i.astype(str), r[:100])
    # Strings sort differently from numbers, so compare through the raw ids.
    for model in (a, b):
        seen = sorted(zip(model.user_ids_[model._seen[0]].astype(int), model.item_ids_[model._seen[1]].astype(int)))
        assert seen == sorted(zip(np.r_[u, more_u], np.r_[i, more_i]))
    assert list(a.user_ids_[:50]) == sorted(set(u)) and len(a.user_ids_) == len(set(u) | set(more_u))
