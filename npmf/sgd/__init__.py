"""The minibatch family: :class:`MatrixFactorization`, trained by Adam (Keras' dense form or lazy) or SGD.

Read in this order: :mod:`~npmf.sgd.gradients` (the loss and its hand-derived
gradients, NumPy), :mod:`~npmf.sgd.optimizers` (one epoch, NumPy),
:mod:`~npmf.sgd._kernels` (the same epoch in Numba), :mod:`~npmf.sgd.blocks`
(block scheduling for many cores, NumPy) and :mod:`~npmf.sgd._block_kernels`
(its Numba kernels), :mod:`~npmf.sgd.model` (the estimator),
:mod:`~npmf.sgd.gradcheck` (finite differences against the gradients).
Stands on :mod:`npmf.core` only.
"""

from .config import SGDConfig
from .model import MatrixFactorization

__all__ = ["MatrixFactorization", "SGDConfig"]
