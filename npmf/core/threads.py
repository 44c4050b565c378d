"""Thread control shared by both families: how many threads, Numba's pool for one block of code, and one
worker thread for work done ahead (:func:`ahead`)."""

import concurrent.futures
import contextlib
import os
import threading

# Set before numba first loads its OpenMP layer: threads that sleep at the
# barriers between parallel regions instead of spinning. On a shared or
# oversubscribed machine spinning made two threads four times slower than one.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numba  # noqa: E402

__all__ = ["default_threads", "numba_threads", "ahead"]


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


_worker = {}  # process id -> its one worker thread (a forked child makes its own: the parent's thread is not there)
_worker_lock = threading.Lock()


def ahead(fn, *args):
    """Start ``fn(*args)`` on the process's one worker thread; returns its ``concurrent.futures.Future``.

    For work a caller prepares while it computes something else, such as the
    next epoch's shuffled ratings (:class:`npmf.sgd._kernels.SerialEpochs`):
    ``future.result()`` waits for it and raises what ``fn`` raised. Tasks run
    one at a time, in the order given; the thread lives as long as the process.
    """
    pid = os.getpid()
    with _worker_lock:
        if pid not in _worker:
            _worker.clear()
            _worker[pid] = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="npmf-ahead")
        return _worker[pid].submit(fn, *args)
