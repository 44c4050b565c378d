"""Accuracy of the presets on ML-100k, beside scikit-surprise's SVD when it is installed.

Protocols, all on MovieLens-100k (``NPMF_DATA_DIR`` or ``~/.npmf/data``):

- random 80/20: ``npmf.train_test_split(u.data, test_size=0.2, random_state=s)``
  for s = 0, 1, 2; the model's ``random_state`` is s too. Mean over the seeds.
- u1-u5: the five canonical folds (``npmf.load_movielens_folds``), model
  ``random_state=0``. Mean over the folds.
- ua/ub: the two other file pairs shipped with ML-100k, exactly 10 test
  ratings per user (a per-user protocol, 90,570 training ratings), which the
  preset was not tuned for. This stands in for a second MovieLens file: no
  other MovieLens release is available offline here, and ua/ub come from the
  same u.data, so it checks a change of protocol, not of data.
- synthetic file: another ratings file, in ML-1M's ``::`` format, written by
  ``npmf.make_ratings(2000, 1500, 200_000, random_state=0)`` (a
  planted biased rank-10 model, MovieLens-like skewed popularity, whole stars
  1-5) and read back with ``npmf.read_ratings``; random 80/20 splits, seeds
  0-2. The presets were never run on it before this benchmark. The planted
  model's own RMSE (noise and rounding) is the floor no model can beat.

Each model is fitted once per split on the training part only; RMSE and MAE
are reported on raw predictions (as the Keras recipe reports them) and RMSE
also on predictions clipped to the training rating range (Surprise clips its
estimates to the rating scale, so that column is the like-for-like one).

Run::

    NPMF_DATA_DIR=/path/to/data python benchmarks/accuracy.py [--presets accurate ...]

writes ``benchmarks/results/accuracy.json`` and ``accuracy.md``.
"""

import argparse
import functools
import json
import platform
import tempfile
import time
from pathlib import Path

import numba
import numpy as np

import npmf
from npmf import metrics
from npmf.presets import ESTIMATORS, PRESETS, get_preset

RESULTS = Path(__file__).parent / "results"
GOALS = {"random 80/20": 0.895, "u1-u5": 0.905}
REFERENCES = [
    ("Surprise SVD (5-fold, as published)", "0.934"),
    ("Cornac biased MF", "0.900"),
    ("Bayesian FM, myFM", "0.894"),
]


def score(pred, test, lo, hi):
    return {
        "rmse": metrics.rmse(test.rating, pred),
        "mae": metrics.mae(test.rating, pred),
        "rounded_mae": metrics.rounded_mae(test.rating, pred),
        "rmse_clipped": metrics.rmse(test.rating, np.clip(pred, lo, hi)),
    }


def run_npmf(preset, train, test, seed):
    model = npmf.from_preset(preset, random_state=seed, n_threads=1)
    start = time.perf_counter()
    model.fit(train.user_id, train.item_id, train.rating)
    seconds = time.perf_counter() - start
    pred = model.predict(test.user_id, test.item_id)
    return {**score(pred, test, train.rating.min(), train.rating.max()), "fit_seconds": seconds}


def surprise_runner():
    """A runner for Surprise's SVD with its defaults, or None when Surprise is missing."""
    try:
        from surprise import SVD, Dataset, Reader
    except ImportError:
        return None

    def run(train, test, seed):
        lo, hi = float(train.rating.min()), float(train.rating.max())
        data = Dataset.load_from_df(train[["user_id", "item_id", "rating"]], Reader(rating_scale=(lo, hi)))
        algo = SVD(random_state=seed)
        start = time.perf_counter()
        algo.fit(data.build_full_trainset())
        seconds = time.perf_counter() - start
        pred = np.array([algo.predict(u, i).est for u, i in zip(test.user_id, test.item_id)])
        return {**score(pred, test, lo, hi), "fit_seconds": seconds}

    return run


def protocols():
    df = npmf.load_movielens("ml-100k")
    random = []
    for seed in (0, 1, 2):
        train, test = npmf.train_test_split(df, test_size=0.2, random_state=seed)
        random.append((f"seed {seed}", train, test, seed))
    folds = npmf.load_movielens_folds("ml-100k")
    canonical = [(f"u{k + 1}", train, test, 0) for k, (train, test) in enumerate(folds)]
    extra = npmf.load_movielens_folds("ml-100k", splits=["ua", "ub"])
    other = [(name, train, test, 0) for name, (train, test) in zip(("ua", "ub"), extra)]
    synthetic, floor = synthetic_file()
    synthetic_splits = []
    for seed in (0, 1, 2):
        train, test = npmf.train_test_split(synthetic, test_size=0.2, random_state=seed)
        synthetic_splits.append((f"seed {seed}", train, test, seed))
    return {"random 80/20": random, "u1-u5": canonical, "ua/ub": other, "synthetic file": synthetic_splits}, floor


def synthetic_file():
    """The synthetic ratings, through a ``::`` file; and the planted model's RMSE on them."""
    df = npmf.make_ratings(2000, 1500, 200_000, random_state=0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ratings.dat"
        with open(path, "w") as f:
            for u, i, r in zip(df.user_id, df.item_id, df.rating.astype(int)):
                f.write(f"{u + 1}::{i + 1}::{r}::0\n")
        return npmf.read_ratings(path), float(np.sqrt(df.attrs["noise_mse"]))


def machine():
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "platform": platform.platform(), "python": platform.python_version(),
            "numpy": np.__version__, "numba": numba.__version__, "npmf": npmf.__version__,
            "surprise": _version("scikit-surprise")}  # fmt: skip


def _version(dist):
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), help="npmf presets to run (default: all)")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the recorded rows of the models not rerun (each row says which run it is from)",
    )
    parser.add_argument(
        "--protocols",
        nargs="+",
        default=None,
        help="protocols to run (default: all); with --merge the others keep their recorded rows",
    )
    args = parser.parse_args()
    runners = {f"npmf {name}": functools.partial(run_npmf, name) for name in args.presets}
    svd = surprise_runner()
    if svd is None:
        print("scikit-surprise is not installed: skipping its SVD (pip install scikit-surprise)")
    else:
        runners["Surprise SVD (defaults)"] = svd

    results = {}
    splits_by_protocol, floor = protocols()
    for protocol, splits in splits_by_protocol.items():
        if args.protocols and protocol not in args.protocols:
            continue
        for name, run in runners.items():
            rows = []
            for label, train, test, seed in splits:
                rows.append({"split": label, **run(train, test, seed)})
                print(f"{protocol:12s} {name:24s} {label:7s} RMSE {rows[-1]['rmse']:.4f}", flush=True)
            mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k != "split"}
            results.setdefault(protocol, {})[name] = {"splits": rows, "mean": mean}

    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    for models in results.values():
        for r in models.values():
            r["run"] = date
    presets = {name: {"estimator": ESTIMATORS[name], **get_preset(name)} for name in args.presets}
    if args.merge and (RESULTS / "accuracy.json").exists():
        old = json.loads((RESULTS / "accuracy.json").read_text())
        for protocol, models in old["results"].items():
            for name, r in models.items():
                if name not in results.get(protocol, {}):
                    r.setdefault("run", old["date"])
                    results.setdefault(protocol, {})[name] = r
        presets = {**old.get("presets", {}), **presets}
        results = {
            p: dict(
                sorted(
                    m.items(),
                    key=lambda kv: (
                        list(old["results"].get(p, {})).index(kv[0])
                        if kv[0] in old["results"].get(p, {})
                        else len(kv[0])
                    ),
                )
            )
            for p, m in results.items()
        }
    out = {"protocol": __doc__, "machine": machine(), "synthetic_floor_rmse": floor, "date": date,
           "presets": presets, "results": results}  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "accuracy.json").write_text(json.dumps(out, indent=1))
    (RESULTS / "accuracy.md").write_text(markdown(out))
    print(f"wrote {RESULTS / 'accuracy.md'}")


def markdown(out):
    m = out["machine"]
    lines = ["# Accuracy on MovieLens-100k", "", __doc__.split("\n\n", 1)[1].split("Run::")[0].strip(), "",
             f"Run {out['date']} on {m['cpu']} ({m['platform']}), Python {m['python']}, NumPy {m['numpy']}, "
             f"Numba {m['numba']}, npmf {m['npmf']}, scikit-surprise {m['surprise']}; one thread per fit. "
             "Fit times are wall seconds on a machine shared with other jobs: indicative only.", "",
             "| protocol | model | RMSE | RMSE clipped | MAE | rounded MAE | fit s | per split RMSE |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    older = sorted({f"{name} ({r['run']})" for models in out["results"].values() for name, r in models.items()
                    if r.get("run", out["date"]) != out["date"]})  # fmt: skip
    if older:
        lines[-3:-3] = ["Rows kept from earlier runs (not rerun in this one): " + ", ".join(older) + ".", ""]
    for protocol, models in out["results"].items():
        for name, r in models.items():
            a = r["mean"]
            splits = ", ".join(f"{s['rmse']:.4f}" for s in r["splits"])
            lines.append(f"| {protocol} | {name} | **{a['rmse']:.4f}** | {a['rmse_clipped']:.4f} | {a['mae']:.4f} | "
                         f"{a['rounded_mae']:.4f} | {a['fit_seconds']:.1f} | {splits} |")  # fmt: skip
    lines += ["", "## Against the goals", ""]
    for protocol, goal in GOALS.items():
        got = out["results"].get(protocol, {}).get("npmf accurate", {}).get("mean", {}).get("rmse")
        if got is not None:
            verdict = "met" if got <= goal else f"not met, short by {got - goal:.4f}"
            lines.append(f"- {protocol}: goal RMSE <= {goal}, `accurate` mean {got:.4f}: {verdict}.")
    folds = out["results"].get("u1-u5", {})
    if folds:
        u1 = {name: r["splits"][0]["rmse"] for name, r in folds.items()}
        hardest = all(max(s["rmse"] for s in r["splits"]) == r["splits"][0]["rmse"] for r in folds.values())
        lines.append(
            "- u1 alone, the one test set disjoint from the data `accurate` was tuned on (u1.base): "
            + ", ".join(f"{name} {x:.4f}" for name, x in u1.items())
            + (". u1 is the hardest of the five folds for every model." if hardest else ".")
        )
    if "synthetic file" in out["results"]:
        lines.append(f"- synthetic file: the planted model itself scores RMSE {out['synthetic_floor_rmse']:.4f} "
                     "(its noise and rounding); the gap to it is what a model leaves unexplained.")  # fmt: skip
    lines += ["", "Published references (not rerun here): "
              + "; ".join(f"{n} {v}" for n, v in REFERENCES) + ".", "",
              "## Presets", ""]  # fmt: skip
    lines += [f"- `{name}`: `{params}`" for name, params in out["presets"].items()]
    lines += ["", "How `accurate` was chosen: `benchmarks/tune_bayesian.py`, recorded in `tune_bayesian.md`; "
              "`accurate_sgd`: `benchmarks/tune_accurate.py`, recorded in `tune_accurate.md`. Both searches "
              "validated inside u1.base only.", ""]  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    main()
