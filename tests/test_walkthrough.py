"""examples/walkthrough.py runs end to end on ML-100k and prints every artefact of the recipe."""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "walkthrough.py"


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
    for number in range(1, 8):
        assert f"=== Step {number}:" in out
    assert "unique users, movies: (943, 1682)" in out
    assert "train, test: (80000, 20000)" in out
    assert re.search(r"user_factors_ +W +\(943, 3\) +2,829 +yes", out)
    assert "Trainable params:" in out
    assert re.search(r"Epoch 1/2 - [\d.]+s - loss: \d+\.\d{4}\nEpoch 2/2 - ", out)
    mae = float(re.search(r"rounded MAE: ([\d.]+)", out)[1])
    assert 0.5 < mae < 1.5
    assert re.search(r"item_id\s*\n0\s+-?\d\.\d+", out)  # the embeddings' head, indexed by movie code
    if importlib.util.find_spec("matplotlib") is not None:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert "matplotlib is not installed" in out and not png.exists()


def _load_script():
    spec = importlib.util.spec_from_file_location("walkthrough", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Fitted:
    history_ = {"loss": [12.2, 4.7, 1.97]}


def test_plot_is_skipped_without_matplotlib(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` raise ImportError
    _load_script().plot_loss(_Fitted(), tmp_path / "loss.png")
    assert "matplotlib is not installed" in capsys.readouterr().out
    assert not (tmp_path / "loss.png").exists()


def test_plot_is_a_png_with_matplotlib(tmp_path):
    pytest.importorskip("matplotlib")
    _load_script().plot_loss(_Fitted(), tmp_path / "loss.png")
    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
