"""The first run's compilation: ``npmf train`` on ML-100k with an empty Numba cache, then with a warm one.

Numba compiles npmf's kernels the first time they run and caches the machine
code (``cache=True``) under ``NUMBA_CACHE_DIR`` (by default beside the
package's source, or in ``~/.cache`` when that is read-only). So the first
``npmf train`` after installing pays for compilation, and later ones do not.
Each repeat here makes a fresh, empty ``NUMBA_CACHE_DIR``, runs
``python -m npmf train --json`` in it (cold), then again (warm), then with
other numbers of factors in turn, 4, 10 and 20, each twice (its first run
and, warm, its second, whose difference is what the new number of factors
compiled): dense Adam's serial kernel is compiled per record width up to
k = 4 (``--factors 4`` compiles it again) and once for every wider one
(``--factors 10`` compiles that one, which ``--factors 20`` then loads);
they alternate, and the table gives medians. The JSON's ``fit_seconds`` separates
the fit from the rest of the process (imports, reading and splitting the
data, evaluation).

Run::

    NPMF_DATA_DIR=/path/to/data python benchmarks/first_run.py [--repeats 3] [--preset seed]

writes ``benchmarks/results/first_run/first_run.json`` and ``first_run.md``.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

try:
    from machine import describe, markdown
except ImportError:  # run from elsewhere
    from benchmarks.machine import describe, markdown

RESULTS = Path(__file__).parent / "results" / "first_run"
NEW_KS = (4, 10, 20)  # numbers of factors the warm cache has not compiled for, in this order


def train_once(cache_dir, preset, *options):
    """Wall seconds of one ``npmf train`` process, and the fit's own seconds and final loss from its JSON."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir))
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "npmf", "train", "--preset", preset, "--json", *options],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - start
    out = json.loads(proc.stdout)
    return {"wall": wall, "fit": out["fit_seconds"], "loss": out["history"]["loss"][-1], "mae": out["rounded_mae"]}


def run(repeats, preset):
    runs = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="npmf-numba-cache-") as cache:
            cold = train_once(cache, preset)
            warm = train_once(cache, preset)
            new = {}
            for k in NEW_KS:
                new[f"k{k}"] = train_once(cache, preset, "--factors", str(k))
                new[f"k{k}_warm"] = train_once(cache, preset, "--factors", str(k))
        runs.append({"cold": cold, "warm": warm, **new})
        print(
            f"cold {cold['wall']:.2f}s (fit {cold['fit']:.2f}s)   warm {warm['wall']:.2f}s (fit {warm['fit']:.2f}s)"
            + "".join(f"   k={k} {new[f'k{k}']['wall']:.2f}s then {new[f'k{k}_warm']['wall']:.2f}s" for k in NEW_KS)
        )
    med = {
        side: {key: statistics.median(r[side][key] for r in runs) for key in ("wall", "fit")}
        for side in ("cold", "warm", *(f"k{k}{w}" for k in NEW_KS for w in ("", "_warm")))
    }
    return {"preset": preset, "repeats": repeats, "runs": runs, "median": med}


def write(result, machine, machine_after):
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "first_run.json").write_text(
        json.dumps({"machine": machine, "load_avg_after": machine_after["load_avg_1_5_15"], **result}, indent=1)
    )
    m = result["median"]
    lines = [
        "# The first run compiles: `npmf train` with an empty and with a warm Numba cache",
        "",
        markdown(machine) + f" Load average at the end: {machine_after['load_avg_1_5_15']}.",
        "",
        f"`python -m npmf train --preset {result['preset']}` on ML-100k (80/20 split, the Keras recipe's 100 epochs), "
        f"{result['repeats']} repeats, each with a fresh `NUMBA_CACHE_DIR`: cold, then warm. Medians. "
        "`python benchmarks/first_run.py` reproduces it.",
        "",
        "| run | whole process (s) | of which fit (s) |",
        "|---|---:|---:|",
        f"| first (empty cache: compiles) | {m['cold']['wall']:.2f} | {m['cold']['fit']:.2f} |",
        f"| later (warm cache) | {m['warm']['wall']:.2f} | {m['warm']['fit']:.2f} |",
        f"| compilation (median of each repeat's cold - warm) | {_paired(result, 'wall'):.2f} | "
        f"{_paired(result, 'fit'):.2f} |",
    ]
    for k in NEW_KS:
        side = f"k{k}"
        lines += [
            f"| then `--factors {k}` (warm cache, a new number of factors) | {m[side]['wall']:.2f} | "
            f"{m[side]['fit']:.2f} |",
            f"| its compilation (median of each repeat's first k={k} run - its second) | "
            f"{_paired(result, 'wall', side, side + '_warm'):.2f} | "
            f"{_paired(result, 'fit', side, side + '_warm'):.2f} |",
        ]
    lines += [
        "",
        f"Final loss of every run: {sorted({round(r[s]['loss'], 6) for r in result['runs'] for s in ('cold', 'warm')})}"
        + "".join(f" (k={k}: {sorted({round(r[f'k{k}']['loss'], 6) for r in result['runs']})})" for k in NEW_KS)
        + "; under load the whole machine is slower, so read the compilation rows, differences within one repeat.",
    ]
    (RESULTS / "first_run.md").write_text("\n".join(lines) + "\n")


def _paired(result, key, side="cold", base="warm"):
    return statistics.median(r[side][key] - r[base][key] for r in result["runs"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--preset", default="seed")
    args = parser.parse_args()
    machine = describe()
    result = run(args.repeats, args.preset)
    write(result, machine, describe())
    print((RESULTS / "first_run.md").read_text())


if __name__ == "__main__":
    main()
