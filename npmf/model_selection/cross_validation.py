"""Cross-validation: fit a fresh copy of a model on each fold and score its test part."""

from __future__ import annotations

import time
from collections.abc import Sequence

import pandas as pd

from .. import metrics
from ..core.base import clone
from ..core.validation import check_int
from .ranking import METRICS, evaluate_ranking

__all__ = ["cross_validate"]

SCORES = ("rmse", "mae", "rounded_mae", "fit_seconds")


def cross_validate(
    model,
    folds: Sequence[tuple[pd.DataFrame, pd.DataFrame]],
    clip: bool | tuple[float, float] | None = None,
    step: float | None = None,
    verbose: bool = False,
    columns: tuple[str, str, str] = ("user_id", "item_id", "rating"),
    ranking_k: int | None = None,
) -> pd.DataFrame:
    """Per-fold and mean RMSE, MAE and rounded MAE of ``model`` over ``folds``.

    Each fold gets an unfitted copy of ``model`` (:func:`npmf.clone`), so the
    same ``random_state`` seeds every fold and ``model`` itself is left as it
    was. The test part is never shown to the model: with
    ``early_stopping_patience`` set, ``fit`` raises for want of validation data.

    Parameters
    ----------
    model : MatrixFactorization
        Or any estimator with ``get_params``, ``fit(users, items, ratings)``
        and ``predict(users, items)``.
    folds : sequence of (train, test) DataFrame pairs
        With the columns named by ``columns``, as returned by
        :func:`npmf.load_movielens_folds` or :func:`npmf.model_selection.kfold`.
    clip : None, True or (lo, hi), default None
        Clip the predictions before scoring: True to the range of ratings seen
        in each fold's training part, a pair to that range. None scores raw
        predictions, as the Keras recipe does.
    step : float or None, default None
        Rating grid for ``rounded_mae`` (0.5 for half stars); None reads it
        off each fold's training ratings (:func:`npmf.metrics.rating_step`).
    verbose : bool, default False
        Print one line per fold as it finishes.
    columns : (user, item, rating) column names, default ("user_id", "item_id", "rating")
    ranking_k : int, optional
        Also score each fold's top-``ranking_k`` lists
        (:func:`npmf.evaluate_ranking` with the fold's training part left
        out): columns ``precision@k``, ``recall@k``, ``ndcg@k``, ``map@k``,
        ``hit_rate@k`` and ``coverage@k``.

    Returns
    -------
    DataFrame
        One row per fold (index 1, 2, ...) then rows ``"mean"`` and ``"std"``
        (population standard deviation over folds); columns ``rmse``, ``mae``,
        ``rounded_mae``, ``fit_seconds``, ``n_train``, ``n_test`` (and the
        ranking metrics with ``ranking_k``).

    Examples
    --------
    >>> import npmf
    >>> folds = npmf.load_movielens_folds("ml-100k")  # doctest: +SKIP
    >>> model = npmf.from_preset("accurate", random_state=0)  # doctest: +SKIP
    >>> npmf.cross_validate(model, folds).loc["mean", "rmse"]  # doctest: +SKIP
    """
    folds = list(folds)
    if not folds:
        raise ValueError("folds is empty; pass a list of (train, test) DataFrame pairs")
    if ranking_k is not None:
        ranking_k = check_int("ranking_k", ranking_k)
    user, item, rating = _check_column_names(columns)
    for k, fold in enumerate(folds, start=1):
        if len(fold) != 2:
            raise ValueError(f"fold {k} is not a (train, test) pair")
        for part, df in zip(("train", "test"), fold):
            missing = [c for c in columns if c not in df.columns]
            if missing:
                raise ValueError(
                    f"fold {k}'s {part} part has no column(s) {missing}; its columns are {list(df.columns)}; "
                    f"pass columns=(user, item, rating)"
                )
    rows = []
    for k, (train, test) in enumerate(folds, start=1):
        fitted = clone(model)
        start = time.perf_counter()
        fitted.fit(train[user], train[item], train[rating])
        seconds = time.perf_counter() - start
        pred = fitted.predict(test[user], test[item])
        bounds = _bounds(clip, train[rating])
        rows.append(
            {
                "rmse": metrics.rmse(test[rating], pred if bounds is None else pred.clip(*bounds)),
                "mae": metrics.mae(test[rating], pred if bounds is None else pred.clip(*bounds)),
                "rounded_mae": metrics.rounded_mae(
                    test[rating], pred, clip=bounds, step=step or metrics.rating_step(train[rating])
                ),
                "fit_seconds": seconds,
                "n_train": len(train),
                "n_test": len(test),
            }
        )
        if ranking_k is not None:
            scores = evaluate_ranking(fitted, test, k=ranking_k, train=train, columns=columns)
            rows[-1].update({f"{name}@{ranking_k}": scores[name] for name in METRICS})
        if verbose:
            r = rows[-1]
            print(
                f"fold {k}/{len(folds)}: RMSE {r['rmse']:.4f}, MAE {r['mae']:.4f}, "
                f"rounded MAE {r['rounded_mae']:.4f}, fit {seconds:.2f}s",
                flush=True,
            )
    table = pd.DataFrame(rows, index=pd.RangeIndex(1, len(rows) + 1, name="fold"))
    summary = pd.DataFrame({"mean": table.mean(), "std": table.std(ddof=0)}).T
    return pd.concat([table, summary])


def _check_column_names(columns):
    if isinstance(columns, str) or len(columns) != 3 or not all(isinstance(c, str) for c in columns):
        raise ValueError(f"columns must be three column names (user, item, rating); got {columns!r}")
    return columns


def _bounds(clip, train_ratings):
    if clip is None or clip is False:
        return None
    if clip is True:
        return float(train_ratings.min()), float(train_ratings.max())
    try:
        lo, hi = (float(x) for x in clip)
    except (TypeError, ValueError):
        raise ValueError(f"clip must be None, True or a pair (lo, hi); got {clip!r}") from None
    if not lo <= hi:
        raise ValueError(f"clip must be (lo, hi) with lo <= hi, got {clip!r}")
    return lo, hi
