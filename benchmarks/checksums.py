"""Bit-identity record: checksums of a fixed set of fits, to hold a refactoring to the same numbers.

Run ``python benchmarks/checksums.py --record`` before a change that claims to
keep the algorithm, and ``python benchmarks/checksums.py`` (check) after it.
Each fit records the SHA-256 of its factors, biases, Adam state and history,
and its predictions on fixed pairs as exact decimal strings. The check passes a
fit when the hashes match (the same bits) or, for fits listed with ``--close``,
when every prediction and factor agrees to 1e-12 relative (a change that
reorders floating-point operations, e.g. under ``fastmath`` reassociation).

Only the public API is used, so the same script runs on the commit before a
change and on the one after it. The fits cover the serial ``adam``,
``lazy_adam`` and ``sgd`` paths, the block path with 1 and 2 threads, integer
and string ids, ``partial_fit`` with new ids, and the Gibbs sampler.

Every kernel is compiled afresh (a new ``NUMBA_CACHE_DIR``, unless one is set):
the block-scheduled SGD kernel at ``batch_size=1``, which is compiled with
``fastmath`` reassociation, gives results that differ in the last bits when
Numba loads it from its cache instead of compiling it, old code and new alike.
Both are deterministic, so the record is of the fresh compile.
"""

import argparse
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("NUMBA_CACHE_DIR", tempfile.mkdtemp(prefix="npmf-checksums-"))

import numpy as np  # noqa: E402

import npmf  # noqa: E402

try:  # where make_ratings lives moved in 0.2.0
    from npmf.data import make_ratings
except ImportError:  # pragma: no cover - before 0.2.0
    from npmf.datasets import make_ratings

RECORD = Path(__file__).resolve().parent / "results" / "checksums.json"


def _small(seed=0):
    df = make_ratings(300, 200, 6000, random_state=seed)
    return df["user_id"].to_numpy(), df["item_id"].to_numpy(), df["rating"].to_numpy()


def _large():
    df = make_ratings(4000, 3000, 520_000, random_state=7)
    return df["user_id"].to_numpy(), df["item_id"].to_numpy(), df["rating"].to_numpy()


def _pairs(u, i, n=400):
    rng = np.random.default_rng(123)
    j = rng.integers(0, len(u), n)
    users = np.concatenate([u[j], u[:3], [u[0]]])
    items = np.concatenate([i[j], [i[0]] * 3, i[:1]])
    return users, items


def _digest(model):
    h = hashlib.sha256()
    for name in ("user_factors_", "item_factors_", "user_bias_", "item_bias_"):
        h.update(np.ascontiguousarray(getattr(model, name)).tobytes())
    for state in ("_m", "_v"):
        for a in getattr(model, state, None) or []:
            h.update(np.ascontiguousarray(a).tobytes())
    hist = {k: v for k, v in model.history_.items() if k != "seconds"}
    h.update(json.dumps(hist, sort_keys=True).encode())
    h.update(repr(float(model.global_mean_)).encode())
    return h.hexdigest()


def _summary(model, users, items):
    pred = model.predict(users, items)
    return {
        "sha256": _digest(model),
        "predictions": [repr(float(x)) for x in pred],
        "factor_sums": [
            repr(float(np.sum(np.abs(model.user_factors_)))),
            repr(float(np.sum(np.abs(model.item_factors_)))),
        ],
        "loss": [repr(float(x)) for x in model.history_["loss"]],
    }


def fits():
    """(name, function returning a fitted model and the pairs to predict) for every recorded fit."""
    u, i, r = _small()
    out = []
    for opt in ("adam", "lazy_adam", "sgd"):
        for biases, reg in ((False, 0.0), (True, 0.01)):
            lr = 0.05 if opt == "sgd" else 0.01

            def fit(opt=opt, biases=biases, reg=reg, lr=lr):
                m = npmf.MatrixFactorization(
                    n_factors=4, epochs=3, optimizer=opt, learning_rate=lr, biases=biases, reg=reg, random_state=1
                )
                return m.fit(u, i, r), _pairs(u, i)

            out.append((f"serial-{opt}-biases{int(biases)}", fit))

    def fit_float32():
        m = npmf.MatrixFactorization(n_factors=4, epochs=3, optimizer="lazy_adam", dtype="float32", random_state=2)
        return m.fit(u, i, r), _pairs(u, i)

    out.append(("serial-lazy_adam-float32", fit_float32))

    def fit_strings():
        su = np.array([f"u{x}" for x in u], dtype=object)
        si = np.array([f"movie {x}" for x in i], dtype=object)
        m = npmf.MatrixFactorization(n_factors=3, epochs=3, optimizer="adam", random_state=3)
        return m.fit(su, si, r), _pairs(su, si)

    out.append(("serial-adam-string-ids", fit_strings))

    def fit_partial():
        u2, i2, r2 = _small(seed=5)
        m = npmf.MatrixFactorization(n_factors=3, epochs=2, optimizer="adam", biases=True, random_state=4)
        m.fit(u[:4000], i[:4000], r[:4000])
        m.partial_fit(u2 + 1000, i2, r2, epochs=2)  # new users
        m.partial_fit(u, i + 5000, r, epochs=1)  # new items
        return m, _pairs(np.concatenate([u, u2 + 1000]), np.concatenate([i, i2]))

    out.append(("partial_fit-adam-new-ids", fit_partial))

    U, I, R = _large()
    for opt in ("lazy_adam", "sgd"):
        for threads in (1, 2):
            for bs in (32, 1) if opt == "sgd" else (32,):

                def fit(opt=opt, threads=threads, bs=bs):
                    lr = 0.01 if opt == "sgd" else 0.005
                    m = npmf.MatrixFactorization(
                        n_factors=8, epochs=2, batch_size=bs, optimizer=opt, learning_rate=lr, biases=True,
                        reg=0.01, n_threads=threads, random_state=5,
                    )  # fmt: skip
                    return m.fit(U, I, R), _pairs(U, I)

                out.append((f"blocks-{opt}-batch{bs}-threads{threads}", fit))

    def fit_block_partial():
        m = npmf.MatrixFactorization(n_factors=8, epochs=1, optimizer="sgd", learning_rate=0.01, n_threads=2,
                                     random_state=6)  # fmt: skip
        m.fit(U, I, R)
        m.partial_fit(U, I, R, epochs=1)
        return m, _pairs(U, I)

    out.append(("blocks-sgd-partial_fit", fit_block_partial))

    for implicit in ("none", "users", "both"):

        def fit(implicit=implicit):
            m = npmf.BayesianMatrixFactorization(
                n_factors=4, epochs=12, burn_in=4, n_kept_samples=5, implicit_feedback=implicit, random_state=8
            )
            return m.fit(u, i, r), _pairs(u, i)

        out.append((f"bayes-{implicit}", fit))
    return out


def run(names=None):
    results = {}
    for name, fit in fits():
        if names and name not in names:
            continue
        model, (users, items) = fit()
        results[name] = _summary(model, users, items)
        print(f"{name}: {results[name]['sha256'][:16]}", flush=True)
    return results


def _close(a, b, rtol=1e-12):
    a = np.array([float(x) for x in a])
    b = np.array([float(x) for x in b])
    return a.shape == b.shape and bool(np.all(np.abs(a - b) <= rtol * np.maximum(np.abs(b), 1.0)))


def check(results, record, close_ok):
    bad = 0
    for name, want in record["fits"].items():
        got = results.get(name)
        if got is None:
            print(f"MISSING {name}")
            bad += 1
        elif got["sha256"] == want["sha256"] and got["predictions"] == want["predictions"]:
            print(f"same bits  {name}")
        elif all(_close(got[key], want[key]) for key in ("predictions", "factor_sums", "loss")):
            verdict = "close" if name in close_ok or "*" in close_ok else "CLOSE BUT NOT ALLOWED"
            bad += verdict != "close"
            print(f"{verdict} (1e-12 relative, not the same bits)  {name}")
        else:
            print(f"DIFFERENT  {name}")
            bad += 1
    return bad


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--record", action="store_true", help="write the record instead of checking it")
    p.add_argument("--close", nargs="*", default=[], help="fits allowed to agree to 1e-12 relative only ('*': all)")
    args = p.parse_args(argv)
    results = run()
    if args.record:
        RECORD.parent.mkdir(exist_ok=True)
        RECORD.write_text(json.dumps({"npmf": npmf.__version__, "fits": results}, indent=1) + "\n")
        print(f"recorded {len(results)} fits in {RECORD}")
        return 0
    record = json.loads(RECORD.read_text())
    bad = check(results, record, set(args.close))
    print(f"{len(record['fits']) - bad} of {len(record['fits'])} fits as recorded (npmf {record['npmf']})")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
