"""The Keras comparison script runs end to end (one epoch, one seed), so it cannot rot.

Nothing here is timed. Without Keras (CI installs only ``.[test]``) the script
runs npmf's side alone, and the test checks that it says so.
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "keras_compare.py"


@pytest.mark.slow
def test_keras_compare_runs_for_one_epoch(ml100k_home, tmp_path):
    has_keras = importlib.util.find_spec("keras") is not None
    with_keras = has_keras and importlib.util.find_spec("jax") is not None
    cmd = [sys.executable, str(SCRIPT), "--epochs", "1", "--seeds", "1", "--backends", "jax", "--out", str(tmp_path)]
    env = {**os.environ, "NPMF_DATA_DIR": str(ml100k_home)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr

    data = json.loads((tmp_path / "keras.json").read_text())
    (experiment,) = data["experiments"]
    runs = {(r["library"], r["variant"], r["batch_size"]) for r in experiment["runs"]}
    expected = {("npmf", opt, bs) for opt in ("adam", "lazy_adam") for bs in (32, 1024)}
    if with_keras:
        expected |= {("keras", "jax", 32), ("keras", "jax", 1024)}
    elif not has_keras:
        assert "Keras is not installed" in proc.stderr
    else:
        assert "Keras backend jax is not installed" in proc.stderr
    assert runs == expected
    for run in experiment["runs"]:
        assert len(run["loss"]) == len(run["epoch_seconds"]) == 1
        assert 0 < run["loss"][0] < 20 and 0 < run["rounded_mae"] < 4
    assert "| npmf `adam` |" in (tmp_path / "keras.md").read_text()
    if with_keras:
        assert "npmf adam vs keras jax" in experiment["summary"]["speed"]["32"]["ratios"]
