"""Ratings data: MovieLens (download, checksum, cache), a reader for delimited files, synthetic ratings."""

from .movielens import (
    DEFAULT_TIMEOUT,
    MOVIELENS,
    download_movielens,
    get_data_home,
    load_movielens,
    load_movielens_folds,
)
from .readers import COLUMNS, HEADER_NAMES, read_ratings
from .synthetic import make_ratings

__all__ = [
    "COLUMNS",
    "DEFAULT_TIMEOUT",
    "HEADER_NAMES",
    "MOVIELENS",
    "download_movielens",
    "get_data_home",
    "load_movielens",
    "load_movielens_folds",
    "make_ratings",
    "read_ratings",
]
