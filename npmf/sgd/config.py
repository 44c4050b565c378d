"""The checked parameters of one :class:`~npmf.MatrixFactorization` fit, as one frozen object."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..core.threads import default_threads
from ..core.validation import check_choice, check_dtype, check_float, check_int

__all__ = ["SGDConfig", "OPTIMIZERS", "BLOCK_OPTIMIZERS", "check_bool"]

# Every optimiser, in the order of the kernels' codes (npmf.sgd._kernels.OPTIMIZER_CODES).
OPTIMIZERS = ("adam", "lazy_adam", "sgd")
# Those that the block-scheduled kernels (npmf.sgd._block_kernels) run on many cores.
BLOCK_OPTIMIZERS = ("adam", "lazy_adam", "sgd")


def check_bool(name, value):
    """``value`` as a Python bool if it is a bool (Python's or NumPy's), else a ValueError naming ``name``.

    Stricter than ``biases``' check on purpose: ``1``, ``"yes"`` or ``None`` for a switch is more likely a
    slip than a choice.
    """
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False; got {value!r} of type {type(value).__name__}")
    return bool(value)


@dataclass(frozen=True)
class SGDConfig:
    """What one fit trains with, under the estimator's public parameter names.

    Built once per ``fit``/``partial_fit`` by :meth:`from_estimator`; creating
    one checks every field and raises the error that names the parameter.
    ``n_threads`` is resolved (None becomes all cores) and ``dtype`` is a
    :class:`numpy.dtype`. The kernels take its fields as scalars.
    """

    n_factors: int = 3
    epochs: int = 100
    batch_size: int = 32
    optimizer: str = "adam"
    learning_rate: float = 0.001
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-7
    init_scale: float = 0.05
    biases: bool = False
    reg: float = 0.0
    non_negative: bool = False
    early_stopping_patience: int | None = None
    n_threads: int | None = None
    dtype: np.dtype | str = "float64"

    def __post_init__(self) -> None:
        patience = self.early_stopping_patience
        checked = {
            "n_factors": check_int("n_factors", self.n_factors),
            "epochs": check_int("epochs", self.epochs),
            "batch_size": check_int("batch_size", self.batch_size),
            "optimizer": check_choice("optimizer", self.optimizer, OPTIMIZERS),
            "learning_rate": check_float("learning_rate", self.learning_rate, low=0),
            "beta_1": check_float("beta_1", self.beta_1, 0, 1, low_open=False),
            "beta_2": check_float("beta_2", self.beta_2, 0, 1, low_open=False),
            "epsilon": check_float("epsilon", self.epsilon, low=0),
            "init_scale": check_float("init_scale", self.init_scale, low=0, low_open=False),
            "reg": check_float("reg", self.reg, low=0, low_open=False),
            "biases": bool(check_choice("biases", self.biases, (True, False))),
            "non_negative": check_bool("non_negative", self.non_negative),
            "early_stopping_patience": None if patience is None else check_int("early_stopping_patience", patience),
            "n_threads": default_threads() if self.n_threads is None else check_int("n_threads", self.n_threads),
            "dtype": check_dtype("dtype", self.dtype, ("float64", "float32")),
        }
        for name, value in checked.items():  # all checked before any is set: a bad field changes nothing
            object.__setattr__(self, name, value)

    @classmethod
    def from_estimator(cls, estimator, **overrides) -> SGDConfig:
        """The config of ``estimator``'s current parameters, with ``overrides`` (e.g. ``epochs``)."""
        params = {f.name: getattr(estimator, f.name) for f in dataclasses.fields(cls)}
        return cls(**{**params, **overrides})
