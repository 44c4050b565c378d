"""Peak memory that a transactional ``partial_fit`` adds, against the model's state (tracemalloc).

``partial_fit`` keeps the old state until the call ends, to put it back if
the call fails: the serial path trains a copy of the parameters and Adam's
moments, the block path a copy of the parameters (its records hold their own
copy of the moments). Run with ``PYTHONPATH`` at a tree to measure it; give
``--base TREE`` to measure another tree (e.g. one without transactions) side
by side in subprocesses. Writes results/transaction_memory.{json,md}.
"""

import argparse
import json
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np

M, N, n, k = 400_000, 40_000, 600_000, 32


def measure():
    import npmf
    from npmf.sgd import _block_kernels

    rng = np.random.default_rng(0)
    u, i, r = rng.integers(0, M, n), rng.integers(0, N, n), rng.uniform(1, 5, n)
    out = {}
    for name, min_ratings in (("blocks", 500_000), ("serial", 10**9)):
        _block_kernels.BLOCK_MIN_RATINGS = min_ratings
        model = npmf.MatrixFactorization(
            n_factors=k, epochs=1, optimizer="lazy_adam", batch_size=256, random_state=0
        ).fit(u, i, r)
        state = sum(a.nbytes for a in model._params() + model._m + model._v)
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        model.partial_fit(u, i, r, epochs=1)
        peak = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
        out[name] = {"state_MB": round(state / 1e6, 1), "extra_peak_MB": round(peak / 1e6, 1),
                     "extra_over_state": round(peak / state, 3)}  # fmt: skip
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", help="another source tree to measure side by side")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        print(json.dumps(measure()))
        return
    sys.path.insert(0, str(Path(__file__).parent))
    from machine import describe, markdown

    trees = {"this": str(Path(__file__).resolve().parents[1])}
    if args.base:
        trees["base"] = args.base
    info = describe()
    results = {}
    for name, tree in trees.items():
        run = subprocess.run([sys.executable, __file__, "--inner"], env={"PYTHONPATH": tree, "PATH": ""},
                             capture_output=True, text=True, check=True)  # fmt: skip
        results[name] = json.loads(run.stdout.splitlines()[-1])
    record = {"machine": info, "shape": {"users": M, "items": N, "ratings": n, "k": k}, "results": results}
    out = Path(__file__).parent / "results"
    (out / "transaction_memory.json").write_text(json.dumps(record, indent=2) + "\n")
    title = f"# partial_fit's peak memory beyond the model's state (lazy_adam, {M:,} users, {N:,} items, {n:,} ratings"
    lines = [f"{title}, k={k})", "", markdown(info), ""]
    lines += ["| tree | path | state (MB) | extra peak (MB) | extra / state |", "| --- | --- | --- | --- | --- |"]
    for tree, res in results.items():
        for path, row in res.items():
            cells = [tree, path, row["state_MB"], row["extra_peak_MB"], row["extra_over_state"]]
            lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    (out / "transaction_memory.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
