"""The hand-derived gradients against central finite differences, and the check's own power to fail."""

import importlib
import json

import numpy as np
import pytest

import npmf
from npmf.cli import main
from npmf.sgd import gradients as G

# npmf.gradcheck is the function (exported by the package); the module is reached this way.
gc = importlib.import_module("npmf.sgd.gradcheck")


@pytest.mark.parametrize("biases", [False, True])
@pytest.mark.parametrize("reg", [0.0, 0.3])
@pytest.mark.parametrize("grad_fn", [gc.reference_gradients, gc.kernel_gradients], ids=["numpy", "numba"])
def test_gradients_match_central_differences(biases, reg, grad_fn):
    result = npmf.gradcheck(biases=biases, reg=reg, random_state=1, grad_fn=grad_fn)
    assert list(result["blocks"]) == (["W", "H", "bu", "bi"] if biases else ["W", "H"])
    assert result["max_rel_error"] <= 1e-7
    assert result["passed"]
    for block in result["blocks"].values():
        # Every entry was checked and none had a vanishing gradient (the batch lists every row).
        assert len(block["entries"]) == np.prod(block["shape"])
        assert min(abs(a) for _, a, _, _ in block["entries"]) > 0


def test_problem_batch_lists_every_row_and_repeats_some():
    params, mu, u, i, r = gc._problem(5, 4, 3, 16, True, np.random.default_rng(0))
    assert set(u) == set(range(5)) and set(i) == set(range(4))
    assert np.bincount(u).max() > 1 and np.bincount(i).max() > 1
    assert mu == r.mean()


def test_several_seeds_and_a_larger_problem():
    for seed in range(5):
        assert npmf.gradcheck(random_state=seed)["max_rel_error"] <= 1e-7
    big = npmf.gradcheck(n_users=12, n_items=9, n_factors=5, n_ratings=40, random_state=0)
    assert big["blocks"]["W"]["shape"] == [12, 5]
    assert big["passed"]


def _without_scatter_add(W, H, bu, bi, mu, u, i, r, reg):
    """The classic bug: ``g[u] += ...`` keeps only the last occurrence of a repeated row."""
    e = G.errors(W, H, bu, bi, mu, u, i, r)
    c = 2.0 / len(e)
    gW, gH, gbu, gbi = (np.zeros_like(p) for p in (W, H, bu, bi))
    gW[u] += c * (e[:, None] * H[i] + reg * W[u])
    gH[i] += c * (e[:, None] * W[u] + reg * H[i])
    gbu[u] += c * (e + reg * bu[u])
    gbi[i] += c * (e + reg * bi[i])
    return gW, gH, gbu, gbi


def _reg_per_row(W, H, bu, bi, mu, u, i, r, reg):
    """L2 applied once per distinct row instead of once per occurrence."""
    grads = list(gc.reference_gradients(W, H, bu, bi, mu, u, i, r, 0.0))
    for g, p, rows in zip(grads, (W, H, bu, bi), (u, i, u, i)):
        distinct = np.unique(rows)
        g[distinct] += 2.0 / len(r) * reg * p[distinct]
    return tuple(grads)


def _perturbed(W, H, bu, bi, mu, u, i, r, reg):
    """The right gradients with one entry of the item biases off by one part in a million."""
    gW, gH, gbu, gbi = gc.reference_gradients(W, H, bu, bi, mu, u, i, r, reg)
    gbi[2] *= 1 + 1e-6
    return gW, gH, gbu, gbi


@pytest.mark.parametrize(
    "wrong, block",
    [(_without_scatter_add, "W"), (_reg_per_row, "W"), (_perturbed, "bi")],
    ids=["no-scatter-add", "reg-per-row", "perturbed-1e-6"],
)
def test_a_wrong_gradient_is_detected(wrong, block):
    result = npmf.gradcheck(grad_fn=wrong)
    assert not result["passed"]
    assert result["max_rel_error"] > 1e-7
    assert result["blocks"][block]["max_rel_error"] > 1e-7
    assert "FAILED" in gc.format_report(result)


def test_report_is_json_and_a_table_per_block():
    result = npmf.gradcheck()
    again = json.loads(json.dumps(result))
    assert again["max_rel_error"] == result["max_rel_error"]
    text = gc.format_report(result)
    for name in ("W (5x3)", "H (4x3)", "bu (5)", "bi (4)"):
        assert name in text
    assert text.count("max relative error") == 5
    assert text.rstrip().endswith(": OK")


@pytest.mark.parametrize(
    "kwargs, match",
    [({"n_ratings": 5}, "n_ratings must exceed"), ({"step": 0.0}, "step"), ({"reg": -1.0}, "reg")],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        npmf.gradcheck(**kwargs)


def test_cli_prints_tables_and_exits_zero(capsys):
    assert main(["gradcheck", "--no-biases", "--reg", "0"]) == 0
    out = capsys.readouterr().out
    assert "W (5x3)" in out and "bu (" not in out
    assert out.rstrip().endswith(": OK")


def test_cli_json_and_kernel(capsys):
    assert main(["gradcheck", "--json", "--kernel", "--seed", "3"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["max_rel_error"] <= 1e-7
    assert set(result["blocks"]) == {"W", "H", "bu", "bi"}


def test_cli_exits_one_when_the_check_fails(monkeypatch, capsys):
    monkeypatch.setattr(gc, "reference_gradients", _without_scatter_add)
    assert main(["gradcheck", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["max_rel_error"] > 1e-7


def test_cli_user_error_is_one_line_and_exit_two(capsys):
    assert main(["gradcheck", "--users", "20"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("npmf gradcheck: error:") and err.count("\n") == 1


def test_cli_errors_name_the_flag(capsys):
    from npmf.cli import main

    assert main(["gradcheck", "--ratings", "0"]) == 2
    err = capsys.readouterr().err
    assert "--ratings must be an integer >= 1" in err and "n_ratings" not in err
