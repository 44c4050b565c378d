"""Fixtures shared by every test folder (plain helpers live in ``helpers.py``)."""

import numpy as np
import pytest
from helpers import ml100k_dir


@pytest.fixture
def ml100k_home():
    home = ml100k_dir()
    if home is None:
        pytest.skip("MovieLens-100k not found under $NPMF_DATA_DIR")
    return home


@pytest.fixture
def small_ratings():
    """A small random problem: 60 ratings of 7 users on 5 items, ratings 1-5."""
    rng = np.random.default_rng(42)
    n = 60
    users = rng.integers(0, 7, n)
    items = rng.integers(0, 5, n)
    ratings = rng.integers(1, 6, n).astype(float)
    return users, items, ratings
