"""Type aliases of the public API."""

from __future__ import annotations

from collections.abc import Callable
from os import PathLike

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["ArrayLike", "Callback", "Ids", "PathType", "RandomState", "Triples"]

Ids = ArrayLike
"""Raw user or item ids, one per rating: a list, array or pandas Series of hashable values."""

Triples = tuple[ArrayLike, ArrayLike, ArrayLike]
"""``(users, items, ratings)``, e.g. ``validation_data``."""

Callback = Callable[[int, float, float], object]
"""Called after each epoch as ``callback(epoch, seconds, loss)``."""

RandomState = int | np.random.Generator | None
PathType = str | PathLike
