"""Dense Adam's catch-up in Numba: the per-epoch table, and the row catch-ups of the serial and block kernels.

The closed form is :func:`npmf.sgd._formulas.catch_up_row`, its NumPy twin
:func:`npmf.sgd.catchup.catch_up`; ``docs/derivation.md`` (section 8) derives
it. The serial kernel (:mod:`npmf.sgd._dense_kernels`) and the block kernel
(:mod:`npmf.sgd._block_kernels`) both keep one record per row; the block
kernel uses :func:`catch_up_record` here. Both mark each row with the step it was last stepped.
"""

import numba
import numpy as np

from ._formulas import catch_up_row
from .catchup import catch_up_tables

__all__ = [
    "backward_table_numba",
    "catch_up_state",
    "NO_CATCH_UP",
    "catch_up_record",
    "flush_records",
]

_jit = numba.njit(cache=True, error_model="numpy", nogil=True)
# The per-row catch-ups are spliced into the calling kernels (no call, no tuple of arrays passed per row).
_inline = numba.njit(inline="always", error_model="numpy", nogil=True)


@_jit
def backward_table_numba(alphas, q):
    """Numba twin of :func:`npmf.sgd.catchup.backward_table`: the catch-up's per-epoch table :math:`B_n`."""
    B = np.zeros((alphas.shape[0] + 1, q.shape[0]))
    for c in range(alphas.shape[0] - 1, -1, -1):
        for n in range(q.shape[0]):
            B[c, n] = q[n] * (alphas[c] + B[c + 1, n])
    return B


def catch_up_state(alphas, config):
    """Dense Adam's catch-up tables and scalars for an epoch of step sizes ``alphas``, as the kernels take them.

    ``(B, Q, P1, P2, thr, G, alphas, 1 - beta_1, 1 - beta_2, epsilon)``, all
    float64: :func:`npmf.sgd.catchup.catch_up_tables` (with the Numba
    recursion), a scratch ``G`` of one slot per tabulated term and a flag, and the step sizes.
    """
    alphas64 = np.asarray(alphas, np.float64)
    tables = catch_up_tables(alphas64, config.beta_1, config.beta_2, config.epsilon, backward_table_numba)
    return (
        *tables,
        np.empty(tables[0].shape[1] + 1),
        alphas64,
        1.0 - config.beta_1,
        1.0 - config.beta_2,
        float(config.epsilon),
    )


# The catch-up's tables for the optimisers that need none (same types, empty).
NO_CATCH_UP = (
    np.zeros((1, 0)),
    np.zeros((1, 0)),
    np.zeros(1),
    np.zeros(1),
    np.zeros((1, 2)),
    np.zeros(1),
    np.zeros(1),
    0.0,
    0.0,
    0.0,
)


@_inline
def catch_up_record(X, x, stamp, tag0, c, n_trained, s, cu, G):
    """Bring record ``x`` of ``X``, last stepped at global step ``stamp[x] + 1``, up to epoch step ``c``.

    A stamp from before this epoch (``< tag0``) means the row was flushed to the
    epoch's start. Parameters at 0, ``m`` at ``2s``, ``v`` at ``3s``.
    """
    last = stamp[x] - tag0 + 1 if stamp[x] >= tag0 else 0
    if c > last:
        B, Q, P1, P2, thr, _, alphas64, d1, d2, eps64 = cu
        catch_up_row(X, 0, X, 2 * s, X, 3 * s, x, n_trained, last, c - last, B, Q, P1, P2, thr, G, alphas64, d1, d2,
                     eps64)  # fmt: skip


@numba.njit(cache=True, error_model="numpy", nogil=True, _nrt=False)
def _flush_range(X, lo, hi, stamp, tag0, n_steps, n_trained, s, cu, G):
    """:func:`catch_up_record` on records ``lo:hi`` of ``X``; allocates nothing, so runs without reference counting."""
    for x in range(lo, hi):
        catch_up_record(X, x, stamp, tag0, n_steps, n_trained, s, cu, G)


@numba.njit(cache=True, error_model="numpy", nogil=True, parallel=True)
def _flush_records(X, stamp, tag0, n_steps, n_trained, s, cu, Gs):
    """The records in ``len(Gs)`` contiguous ranges, one per thread (``Gs[t]`` its scratch); rows are independent."""
    T = Gs.shape[0]
    n = X.shape[0]
    for t in numba.prange(T):
        _flush_range(X, t * n // T, (t + 1) * n // T, stamp, tag0, n_steps, n_trained, s, cu, Gs[t])


def flush_records(records, stamps, tag0, n_steps, biases, cu, Gs=None):
    """Catch every record of the block kernel's ``records`` (users, items) up to the end of the epoch.

    Records have four segments of ``s = k + 1`` (parameters, gradient, ``m``,
    ``v``); ``stamps`` the global step each row was last stepped, ``tag0`` the
    epoch's first, ``n_steps`` the epoch's number of steps. ``Gs`` (float64, one row of
    ``cu[0].shape[1] + 1`` per thread) is the scratch; the rows are split among its rows' threads
    (run it under :func:`npmf.core.threads.numba_threads`). Which thread catches a row up changes no result.
    """
    s = records[0].shape[1] // 4
    if Gs is None:
        Gs = np.empty((1, cu[0].shape[1] + 1))
    for X, stamp in zip(records, stamps, strict=True):
        _flush_records(X, stamp, tag0, n_steps, s if biases else s - 1, s, cu, Gs)
