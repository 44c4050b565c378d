"""Scale: seconds per epoch, million ratings per second and peak memory on MovieLens-shaped data.

Data come from :func:`npmf.data.make_ratings` in the shapes of ML-1M,
ML-10M and ML-25M (no MovieLens file is read or needed). Every configuration
runs in its own subprocess, so its peak RSS (VmHWM) is its own; all
run in one invocation, so the ratios between them are taken under the same
machine load. Methods:

* ``lazy_adam`` and ``sgd``: ``MatrixFactorization.fit`` (block-scheduled
  kernels on ``--threads`` threads); seconds per epoch from ``history_``.
* ``serial``: the same fit forced onto the serial single-thread kernel
  (``lazy_adam``), the straightforward implementation the blocks replace.
* ``lazy_adam_core`` and ``sgd_core``: the same epochs driven directly
  (:class:`npmf.sgd._block_kernels.BlockEpochs` on the int32 codes), without the
  estimator's id encoding, to separate the kernels' memory from ``fit``'s.
* ``libmf``: LibMF from PyPI (``pip install libmf``), per-rating SGD in float32;
  its seconds per epoch are ``(t(E epochs) - t(1 epoch)) / (E - 1)``, which
  removes its setup. Skipped with one line when it is not installed.

The memory bound compares peak RSS, less the RSS of the interpreter with
npmf loaded and compiled, with the payload: the ratings as handed to ``fit``
(int32 user, int32 item, float64 rating) plus parameters and Adam's two
moments, ``(M + N)(k + 1)`` values each.

Usage::

    python benchmarks/scale.py                                   # all shapes at k=32
    python benchmarks/scale.py --sizes ml-25m --k 8,32,128
    python benchmarks/scale.py --sizes ml-1m --k 8 --epochs 2   # a quick check
    python benchmarks/scale.py --preset issue11        # issue 11: both shapes, 5M and 25M, k=32, 2 threads
    python benchmarks/scale.py --preset issue11-quick  # the same at 5M only, 2 epochs

Writes ``benchmarks/results/scale.json`` and ``scale.md`` (``--out`` to change). The memory floor that bounds
these figures is ``benchmarks/scale_bounds.py``'s.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe, markdown  # noqa: E402

SHAPES = {
    "ml-1m": (6_040, 3_706, 1_000_209),
    "ml-10m": (69_878, 10_677, 10_000_054),
    "ml-25m": (162_541, 59_047, 25_000_095),
    # ML-25M's users and items with fewer ratings: cost against n at a fixed shape.
    "ml-25m-5m": (162_541, 59_047, 5_000_000),
    "ml-25m-12m": (162_541, 59_047, 12_500_000),
    # The same shape with heavier popularity heads (see make_skewed): the load-balance test of the blocks.
    "skew-5m": (162_541, 59_047, 5_000_000),
    "skew-25m": (162_541, 59_047, 25_000_000),
}

# Issue 11's scale figures: both shapes (make_ratings' and the skewed one) at k=32, 2 threads, float32, with
# dense adam (its catch-up) and LibMF in the same run. "issue11-quick" is the 5M half with 2 epochs.
_ISSUE11 = dict(k="32", methods="sgd,lazy_adam,adam,libmf", threads=2, dtype="float32", lazy_batch=1024, sgd_batch=1,
                adam_epochs=2)  # fmt: skip
PRESETS = {
    "issue11": dict(_ISSUE11, sizes="ml-25m-5m,skew-5m,ml-25m,skew-25m", epochs=3,
                    out=str(Path(__file__).resolve().parent / "results" / "scale-issue11")),
    "issue11-quick": dict(_ISSUE11, sizes="ml-25m-5m,skew-5m", epochs=2,
                          out=str(Path(__file__).resolve().parent / "results" / "scale-issue11-quick")),
}  # fmt: skip


def make_skewed(M, N, n, a_user=0.8, a_item=1.0, seed=0):
    r"""Zipf-like ratings with heavier heads than ``make_ratings``: user and item codes and 1-5 ratings.

    The user of rank :math:`j` is drawn with probability :math:`\propto (j + 1)^{-a_u}`, the item
    of rank :math:`j` with :math:`\propto (j + 1)^{-a_i}` (``make_ratings`` uses :math:`(j + 10)^{-a}`,
    so its top rows hold less), ranks shuffled over the ids; duplicate pairs are dropped and
    drawn again until ``n`` distinct pairs remain. At 162,541 x 59,047 and 5M ratings the top item
    holds about 2.5% of the ratings and the top 1% of items about 47% (``make_ratings``: 0.7% and
    43%), as in real popularity data where a few items and users hold most ratings. Ratings are
    ``clip(round(3.5 + b_u + b_i + noise), 1, 5)``; only their positions matter for speed.
    """
    rng = np.random.default_rng(seed)
    cu = np.cumsum((np.arange(M) + 1.0) ** -a_user)
    ci = np.cumsum((np.arange(N) + 1.0) ** -a_item)
    pu, pi = rng.permutation(M), rng.permutation(N)
    keys = np.empty(0, np.int64)
    while len(keys) < n:
        m = int((n - len(keys)) * 1.3) + 1000
        u = pu[np.minimum(np.searchsorted(cu, rng.random(m) * cu[-1]), M - 1)]
        i = pi[np.minimum(np.searchsorted(ci, rng.random(m) * ci[-1]), N - 1)]
        keys = _sorted_unique(np.concatenate([keys, u.astype(np.int64) * N + i]))
    keys = np.sort(rng.permutation(keys)[:n])
    u, i = (keys // N).astype(np.int32), (keys % N).astype(np.int32)
    score = 3.5 + rng.normal(0, 0.3, M)[u] + rng.normal(0, 0.5, N)[i] + rng.normal(0, 0.5, n)
    return u, i, np.clip(np.round(score), 1, 5)


def _sorted_unique(x):
    """``np.unique(x)`` for int64 ``x`` by a sort (numpy 2.4's ``np.unique`` took 100x longer on 6.5M keys here)."""
    x = np.sort(x)
    return x[np.concatenate([[True], x[1:] != x[:-1]])] if len(x) else x


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="ml-1m,ml-10m,ml-25m-5m,ml-25m-12m,ml-25m")
    ap.add_argument("--k", default="32", help="comma-separated factor counts, e.g. 8,32,128")
    ap.add_argument("--methods", default="lazy_adam,sgd,libmf,serial,lazy_adam_core,sgd_core")
    ap.add_argument("--serial-k", default="32", help="k values at which the slow serial baseline runs")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--adam-epochs", type=int, help="epochs for dense adam (default: --epochs); it is the slowest")
    ap.add_argument("--lazy-batch", type=int, default=1024)
    ap.add_argument("--sgd-batch", type=int, default=1)
    ap.add_argument("--out", help="folder for scale.json and scale.md (default results/, or the preset's folder)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument(
        "--preset", choices=sorted(PRESETS), help="issue 11's figures in one command (overrides the above but --out)"
    )
    args = ap.parse_args(argv)
    if args.preset:
        for name, value in PRESETS[args.preset].items():
            if name != "out" or args.out is None:  # an explicit --out wins: it wrote over the committed record
                setattr(args, name, value)
    args.out = args.out or str(Path(__file__).resolve().parent / "results")
    if args.worker:
        print(json.dumps(_work(json.loads(args.worker))))
        return
    methods = [m for m in args.methods.split(",") if m]  # "" for none: shapes and block balance only
    if "libmf" in methods and not _has_libmf():
        print("libmf not installed (pip install libmf): skipping it")
        methods.remove("libmf")
    info = describe(extra_packages=("libmf",))
    records = []
    with tempfile.TemporaryDirectory(prefix="npmf-scale-") as tmp:
        for size in args.sizes.split(","):
            data, made = _generate(size, Path(tmp))
            records.append(made)
            if not _old_layout():
                for bs in sorted({args.sgd_batch, args.lazy_batch}):
                    records.append(_balance(size, data, bs, args.threads))
            if size in ("ml-1m", "ml-10m"):  # the sizes GroupLens ships in the "::" format
                records.append(_time_read(size, data, Path(tmp)))
                print(f"{size}: read_ratings on the '::' file: {records[-1]['seconds_per_million_lines']:.2f} s "
                      "per million lines", flush=True)  # fmt: skip
            for k in [int(x) for x in args.k.split(",")]:
                for method in methods:
                    if method == "serial" and str(k) not in args.serial_k.split(","):
                        continue
                    bs = args.sgd_batch if method.startswith("sgd") else args.lazy_batch
                    job = dict(size=size, k=k, method=method, data=str(data), threads=args.threads, batch_size=bs,
                               dtype=args.dtype, epochs=_epochs(args, method))  # fmt: skip
                    rec = _run_worker(job)
                    records.append(rec)
                    print(_line(rec), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    run = {"machine": info, "load_avg_1_5_15_end": [round(x, 2) for x in os.getloadavg()],
           "args": {k: v for k, v in vars(args).items() if k != "worker"}, "records": records}  # fmt: skip
    (out / "scale.json").write_text(json.dumps(run, indent=1) + "\n")
    (out / "scale.md").write_text(_markdown(run))
    print((out / "scale.md").read_text())


def _epochs(args, method):
    if method == "serial":
        return 2
    if method.startswith("adam") and args.adam_epochs:
        return args.adam_epochs
    return args.epochs


def _has_libmf():
    import importlib.util

    return importlib.util.find_spec("libmf") is not None


def _old_layout():
    """Whether the npmf imported is from before 0.2.0's layout (``npmf/_parallel.py``, ``npmf/datasets.py``).

    Decided from the package's own files, not by trying the new names first: with
    npmf installed in development mode, importing a module that an older tree put
    first on ``PYTHONPATH`` lacks falls through to the installed tree's copy.
    """
    import npmf

    return (Path(npmf.__file__).parent / "_parallel.py").exists()


def _npmf_data():
    """npmf's data module: ``npmf.data`` from 0.2.0 on, ``npmf.datasets`` before (so A/B runs span the move)."""
    if _old_layout():
        from npmf import datasets as data
    else:
        from npmf import data
    return data


def _block_kernels():
    """The module holding ``BLOCK_MIN_RATINGS``: ``npmf.sgd._block_kernels`` (0.2.0 on), ``npmf._parallel`` before."""
    if _old_layout():
        from npmf import _parallel as block_kernels
    else:
        from npmf.sgd import _block_kernels as block_kernels
    return block_kernels


def _generate(size, folder):
    make_ratings = _npmf_data().make_ratings

    M, N, n = SHAPES[size]
    start = time.perf_counter()
    if size.startswith("skew"):
        u, i, r = make_skewed(M, N, n)
        how = "make_skewed"
    else:
        df = make_ratings(M, N, n, random_state=0)
        u, i, r = df.user_id.to_numpy(), df.item_id.to_numpy(), df.rating.to_numpy()
        how = "make_ratings"
    seconds = time.perf_counter() - start
    print(f"{size}: {how} generated {n:,} ratings ({M:,} x {N:,}) in {seconds:.1f} s", flush=True)
    path = folder / f"{size}.npz"
    np.savez(path, u=u, i=i, r=r, M=M, N=N)
    return path, {"size": size, "method": how, "n_ratings": n, "generate_seconds": seconds}


def _balance(size, data, batch_size, threads):
    """How busy ``threads`` threads are on the blocks of ``data``, counted from the block sizes (no timing).

    A sub-epoch lasts as long as its busiest thread; the share is total ratings / (threads x the sum of those).
    Compared: ``prange``'s static split of the P blocks into contiguous parts (before) and the dealt plan of
    :func:`npmf.sgd.blocks.thread_plan` (now).
    """
    from npmf.sgd import blocks

    d = np.load(data)
    u, i, M, N = d["u"], d["i"], int(d["M"]), int(d["N"])
    P = blocks.n_strata(len(u), batch_size)
    su = blocks.strata(np.bincount(u, minlength=M), P)
    si = blocks.strata(np.bincount(i, minlength=N), P)
    sizes = np.bincount(((si[i] - su[u]) % P) * P + su[u], minlength=P * P).reshape(P, P)
    T = max(1, min(threads, P))
    static = sum(max(part.sum() for part in np.array_split(row, T)) for row in sizes)
    plan, bounds = blocks.thread_plan(np.concatenate([[0], np.cumsum(sizes.ravel())]), P, T)
    dealt = sum(
        max(sizes[s, plan[s, bounds[s, t] : bounds[s, t + 1]]].sum() for t in range(T)) for s in range(P)
    )  # fmt: skip
    total = int(sizes.sum())
    return {"size": size, "method": "block balance", "batch_size": batch_size, "threads": T, "P": P,
            "busy_static_split": total / (T * static), "busy_thread_plan": total / (T * dealt)}  # fmt: skip


def _time_read(size, data, folder):
    """Write the ratings as MovieLens 1M/10M do (``user::item::rating::timestamp``) and time read_ratings."""
    import pandas as pd

    read_ratings = _npmf_data().read_ratings

    d = np.load(data)
    n = len(d["r"])
    blank = np.full(n, "", object)
    cols = {"u": d["u"] + 1, "a": blank, "i": d["i"] + 1, "b": blank, "r": d["r"].astype(np.int64), "c": blank,
            "t": 978300760 + np.arange(n)}  # fmt: skip
    path = folder / f"{size}-ratings.dat"
    pd.DataFrame(cols).to_csv(path, sep=":", header=False, index=False)
    start = time.perf_counter()
    df = read_ratings(path)
    seconds = time.perf_counter() - start
    assert len(df) == n and (df.user_id.to_numpy() == d["u"] + 1).all()
    return {"size": size, "method": "read_ratings '::'", "n_lines": n, "read_seconds": seconds,
            "seconds_per_million_lines": seconds / n * 1e6}  # fmt: skip


def _run_worker(job):
    out = subprocess.run([sys.executable, __file__, "--worker", json.dumps(job)], capture_output=True, text=True)
    if out.returncode != 0:
        return {**job, "error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _rss_mb():
    """Peak resident set of this process in MB.

    VmHWM, not ``getrusage(...).ru_maxrss``: Linux carries ru_maxrss over from
    the parent through fork and exec, so a worker started by a parent holding
    25M ratings would report the parent's peak; VmHWM starts afresh at exec.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def _work(job):
    """One configuration, in this (fresh) process."""
    k, method, E = job["k"], job["method"], job["epochs"]
    if method == "libmf":
        with open(os.devnull, "w") as devnull:  # it prints its .so path on import
            saved, sys.stdout = sys.stdout, devnull
            try:
                from libmf import mf
            finally:
                sys.stdout = saved
        base = _rss_mb()
        d = np.load(job["data"])
        n = len(d["r"])
        X = np.empty((n, 3), np.float32)  # filled column by column: no float64 temporary
        for c, name in enumerate("uir"):
            X[:, c] = d[name]
        # (t(E) - t(1)) / (E - 1) with E >= 4, each fit twice (interleaved) and its faster time kept, so
        # that a noisy machine is less able to make the difference small or negative.
        E = max(E, 4)
        times = {1: [], E: []}
        for _ in range(2):
            for iters in (1, E):
                model = mf.MF(k=k, nr_threads=job["threads"], nr_iters=iters, quiet=True)
                start = time.perf_counter()
                model.fit(X)
                times[iters].append(time.perf_counter() - start)
        seconds = [(min(times[E]) - min(times[1])) / (E - 1)]
        payload = n * 12 + (int(d["M"]) + int(d["N"])) * k * 4
        loss = None
    elif method.endswith("_core"):
        from npmf.sgd._block_kernels import BlockEpochs
        from npmf.sgd.config import SGDConfig

        opt = method[: -len("_core")]
        config = SGDConfig(n_factors=k, optimizer=opt, batch_size=job["batch_size"], n_threads=job["threads"],
                           dtype=job["dtype"], learning_rate=0.005 if opt == "sgd" else 0.002, reg=0.02,
                           biases=True)  # fmt: skip
        rng = np.random.default_rng(0)

        def trainer_for(u, i, r, params):
            m, v = [np.zeros_like(p) for p in params], [np.zeros_like(p) for p in params]
            trainer = BlockEpochs(u, i, params, m, v, config)
            trainer.copy_ratings(u, i, r)
            return trainer

        tiny = (np.arange(50) % 5).astype(np.int32)
        warm = [np.zeros((5, k), job["dtype"]), np.zeros((5, k), job["dtype"]), np.zeros(5, job["dtype"])]
        trainer_for(tiny, tiny, np.ones(50), [*warm, warm[2].copy()]).run(rng, 0.0, 0)  # compile or load the cache
        base = _rss_mb()
        d = np.load(job["data"])
        u, i, r = d["u"].astype(np.int32), d["i"].astype(np.int32), d["r"]
        M, N, n = int(d["M"]), int(d["N"]), len(r)
        dt = job["dtype"]
        params = [rng.uniform(-0.05, 0.05, (M, k)).astype(dt), rng.uniform(-0.05, 0.05, (N, k)).astype(dt)]
        params += [np.zeros(M, dt), np.zeros(N, dt)]
        trainer = trainer_for(u, i, r, params)
        seconds, loss, t = [], [], 0
        for _ in range(E):
            start = time.perf_counter()
            total, steps = trainer.run(rng, float(r.mean()), t)
            trainer.write_params(params)
            seconds.append(time.perf_counter() - start)
            loss.append(total / n)
            t += steps
        seconds = seconds[1:] if E > 1 else seconds
        payload = n * 16 + (M + N) * (k + 1) * np.dtype(dt).itemsize * 3
    else:
        import npmf

        _parallel = _block_kernels()
        if method == "serial":
            _parallel.BLOCK_MIN_RATINGS = 1 << 62
        opt = "lazy_adam" if method == "serial" else method
        kw = dict(n_factors=k, batch_size=job["batch_size"], optimizer=opt, biases=True, dtype=job["dtype"],
                  n_threads=1 if method == "serial" else job["threads"], random_state=0,
                  learning_rate=0.005 if opt == "sgd" else 0.002, reg=0.02)  # fmt: skip
        warm = npmf.MatrixFactorization(**{**kw, "epochs": 1})  # load the compiled kernels before measuring
        # Warm up on the path the real fit takes (dense adam uses its own, higher threshold where it exists).
        names = [x for x in ("BLOCK_MIN_RATINGS", "DENSE_BLOCK_MIN_RATINGS") if hasattr(_parallel, x)]
        saved = {x: getattr(_parallel, x) for x in names}
        for x in names:
            setattr(_parallel, x, 0 if method != "serial" else 1 << 62)
        ids = np.arange(50, dtype=np.int32)  # the data's id type, so its kernels are compiled too
        warm.fit(ids % 7, ids % 5, np.ones(50))
        for x in names:
            setattr(_parallel, x, saved[x])
        base = _rss_mb()
        d = np.load(job["data"])
        u, i, r = d["u"], d["i"], d["r"]
        n = len(r)
        model = npmf.MatrixFactorization(**kw, epochs=E).fit(u, i, r)
        seconds = model.history_["seconds"][1:] if E > 1 else model.history_["seconds"]
        itemsize = np.dtype(job["dtype"]).itemsize
        payload = n * 16 + (int(d["M"]) + int(d["N"])) * (k + 1) * itemsize * 3
        loss = model.history_["loss"]
    peak = _rss_mb()
    s = statistics.median(seconds)
    return {**{k_: v for k_, v in job.items() if k_ != "data"}, "n_ratings": n, "seconds_per_epoch": s,
            "epoch_seconds": seconds, "mratings_per_s": n / s / 1e6, "peak_rss_mb": peak, "base_rss_mb": base,
            "payload_mb": payload / 2**20, "rss_over_payload": (peak - base) / (payload / 2**20),
            "loss": loss}  # fmt: skip


def _line(rec):
    if "error" in rec:
        return f"{rec['size']} k={rec['k']} {rec['method']}: ERROR {rec['error']}"
    return (
        f"{rec['size']} k={rec['k']} {rec['method']:9s}: {rec['seconds_per_epoch']:.2f} s/epoch, "
        f"{rec['mratings_per_s']:.2f} M ratings/s, peak RSS {rec['peak_rss_mb']:.0f} MB "
        f"({rec['rss_over_payload']:.2f} x payload {rec['payload_mb']:.0f} MB)"
    )


def _markdown(run):
    a = run["args"]
    lines = [
        "# Scale: MovieLens-shaped and skewed synthetic ratings",
        "",
        markdown(run["machine"]) + f" Load average at the end: {run['load_avg_1_5_15_end']}.",
        "",
        f"Threads {a['threads']}, dtype {a['dtype']}, lazy_adam batch {a['lazy_batch']}, sgd batch {a['sgd_batch']}, "
        f"{a['epochs']} epochs (median of epochs after the first; serial: 1 timed epoch; dense adam: "
        f"{a.get('adam_epochs') or a['epochs']} epochs; LibMF: (t(E) - t(1)) / (E - 1), E >= 4, each t the faster "
        "of two). "
        "Skewed shapes (`skew-*`) come from `make_skewed`, the others from `make_ratings`; `adam` is dense Adam (its "
        "catch-up in the blocks). Memory: (peak RSS - RSS before loading data) / (ratings + parameters + "
        "Adam state). Ratios are within this one run, under the same load.",
        "",
        "| data | k | method | s / epoch | M ratings / s | vs LibMF | peak RSS MB | RSS / payload |",
        "|---|---|---|---|---|---|---|---|",
    ]
    recs = [r for r in run["records"] if "error" not in r and "seconds_per_epoch" in r]
    for r in recs:
        lib = [x for x in recs if x["method"] == "libmf" and x["size"] == r["size"] and x["k"] == r["k"]]
        vs = f"{r['mratings_per_s'] / lib[0]['mratings_per_s']:.2f}x" if lib else "-"
        lines.append(
            f"| {r['size']} | {r['k']} | {r['method']} | {r['seconds_per_epoch']:.2f} | {r['mratings_per_s']:.2f} "
            f"| {vs} | {r['peak_rss_mb']:.0f} | {r['rss_over_payload']:.2f} |"
        )
    balance = [r for r in run["records"] if r.get("method") == "block balance"]
    if balance:
        lines += ["", "| data | batch | P | threads | busy, static split (before) | busy, thread plan (now) |",
                  "|---|---|---|---|---|---|"]  # fmt: skip
        lines += [
            f"| {r['size']} | {r['batch_size']} | {r['P']} | {r['threads']} | {r['busy_static_split']:.3f} "
            f"| {r['busy_thread_plan']:.3f} |"
            for r in balance
        ]
        lines += ["", "Busy: the share of the threads' time spent training if every rating costs the same, counted "
                  "from the block sizes (each sub-epoch lasts as long as its busiest thread); no timing."]  # fmt: skip
    made = [r for r in run["records"] if "generate_seconds" in r]
    reads = [r for r in run["records"] if "read_seconds" in r]
    if made or reads:
        lines.append("")
        lines += [
            f"`{r['method']}` generated the {r['size']} shape, {r['n_ratings']:,} ratings, in "
            f"{r['generate_seconds']:.2f} s (in the parent process, before the runs above)."
            for r in made
        ]
        lines += [
            f"`read_ratings` on a generated {r['size']} file in the `::` format: {r['n_lines']:,} lines in "
            f"{r['read_seconds']:.2f} s ({r['seconds_per_million_lines']:.2f} s per million lines)."
            for r in reads
        ]
    for r in run["records"]:
        if "error" in r:
            lines.append(f"| {r['size']} | {r['k']} | {r['method']} | error: {r['error']} | | | | |")
    return "\n".join(lines + ["", NOTES]) + "\n"


NOTES = """\
Methods: `lazy_adam`, `sgd` are `MatrixFactorization.fit` (biases on, reg 0.02); `*_core` drive the same
block epochs directly on int32 codes (no id encoding), `serial` is the single-thread kernel of the core issue
(gather through a permutation, separate W, m, v, g arrays), `libmf` is LibMF from PyPI (float32 SGD).
`vs LibMF` divides by LibMF's ratings per second at the same data and k.

How npmf gets there (see `npmf/sgd/blocks.py`, `npmf/sgd/_block_kernels.py`): LibMF/DSGD block scheduling with a fixed
rotation of P x P blocks (P <= 64, from the number of ratings and the batch size only), so the result is the
same bits for any thread count; ratings stored once per fit block by block as int32/int32/dtype and shuffled in
place per block each epoch; each row's w, b, m, v in one record (`[p | m | v]` for `lazy_adam`, `[p]` for `sgd`,
`[p | g | m | v]` for dense `adam`), a batch's gradients in per-thread slots (`npmf/sgd/_lazy_blocks.py`), and
Adam's row steps vectorised. What bounds these figures: `python benchmarks/scale_bounds.py` (the memory floor of
the blocks' access pattern next to the kernels, in one run).

Where the memory goes in `fit` (see `npmf/core/encoding.py`): the caller's arrays (the payload's ratings), the
parameters, the records (parameters, gradients and, for `lazy_adam`, Adam's moments, which the model then reads
as views of the records rather than keeping a copy), and the block copy of the ratings. Compact integer ids are
their own keys, so no per-rating array of codes exists besides the block copy, which also serves as the training
pairs that `recommend(exclude_seen=True)` needs; there is no per-epoch snapshot of the weights (a diverged epoch is
simply not written back from the records). At the end the records are compacted in place to Adam's moments and
shrunk, not copied.
"""


if __name__ == "__main__":
    main()
