r"""Block-scheduled epochs (LibMF/DSGD style), in plain NumPy: the definition and the twin.

The parallel kernels in :mod:`npmf.sgd._block_kernels` run ``lazy_adam`` and ``sgd`` on
every core. This module says exactly what one of their epochs computes, and
:func:`epoch_blocks_numpy` computes it slowly; the tests hold the two equal to
1e-12 in float64, with one thread and with several.

Why blocks and not Hogwild
--------------------------
Hogwild lets threads update shared rows without locks. It is simple, but two
threads that touch the same item row race on the factors and, with lazy Adam,
on the moments and the gradient accumulator, so runs with more than one thread
differ bit by bit, and a popular item is hammered from every core at once
(cache lines bounce between cores). LibMF's answer is block scheduling: split
users into :math:`P` strata and items into :math:`P` strata, so the rating
matrix falls into :math:`P \times P` blocks; blocks that share no user stratum
and no item stratum share no parameter and can be trained at the same time
without locks. npmf uses the fixed rotation of DSGD (Gemulla et al., 2011):

.. math::

    \text{sub-epoch } s = 0, \dots, P-1: \quad
    \text{blocks } (p,\ (p + s) \bmod P), \quad p = 0, \dots, P-1,

trained in parallel, with a barrier between sub-epochs. Because no two
concurrent blocks share a row, the result does not depend on the number of
threads or on which thread takes which block: **every run with the same
``random_state`` gives the same bits, with any ``n_threads``**. A block also
touches only :math:`1/P` of the users and of the items, so its rows stay in
cache while it is trained.

What one epoch is
-----------------
Users are dealt into strata by :func:`strata` (by decreasing number of
ratings, snake order, so strata carry near-equal numbers of ratings), and so
are items. The ratings are stored block by block in schedule order
(:func:`block_order`); block ``b = s P + p`` holds the ratings of user stratum
``p`` and item stratum ``(p + s) mod P``. One epoch then, for ``b = 0, 1, ...,
P^2 - 1`` in turn:

1. shuffles block ``b``'s ratings in place (:func:`shuffle_block`, a
   Fisher-Yates shuffle driven by SplitMix64 from ``seeds[b]``; the seeds are
   drawn in Python from the model's generator);
2. runs :func:`npmf.sgd.optimizers.epoch_numpy` over the block: minibatches of
   ``batch_size`` consecutive ratings, the last one of each block possibly
   smaller (batches never straddle two blocks), with Adam's step count
   :math:`t` running on across blocks in this order.

With :math:`P = 1` this is exactly the serial epoch of :mod:`npmf.sgd._kernels` in
another shuffled order. Running blocks of one sub-epoch at the same time gives
the same numbers as running them in turn, since they touch disjoint rows.
"""

import numpy as np

from .optimizers import epoch_numpy

__all__ = ["n_strata", "strata", "block_order", "batch_offsets", "thread_plan", "shuffle_block", "epoch_blocks_numpy"]

MAX_STRATA = 64
# Fewest ratings per sub-epoch worth a parallel region (its barrier costs some 10-50 us).
SUBEPOCH_RATINGS = 5000
_MASK = (1 << 64) - 1


def n_strata(n_ratings, batch_size, max_strata=MAX_STRATA):
    r"""Strata per side, at least 1.

    .. math:: P = \min(P_{max}, \lfloor\sqrt{n / (8B)}\rfloor, \max(4, \lfloor n / 5000 \rfloor))

    A block then holds about ``8 * batch_size`` ratings or more, so the partial
    last batch of each block is a small share of its steps; and each of the
    ``P`` sub-epochs (one parallel region and a barrier each) holds about
    ``SUBEPOCH_RATINGS`` ratings or more, so that on small problems (ML-100k)
    the barriers do not cost more than the threads gain. It depends on the
    problem only, not on the number of threads, so results do not either.
    """
    by_batch = np.sqrt(n_ratings / (8.0 * batch_size))
    by_barrier = max(4, n_ratings // SUBEPOCH_RATINGS)
    return int(max(1, min(max_strata, by_batch, by_barrier)))


def strata(counts, P):
    """Stratum of each row, balancing the number of ratings per stratum.

    Rows are sorted by decreasing count (ties by index) and dealt in snake
    order 0, 1, ..., P-1, P-1, ..., 0, 0, 1, ... Deterministic.

    Returns
    -------
    int64 ndarray of shape (len(counts),), values in [0, P)
    """
    order = np.argsort(-np.asarray(counts), kind="stable")
    pos = np.arange(len(order))
    lap, j = np.divmod(pos, P)
    out = np.empty(len(order), np.int64)
    out[order] = np.where(lap % 2 == 0, j, P - 1 - j)
    return out


def block_order(u, i, su, si, P):
    """Stable order that puts ratings block by block, in schedule order.

    Rating ``j`` is in block ``((si[i[j]] - su[u[j]]) mod P) * P + su[u[j]]``.

    Returns
    -------
    order : int ndarray of shape (n,)
        ``u[order]`` etc. are the ratings stored block by block.
    offsets : int64 ndarray of shape (P*P + 1,)
        Block ``b`` is ``order[offsets[b]:offsets[b+1]]``.
    """
    pu, qi = su[u], si[i]
    block = ((qi - pu) % P) * P + pu
    order = np.argsort(block, kind="stable")
    offsets = np.zeros(P * P + 1, np.int64)
    np.cumsum(np.bincount(block, minlength=P * P), out=offsets[1:])
    return order, offsets


def batch_offsets(offsets, batch_size):
    """Index of each block's first minibatch in the epoch (length P*P + 1; the last is the total)."""
    sizes = np.diff(offsets)
    out = np.zeros(len(offsets), np.int64)
    np.cumsum(-(-sizes // batch_size), out=out[1:])
    return out


def thread_plan(offsets, P, n_threads):
    """Deal each sub-epoch's blocks to ``T = min(n_threads, P)`` thread slots by their number of ratings.

    Greedy, largest block first, each to the slot with the fewest ratings so
    far (LPT scheduling; ties to the lower slot). With a static split of the P
    blocks into contiguous halves, a sub-epoch lasts as long as its heavier
    half: on the skewed shape of ``benchmarks/scale.py`` (5M ratings, P = 64)
    that kept two threads busy 92% of the time, the dealt plan 99%. The plan
    moves work between threads only, so it changes no result.

    Returns
    -------
    plan : int64 ndarray of shape (P, P)
        Row ``s``: the sub-epoch's block indices ``p``, slot by slot.
    bounds : int64 ndarray of shape (P, T + 1)
        Slot ``t`` of sub-epoch ``s`` has ``plan[s, bounds[s, t]:bounds[s, t + 1]]``.
    """
    T = max(1, min(int(n_threads), P))
    sizes = np.diff(offsets).reshape(P, P)
    plan = np.empty((P, P), np.int64)
    bounds = np.zeros((P, T + 1), np.int64)
    for s in range(P):
        load = np.zeros(T, np.int64)
        dealt = [[] for _ in range(T)]
        for p in np.argsort(-sizes[s], kind="stable"):
            t = int(np.argmin(load))
            dealt[t].append(p)
            load[t] += sizes[s, p]
        plan[s] = np.concatenate([np.asarray(d, np.int64) for d in dealt])
        bounds[s, 1:] = np.cumsum([len(d) for d in dealt])
    return plan, bounds


def splitmix64(state):
    """One SplitMix64 step on a Python int: ``(new_state, output)``, both in [0, 2**64)."""
    state = (state + 0x9E3779B97F4A7C15) & _MASK
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return state, z ^ (z >> 31)


def shuffle_block(arrays, start, stop, seed):
    """Fisher-Yates shuffle of ``a[start:stop]`` for every ``a`` in ``arrays``, in place.

    For ``t = n-1, ..., 1`` (``n = stop - start``) it swaps positions ``t`` and
    ``floor(x * (t + 1))``, where ``x = (z >> 11) / 2**53`` in [0, 1) and ``z`` is
    the next SplitMix64 output from ``seed``.
    """
    state = int(seed)
    for t in range(stop - start - 1, 0, -1):
        state, z = splitmix64(state)
        j = int(float(z >> 11) * (1.0 / 9007199254740992.0) * (t + 1))
        for a in arrays:
            a[start + t], a[start + j] = a[start + j], a[start + t]


def epoch_blocks_numpy(u, i, r, offsets, seeds, batch_size, mu, params, m, v, alphas, config):
    """One block-scheduled epoch, in place; NumPy twin of :func:`npmf.sgd._block_kernels.BlockEpochs.run`.

    Parameters
    ----------
    u, i, r : ndarrays of shape (n,)
        Ratings stored block by block (see :func:`block_order`); each block is
        shuffled in place.
    offsets : int ndarray of shape (P*P + 1,)
    seeds : uint64 ndarray of shape (P*P,)
        One shuffle seed per block.
    batch_size, mu, params, m, v, config
        As in :func:`npmf.sgd.optimizers.epoch_numpy`.
    alphas : ndarray of shape (batch_offsets(offsets, batch_size)[-1],)
        Adam's step sizes for the epoch's minibatches, in schedule order.

    Returns
    -------
    float
        Sum of the ratings' loss terms, each before its step.
    """
    first = batch_offsets(offsets, batch_size)
    total = 0.0
    for b in range(len(offsets) - 1):
        start, stop = int(offsets[b]), int(offsets[b + 1])
        shuffle_block((u, i, r), start, stop, seeds[b])
        steps = alphas[first[b] : first[b + 1]]
        total += epoch_numpy(u, i, r, np.arange(start, stop), batch_size, mu, params, m, v, steps, config)
    return total
