"""Choose the "accurate_sgd" preset (MatrixFactorization) by validation inside ML-100k's u1.base only.

Protocol (no test file is ever read):

1. Inner folds: u1.base (80,000 ratings) is cut into 5 random inner folds
   (``npmf.model_selection.kfold``, random_state=2024); each inner fold trains on 64,000
   ratings and validates on 16,000.
2. Stage 1 (coarse): every configuration of the grid is fitted on inner fold 0
   with ``validation_data`` and ``early_stopping_patience=10`` (at most 400
   epochs); its score is the best validation RMSE over epochs. All have
   ``biases=True``. The grid (``grid()``, 77 configurations):
   SGD one rating at a time (batch_size=1), learning_rate {0.002, 0.005, 0.01}
   x reg {0.04, 0.06, 0.08, 0.1, 0.12} x n_factors {50, 100, 200},
   init_scale 0.01, plus 4 with init_scale 0.1; minibatch SGD (batch 32,
   learning_rate {0.05, 0.1, 0.2} x reg {0.06, 0.1}, k=100); lazy Adam (batch
   {32, 256} x learning_rate {0.0005, 0.001, 0.003} x reg {0.05, 0.1, 0.15},
   k=100); dense Adam (batch 1024, learning_rate {0.001, 0.003} x reg {0.05, 0.1}, k=100).
3. Stage 2 (refine): around the best stage-1 configuration, neighbours with
   reg x {0.75, 1.25}, n_factors x {0.5, 2}, learning_rate x {0.5, 2}; also on fold 0.
4. Stage 3 (confirm, and fix the epoch count): the best ``--top`` configurations
   of stages 1-2 are fitted on inner folds 0, 1, 2 for a fixed number of epochs,
   recording validation RMSE after every epoch. The preset is the
   (configuration, epochs) with the lowest mean curve over the three folds.

u1.test is therefore never seen; u2-u5's test sets overlap u1.base (they are
other parts of the same u.data), which is why the benchmark also reports u1
alone and the ua/ub splits. Everything is seeded (model random_state=0,
n_threads=1), so a rerun reproduces the numbers.

Run::

    NPMF_DATA_DIR=/path/to/data python benchmarks/tune_accurate.py [--report-only]

writes ``benchmarks/results/tune_accurate.json`` and ``tune_accurate.md``
(``--report-only`` rewrites the Markdown from the saved JSON).
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
FIXED = {"biases": True, "n_threads": 1, "random_state": 0}


def grid():
    """The stage-1 grid: SGD one rating at a time and in minibatches, lazy and dense Adam."""
    out = []
    for lr, reg, k in itertools.product([0.002, 0.005, 0.01], [0.04, 0.06, 0.08, 0.1, 0.12], [50, 100, 200]):
        out.append(dict(optimizer="sgd", batch_size=1, learning_rate=lr, reg=reg, n_factors=k, init_scale=0.01))
    for lr, reg in itertools.product([0.005, 0.01], [0.06, 0.1]):
        out.append(dict(optimizer="sgd", batch_size=1, learning_rate=lr, reg=reg, n_factors=100, init_scale=0.1))
    for lr, reg in itertools.product([0.05, 0.1, 0.2], [0.06, 0.1]):
        out.append(dict(optimizer="sgd", batch_size=32, learning_rate=lr, reg=reg, n_factors=100, init_scale=0.01))
    for bs, lr, reg in itertools.product([32, 256], [0.0005, 0.001, 0.003], [0.05, 0.1, 0.15]):
        out.append(dict(optimizer="lazy_adam", batch_size=bs, learning_rate=lr, reg=reg, n_factors=100))
    for lr, reg in itertools.product([0.001, 0.003], [0.05, 0.1]):
        out.append(dict(optimizer="adam", batch_size=1024, learning_rate=lr, reg=reg, n_factors=100))
    return out


def neighbours(best):
    out = []
    for key, factors in (("reg", (0.75, 1.25)), ("n_factors", (0.5, 2)), ("learning_rate", (0.5, 2))):
        for f in factors:
            value = best[key] * f
            out.append({**best, key: int(value) if key == "n_factors" else round(value, 6)})
    return out


def curve(config, fold, epochs, patience=None):
    """Validation RMSE after every epoch of one fit on one inner fold."""
    train, val = fold
    model = npmf.MatrixFactorization(**FIXED, **config, epochs=epochs, early_stopping_patience=patience)
    start = time.perf_counter()
    model.fit(train.user_id, train.item_id, train.rating, validation_data=(val.user_id, val.item_id, val.rating))
    return np.array(model.history_["val_rmse"]), time.perf_counter() - start


def key(config):
    return json.dumps(config, sort_keys=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-epochs", type=int, default=400)
    parser.add_argument("--top", type=int, default=6, help="configurations confirmed on 3 inner folds")
    parser.add_argument("--report-only", action="store_true", help="rewrite the Markdown from the saved JSON")
    args = parser.parse_args()
    if args.report_only:
        out = json.loads((RESULTS / "tune_accurate.json").read_text())
        out["protocol"] = __doc__  # the same procedure; its description may have been reworded
        (RESULTS / "tune_accurate.json").write_text(json.dumps(out, indent=1))
        (RESULTS / "tune_accurate.md").write_text(markdown(out))
        return
    base, _ = npmf.load_movielens_folds("ml-100k", splits=["u1"])[0]  # the test part is dropped unread
    inner = kfold(base, 5, random_state=2024)
    started = time.time()

    coarse = {}

    def stage1(configs):
        for c in configs:
            if key(c) in coarse:
                continue
            rmse, seconds = curve(c, inner[0], args.max_epochs, patience=10)
            coarse[key(c)] = {"config": c, "val_rmse": float(rmse.min()), "best_epoch": int(rmse.argmin()) + 1,
                              "seconds": seconds}  # fmt: skip
            print(f"stage 1: {rmse.min():.4f} at epoch {rmse.argmin() + 1:3d} ({seconds:5.1f}s) {c}", flush=True)

    stage1(grid())
    best = min(coarse.values(), key=lambda r: r["val_rmse"])["config"]
    stage1(neighbours(best))
    ranked = sorted(coarse.values(), key=lambda r: r["val_rmse"])

    confirmed = []
    for row in ranked[: args.top]:
        epochs = min(args.max_epochs, 2 * row["best_epoch"] + 20)
        curves = [curve(row["config"], inner[f], epochs)[0] for f in range(3)]
        mean = np.mean(curves, axis=0)
        e = int(mean.argmin())
        confirmed.append({"config": row["config"], "epochs": e + 1, "mean_val_rmse": float(mean[e]),
                          "fold_val_rmse": [float(c[e]) for c in curves], "mean_curve": mean.tolist()})  # fmt: skip
        print(f"stage 3: {mean[e]:.4f} at epoch {e + 1} {row['config']}", flush=True)
    confirmed.sort(key=lambda r: r["mean_val_rmse"])
    winner = confirmed[0]
    preset = {**winner["config"], "biases": True, "epochs": winner["epochs"]}
    print("accurate_sgd preset:", preset)

    RESULTS.mkdir(exist_ok=True)
    out = {"protocol": __doc__, "machine": platform.platform(), "minutes": (time.time() - started) / 60,
           "stage1": ranked, "stage3": confirmed, "preset": preset}  # fmt: skip
    (RESULTS / "tune_accurate.json").write_text(json.dumps(out, indent=1))
    (RESULTS / "tune_accurate.md").write_text(markdown(out))


def markdown(out):
    """The Markdown report of a search result ``out`` (as saved in the JSON)."""
    lines = ["# Search for the `accurate_sgd` preset (until 2026-11-28 named `accurate`)", "",
             __doc__.split("\n\n", 1)[1].split("Run::")[0].strip(), "",
             f"{len(out['stage1'])} configurations in stages 1-2; {out['minutes']:.0f} minutes on {out['machine']}.",
             "", "## Stage 3: confirmed on inner folds 0-2", "",
             "| mean val RMSE | folds | epochs | configuration |", "|---|---|---|---|"]  # fmt: skip
    for r in out["stage3"]:
        folds = ", ".join(f"{x:.4f}" for x in r["fold_val_rmse"])
        lines.append(f"| {r['mean_val_rmse']:.4f} | {folds} | {r['epochs']} | `{r['config']}` |")
    lines += ["", "## Stages 1-2: inner fold 0, best 15", ""]
    lines += ["| val RMSE | best epoch | configuration |", "|---|---|---|"]
    lines += [f"| {r['val_rmse']:.4f} | {r['best_epoch']} | `{r['config']}` |" for r in out["stage1"][:15]]
    lines += ["", "## Best of each optimiser in stage 1 (inner fold 0)", ""]
    lines += ["| optimizer | batch | val RMSE | best epoch | configuration |", "|---|---|---|---|---|"]
    seen = set()
    for r in out["stage1"]:
        kind = (r["config"]["optimizer"], r["config"]["batch_size"])
        if kind not in seen:
            seen.add(kind)
            lines.append(f"| {kind[0]} | {kind[1]} | {r['val_rmse']:.4f} | {r['best_epoch']} | `{r['config']}` |")
    lines += ["", f"Chosen: `{out['preset']}`", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
