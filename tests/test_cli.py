"""The command line: the recipe's output, JSON, and one-line errors."""

import json
import subprocess
import sys

import pytest
from helpers import write_ratings_file

from npmf.cli import main


@pytest.fixture
def ratings_file(tmp_path):
    return write_ratings_file(tmp_path / "ratings.csv", 400, header="user,item,rating")


def test_train_on_a_file_prints_epochs_and_summary(ratings_file, capsys):
    assert main(["train", "--data", str(ratings_file), "--epochs", "3", "--factors", "4"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split(" - ")[0] for line in out[:3]] == ["Epoch 1/3", "Epoch 2/3", "Epoch 3/3"]
    assert "loss:" in out[0] and "rounded MAE" in out[-1] and "RMSE" in out[-1]


def test_train_json_and_save(ratings_file, tmp_path, capsys):
    model_path = tmp_path / "m.npz"
    assert (
        main(
            [
                "train",
                "--data",
                str(ratings_file),
                "--epochs",
                "2",
                "--optimizer",
                "lazy_adam",
                "--json",
                "--save",
                str(model_path),
                "--seed",
                "3",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert {"rounded_mae", "mae", "rmse", "fit_seconds", "history"} <= set(result)
    assert len(result["history"]["loss"]) == 2 and result["n_test"] == 80
    assert model_path.is_file()
    assert main(["recommend", "--model", str(model_path), "--user", "5", "-n", "3", "--json"]) == 0
    top = json.loads(capsys.readouterr().out)
    assert len(top) == 3 and top[0]["score"] >= top[1]["score"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--optimizer", "rmsprop"], "optimizer must be one of"),
        (["train", "--epochs", "0"], "epochs must be an integer >= 1"),
        (["train", "--lr", "-1"], "learning_rate must be a number in (0, inf)"),
        (["train", "--data", "/no/such/file.csv"], "does not exist"),
        (["recommend", "--model", "/no/such/model.npz", "--user", "1"], "does not exist"),
    ],
)
def test_user_errors_are_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.slow
def test_python_dash_m_is_the_same_program(ratings_file):
    proc = subprocess.run(
        [sys.executable, "-m", "npmf", "train", "--data", str(ratings_file), "--epochs", "1", "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "rounded MAE" in proc.stdout and "Epoch" not in proc.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "npmf", "train", "--factors", "0"], capture_output=True, text=True, timeout=120
    )
    assert bad.returncode == 2 and "n_factors must be an integer >= 1" in bad.stderr and "Traceback" not in bad.stderr
