"""Splits, folds, cross-validation and ranking metrics."""

from .cross_validation import cross_validate
from .ranking import evaluate_ranking, ranking_metrics
from .split import kfold, train_test_split

__all__ = ["cross_validate", "evaluate_ranking", "kfold", "ranking_metrics", "train_test_split"]
