"""read_ratings: header names, columns=, encodings, compressed files, leading blank and comment lines."""

import bz2
import gzip
import lzma

import pytest

import npmf

ROWS = "1,10,5,100\n2,20,3,200\n"


def _check(df, users=(1, 2), items=(10, 20), ratings=(5.0, 3.0), timestamps=(100, 200)):
    assert df.user_id.tolist() == list(users) and df.item_id.tolist() == list(items)
    assert df.rating.tolist() == list(ratings)
    if timestamps is not None:
        assert df.timestamp.tolist() == list(timestamps)
    else:
        assert "timestamp" not in df


@pytest.mark.parametrize(
    "header, body",
    [
        ("item,user,rating,ts", "10,1,5,100\n20,2,3,200\n"),  # the file: not swapped
        ("ts,rating,movieId,userId", "100,5,10,1\n200,3,20,2\n"),
        ("MovieID,UserID,Rating,Timestamp", "10,1,5,100\n20,2,3,200\n"),
        ("item_id,user_id,rating,timestamp", "10,1,5,100\n20,2,3,200\n"),
        ("itemId,title,userId,rating,timestamp", "10,Heat,1,5,100\n20,Up,2,3,200\n"),
        ("User ID,Item-ID,RATING,TS", "1,10,5,100\n2,20,3,200\n"),
    ],
)
def test_header_names_say_which_column_is_which(tmp_path, header, body):
    path = tmp_path / "r.csv"
    path.write_text(header + "\n" + body)
    _check(npmf.read_ratings(path))


def test_a_header_without_a_timestamp_and_unknown_names_keeps_the_order(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("rating,item,user\n5,10,1\n3,20,2\n")
    _check(npmf.read_ratings(path), timestamps=None)
    path.write_text("who,what,score,when\n1,10,5,100\n2,20,3,200\n")  # names it does not know: today's order
    _check(npmf.read_ratings(path))


def test_no_header_keeps_todays_order(tmp_path):
    path = tmp_path / "r.tsv"
    path.write_text("10\t1\t5\t100\n20\t2\t3\t200\n")
    _check(npmf.read_ratings(path), users=(10, 20), items=(1, 2))


@pytest.mark.parametrize("columns", [[1, 0, 2, 3], ["item", "user", "rating", "ts"], [1, "user", 2]])
def test_columns_by_name_or_position(tmp_path, columns):
    path = tmp_path / "r.csv"
    path.write_text("user,item,rating,ts\n10,1,5,100\n20,2,3,200\n")
    df = npmf.read_ratings(path, columns=columns)
    _check(df, users=(1, 2), items=(10, 20), timestamps=(100, 200) if len(columns) == 4 else None)


def test_columns_by_position_without_a_header(tmp_path):
    path = tmp_path / "r.dat"
    path.write_text("100::5::10::1\n200::3::20::2\n")
    _check(npmf.read_ratings(path, columns=[3, 2, 1, 0]))


@pytest.mark.parametrize("encoding", ["latin-1", "utf-16", "cp1252", "utf-16-le"])
def test_other_encodings_with_encoding(tmp_path, encoding):
    path = tmp_path / "r.csv"
    path.write_text("user,item,rating\nJosé,Amélie,5\nZoë,Léon,3\n", encoding=encoding)
    df = npmf.read_ratings(path, encoding=encoding)
    assert df.user_id.tolist() == ["José", "Zoë"] and df.item_id.tolist() == ["Amélie", "Léon"]


def test_utf8_with_a_byte_order_mark(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("userId,movieId,rating,timestamp\n" + ROWS, encoding="utf-8-sig")
    _check(npmf.read_ratings(path))


@pytest.mark.parametrize(
    "suffix, compress",
    [(".csv.gz", gzip.compress), ("", gzip.compress), (".csv.bz2", bz2.compress), (".xz", lzma.compress)],
)
def test_compressed_files_are_read_whatever_their_suffix(tmp_path, suffix, compress):
    path = tmp_path / ("ratings" + suffix)
    path.write_bytes(compress(("user,item,rating,timestamp\n" + ROWS).encode()))
    _check(npmf.read_ratings(path))


def test_a_large_gzip_file(tmp_path):
    lines = "".join(f"{u}\t{u % 97}\t{u % 5 + 1}\t{u}\n" for u in range(100_000))
    path = tmp_path / "big.gz"
    path.write_bytes(gzip.compress(lines.encode()))
    df = npmf.read_ratings(path)
    assert len(df) == 100_000 and df.user_id.iloc[-1] == 99_999 and df.rating.iloc[-1] == 99_999 % 5 + 1


@pytest.mark.parametrize(
    "text",
    [
        "\n\n" + ROWS,
        "# ratings exported 2026-12-01\n# user,item,rating,ts\n" + ROWS,
        "\n# a comment after a blank line\n\nuser,item,rating,ts\n" + ROWS,
        ROWS.replace("\n", "\r\n"),
        "  \n" + ROWS + "\n\n",
    ],
)
def test_leading_blank_and_comment_lines_are_skipped(tmp_path, text):
    path = tmp_path / "r.csv"
    path.write_text(text)
    _check(npmf.read_ratings(path))


def test_a_tilde_path_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "r.csv").write_text(ROWS)
    _check(npmf.read_ratings("~/r.csv"))
