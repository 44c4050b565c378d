import numpy as np
import pandas as pd
import pytest

import npmf
from npmf import metrics


def test_metric_values():
    y, p = [1, 2, 3, 4], [1.4, 2.6, 2.0, 4.0]
    assert metrics.mae(y, p) == pytest.approx((0.4 + 0.6 + 1.0) / 4)
    assert metrics.rmse(y, p) == pytest.approx(np.sqrt((0.16 + 0.36 + 1.0) / 4))
    # np.round: 1.4 -> 1, 2.6 -> 3, 2.0 -> 2; errors 0, 1, 1, 0
    assert metrics.rounded_mae(y, p) == pytest.approx(0.5)


def test_rounded_mae_is_the_recipe_formula():
    rng = np.random.default_rng(0)
    y = rng.integers(1, 6, 200)
    p = rng.normal(3, 2, 200)
    assert metrics.rounded_mae(y, p) == pytest.approx(np.mean(np.abs(y - np.round(p))))
    assert metrics.rounded_mae(y, p, clip=(1, 5)) == pytest.approx(np.mean(np.abs(y - np.round(np.clip(p, 1, 5)))))
    assert metrics.rounded_mae(y, p, clip=(1, 5)) < metrics.rounded_mae(y, p)


def test_rounded_mae_half_steps():
    assert metrics.rounded_mae([3.5, 4.0], [3.6, 4.2], step=0.5) == pytest.approx(0.0)
    assert metrics.rounded_mae([3.5, 4.0], [3.6, 4.2]) == pytest.approx(0.25)


@pytest.mark.parametrize("fn", [metrics.mae, metrics.rmse, metrics.rounded_mae])
def test_metric_errors(fn):
    with pytest.raises(ValueError, match="empty"):
        fn([], [])
    with pytest.raises(ValueError, match="same length; got 2 and 1"):
        fn([1, 2], [1])
    with pytest.raises(ValueError, match="finite"):
        fn([1, 2], [1, np.nan])


def test_split_sizes_disjoint_and_reproducible():
    df = pd.DataFrame({"user_id": np.arange(100), "rating": np.ones(100)})
    train, test = npmf.train_test_split(df, test_size=0.2, random_state=0)
    assert (len(train), len(test)) == (80, 20)
    assert set(train.index).isdisjoint(test.index) and set(train.index) | set(test.index) == set(range(100))
    again = npmf.train_test_split(df, test_size=0.2, random_state=0)
    assert again[1].index.equals(test.index)
    other = npmf.train_test_split(df, test_size=0.2, random_state=1)
    assert not other[1].index.equals(test.index)
    a_train, a_test, b_train, b_test = npmf.train_test_split(
        np.arange(10), np.arange(10) * 2, test_size=3, random_state=0
    )
    assert len(a_test) == 3 and np.array_equal(b_test, a_test * 2)


@pytest.mark.parametrize("size", [0, 1.0, -0.2, 100, "0.2"])
def test_split_bad_test_size(size):
    with pytest.raises(ValueError, match="test_size"):
        npmf.train_test_split(np.arange(100), test_size=size)


def test_split_mismatched_lengths():
    with pytest.raises(ValueError, match="same length"):
        npmf.train_test_split(np.arange(10), np.arange(9))


def test_rating_step():
    assert metrics.rating_step([1, 2, 3, 5, 4, 4]) == 1.0
    assert metrics.rating_step([0.5, 1.0, 4.5, 5.0]) == 0.5
    assert metrics.rating_step([3, 3]) == 1.0


def test_cli_rounds_half_star_data_to_half_stars(tmp_path, capsys):
    import json

    from npmf.cli import main

    rng = np.random.default_rng(0)
    n = 300
    r = rng.integers(1, 11, n) / 2  # 0.5 .. 5.0
    path = tmp_path / "half.csv"
    path.write_text("".join(f"{u},{i},{x}\n" for u, i, x in zip(rng.integers(1, 20, n), rng.integers(1, 30, n), r)))
    argv = ["train", "--data", str(path), "--epochs", "20", "--lr", "0.05", "--biases", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    df = npmf.read_ratings(path)
    train, test = npmf.train_test_split(df, test_size=0.2, random_state=0)
    model = npmf.MatrixFactorization(epochs=20, learning_rate=0.05, biases=True, random_state=0)
    model.fit(train.user_id, train.item_id, train.rating)
    pred = model.predict(test.user_id, test.item_id)
    assert out["mae"] == pytest.approx(metrics.mae(test.rating, pred))  # the same fit as the command's
    assert out["rounded_mae"] == pytest.approx(metrics.rounded_mae(test.rating, pred, step=0.5))
    assert out["rounded_mae"] != pytest.approx(metrics.rounded_mae(test.rating, pred, step=1.0))
