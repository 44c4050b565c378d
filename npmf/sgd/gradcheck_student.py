r"""A learner's own gradient function: call it safely, check what it returns, and name its mistake.

``npmf.gradcheck(gradients=fn)`` calls ``fn(W, H, bu, bi, u, i, e, reg)``, the
signature of :func:`npmf.sgd.gradients.gradients`, on the small problem of
:func:`npmf.sgd.gradcheck.gradcheck`, whose batch holds every row and repeats
some. Each block is compared with central differences there; this module
handles what happens around that comparison:

* **the call**: a wrong signature, ``NotImplementedError`` (the exercise's
  skeleton), any other exception (reported at the learner's own line, not at
  npmf's), or a return that is not four float64 arrays shaped like
  ``W, H, bu, bi``, each becomes one error that says what was expected;
* **the diagnosis** of a block that fails: its values are compared with the
  gradients the usual mistakes would give. Those are built from the
  reference itself, never from the learner's source: occurrence ``b``
  contributes ``D_b`` (the residual's term, the reference on the batch of
  that one triple with ``reg=0``) and ``R_b`` (the L2 term, the same with
  ``e_b = 0``), each over ``B``; the right gradient is the scatter-add of
  ``D_b + R_b`` into row ``u_b`` (or ``i_b``). Dropping, doubling or halving
  a term, flipping its sign, adding ``R`` once per distinct row, keeping one
  occurrence of a repeated row, or scaling the whole by a constant (2, 1/2,
  -1, B) each give a different array on this problem; the first one that the
  learner's block equals (to 1e-6 relative) is the diagnosis.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import sys
import traceback
from pathlib import Path

import numpy as np

from .gradients import errors
from .gradients import gradients as reference

__all__ = ["call_gradients", "diagnose", "occurrence_terms", "load_function"]

_MATCH = 1e-6  # a candidate "is" the learner's block when they agree to this relative error
_PACKAGE = str(Path(__file__).resolve().parents[1]) + os.sep
_SIGNATURE = "(W, H, bu, bi, u, i, e, reg)"


def _where(exc, own):
    """The learner's line of ``exc``: ``(location, source line, frames)``, npmf's frames left out.

    The line is the deepest frame in file ``own`` (the learner's), else the deepest outside npmf.
    """
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not _resolved(f.filename).startswith(_PACKAGE)]
    mine = [f for f in frames if own is not None and _resolved(f.filename) == _resolved(own)] or frames
    if not mine:
        return None, None, []
    f = mine[-1]
    shown = [f'File "{g.filename}", line {g.lineno}, in {g.name}' for g in frames]
    return f'File "{f.filename}", line {f.lineno}, in {f.name}', (f.line or "").strip(), shown


def _resolved(filename):
    filename = str(filename)
    return filename if filename.startswith("<") else str(Path(filename).resolve())


def _failure(kind, message, exc=None, fn=None):
    own = getattr(getattr(fn, "__code__", None), "co_filename", None)
    where, line, frames = _where(exc, own) if exc is not None else (None, None, [])
    return {"kind": kind, "message": message, "where": where, "line": line, "traceback": frames}


def _check_returned(out, params):
    """Why ``out`` is not four float64 arrays shaped like ``params``, or None."""
    expected = "a tuple (gW, gH, gbu, gbi) of float64 arrays shaped like W, H, bu, bi"
    if out is None:
        return f"returned None; expected {expected} (is `return gW, gH, gbu, gbi` missing?)"
    if not isinstance(out, (tuple, list)):
        return f"returned a {type(out).__name__}; expected {expected}"
    if len(out) != 4:
        return f"returned {len(out)} values; expected 4: {expected}"
    problems = []
    for like, g, p in zip(("W", "H", "bu", "bi"), out, params):
        name = "g" + like
        try:
            g = np.asarray(g)
        except (TypeError, ValueError) as exc:
            problems.append(f"{name} is not an array ({exc}); expected one shaped like {like}")
            continue
        if g.shape != p.shape:
            problems.append(f"{name} has shape {g.shape}; expected {p.shape}, the shape of {like}")
        elif g.dtype != np.float64:
            problems.append(
                f"{name} has dtype {g.dtype}; expected float64, the dtype of {like} (np.zeros_like({like}))"
            )
        elif not np.isfinite(g).all():
            ix = tuple(int(j) for j in np.argwhere(~np.isfinite(g))[0])
            problems.append(f"{name} holds {g[ix]} at index {ix}; expected finite numbers")
    return "; ".join(problems) or None


def call_gradients(fn, params, mu, u, i, r, reg):
    """Call the learner's ``fn(W, H, bu, bi, u, i, e, reg)`` on copies of the problem.

    Returns
    -------
    grads : tuple of four float64 ndarrays, or None
        ``(gW, gH, gbu, gbi)`` when the call worked and returned the right things.
    error : dict or None
        Otherwise ``kind`` (``"signature"``, ``"not_implemented"``, ``"exception"``
        or ``"bad_return"``), ``message``, and for an exception ``where`` (the
        learner's file, line and function), ``line`` (its source) and
        ``traceback`` (its frames outside npmf).
    """
    e = errors(*params, mu, u, i, r)
    args = (*[p.copy() for p in params], u.copy(), i.copy(), e, reg)
    name = getattr(fn, "__name__", type(fn).__name__)
    try:
        inspect.signature(fn).bind(*args)
    except TypeError:
        got = str(inspect.signature(fn))
        return None, _failure("signature", f"{name} must take {_SIGNATURE}, as npmf.sgd.gradients.gradients; "
                                           f"it takes {got}")  # fmt: skip
    except ValueError:  # a builtin without a signature: let the call decide
        pass
    try:
        out = fn(*args)
    except NotImplementedError as exc:
        message = f"{name} is not implemented yet: it raises NotImplementedError. Write its body, then check again."
        return None, _failure("not_implemented", message, exc, fn)
    except Exception as exc:
        return None, _failure("exception", f"{name} raised {type(exc).__name__}: {exc}", exc, fn)
    wrong = _check_returned(out, params)
    if wrong:
        return None, _failure("bad_return", f"{name} {wrong}")
    return tuple(np.asarray(g) for g in out), None


def occurrence_terms(params, mu, u, i, r, reg):
    """Each triple's contribution to each block, from the reference: ``[(rows, D, R)]`` for W, H, bu, bi.

    ``D[b]`` is the residual's term and ``R[b]`` the L2 term that triple ``b``
    adds into row ``rows[b]``; the right gradient is their scatter-add.
    """
    e = errors(*params, mu, u, i, r)
    B = len(e)
    D = [[] for _ in range(4)]
    R = [[] for _ in range(4)]
    for b in range(B):
        one = (u[b : b + 1], i[b : b + 1])
        data = reference(*params, *one, e[b : b + 1], 0.0)
        l2 = reference(*params, *one, np.zeros(1), reg)
        for q, rows in zip(range(4), (u, i, u, i)):
            D[q].append(data[q][rows[b]] / B)
            R[q].append(l2[q][rows[b]] / B)
    return [(rows, np.array(D[q]), np.array(R[q])) for q, rows in zip(range(4), (u, i, u, i))]


def _scatter(rows, X, n):
    out = np.zeros((n,) + X.shape[1:])
    np.add.at(out, rows, X)
    return out


def _reg_per_row(rows, D, R, n):
    out = _scatter(rows, D, n)
    _, first = np.unique(rows, return_index=True)
    out[rows[first]] += R[first]  # R_b is the same for every occurrence of a row
    return out


def _rel(a, b):
    return float((np.abs(a - b) / np.maximum(np.maximum(np.abs(a), np.abs(b)), 1e-12)).max())


def _one_occurrence(a, rows, X):
    """True when every row of ``a`` equals one occurrence's contribution instead of their sum."""
    return all(min(_rel(a[row], X[b]) for b in np.flatnonzero(rows == row)) <= _MATCH for row in np.unique(rows))


# Each: (name, what it is, a hint, the gradient that mistake gives). Checked in this order.
_MISTAKES = [
    ("reg_missing", "the L2 term is missing",
     "add the L2 term: each occurrence adds (2/B)·λ·w to its row (derivation §3.1)",
     lambda rows, D, R, n: _scatter(rows, D, n)),
    ("reg_doubled", "the L2 term is twice too large",
     "d(λw²)/dw = 2λw, and c = 2/B already holds that 2: the term is c·λ·w (derivation §3.1)",
     lambda rows, D, R, n: _scatter(rows, D + 2 * R, n)),
    ("reg_halved", "the L2 term is half what it should be",
     "d(λw²)/dw = 2λw, not λw: the term is c·λ·w with c = 2/B (derivation §3.1)",
     lambda rows, D, R, n: _scatter(rows, D + R / 2, n)),
    ("reg_per_row", "the L2 term is applied once per row instead of once per occurrence",
     "the loss adds λ‖w_u‖² for every rating of u in the batch, so a row present n times gets n·c·λ·w_u: "
     "add the L2 term inside the per-occurrence sum (derivation §2 and §3.2)",
     _reg_per_row),
    ("residual_sign", "the residual's term has the wrong sign (the L2 term is right)",
     "e is r̂ − r (prediction minus rating); d(e²)/dθ = 2e·de/dθ with de/dw_u = h_i: no minus sign (derivation §3.1)",
     lambda rows, D, R, n: _scatter(rows, -D + R, n)),
    ("data_doubled", "the residual's term is twice too large",
     "c = 2/B already holds the 2 of d(e²)/de = 2e: the term is c·e·h, not 2·c·e·h (derivation §3.1)",
     lambda rows, D, R, n: _scatter(rows, 2 * D + R, n)),
    ("data_halved", "the residual's term is half what it should be",
     "d(e²)/de = 2e: the term is c·e·h with c = 2/B (derivation §3.1)",
     lambda rows, D, R, n: _scatter(rows, D / 2 + R, n)),
]  # fmt: skip

_SCALES = [
    (-1.0, "wrong_sign", "the gradient has the wrong sign (ratio −1)",
     "the gradient points uphill: L grows along it. The minus belongs to the step θ −= η·g, not to g "
     "(derivation §4.1)"),
    (2.0, "factor_of_2", "a factor of 2 off (ratio 2)",
     "the 2 of d(e²)/de = 2e is counted twice: c = 2/B holds it once (derivation §3.1)"),
    (0.5, "factor_of_2", "a factor of 2 off (ratio 1/2)",
     "the 2 of d(x²)/dx = 2x is missing: c = 2/B, not 1/B (derivation §3.1)"),
]  # fmt: skip


def diagnose(a, expected, terms, B):
    """What the learner's block ``a`` got wrong, judged from the numbers alone.

    Parameters
    ----------
    a : ndarray
        The learner's gradient of one block.
    expected : ndarray
        The right gradient of that block (the reference's), same shape.
    terms : tuple (rows, D, R)
        That block's per-occurrence terms, from :func:`occurrence_terms`.
    B : int
        Batch size.

    Returns
    -------
    dict
        ``mistake`` (a short name; ``"unrecognised"`` when no known mistake
        matches), ``summary`` and ``hint``; ``ratio`` when the block is the
        right one times a constant.
    """
    rows, D, R = terms
    n = len(a)
    norm = float(np.vdot(expected, expected))
    s = float(np.vdot(a, expected)) / norm if norm > 0 else 0.0
    if _rel(a, s * expected) <= _MATCH:
        for ratio, name, summary, hint in _SCALES:
            if abs(s - ratio) <= _MATCH * abs(ratio):
                return {"mistake": name, "summary": summary, "hint": hint, "ratio": ratio}
        for ratio, what in ((float(B), "B times too large"), (1.0 / B, "B times too small")):
            if abs(s - ratio) <= _MATCH * ratio:
                return {"mistake": "batch_mean", "summary": f"{what} (ratio {ratio:.4g}, B = {B})",
                        "hint": "L is the mean over the batch: each term carries c = 2/B (derivation §3.2)",
                        "ratio": ratio}  # fmt: skip
        return {"mistake": "constant_factor", "summary": f"off by a constant factor {s:.6g}",
                "hint": "every entry is the right one times the same number: look at the constant in front "
                        "(c = 2/B, derivation §3.2)", "ratio": s}  # fmt: skip
    if _one_occurrence(a, rows, D + R):
        return {"mistake": "no_scatter_add", "summary": "a repeated row got only one occurrence's gradient",
                "hint": "g[rows] += X keeps only one term of a repeated row; np.add.at(g, rows, X) adds them "
                        "all (derivation §3.3)"}  # fmt: skip
    for name, summary, hint, make in _MISTAKES:
        if _rel(a, make(rows, D, R, n)) <= _MATCH:
            return {"mistake": name, "summary": summary, "hint": hint}
    return _unrecognised(a, expected, rows)


def _unrecognised(a, expected, rows):
    """Where a block that matches no known mistake is wrong: which rows, and whether they are the repeated ones."""
    rel = np.abs(a - expected) / np.maximum(np.maximum(np.abs(a), np.abs(expected)), 1e-12)
    wrong = sorted({int(ix[0]) for ix in np.argwhere(rel > 1e-7)})
    counts = np.bincount(rows, minlength=len(a))
    if all(counts[row] > 1 for row in wrong):
        hint = (f"only rows that occur more than once in the batch are wrong (rows {wrong}): look at how the "
                "terms of a repeated row are added up (derivation §3.2 and §3.3)")  # fmt: skip
    elif len(wrong) == len(a):
        hint = "every row is wrong: derive each term again (derivation §3.1) and compare the table entry by entry"
    else:
        hint = f"rows {wrong} are wrong, the others right: compare the table entry by entry"
    return {"mistake": "unrecognised", "summary": "wrong, and not one of the usual mistakes", "hint": hint}


def load_function(spec):
    """The callable named by ``"path/to/file.py:function"``.

    Raises ValueError, its message starting with ``gradients``, for a spec without
    ``:``, a missing file, a syntax error or an exception while loading it, a
    missing name, or a name that is not callable.
    """
    path, sep, name = spec.rpartition(":")
    if not sep or not path or not name:
        raise ValueError(
            f"gradients must be FILE.py:FUNCTION, e.g. examples/exercises/gradients_exercise.py:gradients; got {spec!r}"
        )
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"gradients file not found: {path}")
    module_name = f"_npmf_gradcheck_{abs(hash(str(file.resolve())))}"
    module_spec = importlib.util.spec_from_file_location(module_name, file)
    if module_spec is None:
        raise ValueError(f"gradients file {path} is not a Python file (expected a .py file)")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module
    try:
        module_spec.loader.exec_module(module)
    except SyntaxError as exc:
        sys.modules.pop(module_name, None)
        raise ValueError(
            f"gradients file {path}, line {exc.lineno}: syntax error: {exc.msg}: {(exc.text or '').strip()}"
        ) from None
    except Exception as exc:
        sys.modules.pop(module_name, None)
        where, line, _ = _where(exc, file)
        raise ValueError(
            f"gradients file {path} raised {type(exc).__name__} while loading: {exc} ({where}: {line})"
        ) from None
    if not hasattr(module, name):
        defined = sorted(k for k, v in vars(module).items() if inspect.isfunction(v) and not k.startswith("_"))
        raise ValueError(
            f"gradients file {path} has no function {name!r}; it defines: {', '.join(defined) or 'no functions'}"
        )
    fn = getattr(module, name)
    if not callable(fn):
        raise ValueError(f"gradients {name!r} in {path} is a {type(fn).__name__}, not a function")
    return fn
