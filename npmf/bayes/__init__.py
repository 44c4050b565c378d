"""The Gibbs family: :class:`BayesianMatrixFactorization`, which averages posterior samples.

Read :mod:`~npmf.bayes.gibbs` (the conditionals and their derivations, NumPy),
then :mod:`~npmf.bayes._kernels` (their Numba twins), :mod:`~npmf.bayes._chain`
(one sweep) and :mod:`~npmf.bayes.model` (the estimator). Stands on
:mod:`npmf.core` only.
"""

from .config import GibbsConfig
from .model import BayesianMatrixFactorization

__all__ = ["BayesianMatrixFactorization", "GibbsConfig"]
