"""Named sets of :class:`~npmf.MatrixFactorization` parameters.

``"seed"`` is the Keras MovieLens recipe, exactly.

``"accurate"`` is biased MF trained by plain SGD one rating at a time, with many
factors held back by L2 and a fixed, early epoch count. It was chosen by
``benchmarks/tune_accurate.py`` on inner folds of ML-100k's u1.base only (no
test file was read); ``benchmarks/results/accuracy.md`` has its test numbers.
"""

__all__ = ["PRESETS", "get_preset"]

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


def get_preset(name):
    """A copy of preset ``name``'s parameters; ValueError naming the presets otherwise."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; available presets: {', '.join(PRESETS)}")
    return dict(PRESETS[name])
