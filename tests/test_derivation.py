"""docs/derivation.md against the code: every function it cites exists, where it says.

A reference is written `` `npmf/sgd/gradients.py` `gradients` (lines 88–104) ``: the
file, the function (``Class.method`` for a method) and the lines from its
``def`` (or its decorator) to its end. A reference holds when

* the module imports and the function exists;
* the cited first line is within ``TOLERANCE`` lines of the real first line;
* the cited last line falls inside the function, or at most ``TOLERANCE``
  lines past its end.

So a few lines of drift (an import added above, a function that grew) pass,
but a function that moved elsewhere, was renamed or was removed fails. When it
fails, ``python tests/test_derivation.py --fix`` rewrites the line numbers of
every reference from the code (then reread the sentences around any that moved).
"""

import importlib
import inspect
import re
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "derivation.md"
TOLERANCE = 5
REFERENCE = re.compile(r"`(npmf/[\w/]+\.py)`\s+`([\w.]+)`\s+\(lines (\d+)[–-](\d+)\)")
# A file and a function with no line range: a reference the checks above would silently skip.
MENTION = re.compile(r"`(npmf/[\w/]+\.py)`\s+`([\w.]+)`")


def references(text):
    """Every (path, name, first, last) cited in ``text``."""
    return [(m[1], m[2], int(m[3]), int(m[4])) for m in REFERENCE.finditer(text)]


def real_lines(path, name):
    """First and last line of function ``name`` of the module at ``path``; raises if it is gone."""
    obj = importlib.import_module(path[:-3].replace("/", "."))
    for part in name.split("."):
        obj = getattr(obj, part)
    obj = getattr(obj, "py_func", obj)  # a Numba dispatcher wraps the Python function
    source, first = inspect.getsourcelines(obj)
    return first, first + len(source) - 1


def problem(path, name, first, last):
    """Why a reference does not hold, or None."""
    try:
        start, end = real_lines(path, name)
    except (ImportError, AttributeError, TypeError, OSError) as exc:
        return f"{path} {name}: not found ({exc})"
    if abs(first - start) > TOLERANCE or not start <= last <= end + TOLERANCE:
        return f"{path} {name}: cited lines {first}-{last}, but it is at lines {start}-{end}"
    return None


def test_the_document_cites_the_code_of_every_section():
    text = DOC.read_text(encoding="utf-8")
    sections = re.split(r"\n## (?=\d)", text)[1:]  # the numbered sections: "## 1. The model", ...
    assert len(sections) >= 5
    for section in sections:
        assert references(section), f"section '{section.splitlines()[0]}' cites no code"
    # Every numbered (sub)section that shows an equation names the code that implements it.
    for part in re.split(r"\n##+ (?=\d)", text)[1:]:
        if "$$" in part:
            assert references(part), f"section '{part.splitlines()[0]}' has an equation but cites no code"
    cited = {(p, n) for p, n, _, _ in references(text)}
    for needed in ["predict", "loss", "gradients", "adam_step_sizes", "adam_update", "epoch_numpy", "_epoch"]:
        assert any(n == needed for _, n in cited), f"{needed} is not cited"


def test_every_mention_of_a_function_is_a_full_reference():
    text = DOC.read_text(encoding="utf-8")
    assert len(MENTION.findall(text)) == len(references(text))


def test_every_reference_points_at_its_function():
    refs = references(DOC.read_text(encoding="utf-8"))
    failures = [msg for ref in refs if (msg := problem(*ref))]
    assert not failures, "\n".join(failures) + "\nrun: python tests/test_derivation.py --fix"


@pytest.mark.parametrize(
    "ref, ok",
    [
        (("npmf/sgd/gradients.py", "gradients"), True),
        (("npmf/sgd/gradients.py", "no_such_function"), False),
        (("npmf/no_such_module.py", "gradients"), False),
    ],
)
def test_the_check_catches_a_missing_function(ref, ok):
    first, last = real_lines("npmf/sgd/gradients.py", "gradients")
    assert (problem(*ref, first, last) is None) is ok


def test_the_check_catches_lines_that_moved():
    first, last = real_lines("npmf/sgd/gradients.py", "gradients")
    assert problem("npmf/sgd/gradients.py", "gradients", first + TOLERANCE, last) is None
    assert problem("npmf/sgd/gradients.py", "gradients", first + TOLERANCE + 1, last) is not None
    assert problem("npmf/sgd/gradients.py", "gradients", first, last + TOLERANCE + 1) is not None
    assert problem("npmf/sgd/gradients.py", "gradients", first, first - 1) is not None
    assert references("`npmf/a.py` `f` (lines 3–9) and `npmf/b/c.py` `K.m` (lines 10-12)") == [
        ("npmf/a.py", "f", 3, 9),
        ("npmf/b/c.py", "K.m", 10, 12),
    ]


def fix():
    """Rewrite every reference's line numbers in docs/derivation.md from the code."""

    def real(m):
        start, end = real_lines(m[1], m[2])
        return re.sub(r"\(lines \d+[–-]\d+\)", f"(lines {start}–{end})", m[0])

    text = DOC.read_text(encoding="utf-8")
    DOC.write_text(REFERENCE.sub(real, text), encoding="utf-8")


if __name__ == "__main__":
    if sys.argv[1:] != ["--fix"]:
        sys.exit("usage: python tests/test_derivation.py --fix")
    fix()
