"""The serial ``sgd``/``lazy_adam`` epoch with its shuffle drawn from a seed, in plain NumPy: the twin.

:func:`epoch_rating_numpy` is the readable reference for the specialised kernels
of :mod:`npmf.sgd._rating_kernels` (:func:`~npmf.sgd._rating_kernels.sgd_per_rating`
and :func:`~npmf.sgd._rating_kernels.batched`); the tests hold them equal to
1e-12 in float64. An epoch is two things:

1. the ratings are shuffled in place by :func:`npmf.sgd.blocks.shuffle_block`
   (Fisher-Yates driven by SplitMix64 from ``seed``, one seed per epoch drawn
   from the model's generator), so the order depends on ``random_state`` only;
2. :func:`npmf.sgd.optimizers.epoch_numpy` trains on them in that order.

:class:`npmf.sgd._kernels.SerialEpochs` hands every epoch a fresh copy of the
ratings in the order the caller gave them, so epoch ``e``'s order depends on its
own seed alone: ``fit`` for two epochs and then ``partial_fit`` for two gives
the same bits as ``fit`` for four.
"""

import numpy as np

from .blocks import shuffle_block
from .optimizers import epoch_numpy

__all__ = ["epoch_rating_numpy"]


def epoch_rating_numpy(u, i, r, seed, batch_size, mu, params, m, v, alphas, config):
    """Shuffle ``u, i, r`` in place from ``seed``, then run one epoch in place; returns the loss sum.

    Arguments as :func:`npmf.sgd.optimizers.epoch_numpy`, with ``seed`` (an
    unsigned 64-bit integer) in place of the permutation. ``config.optimizer``
    is ``"sgd"`` or ``"lazy_adam"``.
    """
    shuffle_block((u, i, r), 0, len(r), seed)
    return epoch_numpy(u, i, r, np.arange(len(r)), batch_size, mu, params, m, v, alphas, config)
