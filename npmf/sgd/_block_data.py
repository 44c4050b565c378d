"""The block-sorted copy of the ratings and the records' memory: the data-movement kernels of the block path.

:func:`_bucket` copies the ratings into blocks in schedule order (twin of
:func:`npmf.sgd.blocks.block_order`), :func:`_shuffle` shuffles a block in place
(twin of :func:`npmf.sgd.blocks.shuffle_block`; the per-rating kernels use it
too), and :func:`_keep_moments` compacts each record to Adam's moments when
training ends (:meth:`npmf.sgd._block_kernels.BlockEpochs.give_back`).
"""

import numba
import numpy as np

__all__ = []

_jit = numba.njit(cache=True, error_model="numpy", nogil=True)


@_jit
def _bucket(uk, ub, ut, ik, ib, it, r, su, si, P, out_u, out_i, out_r, offsets):
    """Counting sort of the ratings into blocks; twin of :func:`npmf.sgd.blocks.block_order`.

    Codes are read through their tables (:class:`npmf.core.encoding.Codes`):
    user ``ut[uk[j] - ub]``, item ``it[ik[j] - ib]``.
    """
    n = uk.shape[0]
    counts = np.zeros(P * P, np.int64)
    for j in range(n):
        x, y = ut[uk[j] - ub], it[ik[j] - ib]
        counts[((si[y] - su[x]) % P) * P + su[x]] += 1
    offsets[0] = 0
    for b in range(P * P):
        offsets[b + 1] = offsets[b] + counts[b]
    fill = offsets[:-1].copy()
    for j in range(n):
        x, y = ut[uk[j] - ub], it[ik[j] - ib]
        b = ((si[y] - su[x]) % P) * P + su[x]
        out_u[fill[b]] = x
        out_i[fill[b]] = y
        out_r[fill[b]] = r[j]
        fill[b] += 1


@_jit
def _shuffle(u, i, r, start, stop, seed):
    """Twin of :func:`npmf.sgd.blocks.shuffle_block` (SplitMix64-driven Fisher-Yates)."""
    state = np.uint64(seed)
    for t in range(stop - start - 1, 0, -1):
        state = state + np.uint64(0x9E3779B97F4A7C15)
        z = state
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
        j = int(float(z >> np.uint64(11)) * (1.0 / 9007199254740992.0) * (t + 1))
        a, b = start + t, start + j
        u[a], u[b] = u[b], u[a]
        i[a], i[b] = i[b], i[a]
        r[a], r[b] = r[b], r[a]


@_jit
def _keep_moments(X, s):
    """Move each row's ``[m | v]`` segments (the last two of four) to the front, in place: row q to ``[2sq, 2s(q+1))``.

    Row q's moments start at ``4sq + 2s``, never before their destination, and
    rows are moved in order, so nothing is overwritten before it is read.
    """
    flat = X.reshape(-1)
    for q in range(X.shape[0]):
        src, dst = 4 * s * q + 2 * s, 2 * s * q
        for c in range(2 * s):
            flat[dst + c] = flat[src + c]
