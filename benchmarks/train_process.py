"""The whole `npmf train` process, warm, and where its time goes.

Times ``python -m npmf train --quiet`` (the Keras recipe on ML-100k: import,
read, split, 100 epochs of dense ``adam``, evaluate) as a whole process, after
one warm-up run that fills Numba's cache, and then the same steps one by one
in a child process that reports the time of each phase: interpreter start,
``import npmf``, reading ML-100k, the split, the fit, and the evaluation. The
phases are what ``npmf.cli.cmd_train`` does, in its order; "start and exit"
is the whole wall time of the child less its phases. Runs alternate (process,
phases, process, ...), medians are quoted. Target (issue 11): at most 2.0 s.

Usage::

    NPMF_DATA_DIR=../shared/data python benchmarks/train_process.py [--repeats 5] [--out DIR]

Writes ``train_process.json`` and ``.md`` to ``--out`` (default ``benchmarks/results/train_process/``). The
process is run with the Python that runs this script, so its environment counts: importing pandas and Numba
takes longer in a venv with many optional packages (pyarrow, scipy, ...) than in one with npmf's three
dependencies alone, as a new user's ``pip install .`` has. The record names the environment and how many
distributions it holds; run it from a clean venv for the new user's figure.
"""

import argparse
import importlib.metadata
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from machine import describe, markdown

RESULTS = Path(__file__).parent / "results" / "train_process"
TARGET_SECONDS = 2.0

# What cmd_train does, phase by phase (the default preset, seed 0, test_size 0.2).
PHASES = r"""
import json, time
t = [time.perf_counter()]
import npmf
from npmf import metrics, presets
t.append(time.perf_counter())
df = npmf.load_movielens("ml-100k")
t.append(time.perf_counter())
train, test = npmf.train_test_split(df, test_size=0.2, random_state=0)
t.append(time.perf_counter())
model = presets.from_preset("seed", random_state=0)
model.fit(train.user_id, train.item_id, train.rating)
t.append(time.perf_counter())
pred = model.predict(test.user_id, test.item_id)
mae = metrics.rounded_mae(test.rating, pred, step=metrics.rating_step(train.rating))
t.append(time.perf_counter())
names = ["import npmf", "read ML-100k", "split", "fit (100 epochs)", "predict and evaluate"]
phases = dict(zip(names, [b - a for a, b in zip(t, t[1:])]))
# The fit, split: its first epoch loads the kernels from Numba's cache (and compiles nothing when warm).
sec = model.history_["seconds"]
fit = phases.pop("fit (100 epochs)")
phases = {**{k: phases[k] for k in names[:3]}, "fit: setup (checks, id encoding)": fit - sum(sec),
          "fit: epoch 1 (with loading the kernels from the cache)": sec[0],
          f"fit: epochs 2-{len(sec)}": sum(sec[1:]), "predict and evaluate": phases["predict and evaluate"]}
print(json.dumps({"phases": phases, "epoch_median": sorted(sec)[len(sec) // 2],
                  "final_loss": model.history_["loss"][-1], "rounded_mae": mae}))
"""


def run_process():
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "npmf", "train", "--quiet"], check=True, capture_output=True)
    return time.perf_counter() - start


def run_phases():
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", PHASES], check=True, capture_output=True, text=True).stdout
    wall = time.perf_counter() - start
    record = json.loads(out.strip().splitlines()[-1])
    record["phases"]["interpreter start and exit"] = wall - sum(record["phases"].values())
    return record


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    machine = describe()
    environment = {"prefix": sys.prefix, "distributions": sum(1 for _ in importlib.metadata.distributions())}
    run_process()  # warm-up: fills Numba's on-disk cache
    walls, phases = [], []
    for _ in range(args.repeats):
        walls.append(run_process())
        phases.append(run_phases())
    machine["load_avg_1_5_15_end"] = [round(x, 2) for x in os.getloadavg()]
    names = list(phases[0]["phases"])
    medians = {name: statistics.median(p["phases"][name] for p in phases) for name in names}
    record = {
        "machine": machine,
        "environment": environment,
        "repeats": args.repeats,
        "process_seconds": walls,
        "process_median_seconds": statistics.median(walls),
        "target_seconds": TARGET_SECONDS,
        "meets_target": statistics.median(walls) <= TARGET_SECONDS,
        "phase_median_seconds": medians,
        "epoch_median_seconds": statistics.median(p["epoch_median"] for p in phases),
        "phases_all": phases,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "train_process.json").write_text(json.dumps(record, indent=2) + "\n")
    verdict = "meets" if record["meets_target"] else "misses"
    lines = [
        "# The whole `npmf train` process, warm (ML-100k, the Keras recipe)",
        "",
        markdown({key: value for key, value in machine.items() if key != "load_avg_1_5_15_end"})
        + f" Load average at the end: {machine['load_avg_1_5_15_end']}.",
        "",
        f"Python environment: `{environment['prefix']}`, {environment['distributions']} distributions installed.",
        "",
        f"`python -m npmf train --quiet`, median of {args.repeats} warm runs: "
        f"**{record['process_median_seconds']:.2f} s** "
        f"({verdict} the {TARGET_SECONDS:.1f} s target). Final loss {phases[0]['final_loss']:.6f}, rounded MAE "
        f"{phases[0]['rounded_mae']:.5f}.",
        "",
        "Where the time goes (the same steps in a child process, medians):",
        "",
        "| phase | seconds | share |",
        "|---|---|---|",
    ]
    total = sum(medians.values())
    for name in names:
        lines.append(f"| {name} | {medians[name]:.3f} | {medians[name] / total:.0%} |")
    epoch = record["epoch_median_seconds"]
    lines += [
        "",
        f"Median epoch {epoch * 1e3:.1f} ms; epoch 1 less a median epoch is the time to load the kernels from "
        f"Numba's cache: {(medians[names[4]] - epoch) * 1e3:.0f} ms.",
    ]
    (args.out / "train_process.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
