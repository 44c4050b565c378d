"""MovieLens: download, checksum, cache and load.

MovieLens may not be redistributed, so npmf never ships it: it downloads the
official archive from GroupLens, checks its size and MD5 against the values
GroupLens publishes, and unpacks it into a cache folder. The folder is, in
order: the ``data_home`` argument, ``$NPMF_DATA_DIR``, ``~/.npmf/data``.

Files already on disk are checked on every load (size, and an MD5 that reads
at most 16 MiB), so a truncated or altered file is reported, not loaded.

If you publish results obtained with MovieLens, cite it as its licence asks:
F. Maxwell Harper and Joseph A. Konstan. 2015. The MovieLens Datasets: History
and Context. ACM TiiS 5, 4, Article 19. https://doi.org/10.1145/2827872
"""

from __future__ import annotations

import hashlib
import http.client
import json
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

__all__ = ["MOVIELENS", "DEFAULT_TIMEOUT", "get_data_home", "load_movielens", "download_movielens",
           "load_movielens_folds"]  # fmt: skip

_BASE = "https://files.grouplens.org/datasets/movielens/"

# Each release: its archive (URL, size in bytes, MD5 as GroupLens publishes it in <archive>.md5), the folder the
# archive unpacks to, and its ratings file with the reader's settings. Sizes and MD5s were looked up in public
# records of the archives (wget logs and other projects' pinned checksums, at least two agreeing where found);
# they could not be fetched from files.grouplens.org here (no network). ml-100k's were verified against the archive.
# ml-latest-small is, in GroupLens' words, a development set that may change: its values are those of the
# 2018-09-26 release (100,836 ratings). ml-10m's size and MD5 each rest on one public record.
MOVIELENS = {
    "ml-100k": {"url": _BASE + "ml-100k.zip", "md5": "0e33842e24a9c977be4e0107933c0723", "size": 4_924_029,
                "folder": "ml-100k", "file": "u.data", "sep": "\t", "header": None,
                # u.data as unpacked from that archive (MD5 and size checked against it).
                "file_md5": "6e47046882bad158b0efbb84cd5cb987", "file_size": 1_979_173},
    "ml-1m": {"url": _BASE + "ml-1m.zip", "md5": "c4d9eecfca2ab87c1945afe126590906", "size": 5_917_549,
              "folder": "ml-1m", "file": "ratings.dat", "sep": "::", "header": None},
    "ml-10m": {"url": _BASE + "ml-10m.zip", "md5": "ce571fd55effeba0271552578f2648bd", "size": 65_566_137,
               "folder": "ml-10M100K", "file": "ratings.dat", "sep": "::", "header": None},
    "ml-25m": {"url": _BASE + "ml-25m.zip", "md5": "6b51fb2759a8657d3bfcbfc42b592ada", "size": 261_978_986,
               "folder": "ml-25m", "file": "ratings.csv", "sep": ",", "header": 0},
    "ml-latest-small": {"url": _BASE + "ml-latest-small.zip", "md5": "31a303aabbc519bd33d025e44d6c2570",
                        "size": 978_202, "folder": "ml-latest-small", "file": "ratings.csv", "sep": ",", "header": 0},
}  # fmt: skip

# MovieLens' own train/test splits, by release: the default ones, and every one the archive holds, with the size
# in bytes of each file as unpacked from the ml-100k archive above (measured on a copy whose u.data matches).
FOLDS = {"ml-100k": ("u1", "u2", "u3", "u4", "u5")}
SPLITS = {"ml-100k": ("u1", "u2", "u3", "u4", "u5", "ua", "ub")}
_SPLIT_SIZES = {
    "ml-100k": {"u1.base": 1_586_544, "u1.test": 392_629, "u2.base": 1_583_948, "u2.test": 395_225,
                "u3.base": 1_582_546, "u3.test": 396_627, "u4.base": 1_581_878, "u4.test": 397_295,
                "u5.base": 1_581_776, "u5.test": 397_397, "ua.base": 1_792_501, "ua.test": 186_672,
                "ub.base": 1_792_476, "ub.test": 186_697},
}  # fmt: skip

DEFAULT_TIMEOUT = 60.0
"""Seconds that one network operation (connecting, or one read) may wait before the download fails."""

MANIFEST = ".npmf-manifest.json"  # sizes and digests of the unpacked files, written at download
_FULL_MD5_LIMIT = 64 << 20  # bytes; larger files are fingerprinted from 16 blocks of 1 MiB
_NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError)

# Replaced in tests, which never touch the network beyond a server on 127.0.0.1.
_urlopen = urllib.request.urlopen


def get_data_home(data_home: PathType | None = None) -> Path:
    """The folder that holds (or will hold) downloaded datasets, as a Path."""
    if data_home is None:
        data_home = os.environ.get("NPMF_DATA_DIR") or Path.home() / ".npmf" / "data"
    return Path(data_home).expanduser()


def load_movielens(
    name: str = "ml-100k", data_home: PathType | None = None, download: bool = True, timeout: float = DEFAULT_TIMEOUT
) -> pd.DataFrame:
    """Load a MovieLens ratings file as a DataFrame of raw ids.

    Parameters
    ----------
    name : {"ml-100k", "ml-1m", "ml-10m", "ml-25m", "ml-latest-small"}
    data_home : str or Path, optional
        Folder holding ``<name>/``; defaults to ``$NPMF_DATA_DIR``, then
        ``~/.npmf/data``.
    download : bool, default True
        Download and verify the archive when the ratings file is missing.
    timeout : float, default 60
        Seconds one network operation may wait (see :func:`download_movielens`).

    Returns
    -------
    DataFrame with columns ``user_id, item_id, rating, timestamp``

    Raises
    ------
    OSError
        When the file on disk is truncated or altered (it names the file and
        says how to get a fresh copy), or the download fails.
    """
    spec = _spec(name)
    timeout = _check_timeout(timeout)
    folder = get_data_home(data_home) / name
    path = folder / spec["file"]
    if not path.is_file():
        if path.exists() or (folder.exists() and not folder.is_dir()):
            raise OSError(f"{path} is not a regular file; remove {folder} to let npmf download {name} again")
        if not download:
            raise FileNotFoundError(
                f"{path} not found and download=False; pass download=True, or point data_home "
                f"or NPMF_DATA_DIR at a folder that contains {name}/{spec['file']}"
            )
        download_movielens(name, data_home, timeout=timeout)
    _check_file(path, name)
    return read_ratings(path, sep=spec["sep"], header=spec["header"])


def download_movielens(
    name: str = "ml-100k", data_home: PathType | None = None, timeout: float = DEFAULT_TIMEOUT
) -> Path:
    """Download ``name`` from GroupLens, verify it, and unpack it atomically.

    Each network operation waits at most ``timeout`` seconds, and every network
    failure raises one ``OSError`` that names the dataset, the URL and what to
    do offline. Nothing is left behind when the download fails, a checksum
    does not match or the call is interrupted; temporary folders of earlier
    downloads that were killed are removed. A folder that exists but lacks
    files (say ``ml-100k/`` without ``u.data``) gets the missing files; files
    already there are kept. Returns the dataset's folder.
    """
    spec = _spec(name)
    timeout = _check_timeout(timeout)
    home = get_data_home(data_home)
    if home.exists() and not home.is_dir():
        raise OSError(f"data_home {home} is not a folder; name the folder that holds (or will hold) {name}/")
    home.mkdir(parents=True, exist_ok=True)
    target = home / name
    if target.exists() and not target.is_dir():
        raise OSError(f"{target} exists and is not a folder; remove it to let npmf download {name}")
    _remove_stale_downloads(home, name)
    print(f"npmf: downloading {name} from {spec['url']}", file=sys.stderr)
    tmp = Path(tempfile.mkdtemp(dir=home, prefix=f".{name}-download-{os.getpid()}-"))
    try:
        archive = tmp / f"{name}.zip"
        _fetch(name, spec, archive, home, timeout)
        _verify(archive, spec["md5"], spec["size"], "archive " + spec["url"], full=True)
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(tmp / "unpacked")
        unpacked = tmp / "unpacked" / spec["folder"]
        if "file_md5" in spec:
            _verify(unpacked / spec["file"], spec["file_md5"], spec.get("file_size"), f"{name}/{spec['file']}")
        _write_manifest(unpacked)
        _install(unpacked, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"npmf: {name} saved to {target}", file=sys.stderr)
    return target


def _fetch(name, spec, archive, home, timeout):
    url = spec["url"]
    try:
        with _urlopen(url, timeout=timeout) as response, open(archive, "wb") as out:
            shutil.copyfileobj(response, out, 1 << 20)
            length = response.headers.get("Content-Length") if hasattr(response, "headers") else None
            if length is not None and length.isdigit() and out.tell() < int(length):
                # http.client ends a short body quietly where the connection closed early.
                raise http.client.IncompleteRead(b"", int(length) - out.tell()) from None
    except _NETWORK_ERRORS as exc:
        raise OSError(
            f"could not download {name} from {url} ({_reason(exc, timeout)}); check the connection and try again"
            f" (a slow link may need a timeout above {timeout:g} s), or, offline, unpack {url.rsplit('/', 1)[-1]}"
            f" yourself and put its files in {home / name}/ (data_home= or NPMF_DATA_DIR chooses {home})"
        ) from exc


def _reason(exc, timeout):
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        exc = exc.reason if isinstance(exc.reason, BaseException) else exc
        if not isinstance(exc, TimeoutError):
            return str(getattr(exc, "reason", exc))
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, http.client.IncompleteRead):
        return "the connection closed before the whole archive arrived" + (
            f" ({exc.expected:,} bytes missing)" if exc.expected is not None else ""
        )
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _check_timeout(timeout):
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < float("inf"):
        raise ValueError(f"timeout must be a number of seconds in (0, inf); got {timeout!r}")
    return float(timeout)


def _install(unpacked, target):
    """Move the verified files into ``target``: the whole folder if it is new, else only the files it lacks."""
    try:
        os.rename(unpacked, target)  # fails if target exists, even empty or being filled by another process
        return
    except OSError:
        if not target.is_dir():
            raise
    for entry in sorted(unpacked.iterdir()):
        if not os.path.lexists(target / entry.name):
            os.replace(entry, target / entry.name)


def _remove_stale_downloads(home, name):
    """Remove the temporary folders of downloads whose process no longer runs (killed mid-download)."""
    prefix = f".{name}-download-"
    for entry in home.glob(prefix + "*"):
        pid = entry.name[len(prefix) :].split("-", 1)[0]
        if entry.is_dir() and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)


def _alive(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but not ours, or a platform without signal 0
        return True
    return True


def _spec(name):
    if name not in MOVIELENS:
        raise ValueError(f"unknown dataset {name!r}; available: {', '.join(MOVIELENS)}")
    return MOVIELENS[name]


def _digest(path, full=False):
    """MD5 of the file, or, past 64 MiB (unless ``full``), of 16 evenly spaced blocks of 1 MiB: a cheap fingerprint."""
    size = path.stat().st_size
    digest = hashlib.md5()
    with open(path, "rb") as f:
        if full or size <= _FULL_MD5_LIMIT:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        else:
            for j in range(16):
                f.seek(j * (size - (1 << 20)) // 15)
                digest.update(f.read(1 << 20))
    return digest.hexdigest()


def _verify(path, md5, size, what, full=False):
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        raise OSError(f"{what}: expected {size:,} bytes, got {actual_size:,}; the download is incomplete or altered")
    actual = _digest(path, full)
    if md5 is not None and actual != md5:
        raise OSError(f"{what}: MD5 {actual} does not match the published {md5}; nothing was saved")


def _write_manifest(folder):
    files = {p.name: {"size": p.stat().st_size, "md5": _digest(p)} for p in sorted(folder.iterdir()) if p.is_file()}
    (folder / MANIFEST).write_text(json.dumps({"files": files}, indent=1) + "\n")


def _expected(folder, name, filename):
    """(size, md5 or None) that ``filename`` of dataset ``name`` must have, or None when nothing is on record."""
    spec = MOVIELENS[name]
    if filename == spec["file"] and "file_size" in spec:
        return spec["file_size"], spec.get("file_md5")
    if filename in _SPLIT_SIZES.get(name, {}):
        return _SPLIT_SIZES[name][filename], None
    try:
        entry = json.loads((folder / MANIFEST).read_text())["files"][filename]
        return int(entry["size"]), str(entry["md5"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _check_file(path, name):
    """Raise if ``path`` differs in size or digest from the file that the archive holds."""
    expected = _expected(path.parent, name, path.name)
    if expected is None:
        return
    size, md5 = expected
    hint = f"delete {path.parent} and load {name} again to download a fresh copy"
    actual_size = path.stat().st_size
    if actual_size != size:
        raise OSError(f"{path} has {actual_size:,} bytes, but {name}'s {path.name} has {size:,}: it is truncated "
                      f"or altered; {hint}")  # fmt: skip
    if md5 is not None and _digest(path) != md5:
        raise OSError(f"{path} does not match the MD5 of {name}'s {path.name} ({md5}): it is altered; {hint}")


def load_movielens_folds(
    name: str = "ml-100k",
    data_home: PathType | None = None,
    download: bool = True,
    splits: Sequence[str] | str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    """Load the canonical train/test splits that ship with a MovieLens archive.

    Parameters
    ----------
    name : {"ml-100k"}
        The one release that ships splits.
    data_home : str or Path, optional
        As in :func:`load_movielens`.
    download : bool, default True
        Download and verify the archive when a split file is missing.
    splits : str or sequence of str, optional
        Split names, default ``("u1", ..., "u5")``: the five folds of
        GroupLens' 5-fold cross-validation (80,000 / 20,000 ratings each,
        test sets disjoint). ``("ua", "ub")`` are the splits with exactly 10
        test ratings per user. One name (``"u1"``) is one split.
    timeout : float, default 60
        As in :func:`download_movielens`.

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
    if name not in FOLDS:
        raise ValueError(f"{name} ships no train/test splits; splits exist for {', '.join(FOLDS)} only")
    splits = FOLDS[name] if splits is None else (splits,) if isinstance(splits, str) else tuple(splits)
    if not splits:
        raise ValueError("splits is empty; name at least one split, e.g. splits=('u1',)")
    unknown = [s for s in splits if s not in SPLITS[name]]
    if unknown:
        raise ValueError(f"splits: {unknown[0]!r} is not a split of {name}; its splits are {', '.join(SPLITS[name])}")
    timeout = _check_timeout(timeout)
    folder = get_data_home(data_home) / name
    paths = [(folder / f"{s}.base", folder / f"{s}.test") for s in splits]
    missing = [p for pair in paths for p in pair if not p.is_file()]
    if missing and download:
        download_movielens(name, data_home, timeout=timeout)  # fills in what the folder lacks
        missing = [p for p in missing if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"{missing[0]} not found; the {name} archive from GroupLens contains it"
            + ("" if download else " (pass download=True to fetch it)")
        )
    for pair in paths:
        for p in pair:
            _check_file(p, name)
    return [tuple(read_ratings(p, sep=spec["sep"], header=None) for p in pair) for pair in paths]
