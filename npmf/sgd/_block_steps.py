"""The block kernels' per-thread scratch (:func:`_scratch`) and memory hint (:func:`prefetch_row`).

``prefetch_row`` asks the CPU for a record some ratings before the
kernel reads it: the ratings are trained in shuffled order, so each one's two
records are cache misses (on ML-25M's shape a block's records outgrow L2), and
asking :data:`AHEAD` ratings early overlaps those misses (``lazy_adam``, ML-25M's
shape at 5M ratings, k = 32, 2 threads: 1.6x faster). A prefetch changes no
value and never faults, so lines past a row's end are harmless.
"""

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = []

# Ratings ahead at which the kernels prefetch a rating's records (all their segments, so that the row steps find
# them in cache too; a prefetch in a row step's own loop kept LLVM from vectorising its element loop).
# 16 against 8: 0.93, 0.99 and 0.92 of the epoch (lazy_adam ML-25M shape and skewed, sgd; 5M ratings, 2 threads).
AHEAD = 16

# Rows ahead at which the row steps prefetch a record (their pass over a batch's rows comes after the pass over its
# ratings, which brought the records in, but a batch's rows, ~1,500 records of 396 bytes on ML-25M's shape, partly
# leave L1/L2 by then). lazy_adam, ML-25M's shape at 5M ratings, 1 thread, blocks run in turn: 0.89x the time
# without (4 rows), 0.94x (8). Dense adam's 528-byte records, skewed shape, 5M ratings, 2 threads: see
# npmf.sgd._dense_blocks._adam_prefetched.
ROWS_AHEAD = 4


def _prefetch_codegen(context, builder, signature, args):
    """LLVM for :func:`prefetch_row`: one ``llvm.prefetch`` (for writing, high locality) per 64-byte line."""
    ary = context.make_array(signature.args[0])(context, builder, args[0])
    row, col, lines = (context.cast(builder, a, t, types.int64) for a, t in zip(args[1:], signature.args[1:]))
    strides = cgutils.unpack_tuple(builder, ary.strides)
    i64, i32, i8p = ir.IntType(64), ir.IntType(32), ir.PointerType(ir.IntType(8))
    offset = builder.add(builder.mul(row, strides[0]), builder.mul(col, strides[1]))
    base = builder.add(builder.ptrtoint(ary.data, i64), offset)
    fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
    fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0i8")
    with cgutils.for_range(builder, lines) as loop:
        address = builder.inttoptr(builder.add(base, builder.mul(loop.index, ir.Constant(i64, 64))), i8p)
        builder.call(fn, [address, ir.Constant(i32, 1), ir.Constant(i32, 3), ir.Constant(i32, 1)])
    return context.get_dummy_value()


@intrinsic
def _prefetch_intrinsic(typingctx, X, row, col, lines):
    return types.void(X, row, col, lines), _prefetch_codegen


def _prefetch_python(X, row, col, lines):
    """Without JIT (``NUMBA_DISABLE_JIT=1``) there is nothing to prefetch."""


# prefetch_row(X, row, col, lines): hint that ``lines`` 64-byte lines from ``X[row, col]`` (2-D) will be written soon.
prefetch_row = _prefetch_python if numba.config.DISABLE_JIT else _prefetch_intrinsic


@numba.njit(inline="always", error_model="numpy", nogil=True)
def lines_of(X, width):
    """Cache lines that ``width`` values of a row of ``X`` can span (one more than they fill, for the alignment)."""
    return (width * X.itemsize + 63) // 64 + 1


def _scratch(T, bs, s, dtype, slotted, n_users, n_items):
    """The thread slots' scratch for :func:`npmf.sgd._block_kernels._block_sgd` and
    :func:`npmf.sgd._lazy_blocks._block_slots`, allocated once
    per fit: ``(tmp, rows, grads, slots, slot_u, slot_i)``.

    Slot ``t`` has ``tmp[t]`` (one value in the records' dtype), ``rows[t, 0]`` and ``rows[t, 1]`` (the batch's
    user and item rows), ``grads[t, 0]`` and ``grads[t, 1]`` (one rating's gradient rows) and, if ``slotted``
    (``lazy_adam``, minibatch ``sgd``), ``slots[t, 0]``, ``slots[t, 1]`` (the batch's gradient rows, ``bs`` x
    ``s``) and ``slot_u``, ``slot_i``: per row, the last batch that gave it
    a slot (``-1`` before the first) and that slot (the threads train disjoint rows, so they share them);
    otherwise these are empty.
    """
    n_slots = bs if slotted else 0
    return (np.zeros((T, 1), dtype), np.zeros((T, 2, bs), np.int64), np.zeros((T, 2, s), dtype),
            np.zeros((T, 2, n_slots, s), dtype),
            np.full((n_users if n_slots else 0, 2), -1, np.int64),
            np.full((n_items if n_slots else 0, 2), -1, np.int64))  # fmt: skip
