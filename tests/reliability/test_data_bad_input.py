"""Bad input to the data functions: one clear error that names the file or the argument, and nothing changed on disk.

Every case builds its files under ``tmp_path``, calls one function, and asserts the exception type, that the message
names the file (or the argument) and says what is wrong, and that every file under ``tmp_path`` is as it was.
"""

import gzip
import os
import re
import zipfile

import numpy as np
import pytest

import npmf
from npmf.data import movielens as datasets

ROWS = "1,10,5\n2,20,3\n"


def listing(folder):
    """Every path under ``folder`` with its bytes and mtime: what a failed call must leave as it was."""
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None, p.lstat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if not p.is_fifo()
    }


def _write(path, data):
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    return path


# Each case: (file name, contents or a callable(path) that makes it, read_ratings kwargs, exception, message regex).
# "{path}" in the regex stands for the file's path.
READ_CASES = {
    "missing": ("nope.csv", None, {}, FileNotFoundError, "ratings file {path} does not exist"),
    "directory": ("adir", lambda p: p.mkdir(), {}, IsADirectoryError, "{path} is a directory, not a file"),
    "fifo": ("pipe", lambda p: os.mkfifo(p), {}, ValueError, "{path} is a pipe, not a regular file"),
    "empty": ("e.csv", "", {}, ValueError, "{path} is empty"),
    "blank lines only": ("b.csv", "\n \n\t\n", {}, ValueError, "{path} is empty"),
    "comments only": ("c.csv", "# nothing\n# here\n", {}, ValueError, "{path} is empty"),
    "binary": ("x.bin", bytes(range(256)) * 4, {}, ValueError, "{path} holds binary data .* pass encoding="),
    "utf-16 with a BOM": ("u16.csv", "user,item,rating\n1,2,3\n".encode("utf-16"), {}, ValueError,
                          "{path} is UTF-16 text .* pass encoding='utf-16'"),
    "utf-16 without a BOM": ("u16le.csv", "1,2,3\n4,5,1\n".encode("utf-16-le"), {}, ValueError,
                             "{path} holds binary data .* encoding='utf-16'"),
    "latin-1 in the first block": ("l1.csv", "user,item,rating\nJos\xe9,Am\xe9lie,5\n".encode("latin-1"), {},
                                   ValueError, "{path} is not valid utf-8 text .* encoding='latin-1'"),
    "latin-1 past the first block": ("l1late.csv", ("1,2,3\n" * 20_000 + "Jos\xe9,2,3\n").encode("latin-1"), {},
                                     ValueError, "{path} is not valid utf-8 text .* encoding='latin-1'"),
    "a zip archive": ("r.zip", lambda p: zipfile.ZipFile(p, "w").writestr("r.csv", ROWS), {}, ValueError,
                      "{path} is a zip archive; unpack it"),
    "a 7z archive": ("r.7z", b"7z\xbc\xaf\x27\x1c\x00\x04" + b"\x00" * 30, {}, ValueError, "{path} is a 7z archive"),
    "a truncated gzip": ("t.gz", gzip.compress(ROWS.encode() * 50)[:40], {}, ValueError,
                         "{path} could not be decompressed .* truncated"),
    "a gzip corrupt past the first block": (
        "late.gz", lambda p: p.write_bytes(_corrupt_tail(gzip.compress(_many_rows().encode()))), {}, ValueError,
        "{path} could not be decompressed"),
    "too many fields": ("wide.csv", "1,10,5\n2,20,3\n3,30,4,999\n", {}, ValueError,
                        "{path}: line 3 has 4 fields where the lines before it have 3"),
    "too many fields after blank lines": ("wide2.csv", "\n\n1,10,5\n2,20,3,7\n", {}, ValueError,
                                          "{path}: line 4 has 4 fields"),
    "too many fields after a blank line inside": ("wide3.csv", "1,10,5\n\n2,20,3\n3,30,4,7\n", {}, ValueError,
                                                  "{path}: line 4 has 4 fields"),
    "too few fields": ("narrow.csv", "1,10,5\n2,20,3\n3,30\n", {}, ValueError,
                       "{path}: line 3 has an empty, missing or NaN field"),
    "an empty field": ("hole.tsv", "1\t10\t5\n2\t\t3\n", {}, ValueError, "{path}: line 2 has an empty, missing or NaN"),
    "a comment line among the ratings": ("mid.csv", "1,10,5\n# note\n2,20,3\n", {}, ValueError,
                                         "{path}: line 2 has an empty, missing or NaN field"),
    "a word as rating": ("w.csv", "1,10,5\n2,20,five\n", {}, ValueError, "{path}: .* line 2 \\(row 1\\) holds 'five'"),
    "inf as rating": ("inf.csv", "1,10,5\n2,20,inf\n", {}, ValueError, "{path}: the rating column must hold finite"),
    "-inf as rating": ("ninf.csv", "u,i,rating\n1,10,-inf\n", {}, ValueError, "{path}: .* line 2 \\(row 0\\)"),
    "nan as rating": ("nan.csv", "1,10,5\n2,20,nan\n", {}, ValueError, "{path}: line 2 has an empty, missing or NaN"),
    "a header and no ratings": ("h.csv", "user,item,rating\n", {}, ValueError, "{path} has a header but no ratings"),
    "one column": ("one.txt", "1~10~5\n2~20~3\n", {}, ValueError, "{path} has 1 column\\(s\\).* pass sep="),
    "two columns": ("two.txt", "1\t10\n2\t20\n", {}, ValueError, "{path} has 2 column\\(s\\); expected at least 3"),
    "the wrong sep": ("s.csv", ROWS, {"sep": ";"}, ValueError, "{path} has 1 column\\(s\\)"),
    "a clashing header": ("clash.csv", "item,who,rating\n1,2,3\n", {}, ValueError,
                          "{path}: its header .* names column 0 as item_id .* pass columns="),
    "columns: unknown names": ("n.csv", "x,y,z\n1,2,3\n", {"columns": ["a", "b", "c"]}, ValueError,
                               "columns \\['a', 'b', 'c'\\] not found in {path}"),
    "columns: a position past the end": ("p.csv", ROWS, {"columns": [0, 1, 7]}, ValueError,
                                         "columns \\[0, 1, 7\\] not found in {path}"),
    "columns: names on a headerless file": ("hl.csv", ROWS, {"columns": ["user", "item", "rating"]}, ValueError,
                                            "not found in {path}; its columns are \\[0, 1, 2\\]"),
    "columns: two": ("c2.csv", ROWS, {"columns": [0, 1]}, ValueError, "columns must name 3 or 4 columns"),
    "columns: five": ("c5.csv", ROWS, {"columns": [0, 1, 2, 3, 4]}, ValueError, "columns must name 3 or 4"),
    "columns: one string": ("cs.csv", ROWS, {"columns": "user,item,rating"}, ValueError, "columns must name 3 or 4"),
    "columns: repeated": ("cr.csv", ROWS, {"columns": [0, 0, 2]}, ValueError, "columns must name different columns"),
    "sep: empty": ("se.csv", ROWS, {"sep": ""}, ValueError, "sep must be a non-empty string"),
    "sep: a number": ("sn.csv", ROWS, {"sep": 5}, ValueError, "sep must be a non-empty string .*; got 5"),
    "encoding: unknown": ("en.csv", ROWS, {"encoding": "klingon"}, ValueError, "encoding must name .* 'klingon'"),
    "encoding: a number": ("en2.csv", ROWS, {"encoding": 8}, ValueError, "encoding must name a text encoding"),
    "header: negative": ("hn.csv", ROWS, {"header": -1}, ValueError, "header must be 'infer', None or a line"),
    "header: a word": ("hw.csv", ROWS, {"header": "yes"}, ValueError, "header must be 'infer', None or a line"),
}  # fmt: skip


def _many_rows():
    return "".join(f"{u},{u % 50},{u % 5 + 1}\n" for u in range(60_000))


def _corrupt_tail(blob):
    data = bytearray(blob)
    for j in range(len(data) - 200, len(data) - 8):
        data[j] ^= 0x5A
    return bytes(data)


@pytest.mark.parametrize("case", list(READ_CASES))
def test_read_ratings_bad_input(case, tmp_path):
    name, contents, kwargs, exc_type, message = READ_CASES[case]
    path = tmp_path / name
    if callable(contents):
        contents(path)
    elif contents is not None:
        _write(path, contents)
    before = listing(tmp_path)
    with pytest.raises(exc_type) as info:
        npmf.read_ratings(path, **kwargs)
    text = str(info.value)
    assert re.search(message.replace("{path}", re.escape(str(path))), text), text
    if "columns" not in kwargs and "sep" not in kwargs and "encoding" not in kwargs and "header" not in kwargs:
        assert str(path) in text  # the file is named
    assert listing(tmp_path) == before


def test_dev_null_is_a_device_not_missing():
    with pytest.raises(ValueError, match="ratings file /dev/null is a character device, not a regular file"):
        npmf.read_ratings("/dev/null")


# --- MovieLens: arguments and files on disk ------------------------------------------------------------


def _no_network(*args, **kwargs):
    raise AssertionError("a bad argument must fail before any download")


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setattr(datasets, "_urlopen", _no_network)


MOVIELENS_CASES = {
    "unknown dataset": (lambda h: npmf.load_movielens("ml-5", data_home=h), ValueError,
                        "unknown dataset 'ml-5'; available: ml-100k, ml-1m, ml-10m, ml-25m, ml-latest-small"),
    "unknown dataset to download": (lambda h: datasets.download_movielens("ml-20m", data_home=h), ValueError,
                                    "unknown dataset 'ml-20m'"),
    "timeout 0": (lambda h: npmf.load_movielens("ml-1m", data_home=h, timeout=0), ValueError,
                  "timeout must be a number of seconds in \\(0, inf\\); got 0"),
    "timeout negative": (lambda h: datasets.download_movielens("ml-1m", data_home=h, timeout=-1), ValueError,
                         "timeout must be .* got -1"),
    "timeout a string": (lambda h: npmf.load_movielens("ml-1m", data_home=h, timeout="5"), ValueError,
                         "timeout must be .* got '5'"),
    "timeout inf": (lambda h: npmf.load_movielens("ml-1m", data_home=h, timeout=float("inf")), ValueError,
                    "timeout must be .* got inf"),
    "timeout True": (lambda h: npmf.load_movielens("ml-1m", data_home=h, timeout=True), ValueError,
                     "timeout must be .* got True"),
    "folds timeout nan": (lambda h: npmf.load_movielens_folds(data_home=h, timeout=float("nan")), ValueError,
                          "timeout must be .* got nan"),
    "download=False": (lambda h: npmf.load_movielens("ml-1m", data_home=h, download=False), FileNotFoundError,
                       "{home}/ml-1m/ratings.dat not found and download=False"),
    "folds: empty splits": (lambda h: npmf.load_movielens_folds(data_home=h, splits=[]), ValueError,
                            "splits is empty"),
    "folds: an unknown split": (lambda h: npmf.load_movielens_folds(data_home=h, splits=["u1", "u9"]), ValueError,
                                "splits: 'u9' is not a split of ml-100k; its splits are u1, u2, u3, u4, u5, ua, ub"),
    "folds: a string of an unknown split": (lambda h: npmf.load_movielens_folds(data_home=h, splits="u12"),
                                            ValueError, "splits: 'u12' is not a split"),
    "folds: a release without splits": (lambda h: npmf.load_movielens_folds("ml-1m", data_home=h), ValueError,
                                        "ml-1m ships no train/test splits; splits exist for ml-100k only"),
    "folds: download=False": (lambda h: npmf.load_movielens_folds(data_home=h, download=False), FileNotFoundError,
                              "{home}/ml-100k/u1.base not found.*pass download=True"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(MOVIELENS_CASES))
def test_movielens_bad_arguments(case, tmp_path):
    call, exc_type, message = MOVIELENS_CASES[case]
    (tmp_path / "keep.txt").write_text("a file of the user's")
    before = listing(tmp_path)
    with pytest.raises(exc_type) as info:
        call(tmp_path)
    assert re.search(message.replace("{home}", re.escape(str(tmp_path))), str(info.value)), str(info.value)
    assert listing(tmp_path) == before


def _layout(kind, home):
    """Bad things on disk where a dataset should be; returns the path the message must name."""
    if kind == "data_home is a file":
        home.write_text("not a folder")
        return home
    folder = home / "ml-100k"
    if kind == "the dataset folder is a file":
        folder.write_text("x")
        return folder
    folder.mkdir(parents=True)
    if kind == "u.data is a folder":
        (folder / "u.data").mkdir()
        return folder / "u.data"
    if kind == "u.data truncated":
        (folder / "u.data").write_text("196\t242\t3\t881250949\n")
        return folder / "u.data"
    if kind == "u.data altered, same size":
        rng = np.random.default_rng(0)
        lines = "".join(f"{u}\t{i}\t{r}\t881250949\n" for u, i, r in rng.integers(1, 6, (200_000, 3)))
        (folder / "u.data").write_text(lines[: datasets.MOVIELENS["ml-100k"]["file_size"]])
        return folder / "u.data"
    if kind == "a split truncated":
        for s in ("base", "test"):
            (folder / f"u1.{s}").write_text("1\t2\t3\t4\n")
        return folder / "u1.base"
    raise AssertionError(kind)


LAYOUT_CASES = {
    "data_home is a file": (lambda h: npmf.load_movielens(data_home=h), OSError, "data_home {path} is not a folder"),
    "the dataset folder is a file": (lambda h: npmf.load_movielens(data_home=h), OSError,
                                     "is not a regular file; remove {path}"),
    "u.data is a folder": (lambda h: npmf.load_movielens(data_home=h), OSError, "{path} is not a regular file"),
    "u.data truncated": (lambda h: npmf.load_movielens(data_home=h), OSError,
                         "{path} has 20 bytes, but ml-100k's u.data has 1,979,173: it is truncated or altered; delete"),
    "u.data altered, same size": (lambda h: npmf.load_movielens(data_home=h), OSError,
                                  "{path} does not match the MD5 of ml-100k's u.data .* delete"),
    "a split truncated": (lambda h: npmf.load_movielens_folds(data_home=h, splits="u1"), OSError,
                          "{path} has 8 bytes, but ml-100k's u1.base has 1,586,544"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(LAYOUT_CASES))
def test_movielens_bad_files_on_disk(case, tmp_path):
    call, exc_type, message = LAYOUT_CASES[case]
    home = tmp_path / "home"
    if case != "data_home is a file":
        home.mkdir()
    path = _layout(case, home)
    before = listing(tmp_path)
    with pytest.raises(exc_type) as info:
        call(home)
    assert re.search(message.replace("{path}", re.escape(str(path))), str(info.value)), str(info.value)
    assert listing(tmp_path) == before


def test_download_into_a_file_where_the_folder_goes(tmp_path):
    (tmp_path / "ml-1m").write_text("x")
    before = listing(tmp_path)
    with pytest.raises(OSError, match=f"{tmp_path / 'ml-1m'} exists and is not a folder"):
        datasets.download_movielens("ml-1m", data_home=tmp_path)
    assert listing(tmp_path) == before
