"""npmf's per-rating SGD and lazy Adam against Cornac's biased MF, side by side on ML-100k.

ML-100k 80/20 (``npmf.train_test_split(df, test_size=0.2, random_state=seed)``),
k = 10 and k = 3, the same number of epochs on both sides (Cornac on all cores and on one):

* Cornac ``cornac.models.MF``: biased MF trained by a per-rating Cython loop,
  float32, Hogwild over all cores (``num_threads=0``; Cornac forces one thread
  when given a seed, so it gets none), ratings in data order, no shuffle.
  Its epoch time is ``(fit(E) - fit(1)) / (E - 1)``, which leaves out its
  one-off setup.
* npmf ``sgd`` at ``batch_size=1`` and ``lazy_adam`` at ``batch_size=32``, in
  float32 (Cornac's dtype) and float64 (npmf's default), shuffling every
  epoch as npmf always does, on the path ``fit`` chooses (``auto``: on ML-100k
  the serial kernels, as ``BLOCK_MIN_RATINGS`` is above its 80,000 ratings,
  training on one thread while a second shuffles the next epoch's copy of the
  ratings) and, in float32, on each path forced (serial with that second
  thread; serial on one thread; blocks on all cores; blocks on one thread). Its epoch time is the median of
  ``history_["seconds"]`` after the first epoch (which includes compilation
  or loading the cache), so it includes npmf's per-epoch Python work (loss
  check, history, copying the parameters back).

Cornac's step is ``w += lr (e h - lambda w)`` with ``e = r - r_hat``; npmf's
gradient is that of ``e^2 + lambda ||w||^2``, twice Cornac's, so npmf runs at
half Cornac's learning rate with the same lambda, the same algorithm.
Runs are interleaved (every variant once per repeat) and medians quoted;
the ratio is npmf's epoch time over Cornac's from the same repeats. The
targets (issue 11): ``sgd`` at most 1.0x Cornac, ``lazy_adam`` at most 2.0x.

It also times the arithmetic floor of lazy Adam's step on this machine: Keras'
Adam step (:func:`npmf.sgd._formulas.adam_scalar`) in a vectorised loop over as
many contiguous elements as an epoch updates, one thread.

Usage::

    NPMF_DATA_DIR=../shared/data python benchmarks/cornac_compare.py [--repeats 5] [--epochs 20]
    NPMF_DATA_DIR=../shared/data python benchmarks/cornac_compare.py --quick   # 2 repeats of 10 epochs

Writes ``benchmarks/results/cornac/cornac.json`` and ``cornac.md``.
"""

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numba
import numpy as np
from machine import describe, markdown

import npmf
from npmf.sgd import _block_kernels
from npmf.sgd._formulas import adam_scalar
from npmf.sgd.blocks import n_strata
from npmf.sgd.config import SGDConfig

RESULTS = Path(__file__).parent / "results" / "cornac"
CORNAC_LR, REG = 0.01, 0.02
TARGETS = {"sgd": 1.0, "lazy_adam": 2.0}
# (optimizer, batch size, dtype, path): "auto" is what fit chooses (on ML-100k's 80,000 ratings the serial kernels of
# npmf.sgd._rating_kernels, below BLOCK_MIN_RATINGS, with the next epoch's shuffle on a second thread), "serial" and
# "blocks" force one path (on all cores), "serial, 1 thread" and "blocks, 1 thread" with n_threads=1.
NPMF_VARIANTS = [
    ("sgd", 1, "float32", "auto"),
    ("sgd", 1, "float64", "auto"),
    ("sgd", 1, "float32", "serial"),
    ("sgd", 1, "float32", "serial, 1 thread"),
    ("sgd", 1, "float32", "blocks"),
    ("sgd", 1, "float32", "blocks, 1 thread"),
    ("lazy_adam", 32, "float32", "auto"),
    ("lazy_adam", 32, "float64", "auto"),
    ("lazy_adam", 32, "float32", "serial"),
    ("lazy_adam", 32, "float32", "serial, 1 thread"),
    ("lazy_adam", 32, "float32", "blocks"),
    ("lazy_adam", 32, "float32", "blocks, 1 thread"),
]
# Cornac's two rows: all threads (Hogwild), and one thread, against which npmf's "one thread" rows are divided:
# thread for thread, a ratio that a busy machine blurs less than one between thread pools.
CORNAC_THREADS = {0: "Hogwild, all threads", 1: "1 thread"}

# Cornac's package imports Keras, whose default backend, TensorFlow, the bench extra does not install (it installs
# JAX); without a backend named, `import cornac` failed with "No module named 'tensorflow'" and this script took
# Cornac for absent. Its MF model needs no Keras at all.
os.environ.setdefault("KERAS_BACKEND", "jax")
try:
    import cornac
    from cornac.data import Dataset
except ImportError as exc:  # pragma: no cover - depends on the environment
    cornac, CORNAC_MISSING = None, exc


def rmse(pred, truth):
    return float(np.sqrt(np.mean((np.asarray(pred) - np.asarray(truth)) ** 2)))


def npmf_path(n_ratings, optimizer, batch_size, path):
    """Which kernels ``fit`` runs: ``"auto: blocks P=.., T threads"``, ``"serial, 1 thread"``, ..."""
    config = SGDConfig(optimizer=optimizer, batch_size=batch_size)
    blocks = path.startswith("blocks") or (path == "auto" and _block_kernels.use_blocks(config, n_ratings))
    threads = 1 if path.endswith("1 thread") else config.n_threads
    label = f"blocks P={n_strata(n_ratings, batch_size)}, {threads} thread{'s' if threads > 1 else ''}"
    label = label if blocks else "serial, 1 thread" if threads == 1 else "serial, shuffle ahead on a 2nd thread"
    return f"auto: {label}" if path == "auto" else label


def time_npmf(train, test, k, optimizer, batch_size, dtype, epochs, seed, path):
    """``(median seconds per epoch from history_, fit's wall time / epochs, test RMSE)``."""
    lr = CORNAC_LR / 2 if optimizer == "sgd" else 0.001
    model = npmf.MatrixFactorization(
        n_factors=k, epochs=epochs, batch_size=batch_size, optimizer=optimizer, learning_rate=lr, reg=REG,
        biases=True, init_scale=0.1, dtype=dtype, random_state=seed, n_threads=1 if path.endswith("1 thread") else None,
    )  # fmt: skip
    saved = _block_kernels.BLOCK_MIN_RATINGS
    _block_kernels.BLOCK_MIN_RATINGS = saved if path == "auto" else 1 << 62 if path.startswith("serial") else 0
    try:
        start = time.perf_counter()
        model.fit(train.user_id, train.item_id, train.rating)
        wall = time.perf_counter() - start
    finally:
        _block_kernels.BLOCK_MIN_RATINGS = saved
    seconds = statistics.median(model.history_["seconds"][1:])
    return seconds, wall / epochs, rmse(np.clip(model.predict(test.user_id, test.item_id), 1, 5), test.rating)


def time_cornac(train, test, k, epochs, threads=0):
    triples = list(zip(train.user_id.astype(str), train.item_id.astype(str), train.rating.astype(float)))
    data = Dataset.from_uir(triples)
    times = {}
    for n in (1, epochs):
        model = cornac.models.MF(k=k, max_iter=n, learning_rate=CORNAC_LR, lambda_reg=REG, use_bias=True,
                                 early_stop=False, num_threads=threads, verbose=False)  # fmt: skip
        start = time.perf_counter()
        model.fit(data)
        times[n] = time.perf_counter() - start
    uidx = np.array([data.uid_map.get(str(x), -1) for x in test.user_id])
    iidx = np.array([data.iid_map.get(str(x), -1) for x in test.item_id])
    known_u, known_i = uidx >= 0, iidx >= 0
    pred = np.full(len(test), model.global_mean, np.float64)
    pred[known_u] += model.u_biases[uidx[known_u]]
    pred[known_i] += model.i_biases[iidx[known_i]]
    both = known_u & known_i
    pred[both] += np.sum(model.u_factors[uidx[both]] * model.i_factors[iidx[both]], axis=1)
    return (times[epochs] - times[1]) / (epochs - 1), rmse(np.clip(pred, 1, 5), test.rating)


@numba.njit(error_model="numpy", nogil=True)
def _adam_flat(p, g, m, v, n, alpha, c1, c2, eps):
    """Keras' Adam on elements ``0..n-1`` of flat contiguous arrays: branch-free, so LLVM vectorises it."""
    for j in range(n):
        pj, mj, vj = adam_scalar(p[j], g[j], m[j], v[j], alpha, c1, c2, eps)
        m[j] = mj
        v[j] = vj
        p[j] = pj


def adam_floor(n_elements, dtype):
    """Seconds for one thread to take Adam's step on ``n_elements`` contiguous elements (median of 15)."""
    rng = np.random.default_rng(0)
    p, g, m, v = (rng.random(n_elements).astype(dtype) for _ in range(4))
    t = np.dtype(dtype).type
    args = (p, g, m, v, n_elements, t(1e-3), t(0.1), t(1e-3), t(1e-7))
    _adam_flat(*args)
    times = []
    for _ in range(15):
        start = time.perf_counter()
        _adam_flat(*args)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="2 repeats of 10 epochs (about 15 s)")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.epochs = 2, 10
    out_dir = Path(args.out)
    if cornac is None:
        print(
            f"Cornac cannot be imported ({CORNAC_MISSING}; pip install cornac, or the bench extra): npmf's side alone."
        )
    machine = describe(("cornac",) if cornac is not None else ())
    df = npmf.load_movielens()
    train, test = npmf.train_test_split(df, test_size=0.2, random_state=args.seed)
    if cornac is not None:
        time_cornac(train, test, 10, 2)  # warm-up: Cornac's first fit pays one-off costs
    for optimizer, bs, dtype, path in NPMF_VARIANTS:  # warm-up: compile or load every kernel (one per k)
        for k in (10, 3):
            time_npmf(train, test, k, optimizer, bs, dtype, 2, args.seed, path)
    runs = {}
    for rep in range(args.repeats):
        for k in (10, 3):
            if cornac is not None:
                for threads, label in CORNAC_THREADS.items():
                    seconds, err = time_cornac(train, test, k, args.epochs, threads)
                    runs.setdefault(("cornac", k, "-", "float32", label), []).append((seconds, None, err))
            for optimizer, bs, dtype, path in NPMF_VARIANTS:
                result = time_npmf(train, test, k, optimizer, bs, dtype, args.epochs, args.seed + rep, path)
                key = (optimizer, k, bs, dtype, npmf_path(len(train), optimizer, bs, path))
                runs.setdefault(key, []).append(result)
        print(f"repeat {rep + 1}/{args.repeats} done", flush=True)
    rows = []
    for (name, k, bs, dtype, path), results in runs.items():
        seconds = [s for s, _, _ in results]
        row = {"side": name, "k": k, "batch_size": bs, "dtype": dtype, "path": path,
               "epoch_ms_median": 1e3 * statistics.median(seconds), "epoch_ms_all": [1e3 * s for s in seconds],
               "test_rmse_median": statistics.median(r for _, _, r in results)}  # fmt: skip
        if name != "cornac":
            row["fit_wall_ms_per_epoch_median"] = 1e3 * statistics.median(w for _, w, _ in results)
        if cornac is not None and name != "cornac":
            # Against Cornac on all cores (the targets, for what fit chooses) and, for the paths on one
            # thread, against Cornac on one thread: thread for thread, which a busy machine blurs less.
            for threads, key in ((0, "ratio_to_cornac_median"), (1, "ratio_to_cornac_1_thread_median")):
                if threads == 1 and not path.endswith(" 1 thread"):
                    continue
                cornacs = runs[("cornac", k, "-", "float32", CORNAC_THREADS[threads])]
                row[key] = statistics.median(s / c for s, (c, _, _) in zip(seconds, cornacs, strict=True))
            if path.startswith("auto"):
                row["target"] = TARGETS[name]
                row["meets_target"] = row["ratio_to_cornac_median"] <= TARGETS[name]
        rows.append(row)
    n_updates = len(train) * 2 * 11  # lazy Adam at k=10: two rows of k + 1 per rating (at most)
    floor = {dt: 1e3 * adam_floor(n_updates, dt) for dt in ("float32", "float64")}
    machine["load_avg_1_5_15_end"] = [round(x, 2) for x in os.getloadavg()]
    out = {"machine": machine, "epochs": args.epochs, "repeats": args.repeats, "seed": args.seed, "rows": rows,
           "lazy_adam_step_floor_ms_one_thread": floor, "lazy_adam_updates_per_epoch_k10": n_updates}  # fmt: skip
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "cornac.json").write_text(json.dumps(out, indent=2) + "\n")
    lines = [
        "# npmf vs Cornac's biased MF, ML-100k 80/20",
        "",
        markdown({key: value for key, value in machine.items() if key != "load_avg_1_5_15_end"})
        + f" Load average at the end: {machine['load_avg_1_5_15_end']}.",
        "",
        f"{args.epochs} epochs, {args.repeats} interleaved repeats, medians. Cornac: "
        "float32, Hogwild, no shuffle, epoch = (fit(E) - fit(1)) / (E - 1). npmf: shuffles every epoch; epoch time "
        "from `history_['seconds']` (Python work included); `fit / epoch` is fit's whole wall time over the "
        "epochs (setup, first-epoch compilation or cache load included). Path: which kernels fit ran (`auto`: what "
        f"fit chooses, the blocks from {_block_kernels.BLOCK_MIN_RATINGS:,} ratings; the others forced, for "
        "comparison). `× Cornac` divides by Cornac on all cores, the issue's comparison, whose targets apply to the "
        "`auto` rows; `× Cornac 1 thread` divides the rows on one thread by Cornac on one thread.",
        "",
        "| side | k | batch | dtype | path | epoch (ms) | fit / epoch (ms) | × Cornac | × Cornac 1 thread | target "
        "| test RMSE |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        ratio = f"{row['ratio_to_cornac_median']:.2f}" if "ratio_to_cornac_median" in row else "–"
        one = row.get("ratio_to_cornac_1_thread_median")
        one = "–" if one is None else f"{one:.2f}"
        target = f"≤ {row['target']:.1f} ({'met' if row['meets_target'] else 'not met'})" if "target" in row else "–"
        wall = f"{row['fit_wall_ms_per_epoch_median']:.2f}" if "fit_wall_ms_per_epoch_median" in row else "–"
        cells = (row["side"], row["k"], row["batch_size"], row["dtype"], row["path"], f"{row['epoch_ms_median']:.2f}",
                 wall, ratio, one, target, f"{row['test_rmse_median']:.4f}")  # fmt: skip
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    lines += [
        "",
        f"Arithmetic floor of lazy Adam's step at k=10 ({n_updates:,} element updates per epoch, vectorised, one "
        f"thread): {floor['float32']:.2f} ms in float32, {floor['float64']:.2f} ms in float64.",
    ]
    (out_dir / "cornac.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
