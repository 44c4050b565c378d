"""``npmf gradcheck --gradients FILE.py:FUNCTION``: loading a learner's file, the report, the exit codes."""

import json
from pathlib import Path

import pytest

from npmf.cli import main

SKELETON = Path(__file__).resolve().parents[1] / "examples" / "exercises" / "gradients_exercise.py"

RIGHT = """
import numpy as np


def gradients(W, H, bu, bi, u, i, e, reg=0.0):
    c = 2.0 / len(e)
    gW, gH, gbu, gbi = (np.zeros_like(p) for p in (W, H, bu, bi))
    np.add.at(gW, u, c * (e[:, None] * H[i] + reg * W[u]))
    np.add.at(gH, i, c * (e[:, None] * W[u] + reg * H[i]))
    np.add.at(gbu, u, c * (e + reg * bu[u]))
    np.add.at(gbi, i, c * (e + reg * bi[i]))
    return gW, gH, gbu, gbi
"""

# The classic mistake, in one block only: the item factors miss the scatter-add.
WRONG = RIGHT.replace(
    "np.add.at(gH, i, c * (e[:, None] * W[u] + reg * H[i]))", "gH[i] += c * (e[:, None] * W[u] + reg * H[i])"
)


def _file(tmp_path, text, name="mine.py"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_right_gradients_exit_zero(tmp_path, capsys):
    path = _file(tmp_path, RIGHT)
    assert main(["gradcheck", "--gradients", f"{path}:gradients"]) == 0
    assert capsys.readouterr().out.rstrip().endswith(": OK")


def test_wrong_gradients_exit_one_and_json_names_the_block(tmp_path, capsys):
    path = _file(tmp_path, WRONG)
    assert main(["gradcheck", "--json", "--gradients", f"{path}:gradients"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert not result["passed"] and result["error"] is None
    assert {k: b["diagnosis"] and b["diagnosis"]["mistake"] for k, b in result["blocks"].items()} == {
        "W": None,
        "H": "no_scatter_add",
        "bu": None,
        "bi": None,
    }
    assert set(result) == {"max_rel_error", "tolerance", "passed", "problem", "error", "blocks"}


def test_wrong_gradients_text_gives_the_hint(tmp_path, capsys):
    assert main(["gradcheck", "--gradients", f"{_file(tmp_path, WRONG)}:gradients"]) == 1
    out = capsys.readouterr().out
    assert "H: a repeated row got only one occurrence's gradient" in out and "np.add.at" in out


def test_the_skeleton_says_not_implemented_and_exits_one(capsys):
    assert main(["gradcheck", "--gradients", f"{SKELETON}:gradients"]) == 1
    out = capsys.readouterr().out
    assert "gradients is not implemented yet" in out and "raise NotImplementedError" in out


def test_an_exception_in_the_file_is_shown_at_its_line(tmp_path, capsys):
    path = _file(tmp_path, RIGHT.replace("    c = 2.0 / len(e)\n", "    c = 2.0 / len(e)\n    oops = W[u] @ H[i]\n"))
    assert main(["gradcheck", "--json", "--gradients", f"{path}:gradients"]) == 1
    error = json.loads(capsys.readouterr().out)["error"]
    assert error["kind"] == "exception" and error["where"] == f'File "{path}", line 7, in gradients'
    assert error["line"] == "oops = W[u] @ H[i]"


@pytest.mark.parametrize(
    "text, spec, message",
    [
        (None, "{dir}/absent.py:gradients", "--gradients file not found: {dir}/absent.py"),
        (RIGHT, "{path}", "--gradients must be FILE.py:FUNCTION"),
        (RIGHT, "{path}:gradient", "--gradients file {path} has no function 'gradient'; it defines: gradients"),
        ("gradients = 3\n", "{path}:gradients", "--gradients 'gradients' in {path} is a int, not a function"),
        ("def gradients(W, H:\n    pass\n", "{path}:gradients", "--gradients file {path}, line 1: syntax error"),
        (
            "import numpy\nnumpy.nope()\n",
            "{path}:gradients",
            "--gradients file {path} raised AttributeError while loading: module 'numpy' has no attribute 'nope' "
            '(File "{path}", line 2, in <module>: numpy.nope())',
        ),
    ],
    ids=["missing-file", "no-colon", "missing-function", "not-callable", "syntax-error", "raises-on-load"],
)
def test_a_file_that_cannot_be_loaded_is_a_one_line_error_exit_two(tmp_path, capsys, text, spec, message):
    path = _file(tmp_path, text) if text is not None else tmp_path / "absent.py"
    fill = {"dir": tmp_path, "path": path}
    assert main(["gradcheck", "--gradients", spec.format(**fill)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("npmf gradcheck: error: " + message.format(**fill)), err
    assert err.count("\n") == 1


def test_kernel_and_gradients_exclude_each_other(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["gradcheck", "--kernel", "--gradients", f"{_file(tmp_path, RIGHT)}:gradients"])
    assert exit_.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
