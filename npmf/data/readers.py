"""Reading a delimited ratings file of any layout into ``user_id, item_id, rating, timestamp``."""

from __future__ import annotations

import bz2
import codecs
import gzip
import lzma
import re
import stat
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.typing import PathType

__all__ = ["read_ratings", "COLUMNS", "HEADER_NAMES"]

COLUMNS = ["user_id", "item_id", "rating", "timestamp"]

# Header names that say which column is which, compared without case, "_", "-" or spaces.
HEADER_NAMES = {
    "user_id": ("user", "userid"),
    "item_id": ("item", "itemid", "movieid"),
    "rating": ("rating",),
    "timestamp": ("timestamp", "ts"),
}
_ROLE_OF = {alias: role for role, aliases in HEADER_NAMES.items() for alias in aliases}

# Magic bytes of the compressed files read as they are, and of archives that must be unpacked first.
_OPENERS = {b"\x1f\x8b": gzip.open, b"BZh": bz2.open, b"\xfd7zXZ\x00": lzma.open}
_COMPRESSION = {gzip.open: "gzip", bz2.open: "bz2", lzma.open: "xz", open: None}
_ARCHIVES = {b"PK\x03\x04": "a zip archive", b"7z\xbc\xaf": "a 7z archive"}
_SEPARATORS = ("::", "\t", ",", ";", "|")


def read_ratings(
    path: PathType,
    sep: str | None = None,
    columns: Sequence | None = None,
    header: str | int | None = "infer",
    encoding: str = "utf-8",
) -> pd.DataFrame:
    """Read a delimited ratings file into ``user_id, item_id, rating, timestamp``.

    Parameters
    ----------
    path : str or Path
        A text file, or one compressed with gzip, bzip2 or xz (recognised by
        its first bytes, whatever its suffix).
    sep : str, optional
        ``"\\t"``, ``","``, ``"::"`` (MovieLens 1M/10M) or any other separator;
        guessed from the first line when omitted.
    columns : sequence of 3 or 4 names or positions, optional
        The file's columns holding user, item, rating (and timestamp), e.g.
        ``["who", "movie", "score"]`` or ``[1, 0, 2]``. When omitted, a header
        that names the columns (``user``/``userId``/``user_id``,
        ``item``/``itemId``/``movieId``, ``rating``, ``timestamp``/``ts``; any
        case) is followed, so ``item,user,rating,ts`` is read the right way
        round; otherwise the first three or four columns are user, item,
        rating, timestamp.
    header : "infer", None or int, default "infer"
        "infer" treats the first line as a header when its third field is not
        a number.
    encoding : str, default "utf-8"
        The text encoding, e.g. ``"latin-1"`` or ``"utf-16"``.

    Returns
    -------
    DataFrame
        ``timestamp`` is absent when the file has no fourth column.

    Notes
    -----
    Blank lines and lines starting with ``#`` before the first rating are
    skipped. Errors name the file and, for a bad row, its line.
    """
    path = Path(path).expanduser()
    _check_path(path)
    _check_encoding(encoding)
    opener, lines = _peek(path, encoding)
    skip = next((j for j, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")), None)
    if skip is None:
        raise ValueError(f"ratings file {path} is empty; expected lines of user, item, rating[, timestamp]")
    first = lines[skip]
    if sep is None:
        sep = next((s for s in _SEPARATORS if s in first), r"\s+")
    elif not isinstance(sep, str) or not sep:
        raise ValueError(f"sep must be a non-empty string such as ',' or '\\t'; got {sep!r}")
    if header == "infer":
        fields = _split(first, sep)
        header = 0 if len(fields) >= 3 and not _is_number(fields[2]) else None
    elif header is not None and (isinstance(header, bool) or not isinstance(header, (int, np.integer)) or header < 0):
        raise ValueError(f"header must be 'infer', None or a line number >= 0; got {header!r}")
    # "::" with the fast C parser: split on ":" and drop the empty fields between.
    c_sep = ":" if sep == "::" else sep
    engine = "c" if len(c_sep) == 1 or c_sep == r"\s+" else "python"
    try:
        # pandas reads the path itself (decoding in C is several times faster than through a Python stream).
        df = pd.read_csv(path, sep=c_sep, header=header, skiprows=skip, engine=engine, skip_blank_lines=True,
                         encoding=encoding, compression=_COMPRESSION[opener])  # fmt: skip
    except UnicodeDecodeError as exc:
        raise ValueError(_decode_message(path, encoding, exc)) from None
    except pd.errors.ParserError as exc:
        raise ValueError(f"ratings file {path}: {_parser_message(exc)}") from None
    except (EOFError, OSError) as exc:
        if opener is open:
            raise
        raise ValueError(f"ratings file {path} could not be decompressed ({exc}); it may be truncated") from None
    except pd.errors.EmptyDataError:
        raise ValueError(f"ratings file {path} is empty; expected lines of user, item, rating[, timestamp]") from None
    if sep == "::":
        df = df.iloc[:, ::2]
    return _select(df, columns, path, opener, encoding, skip, header)


def _check_path(path):
    """Name what the path is when it is not a regular file (a folder, a device, missing)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"ratings file {path} does not exist") from None
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(f"ratings file {path} is a directory, not a file; name a ratings file inside it")
    if not stat.S_ISREG(mode):
        kind = "a character device" if stat.S_ISCHR(mode) else "a pipe" if stat.S_ISFIFO(mode) else "not a file"
        raise ValueError(f"ratings file {path} is {kind}, not a regular file of ratings")


def _check_encoding(encoding):
    try:
        codecs.lookup(encoding)
    except (LookupError, TypeError):
        raise ValueError(f"encoding must name a text encoding such as 'utf-8' or 'latin-1'; got {encoding!r}") from None


def _peek(path, encoding):
    """The opener for the file's compression, and its first lines (decoded), checking that it is text."""
    with open(path, "rb") as f:
        magic = f.read(8)
    for prefix, kind in _ARCHIVES.items():
        if magic.startswith(prefix):
            raise ValueError(f"ratings file {path} is {kind}; unpack it and read the ratings file inside")
    opener = next((op for prefix, op in _OPENERS.items() if magic.startswith(prefix)), open)
    try:
        with opener(path, "rb") as f:
            head = f.read(1 << 16)
    except (OSError, EOFError) as exc:
        raise ValueError(f"ratings file {path} could not be decompressed ({exc}); it may be truncated") from None
    utf16 = head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    if utf16 and "16" not in encoding and "32" not in encoding:
        raise ValueError(f"ratings file {path} is UTF-16 text (it starts with a byte-order mark); "
                         "pass encoding='utf-16'")  # fmt: skip
    if b"\x00" in head and not utf16 and "16" not in encoding and "32" not in encoding:
        raise ValueError(f"ratings file {path} holds binary data (NUL bytes), not delimited text; if it is text in"
                         " another encoding, pass encoding=, e.g. encoding='utf-16'")  # fmt: skip
    try:
        text = head.decode(encoding, errors="strict")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not merely a character cut at the end of the block
            raise ValueError(_decode_message(path, encoding, exc)) from None
        text = head[: exc.start].decode(encoding)
    text = text.lstrip("\ufeff")
    lines = text.splitlines()
    return opener, lines[:-1] if len(head) == 1 << 16 and len(lines) > 1 else lines


def _decode_message(path, encoding, exc):
    byte = exc.object[exc.start : exc.start + 1]
    return (f"ratings file {path} is not valid {encoding} text (byte {byte!r} at offset {exc.start} of a block); "
            "pass its encoding, e.g. encoding='latin-1' or encoding='utf-16'")  # fmt: skip


def _parser_message(exc):
    text = str(exc).strip()
    match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", text)
    if match:
        expected, line, saw = map(int, match.groups())
        return f"line {line} has {saw} fields where the lines before it have {expected}"  # pandas counts every line
    return text.splitlines()[-1]


def _split(line, sep):
    return line.split() if sep == r"\s+" else line.split(sep)


def _select(df, columns, path, opener, encoding, skip, header):
    if columns is None:
        if df.shape[1] < 3:
            raise ValueError(
                f"ratings file {path} has {df.shape[1]} column(s); expected at least 3 (user, item, rating)"
                + ("; pass sep= if its separator is not tab, ',', '::', ';', '|' or spaces" if df.shape[1] == 1 else "")
            )
        columns = _columns_from_header(df, path) if header is not None else list(range(min(df.shape[1], 4)))
    elif isinstance(columns, (str, bytes)) or not 3 <= len(columns) <= 4:
        raise ValueError(f"columns must name 3 or 4 columns (user, item, rating[, timestamp]); got {columns!r}")
    columns = list(columns)
    if len(set(map(str, columns))) < len(columns):
        raise ValueError(f"columns must name different columns; got {columns!r}")
    try:
        picked = [df.iloc[:, c] if isinstance(c, (int, np.integer)) else df[c] for c in columns]
    except (KeyError, IndexError, TypeError) as exc:
        raise ValueError(f"columns {columns!r} not found in {path}; its columns are {list(df.columns)}") from exc
    out = pd.DataFrame({name: col.to_numpy() for name, col in zip(COLUMNS, picked)})
    if len(out) == 0:
        raise ValueError(f"ratings file {path} has a header but no ratings")
    missing = out.isna().any(axis=1).to_numpy()
    if missing.any():
        j = int(np.flatnonzero(missing)[0])
        line = _line_of_row(path, opener, encoding, skip, header, j)
        raise ValueError(f"ratings file {path}: line {line} has an empty, missing or NaN field (user, item and rating "
                         f"are required on every line)")  # fmt: skip
    rating = pd.to_numeric(out["rating"], errors="coerce")
    bad = ~np.isfinite(rating.to_numpy(dtype=np.float64, na_value=np.nan))
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        line = _line_of_row(path, opener, encoding, skip, header, j)
        raise ValueError(f"ratings file {path}: the rating column must hold finite numbers; line {line} (row {j}) "
                         f"holds {out['rating'].iloc[j]!r}")  # fmt: skip
    out["rating"] = rating.astype(np.float64)
    return out


def _columns_from_header(df, path):
    """Columns chosen by the header's names, or the first three or four when it names none of the roles."""
    roles = {}
    for position, name in enumerate(df.columns):
        role = _ROLE_OF.get(re.sub(r"[\s_\-]", "", str(name)).lower())
        if role is not None and role not in roles:
            roles[role] = position
    if all(r in roles for r in COLUMNS[:3]):
        return [roles[r] for r in COLUMNS if r in roles]
    positional = dict(zip(COLUMNS, range(min(df.shape[1], 4))))
    clash = next((r for r, p in roles.items() if positional.get(r) != p), None)
    if clash is not None:
        raise ValueError(
            f"ratings file {path}: its header {list(df.columns)} names column {roles[clash]} as {clash} but does "
            f"not name all of user, item and rating; pass columns= (names or positions of user, item, rating)"
        )
    return list(positional.values())


def _line_of_row(path, opener, encoding, skip, header, row):
    """The 1-based line number of data row ``row`` (blank lines are skipped, as pandas skips them)."""
    seen = -1 - (header is not None)
    with opener(path, "rt", encoding=encoding, newline="") as f:
        for number, line in enumerate(f, start=1):
            if number <= skip or not line.strip():
                continue
            seen += 1
            if seen == row:
                return number
    return "?"


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


# ML-100k ships its own splits: u1-u5 are the five disjoint 80/20 folds of a
# 5-fold cross-validation; ua/ub hold out exactly 10 ratings per user.
