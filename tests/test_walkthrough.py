"""examples/walkthrough.py runs end to end on ML-100k and prints every artefact of the recipe."""

import argparse
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPT = EXAMPLES / "walkthrough.py"


@pytest.mark.slow
def test_walkthrough_prints_every_step(ml100k_home, tmp_path):
    png = tmp_path / "loss.png"
    env = {**os.environ, "NPMF_DATA_DIR": str(ml100k_home)}
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--epochs", "2", "--plot", str(png)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "2 epochs, seed 0" in out
    assert "unique users, movies: (943, 1682)" in out
    assert "train, test: (80000, 20000)" in out
    assert re.search(r"user_factors_ +W +\(943, 3\) +2,829 +yes", out)
    assert "Trainable params:" in out
    assert re.search(r"Epoch 1/2 - [\d.]+s - loss: \d+\.\d{4}\nEpoch 2/2 - ", out)
    mae = float(re.search(r"rounded MAE: ([\d.]+)", out)[1])
    assert 0.5 < mae < 1.5
    assert re.search(r"item_id\s*\n0\s+-?\d\.\d+", out)  # the embeddings' head, indexed by movie code
    assert "max rel. error" in out and "passed=True" in out  # the gradient check
    assert re.search(r"reference gradients: max rel. error \S+, passed=True", out)  # a learner's own function
    assert re.search(r"\nadam +[\d.]+ +[\d.]+ +[\d.]+ +[\d.]+\nlazy_adam +[\d.]+", out)  # dense against lazy
    assert "lazy Adam takes" in out
    assert float(re.search(r"smallest factor: (\S+)", out)[1]) >= 0
    assert len(re.findall(r"^factor \d, (most|least): +\S", out, re.M)) == 6  # titles per trait
    if importlib.util.find_spec("matplotlib") is not None:
        for path in (png, tmp_path / "loss_optimizers.png"):
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert "matplotlib is not installed" in out and not png.exists()


def _run_plot_cell(path):
    """Execute the script's loss-curve cell alone, on a fake fitted model, as the script (not a notebook) runs it."""
    sys.path.insert(0, str(EXAMPLES))
    try:
        from build_notebook import read_cells
    finally:
        sys.path.remove(str(EXAMPLES))
    (cell,) = [source for kind, source in read_cells(SCRIPT) if kind == "code" and "def plot_losses" in source]
    namespace = {"np": np, "model": _Fitted(), "IN_NOTEBOOK": False, "args": argparse.Namespace(plot=str(path))}
    exec(compile(cell, str(SCRIPT), "exec"), namespace)


class _Fitted:
    history_ = {"loss": [12.2, 4.7, 1.97]}


def test_plot_is_skipped_without_matplotlib(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` raise ImportError
    _run_plot_cell(tmp_path / "loss.png")
    assert "matplotlib is not installed" in capsys.readouterr().out
    assert not (tmp_path / "loss.png").exists()


def test_plot_is_a_png_with_matplotlib(tmp_path):
    pytest.importorskip("matplotlib")
    _run_plot_cell(tmp_path / "loss.png")
    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
