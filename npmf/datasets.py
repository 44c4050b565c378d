"""Ratings data: MovieLens download and cache, a reader for any delimited file.

MovieLens may not be redistributed, so npmf never ships it: it downloads the
official archive from GroupLens, checks its size and MD5 against the values
GroupLens publishes, and unpacks it into a cache folder. The folder is, in
order: the ``data_home`` argument, ``$NPMF_DATA_DIR``, ``~/.npmf/data``.

If you publish results obtained with MovieLens, cite it as its licence asks:
F. Maxwell Harper and Joseph A. Konstan. 2015. The MovieLens Datasets: History
and Context. ACM TiiS 5, 4, Article 19. https://doi.org/10.1145/2827872
"""

import hashlib
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from . import _synthetic

__all__ = ["get_data_home", "load_movielens", "load_movielens_folds", "make_ratings", "read_ratings", "COLUMNS"]

COLUMNS = ["user_id", "item_id", "rating", "timestamp"]

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

# Replaced in tests, which never touch the network.
_urlopen = urllib.request.urlopen


def get_data_home(data_home=None):
    """The folder that holds (or will hold) downloaded datasets, as a Path."""
    if data_home is None:
        data_home = os.environ.get("NPMF_DATA_DIR") or Path.home() / ".npmf" / "data"
    return Path(data_home).expanduser()


def load_movielens(name="ml-100k", data_home=None, download=True):
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


def download_movielens(name="ml-100k", data_home=None):
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


def read_ratings(path, sep=None, columns=None, header="infer"):
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
FOLDS = {"ml-100k": ("u1", "u2", "u3", "u4", "u5")}


def load_movielens_folds(name="ml-100k", data_home=None, download=True, splits=None):
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


def make_ratings(n_users, n_items, n_ratings, n_factors=10, noise=0.5, random_state=None):
    r"""Synthetic ratings from a planted low-rank model with biases, MovieLens-like.

    Each rating is

    .. math::

        r_{ui} = \operatorname{clip}\big(\operatorname{round}(\mu + b_u + b_i + w_u \cdot h_i
                 + \varepsilon_{ui}),\ 1,\ 5\big),
        \qquad \varepsilon_{ui} \sim \mathcal N(0, \sigma^2),

    with :math:`\mu = 3.5`, :math:`b_u \sim \mathcal N(0, 0.3^2)`,
    :math:`b_i \sim \mathcal N(0, 0.5^2)` and factors with i.i.d. normal entries
    scaled so that :math:`w_u \cdot h_i` has standard deviation 0.8. Users and
    items are drawn from skewed popularity laws, :math:`P(\text{rank } j) \propto
    (j + 10)^{-a}` with :math:`a = 1.1` for items and 0.9 for users, the ranks
    shuffled over the ids. Each (user, item) pair occurs at most once.

    Parameters
    ----------
    n_users, n_items, n_ratings : int
        ``n_ratings`` must not exceed ``n_users * n_items / 2``.
    n_factors : int, default 10
        Rank of the planted model.
    noise : float, default 0.5
        :math:`\sigma`.
    random_state : int, numpy.random.Generator or None

    Returns
    -------
    DataFrame
        ``user_id`` and ``item_id`` (int32 codes in ``[0, n_users)`` and
        ``[0, n_items)``) and ``rating`` (float64, whole numbers 1 to 5), sorted
        by user then item, as MovieLens files are. ``attrs["noise_mse"]`` is the
        mean squared difference between the ratings and the planted model's
        noiseless scores: the loss a perfect fit would reach, noise and rounding
        included.

    Examples
    --------
    >>> df = make_ratings(1000, 500, 20_000, random_state=0)
    >>> len(df), df.rating.between(1, 5).all()
    (20000, True)
    """
    from ._validation import check_float, check_int

    n_users, n_items = check_int("n_users", n_users), check_int("n_items", n_items)
    n_ratings, k = check_int("n_ratings", n_ratings), check_int("n_factors", n_factors)
    noise = check_float("noise", noise, low=0, low_open=False)
    if n_ratings > n_users * n_items // 2:
        raise ValueError(
            f"n_ratings={n_ratings} is more than half of n_users * n_items = {n_users * n_items}; "
            "ask for fewer ratings or more users or items"
        )
    rng = np.random.default_rng(random_state)
    u, i, kept = np.empty(0, np.int32), np.empty(0, np.int32), 1.0
    while len(u) < n_ratings:  # draw, drop repeated pairs, top up
        want = int((n_ratings - len(u)) / kept * 1.1) + 16
        new_u = _zipf_codes(rng, n_users, 0.9, want)
        new_i = _zipf_codes(rng, n_items, 1.1, want)
        new_u, new_i = _synthetic.merge_unique(u, i, *_synthetic.unique_pairs(new_u, new_i, n_users, n_items))
        kept, u, i = max((len(new_u) - len(u)) / want, 0.05), new_u, new_i
    if len(u) > n_ratings:
        keep = np.ones(len(u), bool)
        keep[rng.choice(len(u), len(u) - n_ratings, replace=False)] = False
        u, i = u[keep], i[keep]
    scale = (0.64 / k) ** 0.25
    W = rng.normal(0, scale, (n_users, k)).astype(np.float32)
    H = rng.normal(0, scale, (n_items, k)).astype(np.float32)
    bu, bi = rng.normal(0, 0.3, n_users), rng.normal(0, 0.5, n_items)
    rating = rng.normal(0, noise, n_ratings)  # the noise, turned into the ratings in place
    noise_mse = _synthetic.planted_ratings(u, i, W, H, bu, bi, 3.5, rating)
    out = pd.DataFrame({"user_id": u, "item_id": i, "rating": rating}, copy=False)
    out.attrs["noise_mse"] = float(noise_mse)
    return out


def _zipf_codes(rng, n, a, size, chunk=1 << 20):
    """``size`` int32 codes in [0, n) with P(rank j) ~ (j + 10)^-a (continuous inverse CDF), ranks shuffled."""
    lo, hi = 10.0 ** (1 - a), (n + 10.0) ** (1 - a)
    # The uniforms in chunks through one buffer: the same stream as rng.random(size), without its memory.
    x, out = np.empty(min(size, chunk)), np.empty(size, np.int32)
    for start in range(0, size, chunk):
        stop = min(start + chunk, size)
        rng.random(out=x[: stop - start])
        _synthetic.zipf_ranks(x[: stop - start], lo, hi - lo, 1 / (1 - a), n, out[start:stop])
    _synthetic.relabel(out, rng.permutation(n))
    return out
