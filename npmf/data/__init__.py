"""Ratings data: MovieLens (download, checksum, cache), a reader for delimited files, synthetic ratings."""

from .movielens import MOVIELENS, download_movielens, get_data_home, load_movielens, load_movielens_folds
from .readers import COLUMNS, read_ratings
from .synthetic import make_ratings

__all__ = [
    "COLUMNS",
    "MOVIELENS",
    "download_movielens",
    "get_data_home",
    "load_movielens",
    "load_movielens_folds",
    "make_ratings",
    "read_ratings",
]
