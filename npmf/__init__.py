"""npmf: matrix factorisation for explicit ratings in NumPy, with Numba kernels.

Two families stand on one core: :mod:`npmf.sgd` (minibatch Adam/SGD,
:class:`MatrixFactorization`) and :mod:`npmf.bayes` (Gibbs sampling,
:class:`BayesianMatrixFactorization`), both on :mod:`npmf.core`; data in
:mod:`npmf.data`, splits and cross-validation in :mod:`npmf.model_selection`.
See the README and ``docs/derivation.md``.
"""

from . import metrics
from .bayes import BayesianMatrixFactorization
from .core import FactorModel, clone
from .data import load_movielens, load_movielens_folds, make_ratings, read_ratings
from .model_selection import cross_validate, evaluate_ranking, train_test_split
from .plot import plot_history
from .presets import from_preset
from .sgd import MatrixFactorization
from .sgd.gradcheck import gradcheck

__version__ = "0.2.0"

load = FactorModel.load
"""Load any npmf model written by ``save`` (its file names its estimator class)."""

__all__ = [
    "BayesianMatrixFactorization",
    "FactorModel",
    "MatrixFactorization",
    "clone",
    "cross_validate",
    "evaluate_ranking",
    "from_preset",
    "gradcheck",
    "load",
    "load_movielens",
    "load_movielens_folds",
    "make_ratings",
    "metrics",
    "plot_history",
    "read_ratings",
    "train_test_split",
    "__version__",
]
