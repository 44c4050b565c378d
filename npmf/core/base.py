"""scikit-learn's estimator contract without depending on scikit-learn.

``get_params``/``set_params`` read the parameters from ``__init__``'s signature,
so scikit-learn's ``clone`` and grid searches work on npmf models, and
:func:`clone` does the same here.
"""

from __future__ import annotations

import copy
import inspect

__all__ = ["BaseEstimator", "clone"]


class BaseEstimator:
    @classmethod
    def _param_names(cls):
        sig = inspect.signature(cls.__init__)
        return sorted(p.name for p in sig.parameters.values() if p.name != "self")

    def get_params(self, deep: bool = True) -> dict:
        """The constructor parameters, as a dict."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params) -> BaseEstimator:
        """Set constructor parameters; returns self. Unknown names raise ValueError."""
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"invalid parameter {name!r} for {type(self).__name__}; valid parameters: {valid}")
            setattr(self, name, value)
        return self

    def __repr__(self):
        defaults = {
            p.name: p.default for p in inspect.signature(type(self).__init__).parameters.values() if p.name != "self"
        }
        changed = [f"{k}={v!r}" for k, v in self.get_params().items() if v is not defaults[k] and v != defaults[k]]
        return f"{type(self).__name__}({', '.join(changed)})"


def clone(estimator: BaseEstimator) -> BaseEstimator:
    """A new unfitted estimator with the same parameters (deep-copied)."""
    return type(estimator)(**copy.deepcopy(estimator.get_params()))
