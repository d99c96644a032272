"""Static shapes: which axes of each value are 1, and where its other sizes come from.

Gradients are specialised on the *pattern of size-1 axes* of array arguments (a guard like
``1 not in x.shape``), so every other axis is a :class:`Dim` known not to be 1, named after
the argument axis it came from. That is all NumPy broadcasting depends on, so reverse mode
can undo broadcasting at compile time (``np.sum(g, axis=0)`` instead of a runtime helper) and
write shapes as ``X.shape`` instead of keeping values alive just to ask for their shape.

A shape is a tuple of dims (ints, or ``Dim``) or None when unknown.
"""

from __future__ import annotations

import math
import operator
from typing import Any

import numpy as np

from . import runtime
from .ir import BUILD_TUPLE, GetAttr, Method, Value


class Dim:
    """An array axis of size other than 1; ``source`` is ``(parameter, axis)`` when known.

    Two dims broadcast against each other in code that always runs are the same size (else
    NumPy raises): :func:`unify` records that, and ``same_as`` points to the dim it equals."""

    def __init__(self, source: tuple[Value, int] | None = None):
        self.source = source
        self.same_as: Dim | None = None

    def root(self) -> Dim:
        dim = self
        while dim.same_as is not None:
            dim = dim.same_as
        return dim

    def __repr__(self) -> str:
        return f"{self.source[0].hint}.shape[{self.source[1]}]" if self.source else "n"


class OffsetDim:
    """An axis ``base - minus`` long, from slicing a known axis (``x[1:]``, ``x[:-1]``): unlike a
    ``Dim`` it may be 1 (or 0), so it only ever matches an equal ``OffsetDim``."""

    source = None

    def __init__(self, base: Any, minus: int):
        self.base, self.minus = base, minus

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, OffsetDim) and other.base is self.base and other.minus == self.minus

    def __hash__(self) -> int:
        return hash((id(self.base), self.minus))

    def __repr__(self) -> str:
        return f"({self.base!r} - {self.minus})"


def equal_dims(a: Any, b: Any) -> bool:
    """Whether two dims are provably the same size."""
    if isinstance(a, Dim) and isinstance(b, Dim):
        return a.root() is b.root()
    return a is b or (type(a) is int and type(b) is int and a == b) or (isinstance(a, OffsetDim) and a == b)


def unify(fn: Any, args: list[Value]) -> None:
    """After an elementwise ``fn(*args)`` or a matrix product that always runs (straight-line
    code of the function body): the operands' axes other than 1 that line up, or that the
    product contracts, are the same size."""
    if fn in (operator.matmul, np.matmul, np.dot) and len(args) == 2 and all(a.shape for a in args):
        a, b = args[0].shape, args[1].shape
        if len(a) <= 2 and len(b) <= 2 or fn is not np.dot:
            _same(a[-1], b[-2] if len(b) >= 2 else b[-1])  # the contracted axis
        return
    if not is_elementwise(fn):
        return
    known = [a.shape for a in args if a.shape]
    if len(known) < 2 or any(s is None for s in known):
        return
    for axis in range(-max(len(s) for s in known), 0):
        dims = [s[axis] for s in known if len(s) >= -axis and isinstance(s[axis], Dim)]
        for other in dims[1:]:
            _same(dims[0], other)


def _same(a: Any, b: Any) -> None:
    """Record that dims ``a`` and ``b`` are the same size (if both are :class:`Dim`)."""
    if isinstance(a, Dim) and isinstance(b, Dim):
        a, b = a.root(), b.root()
        if a is not b:
            b.same_as = a


def param_shape(param: Value, ones: tuple[bool, ...]) -> tuple:
    """The shape of an array parameter whose size-1 axes are ``ones``."""
    return tuple(1 if one else Dim((param, axis)) for axis, one in enumerate(ones))


def broadcast(*shapes: Any) -> Any:
    """NumPy's broadcast of known shapes (each result axis taken from an operand)."""
    if any(s is None for s in shapes):
        return None
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for axis in range(-ndim, 0):
        dims = [s[axis] for s in shapes if len(s) >= -axis]
        big = [d for d in dims if d != 1]
        if any(isinstance(d, OffsetDim) for d in big) and not all(equal_dims(big[0], d) for d in big):
            return None  # a slice's length against another size: broadcasting may or may not happen
        out.append(big[0] if big else 1)
    return tuple(out)


def merge(a: Any, b: Any) -> Any:
    """The shape a value has on either of two paths (branches, loop iterations)."""
    if a is None or b is None or len(a) != len(b):
        return None
    out = []
    for x, y in zip(a, b):
        if equal_dims(x, y):
            out.append(x)
        elif isinstance(x, OffsetDim) or isinstance(y, OffsetDim):
            return None
        elif x != 1 and y != 1:
            out.append(Dim())  # not 1 either way, but no single expression for it
        else:
            return None
    return tuple(out)


def unbroadcast_axes(x: Any, g: Any) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """Axes to sum ``g`` over to get ``x``'s shape: (leading axes, size-1 axes kept)."""
    if x is None or g is None or len(g) < len(x):
        return None
    lead = len(g) - len(x)
    if any(isinstance(dx, OffsetDim) and not equal_dims(dx, dg) for dx, dg in zip(x, g[lead:])):
        return None  # x's axis may be 1 and have been broadcast: only the run time knows
    ones = tuple(i for i, (dx, dg) in enumerate(zip(x, g[lead:])) if dx == 1 and dg != 1)
    return tuple(range(lead)), ones


def _sliced(shape: tuple, index: Any) -> Any:
    """The shape of ``x[index]`` for basic indices of ints and unit-step slices, or None."""
    parts = index if type(index) is tuple else (index,)
    if not all(type(p) in (int, slice, type(None)) for p in parts):
        return None
    if parts.count(None):  # x[:, None]: a new axis of size 1 where None stands
        at = parts.index(None)
        rest = _sliced(shape, parts[:at] + parts[at + 1:])
        if rest is None:
            return None
        kept = sum(1 for p in parts[:at] if type(p) is slice)
        return rest[:kept] + (1,) + rest[kept:]
    if len(parts) > len(shape):
        return None
    out = []
    for dim, part in zip(shape, parts):
        if type(part) is int:
            continue  # the axis is dropped (an out-of-range index fails at run time)
        if part.step not in (None, 1):
            return None
        start, stop = part.start or 0, part.stop
        if type(dim) is int:
            out.append(len(range(dim)[part]))
        elif start >= 0 and (stop is None or stop < 0):
            minus = start + (-stop if stop is not None else 0)
            if minus == 0:
                out.append(dim)
            elif isinstance(dim, OffsetDim):
                out.append(OffsetDim(dim.base, dim.minus + minus))
            else:
                out.append(OffsetDim(dim, minus))
        else:
            return None  # x[-3:] or x[:3]: min(n, 3) long
    return tuple(out) + tuple(shape[len(parts):])


def _const(v: Value) -> Any:
    return v.const if v.is_const else None


def _axes(axis: Any, ndim: int) -> tuple[int, ...] | None:
    if axis is None:
        return tuple(range(ndim))
    axes = axis if isinstance(axis, tuple) else (axis,)
    if not all(type(a) is int and -ndim <= a < ndim for a in axes):
        return None
    return tuple(sorted(a % ndim for a in axes))


def _reduce(x: Any, axis: Any, keepdims: Any) -> Any:
    if axis is None and not keepdims:
        return ()  # a reduction over everything is a scalar, whatever the input's shape
    if x is None or keepdims not in (True, False, None):
        return None
    axes = _axes(axis, len(x))
    if axes is None:
        return None
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(x))
    return tuple(d for i, d in enumerate(x) if i not in axes)


def _matmul(a: Any, b: Any) -> Any:
    if a is None or b is None or not a or not b:
        return None
    if len(a) == 1 and len(b) == 1:
        return ()
    if len(a) == 1:
        return b[:-2] + b[-1:]
    if len(b) == 1:
        return a[:-1]
    batch = broadcast(a[:-2], b[:-2])
    return batch + (a[-2], b[-1])


def _reshaped(x: Any, dims: Any) -> Any:
    """The shape of ``np.reshape(x, dims)``: a ``-1`` is worked out when every size is a literal,
    or when it stands for the one axis of ``x`` other than 1 and every other new axis is 1
    (``(-1, 1)`` of a vector); else None."""
    if dims is None or not any(type(d) is int and d < 0 for d in dims):
        return dims
    known = [d for d in dims if not (type(d) is int and d < 0)]
    if x is None or len(known) != len(dims) - 1:
        return None
    if all(type(d) is int for d in (*x, *known)):
        rest = math.prod(known)
        if rest == 0 or math.prod(x) % rest:
            return None  # NumPy raises
        return tuple(math.prod(x) // rest if type(d) is int and d < 0 else d for d in dims)
    long = [d for d in x if d != 1]
    if any(d != 1 for d in known) or len(long) > 1 or (long and not isinstance(long[0], Dim)):
        return None
    axis = long[0] if long else 1
    return tuple(axis if type(d) is int and d < 0 else d for d in dims)


def _literal_shape(value: Any) -> Any:
    if type(value) is int:
        return (value,)
    if type(value) is tuple and all(type(d) is int for d in value):
        return value
    return None


ELEMENTWISE = {operator.add, operator.sub, operator.mul, operator.truediv, operator.floordiv,
               operator.mod, operator.pow, operator.lt, operator.le, operator.gt, operator.ge,
               operator.eq, operator.ne, operator.and_, operator.or_, operator.xor}
UNARY = {operator.neg, operator.pos, operator.abs, operator.invert, abs, float}
# Functions whose result has the broadcast shape of their arguments.
BROADCASTING = {np.where, runtime.winner_mask, runtime.fmax_share, runtime.fmin_share, runtime.power_slope}
REDUCTIONS = {np.sum, np.mean, np.prod, np.max, np.min, np.amax, np.amin, np.var, np.std}
REDUCTION_METHODS = {"sum", "mean", "prod", "max", "min", "var", "std"}


def is_elementwise(fn: Any) -> bool:
    """Whether ``fn`` works element by element (its result has its operands' broadcast shape)."""
    return fn in ELEMENTWISE or fn in UNARY or fn in BROADCASTING or (type(fn) is np.ufunc and fn.signature is None)


def infer(fn: Any, args: list[Value], kwargs: dict[str, Value]) -> Any:
    """The static shape of ``fn(*args, **kwargs)``, or None."""
    shapes = [a.shape for a in args]
    ufunc = type(fn) is np.ufunc and fn.signature is None  # elementwise (matmul is a gufunc)
    if fn in ELEMENTWISE or (ufunc and fn.nin == 2 and len(args) == 2) or fn in BROADCASTING:
        return broadcast(*shapes) if not kwargs else None
    if fn in UNARY or (ufunc and fn.nin == 1 and len(args) == 1) \
            or getattr(fn, "__module__", None) == "math":
        return shapes[0] if len(args) == 1 and not kwargs else (() if all(s == () for s in shapes) else None)
    if fn in (operator.matmul, np.matmul) or (fn in (np.dot, Method("dot")) and all(
            s is not None and len(s) <= 2 for s in shapes)):
        return _matmul(*shapes) if len(args) == 2 else None
    reduction = fn in REDUCTIONS or (isinstance(fn, Method) and fn.name in REDUCTION_METHODS)
    if reduction and args:
        positional = [_const(a) for a in args[1:2]]
        axis = _const(kwargs["axis"]) if "axis" in kwargs else (positional[0] if positional else None)
        keepdims = _const(kwargs["keepdims"]) if "keepdims" in kwargs else False
        if ("axis" in kwargs and not kwargs["axis"].is_const) or (args[1:2] and not args[1].is_const):
            return None
        return _reduce(shapes[0], axis, keepdims)
    if fn == GetAttr("T") or (fn is np.transpose and len(args) == 1 and not kwargs):
        return None if shapes[0] is None else tuple(reversed(shapes[0]))
    if fn in (np.zeros, np.ones, np.empty, np.full) and args and args[0].is_const:
        return _literal_shape(args[0].const)
    if fn in (np.zeros, np.ones, np.empty) and args and args[0].dims is not None:
        return args[0].dims
    if fn in (np.zeros_like, np.ones_like, np.empty_like, np.full_like) and args:
        return shapes[0]
    if fn is np.reshape and len(args) == 2:
        return _reshaped(shapes[0], args[1].dims)
    if fn in (np.broadcast_to, np.full) and len(args) == 2:
        dims = args[0].dims if fn is np.full else args[1].dims
        return None if dims is None or any(type(d) is int and d < 0 for d in dims) else dims
    if fn is np.outer and all(s is not None and len(s) == 1 for s in shapes):
        return (shapes[0][0], shapes[1][0])
    if fn is np.expand_dims and shapes[0] is not None and len(args) == 2 and args[1].is_const:
        axes = args[1].const if isinstance(args[1].const, tuple) else (args[1].const,)
        ndim = len(shapes[0]) + len(axes)
        if not all(type(a) is int and -ndim <= a < ndim for a in axes):
            return None
        axes = {a % ndim for a in axes}
        rest = iter(shapes[0])
        return tuple(1 if i in axes else next(rest) for i in range(ndim))
    if fn is runtime.setitem or fn in (runtime.add_at_index, runtime.add_at):
        return shapes[0]  # (the in-place ones return their first argument)
    if fn is runtime.add_into:  # acc += g, or acc + g where g does not fit
        return broadcast(*shapes)
    if fn is runtime.getitem_vjp and args[1].kind != "sequence":
        return shapes[1]
    if fn is operator.getitem and shapes[0] and args[1].integer:
        return shapes[0][1:]
    if fn is operator.getitem and shapes[0] is not None and args[1].is_const:
        return _sliced(shapes[0], args[1].const)
    return _infer_numpy(fn, args, kwargs, shapes)


# Functions whose result has the shape of their first argument, whatever the other arguments.
SAME_SHAPE = {np.linalg.inv, np.linalg.cholesky, np.flip, np.fliplr, np.flipud, np.roll,
              np.sinc, np.nan_to_num, np.real, np.imag, np.angle}


def _infer_numpy(fn: Any, args: list[Value], kwargs: dict[str, Value], shapes: list) -> Any:
    """Shapes of the results of the broad NumPy rule table's functions, where they are easy to know."""
    if not args:
        return None
    if fn in SAME_SHAPE:
        return shapes[0]
    if fn in (np.triu, np.tril) and shapes[0] is not None:  # of a vector: a square matrix
        return shapes[0] if len(shapes[0]) >= 2 else None
    if fn in (np.clip, Method("clip")):
        bounds = [a.shape for a in args[1:3]] + [v.shape for k, v in kwargs.items() if k in ("a_min", "a_max")]
        return broadcast(shapes[0], *bounds) if len(args) <= 3 and set(kwargs) <= {"a_min", "a_max"} else None
    if fn in (np.cumsum, np.cumprod, np.sort) and not kwargs.keys() - {"axis"}:
        axis = kwargs["axis"] if "axis" in kwargs else (args[1] if len(args) > 1 else None)
        if fn is np.sort and axis is None:
            return shapes[0]
        if axis is not None and axis.is_const and type(axis.const) is int:
            return shapes[0]
        return None
    if fn is np.linalg.det and shapes[0] is not None and len(shapes[0]) >= 2:
        return shapes[0][:-2]
    if fn is np.linalg.norm and len(args) == 1 and set(kwargs) <= {"axis", "keepdims"}:
        axis = kwargs.get("axis")
        keepdims = kwargs.get("keepdims")
        if (axis is not None and not axis.is_const) or (keepdims is not None and not keepdims.is_const):
            return None
        return _reduce(shapes[0], None if axis is None else axis.const,
                       False if keepdims is None else keepdims.const)
    return None


def infer_dims(fn: Any, args: list[Value]) -> Any:
    """For values that *are* shapes (``x.shape``, tuples of sizes): the dims they hold; for a
    size read off a shape (``W.shape[0]``), the one-axis shape ``(dim,)`` it makes."""
    if fn is operator.getitem and args[0].dims is not None and type(_const(args[1])) is int:
        dims, i = args[0].dims, _const(args[1])
        return (dims[i],) if -len(dims) <= i < len(dims) else None
    if fn == GetAttr("shape") and args[0].shape is not None:
        return args[0].shape
    if fn == BUILD_TUPLE and all(_size_dims(a) is not None for a in args):  # (x.shape[1], 3)
        return tuple(_size_dims(a)[0] for a in args)
    if fn is np.shape and len(args) == 1 and args[0].shape is not None:
        return args[0].shape
    return None


def _size_dims(v: Value) -> Any:
    """``(dim,)`` for a size: an int constant, or a size read off a shape (``x.shape[1]``)."""
    if v.is_const and type(v.const) is int:
        return (v.const,)
    return v.dims if v.integer and v.dims is not None and len(v.dims) == 1 else None


def annotate(fn: Any, args: list[Value], kwargs: dict[str, Value]) -> tuple[Any, Any, bool, Any]:
    """The (shape, dims, is-a-Python-int, dtype) of a call's result, for ``ir.Builder``."""
    integer = fn in (len, np.size, np.ndim) or fn in (GetAttr("ndim"), GetAttr("size")) or (
        fn is operator.getitem and args[0].dims is not None and args[1].integer)
    if integer:
        return (), infer_dims(fn, args), True, None
    return infer(fn, args, kwargs), infer_dims(fn, args), False, infer_dtype(fn, args, kwargs)


# ----------------------------------------------------------------------------- dtypes
# Only float64 is tracked (what gradients are computed in): enough to know that a gradient
# the code computed already has its argument's dtype, so it is handed over as it is.

F64 = np.dtype(np.float64)
MASK = "mask"  # a boolean array, or a float64 one of 0s, 1s and halves (winner_mask)
# Calls whose result is float64 when every array operand is (Python numbers are weak).
KEEPS_FLOAT = {operator.add, operator.sub, operator.mul, operator.truediv, operator.pow, operator.neg,
               operator.pos, operator.abs, operator.mod, operator.floordiv, operator.matmul, np.matmul,
               np.dot, np.outer, np.sum, np.mean, np.prod, np.cumsum, np.transpose, np.reshape, np.ravel,
               GetAttr("T"), Method("sum"), Method("mean"), Method("prod"), Method("max"), Method("min"),
               Method("reshape"), Method("ravel"), Method("transpose"), Method("copy"), Method("cumsum"),
               runtime.unbroadcast, runtime.power_slope}
REDUCING_KEYWORDS = {"axis", "keepdims"}


def _weak(v: Value) -> bool:
    """A Python number (NumPy's weak scalars: they do not change an array's dtype)."""
    return v.kind == "scalar" or (v.is_const and type(v.const) in (int, float, bool))


def infer_dtype(fn: Any, args: list[Value], kwargs: dict[str, Value]) -> Any:
    """``F64`` when ``fn(*args)`` is surely a float64 array (or scalar), MASK for comparisons, or None."""
    if fn in (np.zeros, np.ones, np.empty) and len(args) == 1 and not kwargs:
        return F64
    if fn is np.full and len(args) == 2 and not kwargs and (args[1].dtype is F64 or (
            args[1].is_const and type(args[1].const) is float) or args[1].pytype is float):
        return F64
    if fn is np.zeros_like and len(args) == 1 and set(kwargs) == {"dtype"} and kwargs["dtype"].const is float:
        return F64
    if fn is runtime.winner_mask:
        return MASK
    if fn is runtime.getitem_vjp:
        return F64 if args[1].dtype is F64 else None
    if fn in (runtime.add_into, runtime.add_at_index, runtime.add_at):  # acc[i] += g: acc's dtype if g fits it
        return F64 if args[0].dtype is F64 and (args[-1].dtype in (F64, MASK) or _weak(args[-1])) else None
    if fn is operator.getitem or fn is runtime.setitem:
        return F64 if args and args[0].dtype is F64 else None
    if fn is np.where and len(args) == 3 and not kwargs:
        return F64 if all(a.dtype is F64 or (a.is_const and type(a.const) is float) for a in args[1:]) else None
    ufunc = type(fn) is np.ufunc and fn.signature is None
    if ufunc and not kwargs:
        arrays = [a for a in args if not _weak(a)]
        if arrays and all(a.dtype is F64 for a in arrays):
            out = _ufunc_output(fn)
            return F64 if out == "d" else (MASK if out == "?" else None)
        return None
    if fn in KEEPS_FLOAT and set(kwargs) <= REDUCING_KEYWORDS:
        arrays = [a for a in args if not _weak(a)]
        if arrays and all(a.dtype in (F64, MASK) for a in arrays) and any(a.dtype is F64 for a in arrays):
            return F64
    if fn in (operator.lt, operator.le, operator.gt, operator.ge, operator.eq, operator.ne):
        arrays = [a for a in args if not _weak(a)]
        return MASK if arrays and all(a.dtype is F64 for a in arrays) else None
    return None


def _ufunc_output(fn: np.ufunc) -> str | None:
    """The output type character of ufunc ``fn`` on float64 inputs ('d', '?'...)."""
    prefix = "d" * fn.nin + "->"
    for types in fn.types:
        if types.startswith(prefix) and fn.nout == 1:
            return types[len(prefix):]
    return None


def same(a: Any, b: Any) -> bool:
    """Whether two known shapes are provably equal."""
    return a is not None and b is not None and len(a) == len(b) and all(equal_dims(x, y) for x, y in zip(a, b))


def size(shape: Any) -> Any:
    """The number of elements as an int, when every dim is a literal."""
    if shape is not None and all(type(d) is int for d in shape):
        return math.prod(shape)
    return None

