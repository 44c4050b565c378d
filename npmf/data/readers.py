"""Reading a delimited ratings file of any layout into ``user_id, item_id, rating, timestamp``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.typing import PathType

__all__ = ["read_ratings", "COLUMNS"]

COLUMNS = ["user_id", "item_id", "rating", "timestamp"]


def read_ratings(
    path: PathType, sep: str | None = None, columns: Sequence | None = None, header: str | int | None = "infer"
) -> pd.DataFrame:
    """Read a delimited ratings file into ``user_id, item_id, rating, timestamp``.

    Parameters
    ----------
    path : str or Path
    sep : str, optional
        ``"\\t"``, ``","``, ``"::"`` (MovieLens 1M/10M) or any other separator;
        guessed from the first line when omitted.
    columns : sequence of 3 or 4 names or positions, optional
        The file's columns holding user, item, rating (and timestamp), for
        files with other column orders or names (``["userId", "movieId",
        "rating"]``). Defaults to the first three or four columns.
    header : "infer", None or int, default "infer"
        "infer" treats the first line as a header when its third field is not
        a number.

    Returns
    -------
    DataFrame
        ``timestamp`` is absent when the file has no fourth column.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ratings file {path} does not exist")
    with open(path, encoding="utf-8", errors="replace") as f:
        first = f.readline().rstrip("\r\n")
    if not first.strip():
        raise ValueError(f"ratings file {path} is empty; expected lines of user, item, rating[, timestamp]")
    if sep is None:
        sep = next((s for s in ("::", "\t", ",", ";", "|") if s in first), r"\s+")
    if header == "infer":
        fields = first.split(sep) if sep != r"\s+" else first.split()
        header = 0 if len(fields) >= 3 and not _is_number(fields[2]) else None
    # "::" with the fast C parser: split on ":" and drop the empty fields between.
    c_sep = ":" if sep == "::" else sep
    df = pd.read_csv(path, sep=c_sep, header=header, engine="c" if len(c_sep) == 1 else "python")
    if sep == "::":
        df = df.iloc[:, ::2]
    return _select(df, columns, path)


def _select(df, columns, path):
    if columns is None:
        if df.shape[1] < 3:
            raise ValueError(
                f"ratings file {path} has {df.shape[1]} column(s); expected at least 3 (user, item, rating)"
            )
        columns = list(range(min(df.shape[1], 4)))
    if not 3 <= len(columns) <= 4:
        raise ValueError(f"columns must name 3 or 4 columns (user, item, rating[, timestamp]); got {columns!r}")
    try:
        picked = [df.iloc[:, c] if isinstance(c, (int, np.integer)) else df[c] for c in columns]
    except (KeyError, IndexError) as exc:
        raise ValueError(f"columns {columns!r} not found in {path}; its columns are {list(df.columns)}") from exc
    out = pd.DataFrame({name: col.to_numpy() for name, col in zip(COLUMNS, picked)})
    if len(out) == 0:
        raise ValueError(f"ratings file {path} has a header but no ratings")
    rating = pd.to_numeric(out["rating"], errors="coerce")
    if rating.isna().any():
        j = int(np.flatnonzero(rating.isna().to_numpy())[0])
        raise ValueError(
            f"ratings file {path}: the rating column must be numeric; row {j} holds {out['rating'].iloc[j]!r}"
        )
    out["rating"] = rating.astype(np.float64)
    return out


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


# ML-100k ships its own splits: u1-u5 are the five disjoint 80/20 folds of a
# 5-fold cross-validation; ua/ub hold out exactly 10 ratings per user.
