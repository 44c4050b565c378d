r"""The per-rating and per-parameter formulas of training, each written once for every Numba kernel.

The serial epoch (:mod:`npmf.sgd._kernels`) keeps ``W``, ``H``, the biases and
Adam's state in separate arrays; the block kernel (:mod:`npmf.sgd._block_kernels`)
keeps each row's ``[w_0..w_{k-1}, b | g | m | v]`` side by side in one record.
The helpers here take 2-D arrays plus row indices (and scalars for the bias
values), not row slices, so both layouts call the same code and no view is built
per rating. Their NumPy twins, the text to read, are :mod:`npmf.sgd.gradients`
and :mod:`npmf.sgd.optimizers`; ``docs/derivation.md`` derives them.

Every helper is ``inline="always"``: Numba splices it into the caller's IR
before typing, so it is typed with the caller's dtypes (float32 factors stay
float32) and compiled under the caller's flags. The block kernel's
``fastmath={"reassoc", "nsz"}`` therefore still vectorises the loops inside
them, and the serial kernels still compute in exactly the order written here.
That order, and each accumulator's starting value and type, are those of the
code before the helpers existed, so training gives the same bits
(``benchmarks/checksums.py`` holds it).

A caveat of Numba's on-disk cache: it is keyed on the calling kernel's source
file, not on these helpers, so after editing this file clear ``__pycache__`` (or
set a fresh ``NUMBA_CACHE_DIR``) to make the kernels pick up the change.
"""

import numba
import numpy as np

from ..core._kernels import prediction
from ..core._lanes import load, negative_zero, sum_lanes, width
from .catchup import SERIES_TERMS

__all__ = [
    "residual",
    "penalty",
    "residual_and_penalty",
    "loss_term",
    "factor_gradient",
    "bias_gradient",
    "adam_scalar",
    "adam_scalar_root",
    "sgd_scalar",
    "catch_up_terms",
    "horner",
    "catch_up_elements",
    "catch_up_row",
    "project",
    "project_row",
    "project_listed",
    "trip_count",
]

_inline = numba.njit(inline="always", error_model="numpy", nogil=True)


@_inline
def residual(mu, b_u, b_i, W, u, H, i, k, r, j):
    r"""The residual :math:`e = \hat r_{ui} - r_j`, prediction minus rating ``j``.

    Parameters as :func:`npmf.core._kernels.prediction`, plus the ratings ``r``
    and the index ``j`` of this one. Training fits exactly the prediction that
    ``predict`` later serves, because both go through that one function. Twin
    of :func:`npmf.sgd.gradients.errors`.

    ``r`` comes as array and index, not as the value ``r[j]``, so that the
    rating is read after the dot product, as the kernels read it before this
    helper existed. Under the block kernel's fastmath reassociation that
    matters: with ``r[j]`` read before the dot product (as a value argument is)
    the block fits of ``benchmarks/checksums.py`` changed in the last bits,
    presumably because LLVM's reassociation orders operands by where they are
    defined and so subtracted ``r`` before adding the dot product.
    """
    return prediction(mu, b_u, b_i, W, u, H, i, k) - r[j]


@_inline
def penalty(W, u, H, i, k, b_u, b_i, zero):
    r"""The L2 term of one rating, :math:`\lVert w_u \rVert^2 + \lVert h_i \rVert^2 + b_u^2 + b_i^2`.

    ``zero`` is the starting value of the squared-norm sum and sets its type: the
    serial kernel passes the Python float ``0.0`` (a float64 sum, even for
    float32 factors), the block kernel ``U[0, 0] * 0`` (a sum in the records'
    dtype, which LLVM may vectorise under its fastmath). Keeping each caller's
    own start keeps each caller's bits. The factor terms are summed over ``f``
    first, then ``b_u^2`` and ``b_i^2`` are added.
    """
    sq = zero
    for f in range(k):
        sq += W[u, f] * W[u, f] + H[i, f] * H[i, f]
    return sq + b_u * b_u + b_i * b_i


@_inline
def residual_and_penalty(mu, b_u, b_i, W, u, H, i, k, r, j, zero):
    """:func:`residual` and :func:`penalty` (from ``zero``) in one loop.

    The same sums in the same order, so the same bits (a test holds it): the
    dot product of :func:`npmf.core._kernels.dot`, its products added left to
    right (from -0, which adds nothing), the squared norms from ``zero``, each
    term ``w_f^2 + h_f^2`` added left to right; then ``((mu + b_u) + b_i) + dot - r[j]``
    and ``sq + b_u^2 + b_i^2``. The products are taken a vector of lanes at a
    time (:mod:`npmf.core._lanes`) and the sums kept in order by
    :func:`npmf.core._lanes.sum_lanes`; each factor is loaded once. ``zero``
    is 0 in the factors' dtype, or a float64 0 for float32 factors, and is the
    squared norms' type (rows of C-contiguous arrays, as lanes take them).
    """
    acc = negative_zero(W)
    sq = zero
    for f in range(0, k, width(W)):
        w = load(W, u, f, k - f)
        h = load(H, i, f, k - f)
        acc = sum_lanes(acc, w * h, k - f)
        sq = sum_lanes(sq, w * w + h * h, k - f)
    return mu + b_u + b_i + acc - r[j], sq + b_u * b_u + b_i * b_i


@_inline
def loss_term(e, reg, pen):
    r"""One rating's term of the loss, :math:`\ell = e^2 + \lambda\,(\text{penalty})`.

    ``pen`` is :func:`penalty` of the same rating: λ applies per occurrence
    (``docs/derivation.md``, section 2). The epoch loss is the sum of these terms.
    """
    return e * e + reg * pen


@_inline
def factor_gradient(e, other, reg, own):
    r"""Half of one rating's gradient for one factor, :math:`e\,h_{if} + \lambda w_{uf}` (or with ``w``, ``h`` swapped).

    ``own`` is the factor being differentiated, ``other`` its partner in the dot
    product. The kernels multiply by ``c = 2 / B`` when they accumulate, as the
    twin :func:`npmf.sgd.gradients.gradients` does.
    """
    return e * other + reg * own


@_inline
def bias_gradient(e, reg, own):
    r"""Half of one rating's gradient for a bias, :math:`e + \lambda b`.

    Kept apart from :func:`factor_gradient` (rather than passing ``other = 1``)
    so that no multiplication by a float64 one promotes float32 arithmetic.
    """
    return e + reg * own


@_inline
def adam_scalar(p, g, m, v, alpha, c1, c2, eps):
    """Keras' Adam step on one parameter; returns the new ``(p, m, v)``.

    ``c1 = 1 - beta_1``, ``c2 = 1 - beta_2`` and ``alpha`` is the bias-corrected
    step size of this step (:func:`npmf.sgd.optimizers.adam_step_sizes`). The
    moments are updated in Keras' arrangement, ``m + (g - m) c1``, so the
    roundings match Keras and the twin :func:`npmf.sgd.optimizers.adam_update`.
    Values in, values out: the caller stores them wherever its layout keeps
    them (separate arrays or one record), which lets the dense loop vectorise.
    """
    p, m, v, _ = adam_scalar_root(p, g, m, v, alpha, c1, c2, eps)
    return p, m, v


@_inline
def adam_scalar_root(p, g, m, v, alpha, c1, c2, eps):
    """:func:`adam_scalar`, returning also the :math:`\\sqrt v` it divides by: ``(p, m, v, sqrt(v))``.

    The dense kernel keeps that root for the row's catch-up
    (:mod:`npmf.sgd._dense_kernels`), which then takes none.
    """
    m = m + (g - m) * c1
    v = v + (g * g - v) * c2
    root = np.sqrt(v)
    p = p - (m * alpha) / (root + eps)
    return p, m, v, root


@_inline
def sgd_scalar(p, g, lr):
    r"""The plain SGD step on one parameter, :math:`p - \eta g`; returns the new ``p``."""
    return p - lr * g


@_inline
def project(p, on):
    r"""Keras' ``NonNeg`` constraint on one parameter when ``on``: :math:`\max(p, 0)`, else ``p`` unchanged.

    Applied right after every step that writes a factor (never a bias) of a
    ``non_negative=True`` model; twin :func:`npmf.sgd.optimizers.project_rows`.
    The zero is ``p - p``, in ``p``'s dtype; a NaN stays NaN.
    """
    if on and p < 0:
        return p - p
    return p


@_inline
def project_row(P, row, k, on):
    """:func:`project` on ``P[row, :k]`` in place: the factor part of a row (or of a block record)."""
    if on:
        for f in range(k):
            P[row, f] = project(P[row, f], on)


@_inline
def project_listed(P, rows, n_rows, k, on):
    """:func:`project_row` on each of rows ``rows[:n_rows]`` of ``P``: the rows a step has just written."""
    if on:
        for a in range(n_rows):
            project_row(P, rows[a], k, on)


@_inline
def list_row(stamp, x, tag, rows, n):
    """List row ``x`` in ``rows[:n]`` for batch ``tag`` unless ``stamp[x]`` shows it listed; returns the new ``n``."""
    if stamp[x] != tag:
        stamp[x] = tag
        rows[n] = x
        n += 1
    return n


@_inline
def catch_up_terms(G, B, Q, tau, s_):
    r"""The narrow series' terms :math:`G_n(\tau, s') = B_n(\tau) - q_n^{s'} B_n(\tau + s')` into the scratch ``G``.

    They depend on the stretch alone, so a row's factors and bias share them.
    ``G`` has one slot per tabulated term and a last one that says whether
    the wide series' further terms are in (:func:`catch_up_elements` adds them
    when an element first needs them); this clears it.
    """
    for n in range(min(SERIES_TERMS, B.shape[1])):
        G[n] = B[tau, n] - Q[s_, n] * B[tau + s_, n]
    G[G.shape[0] - 1] = 0.0


def trip_count(n, fixed_up_to):
    """``n`` as a kernel's loop bound ``len(...)``: a tuple of ``n`` zeros up to ``fixed_up_to``, else an array.

    A tuple's length is part of its Numba type, so ``range(len(t))`` over a tuple
    runs a compile-time number of times, which LLVM unrolls, in a kernel compiled
    for that ``n``; over an array, a run-time number, in one kernel for every ``n``.
    The same arithmetic either way, so the same bits.
    """
    return (0,) * n if n <= fixed_up_to else np.empty(n, np.int8)


@_inline
def horner(G, n_terms, y):
    r"""The series :math:`G_0 + y(G_1 + y(G_2 + \dots))` over the first ``n_terms`` (at least 2) coefficients.

    ``y`` is a scalar or lanes (:mod:`npmf.core._lanes`) of the coefficients' dtype. The innermost product is
    taken first, outside the loop, so that ``acc`` has ``y``'s type from the start: the same operations in the same
    order as starting from ``acc = G[n_terms - 1]``.
    """
    acc = G[n_terms - 2] + y * G[n_terms - 1]
    for n in range(n_terms - 3, -1, -1):
        acc = G[n] + y * acc
    return acc


@_inline
def catch_up_elements(P, pc, M, mc, V, vc, row, width, tau, s, s_, G, B, Q, limits, d1, d2, alphas, c1, c2, eps):
    r"""The catch-up of :func:`catch_up_row` on the elements of one row, given its stretch's ``G`` and scalars.

    ``s_ = min(s, L)``, ``limits = thr[s_]`` (narrow, wide), ``d1 = beta_1 ** s``,
    ``d2 = beta_2 ** s``. An element takes the narrow series where its ``x``
    reaches ``limits[0]``, else the wide one (whose further terms it adds to
    ``G`` the first time the stretch needs them) where it reaches ``limits[1]``,
    else the exact loop.
    """
    n_wide = G.shape[0] - 1
    for f in range(width):
        m0 = np.float64(M[row, mc + f])
        v0 = np.float64(V[row, vc + f])
        if m0 != 0.0:
            x = np.sqrt(v0)
            if x > 0.0 and x >= limits[0]:
                inv = 1.0 / x
                P[row, pc + f] = np.float64(P[row, pc + f]) - m0 * horner(G, SERIES_TERMS, -eps * inv) * inv
            elif x > 0.0 and x >= limits[1]:
                if G[n_wide] == 0.0:
                    for n in range(SERIES_TERMS, n_wide):
                        G[n] = B[tau, n] - Q[s_, n] * B[tau + s_, n]
                    G[n_wide] = 1.0
                inv = 1.0 / x
                P[row, pc + f] = np.float64(P[row, pc + f]) - m0 * horner(G, n_wide, -eps * inv) * inv
            else:
                pe = np.float64(P[row, pc + f])
                me = m0
                ve = v0
                for j in range(s_):
                    me = me + (0.0 - me) * c1
                    ve = ve + (0.0 - ve) * c2
                    pe = pe - (me * alphas[tau + j]) / (np.sqrt(ve) + eps)
                P[row, pc + f] = pe
        M[row, mc + f] = m0 * d1
        V[row, vc + f] = v0 * d2


@_inline
def catch_up_row(P, pc, M, mc, V, vc, row, width, tau, s, B, Q, P1, P2, thr, G, alphas, c1, c2, eps):
    r"""Replay ``s`` absent dense-Adam steps after step ``tau`` on one row, in place: the catch-up.

    The row's parameters, first and second moments are ``P[row, pc:pc+width]``,
    ``M[row, mc:mc+width]`` and ``V[row, vc:vc+width]`` (separate arrays in the
    serial kernel, one record in the block kernel). ``B, Q, P1, P2, thr`` are
    the epoch's tables (:func:`npmf.sgd.catchup.catch_up_tables`), ``G`` a
    scratch of one float64 per tabulated term plus a flag (:func:`catch_up_terms`), ``alphas`` the epoch's float64 step
    sizes, ``c1 = 1 - beta_1``, ``c2 = 1 - beta_2`` (float64). The arithmetic is
    float64 whatever the arrays' dtype. Twin of :func:`npmf.sgd.catchup.catch_up`:
    where :math:`x = \sqrt v` is at least ``thr[s', 0]``, the narrow series in Horner form,
    :math:`F = x^{-1}(G_0 + y(G_1 + y(G_2 + \dots)))` with :math:`y = -\epsilon/x`; where it is
    at least ``thr[s', 1]``, the wide series (all tabulated terms) the same way;
    elsewhere (and :math:`m \ne 0`) the exact per-step loop over the first
    :math:`s' = \min(s, L)` steps; then :math:`m \mathrel{*}= \beta_1^s`, :math:`v \mathrel{*}= \beta_2^s`.
    """
    L = Q.shape[0] - 1
    s_ = min(s, L)
    catch_up_terms(G, B, Q, tau, s_)
    catch_up_elements(P, pc, M, mc, V, vc, row, width, tau, s, s_, G, B, Q, thr[s_], P1[s], P2[s], alphas, c1, c2, eps)
