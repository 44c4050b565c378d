"""Numba kernels: one epoch of shuffled-minibatch training, and prediction.

Each kernel computes the same numbers as its plain-NumPy twin
(:func:`npmf.sgd.optimizers.epoch_numpy`, :func:`npmf.sgd.gradients.predict`), in the
same order, and the tests hold them equal. The formulas are derived in
:mod:`npmf.sgd.gradients`, :mod:`npmf.sgd.optimizers` and ``docs/derivation.md``,
and written once, for this kernel and the block kernel alike, in
:mod:`npmf.sgd._formulas` (the prediction in :mod:`npmf.core._kernels`).

Everything random (the permutation) is drawn in Python and passed in; the
kernels read no mutable globals, so they are cached on disk (``cache=True``).
``error_model="numpy"`` lets a division by zero give inf/nan instead of raising,
and keeps the check out of the hot loops (Adam divides by ``sqrt(v) + eps > 0``).
"""

import numba
import numpy as np

from ..core.threads import ahead
from . import _rating_kernels
from ._block_data import _CHUNK
from ._dense_kernels import dense_epoch_numba
from ._formulas import (
    adam_scalar,
    bias_gradient,
    factor_gradient,
    list_row,
    loss_term,
    penalty,
    project,
    project_listed,
    project_row,
    residual,
    sgd_scalar,
)
from .config import OPTIMIZERS
from .optimizers import adam_step_sizes, project_factors

__all__ = ["epoch_numba", "SerialEpochs", "OPTIMIZER_CODES"]

OPTIMIZER_CODES = {name: code for code, name in enumerate(OPTIMIZERS)}
_ADAM, _LAZY, _SGD = (OPTIMIZER_CODES[name] for name in ("adam", "lazy_adam", "sgd"))

# Up to this many model rows (M + N) per rating of a batch, dense Adam in the serial kernel runs the plain loop over
# all parameters (the reference's own arithmetic) instead of the catch-up, the same algorithm to rounding. The loop
# costs ~2 ns per parameter and step, the catch-up ~60 ns per row a batch touches plus the lazy epoch's work: they
# crossed near 20 rows per rating at k = 3. The Keras recipe has 82 (2,625 rows, batch 32; benchmarks/keras_bounds.py).
# Since the record-layout kernel (npmf.sgd._dense_kernels) the catch-up costs ~25 ns per row; not re-tuned since.
DENSE_LOOP_ROWS = 16

# The epoch kernels run without Numba's reference counting (``_nrt=False``; they allocate nothing, the caller passes
# the scratch): with it, the array arguments of inlined helpers that branch (list_row, the catch-up) cost atomic
# increments and decrements per call that Numba's pruning left in: 18 ms against 1.7 ms for the recipe's ratings.
_jit = numba.njit(cache=True, error_model="numpy", nogil=True, _nrt=False)
_inline = numba.njit(inline="always", error_model="numpy", nogil=True)


@_jit
def _adam_dense(p, g, m, v, alpha, c1, c2, epsilon):
    """Keras' Adam on every element of the flat arrays ``p, g, m, v``.

    The cost of dense Adam is this loop, run on all (M + N)k parameters at every
    step. It is kept branch-free over contiguous memory so LLVM vectorises it.
    ``c1 = 1 - beta_1`` and ``c2 = 1 - beta_2``; every scalar comes in ``p``'s
    dtype, so float32 factors are updated in float32 arithmetic (twice the
    vector width), not promoted to float64 and rounded back. The step itself is
    :func:`npmf.sgd._formulas.adam_scalar`.
    """
    for j in range(p.shape[0]):
        pj, mj, vj = adam_scalar(p[j], g[j], m[j], v[j], alpha, c1, c2, epsilon)
        m[j] = mj
        v[j] = vj
        p[j] = pj


@_jit
def _adam_rows(p, g, m, v, rows, n_rows, alpha, c1, c2, epsilon):
    """Keras' Adam on rows ``rows[:n_rows]`` of the 2-D arrays ``p, g, m, v``."""
    for a in range(n_rows):
        row = rows[a]
        for f in range(p.shape[1]):
            pj, mj, vj = adam_scalar(p[row, f], g[row, f], m[row, f], v[row, f], alpha, c1, c2, epsilon)
            m[row, f] = mj
            v[row, f] = vj
            p[row, f] = pj


@_jit
def _sgd_rows(p, g, rows, n_rows, learning_rate):
    """Plain SGD (:func:`npmf.sgd._formulas.sgd_scalar`) on rows ``rows[:n_rows]`` of the 2-D arrays ``p, g``."""
    for a in range(n_rows):
        row = rows[a]
        for f in range(p.shape[1]):
            p[row, f] = sgd_scalar(p[row, f], g[row, f], learning_rate)


@_jit
def _zero_rows(g, rows, n_rows):
    for a in range(n_rows):
        g[rows[a], :] = 0.0


@_jit
def _update(opt, p, g, m, v, rows, n_rows, alpha, lr, c1, c2, epsilon, nn):
    """Apply one optimiser step to rows ``rows[:n_rows]`` of ``p`` (2-D) and clear their gradient rows.

    Adam (dense, whose absent rows are caught up, or lazy) steps the rows of the batch; else plain SGD.
    With ``nn`` (``non_negative``, factors only) the rows stepped are projected.
    """
    if opt == _ADAM or opt == _LAZY:
        _adam_rows(p, g, m, v, rows, n_rows, alpha, c1, c2, epsilon)
    else:
        _sgd_rows(p, g, rows, n_rows, lr)
    project_listed(p, rows, n_rows, p.shape[1], nn)
    _zero_rows(g, rows, n_rows)


@_inline
def _rating(j, u, i, r, mu, W, H, bu, bi, gW, gH, gbu, gbi, k, c, reg):
    """Rating ``j``'s term of the loss, and its gradients (times ``c = 2 / B``) added to ``gW, gH, gbu, gbi``.

    The residual is taken once; it feeds the loss and all gradients. Every
    kernel of this module runs its ratings through this one helper.
    """
    uu = u[j]
    ii = i[j]
    e = residual(mu, bu[uu, 0], bi[ii, 0], W, uu, H, ii, k, r, j)
    term = loss_term(e, reg, penalty(W, uu, H, ii, k, bu[uu, 0], bi[ii, 0], 0.0))
    for f in range(k):
        gW[uu, f] += c * factor_gradient(e, H[ii, f], reg, W[uu, f])
        gH[ii, f] += c * factor_gradient(e, W[uu, f], reg, H[ii, f])
    gbu[uu, 0] += c * bias_gradient(e, reg, bu[uu, 0])
    gbi[ii, 0] += c * bias_gradient(e, reg, bi[ii, 0])
    return term


@_jit
def _epoch(u, i, r, batch_size, mu, W, H, bu, bi, mW, mH, mbu, mbi, vW, vH, vbu, vbi, gW, gH, gbu, gbi, alphas, opt,
           lr, c1, c2, epsilon, reg, fit_bias, rows_u, rows_i, stamp_u, stamp_i, nn):  # fmt: skip
    """One epoch of ``lazy_adam`` or ``sgd`` in place over ratings already in visiting order; see :func:`epoch_numba`.

    ``bu``, ``bi`` and their state/gradients come as ``(M, 1)`` and ``(N, 1)``
    views so that one set of row routines serves all four blocks, each array
    as its own argument. Each batch takes every gradient at the old parameters
    (:func:`_rating`), then steps the rows it listed. The loss's squared norms
    are summed from the Python float ``0.0``, so in float64 even for float32 factors.
    """
    n = r.shape[0]
    k = W.shape[1]
    total = 0.0
    for b in range((n + batch_size - 1) // batch_size):
        start = b * batch_size
        stop = min(start + batch_size, n)
        c = 2.0 / (stop - start)
        nu = 0
        ni = 0
        for j in range(start, stop):
            nu = list_row(stamp_u, u[j], b, rows_u, nu)
            ni = list_row(stamp_i, i[j], b, rows_i, ni)
            project_row(W, u[j], k, nn and b > 0)  # non_negative: Keras clips every row after every step (part 9)
            project_row(H, i[j], k, nn and b > 0)
            total += _rating(j, u, i, r, mu, W, H, bu, bi, gW, gH, gbu, gbi, k, c, reg)
        alpha = alphas[b]
        _update(opt, W, gW, mW, vW, rows_u, nu, alpha, lr, c1, c2, epsilon, nn)
        _update(opt, H, gH, mH, vH, rows_i, ni, alpha, lr, c1, c2, epsilon, nn)
        if fit_bias:
            _update(opt, bu, gbu, mbu, vbu, rows_u, nu, alpha, lr, c1, c2, epsilon, False)
            _update(opt, bi, gbi, mbi, vbi, rows_i, ni, alpha, lr, c1, c2, epsilon, False)
        else:
            _zero_rows(gbu, rows_u, nu)
            _zero_rows(gbi, rows_i, ni)
    return total


@_jit
def _loop_epoch(u, i, r, batch_size, mu, W, H, bu, bi, mW, mH, mbu, mbi, vW, vH, vbu, vbi, gW, gH, gbu, gbi, alphas,
                c1, c2, epsilon, reg, fit_bias, rows_u, rows_i, stamp_u, stamp_i, nn):  # fmt: skip
    """One epoch of dense ``adam`` as the plain loop: every parameter moves at every step (:func:`_adam_dense`).

    The reference's own arithmetic, over flat contiguous views so that LLVM
    vectorises it; for small models (:data:`DENSE_LOOP_ROWS`). Otherwise as
    :func:`_epoch`, which it was split from so that neither carries the
    other's branches.
    """
    n = r.shape[0]
    k = W.shape[1]
    W1, gW1, mW1, vW1 = W.reshape(W.size), gW.reshape(W.size), mW.reshape(W.size), vW.reshape(W.size)
    H1, gH1, mH1, vH1 = H.reshape(H.size), gH.reshape(H.size), mH.reshape(H.size), vH.reshape(H.size)
    bu1, gbu1, mbu1, vbu1 = bu.reshape(bu.size), gbu.reshape(bu.size), mbu.reshape(bu.size), vbu.reshape(bu.size)
    bi1, gbi1, mbi1, vbi1 = bi.reshape(bi.size), gbi.reshape(bi.size), mbi.reshape(bi.size), vbi.reshape(bi.size)
    total = 0.0
    for b in range((n + batch_size - 1) // batch_size):
        start = b * batch_size
        stop = min(start + batch_size, n)
        c = 2.0 / (stop - start)
        nu = 0
        ni = 0
        for j in range(start, stop):
            nu = list_row(stamp_u, u[j], b, rows_u, nu)
            ni = list_row(stamp_i, i[j], b, rows_i, ni)
            total += _rating(j, u, i, r, mu, W, H, bu, bi, gW, gH, gbu, gbi, k, c, reg)
        alpha = alphas[b]
        _adam_dense(W1, gW1, mW1, vW1, alpha, c1, c2, epsilon)
        _adam_dense(H1, gH1, mH1, vH1, alpha, c1, c2, epsilon)
        if nn:  # non_negative: every factor, every step
            for q in range(W1.size):
                W1[q] = project(W1[q], nn)
            for q in range(H1.size):
                H1[q] = project(H1[q], nn)
        _zero_rows(gW, rows_u, nu)
        _zero_rows(gH, rows_i, ni)
        if fit_bias:
            _adam_dense(bu1, gbu1, mbu1, vbu1, alpha, c1, c2, epsilon)
            _adam_dense(bi1, gbi1, mbi1, vbi1, alpha, c1, c2, epsilon)
        _zero_rows(gbu, rows_u, nu)
        _zero_rows(gbi, rows_i, ni)
    return total


def _col(a):
    return a.reshape(-1, 1)


def epoch_numba(u, i, r, perm, batch_size, mu, params, m, v, alphas, config, grads=None, dense_loop=False):
    """Run one epoch in place with the Numba kernel; same contract as
    :func:`npmf.sgd.optimizers.epoch_numpy`.

    ``perm=None`` takes ``u, i, r`` as already in visiting order (as
    :class:`SerialEpochs` gathers them, ahead, on the second core).
    ``grads`` may be a list of zero arrays shaped like ``params`` to reuse across
    epochs (they are left zero); it is allocated when omitted. ``dense_loop``
    runs dense ``adam`` as the plain loop over every parameter instead of the
    catch-up (the same algorithm; faster for small models, :data:`DENSE_LOOP_ROWS`).
    """
    W, H, bu, bi = params
    if perm is not None:
        # Gather in visiting order first: the kernel then streams through memory
        # instead of jumping through the permutation (twice as fast on ML-100k).
        u, i, r = u[perm], i[perm], r[perm]
    if config.optimizer == "adam" and not dense_loop:
        total = dense_epoch_numba(u, i, r, batch_size, mu, params, m, v, alphas, config)
        project_factors(config, W, H)
        return total
    if grads is None:
        grads = [np.zeros_like(p) for p in params]
    # Step scalars in the factors' dtype (1 - beta computed exactly as the twin does).
    ft = W.dtype.type
    c1, c2, eps = ft(1.0 - config.beta_1), ft(1.0 - config.beta_2), ft(config.epsilon)
    arrays = (
        u, i, r, int(batch_size), float(mu), W, H, _col(bu), _col(bi), m[0], m[1], _col(m[2]),
        _col(m[3]), v[0], v[1], _col(v[2]), _col(v[3]), grads[0], grads[1], _col(grads[2]), _col(grads[3]),
        alphas.astype(W.dtype, copy=False),
    )  # fmt: skip
    # The kernels' scratch: the rows each batch lists, and stamp[x] == b marking row x as listed for batch b.
    scratch = (np.empty(batch_size, np.int64), np.empty(batch_size, np.int64), np.full(len(W), -1, np.int64),
               np.full(len(H), -1, np.int64))  # fmt: skip
    opt = OPTIMIZER_CODES[config.optimizer]
    fit_bias, nn = bool(config.biases), bool(config.non_negative)
    if opt == _ADAM and dense_loop:
        total = _loop_epoch(*arrays, c1, c2, eps, float(config.reg), fit_bias, *scratch, nn)
    else:
        total = _epoch(*arrays, opt, ft(config.learning_rate), c1, c2, eps, float(config.reg), fit_bias, *scratch, nn)
    project_factors(config, W, H)
    return total


class SerialEpochs:
    """The serial epoch behind the interface of :class:`npmf.sgd._block_kernels.BlockEpochs`.

    ``adam`` runs :func:`epoch_numba` over the ratings gathered through a
    permutation drawn in NumPy. ``sgd`` and ``lazy_adam`` run the kernels
    specialised for them (:mod:`npmf.sgd._rating_kernels`) over a copy of the
    ratings, in the order given, shuffled from one seed per epoch
    (:func:`npmf.sgd._rating_kernels.shuffled_copy`); their twin is
    :func:`npmf.sgd.rating_epochs.epoch_rating_numpy`.

    An epoch's order depends only on its draws from the model's generator (the
    seed, or the permutation), never on the parameters. So with two threads
    (``config.n_threads >= 2``) the next epoch's ratings are prepared on the
    second core (:func:`npmf.core.threads.ahead`) while this epoch trains: from
    a copy of the generator, into a second buffer, never past the fit's last
    epoch. The next :meth:`run` takes them if the generator is still in the
    state they were drawn from (nothing else draws from it between epochs), and
    puts the generator in the state the draw left its copy in: the same draws,
    the same generator after every epoch, the same bits as one thread.

    It trains the model's arrays in place and keeps no copy of them: a
    diverged epoch fails the call, and the model's transaction
    (:func:`npmf.sgd.state.transaction`) puts back the arrays from before it.
    """

    def __init__(self, u, i, r, params, m, v, config):
        self.params, self.m, self.v, self.config = params, m, v, config
        self.specialised = config.optimizer in ("sgd", "lazy_adam")
        self.n_batches = -(-len(r) // config.batch_size)
        if self.specialised:
            # Each epoch copies the ratings in the order given and shuffles the copy (cheaper than a gather through
            # a permutation), so epoch e's order depends on its seed alone and two calls of partial_fit give the
            # same bits as one fit with their epochs. Unsigned codes: a row index needs no test for a negative one.
            self.u0, self.i0 = np.array(u, np.uint32), np.array(i, np.uint32)
            self.r0 = np.array(r, np.dtype(config.dtype))
            self._epoch = _rating_kernels.prepare(len(r), params, m, v, config)
        else:
            # The ratings in the factors' dtype, as the specialised kernels take them: float32 factors are then
            # trained in float32 arithmetic throughout (the residual too, which float64 ratings made float64).
            self.u0, self.i0, self.r0 = u, i, np.asarray(r, np.dtype(config.dtype))
            self.grads = [np.zeros_like(p) for p in params]
        self._pipelined = config.n_threads >= 2 and config.epochs > 1
        # One buffer of ratings in visiting order (and the shuffle's scratch) per epoch in flight.
        self._buffers = [
            (*(np.empty_like(a) for a in (self.u0, self.i0, self.r0)), np.empty(_CHUNK, np.int64))
            for _ in range(1 + self._pipelined)
        ]
        self.u, self.i, self.r = self._buffers[0][:3]
        self._left = config.epochs  # epochs this fit may still run: nothing is drawn ahead past the last
        self._ahead = None  # the next epoch's (generator state drawn from, generator copy, future of its buffer)
        self._copy = None  # the generator the worker draws from, in the model's generator's state

    def _fill(self, gen, buf):
        """Draw an epoch's order from ``gen`` and put the ratings into ``buf`` in it; returns ``buf``."""
        u, i, r, js = buf
        if self.specialised:
            seed = gen.integers(0, 2**63, dtype=np.uint64)
            with np.errstate(over="ignore"):  # without JIT, SplitMix64's products wrap around in NumPy scalars
                _rating_kernels.shuffled_copy(self.u0, self.i0, self.r0, u, i, r, seed, js)
        else:
            _gather(self.u0, self.i0, self.r0, gen.permutation(len(r)), u, i, r)
        return buf

    def _this_epoch(self, rng):
        """This epoch's buffer: the one prepared ahead if ``rng`` is in the state it was drawn from, else filled now."""
        if self._ahead is not None:
            state, gen, future = self._ahead
            self._ahead = None
            if future.cancel():  # not started (no free core, or the worker busy with another fit's): do it here
                return self._fill(rng, self._buffers[0])
            buf = future.result()  # waits, and raises what the worker raised
            if _same_state(rng.bit_generator.state, state):
                rng.bit_generator.state = gen.bit_generator.state
                return buf
        return self._fill(rng, self._buffers[0])

    def run(self, rng, mu, t0):
        """One epoch in place; returns ``(sum of loss terms, number of optimiser steps)``."""
        c = self.config
        buf = self._this_epoch(rng)
        self.u, self.i, self.r = buf[:3]
        self._left -= 1
        if not self.specialised:
            alphas = adam_step_sizes(t0, self.n_batches, c.learning_rate, c.beta_1, c.beta_2)
        if self._pipelined and self._left > 0:
            if self._copy is None:  # one generator per fit to copy the state into (a deepcopy costs ~0.1 ms)
                self._copy = np.random.Generator(type(rng.bit_generator)())
            state = rng.bit_generator.state
            self._copy.bit_generator.state = state
            other = self._buffers[buf is self._buffers[0]]
            self._ahead = (state, self._copy, ahead(self._fill, self._copy, other))
        if self.specialised:
            total = self._epoch(self.u, self.i, self.r, mu, t0)
            project_factors(c, self.params[0], self.params[1])
            return total, self.n_batches
        n_rows = len(self.params[0]) + len(self.params[1])
        total = epoch_numba(
            self.u,
            self.i,
            self.r,
            None,
            c.batch_size,
            mu,
            self.params,
            self.m,
            self.v,
            alphas,
            c,
            self.grads,
            dense_loop=n_rows <= DENSE_LOOP_ROWS * c.batch_size,
        )
        return total, self.n_batches

    def write_params(self, params):
        """Nothing to do: the serial kernel trains ``params`` themselves."""


@numba.njit(cache=True, nogil=True)
def _gather(u0, i0, r0, perm, u, i, r):
    """``u, i, r = u0[perm], i0[perm], r0[perm]``, in place, without holding the GIL: run on the worker thread
    (:meth:`SerialEpochs._fill`), ``np.take`` held it, and the training thread waited for it in its own Python
    work between the epoch's kernels."""
    for j in range(perm.shape[0]):
        x = perm[j]
        u[j] = u0[x]
        i[j] = i0[x]
        r[j] = r0[x]


def _same_state(a, b):
    """Whether two bit generator states (dicts of ints, strings and arrays) are equal."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same_state(a[key], b[key]) for key in a)
    return np.array_equal(a, b)
