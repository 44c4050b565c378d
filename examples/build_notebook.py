"""Write ``examples/walkthrough.ipynb`` from ``examples/walkthrough.py``, and run it to store its outputs.

The script is the one source. It is in the percent format: a line ``# %%`` opens a code cell, and
``# %% [markdown]`` opens a markdown cell whose lines are comments (``# `` is stripped). The notebook holds
exactly these cells, in this order; ``tests/test_notebook.py`` fails when one of the two is edited alone.

Usage (from the repository's root, with ``NPMF_DATA_DIR`` pointing at MovieLens-100k or a network to fetch it)::

    python examples/build_notebook.py               # write and execute it, 100 epochs (a few minutes)
    python examples/build_notebook.py --epochs 2    # a quick run (not for committing)
    python examples/build_notebook.py --no-execute  # the cells only, without outputs
    python examples/build_notebook.py --check       # exit 1 when the notebook and the script differ

Writing needs nothing beyond the standard library; executing needs ``nbformat``, ``nbclient`` and ``ipykernel``
(the ``test`` extra). The kernel imports npmf from this repository (its root goes first on ``PYTHONPATH``), and runs
in a temporary folder. Volatile metadata (execution times, the kernel's version strings) is not stored, so a
regeneration changes only what the run printed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "walkthrough.py"
NOTEBOOK = HERE / "walkthrough.ipynb"
EPOCHS_VARIABLE = "NPMF_WALKTHROUGH_EPOCHS"
METADATA = {
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}


def read_cells(path=SCRIPT):
    """The percent-format cells of ``path``: a list of ``(cell_type, source)``, source without the markers."""
    cells, kind, lines = [], None, []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("# %%"):
            if kind is not None:
                cells.append((kind, _source(kind, lines)))
            marker = line[len("# %%") :].strip()
            if marker not in ("", "[markdown]"):
                raise ValueError(f"{path}:{number}: unknown cell marker {line!r}; use '# %%' or '# %% [markdown]'")
            kind, lines = ("markdown" if marker else "code"), []
        elif kind is None:
            if line.strip():
                raise ValueError(f"{path}:{number}: text before the first '# %%' marker")
        else:
            if kind == "markdown" and line.strip() and not line.startswith("#"):
                raise ValueError(f"{path}:{number}: a markdown cell's lines must be comments, got {line!r}")
            lines.append(line)
    if kind is not None:
        cells.append((kind, _source(kind, lines)))
    return cells


def _source(kind, lines):
    if kind == "markdown":
        lines = [line[2:] if line.startswith("# ") else line[1:] for line in lines]
    return "\n".join(lines).strip("\n")


def notebook_cells(notebook):
    """The ``(cell_type, source)`` of every cell of a notebook dict, as :func:`read_cells` gives them."""
    return [(cell["cell_type"], "".join(cell["source"])) for cell in notebook["cells"]]


def build(cells):
    """A notebook (nbformat 4.5, as a plain dict) holding ``cells``, without outputs."""
    out = []
    for index, (kind, source) in enumerate(cells):
        cell = {"cell_type": kind, "id": f"cell-{index:02d}", "metadata": {}, "source": source.splitlines(True)}
        if kind == "code":
            cell.update(execution_count=None, outputs=[])
        out.append(cell)
    return {"cells": out, "metadata": METADATA, "nbformat": 4, "nbformat_minor": 5}


def execute(notebook, epochs=None, timeout=1800):
    """Run ``notebook`` (a dict) in a fresh kernel and return it with its outputs, volatile metadata stripped.

    ``epochs`` sets ``$NPMF_WALKTHROUGH_EPOCHS`` for the kernel (None: the notebook's default, 100). Raises
    ``nbclient.exceptions.CellExecutionError`` when a cell fails.
    """
    import nbformat
    from nbclient import NotebookClient

    path = os.pathsep.join(p for p in (str(HERE.parent), os.environ.get("PYTHONPATH")) if p)
    env = {EPOCHS_VARIABLE: None if epochs is None else str(int(epochs)), "PYTHONPATH": path}
    saved = {name: os.environ.get(name) for name in env}
    nb = nbformat.reads(json.dumps(notebook), as_version=4)
    try:
        _set_environ(env)  # the kernel inherits this process's environment
        with tempfile.TemporaryDirectory() as folder:
            client = NotebookClient(
                nb,
                timeout=timeout,
                kernel_name="python3",
                record_timing=False,
                resources={"metadata": {"path": folder}},
            )
            client.execute()
    finally:
        _set_environ(saved)
    nbformat.validate(nb)
    result = json.loads(json.dumps(nb))
    result["metadata"] = METADATA
    for cell in result["cells"]:
        cell["metadata"].pop("execution", None)
        cell["source"] = "".join(cell["source"]).splitlines(True)  # one line per string, as Jupyter writes it
        if cell["cell_type"] == "code":
            cell["outputs"] = _merge_streams(cell["outputs"])
    return result


def _merge_streams(outputs):
    """Join consecutive stream outputs of one name (each flushed print arrives as its own) into one."""
    merged = []
    for output in outputs:
        last = merged[-1] if merged else None
        if (
            output["output_type"] == "stream"
            and last
            and last["output_type"] == "stream"
            and last["name"] == output["name"]
        ):
            last["text"] = "".join(last["text"]) + "".join(output["text"])
        else:
            merged.append(output)
    for output in merged:
        if output["output_type"] == "stream":
            output["text"] = "".join(output["text"]).splitlines(True)
    return merged


def _set_environ(values):
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def write(notebook, path=NOTEBOOK):
    Path(path).write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, help="epochs for the run (default: the notebook's, 100)")
    parser.add_argument("--no-execute", action="store_true", help="write the cells without running them")
    parser.add_argument("--check", action="store_true", help="only check that the notebook holds the script's cells")
    parser.add_argument("--output", type=Path, default=NOTEBOOK, help=f"notebook to write (default {NOTEBOOK.name})")
    args = parser.parse_args(argv)
    cells = read_cells(SCRIPT)
    if args.check:
        if not args.output.is_file() or notebook_cells(json.loads(args.output.read_text("utf-8"))) != cells:
            print(f"{args.output} does not hold the cells of {SCRIPT}: run python {Path(__file__).name}")
            return 1
        print(f"{args.output} holds the {len(cells)} cells of {SCRIPT.name}")
        return 0
    notebook = build(cells)
    if not args.no_execute:
        notebook = execute(notebook, args.epochs)
    write(notebook, args.output)
    print(f"wrote {args.output} ({len(cells)} cells{'' if args.no_execute else ', executed'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
