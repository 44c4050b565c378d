"""Speed of the Keras recipe on ML-100k: one epoch per optimizer, 100 epochs, and `npmf train`.

Everything is measured side by side in one run, on the same split, and reported
as medians over repeats, with a straightforward dense-Adam Numba kernel as the
in-run baseline (a plain 2-D double loop over every parameter at every step,
with the gradient buffers cleared in full: what a first implementation looks like).

Usage (in the bench environment: the baseline's ``np.dot`` needs SciPy's BLAS in Numba)::

    NPMF_DATA_DIR=../shared/data python benchmarks/recipe_speed.py [--repeats 3]

About 1 minute on a quiet 2-core machine with the default 3 repeats (23 s with ``--repeats 1`` at load 3).

Writes ``benchmarks/results/recipe_speed.json`` and ``recipe_speed.md``.
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numba
import numpy as np
from machine import describe, markdown

import npmf

RESULTS = Path(__file__).parent / "results"
# float32 is Keras' own dtype; npmf's default is float64.
VARIANTS = [("adam", "float64"), ("adam", "float32"), ("lazy_adam", "float64"), ("lazy_adam", "float32"),
            ("sgd", "float64")]  # fmt: skip


@numba.njit(cache=True)
def _naive_dense_adam_epoch(u, i, r, perm, bs, W, H, mW, vW, mH, vH, gW, gH, t0, lr, b1, b2, eps):
    """Baseline: dense Adam written the obvious way, every parameter in a 2-D double loop per step."""
    n = len(perm)
    total = 0.0
    t = t0
    for start in range(0, n, bs):
        stop = min(start + bs, n)
        t += 1
        gW[:] = 0.0
        gH[:] = 0.0
        for s in range(start, stop):
            j = perm[s]
            e = np.dot(W[u[j]], H[i[j]]) - r[j]
            total += e * e
            for f in range(W.shape[1]):
                gW[u[j], f] += 2.0 / (stop - start) * e * H[i[j], f]
                gH[i[j], f] += 2.0 / (stop - start) * e * W[u[j], f]
        alpha = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
        _naive_adam_2d(W, gW, mW, vW, alpha, b1, b2, eps)
        _naive_adam_2d(H, gH, mH, vH, alpha, b1, b2, eps)
    return total


@numba.njit(cache=True)
def _naive_adam_2d(P, G, M, V, alpha, b1, b2, eps):
    for row in range(P.shape[0]):
        for f in range(P.shape[1]):
            M[row, f] = b1 * M[row, f] + (1 - b1) * G[row, f]
            V[row, f] = b2 * V[row, f] + (1 - b2) * G[row, f] ** 2
            P[row, f] -= alpha * M[row, f] / (np.sqrt(V[row, f]) + eps)


def time_naive(train, epochs, rng):
    u = train.user_id.astype("category").cat.codes.to_numpy().astype(np.int64)
    i = train.item_id.astype("category").cat.codes.to_numpy().astype(np.int64)
    r = train.rating.to_numpy()
    W = rng.uniform(-0.05, 0.05, (u.max() + 1, 3))
    H = rng.uniform(-0.05, 0.05, (i.max() + 1, 3))
    state = [np.zeros_like(a) for a in (W, W, H, H, W, H)]
    seconds, losses = [], []
    for epoch in range(epochs + 1):  # epoch 0 compiles (or loads the cache) and is not counted
        start = time.perf_counter()
        total = _naive_dense_adam_epoch(
            u, i, r, rng.permutation(len(r)), 32, W, H, *state, epoch * 2500, 0.001, 0.9, 0.999, 1e-7
        )
        if epoch:
            seconds.append(time.perf_counter() - start)
            losses.append(total / len(r))
    return seconds, losses


def time_npmf(train, optimizer, epochs, seed, dtype="float64"):
    npmf.MatrixFactorization(epochs=1, optimizer=optimizer, dtype=dtype).fit(
        train.user_id[:100], train.item_id[:100], train.rating[:100]
    )  # warm the JIT
    model = npmf.MatrixFactorization(optimizer=optimizer, epochs=epochs, random_state=seed, n_threads=1, dtype=dtype)
    start = time.perf_counter()
    model.fit(train.user_id, train.item_id, train.rating)
    return time.perf_counter() - start, model.history_


def time_cli(repeats):
    cmd = [sys.executable, "-m", "npmf", "train", "--quiet"]
    subprocess.run(cmd, check=True, capture_output=True)  # warm the JIT cache
    walls = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        walls.append(time.perf_counter() - start)
    return walls


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="fits per optimizer (default 3)")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--baseline-epochs", type=int, default=10, help="epochs of the naive kernel per repeat")
    parser.add_argument("--out", default=str(RESULTS / "recipe_speed"))
    args = parser.parse_args(argv)

    machine = describe()
    df = npmf.load_movielens("ml-100k")
    train, _ = npmf.train_test_split(df, test_size=0.2, random_state=0)
    rows = {}
    for rep in range(args.repeats):  # interleaved, so load changes hit every variant alike
        for opt, dtype in VARIANTS:
            fit_s, hist = time_npmf(train, opt, args.epochs, seed=rep, dtype=dtype)
            name = opt if dtype == "float64" else f"{opt} ({dtype})"
            row = rows.setdefault(name, {"fit_seconds": [], "epoch_median_seconds": [], "final_loss": []})
            row["fit_seconds"].append(fit_s)
            row["epoch_median_seconds"].append(statistics.median(hist["seconds"]))
            row["final_loss"].append(hist["loss"][-1])
        naive_s, _ = time_naive(train, args.baseline_epochs, np.random.default_rng(rep))
        row = rows.setdefault("naive dense adam (baseline)", {"epoch_median_seconds": []})
        row["epoch_median_seconds"].append(statistics.median(naive_s))
    cli = time_cli(args.repeats)

    summary = {name: {k: statistics.median(v) for k, v in row.items()} for name, row in rows.items()}
    base = summary["naive dense adam (baseline)"]["epoch_median_seconds"]
    for s in summary.values():
        s["speedup_vs_baseline"] = base / s["epoch_median_seconds"]
    summary["naive dense adam (baseline)"]["fit_seconds"] = base * args.epochs  # extrapolated, see table note
    record = {
        "machine": machine,
        "epochs": args.epochs,
        "repeats": args.repeats,
        "train_ratings": len(train),
        "raw": rows,
        "median": summary,
        "npmf_train_process_seconds": cli,
        "npmf_train_process_median": statistics.median(cli),
    }
    Path(args.out).with_suffix(".json").write_text(json.dumps(record, indent=2))

    lines = [
        "# The Keras recipe on ML-100k: npmf speed",
        "",
        markdown(machine),
        "",
        f"80/20 split (80,000 training ratings), k=3, batch 32, {args.epochs} epochs; medians of {args.repeats} "
        "fits per row, interleaved. `python benchmarks/recipe_speed.py` reproduces it.",
        "",
        "| optimizer | s / epoch | fit s (100 epochs) | final loss | speed-up vs baseline |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, s in summary.items():
        loss = f"{s['final_loss']:.4f}" if "final_loss" in s else "—"
        lines.append(
            f"| {name} | {s['epoch_median_seconds']:.4f} | {s['fit_seconds']:.2f} | {loss} | "
            f"{s['speedup_vs_baseline']:.1f}x |"
        )
    lines += [
        "",
        f"Baseline: a straightforward Numba kernel updating every parameter in a double loop "
        f"({args.baseline_epochs} epochs timed per repeat; its 100-epoch figure is per-epoch median x 100).",
        "",
        f"Whole `npmf train` process (import, read ML-100k, split, 100 epochs of `adam`, evaluate) with a warm JIT "
        f"cache: median {statistics.median(cli):.2f} s over {len(cli)} runs ({', '.join(f'{x:.2f}' for x in cli)}).",
    ]
    Path(args.out).with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
