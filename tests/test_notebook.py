"""examples/walkthrough.ipynb holds the cells of examples/walkthrough.py, its committed outputs, and runs on ML-100k."""

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(EXAMPLES))
try:
    import build_notebook
finally:
    sys.path.remove(str(EXAMPLES))

NOTEBOOK = EXAMPLES / "walkthrough.ipynb"


def _committed():
    return json.loads(NOTEBOOK.read_text(encoding="utf-8"))


def _text(cell):
    """Everything a code cell printed, as one string."""
    return "".join("".join(out.get("text", "")) for out in cell["outputs"] if out["output_type"] == "stream")


def _code(notebook):
    return [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]


def test_notebook_holds_the_script_cells():
    cells = build_notebook.read_cells(build_notebook.SCRIPT)
    assert len(cells) > 20 and {kind for kind, _ in cells} == {"code", "markdown"}
    assert build_notebook.notebook_cells(_committed()) == cells, (
        "examples/walkthrough.ipynb and walkthrough.py differ: run python examples/build_notebook.py"
    )


def test_percent_cells_are_read_and_bad_markers_named(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("# %% [markdown]\n# # Title\n#\n# text\n\n# %%\nx = 1\n\n\n# %%\nprint(x)\n")
    assert build_notebook.read_cells(script) == [
        ("markdown", "# Title\n\ntext"),
        ("code", "x = 1"),
        ("code", "print(x)"),
    ]
    script.write_text("# %% [raw]\nx\n")
    with pytest.raises(ValueError, match=r"s\.py:1: unknown cell marker"):
        build_notebook.read_cells(script)
    script.write_text("import os\n# %%\nx\n")
    with pytest.raises(ValueError, match=r"s\.py:1: text before the first"):
        build_notebook.read_cells(script)


def test_check_flag_reports_a_notebook_out_of_sync(tmp_path, capsys):
    stale = _committed()
    stale["cells"][1]["source"] = ["x = 1\n"]
    (tmp_path / "nb.ipynb").write_text(json.dumps(stale))
    assert build_notebook.main(["--check", "--output", str(tmp_path / "nb.ipynb")]) == 1
    assert "does not hold the cells" in capsys.readouterr().out
    assert build_notebook.main(["--check"]) == 0


def test_committed_notebook_shows_the_full_run():
    notebook = _committed()
    code = _code(notebook)
    assert [cell["execution_count"] for cell in code] == list(range(1, len(code) + 1)), "not executed in order"
    assert not [out for cell in code for out in cell["outputs"] if out["output_type"] == "error"]
    assert not [cell for cell in notebook["cells"] if cell["metadata"]], "volatile cell metadata was stored"
    assert notebook["metadata"] == build_notebook.METADATA
    printed = "".join(_text(cell) for cell in code)
    assert ", 100 epochs, seed 0" in printed
    assert "unique users, movies: (943, 1682)" in printed and "passed=True" in printed
    assert 10 <= len(re.findall(r"^Epoch \d+/100 ", printed, re.M)) <= 40, "the epoch log is not compact"
    pngs = [out for cell in code for out in cell["outputs"] if "image/png" in out.get("data", {})]
    assert len(pngs) == 2, "the loss curve and the optimizers' curves, as PNGs"
    assert NOTEBOOK.stat().st_size < 200_000
    assert re.search(r"^title\s*$", printed, re.M) and "factor 0, most:  " in printed  # the non-negative model's run


def _kernel_or_skip():
    for module in ("nbformat", "nbclient", "ipykernel"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (pip install 'npmf[test]'); the notebook is not executed")
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:
        pytest.skip("no Jupyter kernel 'python3' (pip install ipykernel); the notebook is not executed")


@pytest.mark.slow
def test_notebook_executes_on_ml100k(ml100k_home):
    _kernel_or_skip()
    notebook = build_notebook.build(build_notebook.notebook_cells(_committed()))
    ran = build_notebook.execute(notebook, epochs=2, timeout=600)
    code = _code(ran)
    assert not [out for cell in code for out in cell["outputs"] if out["output_type"] == "error"]
    printed = "".join(_text(cell) for cell in code)
    assert ", 2 epochs, seed 0" in printed
    assert "train, test: (80000, 20000)" in printed
    assert re.search(r"Epoch 1/2 - [\d.]+s - loss: \d+\.\d{4}\nEpoch 2/2 - ", printed)
    assert 0.5 < float(re.search(r"rounded MAE: ([\d.]+)", printed)[1]) < 1.5
    assert re.search(r"\nlazy_adam +[\d.]+ +[\d.]+", printed)
    if importlib.util.find_spec("matplotlib") is not None:
        assert sum("image/png" in out.get("data", {}) for cell in code for out in cell["outputs"]) == 2
    else:
        assert printed.count("matplotlib is not installed") == 2
    assert float(re.search(r"smallest factor: (\S+)", printed)[1]) >= 0
    assert re.search(r"^title\s*$", printed, re.M)  # the embeddings are indexed by movie title
    assert len(re.findall(r"^factor \d, (most|least): +\S", printed, re.M)) == 6
