"""Lanes: a few consecutive elements of a row, held in one short vector, for the kernels' row loops.

Numba compiles a loop over a row's ``k`` elements (``k`` = 3 to 32 here) to
scalar instructions. LLVM's loop vectoriser only enters its vector loop for
trip counts of at least its vector width times its interleave (16 to 64
elements), and it must first prove that the arrays a loop reads and writes do
not overlap; the SLP vectoriser, which would pack a short row, Numba leaves
off (numba#8705, a miscompilation). So lazy Adam's row step took a scalar
square root and division per element, 2-3 times the time of the same
arithmetic on vectors (``benchmarks/cornac_compare.py``).

A :class:`Lanes` value is an LLVM vector of :func:`width` elements of an
array's dtype: 256 bits, so 8 float32 or 4 float64 (one AVX register; two
SSE or NEON registers, which LLVM splits it into where that is the width).

* ``load(a, x, f, n)`` reads ``a[x, f : f + n]`` of a C-contiguous 2-D array
  into the first ``n`` lanes (the others are 0; ``n`` may exceed the width,
  which then is all); ``store(a, x, f, value, n)`` writes back the first
  ``n`` lanes and nothing else. Both are LLVM's masked loads and stores, so a
  row's last, partial vector touches no element outside ``a[x, f : f + n]``.
* ``+ - * /`` between lanes, or lanes and a scalar of their dtype (the scalar
  goes to every lane), and ``np.sqrt`` act lane by lane with the IEEE
  operation the scalar code uses (correctly rounded, no fused multiply-add),
  so a formula of :mod:`npmf.sgd._formulas`, written once for scalars, runs
  unchanged on lanes and gives the same bits as the scalar loop
  (``tests/core/test_lanes.py`` holds it, for every row width up to 40).
* ``sum_lanes(start, value, n)`` adds the first ``n`` lanes to ``start`` one
  by one, left to right, as the scalar loop does: a dot product taken with
  lanes has the scalar loop's bits.
* ``flush_below(value, tiny)`` is the scalar ``value * (abs(value) >= tiny)``
  lane by lane (``llvm.fabs``, a comparison, its 1 or 0 as a float, a
  product): a value, or a zero of its sign where it is below ``tiny``; the
  dense catch-up keeps float32 moments from decaying into subnormals with it.

They are intrinsics (LLVM code emitted into the kernel) and the operators
are typed and lowered directly, so that none is a function Numba compiles
of its own: written as ``@overload`` functions, each use compiled one, and the
first ``npmf train`` compiled for about a second longer. With the number
of elements a compile-time constant (the kernels' ``kt``), LLVM turns the
masks of whole vectors into plain loads and stores.

Without JIT (``NUMBA_DISABLE_JIT=1``) the names are the NumPy versions
(``_load_python`` and so on): :func:`load` returns a NumPy array of
:func:`width` elements and :func:`store` writes its first ``n``: the same
arithmetic, element by element.
"""

import operator

import numba
import numpy as np
from llvmlite import ir
from llvmlite.ir import types as ir_types
from numba.core import cgutils, types
from numba.core.errors import TypingError
from numba.core.imputils import lower_builtin
from numba.core.typing.templates import AbstractTemplate, infer_global, signature
from numba.extending import intrinsic, models, overload, register_model

__all__ = ["Lanes", "flush_below", "load", "negative_zero", "store", "sum_lanes", "width"]

_BITS = 256  # the vector's size: one AVX register


def _width_python(a):
    """The number of lanes of ``a``'s dtype: ``256 // bits`` (8 for float32, 4 for float64)."""
    return _BITS // (8 * a.dtype.itemsize)


def _load_python(a, x, f, n):
    """``a[x, f : f + n]`` (``n`` clipped to :func:`width`) in :func:`width` lanes, the rest 0."""
    out = np.zeros(_width_python(a), a.dtype)
    n = max(0, min(n, len(out)))
    out[:n] = a[x, f : f + n]
    return out


def _store_python(a, x, f, value, n):
    """``a[x, f : f + n] = value[:n]`` (``n`` clipped to :func:`width`); the other lanes are not written."""
    n = max(0, min(n, len(value)))
    a[x, f : f + n] = value[:n]


def _negative_zero_python(a):
    """-0 in ``a``'s dtype: the sum that adds nothing (``-0 + x == x`` for every ``x``, zeros of either sign too)."""
    return -a.dtype.type(0)


def _sum_lanes_python(start, value, n):
    """``start + value[0] + ... + value[n - 1]``, added left to right (``n`` clipped to :func:`width`).

    The scalar loop's order, so the scalar loop's bits: a dot product or a
    sum of squares taken ``L`` products at a time, then added in order. The
    sum is in ``start``'s type: the lanes' dtype, or float64 for float32 lanes.
    """
    for j in range(max(0, min(n, len(value)))):
        start = start + (float(value[j]) if isinstance(start, float) else value[j])
    return start


def _flush_below_python(value, tiny):
    """``value * (|value| >= tiny)``, element by element: the value, or a zero of its sign below ``tiny``."""
    return value * (np.abs(value) >= tiny)


class Lanes(types.Type):
    """Numba's type of a vector of ``count`` elements of the float type ``dtype``."""

    def __init__(self, dtype, count):
        self.dtype, self.count = dtype, count
        super().__init__(name=f"Lanes({dtype} x {count})")


@register_model(Lanes)
class _LanesModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        element = dmm.lookup(fe_type.dtype).get_value_type()
        super().__init__(dmm, fe_type, ir.VectorType(element, fe_type.count))


def _lanes_of(a):
    """The :class:`Lanes` type of rows of the Numba array type ``a``; a clear error for any other array."""
    floats = (types.float32, types.float64)
    if not isinstance(a, types.Array) or a.ndim != 2 or a.layout != "C" or a.dtype not in floats:
        raise TypingError(f"lanes take C-contiguous 2-D float32 or float64 arrays, not {a}")
    return Lanes(a.dtype, _BITS // a.dtype.bitwidth)


_I32 = ir.IntType(32)
_I64 = ir.IntType(64)


def _splat(builder, value, vector_type):
    """``value`` in every lane of a vector of ``vector_type``."""
    undef = ir.Constant(vector_type, ir.Undefined)
    one = builder.insert_element(undef, value, ir.Constant(_I32, 0))
    zeros = ir.Constant(ir.VectorType(_I32, vector_type.count), [0] * vector_type.count)
    return builder.shuffle_vector(one, undef, zeros)


def _address(context, builder, sig, args, vector_type):
    """A pointer to ``a[x, f]`` (the first three of ``args``), as a pointer to a vector of ``vector_type``."""
    array = context.make_array(sig.args[0])(context, builder, args[0])
    x, f = (context.cast(builder, args[q], sig.args[q], types.intp) for q in (1, 2))
    pointer = cgutils.get_item_pointer(context, builder, sig.args[0], array, [x, f], False, False)
    return builder.bitcast(pointer, vector_type.as_pointer())


def _mask(context, builder, n, n_type, count):
    """The mask of the lanes ``j < n``."""
    n = context.cast(builder, n, n_type, types.int64)
    lanes = ir.Constant(ir.VectorType(_I64, count), list(range(count)))
    return builder.icmp_signed("<", lanes, _splat(builder, n, ir.VectorType(_I64, count)))


def _call(builder, name, return_type, operands):
    """Call the LLVM intrinsic ``name`` (its overloaded types already in the name) on ``operands``."""
    signature = ir.FunctionType(return_type, [op.type for op in operands])
    fn = cgutils.get_or_insert_function(builder.module, signature, name)
    return builder.call(fn, operands)


def _pointer_name(vector_type):
    """LLVM's name of a pointer to ``vector_type`` in an intrinsic's name: ``p0`` (opaque), or ``p0v8f32`` (typed)."""
    return "p0" if not getattr(ir_types, "ir_layer_typed_pointers_enabled", False) else f"p0{_suffix(vector_type)}"


def _suffix(vector_type):
    """LLVM's name of a vector type in an intrinsic's name: ``v8f32``, ``v4f64``."""
    return f"v{vector_type.count}{'f32' if vector_type.element == ir.FloatType() else 'f64'}"


@intrinsic
def _load(typingctx, a, x, f, n):
    lanes = _lanes_of(a)

    def codegen(context, builder, sig, args):
        vector_type = context.get_value_type(lanes)
        pointer = _address(context, builder, sig, args, vector_type)
        mask = _mask(context, builder, args[3], sig.args[3], lanes.count)
        align = ir.Constant(_I32, a.dtype.bitwidth // 8)
        operands = [pointer, align, mask, ir.Constant(vector_type, None)]
        name = f"llvm.masked.load.{_suffix(vector_type)}.{_pointer_name(vector_type)}"
        return _call(builder, name, vector_type, operands)

    return lanes(a, x, f, n), codegen


@intrinsic
def _store(typingctx, a, x, f, value, n):
    lanes = _lanes_of(a)
    if value != lanes:
        raise TypingError(f"cannot store {value} into rows of {a}")

    def codegen(context, builder, sig, args):
        vector_type = context.get_value_type(lanes)
        pointer = _address(context, builder, sig, args, vector_type)
        mask = _mask(context, builder, args[4], sig.args[4], lanes.count)
        operands = [args[3], pointer, ir.Constant(_I32, a.dtype.bitwidth // 8), mask]
        name = f"llvm.masked.store.{_suffix(vector_type)}.{_pointer_name(vector_type)}"
        _call(builder, name, ir.VoidType(), operands)
        return context.get_dummy_value()

    return types.none(a, x, f, value, n), codegen


@intrinsic
def _sum_lanes(typingctx, start, value, n):
    widen = start == types.float64 and isinstance(value, Lanes) and value.dtype == types.float32
    if not isinstance(value, Lanes) or (start != value.dtype and not widen):
        return None

    def codegen(context, builder, sig, args):
        vector = args[1]
        if widen:  # float32 lanes into a float64 sum: each lane exactly as a double, as the scalar loop adds it
            vector = builder.fpext(vector, ir.VectorType(ir.DoubleType(), value.count))
        vector_type = vector.type
        mask = _mask(context, builder, args[2], sig.args[2], value.count)
        # Lanes from n on become -0, which adds exactly nothing (x + -0 = x for every x, +0 and -0 included).
        negative_zero = _splat(builder, ir.Constant(vector_type.element, -0.0), vector_type)
        kept = builder.select(mask, vector, negative_zero)
        # Without fast-math flags LLVM's reduction is the ordered one: ((start + v0) + v1) + ...
        return _call(
            builder,
            f"llvm.vector.reduce.fadd.{_suffix(vector_type)}",
            vector_type.element,
            [args[0], kept],
        )

    return start(start, value, n), codegen


@intrinsic
def _width(typingctx, a):
    count = _lanes_of(a).count

    def codegen(context, builder, sig, args):
        return context.get_constant(types.intp, count)

    return types.intp(a), codegen


@intrinsic
def _negative_zero(typingctx, a):
    dtype = _lanes_of(a).dtype

    def codegen(context, builder, sig, args):
        return context.get_constant(dtype, -0.0)

    return dtype(a), codegen


@intrinsic
def _flush_below(typingctx, value, tiny):
    if not isinstance(value, Lanes) or tiny != value.dtype:
        return None

    def codegen(context, builder, sig, args):
        vector_type = context.get_value_type(value)
        magnitude = _call(builder, f"llvm.fabs.{_suffix(vector_type)}", vector_type, [args[0]])
        kept = builder.fcmp_ordered(">=", magnitude, _splat(builder, args[1], vector_type))
        # The scalar code's product with the comparison (1.0 or 0.0): the value, or a zero of its sign; NaN stays.
        return builder.fmul(args[0], builder.uitofp(kept, vector_type))

    return value(value, tiny), codegen


# The names the kernels call: intrinsics (LLVM code, no function of their own to compile) or, without JIT, the
# NumPy versions above.
_INTRINSICS = (_width, _load, _store, _negative_zero, _sum_lanes, _flush_below)
_PYTHON = (_width_python, _load_python, _store_python, _negative_zero_python, _sum_lanes_python, _flush_below_python)
width, load, store, negative_zero, sum_lanes, flush_below = _PYTHON if numba.config.DISABLE_JIT else _INTRINSICS


def _operands(a, b):
    """The :class:`Lanes` type of ``a op b``, or None: lanes with lanes alike, or with a scalar of their dtype."""
    if isinstance(a, Lanes) and (b == a or b == a.dtype):
        return a
    if isinstance(b, Lanes) and a == b.dtype:
        return b
    return None


def _register(python_operator, instruction):
    """Type and lower ``python_operator`` on lanes (with lanes, or a scalar of their dtype) as ``instruction``."""

    @infer_global(python_operator)
    class _LanesOperator(AbstractTemplate):
        def generic(self, args, kws):
            if len(args) == 2 and not kws and (lanes := _operands(*args)) is not None:
                return signature(lanes, *args)

    def lower(context, builder, sig, args):
        vector_type = context.get_value_type(sig.return_type)
        x, y = (v if isinstance(t, Lanes) else _splat(builder, v, vector_type) for t, v in zip(sig.args, args))
        return getattr(builder, instruction)(x, y)

    for operands in ((Lanes, Lanes), (Lanes, types.Float), (types.Float, Lanes)):
        lower_builtin(python_operator, *operands)(lower)


for _op, _instruction in ((operator.add, "fadd"), (operator.sub, "fsub"), (operator.mul, "fmul"),
                          (operator.truediv, "fdiv")):  # fmt: skip
    _register(_op, _instruction)


@intrinsic
def _sqrt(typingctx, a):
    def codegen(context, builder, sig, args):
        vector_type = context.get_value_type(a)
        return _call(builder, f"llvm.sqrt.{_suffix(vector_type)}", vector_type, [args[0]])

    return a(a), codegen


@overload(np.sqrt)
def _lanes_sqrt(a):
    if isinstance(a, Lanes):
        return lambda a: _sqrt(a)
