"""Named sets of :class:`~npmf.MatrixFactorization` parameters.

``"seed"`` is the Keras MovieLens recipe, exactly.
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
}


def get_preset(name):
    """A copy of preset ``name``'s parameters; ValueError naming the presets otherwise."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; available presets: {', '.join(PRESETS)}")
    return dict(PRESETS[name])
