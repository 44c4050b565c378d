"""Canonical folds, random k-fold and cross_validate."""

import numpy as np
import pandas as pd
import pytest
from helpers import planted

import npmf
from npmf.model_selection import kfold


def planted_frame(**kw):
    u, i, r = planted(**kw)
    return pd.DataFrame({"user_id": u, "item_id": i, "rating": r})


def test_movielens_folds_are_the_five_canonical_pairs(ml100k_home):
    folds = npmf.load_movielens_folds("ml-100k", data_home=ml100k_home, download=False)
    assert len(folds) == 5
    tests = []
    for train, test in folds:
        assert (len(train), len(test)) == (80_000, 20_000)
        assert list(train.columns) == ["user_id", "item_id", "rating", "timestamp"]
        pairs = set(zip(train.user_id, train.item_id))
        assert not pairs & set(zip(test.user_id, test.item_id))
        tests.append(test)
    # The five test sets partition u.data.
    all_tests = pd.concat(tests)
    assert len(all_tests.drop_duplicates(["user_id", "item_id"])) == 100_000


def test_movielens_ua_ub_splits(ml100k_home):
    folds = npmf.load_movielens_folds(data_home=ml100k_home, download=False, splits=["ua", "ub"])
    for train, test in folds:
        assert (len(train), len(test)) == (90_570, 9_430)
        assert (test.groupby("user_id").size() == 10).all()


def test_movielens_folds_missing_without_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="u1.base"):
        npmf.load_movielens_folds(data_home=tmp_path, download=False)
    with pytest.raises(ValueError, match="unknown dataset"):
        npmf.load_movielens_folds("ml-nope", data_home=tmp_path, download=False)


def test_kfold_tests_every_row_once():
    df = planted_frame(n_ratings=103)
    folds = kfold(df, 4, random_state=0)
    assert len(folds) == 4
    tested = np.concatenate([test.index.to_numpy() for _, test in folds])
    assert sorted(tested) == list(df.index)
    for train, test in folds:
        assert len(train) + len(test) == 103 and not set(train.index) & set(test.index)
    same = kfold(df, 4, random_state=0)
    assert all(a[1].index.equals(b[1].index) for a, b in zip(folds, same))
    with pytest.raises(ValueError, match="n_folds"):
        kfold(df, 1)


@pytest.mark.slow
def test_cross_validate_table_and_means():
    folds = kfold(planted_frame(n_ratings=1500, noise=0.1), 3, random_state=0)
    model = npmf.MatrixFactorization(
        n_factors=2, epochs=100, batch_size=16, optimizer="lazy_adam", learning_rate=0.01, biases=True, random_state=0
    )
    table = npmf.cross_validate(model, folds)
    assert list(table.index) == [1, 2, 3, "mean", "std"]
    assert list(table.columns) == ["rmse", "mae", "rounded_mae", "fit_seconds", "n_train", "n_test"]
    per_fold = table.loc[[1, 2, 3]]
    assert np.allclose(table.loc["mean"], per_fold.mean())
    assert np.allclose(table.loc["std"], per_fold.std(ddof=0))
    assert (per_fold.n_train + per_fold.n_test == 1500).all()
    # Better than predicting the mean: the planted structure was learnt.
    baseline = np.mean([np.sqrt(np.mean((te.rating - tr.rating.mean()) ** 2)) for tr, te in folds])
    assert table.loc["mean", "rmse"] < 0.2 * baseline
    # The model passed in is untouched, and each fold is fitted from the same seed.
    assert not hasattr(model, "user_factors_")
    again = npmf.cross_validate(model, folds)
    assert np.array_equal(again[["rmse", "mae"]].to_numpy(), table[["rmse", "mae"]].to_numpy())


def test_cross_validate_clip_and_step():
    folds = kfold(planted_frame(n_ratings=600), 2, random_state=1)
    model = npmf.MatrixFactorization(epochs=1, random_state=0)
    raw = npmf.cross_validate(model, folds)
    clipped = npmf.cross_validate(model, folds, clip=True)
    assert (clipped.loc[[1, 2], "rmse"] <= raw.loc[[1, 2], "rmse"] + 1e-12).all()
    fixed = npmf.cross_validate(model, folds, clip=(2.5, 3.5), step=0.5)
    train, test = folds[0]
    pred = npmf.clone(model).fit(train.user_id, train.item_id, train.rating).predict(test.user_id, test.item_id)
    expected = npmf.metrics.rounded_mae(test.rating, pred, clip=(2.5, 3.5), step=0.5)
    assert fixed.loc[1, "rounded_mae"] == pytest.approx(expected)
    assert fixed.loc[1, "rmse"] == pytest.approx(npmf.metrics.rmse(test.rating, pred.clip(2.5, 3.5)))


@pytest.mark.parametrize(
    "folds, clip, message",
    [([], None, "folds is empty"), ([("a",)], None, "not a \\(train, test\\) pair"), (None, (5, 1), "lo <= hi")],
)
def test_cross_validate_bad_input(folds, clip, message):
    if folds is None:
        folds = kfold(planted_frame(n_ratings=100), 2, random_state=0)
    with pytest.raises(ValueError, match=message):
        npmf.cross_validate(npmf.MatrixFactorization(epochs=1), folds, clip=clip)
