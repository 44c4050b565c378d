"""``npmf recommend``, ``npmf predict`` and ``npmf export``: serving a saved model from the command line.

Imported by :mod:`npmf.cli` when one of these commands runs.
"""

import json
import os
import sys

import numpy as np
import pandas as pd

import npmf

from .cli import UserError, _parse_id, _plain

__all__ = ["recommend", "predict", "export", "recommend_many"]


def recommend(args):
    model = npmf.load(args.model)
    n = _check_n(args.n)
    if args.all_users:
        users = list(model.user_ids_)
    elif args.users_file:
        with open(args.users_file, encoding="utf-8") as f:
            users = [_parse_id(line.strip(), model.user_ids_) for line in f if line.strip()]
        if not users:
            raise UserError(f"--users-file {args.users_file} holds no user ids")
    else:
        users = [_parse_id(t.strip(), model.user_ids_) for text in args.user for t in text.split(",") if t.strip()]
    unknown = [u for u in dict.fromkeys(users) if u not in set(model.user_ids_.tolist())]
    if unknown:
        shown = ", ".join(map(str, unknown[:5])) + (", ..." if len(unknown) > 5 else "")
        print(
            f"npmf recommend: note: {len(unknown)} user(s) not in the model ({shown}); ranked as new users",
            file=sys.stderr,
        )
    table = recommend_many(model, users, n, exclude_seen=not args.include_seen, min_item_ratings=args.min_item_ratings)
    if args.out:
        table.to_csv(args.out, index=False)
        print(f"{len(table):,} recommendations for {len(dict.fromkeys(users)):,} users written to {args.out}")
    elif args.json:
        print(json.dumps([{k: _plain(v) for k, v in row.items()} for row in table.to_dict("records")]))
    else:
        print(table.to_string(index=False))
    return 0


def recommend_many(model, users, n, exclude_seen=True, min_item_ratings=None):
    """The long table ``user_id, rank, item_id, score`` of the top ``n`` for each of ``users`` (rank from 1)."""
    users = list(dict.fromkeys(users))
    extra = {} if min_item_ratings is None else {"min_item_ratings": min_item_ratings}
    return model.recommend(users, n=n, exclude_seen=exclude_seen, **extra)[["user_id", "rank", "item_id", "score"]]


def _check_n(n):
    if n < 1:
        raise UserError(f"-n must be an integer >= 1; got {n}")
    return n


def predict(args):
    model = npmf.load(args.model)
    pairs = _read_pairs(args.data, args.sep, model)
    pairs["prediction"] = model.predict(pairs.iloc[:, 0], pairs.iloc[:, 1], clip=args.clip)
    if args.out:
        pairs.to_csv(args.out, index=False)
        print(f"{len(pairs):,} predictions written to {args.out}")
    else:
        print(pairs.to_csv(index=False), end="")
    return 0


# Header names of the user and item columns a pairs file may have (otherwise its first line is data).
_USER_NAMES = {"user", "user_id", "userid", "users"}
_ITEM_NAMES = {"item", "item_id", "itemid", "movieid", "movie_id", "items"}


def _read_pairs(path, sep, model):
    """A pairs file as a DataFrame whose first two columns are user and item ids of the model's id types."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"pairs file {path} does not exist")
    raw = pd.read_csv(path, sep=sep, header=None, dtype=str, keep_default_na=False)
    if raw.shape[1] < 2 or len(raw) == 0:
        raise UserError(f"--data {path} must have at least two columns, user and item, and one row")
    first = [str(x).strip().lower() for x in raw.iloc[0, :2]]
    if first[0] in _USER_NAMES and first[1] in _ITEM_NAMES:
        raw.columns = [str(x).strip() for x in raw.iloc[0]]
        raw = raw.iloc[1:].reset_index(drop=True)
    else:
        raw.columns = ["user_id", "item_id"] + [f"column_{j}" for j in range(2, raw.shape[1])]
    for q, known in ((0, model.user_ids_), (1, model.item_ids_)):
        name = raw.columns[q]
        if known.dtype.kind in "iu":
            try:
                raw[name] = raw[name].astype(known.dtype)
            except ValueError:
                raise UserError(f"--data: column {name!r} must hold integer ids for this model") from None
    return raw


def export(args):
    """Write ``user_factors`` and ``item_factors`` (``id, features``), ``user_bias`` and ``item_bias`` (``id, bias``)
    and ``model.json`` (the global mean and how to predict) to the folder ``--out``.
    """
    model = npmf.load(args.model)
    if args.format == "parquet":
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise UserError("--format parquet needs pyarrow: pip install pyarrow (or use --format csv)") from None
    os.makedirs(args.out, exist_ok=True)
    written = []
    for side in ("user", "item"):
        ids, factors = getattr(model, f"{side}_ids_"), getattr(model, f"{side}_factors_")
        bias = getattr(model, f"{side}_bias_")
        # Spark ALS's factors are array<float>: float32 values, written in their shortest exact form.
        features = np.ascontiguousarray(factors, dtype=np.float32)
        path = os.path.join(args.out, f"{side}_factors.{args.format}")
        bias_path = os.path.join(args.out, f"{side}_bias.{args.format}")
        if args.format == "parquet":
            offsets = np.arange(0, features.size + 1, features.shape[1], dtype=np.int32)
            column = pa.ListArray.from_arrays(pa.array(offsets), pa.array(features.ravel()))
            pq.write_table(pa.table({"id": pa.array(ids.tolist()), "features": column}), path)
            pq.write_table(
                pa.table({"id": pa.array(ids.tolist()), "bias": pa.array(bias.astype(np.float64))}), bias_path
            )
        else:
            _write_csv(path, ids, ("features", ["[" + ",".join(map(str, row)) + "]" for row in features]))
            _write_csv(bias_path, ids, ("bias", [repr(float(b)) for b in bias]))
        written += [path, bias_path]
    meta = {
        "estimator": type(model).__name__,
        "global_mean": float(model.global_mean_),
        "biases": bool(model.biases),
        "rank": int(model.user_factors_.shape[1]),
        "rating_range": list(model.rating_range_),
        "prediction": "global_mean * biases + user_bias + item_bias + dot(user features, item features)",
    }
    with open(os.path.join(args.out, "model.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=1)
    print(f"wrote {', '.join(written)} and model.json ({len(model.user_ids_):,} users, {len(model.item_ids_):,} items)")
    return 0


def _write_csv(path, ids, column):
    name, values = column
    pd.DataFrame({"id": ids, name: values}).to_csv(path, index=False)
