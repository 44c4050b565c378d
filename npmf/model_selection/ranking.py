r"""Ranking metrics at k: how well top-k lists find the items users rated in a test set.

For each test user :math:`u` with relevant items :math:`R_u` (their test
items, or those rated at least ``threshold``) and top-k list
:math:`L_u = (l_1, \dots, l_k)`, with :math:`\mathrm{rel}_r = [l_r \in R_u]`
and :math:`h_u = \sum_{r \le k} \mathrm{rel}_r`:

.. math::

    \mathrm{precision}_u = h_u / k, \qquad
    \mathrm{recall}_u = h_u / |R_u|, \qquad
    \mathrm{hit\_rate}_u = [h_u > 0],

    \mathrm{ndcg}_u = \frac{\sum_{r \le k} \mathrm{rel}_r / \log_2(r + 1)}
                           {\sum_{r \le \min(k, |R_u|)} 1 / \log_2(r + 1)}, \qquad
    \mathrm{map}_u = \frac{1}{\min(k, |R_u|)} \sum_{r \le k} \mathrm{rel}_r \, \frac{h_{u,r}}{r},

where :math:`h_{u,r}` counts the hits among the first :math:`r`. Each is
averaged over the test users with at least one relevant item; a list shorter
than k counts its missing places as misses. ``coverage`` is the share of the
catalogue (the model's items) that appears in at least one list.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.validation import check_int

__all__ = ["evaluate_ranking", "ranking_metrics", "METRICS"]

METRICS = ("precision", "recall", "ndcg", "map", "hit_rate", "coverage")


def evaluate_ranking(
    model,
    test: pd.DataFrame,
    k: int = 10,
    train: pd.DataFrame | None = None,
    threshold: float | None = None,
    columns: tuple[str, str, str] = ("user_id", "item_id", "rating"),
    **recommend_options,
) -> dict:
    """Precision, recall, NDCG, MAP, hit rate and catalogue coverage at ``k`` of ``model``'s top-k lists.

    Every user in ``test`` with a relevant item gets ``model.recommend``'s
    top ``k`` (its defaults, e.g. ``min_item_ratings``, unless
    ``recommend_options`` override them), ranked over all the model's items
    except, when ``train`` is given, the items the user rated in ``train``.
    Formulas in :mod:`npmf.model_selection.ranking`.

    Parameters
    ----------
    model : fitted FactorModel
    test : DataFrame
        Held-out ratings, with the columns named by ``columns``.
    k : int, default 10
    train : DataFrame, optional
        The training ratings: their (user, item) pairs are left out of the
        lists. Without it nothing is left out (not even the model's own
        training pairs).
    threshold : float, optional
        Only test items rated at least this are relevant (all by default).
    columns : (user, item, rating) column names, default ("user_id", "item_id", "rating")
    **recommend_options
        Passed to ``recommend`` (``min_item_ratings``, ``items``, ``use_numba``).

    Returns
    -------
    dict
        ``{"precision", "recall", "ndcg", "map", "hit_rate", "coverage"}`` as floats,
        and ``"n_users"``, the number of users scored.
    """
    k = check_int("k", k)
    relevant = _relevant(test, columns, threshold)
    users = relevant[columns[0]].unique()
    csr = None
    if train is not None:
        _check_columns("train", train, columns[:2])
        csr = _pairs_csr(model, train[columns[0]], train[columns[1]])
    options = {"items": None, "min_item_ratings": None, "use_numba": True, **recommend_options}
    if options["min_item_ratings"] is None:
        from ..core.ranking import MIN_ITEM_RATINGS

        options["min_item_ratings"] = MIN_ITEM_RATINGS
    lists = model._rank(users, k, csr, options["items"], options["min_item_ratings"], False, options["use_numba"])
    return ranking_metrics(lists, relevant.rename(columns={columns[0]: "user_id", columns[1]: "item_id"}), k,
                           len(model.item_ids_))  # fmt: skip


def ranking_metrics(lists: pd.DataFrame, relevant: pd.DataFrame, k: int, n_items: int) -> dict:
    """The metrics of top-k ``lists`` (columns user_id, rank, item_id) against ``relevant`` (user_id, item_id).

    The users scored are those of ``relevant``; one without a list scores 0.
    ``n_items`` is the catalogue size for ``coverage``.
    """
    k = check_int("k", k)
    if len(relevant) == 0:
        raise ValueError("there are no relevant test items to rank; check test (and threshold)")
    relevant = relevant[["user_id", "item_id"]].drop_duplicates()
    n_rel = relevant.groupby("user_id").size()
    lists = lists[lists["rank"] <= k]
    hit = lists.merge(relevant.assign(_hit=True), on=["user_id", "item_id"], how="left")["_hit"].notna().to_numpy()
    lists = lists.assign(_hit=hit)
    lists = lists[lists["user_id"].isin(n_rel.index)].sort_values(["user_id", "rank"], kind="stable")
    rank = lists["rank"].to_numpy()
    hits_so_far = lists.groupby("user_id")["_hit"].cumsum().to_numpy()
    rel = lists["_hit"].to_numpy().astype(float)
    per = pd.DataFrame(
        {"user_id": lists["user_id"].to_numpy(), "hit": rel, "dcg": rel / np.log2(rank + 1),
         "ap": rel * hits_so_far / rank}
    )  # fmt: skip
    sums = per.groupby("user_id")[["hit", "dcg", "ap"]].sum().reindex(n_rel.index, fill_value=0.0)
    discounts = np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))  # IDCG for 1..k relevant items
    n_ideal = np.minimum(n_rel.to_numpy(), k)
    h = sums["hit"].to_numpy()
    return {
        "precision": float(np.mean(h / k)),
        "recall": float(np.mean(h / n_rel.to_numpy())),
        "ndcg": float(np.mean(sums["dcg"].to_numpy() / discounts[n_ideal - 1])),
        "map": float(np.mean(sums["ap"].to_numpy() / n_ideal)),
        "hit_rate": float(np.mean(h > 0)),
        "coverage": float(lists["item_id"].nunique() / n_items),
        "n_users": int(len(n_rel)),
    }


def _relevant(test, columns, threshold):
    _check_columns("test", test, columns[:2] if threshold is None else columns)
    if threshold is not None:
        test = test[test[columns[2]] >= threshold]
    if len(test) == 0:
        raise ValueError(f"test has no relevant ratings (threshold={threshold!r}); nothing to rank")
    return test[list(columns[:2])]


def _check_columns(name, df, needed):
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise ValueError(f"{name} has no column(s) {missing}; its columns are {list(df.columns)} (see columns=)")


def _pairs_csr(model, users, items):
    """(user, item) pairs as CSR over the model's codes; pairs with an unknown id are dropped."""
    from ..core._topk import seen_csr

    u = model._codes(model.user_ids_, np.asarray(users)).astype(np.int64)
    i = model._codes(model.item_ids_, np.asarray(items)).astype(np.int64)
    keep = (u >= 0) & (i >= 0)
    return seen_csr(u[keep], i[keep], len(model.user_ids_))
