"""Thread control shared by both families: how many threads, and Numba's pool for one block of code."""

import contextlib
import os

# Set before numba first loads its OpenMP layer: threads that sleep at the
# barriers between parallel regions instead of spinning. On a shared or
# oversubscribed machine spinning made two threads four times slower than one.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numba  # noqa: E402

__all__ = ["default_threads", "numba_threads"]


def default_threads() -> int:
    """The number of threads ``n_threads=None`` means: Numba's pool, all cores unless limited."""
    return numba.config.NUMBA_NUM_THREADS


@contextlib.contextmanager
def numba_threads(n_threads: int):
    """Run the block with Numba's parallel regions on ``n_threads`` threads (capped by the pool), then restore."""
    previous = numba.get_num_threads()
    numba.set_num_threads(max(1, min(n_threads, numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        numba.set_num_threads(previous)
