"""npmf predict, recommend for many users, export (Spark ALS's shape), and train --test-size 0."""

import json

import numpy as np
import pandas as pd
import pytest
from helpers import write_ratings_file

import npmf
from npmf.cli import main


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    data = write_ratings_file(tmp / "ratings.csv", 400, header="user,item,rating")
    path = tmp / "m.npz"
    assert main(["train", "--data", str(data), "--epochs", "3", "--biases", "--reg", "0.05", "--lr", "0.05",
                 "--quiet", "--save", str(path)]) == 0  # fmt: skip
    return path, npmf.load(path), data


def test_train_with_test_size_0_trains_on_everything(saved, tmp_path, capsys):
    _, _, data = saved
    assert main(["train", "--data", str(data), "--epochs", "2", "--test-size", "0", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n_train"] == 400 and result["n_test"] == 0 and result["rmse"] is None
    assert main(["train", "--data", str(data), "--epochs", "1", "--test-size", "0"]) == 0
    assert "no test set" in capsys.readouterr().out.splitlines()[-1]
    assert main(["train", "--data", str(data), "--test-size", "1"]) == 2
    assert "--test-size must be a fraction in [0, 1)" in capsys.readouterr().err


def test_predict_writes_the_models_predictions(saved, tmp_path, capsys):
    path, _, _ = saved
    model = npmf.load(path)
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("user,item,note\n5,3,a\n5,999,b\n12345,2,c\n")
    out = tmp_path / "preds.csv"
    assert main(["predict", "--model", str(path), "--data", str(pairs), "--out", str(out)]) == 0
    assert "3 predictions written" in capsys.readouterr().out
    table = pd.read_csv(out)
    assert list(table.columns) == ["user", "item", "note", "prediction"]
    np.testing.assert_allclose(table.prediction, model.predict([5, 5, 12345], [3, 999, 2]), rtol=1e-15)
    pairs.write_text("5,3\n1,2\n")  # no header: the first line is data
    model.user_factors_ = model.user_factors_ * 1000  # predictions far outside 1-5, for --clip
    model.save(tmp_path / "wild.npz")
    assert main(["predict", "--model", str(tmp_path / "wild.npz"), "--data", str(pairs), "--clip"]) == 0
    printed = pd.read_csv(pd.io.common.StringIO(capsys.readouterr().out))
    assert list(printed.columns) == ["user_id", "item_id", "prediction"] and len(printed) == 2
    assert np.abs(model.predict([5, 1], [3, 2]) - 3).max() > 2  # so clipping shows
    np.testing.assert_allclose(printed.prediction, model.predict([5, 1], [3, 2], clip=True), rtol=1e-15)


def test_predict_bad_ids_are_one_line(saved, tmp_path, capsys):
    path, _, _ = saved
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("user,item\nabc,3\n")
    assert main(["predict", "--model", str(path), "--data", str(pairs)]) == 2
    assert "must hold integer ids" in capsys.readouterr().err


def test_recommend_many_users_and_all_users_to_csv(saved, tmp_path, capsys):
    path, model, _ = saved
    assert main(["recommend", "--model", str(path), "--user", "5,6", "--user", "77777", "-n", "3", "--json"]) == 0
    captured = capsys.readouterr()
    rows = pd.DataFrame(json.loads(captured.out))
    assert "1 user(s) not in the model (77777)" in captured.err
    assert rows.user_id.tolist() == [5] * 3 + [6] * 3 + [77777] * 3 and rows["rank"].tolist() == [1, 2, 3] * 3
    for user in (5, 6, 77777):
        expect = model.recommend(user, n=3)
        got = rows[rows.user_id == user]
        assert got.item_id.tolist() == expect.item_id.tolist()
        np.testing.assert_array_equal(got.score, expect.score)
    out = tmp_path / "recs.csv"
    assert main(["recommend", "--model", str(path), "--all-users", "-n", "2", "--out", str(out)]) == 0
    assert "written to" in capsys.readouterr().out
    table = pd.read_csv(out)
    assert set(table.user_id) == set(model.user_ids_) and list(table.columns) == ["user_id", "rank", "item_id", "score"]
    ids = tmp_path / "users.txt"
    ids.write_text("6\n5\n")
    assert main(["recommend", "--model", str(path), "--users-file", str(ids), "-n", "2", "--json"]) == 0
    assert [r["user_id"] for r in json.loads(capsys.readouterr().out)] == [6, 6, 5, 5]
    assert main(["recommend", "--model", str(path), "--user", "5", "-n", "0"]) == 2


def _spark_predictions(folder, fmt, users, items):
    """Predictions rebuilt from the exported files alone, as a Spark job would."""
    read = pd.read_parquet if fmt == "parquet" else pd.read_csv
    meta = json.loads((folder / "model.json").read_text())
    tables = {name: read(folder / f"{name}.{fmt}").set_index("id") for name in
              ("user_factors", "item_factors", "user_bias", "item_bias")}  # fmt: skip
    for side in ("user_factors", "item_factors"):
        if fmt == "csv":  # CSV holds each array as JSON text (Spark: from_json(features, 'array<float>'))
            tables[side]["features"] = tables[side].features.map(json.loads)
    W = np.stack(tables["user_factors"].features.loc[users].map(np.asarray))
    H = np.stack(tables["item_factors"].features.loc[items].map(np.asarray))
    bias = tables["user_bias"].bias.loc[users].to_numpy() + tables["item_bias"].bias.loc[items].to_numpy()
    return meta["global_mean"] * meta["biases"] + bias + (W * H).sum(axis=1), meta


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_in_spark_als_shape_reproduces_predictions(saved, tmp_path, fmt):
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    path, model, _ = saved
    assert main(["export", "--model", str(path), "--out", str(tmp_path / "out"), "--format", fmt]) == 0
    users, items = model.user_ids_[[0, 3, 5]], model.item_ids_[[1, 2, 9]]
    pred, meta = _spark_predictions(tmp_path / "out", fmt, users, items)
    np.testing.assert_allclose(pred, model.predict(users, items), atol=1e-6)  # float32 features, as Spark's
    assert meta["rank"] == model.n_factors and meta["biases"] is True
    if fmt == "parquet":
        import pyarrow.parquet as pq

        schema = pq.read_schema(tmp_path / "out" / "user_factors.parquet")
        assert schema.names == ["id", "features"] and schema.field("features").type.value_type == "float"


def test_export_parquet_without_pyarrow_says_so(saved, tmp_path, monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "pyarrow", None)
    path, _, _ = saved
    assert main(["export", "--model", str(path), "--out", str(tmp_path / "o"), "--format", "parquet"]) == 2
    assert "needs pyarrow" in capsys.readouterr().err and not (tmp_path / "o").exists()
