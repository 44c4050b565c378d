"""The block-sorted copy of the ratings and the records' memory: the data-movement kernels of the block path.

:func:`_bucket` copies the ratings into blocks in schedule order (twin of
:func:`npmf.sgd.blocks.block_order`), :func:`_shuffle` shuffles a block in place
(twin of :func:`npmf.sgd.blocks.shuffle_block`; the per-rating kernels use it
too, as :func:`_shuffle_into`), and :func:`_keep_moments` compacts each record to Adam's moments when
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


# Draws per chunk of the shuffle's first pass (a few KB of scratch, in L1).
_CHUNK = 512


@_jit
def _draws(seed, count0, t_hi, n, out):
    """Fisher-Yates' swap targets ``j`` for ``t = t_hi, t_hi - 1, ..., t_hi - n + 1`` into ``out[:n]``.

    Draw number ``c = count0 + a + 1`` of SplitMix64 from ``seed`` is a function
    of ``c`` alone (its state is ``seed + c * golden``), so this loop has no
    carried dependency and LLVM vectorises it (64-bit products and
    integer-to-float conversions, where the CPU has them); the bits are those of
    the one-at-a-time recurrence.
    """
    golden = np.uint64(0x9E3779B97F4A7C15)
    base = np.uint64(seed) + np.uint64(count0) * golden
    for a in range(n):
        z = base + np.uint64(a + 1) * golden
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
        out[a] = int(float(z >> np.uint64(11)) * (1.0 / 9007199254740992.0) * (t_hi - a + 1))


@_jit
def _shuffle(u, i, r, start, stop, seed):
    """Twin of :func:`npmf.sgd.blocks.shuffle_block` (SplitMix64-driven Fisher-Yates); :func:`_shuffle_into` with
    scratch of its own."""
    _shuffle_into(u, i, r, start, stop, seed, np.empty(_CHUNK, np.int64))


@_jit
def _shuffle_into(u, i, r, start, stop, seed, js):
    """:func:`_shuffle` with the caller's scratch ``js`` (at least ``_CHUNK`` int64): it allocates nothing, so
    kernels compiled without reference counting (``_nrt=False``) can call it.

    In chunks of ``_CHUNK`` steps: first the chunk's swap targets
    (:func:`_draws`, vectorised), then its swaps, which are inherently serial.
    """
    t_hi = stop - start - 1
    done = 0
    while t_hi > 0:
        n = min(_CHUNK, t_hi)  # steps t = t_hi .. t_hi - n + 1 (>= 1)
        _draws(seed, done, t_hi, n, js)
        for a in range(n):
            x, y = start + t_hi - a, start + js[a]
            u[x], u[y] = u[y], u[x]
            i[x], i[y] = i[y], i[x]
            r[x], r[y] = r[y], r[x]
        done += n
        t_hi -= n


@_jit
def _keep_moments(X, s, segments, first):
    """Move each row's ``[m | v]`` segments (segments ``first`` and ``first + 1`` of ``segments``) to the front,
    in place: row q to ``[2sq, 2s(q+1))``.

    Row q's moments start at ``segments s q + first s``, never before their destination, and the rows are
    moved in order, so nothing is overwritten before it is read.
    """
    flat = X.reshape(-1)
    for q in range(X.shape[0]):
        src, dst = segments * s * q + first * s, 2 * s * q
        for c in range(2 * s):
            flat[dst + c] = flat[src + c]
