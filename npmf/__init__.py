"""npmf: matrix factorisation for explicit ratings in NumPy, with Numba kernels.

The model, its hand-derived gradients and Keras-exact Adam; see the README and
``docs/derivation.md``.
"""

from . import metrics
from ._estimator import clone
from .datasets import load_movielens, load_movielens_folds, read_ratings
from .evaluation import cross_validate
from .gradcheck import gradcheck
from .model import MatrixFactorization
from .split import train_test_split

__version__ = "0.1.0"

__all__ = [
    "MatrixFactorization",
    "clone",
    "cross_validate",
    "gradcheck",
    "load_movielens",
    "load_movielens_folds",
    "metrics",
    "read_ratings",
    "train_test_split",
    "__version__",
]
