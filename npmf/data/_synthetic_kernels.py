"""Numba kernels behind :func:`npmf.data.make_ratings`.

The random numbers are drawn in Python from the caller's generator and passed
in; these kernels only transform them, so the data depend on ``random_state``
alone (not on the number of threads).
"""

import numba
import numpy as np

__all__ = ["zipf_ranks", "relabel", "unique_pairs", "merge_unique", "planted_ratings"]


@numba.njit(cache=True, parallel=True)
def zipf_ranks(x, lo, width, power, n, out):
    r"""``out[j] = min(floor((lo + x[j] width)^power - 10), n - 1)`` for uniform ``x``.

    The continuous inverse CDF of :math:`P(\text{rank } j) \propto (j + 10)^{-a}`,
    with ``power`` :math:`= 1 / (1 - a)`.
    """
    for j in numba.prange(x.shape[0]):
        out[j] = min(int((lo + x[j] * width) ** power - 10.0), n - 1)


@numba.njit(cache=True, parallel=True)
def relabel(codes, perm):
    """``codes[j] = perm[codes[j]]``, in place."""
    for j in numba.prange(codes.shape[0]):
        codes[j] = perm[codes[j]]


@numba.njit(cache=True)
def _counting_sort(key, n_keys, a, b, out_a, out_b):
    """Stable sort of the pairs ``(a, b)`` by ``key`` (``a`` or ``b``), in [0, n_keys), into ``out_*``."""
    start = np.zeros(n_keys + 1, np.int64)
    for j in range(key.shape[0]):
        start[key[j] + 1] += 1
    for c in range(n_keys):
        start[c + 1] += start[c]
    for j in range(key.shape[0]):
        c = key[j]
        out_a[start[c]] = a[j]
        out_b[start[c]] = b[j]
        start[c] += 1


@numba.njit(cache=True)
def unique_pairs(u, i, n_users, n_items):
    """The distinct pairs ``(u[j], i[j])``, sorted by user then item: two counting sorts (LSD radix).

    Returns two int32 arrays; what ``np.unique(u * n_items + i)`` gives, in
    O(n + n_users + n_items) instead of a comparison sort of int64 keys.
    """
    n = u.shape[0]
    u1, i1 = np.empty(n, np.int32), np.empty(n, np.int32)
    _counting_sort(i, n_items, u, i, u1, i1)
    u2, i2 = np.empty(n, np.int32), np.empty(n, np.int32)
    _counting_sort(u1, n_users, u1, i1, u2, i2)
    w = 0
    for j in range(n):
        if w == 0 or u2[j] != u2[w - 1] or i2[j] != i2[w - 1]:
            u2[w] = u2[j]
            i2[w] = i2[j]
            w += 1
    return u2[:w], i2[:w]


@numba.njit(cache=True)
def merge_unique(u1, i1, u2, i2):
    """Union of two sets of pairs, each sorted by user then item without repeats; the same order."""
    n1, n2 = u1.shape[0], u2.shape[0]
    u, i = np.empty(n1 + n2, np.int32), np.empty(n1 + n2, np.int32)
    a = b = w = 0
    while a < n1 or b < n2:
        if b == n2 or (a < n1 and (u1[a] < u2[b] or (u1[a] == u2[b] and i1[a] <= i2[b]))):
            x, y = u1[a], i1[a]
            a += 1
        else:
            x, y = u2[b], i2[b]
            b += 1
        if w == 0 or x != u[w - 1] or y != i[w - 1]:
            u[w] = x
            i[w] = y
            w += 1
    return u[:w], i[:w]


@numba.njit(cache=True, parallel=True)
def planted_ratings(u, i, W, H, bu, bi, mu, rating, block=1 << 16):
    r"""Round and clip the planted scores plus noise, in place; returns the mean squared rounding-and-noise error.

    On entry ``rating`` holds the noise :math:`\varepsilon`; on exit
    :math:`\operatorname{clip}(\operatorname{round}(s + \varepsilon), 1, 5)` with
    :math:`s = \mu + b_u + b_i + w_u \cdot h_i` (the dot product in the factors'
    float32). The squared errors :math:`(r - s)^2` are summed in fixed blocks
    of ``block`` ratings, so the result does not depend on the number of threads.
    """
    n, k = u.shape[0], W.shape[1]
    n_blocks = (n + block - 1) // block
    sums = np.zeros(n_blocks)
    for b in numba.prange(n_blocks):
        total = 0.0
        for j in range(b * block, min(n, (b + 1) * block)):
            x, y = u[j], i[j]
            dot = W[x, 0] * H[y, 0]
            for f in range(1, k):
                dot += W[x, f] * H[y, f]
            score = mu + bu[x] + bi[y] + dot
            r = min(max(np.rint(score + rating[j]), 1.0), 5.0)
            total += (r - score) ** 2
            rating[j] = r
        sums[b] = total
    return sums.sum() / n
