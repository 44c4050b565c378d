"""Serving new users: ``fold_in`` against the unknown-user fallback and against ``partial_fit``, on ML-100k.

Protocol. A fifth of ML-100k's users with at least 30 ratings are held out
entirely (seeded); each model is fitted on the other users' ratings only. Each
held-out user's ratings are shuffled (seeded); the first 20 are the user's
"known" ratings and the rest are the test ratings, the same for every k. For
k = 5, 10, 20 the first k known ratings of every held-out user are given to
the model, then the test ratings are scored (RMSE, raw predictions):

- ``fallback``: nothing given, the model's prediction for an unknown user;
- ``fold_in``: ``model.fold_in`` on a copy of the fitted model;
- ``partial_fit(e)``: ``model.partial_fit(..., epochs=e)`` on a copy
  (MatrixFactorization only; the Bayesian model has none).

``max shift`` is the largest change of a prediction of an existing user (all
training pairs) caused by giving the new users' ratings: fold_in must leave
them bit for bit (0). Seconds are the wall time of the call (one run; a
2-core shared machine).

Run::

    NPMF_DATA_DIR=/path/to/data python benchmarks/fold_in.py [--presets seed accurate_sgd accurate] [--seed 0]

writes ``benchmarks/results/fold_in/fold_in.json`` and ``fold_in.md``.
"""

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np

import npmf
from npmf import metrics

try:
    from machine import describe, markdown
except ImportError:  # run from elsewhere
    from benchmarks.machine import describe, markdown

RESULTS = Path(__file__).parent / "results" / "fold_in"
KS = (5, 10, 20)
PARTIAL_EPOCHS = (1, 10)


def split(df, seed):
    """(train, held-out users' ratings with a column ``order``: their position in the user's shuffle)."""
    rng = np.random.default_rng(seed)
    counts = df.user_id.value_counts()
    eligible = np.sort(counts.index[counts >= 30].to_numpy())
    held = rng.choice(eligible, len(eligible) // 5, replace=False)
    new = df[df.user_id.isin(held)].copy()
    new["order"] = 0
    for _, rows in new.groupby("user_id").groups.items():
        new.loc[rows, "order"] = rng.permutation(len(rows))
    return df[~df.user_id.isin(held)], new


def evaluate(model, train, new, k, how):
    """RMSE on the held-out users' test ratings after giving ``k`` of theirs ``how``; seconds; max shift."""
    given, test = new[new.order < k], new[new.order >= max(KS)]
    model = copy.deepcopy(model)
    before = model.predict(train.user_id, train.item_id)
    start = time.perf_counter()
    if how == "fold_in":
        model.fold_in(given.user_id, given.item_id, given.rating)
    elif how.startswith("partial_fit"):
        model.partial_fit(given.user_id, given.item_id, given.rating, epochs=int(how.split("(")[1].rstrip(")")))
    seconds = time.perf_counter() - start
    shift = float(np.max(np.abs(model.predict(train.user_id, train.item_id) - before)))
    rmse = metrics.rmse(test.rating, model.predict(test.user_id, test.item_id))
    return {"rmse": rmse, "seconds": seconds, "max_shift": shift}


def run(presets, seed):
    df = npmf.load_movielens("ml-100k")
    train, new = split(df, seed)
    rows = []
    for name in presets:
        model = npmf.from_preset(name, random_state=seed)
        start = time.perf_counter()
        model.fit(train.user_id, train.item_id, train.rating)
        fit_seconds = time.perf_counter() - start
        ways = ["fallback", "fold_in"]
        if hasattr(model, "partial_fit"):
            ways += [f"partial_fit({e})" for e in PARTIAL_EPOCHS]
        for k in KS:
            for how in ways:
                r = evaluate(model, train, new, k, how)
                rows.append({"preset": name, "k": k, "method": how, "fit_seconds": fit_seconds, **r})
                print(
                    f"{name:13s} k={k:2d} {how:15s} RMSE {r['rmse']:.4f} {r['seconds']:.3f}s shift {r['max_shift']:.3g}"
                )
    return {
        "n_train": len(train),
        "n_new_users": int(new.user_id.nunique()),
        "n_test": int((new.order >= max(KS)).sum()),
        "seed": seed,
        "rows": rows,
    }


def write(result, machine):
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "fold_in.json").write_text(json.dumps({"machine": machine, **result}, indent=1))
    lines = [
        "# Serving new users on ML-100k: fold_in, the unknown-user fallback and partial_fit",
        "",
        markdown(machine),
        "",
        f"{result['n_new_users']} users (a fifth of those with 30+ ratings, seed {result['seed']}) held out of "
        f"training ({result['n_train']:,} ratings); k of each one's ratings given, RMSE on their "
        f"{result['n_test']:,} other ratings (the same for every k). Max shift: the largest change of an existing "
        "user's prediction. `python benchmarks/fold_in.py` reproduces it.",
        "",
        "| preset | method | RMSE k=5 | RMSE k=10 | RMSE k=20 | seconds (k=20) | max shift (k=20) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    by = {(r["preset"], r["method"], r["k"]): r for r in result["rows"]}
    for preset, method in dict.fromkeys((r["preset"], r["method"]) for r in result["rows"]):
        cells = [f"{by[preset, method, k]['rmse']:.4f}" for k in KS]
        last = by[preset, method, max(KS)]
        lines.append(f"| {preset} | {method} | {' | '.join(cells)} | {last['seconds']:.3f} | {last['max_shift']:.3g} |")
    (RESULTS / "fold_in.md").write_text("\n".join(lines) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["seed", "accurate_sgd", "accurate"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    machine = describe()
    write(run(args.presets, args.seed), machine)
    print((RESULTS / "fold_in.md").read_text())


if __name__ == "__main__":
    main()
