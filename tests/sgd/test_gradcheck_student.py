"""A learner's own gradients: the right ones pass, each usual mistake is caught and named, bad calls say why."""

import importlib
import json
from pathlib import Path

import numpy as np
import pytest

import npmf
from npmf.sgd import gradients as G

gc = importlib.import_module("npmf.sgd.gradcheck")
student = importlib.import_module("npmf.sgd.gradcheck_student")
_BLOCKS = ("W", "H", "bu", "bi")
SKELETON = Path(__file__).resolve().parents[2] / "examples" / "exercises" / "gradients_exercise.py"


def looped(W, H, bu, bi, u, i, e, reg=0.0):
    """Correct, written independently of npmf: one triple at a time."""
    gW, gH, gbu, gbi = np.zeros(W.shape), np.zeros(H.shape), np.zeros(bu.shape), np.zeros(bi.shape)
    B = len(e)
    for b in range(B):
        uu, ii = u[b], i[b]
        gW[uu] += 2 * (e[b] * H[ii] + reg * W[uu]) / B
        gH[ii] += 2 * (e[b] * W[uu] + reg * H[ii]) / B
        gbu[uu] += 2 * (e[b] + reg * bu[uu]) / B
        gbi[ii] += 2 * (e[b] + reg * bi[ii]) / B
    return gW, gH, gbu, gbi


def _written(data=1.0, l2=1.0, c=None, scatter=True, reg_per_row=False):
    """A mutant as a learner would write it: ``c * (data * e * h + l2 * reg * w)`` per occurrence."""

    def gradients(W, H, bu, bi, u, i, e, reg=0.0):
        k = 2.0 / len(e) if c is None else c(len(e))
        out = []
        for p, rows, term in ((W, u, e[:, None] * H[i]), (H, i, e[:, None] * W[u]), (bu, u, e), (bi, i, e)):
            g = np.zeros_like(p)
            X = k * (data * term + (0.0 if reg_per_row else l2 * reg * p[rows]))
            if scatter:
                np.add.at(g, rows, X)
            else:
                g[rows] += X  # keeps one occurrence of a repeated row
            if reg_per_row:
                distinct = np.unique(rows)
                g[distinct] += k * reg * p[distinct]
            out.append(g)
        return tuple(out)

    return gradients


def scaled(s):
    def gradients(W, H, bu, bi, u, i, e, reg=0.0):
        return tuple(s * g for g in G.gradients(W, H, bu, bi, u, i, e, reg))

    return gradients


MUTANTS = {
    "factor_of_2": _written(c=lambda B: 4.0 / B),
    "factor_of_2/half": _written(c=lambda B: 1.0 / B),
    "wrong_sign": scaled(-1.0),
    "batch_mean": _written(c=lambda B: 2.0),
    "no_scatter_add": _written(scatter=False),
    "reg_per_row": _written(reg_per_row=True),
    "reg_missing": _written(l2=0.0),
    "reg_doubled": _written(l2=2.0),
    "reg_halved": _written(l2=0.5),
    "residual_sign": _written(data=-1.0),
    "data_doubled": _written(data=2.0),
    "data_halved": _written(data=0.5),
}


@pytest.mark.parametrize("fn", [G.gradients, looped], ids=["reference", "independent"])
@pytest.mark.parametrize("biases, reg", [(True, 0.1), (False, 0.0)])
def test_correct_gradients_pass(fn, biases, reg):
    result = npmf.gradcheck(gradients=fn, biases=biases, reg=reg)
    assert result["passed"] and result["error"] is None
    assert result["max_rel_error"] <= 1e-7
    assert all(b["diagnosis"] is None for b in result["blocks"].values())
    assert gc.format_report(result).rstrip().endswith(": OK")


@pytest.mark.parametrize("seed", [0, 3])
@pytest.mark.parametrize("name", list(MUTANTS))
def test_each_usual_mistake_is_caught_and_named_in_every_block(name, seed):
    result = npmf.gradcheck(gradients=MUTANTS[name], random_state=seed)
    assert not result["passed"]
    mistake = name.split("/")[0]
    assert {k: b["diagnosis"]["mistake"] for k, b in result["blocks"].items()} == dict.fromkeys(_BLOCKS, mistake)
    text = gc.format_report(result)
    summary = result["blocks"]["W"]["diagnosis"]["summary"]
    assert f"WRONG: {summary}" in text and f"W: {summary}" in text and text.rstrip().endswith("FAILED")


def test_ratios_are_reported_for_scaled_gradients():
    assert npmf.gradcheck(gradients=MUTANTS["factor_of_2/half"])["blocks"]["H"]["diagnosis"]["ratio"] == 0.5
    weird = npmf.gradcheck(gradients=scaled(3.0))["blocks"]["bi"]["diagnosis"]
    assert weird["mistake"] == "constant_factor" and weird["ratio"] == pytest.approx(3.0)


def test_only_the_wrong_block_is_named():
    def wrong_item_biases(W, H, bu, bi, u, i, e, reg=0.0):
        gW, gH, gbu, gbi = G.gradients(W, H, bu, bi, u, i, e, reg)
        gbi = np.zeros_like(bi)
        gbi[i] += 2.0 / len(e) * (e + reg * bi[i])
        return gW, gH, gbu, gbi

    result = npmf.gradcheck(gradients=wrong_item_biases)
    diagnoses = {k: b["diagnosis"] and b["diagnosis"]["mistake"] for k, b in result["blocks"].items()}
    assert diagnoses == {"W": None, "H": None, "bu": None, "bi": "no_scatter_add"}


def test_an_unknown_mistake_is_located_by_rows():
    def wrong_on_repeated_rows(W, H, bu, bi, u, i, e, reg=0.0):
        gW, gH, gbu, gbi = G.gradients(W, H, bu, bi, u, i, e, reg)
        repeated = np.flatnonzero(np.bincount(u) > 1)
        gW[repeated] += 0.123
        single.append(int(np.flatnonzero(np.bincount(i) == 1)[0]))
        gH[single[0], 0] += 0.5
        return gW, gH, gbu, gbi

    single = []

    blocks = npmf.gradcheck(gradients=wrong_on_repeated_rows)["blocks"]
    assert blocks["W"]["diagnosis"]["mistake"] == "unrecognised"
    assert "only rows that occur more than once" in blocks["W"]["diagnosis"]["hint"]
    assert f"rows [{single[0]}] are wrong, the others right" in blocks["H"]["diagnosis"]["hint"]


def test_the_skeleton_is_reported_as_not_implemented():
    result = npmf.gradcheck(gradients=student.load_function(f"{SKELETON}:gradients"))
    assert not result["passed"] and result["blocks"] == {} and result["max_rel_error"] is None
    assert result["error"]["kind"] == "not_implemented"
    assert "not implemented yet" in gc.format_report(result)
    assert result["error"]["where"].startswith(f'File "{SKELETON}"')
    json.dumps(result)


def test_an_exception_is_shown_at_the_learners_line():
    def broken(W, H, bu, bi, u, i, e, reg=0.0):
        gW = e * H[i]  # shapes (16,) and (16, 3) do not broadcast
        return gW, H, bu, bi

    result = npmf.gradcheck(gradients=broken)
    error = result["error"]
    assert error["kind"] == "exception" and error["message"].startswith("broken raised ValueError")
    assert error["where"] == f'File "{__file__}", line {broken.__code__.co_firstlineno + 1}, in broken'
    assert error["line"] == "gW = e * H[i]  # shapes (16,) and (16, 3) do not broadcast"
    assert not any("npmf" in frame and "tests" not in frame for frame in error["traceback"])
    assert error["line"] in gc.format_report(result)


def _returns(value):
    def gradients(W, H, bu, bi, u, i, e, reg=0.0):
        return value(W, H, bu, bi)

    return gradients


@pytest.mark.parametrize(
    "fn, match",
    [
        (_returns(lambda W, H, bu, bi: None), "returned None; expected a tuple (gW, gH, gbu, gbi)"),
        (_returns(lambda W, H, bu, bi: (W, H, bu)), "returned 3 values; expected 4"),
        (_returns(lambda W, H, bu, bi: W), "returned a ndarray; expected a tuple"),
        (
            _returns(lambda W, H, bu, bi: (W, H, bu[:, None], bi)),
            "gbu has shape (5, 1); expected (5,), the shape of bu",
        ),
        (_returns(lambda W, H, bu, bi: (W, H.astype(np.float32), bu, bi)), "gH has dtype float32; expected float64"),
        (_returns(lambda W, H, bu, bi: (W * np.nan, H, bu, bi)), "gW holds nan at index (0, 0); expected finite"),
        (_returns(lambda W, H, bu, bi: (W, H, bu, [[1.0], [2.0, 3.0]])), "gbi is not an array"),
    ],
    ids=["none", "three", "one-array", "shape", "dtype", "nan", "ragged"],
)
def test_a_wrong_return_names_what_was_expected(fn, match):
    result = npmf.gradcheck(gradients=fn)
    assert result["error"]["kind"] == "bad_return" and not result["passed"]
    assert match in result["error"]["message"]


def test_a_wrong_signature_is_named():
    def two_args(W, H):
        return W, H

    error = npmf.gradcheck(gradients=two_args)["error"]
    assert error["kind"] == "signature"
    assert "must take (W, H, bu, bi, u, i, e, reg)" in error["message"] and "(W, H)" in error["message"]


def test_the_learner_gets_copies_and_bad_arguments_raise():
    def vandal(W, H, bu, bi, u, i, e, reg=0.0):
        grads = G.gradients(W, H, bu, bi, u, i, e, reg)
        W[:] = 0.0
        u[:] = 0
        return grads

    assert npmf.gradcheck(gradients=vandal)["passed"]
    with pytest.raises(ValueError, match="not both"):
        npmf.gradcheck(gradients=G.gradients, grad_fn=gc.reference_gradients)
    with pytest.raises(TypeError, match="gradients must be a function"):
        npmf.gradcheck(gradients="gradients")


def test_diagnosis_of_the_reference_check_too():
    """The old ``grad_fn`` path gets the same per-block diagnosis."""

    def halved(W, H, bu, bi, mu, u, i, r, reg):
        return tuple(g / 2 for g in gc.reference_gradients(W, H, bu, bi, mu, u, i, r, reg))

    result = npmf.gradcheck(grad_fn=halved)
    assert result["blocks"]["W"]["diagnosis"]["mistake"] == "factor_of_2"
    assert npmf.gradcheck()["blocks"]["W"]["diagnosis"] is None
