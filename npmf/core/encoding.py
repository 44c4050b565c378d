r"""Raw ids to int32 codes, without a per-rating array of codes until one is needed.

``fit`` on tens of millions of ratings must not hold the codes next to the
caller's ids and the block-sorted copy the parallel kernels train on. So the
encoding of a column is a :class:`Codes`: the per-rating ``keys`` it already
has (the caller's integer ids themselves, or one int32 array from
``pd.factorize`` for other ids) and a small ``table`` over the distinct keys,

.. math:: \text{code}_j = \text{table}[\text{keys}_j - \text{base}].

:func:`codes_array` materialises the codes for the serial kernels;
:class:`npmf.sgd._block_kernels.BlockEpochs` reads them through the table while it
copies the ratings into blocks, so at scale they never exist as an array.
"""

from typing import NamedTuple

import numba
import numpy as np
import pandas as pd

__all__ = ["Codes", "factorize", "factorize_ids", "codes_array", "count_codes"]

_jit = numba.njit(cache=True, nogil=True)


class Codes(NamedTuple):
    """Codes of one column of ratings: ``table[keys[j] - base]``, int32 in ``[0, len(categories))``."""

    keys: np.ndarray
    base: int
    table: np.ndarray


def factorize(name, values):
    """``(keys, base, index, uniques)``: ``uniques[index[keys[j] - base]]`` is ``values[j]``.

    ``uniques`` are the distinct ids, sorted as category codes sort them when
    the ids compare, else in order of appearance. Integer ids whose range is
    not much wider than their number are their own keys (``base`` their
    minimum, ``index`` an int32 table over the range, -1 for absent values):
    one pass, no hashing, no per-rating copy. Other ids go through
    ``pd.factorize``, whose codes become the keys as int32.
    """
    # uint64 is left out: Numba would subtract the minimum in floating point.
    if (values.dtype.kind == "i" or values.dtype.kind == "u" and values.dtype.itemsize < 8) and len(values):
        lo, hi = int(values.min()), int(values.max())
        if hi - lo < len(values) // 4 + (1 << 16):
            present = np.zeros(hi - lo + 1, np.bool_)
            _mark(values, lo, present)
            index = np.full(len(present), -1, np.int32)
            at = np.flatnonzero(present)
            index[at] = np.arange(len(at), dtype=np.int32)
            return values, lo, index, (at + lo).astype(values.dtype)
    first, uniques = factorize_ids(name, values)
    return first.astype(np.int32), 0, np.arange(len(uniques), dtype=np.int32), uniques


def factorize_ids(name, values):
    """Per-value codes into the distinct ids, sorted as category codes order them when the ids compare."""
    try:
        first, uniques = pd.factorize(values, sort=True)
    except TypeError:  # ids of types that do not compare: keep their order of appearance
        first, uniques = pd.factorize(values)
    if len(first) and first.min() < 0:
        raise ValueError(f"{name}s contain missing ids (NaN or None) at {int(np.sum(first < 0))} positions")
    return first, np.asarray(uniques)


def codes_array(codes):
    """The codes as one int32 array."""
    out = np.empty(len(codes.keys), np.int32)
    _gather(codes.keys, codes.base, codes.table, out)
    return out


def count_codes(codes, n_codes):
    """Ratings per code, ``np.bincount(codes_array(codes), minlength=n_codes)`` without the array."""
    counts = np.zeros(n_codes, np.int64)
    _count(codes.keys, codes.base, codes.table, counts)
    return counts


@_jit
def _mark(values, lo, present):
    for j in range(values.shape[0]):
        present[values[j] - lo] = True


@_jit
def _gather(keys, base, table, out):
    for j in range(keys.shape[0]):
        out[j] = table[keys[j] - base]


@_jit
def _count(keys, base, table, counts):
    for j in range(keys.shape[0]):
        counts[table[keys[j] - base]] += 1
