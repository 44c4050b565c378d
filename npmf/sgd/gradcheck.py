r"""Check the hand-derived gradients against central finite differences.

For every entry :math:`\theta_j` of every trained block (``W``, ``H``, and
``bu``, ``bi`` with biases) the analytic gradient :math:`a_j` is compared with

.. math::

    n_j = \frac{L(\theta + h e_j) - L(\theta - h e_j)}{2h},
    \qquad
    \mathrm{rel}_j = \frac{|a_j - n_j|}{\max(|a_j|, |n_j|, \tau)}

on a small random float64 problem. ``docs/derivation.md`` derives what is
being checked.

Why these choices:

* **Central differences, h = 1e-3.** Their truncation error is
  :math:`O(h^2)`, and here it is exactly zero: along one coordinate the loss is
  a quadratic (the residual is linear in each single entry), and the central
  difference of a quadratic is exact for any h. What is left is rounding,
  about :math:`\varepsilon L / h`. With the textbook h = 1e-6 that is ~1e-9,
  which against a gradient entry of 0.01 already exceeds 1e-7: over 300
  random problems, 1e-6 failed the 1e-7 threshold on 1 in 6, 1e-5 on 1 in
  100, 1e-3 on none of 4000 (worst 4e-8, median 2e-11). A wrong gradient
  is off by a relative error of order one whatever h is. The step actually
  taken is ``(theta + h) - (theta - h)`` as rounded, which is what we divide by.
* **float64.** With float32's :math:`\varepsilon \approx 10^{-7}` rounding alone
  would exceed the threshold at any step.
* **The relative error** scales with neither the size of the loss nor of the
  gradient. Its denominator is the larger of the two magnitudes, so it is at
  most 2 and symmetric; :math:`\tau` = 1e-12 only keeps it defined where both
  are zero (rows a batch never touches have a gradient of exactly 0, and the
  loss does not move at all when they are perturbed). It is large where a
  gradient entry is near zero, as rounding is then all there is; the random
  problem has factors and residuals of order one to make that rare.
* **A row repeats in the batch.** The batch has more ratings than users or
  items and lists every row at least once, so the scatter-add (``np.add.at``)
  is exercised for every row.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import _kernels
from . import gradcheck_student as student
from .config import SGDConfig
from .gradients import loss, loss_and_gradients

__all__ = ["gradcheck", "kernel_gradients", "reference_gradients", "format_report", "TOLERANCE"]

TOLERANCE = 1e-7
_TINY = 1e-12
_BLOCKS = ("W", "H", "bu", "bi")


def reference_gradients(W, H, bu, bi, mu, u, i, r, reg):
    """Gradients from :func:`npmf.sgd.gradients.loss_and_gradients`: the tuple (gW, gH, gbu, gbi)."""
    return loss_and_gradients(W, H, bu, bi, mu, u, i, r, reg)[1]


def kernel_gradients(W, H, bu, bi, mu, u, i, r, reg):
    """Gradients as the Numba training kernel computes them, same signature as :func:`reference_gradients`.

    One SGD step with ``learning_rate=1`` over a single batch holding all the
    ratings moves every parameter by exactly minus its gradient, so the
    gradient is read back as ``before - after`` (exact to a rounding of the
    parameter itself, ~1e-16).
    """
    params = [np.array(p, dtype=np.float64) for p in (W, H, bu, bi)]
    before = [p.copy() for p in params]
    state = [np.zeros_like(p) for p in params]
    config = SGDConfig(optimizer="sgd", learning_rate=1.0, reg=float(reg), biases=True, n_threads=1)
    n = len(r)
    _kernels.epoch_numba(u, i, r, np.arange(n), n, mu, params, state, state, np.ones(1), config)
    return tuple(b - p for b, p in zip(before, params))


def _problem(n_users, n_items, n_factors, n_ratings, biases, rng):
    """A random float64 problem whose batch lists every user and item, some more than once."""
    if n_ratings <= max(n_users, n_items):
        raise ValueError(
            f"n_ratings must exceed n_users and n_items so that a row repeats; "
            f"got n_ratings={n_ratings}, n_users={n_users}, n_items={n_items}"
        )
    u = rng.permutation(np.r_[np.arange(n_users), rng.integers(0, n_users, n_ratings - n_users)])
    i = rng.permutation(np.r_[np.arange(n_items), rng.integers(0, n_items, n_ratings - n_items)])
    r = rng.integers(1, 6, n_ratings).astype(np.float64)
    W = rng.normal(0.0, 1.0, (n_users, n_factors))
    H = rng.normal(0.0, 1.0, (n_items, n_factors))
    if biases:
        mu, bu, bi = float(r.mean()), rng.normal(0.0, 0.5, n_users), rng.normal(0.0, 0.5, n_items)
    else:
        mu, bu, bi = 0.0, np.zeros(n_users), np.zeros(n_items)
    return [W, H, bu, bi], mu, u, i, r


def _numeric(params, q, mu, u, i, r, reg, step):
    """Central differences of the loss with respect to every entry of ``params[q]``."""
    p = params[q]
    flat = p.reshape(-1)  # a view: perturbing it perturbs the block
    out = np.empty(flat.shape)
    for j in range(flat.size):
        old = flat[j]
        flat[j] = plus = old + step
        L_plus = loss(*params, mu, u, i, r, reg)
        flat[j] = minus = old - step
        L_minus = loss(*params, mu, u, i, r, reg)
        flat[j] = old
        out[j] = (L_plus - L_minus) / (plus - minus)
    return out.reshape(p.shape)


def gradcheck(
    n_users: int = 5,
    n_items: int = 4,
    n_factors: int = 3,
    n_ratings: int = 16,
    biases: bool = True,
    reg: float = 0.1,
    step: float = 1e-3,
    random_state: int | None = 0,
    grad_fn: Callable | None = None,
    gradients: Callable | None = None,
) -> dict:
    """Compare analytic gradients with central finite differences on a small random problem.

    Parameters
    ----------
    n_users, n_items, n_factors : int, defaults 5, 4, 3
        Shape of the problem: ``W`` is (n_users, n_factors), ``H`` (n_items, n_factors).
    n_ratings : int, default 16
        Size of the one minibatch; must exceed n_users and n_items, so that
        rows repeat.
    biases : bool, default True
        Check ``bu`` and ``bi`` too (``mu`` is the batch mean, fixed, as in training).
    reg : float >= 0, default 0.1
        L2 strength, per occurrence.
    step : float > 0, default 1e-3
        Finite-difference step h.
    random_state : int, numpy.random.Generator or None, default 0
    grad_fn : callable, optional
        ``grad_fn(W, H, bu, bi, mu, u, i, r, reg) -> (gW, gH, gbu, gbi)``; the
        gradients under test. Default :func:`reference_gradients`;
        :func:`kernel_gradients` checks the Numba kernel.
    gradients : callable, optional
        A learner's own gradient function, with the signature of
        :func:`npmf.sgd.gradients.gradients`:
        ``gradients(W, H, bu, bi, u, i, e, reg) -> (gW, gH, gbu, gbi)``, where
        ``e`` holds the residuals ``r_hat - r`` and each result is a float64
        array shaped like its parameter. It gets copies of the problem. A block
        that fails gets a ``diagnosis`` naming the mistake, judged from its
        numbers (:func:`npmf.sgd.gradcheck_student.diagnose`). Give
        ``gradients`` or ``grad_fn``, not both. ``examples/exercises/`` has a
        skeleton to fill in.

    Returns
    -------
    dict
        JSON-serialisable: ``max_rel_error`` (over all blocks), ``tolerance``,
        ``passed`` (``max_rel_error <= tolerance``), ``problem`` (the
        arguments), ``error`` and ``blocks``, mapping each block name to its ``shape``,
        ``max_rel_error``, ``max_abs_error``, ``entries`` (one
        ``[index, analytic, numeric, rel_error]`` per parameter) and
        ``diagnosis`` (None when the block passes, else a dict with
        ``mistake``, ``summary`` and ``hint``). ``error`` is None, or, when
        ``gradients`` could not be checked at all (a wrong signature,
        ``NotImplementedError``, another exception, a return that is not four
        float64 arrays of the right shapes), a dict with ``kind``, ``message``,
        and for an exception ``where`` and ``line``: the learner's own line.
        ``blocks`` is then empty, ``max_rel_error`` None and ``passed`` False.

    Examples
    --------
    >>> import npmf
    >>> npmf.gradcheck()["max_rel_error"] < 1e-7
    True
    >>> def doubled(W, H, bu, bi, u, i, e, reg=0.0):
    ...     return tuple(2 * g for g in npmf.sgd.gradients.gradients(W, H, bu, bi, u, i, e, reg))
    >>> npmf.gradcheck(gradients=doubled)["blocks"]["W"]["diagnosis"]["mistake"]
    'factor_of_2'
    """
    from ..core.validation import check_choice, check_float, check_int

    problem = {
        "n_users": check_int("n_users", n_users),
        "n_items": check_int("n_items", n_items),
        "n_factors": check_int("n_factors", n_factors),
        "n_ratings": check_int("n_ratings", n_ratings),
        "biases": bool(check_choice("biases", biases, (True, False))),
        "reg": check_float("reg", reg, low=0, low_open=False),
        "step": check_float("step", step, low=0),
    }
    if gradients is not None and grad_fn is not None:
        raise ValueError("give gradients (a learner's function) or grad_fn, not both")
    if gradients is not None and not callable(gradients):
        raise TypeError(f"gradients must be a function (W, H, bu, bi, u, i, e, reg) -> (gW, gH, gbu, gbi); "
                        f"got {gradients!r} of type {type(gradients).__name__}")  # fmt: skip
    rng = np.random.default_rng(random_state)
    params, mu, u, i, r = _problem(n_users, n_items, n_factors, n_ratings, problem["biases"], rng)
    reg = problem["reg"]
    result = {"max_rel_error": None, "tolerance": TOLERANCE, "passed": False, "problem": problem,
              "error": None, "blocks": {}}  # fmt: skip
    if gradients is None:
        analytic = (grad_fn or reference_gradients)(*[p.copy() for p in params], mu, u, i, r, reg)
    else:
        analytic, result["error"] = student.call_gradients(gradients, params, mu, u, i, r, reg)
        if analytic is None:
            return result
    terms = None
    for q in range(4 if problem["biases"] else 2):
        a = np.asarray(analytic[q], dtype=np.float64).reshape(params[q].shape)
        n = _numeric(params, q, mu, u, i, r, reg, problem["step"])
        rel = np.abs(a - n) / np.maximum(np.maximum(np.abs(a), np.abs(n)), _TINY)
        diagnosis = None
        if rel.max() > TOLERANCE:
            terms = terms or student.occurrence_terms(params, mu, u, i, r, reg)
            expected = reference_gradients(*params, mu, u, i, r, reg)[q]
            diagnosis = student.diagnose(a, expected, terms[q], n_ratings)
        result["blocks"][_BLOCKS[q]] = {
            "shape": list(a.shape),
            "max_rel_error": float(rel.max()),
            "max_abs_error": float(np.abs(a - n).max()),
            "entries": [[list(ix), float(a[ix]), float(n[ix]), float(rel[ix])] for ix in np.ndindex(a.shape)],
            "diagnosis": diagnosis,
        }
    result["max_rel_error"] = max(b["max_rel_error"] for b in result["blocks"].values())
    result["passed"] = result["max_rel_error"] <= TOLERANCE
    return result


def format_report(result):
    """The result of :func:`gradcheck` as text: one table per block with its diagnosis, then the verdict."""
    error = result.get("error")
    if error:
        lines = [error["message"]]
        if error.get("where"):
            lines += [f"  {error['where']}", f"    {error['line']}"]
        return "\n".join(lines + ["", "FAILED: the gradients could not be checked"])
    lines = []
    for name, block in result["blocks"].items():
        shape = "x".join(map(str, block["shape"]))
        lines += [f"{name} ({shape})", f"  {'index':<8} {'analytic':>14} {'numeric':>14} {'rel. error':>10}"]
        for ix, a, n, rel in block["entries"]:
            lines.append(f"  {','.join(map(str, ix)):<8} {a:>14.8f} {n:>14.8f} {rel:>10.1e}")
        lines.append(f"  max relative error {block['max_rel_error']:.1e}")
        if block.get("diagnosis"):
            lines += [f"  WRONG: {block['diagnosis']['summary']}", f"  hint: {block['diagnosis']['hint']}"]
        lines.append("")
    wrong = [(name, b["diagnosis"]["summary"]) for name, b in result["blocks"].items() if b.get("diagnosis")]
    lines += [f"{name}: {summary}" for name, summary in wrong]
    if result["problem"]["reg"] == 0:
        lines.append("note: with reg = 0 the L2 term is not checked")
    verdict = "OK" if result["passed"] else "FAILED"
    op = "<=" if result["passed"] else ">"
    lines.append(f"max relative error {result['max_rel_error']:.1e} {op} {result['tolerance']:.0e}: {verdict}")
    return "\n".join(lines)
