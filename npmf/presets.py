"""Named models: an estimator class and its parameters.

``"seed"`` is the Keras MovieLens recipe, exactly (:class:`~npmf.MatrixFactorization`).

``"accurate"`` is :class:`~npmf.BayesianMatrixFactorization`: biased MF whose
predictions average many Gibbs samples of the posterior, so it needs no
learning rate, L2 strength or epoch count tuned against held-out data.
Its rank and number of sweeps were chosen by ``benchmarks/tune_bayesian.py``
on inner folds of ML-100k's u1.base only (no test file was read).

``"accurate_sgd"`` is the most accurate point estimate that
:class:`~npmf.MatrixFactorization` reached: biased MF trained by plain SGD one
rating at a time, with many factors held back by L2 and a fixed, early epoch
count, chosen the same way by ``benchmarks/tune_accurate.py``. Unlike
``"accurate"`` it supports ``partial_fit``.

``benchmarks/results/accuracy.md`` has the test numbers of all three.
"""

from __future__ import annotations

__all__ = ["PRESETS", "ESTIMATORS", "get_preset", "from_preset"]

# The estimator class of each preset, by name (the classes import this module).
ESTIMATORS = {"seed": "MatrixFactorization", "accurate": "BayesianMatrixFactorization",
              "accurate_sgd": "MatrixFactorization"}  # fmt: skip

PRESETS = {
    "seed": {
        "n_factors": 3,
        "epochs": 100,
        "batch_size": 32,
        "optimizer": "adam",
        "learning_rate": 0.001,
        "beta_1": 0.9,
        "beta_2": 0.999,
        "epsilon": 1e-7,
        "init_scale": 0.05,
        "biases": False,
        "reg": 0.0,
    },
    "accurate": {
        "n_factors": 10,
        "epochs": 600,
        "n_kept_samples": 100,
        "implicit_feedback": "both",
    },
    "accurate_sgd": {
        "n_factors": 400,
        "epochs": 37,
        "batch_size": 1,
        "optimizer": "sgd",
        "learning_rate": 0.005,
        "init_scale": 0.01,
        "biases": True,
        "reg": 0.06,
    },
}


def get_preset(name: str) -> dict:
    """A copy of preset ``name``'s parameters; ValueError naming the presets otherwise."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; available presets: {', '.join(PRESETS)}")
    return dict(PRESETS[name])


def from_preset(name: str, estimator: type | None = None, **overrides):
    """The model preset ``name`` describes, with ``overrides`` applied to its parameters.

    Parameters
    ----------
    name : str
        One of :data:`PRESETS`.
    estimator : class, optional
        Insist on this estimator class (``MatrixFactorization.from_preset``
        passes its own): ValueError when the preset belongs to another.
    **overrides
        Parameters of the preset's estimator.
    """
    import npmf

    params = get_preset(name)
    cls = getattr(npmf, ESTIMATORS[name])
    if estimator is not None and not issubclass(cls, estimator):
        raise ValueError(
            f"preset {name!r} is a {cls.__name__}, not a {estimator.__name__}; "
            f"build it with npmf.from_preset({name!r}) or npmf.{cls.__name__}.from_preset({name!r})"
        )
    unknown = sorted(set(overrides) - set(cls._param_names()))
    if unknown:
        raise ValueError(
            f"{', '.join(map(repr, unknown))} is not a parameter of {cls.__name__} (preset {name!r}); "
            f"its parameters: {', '.join(cls._param_names())}"
        )
    return cls(**{**params, **overrides})
