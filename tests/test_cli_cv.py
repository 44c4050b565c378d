"""`npmf cv` and `--preset`: tables, JSON, overrides and one-line errors."""

import json

import numpy as np
import pytest
from helpers import write_ratings_file

from npmf.cli import main
from npmf.presets import get_preset


@pytest.fixture
def ratings_file(tmp_path):
    return write_ratings_file(tmp_path / "ratings.tsv", 500, sep="\t", timestamp=True)


def test_cv_json_on_a_file(ratings_file, capsys):
    argv = ["cv", "--data", str(ratings_file), "--folds", "3", "--epochs", "2", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert [f["fold"] for f in out["folds"]] == [1, 2, 3]
    assert sum(f["n_test"] for f in out["folds"]) == 500
    assert out["mean"]["rmse"] == pytest.approx(np.mean([f["rmse"] for f in out["folds"]]))
    assert set(out["std"]) >= {"rmse", "mae", "rounded_mae"}
    assert out["preset"] == "seed" and out["params"]["epochs"] == 2 and out["params"]["n_factors"] == 3


def test_cv_table_and_preset_overrides(ratings_file, capsys):
    argv = ["cv", "--data", str(ratings_file), "--preset", "accurate", "--epochs", "1", "--factors", "4"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines[:5]] == [f"fold {k}/5" for k in range(1, 6)]
    assert lines[5].split() == ["rmse", "mae", "rounded_mae", "fit_seconds", "n_train", "n_test"]
    assert lines[-1].startswith("mean")
    argv = ["cv", "--data", str(ratings_file), "--preset", "accurate_sgd", "--epochs", "1", "--no-biases", "--json"]
    assert main(argv) == 0
    params = json.loads(capsys.readouterr().out)["params"]
    accurate = get_preset("accurate_sgd")
    assert params["biases"] is False and params["epochs"] == 1
    assert params["n_factors"] == accurate["n_factors"] and params["learning_rate"] == accurate["learning_rate"]


def test_train_with_preset(ratings_file, capsys):
    assert main(["train", "--data", str(ratings_file), "--preset", "accurate_sgd", "--epochs", "2", "--json"]) == 0
    params = json.loads(capsys.readouterr().out)["params"]
    assert {k: params[k] for k in ("optimizer", "reg", "biases")} == {
        k: get_preset("accurate_sgd")[k] for k in ("optimizer", "reg", "biases")
    }


def test_train_accurate_saves_a_sampled_model_that_recommend_loads(ratings_file, tmp_path, capsys):
    path = tmp_path / "model.npz"
    argv = [
        "train",
        "--data",
        str(ratings_file),
        "--preset",
        "accurate",
        "--epochs",
        "5",
        "--json",
        "--save",
        str(path),
    ]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["params"]["implicit_feedback"] == get_preset("accurate")["implicit_feedback"]
    assert len(out["history"]["noise_std"]) == 5
    assert main(["recommend", "--model", str(path), "--user", "3", "-n", "4", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 4


@pytest.mark.parametrize(
    "argv, message",
    [
        (["cv", "--preset", "best"], "unknown preset 'best'; available presets: seed, accurate, accurate_sgd"),
        (["train", "--preset", "accurate", "--lr", "0.1"], "--lr does not apply to preset 'accurate'"),
        (["train", "--preset", "best"], "unknown preset 'best'"),
        (["cv", "--folds", "1"], "n_folds must be an integer"),
        (["cv", "--splits", "u1"], "--splits names MovieLens' own splits"),
        (["cv", "--epochs", "0"], "epochs"),
    ],
)
def test_cv_user_errors_are_one_line(ratings_file, capsys, argv, message):
    assert main([*argv, "--data", str(ratings_file)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and err.startswith(f"npmf {argv[0]}: error:")


def test_cv_on_movielens_u1(ml100k_home, monkeypatch, capsys):
    monkeypatch.setenv("NPMF_DATA_DIR", str(ml100k_home))
    argv = ["cv", "--splits", "u1", "--epochs", "1", "--optimizer", "lazy_adam", "--batch-size", "1024", "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["folds"][0]["n_train"] == 80_000 and out["folds"][0]["n_test"] == 20_000
