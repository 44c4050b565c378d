"""The command line's gaps of issue 12 (exit 130, cv --clip, recommend --include-seen and unknown users, --sep,
--test-size) and its data options (--columns, --encoding, --seed)."""

import json
import signal
import subprocess
import sys

import numpy as np
import pytest
from helpers import write_ratings_file

import npmf
from npmf.cli import main


@pytest.fixture
def ratings_file(tmp_path):
    return write_ratings_file(tmp_path / "ratings.csv", 400, header="user,item,rating")


def _json(capsys):
    return json.loads(capsys.readouterr().out)


def test_an_interrupt_exits_130_with_one_line(ratings_file, monkeypatch, capsys):
    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(npmf.MatrixFactorization, "fit", interrupted)
    assert main(["train", "--data", str(ratings_file), "--epochs", "2"]) == 130
    assert capsys.readouterr().err.strip() == "npmf train: interrupted"
    assert main(["cv", "--data", str(ratings_file), "--folds", "2", "--epochs", "1"]) == 130
    assert capsys.readouterr().err.strip().endswith("npmf cv: interrupted")


@pytest.mark.slow
def test_ctrl_c_during_a_real_fit_exits_130(tmp_path):
    data = write_ratings_file(tmp_path / "r.csv", 20_000)
    proc = subprocess.Popen(
        [sys.executable, "-m", "npmf", "train", "--data", str(data), "--epochs", "100000", "--batch-size", "4096"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A shell that starts a job in the background (nohup ... &) makes it ignore SIGINT, and Python keeps an
        # ignored SIGINT ignored: give the child the default disposition, as a terminal would.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        # Fitting, past imports and compilation: after the third epoch line.
        lines = [proc.stdout.readline() for _ in range(3)]
        assert lines[0].startswith("Epoch 1/100000") and lines[2].startswith("Epoch 3/100000")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=180)  # a loaded CI machine is slow to wind down
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "npmf train: interrupted" in err and "Traceback" not in err


def test_cv_clip_clips_each_folds_predictions(ratings_file, capsys):
    argv = ["cv", "--data", str(ratings_file), "--folds", "2", "--epochs", "3", "--lr", "0.5", "--json"]
    assert main(argv) == 0
    raw = _json(capsys)
    assert main([*argv, "--clip"]) == 0
    clipped = _json(capsys)
    # A rate of 0.5 scatters predictions far outside 1-5: clipping must show in every fold.
    for a, b in zip(raw["folds"], clipped["folds"]):
        assert b["rmse"] < a["rmse"] and b["mae"] < a["mae"] and b["n_test"] == a["n_test"]
    # And it is the clip of the same predictions: the same folds refitted here and clipped by hand agree.
    df = npmf.read_ratings(ratings_file)
    for (train, test), fold in zip(npmf.model_selection.kfold(df, 2, random_state=0), clipped["folds"]):
        model = npmf.from_preset("seed", epochs=3, learning_rate=0.5, random_state=0).fit(
            train.user_id, train.item_id, train.rating
        )
        pred = model.predict(test.user_id, test.item_id).clip(train.rating.min(), train.rating.max())
        assert fold["rmse"] == pytest.approx(npmf.metrics.rmse(test.rating, pred), rel=1e-12)


@pytest.fixture
def saved_model(ratings_file, tmp_path, capsys):
    path = tmp_path / "m.npz"
    assert main(["train", "--data", str(ratings_file), "--epochs", "2", "--quiet", "--save", str(path)]) == 0
    capsys.readouterr()
    return path


def test_recommend_include_seen(saved_model, ratings_file, capsys):
    model = npmf.load(saved_model)
    n_items = len(model.item_ids_)
    argv = [
        "recommend",
        "--model",
        str(saved_model),
        "--user",
        "5",
        "-n",
        str(n_items),
        "--json",
        "--min-item-ratings",
        "0",
    ]
    assert main(argv) == 0
    unseen = [r["item_id"] for r in _json(capsys)]
    assert main([*argv, "--include-seen"]) == 0
    everything = [r["item_id"] for r in _json(capsys)]
    df = npmf.read_ratings(ratings_file)
    rated = set(df.item_id[df.user_id == 5])
    assert len(everything) == n_items and set(unseen) < set(everything)
    assert set(everything) - set(unseen) <= rated and set(everything) - set(unseen)  # what was left out was seen


def test_recommend_for_an_unknown_user(saved_model, capsys):
    assert main(["recommend", "--model", str(saved_model), "--user", "99999", "-n", "4", "--json"]) == 0
    captured = capsys.readouterr()
    assert len(json.loads(captured.out)) == 4
    assert "not in the model (99999); ranked as new users" in captured.err
    assert main(["recommend", "--model", str(saved_model), "--user", "u7"]) == 2
    assert "--user must be an integer id for this model; got 'u7'" in capsys.readouterr().err


def test_sep(tmp_path, capsys):
    path = write_ratings_file(tmp_path / "r.txt", 300, sep="~")
    assert main(["train", "--data", str(path), "--epochs", "1", "--json"]) == 2
    assert "has 1 column(s)" in capsys.readouterr().err
    assert main(["train", "--data", str(path), "--sep", "~", "--epochs", "1", "--json"]) == 0
    result = _json(capsys)
    assert result["n_train"] + result["n_test"] == 300
    argv = ["cv", "--data", str(path), "--sep", "~", "--folds", "3", "--epochs", "1", "--json"]
    assert main(argv) == 0
    assert sum(f["n_test"] for f in _json(capsys)["folds"]) == 300


@pytest.mark.parametrize("test_size, n_test", [("0.5", 200), ("0.25", 100), ("0.1", 40)])
def test_test_size(ratings_file, test_size, n_test, capsys):
    assert main(["train", "--data", str(ratings_file), "--test-size", test_size, "--epochs", "1", "--json"]) == 0
    result = _json(capsys)
    assert result["n_test"] == n_test and result["n_train"] == 400 - n_test


def test_test_size_out_of_range_is_one_line(ratings_file, capsys):
    assert main(["train", "--data", str(ratings_file), "--test-size", "1.5", "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "--test-size" in err and len(err.strip().splitlines()) == 1


def test_columns_by_position_and_by_name(tmp_path, capsys):
    path = tmp_path / "swapped.csv"
    rng = np.random.default_rng(0)
    items, users = rng.integers(1000, 1010, 300), rng.integers(1, 40, 300)
    path.write_text("".join(f"{i},{u},{r}\n" for i, u, r in zip(items, users, rng.integers(1, 6, 300))))
    model_path = tmp_path / "m.npz"
    argv = ["train", "--data", str(path), "--epochs", "1", "--quiet", "--save", str(model_path)]
    assert main([*argv, "--columns", "1,0,2"]) == 0
    assert set(npmf.load(model_path).item_ids_.tolist()) <= set(items.tolist())
    named = tmp_path / "named.csv"
    named.write_text("film,who,stars\n" + path.read_text())
    assert main([*argv[:2], str(named), *argv[3:], "--columns", "who,film,stars"]) == 0
    assert set(npmf.load(model_path).user_ids_.tolist()) <= set(users.tolist())


def test_a_header_named_item_user_rating_ts_is_not_swapped(tmp_path, capsys):
    path = tmp_path / "r.csv"
    path.write_text("item,user,rating,ts\n" + "".join(f"{900 + k % 7},{k % 11},{k % 5 + 1},0\n" for k in range(200)))
    model_path = tmp_path / "m.npz"
    assert main(["train", "--data", str(path), "--epochs", "1", "--quiet", "--save", str(model_path)]) == 0
    model = npmf.load(model_path)
    assert set(model.item_ids_.tolist()) <= set(range(900, 907)) and set(model.user_ids_.tolist()) <= set(range(11))


def test_encoding(tmp_path, capsys):
    path = tmp_path / "latin1.csv"
    path.write_text("".join(f"Jos\xe9{k % 9},film{k % 13},{k % 5 + 1}\n" for k in range(200)), encoding="latin-1")
    assert main(["train", "--data", str(path), "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "encoding='latin-1'" in err and len(err.strip().splitlines()) == 1
    assert main(["train", "--data", str(path), "--epochs", "1", "--encoding", "latin-1", "--json"]) == 0
    assert _json(capsys)["n_test"] == 40


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--columns", "user,item"], "argument --columns: must name 3 or 4 columns"),
        (["cv", "--columns", "a,,c"], "argument --columns: must name 3 or 4 columns"),
        (["train", "--seed", "-1"], "argument --seed: must be a whole number >= 0, e.g. --seed 0; got '-1'"),
        (["cv", "--seed", "abc"], "argument --seed: must be a whole number >= 0"),
        (["gradcheck", "--seed", "1.5"], "argument --seed: must be a whole number >= 0"),
    ],
)
def test_bad_flags_are_argparse_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--data", "ml-100k", "--columns", "1,0,2"], "--columns applies to a ratings file; ml-100k is"),
        (["cv", "--data", "ml-1m", "--sep", ","], "--sep applies to a ratings file; ml-1m is a MovieLens release"),
        (["train", "--data", "ml-25m", "--encoding", "latin-1"], "--encoding applies to a ratings file"),
        (["train", "--data", "ml-7"], "unknown dataset 'ml-7'; available: ml-100k, ml-1m"),
        (["cv", "--data", "ml-1m", "--splits", "u1"], "--splits names MovieLens' own splits (ml-100k)"),
    ],
)
def test_data_option_errors_are_one_line(argv, message, capsys, monkeypatch):
    monkeypatch.setattr("npmf.data.movielens._urlopen", lambda *a, **k: pytest.fail("no download"))
    assert main([*argv, "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_a_file_named_like_a_release_is_read_as_a_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_ratings_file(tmp_path / "ml-mine.csv", 200)
    assert main(["train", "--data", "ml-mine.csv", "--epochs", "1", "--json"]) == 0
    assert _json(capsys)["n_test"] == 40
