"""Splits, folds and cross-validation."""

from .cross_validation import cross_validate
from .split import kfold, train_test_split

__all__ = ["cross_validate", "kfold", "train_test_split"]
