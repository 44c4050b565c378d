r"""Top-n items for many users at once: the n best :math:`o_u + b_i + w_u \cdot h_i` over allowed, unseen i.

The dot products of a block of users with every item come from one BLAS
matrix product (:func:`numpy.matmul`, on all of BLAS's threads); the kernel
then adds the offsets and keeps each user's ``n`` best allowed, unseen items,
parallel over the users of the block. A user's row offset :math:`o_u` is
:math:`\mu + b_u` for a known user and the training mean for an unknown one
(whose factor row is zero), as :meth:`npmf.FactorModel.predict` scores them.

Order: by score, highest first; equal scores by item code, lowest first. The
NumPy twin :func:`top_n_numpy` selects the same items in the same order; the
tests hold them equal.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["seen_csr", "top_n", "top_n_numpy", "top_n_numba"]

# A block of users' scores holds at most this many float64 values (64 MB).
BLOCK_VALUES = 1 << 23


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
def _select_row(dots, offset, bi, allowed, seen, hs, hj, out_items, out_scores):
    """Keep the best ``len(hs)`` of ``offset + bi + dots`` over allowed, unseen items; write them best first.

    Returns how many were kept (fewer than ``len(hs)`` when fewer items qualify).
    """
    n = hs.shape[0]
    size = 0
    for j in range(dots.shape[0]):
        if not allowed[j] or seen[j]:
            continue
        s = offset + bi[j] + dots[j]
        if size < n:
            # sift up
            pos = size
            hs[pos] = s
            hj[pos] = j
            size += 1
            while pos > 0:
                parent = (pos - 1) // 2
                if _better(hs[parent], hj[parent], hs[pos], hj[pos]):
                    hs[parent], hs[pos] = hs[pos], hs[parent]
                    hj[parent], hj[pos] = hj[pos], hj[parent]
                    pos = parent
                else:
                    break
        elif _better(s, j, hs[0], hj[0]):
            hs[0] = s
            hj[0] = j
            _sift_down(hs, hj, size, 0)
    kept = size
    # pop the worst first, filling from the back
    for r in range(kept - 1, -1, -1):
        out_scores[r] = hs[0]
        out_items[r] = hj[0]
        last = size - 1
        hs[0] = hs[last]
        hj[0] = hj[last]
        size = last
        _sift_down(hs, hj, size, 0)
    return kept


@numba.njit(cache=True, nogil=True, parallel=True)
def _select_block(dots, offsets, bi, allowed, users, indptr, indices, out_items, out_scores, counts):
    """Rows of ``dots`` (B, N) in parallel: each user's ``n`` best; ``counts[b]`` how many exist."""
    B, N = dots.shape
    n = out_items.shape[1]
    for b in numba.prange(B):
        seen = np.zeros(N, np.bool_)
        u = users[b]
        if u >= 0 and indptr.shape[0] > 1:
            for p in range(indptr[u], indptr[u + 1]):
                seen[indices[p]] = True
        hs = np.empty(n, np.float64)
        hj = np.empty(n, np.int64)
        counts[b] = _select_row(dots[b], offsets[b], bi, allowed, seen, hs, hj, out_items[b], out_scores[b])


def top_n_numba(dots, offsets, bi, allowed, users, indptr, indices, n):
    """Numba kernel: per row of ``dots`` (B, N) float64, the ``n`` best item codes and scores.

    Returns ``items`` (B, n) int64 (-1 past the last), ``scores`` (B, n) float64 (-inf past the last)
    and ``counts`` (B,) int64.
    """
    B = dots.shape[0]
    items = np.full((B, n), -1, np.int64)
    scores = np.full((B, n), -np.inf)
    counts = np.zeros(B, np.int64)
    _select_block(dots, offsets, bi, allowed, users, indptr, indices, items, scores, counts)
    return items, scores, counts


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
    """The training pairs as CSR: user ``u`` rated ``indices[indptr[u]:indptr[u + 1]]``."""
    order = np.argsort(seen_users, kind="stable")
    indptr = np.zeros(n_users + 1, np.int64)
    np.cumsum(np.bincount(seen_users, minlength=n_users), out=indptr[1:])
    return indptr, np.ascontiguousarray(seen_items[order], dtype=np.int64)


def top_n(W, H, offsets, bi, users, allowed, csr, n, use_numba=True):
    """Each user's ``n`` best items, block by block.

    Parameters
    ----------
    W : ndarray (B, k)
        The users' factor rows (zeros for an unknown user).
    H : ndarray (N, k)
        Item factors.
    offsets : ndarray (B,) float64
        Each user's :math:`o_u`.
    bi : ndarray (N,) float64
        Item biases (zeros without biases).
    users : ndarray (B,) int
        User codes, -1 for unknown (nothing seen).
    allowed : ndarray (N,) bool
        Candidate items.
    csr : (indptr, indices) or None
        Seen items to leave out (:func:`seen_csr`); None leaves none out.
    n : int
    use_numba : bool, default True
        False runs the NumPy twin.

    Returns
    -------
    items (B, n) int64, scores (B, n) float64, counts (B,) int64
    """
    select = top_n_numba if use_numba else top_n_numpy
    indptr, indices = csr if csr is not None else (np.zeros(1, np.int64), np.zeros(0, np.int64))
    B, N = len(users), H.shape[0]
    items = np.empty((B, n), np.int64)
    scores = np.empty((B, n))
    counts = np.empty(B, np.int64)
    step = max(1, BLOCK_VALUES // max(N, 1))
    HT = np.ascontiguousarray(H.T)
    bi = np.ascontiguousarray(bi, dtype=np.float64)
    allowed = np.ascontiguousarray(allowed, dtype=np.bool_)
    users = np.ascontiguousarray(users, dtype=np.int64)
    for start in range(0, B, step):
        rows = slice(start, start + step)
        dots = np.asarray(W[rows] @ HT, dtype=np.float64)
        items[rows], scores[rows], counts[rows] = select(
            dots, np.asarray(offsets[rows], np.float64), bi, allowed, users[rows], indptr, indices, n
        )
    return items, scores, counts
