"""Growing a model's trainable state for ids it has not seen, and undoing a call that failed."""

import numba
import numpy as np
import pandas as pd

from ..core import encoding as _encoding
from ..core.persistence import check_count, check_state_arrays
from ..core.validation import id_kind
from ._rating_kernels import prediction_bound

__all__ = [
    "encode_growing",
    "grow",
    "transaction",
    "own_copies",
    "likely_cause",
    "predictions_finite",
    "prediction_bound_numpy",
    "check_saved_state",
]


def encode_growing(model, users, items, config):
    """Codes of ``users``/``items`` (:class:`npmf.core.encoding.Codes`), appending new ids and rows to ``model``.

    New rows of the factors start uniform in ``[-init_scale, init_scale)``,
    drawn from the model's generator; biases and Adam's moments start at zero.

    New ids must be of the kind the model's are (integers, strings, ...):
    concatenating integers with strings would turn every old id into a
    string. ``model`` is the shadow of a :func:`transaction`: readers in other
    threads see none of this until the whole call is published. The ids are
    still set last, after the arrays have grown.

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
            ids = _joined_ids(name, known, new)
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
            setattr(model, f"{name}_ids_", ids)
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


def _joined_ids(name, known, new):
    """``known`` then ``new`` ids, of one kind; ValueError if they differ (the old ids would change type)."""
    if len(known) and id_kind(known) != id_kind(new):
        raise ValueError(
            f"{name}s: the model's {name} ids are {id_kind(known)}, these new ones are {id_kind(new)}; "
            f"pass {name} ids of the same type as in fit (1 and '1' are different ids)"
        )
    ids = np.concatenate([known, new])
    if len(known) and ids.dtype.kind not in "iuUSb" and known.dtype.kind in "iu":
        raise ValueError(f"{name}s: these ids ({new.dtype}) cannot join the model's ({known.dtype}) without rounding")
    return ids


def transaction(model):
    """Context manager: a shadow of ``model`` to build the new state in, published whole if the body returns.

    See :meth:`npmf.FactorModel._writing`: writers of one model wait for
    each other; readers in other threads see the old model until the
    publish, then the new one. If the body raises (KeyboardInterrupt too)
    nothing is published, so the model is as it was, bit for bit. The shadow
    shares the model's arrays: the body must replace, never write into, the
    arrays it found (see :func:`own_copies`). The price is memory: the old
    state stays alive until the call ends.
    """
    return model._writing()


def own_copies(model, before, moments):
    """Replace each parameter array (and, if ``moments``, each of Adam's) whose id is in ``before`` by a copy.

    Called after :func:`encode_growing`, which already replaced the arrays of
    a side that grew: only the others are copied. The block path passes
    ``moments=False``: its records take their own copy of the moments.
    """
    for name in ("user_factors_", "item_factors_", "user_bias_", "item_bias_"):
        if id(getattr(model, name)) in before:
            setattr(model, name, np.array(getattr(model, name), order="C"))
    for state in (model._m, model._v):
        for q, a in enumerate(state):
            if moments and id(a) in before:
                state[q] = np.array(a, order="C")


def likely_cause(config, r, mu):
    """What most likely made training diverge, in words: the ratings' scale, init_scale or the rate."""
    spread = float(np.max(np.abs(np.asarray(r, np.float64) - mu)))
    if spread > 100:
        return (
            f"the ratings' scale: they reach {spread:.3g} from {'their mean' if config.biases else 0}; "
            f"rescale them to a few units (or lower learning_rate={config.learning_rate})"
        )
    if config.init_scale > 1:
        return (
            f"init_scale={config.init_scale}: starting factors that large make huge first predictions; "
            f"try 0.05 (or lower learning_rate={config.learning_rate})"
        )
    return f"learning_rate={config.learning_rate} is too large for this data, try a smaller one"


def predictions_finite(params):
    """Whether every prediction of W, H, bu, bi is finite: :math:`\\max\\lVert w\\rVert \\max\\lVert h\\rVert`
    plus the largest biases is (Cauchy-Schwarz); NaN anywhere makes it NaN. One pass, no copy.

    Checked after every epoch, so it is :func:`npmf.sgd._rating_kernels.prediction_bound` (a few microseconds,
    against 0.1 ms for NumPy's reductions on ML-100k's factors), whose twin is :func:`prediction_bound_numpy`.
    """
    bound = (
        prediction_bound_numpy(params)
        if numba.config.DISABLE_JIT
        else prediction_bound(*params, params[0].dtype.type(0))
    )
    return bool(np.isfinite(bound))


def prediction_bound_numpy(params):
    """The bound of :func:`predictions_finite`, in NumPy (the squared norms in the factors' dtype)."""
    W, H, bu, bi = params
    with np.errstate(over="ignore", invalid="ignore"):
        w = np.max(np.einsum("ij,ij->i", W, W), initial=0.0)
        h = np.max(np.einsum("ij,ij->i", H, H), initial=0.0)
        return float(np.sqrt(w) * np.sqrt(h) + np.max(np.abs(bu), initial=0.0) + np.max(np.abs(bi), initial=0.0))


def check_saved_state(arrays, params, blocks):
    """What is wrong with a file's optimiser state (n_steps, m_* and v_* of ``blocks``), or None."""
    W = arrays["user_factors"]
    if W.shape[1] != params["n_factors"] or W.dtype != np.dtype(params["dtype"]):
        return f"the factors ({W.shape[1]} columns of {W.dtype}) disagree with its n_factors and dtype"
    like = {}
    for name, p in zip(blocks, ("user_factors", "item_factors", "user_bias", "item_bias"), strict=True):
        like[f"m_{name}"] = like[f"v_{name}"] = arrays[p]
    problem = check_count(arrays, "n_steps", 0) or check_state_arrays(arrays, like)
    if problem is None and any((arrays[f"v_{name}"] < 0).any() for name in blocks):
        problem = "Adam's second moments (v_*) are negative"
    return problem
