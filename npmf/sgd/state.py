"""Growing a model's trainable state for ids it has not seen: factor rows, biases and Adam's moments."""

import numpy as np
import pandas as pd

from ..core import encoding as _encoding

__all__ = ["encode_growing", "grow"]


def encode_growing(model, users, items, config):
    """Codes of ``users``/``items`` (:class:`npmf.core.encoding.Codes`), appending new ids and rows to ``model``.

    New rows of the factors start uniform in ``[-init_scale, init_scale)``,
    drawn from the model's generator; biases and Adam's moments start at zero.

    One pass per column (``pd.factorize`` unless the ids are compact
    integers) and no per-rating array of codes: that is made only where it
    is needed, by the serial kernels or inside the block copy of the ratings.
    """
    s = config.init_scale
    codes = []
    for q, (name, values) in enumerate((("user", users), ("item", items))):
        keys, base, index, uniques = _encoding.factorize(name, values)
        known = getattr(model, f"{name}_ids_")
        new = uniques[~pd.Index(uniques).isin(known)]
        if len(new):
            setattr(model, f"{name}_ids_", np.concatenate([known, new]))
            factors = grow(getattr(model, f"{name}_factors_"), len(new))
            # In chunks: the numbers of one draw, without a float64 copy of all new rows.
            step = max(1, (1 << 18) // config.n_factors)
            for a in range(len(factors) - len(new), len(factors), step):
                rows = factors[a : a + step]
                rows[...] = model._rng.uniform(-s, s, rows.shape)
            setattr(model, f"{name}_factors_", factors)
            setattr(model, f"{name}_bias_", grow(getattr(model, f"{name}_bias_"), len(new)))
            for state in (model._m, model._v):
                for block in (q, q + 2):
                    state[block] = grow(state[block], len(new))
        table = model._codes(getattr(model, f"{name}_ids_"), uniques)[index]
        table[index < 0] = -1  # values between the ids that do not occur
        codes.append(_encoding.Codes(keys, base, table))
    return codes


def grow(a, n_new):
    """``a`` with ``n_new`` rows of zeros appended.

    The zeros come from ``np.zeros`` and are not written, so a large block of
    them takes no memory until it is used (Adam's moments, for instance, which
    block-scheduled training keeps only in its records).
    """
    out = np.zeros((len(a) + n_new,) + a.shape[1:], a.dtype)
    out[: len(a)] = a
    return out
