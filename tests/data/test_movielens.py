"""Reading ratings files, and the MovieLens download (never over the network)."""

import hashlib

import numpy as np
import pandas as pd
import pytest

import npmf
from npmf.data import movielens as datasets


def _write(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "text, sep",
    [
        ("1\t10\t5\t881250949\n2\t20\t3\t891717742\n", None),
        ("1,10,5,881250949\n2,20,3,891717742\n", None),
        ("1::10::5::881250949\n2::20::3::891717742\n", None),
        ("userId,movieId,rating,timestamp\n1,10,5.0,881250949\n2,20,3.0,891717742\n", None),
        ("1;10;5;881250949\n2;20;3;891717742\n", ";"),
    ],
)
def test_read_ratings_formats(tmp_path, text, sep):
    df = npmf.read_ratings(_write(tmp_path / "r.txt", text), sep=sep)
    assert list(df.columns) == ["user_id", "item_id", "rating", "timestamp"]
    assert df.user_id.tolist() == [1, 2] and df.item_id.tolist() == [10, 20]
    assert df.rating.tolist() == [5.0, 3.0] and df.timestamp.tolist() == [881250949, 891717742]


def test_read_ratings_string_ids_three_columns_and_named_columns(tmp_path):
    df = npmf.read_ratings(_write(tmp_path / "r.csv", "u1,i9,4.5\nu2,i8,1\n"))
    assert list(df.columns) == ["user_id", "item_id", "rating"]
    assert df.user_id.tolist() == ["u1", "u2"] and df.rating.tolist() == [4.5, 1.0]
    text = "movie,when,score,who\n7,100,4,a\n8,200,2,b\n"
    df = npmf.read_ratings(_write(tmp_path / "o.csv", text), columns=["who", "movie", "score", "when"])
    assert df.user_id.tolist() == ["a", "b"] and df.item_id.tolist() == [7, 8] and df.timestamp.tolist() == [100, 200]


def test_read_ratings_mlm1_format_at_scale(tmp_path):
    rng = np.random.default_rng(0)
    n = 20_000
    lines = pd.DataFrame(
        {
            "u": rng.integers(1, 6041, n),
            "i": rng.integers(1, 3953, n),
            "r": rng.integers(1, 6, n),
            "t": rng.integers(9e8, 1e9, n),
        }
    )
    path = tmp_path / "ratings.dat"
    path.write_text("\n".join("::".join(map(str, row)) for row in lines.itertuples(index=False)) + "\n")
    df = npmf.read_ratings(path)
    np.testing.assert_array_equal(df.user_id, lines.u)
    np.testing.assert_array_equal(df.rating, lines.r.astype(float))
    np.testing.assert_array_equal(df.timestamp, lines.t)


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "is empty"),
        ("1\t10\n2\t20\n", "has 2 column\\(s\\); expected at least 3"),
        ("1,10,5\n2,20,five\n", "rating column must hold finite numbers; line 2 \\(row 1\\) holds 'five'"),
        ("user,item,rating\n", "has a header but no ratings"),
    ],
)
def test_read_ratings_bad_files(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        npmf.read_ratings(_write(tmp_path / "bad.txt", text))


def test_read_ratings_missing_file_and_columns(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        npmf.read_ratings(tmp_path / "nope.csv")
    with pytest.raises(ValueError, match="columns \\['a', 'b', 'c'\\] not found"):
        npmf.read_ratings(_write(tmp_path / "r.csv", "x,y,z\n1,2,3\n"), columns=["a", "b", "c"])


# --- MovieLens on disk (downloads are tested against a local server in tests/reliability/test_data_download.py)


def test_no_download_when_disabled(tmp_path):
    with pytest.raises(FileNotFoundError, match="download=False"):
        npmf.load_movielens("ml-100k", data_home=tmp_path, download=False)
    with pytest.raises(ValueError, match="unknown dataset 'ml-5'"):
        npmf.load_movielens("ml-5", data_home=tmp_path)


def test_data_home_order(tmp_path, monkeypatch):
    monkeypatch.setenv("NPMF_DATA_DIR", str(tmp_path / "env"))
    assert datasets.get_data_home() == tmp_path / "env"
    assert datasets.get_data_home(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("NPMF_DATA_DIR")
    assert str(datasets.get_data_home()).endswith(".npmf/data")


def test_real_ml100k(ml100k_home):
    df = npmf.load_movielens("ml-100k", data_home=ml100k_home, download=False)
    assert len(df) == 100_000 and df.user_id.nunique() == 943 and df.item_id.nunique() == 1682
    assert df.rating.between(1, 5).all()
    digest = hashlib.md5((ml100k_home / "ml-100k" / "u.data").read_bytes()).hexdigest()
    assert digest == datasets.MOVIELENS["ml-100k"]["file_md5"]
