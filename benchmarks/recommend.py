"""Batch ``recommend``: speed at ML-25M's shape, and ranking quality of its defaults on ML-100k.

Speed (``--part speed``): ``npmf.make_ratings(162541, 59047, 25_000_095)``
gives ML-25M's users, items and number of ratings (the training pairs that
``exclude_seen`` leaves out); a ``MatrixFactorization`` with k=32 gets random
factors and biases (training does not change the cost of ranking). Timed:
top-10 for every user (``model.recommend(model.user_ids_)``) on 2 threads,
3 runs, median. Beside it, on the same 1,000 users, interleaved, 5 runs each:
the batch path, its NumPy twin (``use_numba=False``) and the per-user path
that ``recommend`` took before (one ``predict`` over all items and an
argpartition per user); ratios of medians.

Ranking (``--part ranking``): ML-100k's ua and ub splits (exactly 10 test
ratings per user, all 943 users), the ``seed`` and ``accurate`` presets
(``random_state=0``) and a most-popular baseline (items by number of
training ratings), top-10 over the items each user did not rate in training,
for ``min_item_ratings`` in 0, 5, 10, 20, 50. Relevant: test ratings >= 4
(and, a second table, every test item). Also how the lists look: the median
training-rating count of the recommended items and the share of raw scores
above the top of the scale.

Speed also times the same users with float32 factors (the products then run
in float32), interleaved with float64.

Run::

    NPMF_DATA_DIR=/path/to/data python benchmarks/recommend.py [--part speed|ranking|both]
    python benchmarks/recommend.py --short   # speed on 20,000 users, 1 run: recommend-short.*

writes ``benchmarks/results/recommend/recommend.json`` and ``recommend.md``.
"""

import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")

import numba  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
import machine  # noqa: E402

import npmf  # noqa: E402
from npmf.model_selection.ranking import ranking_metrics  # noqa: E402

OUT = Path(__file__).parent / "results" / "recommend"
SHAPE = (162541, 59047, 25_000_095)
MIN_COUNTS = (0, 5, 10, 20, 50)


def random_model(df, k=32, seed=0):
    """A fitted-looking MatrixFactorization on ``df``'s ids and pairs with random factors (no training)."""
    rng = np.random.default_rng(seed)
    model = npmf.MatrixFactorization(n_factors=k, biases=True)
    u, user_ids = pd.factorize(df.user_id, sort=True)
    i, item_ids = pd.factorize(df.item_id, sort=True)
    model.user_ids_, model.item_ids_ = np.asarray(user_ids), np.asarray(item_ids)
    model.user_factors_ = rng.normal(0, 0.3, (len(user_ids), k))
    model.item_factors_ = rng.normal(0, 0.3, (len(item_ids), k))
    model.user_bias_ = rng.normal(0, 0.3, len(user_ids))
    model.item_bias_ = rng.normal(0, 0.3, len(item_ids))
    model.global_mean_ = float(df.rating.mean())
    model.rating_range_ = (float(df.rating.min()), float(df.rating.max()))
    model.history_ = {"loss": [], "seconds": []}
    model._seen = (u.astype(np.int32), i.astype(np.int32))
    return model


def per_user_path(model, users, n=10):
    """What recommend did before: one predict over all items per user, seen items masked, argpartition."""
    N = len(model.item_ids_)
    seen_u, seen_i = model._seen
    order = np.argsort(seen_u, kind="stable")
    starts = np.searchsorted(seen_u[order], np.arange(len(model.user_ids_) + 1))
    out = []
    for user in users:
        u = model._codes(model.user_ids_, [user])
        scores = model._predict_codes(np.repeat(u, N), np.arange(N, dtype=np.int32))
        scores[seen_i[order[starts[u[0]] : starts[u[0] + 1]]]] = -np.inf
        top = np.argpartition(-scores, n - 1)[:n]
        out.append(top[np.lexsort((top, -scores[top]))])
    return out


def speed(runs=3, n_users=None):
    """Top-10 for every user (or the first ``n_users``) of the ML-25M shape, float64 and float32 interleaved."""
    M, N, n = SHAPE
    start = time.perf_counter()
    df = npmf.make_ratings(M, N, n, random_state=0)
    generate = time.perf_counter() - start
    model = random_model(df)
    del df
    numba.set_num_threads(2)
    model.recommend(model.user_ids_[:10])  # compile, and build the seen-pairs cache once
    start = time.perf_counter()
    model._seen_cache = None
    model._seen_csr()
    csr_seconds = time.perf_counter() - start
    single = copy.copy(model)  # the same ids and pairs, float32 factors: the products run in float32
    single.set_params(dtype="float32")
    single.user_factors_, single.item_factors_ = (
        a.astype(np.float32) for a in (model.user_factors_, model.item_factors_)
    )
    single.recommend(single.user_ids_[:10])
    users = model.user_ids_ if n_users is None else model.user_ids_[:n_users]
    full = {"float64": [], "float32": []}
    for _ in range(runs):  # interleaved
        for dtype, m in (("float64", model), ("float32", single)):
            start = time.perf_counter()
            top = m.recommend(users, n=10)
            full[dtype].append(time.perf_counter() - start)
            del top
    sample = model.user_ids_[np.random.default_rng(1).choice(M, 1000, replace=False)]
    sides = {"batch (Numba)": [], "batch (NumPy twin)": [], "per-user (before)": []}
    for _ in range(5 if n_users is None else 2):  # interleaved
        for side in sides:
            start = time.perf_counter()
            if side == "per-user (before)":
                per_user_path(model, sample)
            else:
                model.recommend(sample, n=10, min_item_ratings=0, use_numba=side == "batch (Numba)")
            sides[side].append(time.perf_counter() - start)
    med = {side: float(np.median(t)) for side, t in sides.items()}
    return {
        "shape": {"users": M, "items": N, "ratings": n, "k": 32},
        "ranked_users": len(users),
        "generate_seconds": generate,
        "seen_csr_seconds": csr_seconds,
        "all_users_top10_seconds": full["float64"],
        "all_users_top10_median": float(np.median(full["float64"])),
        "all_users_top10_float32_seconds": full["float32"],
        "all_users_top10_float32_median": float(np.median(full["float32"])),
        "sample_users": len(sample),
        "sample_seconds": sides,
        "sample_median": med,
        "ratio_per_user_over_batch": med["per-user (before)"] / med["batch (Numba)"],
        "ratio_numpy_over_numba": med["batch (NumPy twin)"] / med["batch (Numba)"],
        "threads": 2,
        "load_average_end": list(os.getloadavg()),
    }


def popular_lists(train, users, k):
    """Most-popular baseline: items by training count (ties by id), minus each user's training items."""
    counts = train.item_id.value_counts()
    ranked = counts.sort_index().sort_values(ascending=False, kind="stable").index.to_numpy()
    seen = train.groupby("user_id").item_id.apply(set)
    rows = []
    for u in users:
        s = seen.get(u, set())
        picked = [it for it in ranked[: k + len(s)] if it not in s][:k]
        rows += [(u, r + 1, it) for r, it in enumerate(picked)]
    return pd.DataFrame(rows, columns=["user_id", "rank", "item_id"])


def ranking(k=10):
    folds = npmf.load_movielens_folds("ml-100k", splits=("ua", "ub"))
    rows = []
    for split, (train, test) in zip(("ua", "ub"), folds):
        counts = train.item_id.value_counts()
        n_items = train.item_id.nunique()
        for threshold in (4, None):
            rel = test if threshold is None else test[test.rating >= threshold]
            lists = popular_lists(train, rel.user_id.unique(), k)
            rows.append({"split": split, "model": "most popular", "min_item_ratings": "-", "relevant": threshold,
                         **ranking_metrics(lists, rel[["user_id", "item_id"]], k, n_items),
                         "median_item_count": float(counts[lists.item_id].median()),
                         "share_above_max": 0.0})  # fmt: skip
        for preset in ("seed", "accurate"):
            model = npmf.from_preset(preset, random_state=0)
            start = time.perf_counter()
            model.fit(train.user_id, train.item_id, train.rating)
            fit = time.perf_counter() - start
            for m in MIN_COUNTS:
                for threshold in (4, None):
                    scores = npmf.evaluate_ranking(model, test, k=k, train=train, threshold=threshold,
                                                   min_item_ratings=m)  # fmt: skip
                    lists = model.recommend(test.user_id.unique(), n=k, min_item_ratings=m, clip=False)
                    rows.append({"split": split, "model": preset, "min_item_ratings": m, "relevant": threshold,
                                 **scores, "median_item_count": float(counts[lists.item_id].median()),
                                 "share_above_max": float((lists.score > model.rating_range_[1]).mean()),
                                 "fit_seconds": fit})  # fmt: skip
            print(f"{split} {preset}: fitted in {fit:.1f}s", flush=True)
    return rows


def markdown(info, result):
    lines = ["# Batch recommend", "", machine.markdown(info), ""]
    s = result.get("speed")
    if s:
        sh = s["shape"]
        lines += [
            f"## Speed: top-10 for every user, {sh['users']:,} users x {sh['items']:,} items, k={sh['k']}, "
            f"{sh['ratings']:,} training pairs left out, {s['threads']} threads",
            "",
            f"- {'all' if s.get('ranked_users', sh['users']) == sh['users'] else s['ranked_users']} users: "
            f"median **{s['all_users_top10_median']:.1f} s** in float64 "
            f"({', '.join(f'{t:.1f}' for t in s['all_users_top10_seconds'])}), "
            f"**{s.get('all_users_top10_float32_median', float('nan')):.1f} s** in float32 "
            f"({', '.join(f'{t:.1f}' for t in s.get('all_users_top10_float32_seconds', []))}), interleaved; "
            f"the seen-pairs index is built once per model in {s['seen_csr_seconds']:.1f} s and cached; "
            f"load average at the end {s.get('load_average_end', '?')}",
            f"- on the same {s['sample_users']} users, interleaved, median of 5: "
            + ", ".join(f"{k} {v:.3f} s" for k, v in s["sample_median"].items()),
            f"- per-user path / batch: **{s['ratio_per_user_over_batch']:.0f}x**; "
            f"NumPy twin / Numba: {s['ratio_numpy_over_numba']:.1f}x",
            "",
        ]
    r = result.get("ranking")
    if r:
        df = pd.DataFrame(r)
        lines += ["## Ranking on ML-100k ua/ub (10 test ratings per user), top-10, unseen items", ""]
        for threshold, title in ((4, "relevant: test ratings >= 4"), (None, "relevant: every test item")):
            part = df[df.relevant.isna()] if threshold is None else df[df.relevant == threshold]
            cols = ["precision", "recall", "ndcg", "map", "hit_rate", "coverage", "median_item_count",
                    "share_above_max"]  # fmt: skip
            table = part.groupby(["model", "min_item_ratings"], sort=False)[cols].mean()
            lines += [f"### {title} (mean of ua and ub)", "", "| model | min_item_ratings | " + " | ".join(cols) + " |",
                      "|---|---|" + "---|" * len(cols)]  # fmt: skip
            for (model, m), row in table.iterrows():
                lines.append(f"| {model} | {m} | " + " | ".join(f"{row[c]:.4f}" for c in cols) + " |")
            lines.append("")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("speed", "ranking", "both"), default="both")
    parser.add_argument("--short", action="store_true", help="speed only: 20,000 users, 1 run; recommend-short.*")
    args = parser.parse_args()
    info = machine.describe()
    result = {"machine": info}
    name = "recommend"
    if args.short:
        args.part, name = "speed", "recommend-short"
    if args.part in ("speed", "both"):
        result["speed"] = speed(runs=1, n_users=20_000) if args.short else speed()
        print(json.dumps(result["speed"]["sample_median"]), result["speed"]["all_users_top10_median"], flush=True)
    if args.part in ("ranking", "both"):
        result["ranking"] = ranking()
    OUT.mkdir(parents=True, exist_ok=True)
    old = json.loads((OUT / f"{name}.json").read_text()) if (OUT / f"{name}.json").exists() else {}
    result = {**old, **result}
    (OUT / f"{name}.json").write_text(json.dumps(result, indent=1, default=str))
    (OUT / f"{name}.md").write_text(markdown(info, result))
    print(markdown(info, result))


if __name__ == "__main__":
    main()
