r"""Top-n items for many users at once: the n best :math:`o_u + b_i + w_u \cdot h_i` over allowed, unseen i.

The users come in blocks and the items in tiles (:data:`BLOCK_VALUES`,
:data:`ITEM_TILE`). Each block-by-tile of dot products is one BLAS matrix
product (:func:`numpy.matmul`, in the factors' dtype, float32 too) into a
buffer small enough to stay in cache; the kernel then adds the offsets and
offers each item to its user's heap of the ``n`` best so far. The heaps
carry over from tile to tile; a user's seen items (sorted, see
:func:`seen_csr`) are walked once, tile by tile. Blocks run in parallel in
Python threads, as many as Numba's thread count (the product and the kernel
release the GIL), with OpenBLAS held to one thread meanwhile.
A user's row offset
:math:`o_u` is :math:`\mu + b_u` for a known user and the training mean for
an unknown one (whose factor row is zero), as
:meth:`npmf.FactorModel.predict` scores them.

Order: by score, highest first; equal scores by item code, lowest first. The
NumPy twin :func:`top_n_numpy` selects the same items in the same order; the
tests hold them equal.
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

__all__ = ["seen_csr", "top_n", "top_n_numpy", "top_n_numba"]

# A block of users against a tile of items is one matrix product into a buffer of at most
# BLOCK_VALUES scores (2 MB in float64: it stays in the core's cache while the kernel reads it).
# Blocks are spread over Numba's thread count in Python threads, each product on one BLAS thread:
# at k=32 a product is bound by writing its output, and OpenBLAS's own threads on such skinny
# products ran 3-30x slower than one thread per block here (benchmarks/results/recommend/).
BLOCK_VALUES = 1 << 18
ITEM_TILE = 2048


@numba.njit(cache=True, nogil=True, inline="always")
def _better(s, j, s_other, j_other):
    """Does (score s, item j) rank before (s_other, j_other)? Higher score first, then lower code."""
    return s > s_other or (s == s_other and j < j_other)


@numba.njit(cache=True, nogil=True)
def _sift_down(hs, hj, size, pos):
    """Restore the heap below ``pos``: the worst kept item sits at the root."""
    while True:
        child = 2 * pos + 1
        if child >= size:
            return
        if child + 1 < size and _better(hs[child], hj[child], hs[child + 1], hj[child + 1]):
            child += 1  # the worse child
        if _better(hs[child], hj[child], hs[pos], hj[pos]):
            return
        hs[pos], hs[child] = hs[child], hs[pos]
        hj[pos], hj[child] = hj[child], hj[pos]
        pos = child


@numba.njit(cache=True, nogil=True)
def _push(hs, hj, size, s, j):
    """Offer (s, j) to the heap of the ``size`` best so far (capacity ``len(hs)``); returns the new size."""
    if size < hs.shape[0]:
        pos = size
        hs[pos] = s
        hj[pos] = j
        while pos > 0:  # sift up
            parent = (pos - 1) // 2
            if not _better(hs[parent], hj[parent], hs[pos], hj[pos]):
                break
            hs[parent], hs[pos] = hs[pos], hs[parent]
            hj[parent], hj[pos] = hj[pos], hj[parent]
            pos = parent
        return size + 1
    if _better(s, j, hs[0], hj[0]):
        hs[0] = s
        hj[0] = j
        _sift_down(hs, hj, size, 0)
    return size


@numba.njit(cache=True, nogil=True)
def _scan(row, j0, offset, bi, allowed, indices, p, end, hs, hj, size):
    """Offer items ``j0 + t`` with scores ``offset + bi[j] + row[t]`` to one heap; returns (size, p).

    ``indices[p:end]`` are the user's seen items not yet passed, sorted: those
    in this tile are marked in a mask of the tile's width first.
    """
    n, T = hs.shape[0], row.shape[0]
    seen = np.zeros(T, np.bool_)
    while p < end and indices[p] < j0 + T:
        if indices[p] >= j0:
            seen[indices[p] - j0] = True
        p += 1
    tile_allowed, tile_bi = allowed[j0 : j0 + T], bi[j0 : j0 + T]  # indexed by t, as row is
    worst_s, worst_j = (hs[0], hj[0]) if size == n else (np.inf, -1)  # the bar to pass, in registers
    for t in range(T):
        if seen[t] or not tile_allowed[t]:
            continue
        score = offset + tile_bi[t] + row[t]
        if size == n and not _better(score, j0 + t, worst_s, worst_j):
            continue  # the common case, decided without touching the heap
        size = _push(hs, hj, size, score, j0 + t)
        if size == n:
            worst_s, worst_j = hs[0], hj[0]
    return size, p


@numba.njit(cache=True, nogil=True)
def _select_tile(dots, j0, offsets, bi, allowed, users, indptr, indices, ptr, hs, hj, sizes):
    """Offer items ``j0 .. j0 + T - 1`` (scores ``offsets[b] + bi[j] + dots[b, j - j0]``) to each row's heap.

    Serial: the blocks run in parallel, one per thread. A user's seen items are ``indices[indptr[u]:indptr[u + 1]]``,
    sorted; ``ptr[b]`` is how far row ``b`` has walked them (tiles come in item
    order), so a tile marks only its own in a mask of its width. Only the heaps
    (``hs``, ``hj``, ``sizes``) and ``ptr`` are written. Each row's heap is
    worked on in a local copy: arrays the compiler knows alias nothing.
    """
    B = dots.shape[0]
    n = hs.shape[1]
    for b in range(B):
        u = users[b]
        end = indptr[u + 1] if u >= 0 and u + 1 < indptr.shape[0] else 0
        local_s = np.empty(n, np.float64)
        local_j = np.empty(n, np.int64)
        local_s[:] = hs[b]
        local_j[:] = hj[b]
        sizes[b], ptr[b] = _scan(dots[b], j0, offsets[b], bi, allowed, indices, ptr[b], end, local_s, local_j, sizes[b])
        hs[b] = local_s
        hj[b] = local_j


@numba.njit(cache=True, nogil=True)
def _finish(hs, hj, sizes, out_items, out_scores):
    """Empty each row's heap into its output row, best first (worst popped first, filled from the back)."""
    for b in range(hs.shape[0]):
        size = sizes[b]
        row_s = hs[b]
        row_j = hj[b]
        for r in range(size - 1, -1, -1):
            out_scores[b, r] = row_s[0]
            out_items[b, r] = row_j[0]
            size -= 1
            row_s[0] = row_s[size]
            row_j[0] = row_j[size]
            _sift_down(row_s, row_j, size, 0)


_BLAS = {"lock": threading.Lock(), "users": 0, "saved": None, "lib": False}


def _openblas():
    """numpy's OpenBLAS thread-count functions (get, set) through ctypes, or None where they cannot be found."""
    if _BLAS["lib"] is False:
        _BLAS["lib"] = None
        try:
            with open("/proc/self/maps") as maps:
                paths = sorted({line.split()[-1] for line in maps if "openblas" in line.lower()})
            for path in paths:
                lib = ctypes.CDLL(path)
                for get, put in (("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
                                 ("openblas_get_num_threads64_", "openblas_set_num_threads64_"),
                                 ("openblas_get_num_threads", "openblas_set_num_threads")):  # fmt: skip
                    if hasattr(lib, get) and hasattr(lib, put):
                        _BLAS["lib"] = (getattr(lib, get), getattr(lib, put))
                        return _BLAS["lib"]
        except OSError:  # no /proc (not Linux), or a library that will not load: leave BLAS as it is
            pass
    return _BLAS["lib"]


@contextlib.contextmanager
def _one_blas_thread():
    """OpenBLAS on one thread while any top_n runs (the blocks are the parallelism); restored after the last."""
    lib = _openblas()
    if lib is None:
        yield
        return
    with _BLAS["lock"]:
        if _BLAS["users"] == 0:
            _BLAS["saved"] = lib[0]()
            lib[1](1)
        _BLAS["users"] += 1
    try:
        yield
    finally:
        with _BLAS["lock"]:
            _BLAS["users"] -= 1
            if _BLAS["users"] == 0:
                lib[1](_BLAS["saved"])


class _Selection:
    """The kernel's running state for a block of B rows: heaps of the n best, seen-list positions."""

    def __init__(self, users, indptr, n):
        B = len(users)
        self.users, self.indptr = users, indptr
        self.hs = np.empty((B, n), np.float64)
        self.hj = np.empty((B, n), np.int64)
        self.sizes = np.zeros(B, np.int64)
        known = (users >= 0) & (len(indptr) > 1)
        self.ptr = np.where(known, indptr[np.where(known, users, 0)], 0).astype(np.int64)

    def offer(self, dots, j0, offsets, bi, allowed, indices):
        _select_tile(
            dots, j0, offsets, bi, allowed, self.users, self.indptr, indices, self.ptr, self.hs, self.hj, self.sizes
        )

    def result(self):
        B, n = self.hs.shape
        items = np.full((B, n), -1, np.int64)
        scores = np.full((B, n), -np.inf)
        _finish(self.hs, self.hj, self.sizes, items, scores)
        return items, scores, self.sizes.copy()


def top_n_numba(dots, offsets, bi, allowed, users, indptr, indices, n):
    """Numba kernel: per row of ``dots`` (B, N), the ``n`` best item codes and scores.

    ``indices`` must be sorted within each user (as :func:`seen_csr` makes
    them). Returns ``items`` (B, n) int64 (-1 past the last), ``scores`` (B, n)
    float64 (-inf past the last) and ``counts`` (B,) int64.
    """
    users = np.ascontiguousarray(users, dtype=np.int64)
    selection = _Selection(users, indptr, n)
    selection.offer(dots, 0, offsets, bi, allowed, indices)
    return selection.result()


def top_n_numpy(dots, offsets, bi, allowed, users, indptr, indices, n):
    """Plain-NumPy twin of :func:`top_n_numba` (same arguments, same results)."""
    B, N = dots.shape
    items = np.full((B, n), -1, np.int64)
    scores = np.full((B, n), -np.inf)
    counts = np.zeros(B, np.int64)
    for b in range(B):
        ok = allowed.copy()
        u = users[b]
        if u >= 0 and len(indptr) > 1:
            ok[indices[indptr[u] : indptr[u + 1]]] = False
        cand = np.flatnonzero(ok)
        s = offsets[b] + bi[cand] + dots[b, cand]
        order = np.lexsort((cand, -s))[:n]
        m = len(order)
        items[b, :m], scores[b, :m], counts[b] = cand[order], s[order], m
    return items, scores, counts


def seen_csr(seen_users, seen_items, n_users):
    """The training pairs as CSR: user ``u`` rated ``indices[indptr[u]:indptr[u + 1]]``, sorted by item code."""
    seen_users, seen_items = np.asarray(seen_users, np.int64), np.asarray(seen_items, np.int64)
    width = int(seen_items.max()) + 1 if len(seen_items) else 1
    order = np.argsort(seen_users * width + seen_items)  # by user, then item: one integer sort
    indptr = np.zeros(n_users + 1, np.int64)
    np.cumsum(np.bincount(seen_users, minlength=n_users), out=indptr[1:])
    return indptr, np.ascontiguousarray(seen_items[order])


def top_n(W, H, offsets, bi, users, allowed, csr, n, use_numba=True):
    """Each user's ``n`` best items, block of users by tile of items.

    Parameters
    ----------
    W : ndarray (B, k)
        The users' factor rows (zeros for an unknown user).
    H : ndarray (N, k)
        Item factors, of ``W``'s dtype: the products run in it (float32 too).
    offsets : ndarray (B,) float64
        Each user's :math:`o_u`.
    bi : ndarray (N,) float64
        Item biases (zeros without biases).
    users : ndarray (B,) int
        User codes, -1 for unknown (nothing seen).
    allowed : ndarray (N,) bool
        Candidate items.
    csr : (indptr, indices) or None
        Seen items to leave out (:func:`seen_csr`: sorted within each user);
        None leaves none out.
    n : int
    use_numba : bool, default True
        False runs the NumPy twin on whole rows.

    Returns
    -------
    items (B, n) int64, scores (B, n) float64, counts (B,) int64
    """
    indptr, indices = csr if csr is not None else (np.zeros(1, np.int64), np.zeros(0, np.int64))
    B, N = len(users), H.shape[0]
    users = np.ascontiguousarray(users, dtype=np.int64)
    if csr is not None and B and (users.max() >= len(indptr) - 1 or len(indices) != indptr[-1]):
        raise ValueError(f"user codes reach {users.max()} but the seen pairs cover {len(indptr) - 1} users")
    bi = np.ascontiguousarray(bi, dtype=np.float64)
    allowed = np.ascontiguousarray(allowed, dtype=np.bool_)
    offsets = np.ascontiguousarray(offsets, dtype=np.float64)
    items = np.empty((B, n), np.int64)
    scores = np.empty((B, n))
    counts = np.empty(B, np.int64)
    if not use_numba:
        step = max(1, BLOCK_VALUES // max(N, 1))
        for start in range(0, B, step):
            rows = slice(start, start + step)
            dots = np.asarray(W[rows] @ H.T, dtype=np.float64)
            items[rows], scores[rows], counts[rows] = top_n_numpy(
                dots, offsets[rows], bi, allowed, users[rows], indptr, indices, n
            )
        return items, scores, counts
    tile = max(1, min(N, ITEM_TILE))
    step = max(1, BLOCK_VALUES // tile)
    HT = np.ascontiguousarray(H.T)

    def block(start):
        rows = slice(start, start + step)
        selection = _Selection(users[rows], indptr, n)
        Wb, buffer = W[rows], np.empty((len(selection.users), tile), H.dtype)
        for j0 in range(0, N, tile):
            dots = buffer if j0 + tile <= N else np.empty((len(Wb), N - j0), H.dtype)
            np.matmul(Wb, HT[:, j0 : j0 + tile], out=dots)
            selection.offer(dots, j0, offsets[rows], bi, allowed, indices)
        items[rows], scores[rows], counts[rows] = selection.result()

    starts = range(0, B, step)
    workers = min(numba.get_num_threads(), len(starts))
    with _one_blas_thread():
        if workers <= 1:
            for start in starts:
                block(start)
        else:
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(block, starts))  # list: re-raises a block's exception here
    return items, scores, counts
