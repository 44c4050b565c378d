"""Ranking metrics against brute-force definitions, evaluate_ranking and cross_validate(ranking_k=)."""

import numpy as np
import pandas as pd
import pytest

import npmf
from npmf.model_selection import evaluate_ranking, kfold, ranking_metrics


def random_lists(seed, n_users=12, n_items=25, k=5):
    """Top-k lists (some short, one user with none) and relevant sets (some users without a list)."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users - 1):  # the last user gets no list at all
        length = k if u % 4 else int(rng.integers(0, k))
        for r, item in enumerate(rng.choice(n_items, length, replace=False), start=1):
            rows.append((u, r, item))
    lists = pd.DataFrame(rows, columns=["user_id", "rank", "item_id"])
    rel = [(u, it) for u in range(n_users) for it in rng.choice(n_items, int(rng.integers(1, 9)), replace=False)]
    rel += [(99, 0)]  # a user with a relevant item and no list
    return lists, pd.DataFrame(rel, columns=["user_id", "item_id"]), n_items


def brute(lists, relevant, k, n_items):
    """Each metric straight from its definition, one user at a time."""
    out = {m: [] for m in ("precision", "recall", "ndcg", "map", "hit_rate")}
    for u, R in relevant.groupby("user_id")["item_id"]:
        R = set(R)
        L = list(lists[lists.user_id == u].sort_values("rank").item_id[:k])
        rel = [item in R for item in L]
        hits = sum(rel)
        out["precision"].append(hits / k)
        out["recall"].append(hits / len(R))
        out["hit_rate"].append(float(hits > 0))
        dcg = sum(1 / np.log2(r + 2) for r, x in enumerate(rel) if x)
        idcg = sum(1 / np.log2(r + 2) for r in range(min(k, len(R))))
        out["ndcg"].append(dcg / idcg)
        ap = sum(sum(rel[: r + 1]) / (r + 1) for r, x in enumerate(rel) if x)
        out["map"].append(ap / min(k, len(R)))
    res = {m: float(np.mean(v)) for m, v in out.items()}
    res["coverage"] = len(set(lists[lists["rank"] <= k].item_id[lists.user_id.isin(relevant.user_id)])) / n_items
    return res


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("k", [1, 3, 5])
def test_each_metric_equals_brute_force(seed, k):
    lists, relevant, n_items = random_lists(seed)
    got = ranking_metrics(lists, relevant, k, n_items)
    want = brute(lists, relevant, k, n_items)
    for name, value in want.items():
        assert got[name] == pytest.approx(value, rel=1e-12, abs=1e-15), name
    assert got["n_users"] == relevant.user_id.nunique()


def test_perfect_and_empty_lists():
    relevant = pd.DataFrame({"user_id": [0, 0, 1], "item_id": [3, 4, 5]})
    perfect = pd.DataFrame({"user_id": [0, 0, 1], "rank": [1, 2, 1], "item_id": [3, 4, 5]})
    got = ranking_metrics(perfect, relevant, 2, 10)
    assert got["recall"] == got["ndcg"] == got["map"] == got["hit_rate"] == 1.0
    assert got["precision"] == pytest.approx(0.75) and got["coverage"] == pytest.approx(0.3)
    none = ranking_metrics(perfect.iloc[:0], relevant, 2, 10)
    assert none["ndcg"] == none["coverage"] == 0.0
    with pytest.raises(ValueError, match="no relevant test items"):
        ranking_metrics(perfect, relevant.iloc[:0], 2, 10)


def fitted(seed=0):
    df = npmf.make_ratings(80, 50, 1500, random_state=seed)
    folds = kfold(df, 3, random_state=seed)
    train, test = folds[0]
    model = npmf.MatrixFactorization(n_factors=3, epochs=3, biases=True, random_state=0)
    return model.fit(train.user_id, train.item_id, train.rating), train, test, folds


def test_evaluate_ranking_excludes_train_and_matches_brute_force():
    model, train, test, _ = fitted()
    got = evaluate_ranking(model, test, k=5, train=train, min_item_ratings=0)
    # brute force: each test user's top 5 by predict over the items they did not rate in train
    rows = []
    for u in test.user_id.unique():
        cand = np.setdiff1d(model.item_ids_, train.item_id[train.user_id == u])
        scores = model.predict(np.full(len(cand), u), cand)
        order = np.lexsort((model._codes(model.item_ids_, cand), -scores))[:5]
        rows += [(u, r + 1, it) for r, it in enumerate(cand[order])]
    lists = pd.DataFrame(rows, columns=["user_id", "rank", "item_id"])
    assert not set(zip(lists.user_id, lists.item_id)) & set(zip(train.user_id, train.item_id))
    want = brute(lists, test[["user_id", "item_id"]], 5, len(model.item_ids_))
    for name, value in want.items():
        assert got[name] == pytest.approx(value, rel=1e-12), name
    # without train nothing is left out, so training items crowd the lists
    assert evaluate_ranking(model, test, k=5, min_item_ratings=0)["precision"] != got["precision"]


def test_threshold_and_columns():
    model, train, test, _ = fitted()
    renamed = test.rename(columns={"user_id": "u", "item_id": "i", "rating": "stars"})
    a = evaluate_ranking(model, test, k=5, train=train, threshold=4)
    b = evaluate_ranking(model, renamed, k=5, train=train.rename(columns={"user_id": "u", "item_id": "i"}),
                         threshold=4, columns=("u", "i", "stars"))  # fmt: skip
    assert a == b and a["n_users"] == test[test.rating >= 4].user_id.nunique()
    with pytest.raises(ValueError, match=r"test has no column\(s\) \['user_id', 'item_id'\]"):
        evaluate_ranking(model, renamed, k=5)
    with pytest.raises(ValueError, match="k must be"):
        evaluate_ranking(model, test, k=0)


def test_cross_validate_reports_ranking_metrics_with_column_names():
    _, _, _, folds = fitted()
    model = npmf.MatrixFactorization(n_factors=3, epochs=3, biases=True, random_state=0)
    names = {"user_id": "user", "item_id": "movie", "rating": "stars"}
    renamed = [(a.rename(columns=names), b.rename(columns=names)) for a, b in folds]
    table = npmf.cross_validate(model, renamed, columns=("user", "movie", "stars"), ranking_k=5)
    plain = npmf.cross_validate(model, folds, ranking_k=5)
    pd.testing.assert_frame_equal(table.drop(columns="fit_seconds"), plain.drop(columns="fit_seconds"))
    for name in ("precision", "recall", "ndcg", "map", "hit_rate", "coverage"):
        assert f"{name}@5" in table.columns
    train, test = folds[1]
    fold_model = npmf.clone(model).fit(train.user_id, train.item_id, train.rating)
    assert table.loc[2, "ndcg@5"] == pytest.approx(evaluate_ranking(fold_model, test, k=5, train=train)["ndcg"])
    with pytest.raises(ValueError, match=r"fold 1's train part has no column\(s\) \['user_id', 'item_id'"):
        npmf.cross_validate(model, renamed)
