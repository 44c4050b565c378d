r"""One epoch of minibatch training, in plain NumPy: the twin of the Numba kernel.

:func:`epoch_numpy` is the readable reference for :func:`npmf.sgd._kernels.epoch_numba`;
the tests hold the two equal to 1e-12 in float64. It walks a shuffled
permutation of the ratings in minibatches of ``batch_size`` (the last one may be
smaller), computes the residuals and the gradients of
:mod:`npmf.sgd.gradients` with the parameters as they were before the step, then
applies one of three updates. ``docs/derivation.md`` (section 4) derives them.

Adam, as Keras 3 writes it (``keras/src/optimizers/adam.py``), at step
:math:`t = 1, 2, \dots` counted over the whole fit:

.. math::

    \alpha_t = \eta \frac{\sqrt{1 - \beta_2^t}}{1 - \beta_1^t}, \quad
    m \mathrel{+}= (g - m)(1 - \beta_1), \quad
    v \mathrel{+}= (g^2 - v)(1 - \beta_2), \quad
    \theta \mathrel{-}= \frac{\alpha_t\, m}{\sqrt{v} + \epsilon}.

This is the textbook bias-corrected Adam with :math:`\epsilon` applied
outside the bias correction (:math:`\hat\epsilon = \epsilon\sqrt{1-\beta_2^t}`).

``"adam"`` (dense, what Keras does): every parameter's moments decay and every
parameter moves on every step, including rows not in the batch, whose gradient
is zero. Cost per step: :math:`O((M+N)k)`.

``"lazy_adam"``: only the rows present in the batch are updated; absent rows
keep their moments and their values. The step count :math:`t` is the global
one, so :math:`\alpha_t` is the same as in dense Adam (TF-Addons' LazyAdam and
PyTorch's SparseAdam do the same). Cost per step: :math:`O(Bk)`.

``"sgd"``: :math:`\theta \mathrel{-}= \eta g`; rows absent from the batch
have :math:`g = 0` and do not move, so it is naturally :math:`O(Bk)`.

``non_negative=True`` (Keras' ``NonNeg`` constraint on both embeddings): after
every step, whatever the optimiser, all of :math:`W` and :math:`H` are projected
onto :math:`\ge 0`, :math:`\theta \leftarrow \max(\theta, 0)`
(:func:`project_rows`); the biases and Adam's moments are not. This is the plain
definition the kernels are held to; they project only the rows that can have
moved (``docs/derivation.md``, section 10, says why that is the same).
"""

import numpy as np

from .config import OPTIMIZERS
from .gradients import errors, gradients

__all__ = ["OPTIMIZERS", "adam_step_sizes", "adam_update", "epoch_numpy", "project_factors", "project_rows"]


def adam_step_sizes(t0, n_steps, learning_rate, beta_1, beta_2):
    r"""Adam's bias-corrected step sizes :math:`\alpha_t` for ``t = t0+1 .. t0+n_steps``.

    Computed once in NumPy and handed to the kernel, so the NumPy twin and the
    kernel use the very same numbers.

    Returns
    -------
    ndarray of shape (n_steps,), float64
    """
    t = np.arange(t0 + 1, t0 + n_steps + 1, dtype=np.float64)
    return learning_rate * np.sqrt(1.0 - beta_2**t) / (1.0 - beta_1**t)


def adam_update(p, g, m, v, alpha, beta_1, beta_2, epsilon):
    """Keras' Adam update, in place, on arrays (or rows of arrays) ``p, m, v``."""
    m += (g - m) * (1.0 - beta_1)
    v += (g * g - v) * (1.0 - beta_2)
    p -= (m * alpha) / (np.sqrt(v) + epsilon)


def project_rows(p, rows=slice(None)):
    r"""Keras' ``NonNeg``: :math:`p \leftarrow \max(p, 0)` on rows ``rows`` of ``p``, in place (NaN stays NaN)."""
    p[rows] = np.maximum(p[rows], 0)


def project_factors(config, W, H):
    """With ``config.non_negative``, :func:`project_rows` on all of ``W`` and ``H``: at an epoch's end."""
    if config.non_negative:
        project_rows(W)
        project_rows(H)


def epoch_numpy(u, i, r, perm, batch_size, mu, params, m, v, alphas, config):
    """Run one epoch in place; NumPy twin of :func:`npmf.sgd._kernels.epoch_numba`.

    Parameters
    ----------
    u, i : int ndarray of shape (n,)
        Row indices of each rating's user and item.
    r : float ndarray of shape (n,)
    perm : int ndarray of shape (n,)
        The order in which the ratings are visited this epoch.
    batch_size : int
    mu : float
        Global mean added to every prediction (0 without biases).
    params : list [W, H, bu, bi]
        Updated in place.
    m, v : lists shaped like ``params``
        Adam's first and second moments, updated in place (unused by SGD).
    alphas : ndarray of shape (n_batches,)
        Adam step sizes for this epoch's steps (:func:`adam_step_sizes`).
    config : SGDConfig
        Reads ``optimizer``, ``learning_rate``, ``beta_1``, ``beta_2``,
        ``epsilon``, ``reg``, ``biases`` (whether ``bu`` and ``bi`` are trained)
        and ``non_negative`` (project ``W`` and ``H`` after every step).

    Returns
    -------
    float
        Sum over the epoch's ratings of each rating's loss term, taken before
        its step. Divided by ``n`` it is the loss Keras reports for the epoch
        (its batch-size-weighted mean of minibatch losses).
    """
    W, H, bu, bi = params
    n_trained = 4 if config.biases else 2
    total = 0.0
    for b, start in enumerate(range(0, len(perm), batch_size)):
        j = perm[start : start + batch_size]
        ub, ib, rb = u[j], i[j], r[j]
        e = errors(W, H, bu, bi, mu, ub, ib, rb)
        penalty = (W[ub] ** 2).sum(1) + (H[ib] ** 2).sum(1) + bu[ub] ** 2 + bi[ib] ** 2
        total += float(np.sum(e * e + config.reg * penalty))
        grads = gradients(W, H, bu, bi, ub, ib, e, config.reg)
        touched = [np.unique(ub), np.unique(ib)] * 2
        for q in range(n_trained):
            _apply(config, params[q], grads[q], m[q], v[q], alphas[b], touched[q])
        if config.non_negative:
            project_rows(W)
            project_rows(H)
    return total


def _apply(config, p, g, m, v, alpha, rows):
    opt = config.optimizer
    if opt == "adam":
        adam_update(p, g, m, v, alpha, config.beta_1, config.beta_2, config.epsilon)
    elif opt == "lazy_adam":
        pr, mr, vr = p[rows], m[rows], v[rows]
        adam_update(pr, g[rows], mr, vr, alpha, config.beta_1, config.beta_2, config.epsilon)
        p[rows], m[rows], v[rows] = pr, mr, vr
    else:
        p[rows] -= config.learning_rate * g[rows]


class StepSizes:
    """Adam's step sizes of a run of epochs, computed in long stretches and handed out epoch by epoch.

    ``StepSizes(config, per_epoch, dtype)(t0)`` is
    ``adam_step_sizes(t0, per_epoch, ...)`` in ``dtype``, the very same
    numbers (each is a function of its own ``t``), but the powers are taken
    for up to ``config.epochs`` epochs at a time (at most ``2**16`` values
    beyond one epoch's), not once per epoch: with NumPy's per-call overhead that
    was 0.2 ms of a 3 ms epoch on ML-100k at batch 32.
    """

    def __init__(self, config, per_epoch, dtype):
        self.config, self.per_epoch, self.dtype = config, per_epoch, np.dtype(dtype)
        self.t_first, self.table = 0, np.empty(0, self.dtype)

    def __call__(self, t0):
        start = t0 - self.t_first
        if start < 0 or start + self.per_epoch > len(self.table):
            c = self.config
            n = max(self.per_epoch, min(c.epochs * self.per_epoch, self.per_epoch + (1 << 16)))
            self.t_first, start = t0, 0
            self.table = adam_step_sizes(t0, n, c.learning_rate, c.beta_1, c.beta_2).astype(self.dtype)
        return self.table[start : start + self.per_epoch]
