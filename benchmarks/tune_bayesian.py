"""Choose the "accurate" preset (BayesianMatrixFactorization) by validation inside ML-100k's u1.base only.

A Gibbs sampler has no learning rate, L2 strength or epoch count to fit to
held-out data: its priors adapt to the data, and more sweeps only cost time.
What remains to choose is the rank ``n_factors`` and which side gets SVD++'s
implicit feedback. Protocol (no test file is ever read):

1. Inner folds: u1.base (80,000 ratings) is cut into 5 random inner folds
   (``npmf.model_selection.kfold``, random_state=2024, as for ``accurate_sgd``); inner
   folds 0, 1, 2 each train on 64,000 ratings and validate on 16,000.
2. Every configuration of the grid, n_factors {5, 10, 20} x
   implicit_feedback {"none", "users", "both"}, at ``--epochs`` sweeps (burn-in a tenth,
   100 kept samples, random_state=0), is scored by its validation RMSE; the
   preset is the configuration with the lowest mean over the three folds.
3. The preset's sweep count is ``--epochs`` times 2: the longest run we accept
   for the preset's fit time, since longer chains average more samples.

Run::

    NPMF_DATA_DIR=/path/to/data python benchmarks/tune_bayesian.py [--epochs 300]

writes ``benchmarks/results/tune_bayesian.json`` and ``tune_bayesian.md``.
"""

import argparse
import itertools
import json
import platform
import time
from pathlib import Path

import numpy as np

import npmf
from npmf.model_selection import kfold

RESULTS = Path(__file__).parent / "results"
GRID = [
    dict(n_factors=k, implicit_feedback=imp) for imp, k in itertools.product(["none", "users", "both"], [5, 10, 20])
]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=300, help="Gibbs sweeps per fit in the search")
    parser.add_argument("--folds", type=int, default=3, help="inner folds used (of 5)")
    args = parser.parse_args(argv)
    base, _ = npmf.load_movielens_folds("ml-100k", splits=["u1"])[0]
    inner = list(kfold(base, n_folds=5, random_state=2024))[: args.folds]
    fixed = dict(epochs=args.epochs, n_kept_samples=100, random_state=0)  # burn-in: a tenth of epochs
    rows = []
    for config in GRID:
        scores, seconds = [], []
        for train, val in inner:
            model = npmf.BayesianMatrixFactorization(**config, **fixed)
            start = time.perf_counter()
            model.fit(train.user_id, train.item_id, train.rating)
            seconds.append(time.perf_counter() - start)
            scores.append(npmf.metrics.rmse(val.rating, model.predict(val.user_id, val.item_id)))
        rows.append({"config": config, "val_rmse": scores, "mean": float(np.mean(scores)), "fit_seconds": seconds})
        print(config, [round(s, 4) for s in scores], f"mean {np.mean(scores):.4f}", flush=True)
    best = min(rows, key=lambda row: row["mean"])
    preset = {**best["config"], "epochs": 2 * args.epochs, "n_kept_samples": 100}
    print("accurate preset:", preset)
    out = {
        "machine": f"{platform.processor() or platform.machine()}, {platform.platform()}",
        "run": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "search": {"epochs": args.epochs, "folds": args.folds, **fixed},
        "rows": rows,
        "preset": preset,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "tune_bayesian.json").write_text(json.dumps(out, indent=1))
    lines = ["# Search for the `accurate` preset (BayesianMatrixFactorization)", "",
             __doc__.split("\n\n", 1)[1].split("Run::")[0].strip(), "",
             f"Run {out['run']} on {out['machine']}.", "",
             "| n_factors | implicit_feedback | val RMSE per inner fold | mean | fit s (median) |",
             "|---|---|---|---|---|"]  # fmt: skip
    for row in sorted(rows, key=lambda row: row["mean"]):
        c = row["config"]
        folds = ", ".join(f"{s:.4f}" for s in row["val_rmse"])
        lines.append(f"| {c['n_factors']} | {c['implicit_feedback']} | {folds} | **{row['mean']:.4f}** | "
                     f"{np.median(row['fit_seconds']):.1f} |")  # fmt: skip
    lines += ["", f"Chosen: `{preset}`", ""]
    (RESULTS / "tune_bayesian.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
