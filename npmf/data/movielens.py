"""MovieLens: download, checksum, cache and load.

MovieLens may not be redistributed, so npmf never ships it: it downloads the
official archive from GroupLens, checks its size and MD5 against the values
GroupLens publishes, and unpacks it into a cache folder. The folder is, in
order: the ``data_home`` argument, ``$NPMF_DATA_DIR``, ``~/.npmf/data``.

If you publish results obtained with MovieLens, cite it as its licence asks:
F. Maxwell Harper and Joseph A. Konstan. 2015. The MovieLens Datasets: History
and Context. ACM TiiS 5, 4, Article 19. https://doi.org/10.1145/2827872
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ..core.typing import PathType
from .readers import read_ratings

__all__ = ["MOVIELENS", "get_data_home", "load_movielens", "download_movielens", "load_movielens_folds"]

# Checksums as published by GroupLens beside the archive, and of the file we read.
MOVIELENS = {
    "ml-100k": {
        "url": "https://files.grouplens.org/datasets/movielens/ml-100k.zip",
        "md5": "0e33842e24a9c977be4e0107933c0723",
        "size": 4_924_029,
        "file": "u.data",
        "file_md5": "6e47046882bad158b0efbb84cd5cb987",
        "sep": "\t",
    },
}

# MovieLens' own train/test splits, by release.
FOLDS = {"ml-100k": ("u1", "u2", "u3", "u4", "u5")}

# Replaced in tests, which never touch the network.
_urlopen = urllib.request.urlopen


def get_data_home(data_home: PathType | None = None) -> Path:
    """The folder that holds (or will hold) downloaded datasets, as a Path."""
    if data_home is None:
        data_home = os.environ.get("NPMF_DATA_DIR") or Path.home() / ".npmf" / "data"
    return Path(data_home).expanduser()


def load_movielens(name: str = "ml-100k", data_home: PathType | None = None, download: bool = True) -> pd.DataFrame:
    """Load a MovieLens ratings file as a DataFrame of raw ids.

    Parameters
    ----------
    name : {"ml-100k"}
    data_home : str or Path, optional
        Folder holding ``<name>/``; defaults to ``$NPMF_DATA_DIR``, then
        ``~/.npmf/data``.
    download : bool, default True
        Download and verify the archive when the file is missing.

    Returns
    -------
    DataFrame with columns ``user_id, item_id, rating, timestamp``
    """
    spec = _spec(name)
    path = get_data_home(data_home) / name / spec["file"]
    if not path.exists():
        if not download:
            raise FileNotFoundError(
                f"{path} not found and download=False; pass download=True, or point data_home "
                f"or NPMF_DATA_DIR at a folder that contains {name}/{spec['file']}"
            )
        download_movielens(name, data_home)
    return read_ratings(path, sep=spec["sep"], header=None)


def download_movielens(name: str = "ml-100k", data_home: PathType | None = None) -> Path:
    """Download ``name`` from GroupLens, verify it, and unpack it atomically.

    Nothing is left behind when the download or a checksum fails. Returns the
    dataset's folder.
    """
    spec = _spec(name)
    home = get_data_home(data_home)
    home.mkdir(parents=True, exist_ok=True)
    target = home / name
    print(f"npmf: downloading {name} from {spec['url']}", file=sys.stderr)
    with tempfile.TemporaryDirectory(dir=home, prefix=f".{name}-") as tmp:
        archive = Path(tmp) / f"{name}.zip"
        try:
            with _urlopen(spec["url"]) as response, open(archive, "wb") as out:
                shutil.copyfileobj(response, out)
        except urllib.error.URLError as exc:
            raise OSError(
                f"could not download {name} from {spec['url']} ({exc.reason}); put {name}/{spec['file']} "
                f"under NPMF_DATA_DIR or data_home ({home}) yourself"
            ) from exc
        _verify(archive, spec["md5"], spec["size"], "archive " + spec["url"])
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(tmp)
        unpacked = Path(tmp) / name
        _verify(unpacked / spec["file"], spec["file_md5"], None, f"{name}/{spec['file']} in the archive")
        if target.exists():  # another process finished first
            return target
        os.replace(unpacked, target)
    print(f"npmf: {name} saved to {target}", file=sys.stderr)
    return target


def _spec(name):
    if name not in MOVIELENS:
        raise ValueError(f"unknown dataset {name!r}; available: {', '.join(MOVIELENS)}")
    return MOVIELENS[name]


def _verify(path, md5, size, what):
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        raise OSError(f"{what}: expected {size:,} bytes, got {actual_size:,}; the download is incomplete or altered")
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != md5:
        raise OSError(f"{what}: MD5 {digest.hexdigest()} does not match the published {md5}; nothing was saved")


def load_movielens_folds(
    name: str = "ml-100k",
    data_home: PathType | None = None,
    download: bool = True,
    splits: Sequence[str] | None = None,
) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    """Load the canonical train/test splits that ship with a MovieLens archive.

    Parameters
    ----------
    name : {"ml-100k"}
    data_home : str or Path, optional
        As in :func:`load_movielens`.
    download : bool, default True
        Download and verify the archive when a split file is missing.
    splits : sequence of str, optional
        Split names, default ``("u1", ..., "u5")``: the five folds of
        GroupLens' 5-fold cross-validation (80,000 / 20,000 ratings each,
        test sets disjoint). ``("ua", "ub")`` are the splits with exactly 10
        test ratings per user.

    Returns
    -------
    list of (train, test) DataFrame pairs
        Columns ``user_id, item_id, rating, timestamp``, read from
        ``<split>.base`` and ``<split>.test``.

    Examples
    --------
    >>> folds = load_movielens_folds("ml-100k")  # doctest: +SKIP
    >>> [len(test) for train, test in folds]  # doctest: +SKIP
    [20000, 20000, 20000, 20000, 20000]
    """
    spec = _spec(name)
    splits = FOLDS[name] if splits is None else tuple(splits)
    if not splits:
        raise ValueError("splits is empty; name at least one split, e.g. splits=('u1',)")
    folder = get_data_home(data_home) / name
    paths = [(folder / f"{s}.base", folder / f"{s}.test") for s in splits]
    missing = [p for pair in paths for p in pair if not p.exists()]
    if missing and download and not (folder / spec["file"]).exists():
        download_movielens(name, data_home)
        missing = [p for p in missing if not p.exists()]
    if missing:
        raise FileNotFoundError(
            f"{missing[0]} not found; the {name} archive from GroupLens contains it"
            + ("" if download else " (pass download=True to fetch it)")
        )
    return [tuple(read_ratings(p, sep=spec["sep"], header=None) for p in pair) for pair in paths]
