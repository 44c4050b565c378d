"""What bounds one npmf epoch at batch 32 on MovieLens-100k: its parts, timed apart.

``keras_compare.py`` measures whole epochs; this splits one into what it is
made of, to show where the time goes and how far each part is from its floor::

    python benchmarks/keras_bounds.py

Parts (medians of ``--repeats`` epochs, same split and seed as the comparison):

- ``shuffle``: the epoch's permutation and the gather of (user, item, rating) in
  visiting order, done in NumPy before the kernel;
- ``errors and gradients``: the kernel with SGD at learning rate 1e-30 (rate 0
  is refused; 1e-30 moves nothing and computes no subnormal), i.e. the
  residuals, loss and per-row gradients of every minibatch, and nothing else;
- ``adam epoch kernel``: dense ``adam``'s whole kernel in its two forms, the
  catch-up (rows absent from a batch replayed in closed form when next needed)
  and the plain loop (``dense_loop=True``, small models), float64 and float32.
  The plain loop in float32 is slowed by subnormal moments (m of rows absent
  for hundreds of steps decays below float32's smallest normal, and x86 runs
  subnormal arithmetic in microcode), which the catch-up never computes;
- ``inside dense_epoch``: the serial catch-up kernel's batches rerun by a copy
  of its loop (:func:`_dense_parts`, the same inlined helpers) without the
  batches' catch-ups, and also without the Adam steps, so that the catch-ups
  (whole kernel minus the first) and the steps (first minus second) show;
  and the per-epoch Python around it (packing and unpacking the records, the
  tables: :func:`npmf.sgd._dense_kernels.dense_arguments`);
- ``catch-up tables``: the NumPy/Numba work per epoch before dense ``adam``'s
  kernel runs (:func:`npmf.sgd._catchup_kernels.catch_up_state`);
- ``dense Adam update``: Keras' Adam applied to all (M + N)k factors once per
  minibatch, the part that makes ``adam`` O((M + N)k) per step. Also timed with
  the same arithmetic in float32, which halves the bytes and doubles the SIMD
  lanes for the square root and the division that dominate it.
"""

import argparse
import functools
import json
import os
import time
from pathlib import Path

import numba
import numpy as np
from machine import describe, markdown

import npmf
from npmf.sgd import _catchup_kernels, _dense_kernels, _kernels, optimizers
from npmf.sgd._dense_kernels import _adam_records, _list
from npmf.sgd._formulas import bias_gradient, factor_gradient, loss_term, penalty, residual


@numba.njit(cache=True)
def _dense_adam_steps(p, g, m, v, alphas, c1, c2, epsilon):
    for s in range(alphas.shape[0]):
        _kernels._adam_dense(p, g, m, v, alphas[s], c1, c2, epsilon)


@numba.njit(cache=True, error_model="numpy", _nrt=False)
def _dense_parts(u, i, r, bs, mu, U, I, rows_u, rows_i, stamp_u, stamp_i, alphas, c1, c2, eps, reg, c_full, c_last,
                 lanes, trained, nn, cu, steps):  # fmt: skip
    """:func:`npmf.sgd._dense_kernels.dense_epoch`'s batches without their catch-ups (and flush), and without the
    Adam steps unless ``steps``: the same arguments, loop and helpers (keep it in step with the kernel)."""
    n = r.shape[0]
    s = len(lanes)
    width = len(trained)
    k = s - 1
    zero = alphas[0] * 0
    total = 0.0
    for b in range((n + bs - 1) // bs):
        start = b * bs
        stop = min(start + bs, n)
        c = c_full if stop - start == bs else c_last
        nu = 0
        ni = 0
        for j in range(start, stop):
            if stamp_u[u[j]] != b:
                nu = _list(stamp_u, rows_u, U, u[j], b, nu, s, width, zero)
            if stamp_i[i[j]] != b:
                ni = _list(stamp_i, rows_i, I, i[j], b, ni, s, width, zero)
        for j in range(start, stop):
            x = u[j]
            y = i[j]
            e = residual(mu, U[x, k], I[y, k], U, x, I, y, k, r, j)
            total += loss_term(e, reg, penalty(U, x, I, y, k, U[x, k], I[y, k], zero))
            for f in range(k):
                U[x, 3 * s + f] += c * factor_gradient(e, I[y, f], reg, U[x, f])
                I[y, 3 * s + f] += c * factor_gradient(e, U[x, f], reg, I[y, f])
            if width > k:
                U[x, 3 * s + k] += c * bias_gradient(e, reg, U[x, k])
                I[y, 3 * s + k] += c * bias_gradient(e, reg, I[y, k])
        if steps:
            _adam_records(U, rows_u, nu, s, width, alphas[b], c1, c2, eps)
            _adam_records(I, rows_i, ni, s, width, alphas[b], c1, c2, eps)
    return total


def _median_seconds(fn, repeats):
    fn()  # compile or load from cache
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def profile(seed=0, batch_size=32, repeats=20):
    """Median seconds of each part of one epoch; a dict of name -> seconds."""
    df = npmf.load_movielens("ml-100k")
    train, _ = npmf.train_test_split(df, test_size=0.2, random_state=seed)
    out, models = {}, {}
    for optimizer in ("adam", "lazy_adam"):
        model = npmf.MatrixFactorization(optimizer=optimizer, epochs=repeats, batch_size=batch_size, random_state=seed)
        models[optimizer] = model.fit(train.user_id, train.item_id, train.rating)
        out[f"whole epoch, {optimizer}"] = float(np.median(model.history_["seconds"]))
    model = models["adam"]

    u = model._codes(model.user_ids_, train.user_id.to_numpy())
    i = model._codes(model.item_ids_, train.item_id.to_numpy())
    r = train.rating.to_numpy(np.float64)
    n, rng = len(r), np.random.default_rng(seed)
    n_batches = -(-n // batch_size)
    alphas = optimizers.adam_step_sizes(0, n_batches, 0.001, 0.9, 0.999)

    def shuffle():
        perm = rng.permutation(n)
        return u[perm], i[perm], r[perm]

    out["shuffle (permutation and gather)"] = _median_seconds(shuffle, repeats)

    params = [p.copy() for p in model._params()]
    zeros = [np.zeros_like(p) for p in params]
    config = model._config(optimizer="sgd", learning_rate=1e-30)  # rate 0 is refused; 1e-30 moves nothing
    perm = np.arange(n)
    out["errors and gradients (SGD, rate 1e-30)"] = _median_seconds(
        lambda: _kernels.epoch_numba(u, i, r, perm, batch_size, 0.0, params, zeros, zeros, alphas, config), repeats
    )

    # Dense adam's two forms in the serial kernel, the same algorithm to rounding, on dense adam's state after
    # `repeats` epochs, over the ratings in file order (no shuffle; the shuffle is timed above).
    for dtype in (np.float64, np.float32):
        state = [[a.astype(dtype) for a in group] for group in (model._params(), model._m, model._v)]
        adam = model._config(optimizer="adam", dtype=np.dtype(dtype).name)
        rd = r.astype(dtype)
        for dense_loop, form in ((False, "the catch-up"), (True, "the plain loop over every parameter")):
            epoch = functools.partial(
                _kernels.epoch_numba, u, i, rd, perm, batch_size, 0.0, *state, alphas, adam, dense_loop=dense_loop
            )
            out[f"adam epoch kernel, {form}, {np.dtype(dtype).name}"] = _median_seconds(epoch, repeats)

    # Inside the catch-up kernel, float32 (Keras' precision) and float64: its parts without the catch-ups (and
    # steps), on records re-packed (untimed) before every run from the state after `repeats` epochs.
    for dtype in (np.float32, np.float64):
        out.update(_inside_dense_epoch(model, u, i, r.astype(dtype), batch_size, alphas, dtype, repeats))

    # The catch-up's per-epoch tables (B_n from this epoch's step sizes; Q, P1, P2, thr are kept across epochs).
    out["catch-up tables per epoch (catch_up_state)"] = _median_seconds(
        lambda: _catchup_kernels.catch_up_state(alphas, model._config(optimizer="adam")), repeats
    )

    size = params[0].size + params[1].size
    out[f"dense Adam update alone, float64 ({size} factors x {n_batches} steps)"] = _time_dense(
        size, np.float64, alphas, repeats
    )
    out["dense Adam update alone, float32 arithmetic"] = _time_dense(size, np.float32, alphas, repeats)
    return out


def _inside_dense_epoch(model, u, i, r, batch_size, alphas, dtype, repeats):
    """Median seconds of dense_epoch, of :func:`_dense_parts` with and without steps, and of the Python around."""
    name = np.dtype(dtype).name
    state = [[a.astype(dtype) for a in group] for group in (model._params(), model._m, model._v)]
    adam = model._config(optimizer="adam", dtype=name)

    def kernel_seconds(kernel, *extra):
        times = []
        for _ in range(repeats + 1):  # the first compiles or loads from cache
            args = _dense_kernels.dense_arguments(u, i, r, batch_size, 0.0, *state, alphas, adam)[1]
            start = time.perf_counter()
            kernel(*args, *extra)
            times.append(time.perf_counter() - start)
        return float(np.median(times[1:]))

    return {
        f"inside dense_epoch, {name}: the whole kernel": kernel_seconds(_dense_kernels.dense_epoch),
        f"inside dense_epoch, {name}: residuals, gradients, Adam steps (no catch-up)": kernel_seconds(
            _dense_parts, True
        ),
        f"inside dense_epoch, {name}: residuals and gradients": kernel_seconds(_dense_parts, False),
        f"inside dense_epoch, {name}: the Python around it (pack, tables, unpack)": _median_seconds(
            lambda: _python_around(u, i, r, batch_size, state, alphas, adam), repeats
        ),
    }


def _python_around(u, i, r, batch_size, state, alphas, config):
    """:func:`npmf.sgd._dense_kernels.dense_epoch_numba` but for the kernel: its arguments, then the unpacking."""
    params, m, v = state
    records, _ = _dense_kernels.dense_arguments(u, i, r, batch_size, 0.0, params, m, v, alphas, config)
    for X, side in zip(records, range(2), strict=True):
        _dense_kernels.pack(X, params[side], params[side + 2], m[side], m[side + 2], v[side], v[side + 2], True)


def _time_dense(size, dtype, alphas, repeats):
    rng = np.random.default_rng(0)
    p = rng.uniform(-0.05, 0.05, size).astype(dtype)
    g = np.zeros(size, dtype)  # most rows get no gradient in a step; the arithmetic is the same
    m = np.zeros(size, dtype)
    v = rng.uniform(0, 1e-3, size).astype(dtype)
    ft = np.dtype(dtype).type  # scalars in the arrays' dtype, as npmf.sgd._kernels.epoch_numba passes them
    a = alphas.astype(dtype)
    return _median_seconds(lambda: _dense_adam_steps(p, g, m, v, a, ft(0.1), ft(1.0 - 0.999), ft(1e-7)), repeats)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20, help="epochs timed per part (default 20)")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "keras_bounds"))
    args = parser.parse_args(argv)
    info = describe()
    parts = profile(repeats=args.repeats)
    lines = [
        "# What bounds one npmf epoch of the Keras recipe (ML-100k 80/20, k=3, batch 32)",
        "",
        markdown(info),
        "",
        f"Medians of {args.repeats} epochs per part; `python benchmarks/keras_bounds.py` reproduces it.",
        "",
        "| part | ms |",
        "|---|---:|",
    ]
    lines += [f"| {name} | {seconds * 1e3:.1f} |" for name, seconds in parts.items()]
    lines += ["", f"Load average at the end: {[round(x, 2) for x in os.getloadavg()]}."]
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "keras_bounds.md").write_text(text)
    record = {"machine": info, "repeats": args.repeats, "seconds": parts, "load_avg_end": list(os.getloadavg())}
    (out / "keras_bounds.json").write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
