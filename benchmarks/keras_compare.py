"""npmf against the Keras MovieLens-100k recipe, side by side, in one run.

Trains the recipe's Keras model (``keras_recipe.py``, one fresh process per
backend, seed and batch size, since Keras picks its backend at import) and
npmf's ``MatrixFactorization`` with ``optimizer="adam"`` (Keras' dense Adam)
and ``"lazy_adam"`` under identical settings: the same split per seed
(``npmf.train_test_split(df, 0.2, seed)``), k=3, U(-0.05, 0.05) initialisation,
Adam(0.001, 0.9, 0.999, 1e-7), the same batch size and number of epochs. The
runs are interleaved seed by seed, so both sides see the same machine load.

It records every run's per-epoch loss and seconds, fit seconds and test
metrics in ``keras.json``, and writes ``keras.md`` (a table, the fidelity check
and the speed ratios) and ``keras_loss.png`` (the loss curves) beside it; see
``keras_report.py``. Without Keras it says so in one line and runs npmf alone.

Reproduce the committed results (MovieLens-100k under ``$NPMF_DATA_DIR``)::

    pip install ".[bench]"
    python benchmarks/keras_compare.py                # 100 epochs, 3 seeds, batch 32 and 1024

A quick look: ``--epochs 5 --seeds 1``. A backend left out of the main run,
with fewer epochs: ``--backends tensorflow --epochs 10 --seeds 1 --append``.

The tutorial's second model, non-negative MF (Keras' ``NonNeg`` constraint on
both embeddings against npmf's ``non_negative=True``), with its results in
``results/keras-nonneg/`` (no speed targets there, only the ratios)::

    python benchmarks/keras_compare.py --model nonneg --backends jax
"""

import argparse
import datetime
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import npmf

sys.path.insert(0, str(Path(__file__).resolve().parent))
import keras_report  # noqa: E402  (sibling scripts, not a package)
import machine  # noqa: E402
from keras_recipe import MODELS  # noqa: E402

HERE = Path(__file__).resolve().parent
BACKENDS = ("jax", "tensorflow", "torch")
NPMF_OPTIMIZERS = ("adam", "lazy_adam")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100, help="epochs per fit (default 100, the recipe's)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1, one split and one fit each (default 3)")
    parser.add_argument("--batch-size", type=int, default=32, help="the recipe's batch size (default 32)")
    parser.add_argument(
        "--fast-batch-size", type=int, default=1024, help="batch size of the 'tuned for speed' rows; 0 skips them"
    )
    parser.add_argument(
        "--backends",
        default=",".join(BACKENDS),
        help="comma-separated Keras backends to run, of those installed (default: jax,tensorflow,torch)",
    )
    parser.add_argument(
        "--model", default="plain", choices=MODELS, help="plain MF (default) or non-negative MF (--model nonneg)"
    )
    parser.add_argument(
        "--out", default=None, help="folder for keras.json/.md/_loss.png (default results/, or results/keras-nonneg/)"
    )
    parser.add_argument("--append", action="store_true", help="add this run to keras.json instead of replacing it")
    parser.add_argument(
        "--npmf-dtype",
        default="float64",
        choices=("float64", "float32"),
        help="npmf's dtype (default float64; Keras computes in float32)",
    )
    args = parser.parse_args(argv)
    for name in ("epochs", "seeds", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.fast_batch_size < 0:
        parser.error(f"--fast-batch-size must be 0 (skip) or positive, got {args.fast_batch_size}")
    if args.out is None:
        args.out = str(HERE / "results" / ("keras-nonneg" if args.model == "nonneg" else ""))
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = sorted(set(args.backends) - set(BACKENDS))
    if unknown:
        parser.error(f"unknown backend(s) {', '.join(unknown)}; choose from {', '.join(BACKENDS)}")
    return args


def installed_backends(requested):
    """The requested backends that can run, after one line on stderr for each one that cannot."""
    if importlib.util.find_spec("keras") is None:
        print("Keras is not installed (pip install '.[bench]'): running npmf's side alone.", file=sys.stderr)
        return []
    found = [b for b in requested if importlib.util.find_spec(b) is not None]
    for b in requested:
        if b not in found:
            print(f"Keras backend {b} is not installed: skipping it.", file=sys.stderr)
    return found


def run_npmf(optimizer, seed, epochs, batch_size, dtype="float64", model_name="plain"):
    """Fit npmf once on the seed's split; the same record as ``keras_recipe.run``."""
    df = npmf.load_movielens("ml-100k")
    train, test = npmf.train_test_split(df, test_size=0.2, random_state=seed)
    model = npmf.MatrixFactorization(
        n_factors=3, epochs=epochs, batch_size=batch_size, optimizer=optimizer, random_state=seed, dtype=dtype,
        non_negative=model_name == "nonneg",
    )  # fmt: skip
    start = time.perf_counter()
    model.fit(train.user_id, train.item_id, train.rating)
    fit_seconds = time.perf_counter() - start
    pred = model.predict(test.user_id, test.item_id)
    return {
        "library": "npmf",
        "variant": optimizer,
        "model": model_name,
        "seed": seed,
        "epochs": epochs,
        "batch_size": batch_size,
        "loss": [float(x) for x in model.history_["loss"]],
        "epoch_seconds": [float(x) for x in model.history_["seconds"]],
        "fit_seconds": fit_seconds,
        **keras_report.test_scores(train, test, pred),
        "dtype": model.dtype,
        "versions": {"npmf": npmf.__version__},
    }


def run_keras(backend, seed, epochs, batch_size, model_name="plain"):
    """Fit the Keras recipe once, in a fresh process; its record, or None if it failed."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run.json"
        cmd = [sys.executable, str(HERE / "keras_recipe.py"), "--backend", backend, "--seed", str(seed)]
        cmd += ["--model", model_name]
        cmd += ["--epochs", str(epochs), "--batch-size", str(batch_size), "--out", str(out)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = proc.stderr.strip().splitlines()[-1:] or ["(no message)"]
            print(f"Keras on {backend} failed (exit {proc.returncode}): {tail[0]}", file=sys.stderr)
            return None
        return json.loads(out.read_text())


def warm_up(model_name="plain"):
    """Load npmf's compiled kernels from Numba's cache before anything is timed."""
    for optimizer in NPMF_OPTIMIZERS:
        for dtype in ("float64", "float32"):
            npmf.MatrixFactorization(
                epochs=1, optimizer=optimizer, random_state=0, dtype=dtype, non_negative=model_name == "nonneg"
            ).fit([0, 1, 1], [0, 0, 1], [1.0, 2, 3])


def log(run):
    name = f"{run['library']} {run['variant']}"
    print(
        f"{name:16s} seed {run['seed']} batch {run['batch_size']:5d}: {run['epochs']} epochs, "
        f"median {np.median(run['epoch_seconds']):.4f}s/epoch, fit {run['fit_seconds']:.2f}s, "
        f"loss {run['loss'][-1]:.4f}, rounded MAE {run['rounded_mae']:.4f}",
        flush=True,
    )


def main(argv=None):
    args = parse_args(argv)
    backends = installed_backends(args.backends)
    npmf.load_movielens("ml-100k")  # fail early (or download once) before any timing
    warm_up(args.model)
    batch_sizes = [args.batch_size] + ([args.fast_batch_size] if args.fast_batch_size else [])
    started = datetime.datetime.now(datetime.timezone.utc)
    runs = []
    for seed in range(args.seeds):
        for batch_size in batch_sizes:
            plan = [(run_npmf, opt) for opt in NPMF_OPTIMIZERS] + [(run_keras, b) for b in backends]
            for fit_one, variant in plan:
                load = os.getloadavg()
                extra = {"dtype": args.npmf_dtype} if fit_one is run_npmf else {}
                run = fit_one(variant, seed, args.epochs, batch_size, model_name=args.model, **extra)
                if run is not None:
                    run["loadavg_before"] = load
                    runs.append(run)
                    log(run)
            # npmf's fits last seconds, Keras' minutes, and the machine is shared: fitting npmf again
            # after Keras samples the load on both sides of the Keras runs. Same seed, same numbers.
            for run in runs[-len(plan) :]:
                if run["library"] == "npmf" and backends:
                    again = run_npmf(run["variant"], seed, args.epochs, batch_size, args.npmf_dtype, args.model)
                    run["epoch_seconds_repeat"] = again["epoch_seconds"]
    experiment = {
        "command": "python benchmarks/keras_compare.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "started_utc": started.isoformat(timespec="seconds"),
        "finished_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine.describe(extra_packages=("keras", "jax", "jaxlib", "tensorflow", "torch")),
        "loadavg_end": os.getloadavg(),
        "settings": {
            "data": "MovieLens-100k, npmf.train_test_split(test_size=0.2, random_state=seed)",
            "seeds": list(range(args.seeds)),
            "epochs": args.epochs,
            "batch_sizes": batch_sizes,
            "backends_requested": args.backends,
            "backends_run": backends,
            "model": args.model,
            "n_factors": 3,
            "init": "uniform(-0.05, 0.05)",
            "adam": {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
            "npmf_dtype": args.npmf_dtype,
        },
        "runs": runs,
    }
    experiment["summary"] = keras_report.summarize(runs, args.batch_size, speed_targets=args.model == "plain")
    keras_report.write(experiment, Path(args.out), append=args.append)


if __name__ == "__main__":
    main()
