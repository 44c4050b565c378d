"""What both model families stand on.

* :mod:`~npmf.core.base`: the estimator contract (``get_params``/``set_params``, :func:`clone`);
* :mod:`~npmf.core.factor_model`: :class:`FactorModel`, the fitted model both families end as
  (prediction, unknown-id fallbacks, embeddings, save/load);
* :mod:`~npmf.core.prediction` and :mod:`~npmf.core._kernels`: the one prediction formula, NumPy and Numba;
* :mod:`~npmf.core.ranking`, :mod:`~npmf.core.persistence`, :mod:`~npmf.core.encoding`,
  :mod:`~npmf.core.validation`, :mod:`~npmf.core.threads`, :mod:`~npmf.core.training`.

Nothing here imports :mod:`npmf.sgd` or :mod:`npmf.bayes`.
"""

from . import threads  # first: it sets OpenMP's wait policy before Numba's pool starts
from .base import BaseEstimator, clone
from .factor_model import FactorModel

__all__ = ["BaseEstimator", "FactorModel", "clone", "threads"]
