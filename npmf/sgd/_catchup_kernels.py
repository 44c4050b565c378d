"""Dense Adam's catch-up in Numba: the per-epoch table and the state the kernels take.

The closed form is :func:`npmf.sgd._formulas.catch_up_row`, its NumPy twin
:func:`npmf.sgd.catchup.catch_up`; ``docs/derivation.md`` (section 8) derives
it. The serial kernel (:mod:`npmf.sgd._dense_kernels`) and the block kernels
(:mod:`npmf.sgd._dense_blocks`) both keep one record per row, ``[p | m | v | sqrt v]``,
and mark each row with the step it was last stepped.
"""

import numba
import numpy as np

from .catchup import catch_up_tables

__all__ = [
    "backward_table_numba",
    "catch_up_state",
]

_jit = numba.njit(cache=True, error_model="numpy", nogil=True)


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
