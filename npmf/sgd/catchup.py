r"""Dense Adam at sparse cost: an absent row's steps replayed in closed form (the catch-up), in plain NumPy.

Dense Adam (:func:`npmf.sgd.optimizers.epoch_numpy` with ``"adam"``) moves
every parameter at every step. A row absent from the batches of steps
:math:`\tau+1 \dots \tau+s` has gradient zero there, so its trajectory is fixed
by its state after step :math:`\tau`:

.. math::

    m \leftarrow \beta_1^s m, \quad v \leftarrow \beta_2^s v, \quad
    p \leftarrow p - m F, \quad
    F = \sum_{j=1}^{s} \frac{\alpha_{\tau+j}\,\beta_1^j}{\beta_2^{j/2} x + \epsilon}, \quad x = \sqrt v.

With :math:`1/(a x + \epsilon) = \sum_n (-\epsilon)^n (a x)^{-(n+1)}`,

.. math::

    F = \sum_{n<N} (-\epsilon)^n x^{-(n+1)} G_n(\tau, s), \quad
    G_n(\tau, s) = B_n(\tau) - q_n^s B_n(\tau+s), \quad
    B_n(t) = q_n (\alpha_{t+1} + B_n(t+1)), \quad q_n = \beta_1 \beta_2^{-(n+1)/2}.

:func:`catch_up_tables` builds :math:`B_n`, the powers and the thresholds once
per epoch; :func:`catch_up` replays one row (or any set of elements of the
same :math:`\tau, s`). Where the narrow series (:data:`SERIES_TERMS` terms) is
not safe (:math:`\epsilon` not below :data:`SERIES_RATIO` times
:math:`\beta_2^{s'/2} x`) the wide one (:data:`WIDE_TERMS` terms, up to
:data:`WIDE_RATIO`) takes over; where neither is (or :math:`v = 0`) the element
runs the exact per-step loop instead. Steps further than the
horizon :math:`L` back (:func:`catch_up_horizon`) cannot move a double, so
both forms stop there while :math:`m` and :math:`v` still decay by the full
:math:`\beta^s`. ``docs/derivation.md`` (section 8) derives all of it. The
Numba twin is :func:`npmf.sgd._formulas.catch_up_row`, which takes these
very tables.

Steps are counted within one epoch: a row's state "after ``c`` steps" is
``c = 0 .. n_steps``; ``alphas[c]`` is the step size of step ``c + 1``.
"""

import functools
import math
import warnings

import numpy as np

__all__ = [
    "SERIES_TERMS",
    "SERIES_RATIO",
    "SHORT_TERMS",
    "SHORT_RATIO",
    "WIDE_TERMS",
    "WIDE_RATIO",
    "WIDE_MAX_STEPS",
    "catch_up_horizon",
    "backward_table",
    "catch_up_tables",
    "catch_up",
    "warn_if_dense_adam_is_slow",
]

# Terms of the series, and the largest eps / (beta_2^{s/2} x) at which it is used:
# the truncation error, at most SERIES_RATIO**SERIES_TERMS / (1 - SERIES_RATIO)
# relative to F, is below double rounding (1e-16 < 2**-53).
SERIES_TERMS = 8
SERIES_RATIO = 0.01
# The wide series, for elements whose x is within a factor 1 / SERIES_RATIO of eps: rare rows in large batches
# (their gradients carry 1/B and their v has decayed), which the exact loop would replay step by step up to the
# horizon (about 400 square roots and divisions per element, ~100 times the series' cost). Its truncation,
# WIDE_RATIO**WIDE_TERMS / (1 - WIDE_RATIO) = 2.6e-17 relative to F, is also below double rounding. The table of
# its terms is n_steps x WIDE_TERMS float64, so an epoch of more steps than WIDE_MAX_STEPS (64 MB of table; batch 1 at
# scale) keeps the narrow series alone and the exact loop for these elements.
# Rows whose every element has eps / (beta_2^{s/2} x) within SHORT_RATIO take the series' first SHORT_TERMS terms
# alone: SHORT_RATIO**SHORT_TERMS / (1 - SHORT_RATIO) = 1e-16, the narrow series' own bound. Most rows of the Keras
# recipe qualify (sqrt(v) >= 1e-3 at eps = 1e-7), and the catch-up's latency is its Horner chain.
SHORT_TERMS = 4
SHORT_RATIO = 1e-4
WIDE_TERMS = 32
WIDE_RATIO = 0.3
WIDE_MAX_STEPS = 2**18
# The tail beyond the horizon is kept below this, relative to F.
_TAIL = 2.0**-64


def catch_up_horizon(beta_1, beta_2, n_steps):
    r"""The number of absent steps :math:`L` past which further steps cannot move a double.

    Step :math:`j` of an absent stretch moves the parameter by at most
    :math:`A\,q_0^{j-1}` times the first step's move, with :math:`q_0 = \beta_1/\sqrt{\beta_2}`
    and :math:`A` the largest ratio of two step sizes: :math:`\alpha_t/\eta` lies between
    :math:`\sqrt{1-\beta_2}` and :math:`1/(1-\beta_1)`. The steps after :math:`L` add up to at
    most :math:`A\,q_0^L/(1-q_0)` of the move, kept below :math:`2^{-64}`. When
    :math:`q_0 \ge 1` no horizon exists and ``n_steps`` (the whole epoch) is
    returned, so the exact loop replays every step.
    """
    if beta_1 == 0.0:
        return min(1, n_steps)  # m is zero after one absent step
    if beta_2 == 0.0 or not beta_1 < math.sqrt(beta_2):
        return n_steps
    q0 = beta_1 / math.sqrt(beta_2)
    ratio = 1.0 / ((1.0 - beta_1) * math.sqrt(1.0 - beta_2))
    L = math.ceil((math.log(ratio / (1.0 - q0)) - math.log(_TAIL)) / -math.log(q0)) + 1
    return int(min(L, n_steps))


def backward_table(alphas, q):
    r"""The recursion :math:`B_n(c) = q_n (\alpha_{c+1} + B_n(c+1))`, :math:`B_n(n_{steps}) = 0`, over ``c`` backwards.

    NumPy twin of :func:`npmf.sgd._kernels.backward_table_numba`. Every term is
    a positive sum of step sizes times powers below one, so it is well scaled.
    """
    B = np.zeros((len(alphas) + 1, len(q)))
    for c in range(len(alphas) - 1, -1, -1):
        B[c] = q * (alphas[c] + B[c + 1])
    return B


def catch_up_tables(alphas, beta_1, beta_2, epsilon, backward=backward_table):
    r"""The per-epoch tables of the catch-up; computed in NumPy and handed to the kernel.

    Parameters
    ----------
    alphas : float64 ndarray of shape (n_steps,)
        This epoch's step sizes (:func:`npmf.sgd.optimizers.adam_step_sizes`).
    beta_1, beta_2, epsilon : float
    backward : callable
        :func:`backward_table` or its Numba twin, which the kernel's caller passes.

    Returns
    -------
    B : ndarray (n_steps + 1, T)
        :math:`B_n(c)`, with :math:`B_n(n_{steps}) = 0`; a step's first
        ``SERIES_TERMS`` terms share a cache line. ``T`` is :data:`WIDE_TERMS`,
        or :data:`SERIES_TERMS` for epochs of more than :data:`WIDE_MAX_STEPS` steps.
    Q : ndarray (L + 1, T)
        :math:`q_n^{s}` for :math:`s \le L`.
    P1, P2 : ndarray (n_steps + 1,)
        :math:`\beta_1^s` and :math:`\beta_2^s`.
    thr : ndarray (L + 1, 3)
        The smallest :math:`x` at which the narrow series (column 0, its first
        ``SERIES_TERMS`` terms), the wide one (column 1, all ``T``) and the
        short one (column 2, ``SHORT_TERMS`` terms, for a row whose elements
        all reach it) are used for a stretch of :math:`s` steps (``inf`` where one never is).
    """
    B = backward(np.asarray(alphas, np.float64), _ratios(beta_1, beta_2, len(alphas)))
    return (B, *_static_tables(beta_1, beta_2, epsilon, len(alphas)))


def _ratios(beta_1, beta_2, n_steps):
    n = np.arange(WIDE_TERMS if n_steps <= WIDE_MAX_STEPS else SERIES_TERMS)
    return beta_1 * beta_2 ** (-(n + 1) / 2.0)


@functools.lru_cache(maxsize=2)
def _static_tables(beta_1, beta_2, epsilon, n_steps):
    """The tables of :func:`catch_up_tables` that depend on no step size (``Q, P1, P2, thr``), kept across epochs.

    Every epoch of a fit has the same ``n_steps`` (but perhaps the last), so an
    epoch computes only its :math:`B_n`. Nothing writes these arrays.
    """
    L = catch_up_horizon(beta_1, beta_2, n_steps)
    q = _ratios(beta_1, beta_2, n_steps)
    s = np.arange(L + 1)
    Q = q[None, :] ** s[:, None]
    steps = np.arange(n_steps + 1)
    P1, P2 = beta_1**steps, beta_2**steps
    thr = np.full((L + 1, 3), np.inf)
    for col, terms, ratio in (
        (0, SERIES_TERMS, SERIES_RATIO),
        (1, WIDE_TERMS, WIDE_RATIO),
        (2, SHORT_TERMS, SHORT_RATIO),
    ):
        if len(q) < terms or not q[terms - 1] < 1.0:
            continue  # the series of these terms diverges (or is not tabulated): the exact loop
        if epsilon > 0.0:
            thr[:, col] = epsilon / (ratio * np.sqrt(beta_2) ** s)
        else:
            thr[:, col] = 0.0  # eps = 0: one term, exact; only x = 0 falls back
    return Q, P1, P2, thr


def _horner(G, y):
    r""":math:`G_0 + y(G_1 + y(G_2 + \dots))` over the terms ``G``, in the kernel's order."""
    acc = np.full(y.shape, G[-1])
    for g_n in G[-2::-1]:
        acc = g_n + y * acc
    return acc


def catch_up(p, m, v, tau, s, tables, alphas, beta_1, beta_2, epsilon):
    """Replay ``s`` absent steps after step ``tau`` on the elements ``p, m, v`` (1-D arrays), in place.

    NumPy twin of :func:`npmf.sgd._formulas.catch_up_row`. ``tables`` is
    :func:`catch_up_tables` of the epoch's ``alphas``.
    """
    if s == 0:
        return
    B, Q, P1, P2, thr = tables
    L = Q.shape[0] - 1
    s_ = min(s, L)
    G = B[tau] - Q[s_] * B[tau + s_]
    m0, v0 = m.astype(np.float64), v.astype(np.float64)
    x = np.sqrt(v0)
    if thr[s_, 0] > 0 and np.all(x >= thr[s_, 0]):
        # Every element takes the narrow series: the kernel's one loop over the row, short when all reach thr[s', 2].
        inv = 1.0 / x
        terms = SHORT_TERMS if np.all(x >= thr[s_, 2]) else SERIES_TERMS
        p[...] = p - m0 * _horner(G[:terms], -epsilon * inv) * inv
        m[...] = m0 * P1[s]
        v[...] = v0 * P2[s]
        return
    narrow = (x > 0) & (x >= thr[s_, 0]) & (m0 != 0)
    wide = (x > 0) & (x >= thr[s_, 1]) & (m0 != 0) & ~narrow
    for safe, terms in ((narrow, G[:SERIES_TERMS]), (wide, G)):
        inv = 1.0 / x[safe]
        p[safe] = p[safe] - m0[safe] * _horner(terms, -epsilon * inv) * inv
    for e in np.flatnonzero(~narrow & ~wide & (m0 != 0)):
        # The exact loop: dense Adam's step with g = 0, as adam_update writes it.
        pe, me, ve = float(p[e]), m0[e], v0[e]
        for j in range(s_):
            me = me + (0.0 - me) * (1.0 - beta_1)
            ve = ve + (0.0 - ve) * (1.0 - beta_2)
            pe = pe - (me * alphas[tau + j]) / (math.sqrt(ve) + epsilon)
        p[e] = pe
    m[...] = m0 * P1[s]
    v[...] = v0 * P2[s]


# Dense Adam's catch-up replays a row's absent steps by a series that costs a few
# flops per element. Where the series cannot be used (beta_1 >= beta_2 ** (SERIES_TERMS / 2),
# so q_n >= 1: then every element replays its absent steps one by one, up to the
# horizon) an epoch costs up to this many per-step updates before it warns
# (about a minute on one core at ~2e8 updates/s).
DENSE_ADAM_WARN_UPDATES = 1e10


def warn_if_dense_adam_is_slow(config, n_rows, n_batches):
    """Warn when dense Adam's catch-up must replay absent steps one by one and that would be enormous.

    With the usual betas the catch-up is a closed form and dense ``adam`` costs
    about what ``lazy_adam`` does, so it does not warn. ``n_rows`` is M + N.
    """
    if config.optimizer != "adam" or config.beta_1 < config.beta_2 ** (SERIES_TERMS / 2):
        return
    per_step = n_rows * (config.n_factors + config.biases)
    horizon = catch_up_horizon(config.beta_1, config.beta_2, n_batches)
    updates = min(per_step, config.batch_size * 2 * (config.n_factors + 1)) * n_batches * horizon
    if updates > DENSE_ADAM_WARN_UPDATES:
        warnings.warn(
            f"optimizer='adam' with beta_1={config.beta_1} >= beta_2 ** {SERIES_TERMS // 2} cannot replay absent rows "
            f"in closed form: up to {updates:.1e} per-step updates per epoch, which will be very slow. "
            "Use optimizer='lazy_adam', which updates only the rows in each batch and runs on all cores "
            "(or a smaller beta_1).",
            UserWarning,
            stacklevel=4,
        )
