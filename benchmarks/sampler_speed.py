"""Fit time of the ``accurate`` preset (the Gibbs sampler) on ML-100k 80/20, and where one sweep's time goes.

- The whole fit: ``npmf.from_preset("accurate", random_state=0, n_threads=t)`` on the 80,000 training ratings
  of ``npmf.train_test_split(u.data, test_size=0.2, random_state=0)``, t = 1 and 2, three times each, interleaved
  with Surprise's SVD (defaults) in the same run; medians. The old sampler cannot run beside the new one in one
  process, so the figure before the change is the 44.5 s that issue 11 measured on this machine.
- One sweep by part: the chain's calls wrapped in timers for 50 sweeps after 20 warm-up sweeps, medians per
  sweep: drawing the user rows, the item rows, the two implicit steps, the global mean and noise, the four
  Normal-Wishart priors, and the rest (normals drawn into buffers, targets, bookkeeping).

Run::

    NPMF_DATA_DIR=/path/to/data python benchmarks/sampler_speed.py

writes ``benchmarks/results/sampler/sampler_speed.json`` and ``.md``.
"""

import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

import npmf
from npmf.bayes import _chain
from npmf.bayes.config import GibbsConfig
from npmf.core.encoding import factorize_ids
from npmf.core.threads import numba_threads

sys.path.insert(0, str(Path(__file__).parent))
from machine import describe, markdown  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "sampler"
ISSUE_SECONDS = 44.5


def fit_npmf(train, test, threads):
    model = npmf.from_preset("accurate", random_state=0, n_threads=threads)
    start = time.perf_counter()
    model.fit(train.user_id, train.item_id, train.rating)
    seconds = time.perf_counter() - start
    return seconds, npmf.metrics.rmse(test.rating, model.predict(test.user_id, test.item_id)), model


def saved_megabytes(model):
    with tempfile.TemporaryDirectory() as tmp:
        model.save(Path(tmp) / "accurate.npz")
        return (Path(tmp) / "accurate.npz").stat().st_size / 1e6


def fit_surprise(train, test):
    try:
        from surprise import SVD, Dataset, Reader
    except ImportError:
        return None
    data = Dataset.load_from_df(train[["user_id", "item_id", "rating"]], Reader(rating_scale=(1, 5)))
    algo = SVD(random_state=0)
    start = time.perf_counter()
    algo.fit(data.build_full_trainset())
    seconds = time.perf_counter() - start
    pred = np.array([algo.predict(u, i).est for u, i in zip(test.user_id, test.item_id)])
    return seconds, npmf.metrics.rmse(test.rating, pred)


def sweep_parts(train, threads, warmup=20, sweeps=50):
    """Median seconds per sweep of each part, and of the whole sweep."""
    u, user_ids = factorize_ids("user", train.user_id.to_numpy())
    i, item_ids = factorize_ids("item", train.item_id.to_numpy())
    config = GibbsConfig(**{k: v for k, v in npmf.presets.get_preset("accurate").items() if k != "estimator"})
    rng = np.random.default_rng(0)
    chain = _chain.Chain(u.astype(np.int32), i.astype(np.int32), train.rating.to_numpy(float), len(user_ids),
                         len(item_ids), config, rng)  # fmt: skip
    spent = defaultdict(float)
    calls = defaultdict(int)

    def timed(name, f, by_call=None):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            label = name if by_call is None else by_call[(calls[name] - 1) % len(by_call)]
            start = time.perf_counter()
            out = f(*args, **kwargs)
            spent[label] += time.perf_counter() - start
            return out

        return wrapper

    originals = (_chain.sample_rows_numba, _chain.gibbs.sample_implicit, _chain.gibbs.sample_normal_wishart,
                 _chain.Chain.sample_mean_and_noise)  # fmt: skip
    _chain.sample_rows_numba = timed("rows", originals[0], ["user rows", "item rows"])
    _chain.gibbs.sample_implicit = timed("implicit", originals[1], ["implicit (users' s_u)", "implicit (items')"])
    _chain.gibbs.sample_normal_wishart = timed("Normal-Wishart priors (4)", originals[2])
    _chain.Chain.sample_mean_and_noise = timed("residuals, global mean, noise", originals[3])
    per_sweep = defaultdict(list)
    try:
        with numba_threads(threads):
            for s in range(warmup + sweeps):
                spent.clear()
                start = time.perf_counter()
                chain.sweep(rng)
                total = time.perf_counter() - start
                if s >= warmup:
                    for name, seconds in spent.items():
                        per_sweep[name].append(seconds)
                    per_sweep["rest (normals into buffers, targets)"].append(total - sum(spent.values()))
                    per_sweep["whole sweep"].append(total)
    finally:
        (_chain.sample_rows_numba, _chain.gibbs.sample_implicit, _chain.gibbs.sample_normal_wishart,
         _chain.Chain.sample_mean_and_noise) = originals  # fmt: skip
    return {name: float(np.median(v)) for name, v in per_sweep.items()}


def main():
    info = describe(("scikit-surprise",))
    df = npmf.load_movielens("ml-100k")
    train, test = npmf.train_test_split(df, test_size=0.2, random_state=0)
    npmf.from_preset("accurate", epochs=3, burn_in=1).fit(
        train.user_id[:500], train.item_id[:500], train.rating[:500]
    )  # fmt: skip  (JIT warm-up)
    runs = defaultdict(list)
    megabytes = None
    for rep in range(3):  # interleaved: each repetition runs every side once
        for threads in (1, 2):
            name = f"npmf accurate, {threads} thread{'s' * (threads > 1)}"
            seconds, rmse, model = fit_npmf(train, test, threads)
            megabytes = megabytes or saved_megabytes(model)
            runs[name].append((seconds, rmse))
            print(rep, name, f"{seconds:.2f} s, RMSE {rmse:.4f}", flush=True)
        svd = fit_surprise(train, test)
        if svd is not None:
            runs["Surprise SVD (defaults)"].append(svd)
    fits = {name: {"seconds": [s for s, _ in v], "median_seconds": float(np.median([s for s, _ in v])),
                   "rmse": v[0][1]} for name, v in runs.items()}  # fmt: skip
    parts = {threads: sweep_parts(train, threads) for threads in (1, 2)}
    info["load_avg_1_5_15_end"] = describe()["load_avg_1_5_15"]
    out = {"protocol": __doc__, "machine": info, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "issue_seconds": ISSUE_SECONDS, "saved_megabytes": megabytes, "fits": fits,
           "sweep_parts_seconds": parts}  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "sampler_speed.json").write_text(json.dumps(out, indent=1))
    (RESULTS / "sampler_speed.md").write_text(to_markdown(out))
    print(to_markdown(out))


def to_markdown(out):
    fits, svd = out["fits"], out["fits"].get("Surprise SVD (defaults)")
    lines = [
        "# The `accurate` preset's fit time on ML-100k 80/20 (seed 0)",
        "",
        out["protocol"].split("Run::")[0].strip(),
        "",
        markdown(out["machine"]),
        f"Load average at the end: {out['machine']['load_avg_1_5_15_end']}. Run {out['date']}.",
        "",
        "| fit | median s | runs s | RMSE | vs issue's 44.5 s | vs Surprise SVD |",
        "|---|---|---|---|---|---|",
    ]
    for name, f in fits.items():
        ratio = f"{f['median_seconds'] / svd['median_seconds']:.1f}x" if svd else "-"
        lines.append(
            f"| {name} | **{f['median_seconds']:.2f}** | {', '.join(f'{s:.2f}' for s in f['seconds'])} | "
            f"{f['rmse']:.4f} | {out['issue_seconds'] / f['median_seconds']:.1f}x faster | {ratio} |"
        )
    lines += ["", f"The fitted model saved (`model.save`): {out['saved_megabytes']:.1f} MB.", ""]
    lines += ["", "One sweep by part (median ms per sweep):", "", "| part | 1 thread | 2 threads |", "|---|---|---|"]
    p1, p2 = out["sweep_parts_seconds"][1], out["sweep_parts_seconds"][2]
    for name in p1:
        lines.append(f"| {name} | {1000 * p1[name]:.2f} | {1000 * p2[name]:.2f} |")
    return "\n".join(lines) + "\n"  # fmt: skip


if __name__ == "__main__":
    main()
