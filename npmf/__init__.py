"""npmf: matrix factorisation for explicit ratings in NumPy, with Numba kernels.

The model, its hand-derived gradients and Keras-exact Adam; see the README and
``docs/derivation.md``.
"""

from . import metrics
from ._estimator import clone
from ._factor_model import FactorModel
from .bayesian import BayesianMatrixFactorization
from .datasets import load_movielens, load_movielens_folds, read_ratings
from .evaluation import cross_validate
from .gradcheck import gradcheck
from .model import MatrixFactorization
from .presets import from_preset
from .split import train_test_split

__version__ = "0.1.0"

load = FactorModel.load
"""Load any npmf model written by ``save`` (its file names its estimator class)."""

__all__ = [
    "BayesianMatrixFactorization",
    "FactorModel",
    "MatrixFactorization",
    "clone",
    "cross_validate",
    "from_preset",
    "gradcheck",
    "load",
    "load_movielens",
    "load_movielens_folds",
    "metrics",
    "read_ratings",
    "train_test_split",
    "__version__",
]
