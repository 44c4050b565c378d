"""What bounds the block kernels at scale: the memory floor of their access pattern, next to the kernels themselves.

On one shape of ``benchmarks/scale.py`` (default ``ml-25m-5m``: 5M ratings over 162,541 x 59,047, k = 32,
float32, 2 threads) this times, interleaved in one process (median of ``--repeats``):

* ``touch W``: an epoch that visits the ratings in the blocks' order (the order one ``lazy_adam`` epoch leaves
  them in, P and thread plan as it has them) and, per rating, reads and writes every value of a record of ``W``
  float32 on each side (``X[x, f] += c`` with ``c`` a run-time zero: no arithmetic to speak of), with the block
  kernels' prefetch. ``W`` = 33 (``[p]``, 132 bytes: batch-1 ``sgd``), 99 (``[p | m | v]``, 396 bytes) and
  132 (``[p | g | m | v]``, 528 bytes). Each pair of rows is one rating's traffic at that record width.
* ``touch 99, 2 passes``: the ``[p | m | v]`` records as ``lazy_adam``'s slot kernel moves them: per batch of
  ``B`` ratings, a pass that reads ``p`` (first 33 values) of each rating's records and its row's mark, then a
  pass over the batch's rows that reads and writes all 99. Its ratio to ``touch 99`` says whether the second
  pass finds the rows in cache.
* ``stream``: STREAM's triad ``a = b + s c`` on 2 threads, at sizes from in-L2 to beyond the L3 the VM reports.
* ``lazy_adam``, ``sgd``: one epoch of :class:`npmf.sgd._block_kernels.BlockEpochs` on the same data.

Usage::

    python benchmarks/scale_bounds.py                      # ml-25m-5m, ~1 min
    python benchmarks/scale_bounds.py --size skew-5m --out benchmarks/results/scale-bounds-skew

Writes ``scale_bounds.json`` and ``scale_bounds.md`` under ``--out`` (default ``benchmarks/results/scale-bounds``).
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numba
import numpy as np
from numba import prange

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe, markdown  # noqa: E402
from scale import SHAPES, make_skewed  # noqa: E402

from npmf.sgd._block_steps import AHEAD, lines_of, prefetch_row  # noqa: E402


@numba.njit(nogil=True, error_model="numpy")
def _touch_block(u, i, start, stop, U, V, w, c):
    lines = lines_of(U, w)
    for j in range(start, stop):
        x, y = u[j], i[j]
        if j + AHEAD < stop:
            prefetch_row(U, u[j + AHEAD], 0, lines)
            prefetch_row(V, i[j + AHEAD], 0, lines)
        for f in range(w):
            U[x, f] += c
        for f in range(w):
            V[y, f] += c


@numba.njit(nogil=True, error_model="numpy", fastmath={"reassoc", "nsz"})
def _touch_block_2pass(u, i, start, stop, U, V, w, c, bs, mark_u, mark_i, rows, tag0):
    """As :func:`npmf.sgd._lazy_blocks._block_slots` moves memory: per batch, read the first 33 values of each rating's
    records (and its row's ``[batch, slot]`` mark), then read and write the batch's rows whole."""
    lines = lines_of(U, w)
    acc = U[0, 0] * 0
    for b in range((stop - start + bs - 1) // bs):
        lo, hi = start + b * bs, min(start + (b + 1) * bs, stop)
        tag = tag0 + b
        nu = 0
        ni = 0
        for j in range(lo, hi):
            x, y = u[j], i[j]
            if j + AHEAD < stop:
                prefetch_row(U, u[j + AHEAD], 0, lines)
                prefetch_row(V, i[j + AHEAD], 0, lines)
                prefetch_row(mark_u, u[j + AHEAD], 0, 1)
                prefetch_row(mark_i, i[j + AHEAD], 0, 1)
            for f in range(33):
                acc += U[x, f] * V[y, f]
            if mark_u[x, 0] != tag:
                mark_u[x, 0] = tag
                mark_u[x, 1] = nu
                rows[0, nu] = x
                nu += 1
            if mark_i[y, 0] != tag:
                mark_i[y, 0] = tag
                mark_i[y, 1] = ni
                rows[1, ni] = y
                ni += 1
        for a in range(nu):
            x = rows[0, a]
            for f in range(w):
                U[x, f] += c
        for a in range(ni):
            y = rows[1, a]
            for f in range(w):
                V[y, f] += c
    return acc


@numba.njit(parallel=True, nogil=True, error_model="numpy")
def _touch_epoch(u, i, offsets, P, plan, bounds, U, V, w, c, bs, mark_u, mark_i, rows, first):
    T = bounds.shape[1] - 1
    acc = 0.0
    for s in range(P):
        for t in prange(T):
            for q in range(bounds[s, t], bounds[s, t + 1]):
                b = s * P + plan[s, q]
                if bs == 0:
                    _touch_block(u, i, offsets[b], offsets[b + 1], U, V, w, c)
                else:
                    acc += _touch_block_2pass(u, i, offsets[b], offsets[b + 1], U, V, w, c, bs, mark_u, mark_i,
                                              rows[t], first[b])  # fmt: skip
    return acc


@numba.njit(parallel=True, nogil=True, error_model="numpy")
def _triad(a, b, c, s, reps):
    n = a.shape[0]
    T = 2
    for t in prange(T):
        lo, hi = t * n // T, (t + 1) * n // T
        for _ in range(reps):  # small arrays many times over, so that the parallel region's start does not count
            for j in range(lo, hi):
                a[j] = b[j] + s * c[j]


def _timed(fn, repeats, results, name, per):
    times = results.setdefault(name, {"seconds": [], "per": per})["seconds"]
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="ml-25m-5m", choices=sorted(SHAPES))
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "scale-bounds"))
    args = ap.parse_args(argv)
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    from npmf.data import make_ratings
    from npmf.sgd._block_kernels import BlockEpochs
    from npmf.sgd.config import SGDConfig

    machine = describe()
    M, N, n = SHAPES[args.size]
    if args.size.startswith("skew"):
        u0, i0, r0 = make_skewed(M, N, n)
    else:
        df = make_ratings(M, N, n, random_state=0)
        u0, i0, r0 = df.user_id.to_numpy(), df.item_id.to_numpy(), df.rating.to_numpy()
    u0, i0 = u0.astype(np.int32), i0.astype(np.int32)
    k, dt = args.k, np.float32
    rng = np.random.default_rng(0)
    params = [rng.uniform(-0.05, 0.05, (M, k)).astype(dt), rng.uniform(-0.05, 0.05, (N, k)).astype(dt)]
    params += [np.zeros(M, dt), np.zeros(N, dt)]
    trainers, steps = {}, {}
    for opt, bs in (("lazy_adam", args.batch), ("sgd", 1)):
        config = SGDConfig(n_factors=k, optimizer=opt, batch_size=bs, n_threads=args.threads, dtype="float32",
                           learning_rate=0.002 if opt == "lazy_adam" else 0.005, reg=0.02, biases=True)  # fmt: skip
        m, v = [np.zeros_like(p) for p in params], [np.zeros_like(p) for p in params]
        trainers[opt] = BlockEpochs(u0, i0, [p.copy() for p in params], m, v, config)
        trainers[opt].copy_ratings(u0, i0, r0)
        steps[opt] = 0
    mu = float(r0.mean())
    lazy = trainers["lazy_adam"]
    for opt, tr in trainers.items():  # compile, and leave the ratings in an epoch's order
        steps[opt] += tr.run(rng, mu, steps[opt])[1]
    widths = {
        "touch 33 ([p], 132 B)": 33,
        "touch 99 ([p | m | v], 396 B)": 99,
        "touch 132 ([p | g | m | v], 528 B)": 132,
    }
    tables = {w: (np.zeros((M, w), dt), np.zeros((N, w), dt)) for w in widths.values()}
    T = lazy.bounds.shape[1] - 1
    marks = np.full((M, 2), -1, np.int64), np.full((N, 2), -1, np.int64)
    rows = np.zeros((T, 2, args.batch), np.int64)
    zero = dt(0.0)

    calls = [0]

    def touch(w, bs):
        def run():
            calls[0] += 1  # batch tags of their own on every call, as every epoch's are
            return _touch_epoch(lazy.u, lazy.i, lazy.offsets, lazy.P, lazy.plan, lazy.bounds, *tables[w], w, zero, bs,
                                *marks, rows, lazy.first + calls[0] * int(lazy.first[-1]))  # fmt: skip

        return run

    sizes_mb = [1, 16, 128, 512]  # total over the three arrays: in L2, in the L3 the VM reports (260 MB), beyond
    streams = {mb: [np.ones(mb * 2**20 // 12, dt) for _ in range(3)] for mb in sizes_mb}
    jobs = [(name, touch(w, 0), n) for name, w in widths.items()]
    jobs.append((f"touch 99, 2 passes (batch {args.batch})", touch(99, args.batch), n))
    for mb, (a, b, c) in streams.items():
        reps = max(1, 512 // mb)
        fn = lambda a=a, b=b, c=c, reps=reps: _triad(a, b, c, dt(0.5), reps)  # noqa: E731
        jobs.append((f"stream triad {mb} MB", fn, len(a) * reps))
    for opt, tr in trainers.items():

        def epoch(opt=opt, tr=tr):
            steps[opt] += tr.run(rng, mu, steps[opt])[1]

        jobs.append((f"{opt} epoch (batch {tr.config.batch_size})", epoch, n))
    for _, fn, _ in jobs:  # compile
        fn()
    results = {}
    for _ in range(args.repeats):  # interleaved
        for name, fn, per in jobs:
            _timed(fn, args.repeats, results, name, per)
    records = []
    for name, res in results.items():
        s = statistics.median(res["seconds"])
        rec = {"name": name, "seconds": s, "all_seconds": res["seconds"]}
        if name.startswith("stream"):
            rec["GB_per_s"] = 3 * res["per"] * 4 / s / 1e9  # two reads and a write per element
        else:
            rec["mratings_per_s"] = n / s / 1e6
            w = next((w for key, w in widths.items() if name.startswith(key.split(" (")[0])), None)
            if name.startswith("touch") and "2 passes" not in name:
                rec["GB_per_s"] = n * 2 * w * 4 * 2 / s / 1e9  # two records, read and written
        records.append(rec)
        print(_line(rec), flush=True)
    run = {"args": vars(args), "machine": machine, "load_avg_end": [round(x, 2) for x in os.getloadavg()],
           "P": lazy.P, "records": records}  # fmt: skip
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "scale_bounds.json").write_text(json.dumps(run, indent=1))
    (out / "scale_bounds.md").write_text(_markdown(run))
    print(f"wrote {out}/scale_bounds.json and .md")


def _line(rec):
    rate = f"{rec['mratings_per_s']:.2f} M ratings/s" if "mratings_per_s" in rec else ""
    gb = f"{rec['GB_per_s']:.1f} GB/s" if "GB_per_s" in rec else ""
    return f"{rec['name']:45s} {rec['seconds'] * 1e3:8.1f} ms  {rate:18s} {gb}"


def _markdown(run):
    a = run["args"]
    lines = [
        "# Scale bounds: the block kernels' memory floor",
        "",
        markdown(run["machine"]) + f" Load average at the end: {run['load_avg_end']}.",
        "",
        f"Data {a['size']} (k = {a['k']}, float32, {a['threads']} threads, P = {run['P']} for batch {a['batch']}); "
        f"median of {a['repeats']} interleaved repeats. `touch W`: per rating, read and write a W-float32 record on "
        "each side, in the blocks' rating order, with the kernels' prefetch (GB/s counts 2 records read and written "
        "per rating). `stream`: STREAM triad on 2 threads (3 x 4 bytes per element).",
        "",
        "| what | ms | M ratings / s | GB / s |",
        "|---|---|---|---|",
    ]
    for r in run["records"]:
        rate = f"{r['mratings_per_s']:.2f}" if "mratings_per_s" in r else "-"
        gb = f"{r['GB_per_s']:.1f}" if "GB_per_s" in r else "-"
        lines.append(f"| {r['name']} | {r['seconds'] * 1e3:.1f} | {rate} | {gb} |")
    return "\n".join(lines + ["", NOTES]) + "\n"


NOTES = """\
Reading it: `touch 99` is what one pass over the ratings costs that brings each rating's two `[p | m | v]` records
in and writes them back, and nothing else; `touch 99, 2 passes` moves the memory as the slot kernel does (a pass
that reads, a pass over the batch's rows that writes); `lazy_adam` is the kernel itself. In a block a rating's
user is new to the block's cache about every time (n / (P (M + N)) ratings per row and block: 0.94 at 5M
ratings, P = 24), so these record bytes, not the arithmetic, set the rate.
"""


if __name__ == "__main__":
    main()
