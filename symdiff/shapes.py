"""Static shapes: which axes of each value are 1, and where its other sizes come from.

Gradients are specialised on the *pattern of size-1 axes* of array arguments (a guard like
``1 not in x.shape``), so every other axis is a :class:`Dim` known not to be 1, named after
the argument axis it came from. That is all NumPy broadcasting depends on, so reverse mode
can undo broadcasting at compile time (``np.sum(g, axis=0)`` instead of a runtime helper) and
write shapes as ``X.shape`` instead of keeping values alive just to ask for their shape.

A shape is a tuple of dims (ints, or ``Dim``) or None when unknown.
"""

from __future__ import annotations

import inspect
import math
import operator
from typing import Any

import numpy as np

from . import primitives
from .ir import BUILD_SLICE, BUILD_TUPLE, RANGE, SCALAR, SEQUENCE, Abstract, Value


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


# ----------------------------------------------------------------------------- shape rules
# A primitive's record names one of these (``Primitive.shape``): ``(fn, args, kwargs, shapes)``
# -> the static shape of the result, or None. ``shapes`` are the arguments' shapes.


def dynamic(fn: Any, args: list[Value], kwargs: dict, shapes: list) -> Any:
    """Not known statically: the shape is whatever the call returns at run time."""
    return None


def elementwise(fn: Any, args: list[Value], kwargs: dict, shapes: list) -> Any:
    """The operands' broadcast shape (ufuncs, operators, ``np.where``)."""
    if kwargs or any(a.kind == SEQUENCE for a in args):
        return None  # (of tuples, + and * join and repeat them)
    return broadcast(*shapes)


def scalar(fn: Any, args: list[Value], kwargs: dict, shapes: list) -> Any:
    """A number (``len``, ``math`` functions of numbers, ``x.item()``)."""
    return ()


def first(fn: Any, args: list[Value], kwargs: dict, shapes: list) -> Any:
    """The first argument's shape, whatever the others (``np.flip``, ``a[i] = v``)."""
    return shapes[0] if args else None


def like(fn: Any, args: list[Value], kwargs: dict, shapes: list) -> Any:
    """``np.zeros_like(x)`` and friends: ``x``'s shape, or the ``shape`` asked for (by keyword or position)."""
    position = _parameter_position(fn, "shape")
    given = kwargs.get("shape", args[position] if position is not None and len(args) > position else None)
    if given is None or (given.is_const and given.const is None):
        return shapes[0] if args else None
    if given.is_const:
        return _literal_shape(given.const)
    dims = given.dims
    return None if dims is None or any(type(d) is int and d < 0 for d in dims) else dims


def second(fn: Any, args: list[Value], kwargs: dict, shapes: list) -> Any:
    """The second argument's shape (the cotangent of ``x`` in ``x[i]`` has ``x``'s shape)."""
    return shapes[1] if len(args) > 1 and args[1].kind != "sequence" else None


def matrix_product(fn: Any, args: list[Value], kwargs: dict, shapes: list) -> Any:
    """``a @ b`` (``np.dot`` only up to 2-D, where it is matmul)."""
    if len(args) != 2 or kwargs:
        return None
    if fn is np.dot and not all(s is not None and len(s) <= 2 for s in shapes):
        return None
    return _matmul(*shapes)


def reduced(fn: Any, args: list[Value], kwargs: dict, shapes: list) -> Any:
    """A reduction over a constant ``axis`` (positional or keyword; all axes when absent) with a
    constant ``keepdims`` (keyword, or at its position in ``fn``'s signature: ``np.max(x, 1, None, True)``)."""
    if not args or kwargs.keys() - {"axis", "keepdims", "dtype", "ddof"}:
        return None
    keepdims = kwargs.get("keepdims")
    if len(args) > 2:  # (dtype, out, ddof: then keepdims)
        position = _parameter_position(fn, "keepdims")
        if position is None or len(args) > position + 1 or (keepdims is not None and len(args) > position):
            return None
        keepdims = args[position] if len(args) == position + 1 else keepdims
    axis = kwargs["axis"] if "axis" in kwargs else (args[1] if len(args) > 1 else None)
    if (axis is not None and not axis.is_const) or (keepdims is not None and not keepdims.is_const):
        return None
    return _reduce(shapes[0], None if axis is None else axis.const, False if keepdims is None else keepdims.const)


def _parameter_position(fn: Any, name: str) -> int | None:
    """The position of ``fn``'s parameter ``name`` (None when it has none, or no signature)."""
    try:
        names = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return None
    return names.index(name) if name in names else None


def norm(fn: Any, args: list[Value], kwargs: dict, shapes: list) -> Any:
    """``np.linalg.norm(x, axis=..., keepdims=...)`` without ``ord``: a reduction."""
    if len(args) != 1 or kwargs.keys() - {"axis", "keepdims"}:
        return None
    axis, keepdims = kwargs.get("axis"), kwargs.get("keepdims")
    if (axis is not None and not axis.is_const) or (keepdims is not None and not keepdims.is_const):
        return None
    return _reduce(shapes[0], None if axis is None else axis.const, False if keepdims is None else keepdims.const)


def transposed(fn: Any, args: list[Value], kwargs: dict, shapes: list) -> Any:
    """``x.T`` and ``np.transpose(x)``: the axes reversed."""
    if len(args) != 1 or kwargs or shapes[0] is None:
        return None
    return tuple(reversed(shapes[0]))


def created(fn: Any, args: list[Value], kwargs: dict, shapes: list) -> Any:
    """``np.zeros(shape)`` and friends: the literal shape, or the dims of a shape value (``x.shape``)."""
    if not args:
        return None
    if args[0].is_const:
        return _literal_shape(args[0].const)
    dims = args[0].dims
    return None if dims is None or any(type(d) is int and d < 0 for d in dims) else dims


def identity_shape(fn: Any, args: list[Value], kwargs: dict, shapes: list) -> Any:
    """``np.eye(n)``, ``np.eye(n, m)``, ``np.identity(n)`` of constant sizes: ``(n, m)``."""
    sizes = [a.const if a.is_const else None for a in args[:2]]
    if not sizes or kwargs.keys() - {"k", "dtype"} or any(type(n) is not int for n in sizes):
        return None
    return (sizes[0], sizes[-1])


def reshaped(fn: Any, args: list[Value], kwargs: dict, shapes: list) -> Any:
    """``np.reshape(x, dims)`` (see :func:`_reshaped`)."""
    return _reshaped(shapes[0], args[1].dims) if len(args) == 2 and not kwargs else None


def broadcast_to(fn: Any, args: list[Value], kwargs: dict, shapes: list) -> Any:
    """``np.broadcast_to(x, dims)``: the dims asked for."""
    if len(args) != 2:
        return None
    dims = args[1].dims
    return None if dims is None or any(type(d) is int and d < 0 for d in dims) else dims


def outer(fn: Any, args: list[Value], kwargs: dict, shapes: list) -> Any:
    """``np.outer(u, v)`` of two vectors."""
    if len(args) != 2 or not all(s is not None and len(s) == 1 for s in shapes):
        return None
    return (shapes[0][0], shapes[1][0])


def expand_dims(fn: Any, args: list[Value], kwargs: dict, shapes: list) -> Any:
    """``np.expand_dims(x, axes)`` with constant axes."""
    if shapes[0] is None or len(args) != 2 or not args[1].is_const:
        return None
    axes = args[1].const if isinstance(args[1].const, tuple) else (args[1].const,)
    ndim = len(shapes[0]) + len(axes)
    if not all(type(a) is int and -ndim <= a < ndim for a in axes):
        return None
    axes = {a % ndim for a in axes}
    rest = iter(shapes[0])
    return tuple(1 if i in axes else next(rest) for i in range(ndim))


def indexed(fn: Any, args: list[Value], kwargs: dict, shapes: list) -> Any:
    """``x[i]`` for an int ``i`` (one axis dropped) or a constant basic index (see :func:`_sliced`)."""
    if shapes[0] and args[1].integer:
        return shapes[0][1:]
    if shapes[0] is not None and args[1].is_const:
        return _sliced(shapes[0], args[1].const)
    return None


def triangle(fn: Any, args: list[Value], kwargs: dict, shapes: list) -> Any:
    """``np.triu``/``np.tril``: the shape of a matrix (of a vector: a square matrix, not inferred)."""
    return shapes[0] if shapes[0] is not None and len(shapes[0]) >= 2 else None


def clipped(fn: Any, args: list[Value], kwargs: dict, shapes: list) -> Any:
    """``np.clip(x, lo, hi)``: the broadcast of ``x`` and its bounds."""
    if len(args) > 3 or kwargs.keys() - {"a_min", "a_max"}:
        return None
    return broadcast(shapes[0], *shapes[1:3], *(v.shape for v in kwargs.values()))


def along_axis(fn: Any, args: list[Value], kwargs: dict, shapes: list) -> Any:
    """``np.cumsum``/``np.cumprod``/``np.sort`` along a constant int ``axis``: ``x``'s shape
    (``np.sort`` without an axis too; the cumulative ones flatten then)."""
    if kwargs.keys() - {"axis"}:
        return None
    axis = kwargs["axis"] if "axis" in kwargs else (args[1] if len(args) > 1 else None)
    if axis is None:
        return shapes[0] if fn is np.sort else None
    return shapes[0] if axis.is_const and type(axis.const) is int else None


def stacked_matrices(fn: Any, args: list[Value], kwargs: dict, shapes: list) -> Any:
    """``np.linalg.det``: one number per matrix of a stack."""
    return shapes[0][:-2] if shapes[0] is not None and len(shapes[0]) >= 2 else None


def row_of(array: Value) -> Abstract:
    """The abstract value of ``array[i]`` for a Python int ``i``: what iterating over ``array``
    gives (its rows), with the kind the builder gives an item read by index."""
    index = Value("i", SCALAR, shape=(), integer=True)
    aval = annotate(operator.getitem, [array, index], {})
    kind = result_kind(operator.getitem, [array.kind, SCALAR])
    return aval._replace(kind=kind if kind is not None or not aval.shape else len(aval.shape))


def infer(fn: Any, args: list[Value], kwargs: dict[str, Value]) -> Any:
    """The static shape of ``fn(*args, **kwargs)``, or None (the record's shape rule)."""
    record = primitives.lookup(fn)
    return record.shape(record.fn, args, kwargs, [a.shape for a in args])


def is_elementwise(fn: Any) -> bool:
    """Whether ``fn`` works element by element (its result has its operands' broadcast shape)."""
    return primitives.lookup(fn).elementwise


# ----------------------------------------------------------------------------- dims rules
# ``Primitive.dims``: for values that *are* shapes (``x.shape``, tuples of sizes), the dims
# they hold; for a size read off a shape (``W.shape[0]``), the one-axis shape ``(dim,)``.


def item_dims(fn: Any, args: list[Value]) -> Any:
    """``shape[i]`` of a known shape: ``(dim,)``."""
    if args[0].dims is not None and type(_const(args[1])) is int:
        dims, i = args[0].dims, _const(args[1])
        return (dims[i],) if -len(dims) <= i < len(dims) else None
    return None


def length_dims(fn: Any, args: list[Value]) -> Any:
    """``len(x)`` of an array of known shape: ``(dim,)``, its first axis."""
    return (args[0].shape[0],) if len(args) == 1 and args[0].shape and type(args[0].kind) is int else None


def shape_dims(fn: Any, args: list[Value]) -> Any:
    """``x.shape`` / ``np.shape(x)``: the dims of ``x``'s static shape."""
    return args[0].shape if len(args) == 1 else None


def tuple_dims(fn: Any, args: list[Value]) -> Any:
    """``(x.shape[1], 3)``: the dims of its sizes."""
    sizes = [_size_dims(a) for a in args]
    return tuple(d[0] for d in sizes) if all(d is not None for d in sizes) else None


def _size_dims(v: Value) -> Any:
    """``(dim,)`` for a size: an int constant, or a size read off a shape (``x.shape[1]``)."""
    if v.is_const and type(v.const) is int:
        return (v.const,)
    return v.dims if v.integer and v.dims is not None and len(v.dims) == 1 else None


def size_read_off_shape(args: list[Value]) -> bool:
    """``shape[i]`` of a shape value is a Python int."""
    return args[0].dims is not None and args[1].integer


def annotate(fn: Any, args: list[Value], kwargs: dict[str, Value]) -> Abstract:
    """The abstract value of a call's result (its shape, dims, int-ness and dtype; the kind is
    the builder's to set, except for a NumPy float64 scalar, whose kind is SCALAR), for ``ir.Builder``."""
    record = primitives.lookup(fn)
    dims = record.dims(record.fn, args) if record.dims is not None else None
    integer = record.integer(args) if callable(record.integer) else record.integer
    if integer:
        return Abstract(shape=(), dims=dims, integer=True)
    if not kwargs and (is_element(fn, args) or _float64_scalar_arithmetic(record, args)):
        return ELEMENT
    if fn is BUILD_TUPLE and int_tuple(fn, args, kwargs, []) is not None:
        return Abstract(SEQUENCE, (len(args),), dims=dims)
    keepdims = kwargs.get("keepdims")
    if record.nature == primitives.REDUCES and keepdims is not None and keepdims.is_const and keepdims.const is True \
            and args and type(args[0].kind) is int:  # np.mean(x, axis=0, keepdims=True): x's rank
        return Abstract(args[0].kind, infer(fn, args, kwargs), dims=dims, dtype=infer_dtype(fn, args, kwargs))
    if fn is BUILD_SLICE:  # a:b, slice(a, b): a slice whatever its bounds
        return Abstract(pytype=slice)
    if fn is operator.getitem and len(args) == 2 and not kwargs and type(args[0].kind) is int \
            and args[0].kind >= 1 and args[1].pytype is slice:  # x[a:b]: x's rank, whatever a and b
        return Abstract(args[0].kind, dtype=infer_dtype(fn, args, kwargs))
    return Abstract(shape=infer(fn, args, kwargs), dims=dims, dtype=infer_dtype(fn, args, kwargs))


# A NumPy float64 scalar (``x[i]`` of a float64 vector): a number like a Python float (a float
# subclass: plain arithmetic, ``math``, no broadcasting), but not one (``pytype``): its
# arithmetic with Python numbers gives float64 scalars again.
ELEMENT = Abstract(SCALAR, (), dtype=np.dtype(np.float64), pytype=np.float64)


def integer_arithmetic(args: list[Value]) -> bool:
    """``i - 1``, ``2 * i``, ``n // 2`` of Python ints (``Primitive.integer`` of the operators
    whose result on ints is an int)."""
    return bool(args) and all(a.integer for a in args)


def is_element(fn: Any, args: list[Value]) -> bool:
    """``x[i]`` (``x[i, j]``...) of a float64 array of known rank, an int index for each axis:
    one element, a NumPy float64 scalar."""
    if fn is not operator.getitem or len(args) != 2 or type(args[0].kind) is not int or args[0].dtype is not F64:
        return False
    x, index = args
    if index.integer:
        return x.kind == 1
    if index.is_const:
        parts = index.const if type(index.const) is tuple else (index.const,)
        return len(parts) == x.kind and all(type(p) is int for p in parts)
    return index.kind == SEQUENCE and index.shape == (x.kind,)  # (i, j): see int_tuple


def int_tuple(fn: Any, args: list[Value], kwargs: dict, shapes: list) -> Any:
    """A tuple display of Python ints, ``(i, j)``: ``(2,)``, what ``np.shape`` says of it (an
    index of one element of a matrix); of other items not tracked."""
    return (len(args),) if args and not kwargs and all(a.integer for a in args) else None


def _float64_scalar_arithmetic(record: primitives.Primitive, args: list[Value]) -> bool:
    """An operator or ufunc with a float64 result on numbers, one of them a NumPy float64 scalar
    and the others Python numbers or such scalars: a NumPy float64 scalar."""
    if not record.elementwise or record.float_result or not args:
        return False
    if not any(a.pytype is np.float64 for a in args):
        return False
    if not all(a.pytype is np.float64 or (a.kind == SCALAR and a.pytype in (None, float, int)) or
               (a.is_const and type(a.const) in (int, float)) for a in args):
        return False
    if record.fn in _FLOAT64_OPERATORS:
        return True
    return type(record.fn) is np.ufunc and _ufunc_output(record.fn) == "d"


_FLOAT64_OPERATORS = (operator.add, operator.sub, operator.mul, operator.truediv, operator.neg, operator.pos,
                      operator.abs, operator.pow, operator.mod, operator.floordiv)


# ----------------------------------------------------------------------------- kinds
# ``Primitive.rank``: ``(fn, kinds)`` -> the static kind of the result (SCALAR, RANGE, an ndim)
# from its arguments' kinds; the operators, ufuncs and ``math`` need no rule of their own.


def result_kind(fn: Any, kinds: list) -> Any:
    """The static kind of ``fn(*args)``: SCALAR for Python numbers, an int ndim for ndarrays,
    RANGE, or None when unknown."""
    record = primitives.lookup(fn)
    if record.rank is not None:
        return record.rank(record.fn, kinds)
    if record.on_numbers and kinds and all(k == SCALAR for k in kinds):
        return SCALAR
    ranks = [k for k in kinds if type(k) is int]
    if record.elementwise and ranks and all(k == SCALAR or type(k) is int for k in kinds):
        return max(ranks) or None  # (of 0-d arrays alone NumPy returns a NumPy scalar, not an array)
    return None


def a_range(fn: Any, kinds: list) -> Any:
    """``range(...)``."""
    return RANGE


def a_matrix(fn: Any, kinds: list) -> Any:
    """A 2-D array whatever the arguments (``np.eye``)."""
    return 2


def a_vector(fn: Any, kinds: list) -> Any:
    """A 1-D array whatever the arguments (``np.arange``)."""
    return 1


def a_number(fn: Any, kinds: list) -> Any:
    """A Python number whatever the arguments (``len``)."""
    return SCALAR


def product_rank(fn: Any, kinds: list) -> Any:
    """``a @ b`` and ``np.dot(a, b)`` of ndarrays: a vector's axis is contracted away (vector @
    vector is a NumPy scalar: kind unknown); matmul broadcasts the other axes, ``np.dot`` keeps
    all of both (``np.dot`` with a 0-d array multiplies)."""
    if len(kinds) != 2 or not all(type(k) is int for k in kinds):
        return None
    a, b = kinds
    if fn is np.dot and 0 in (a, b):
        rank = max(a, b)
    elif fn is np.dot:
        rank = a + b - 2 if b >= 2 else a - 1
    elif a == 1 or b == 1:
        rank = max(a, b) - 1
    else:
        rank = max(a, b)
    return rank or None  # (a product that is a number is a NumPy scalar)


def same_rank(fn: Any, kinds: list) -> Any:
    """The first argument's rank (``x.T``, ``x.copy()``, ``x.astype(t)``)."""
    return kinds[0] if kinds and type(kinds[0]) is int else None


def updated_rank(fn: Any, kinds: list) -> Any:
    """``a[i] = v`` keeps ``a``'s kind (an array's rank, or a sequence)."""
    return kinds[0] if type(kinds[0]) is int or kinds[0] == SEQUENCE else None


def item_rank(fn: Any, kinds: list) -> Any:
    """``x[i]`` with a number ``i`` drops one axis (a vector's item is a NumPy scalar: unknown)."""
    if type(kinds[0]) is int and kinds[1] == SCALAR:
        return kinds[0] - 1 or None
    return None


def creation_kind(fn: Any, args: list[Value]) -> Any:
    """The ndim of ``np.zeros(shape)`` and friends when ``shape`` is a constant."""
    if primitives.lookup(fn).shape is created and args and args[0].integer:
        return 1  # np.zeros(n + 1)
    if primitives.lookup(fn).shape is created and args and args[0].is_const:
        shape = args[0].const
        if type(shape) is int:
            return 1
        if type(shape) is tuple and shape:
            return len(shape)
    return None


# ----------------------------------------------------------------------------- dtypes
# Only float64 is tracked (what gradients are computed in): enough to know that a gradient
# the code computed already has its argument's dtype, so it is handed over as it is.

F64 = np.dtype(np.float64)
# a boolean mask, or another real array no wider than float64 (winner_mask's 0s, 1s and halves,
# sums of masks, float32 or int arrays): float64 once combined with a float64 array, and fits into one
MASK = "mask"


def _weak(v: Value) -> bool:
    """A Python number (NumPy's weak scalars: they do not change an array's dtype)."""
    return v.kind == "scalar" or (v.is_const and type(v.const) in (int, float, bool))


def _arrays(args: list[Value]) -> list[Value]:
    return [a for a in args if not _weak(a)]


def tracked(v: Value) -> Any:
    """What is known of ``v``'s dtype: F64, MASK (a real dtype no wider than float64) or None.
    (Dtypes are compared by identity: ``F64 == None`` holds, as NumPy reads None as float64.)"""
    if v.dtype is F64:
        return F64
    if v.dtype is MASK or (isinstance(v.dtype, np.dtype) and v.dtype.kind in "biuf" and v.dtype.itemsize <= 8):
        return MASK
    return None


def fits_float64(v: Value) -> bool:
    """Whether ``v`` combined with (or added into) a float64 array gives float64: a float64 array,
    a mask (see MASK) or a Python number."""
    return tracked(v) is not None or _weak(v)


# ----------------------------------------------------------------------------- dtype rules
# ``Primitive.dtype``: ``(fn, args, kwargs)`` -> F64 when the result is surely float64, MASK
# for a mask, None when not known.


def unknown_dtype(fn: Any, args: list[Value], kwargs: dict) -> Any:
    """Not tracked: whatever the call returns."""
    return None


def float_created(fn: Any, args: list[Value], kwargs: dict) -> Any:
    """``np.zeros(shape)`` (no ``dtype=``): float64."""
    return F64 if len(args) == 1 and not kwargs else None


def identity_dtype(fn: Any, args: list[Value], kwargs: dict) -> Any:
    """``np.eye(n)``/``np.identity(n)`` without a dtype: float64."""
    return F64 if "dtype" not in kwargs and len(args) <= (3 if fn is np.eye else 1) else None


def filled(fn: Any, args: list[Value], kwargs: dict) -> Any:
    """``np.full(shape, value)``: float64 when the value is a float."""
    if len(args) != 2 or kwargs:
        return None
    value = args[1]
    return F64 if value.dtype is F64 or (value.is_const and type(value.const) is float) or value.pytype is float \
        else None


def zeros_like(fn: Any, args: list[Value], kwargs: dict) -> Any:
    """``np.zeros_like(x, dtype=float)``: float64."""
    return F64 if len(args) == 1 and set(kwargs) == {"dtype"} and kwargs["dtype"].const is float else None


def mask(fn: Any, args: list[Value], kwargs: dict) -> Any:
    """A mask of 0s, 1s and halves (runtime.winner_mask)."""
    return MASK


def compared(fn: Any, args: list[Value], kwargs: dict) -> Any:
    """A comparison of float64 arrays: a boolean mask."""
    return MASK if _arrays(args) and all(a.dtype is F64 for a in _arrays(args)) else None


def second_dtype(fn: Any, args: list[Value], kwargs: dict) -> Any:
    """The dtype of the second argument (the cotangent of ``x`` in ``x[i]``)."""
    return F64 if len(args) > 1 and args[1].dtype is F64 else None


def first_dtype(fn: Any, args: list[Value], kwargs: dict) -> Any:
    """The first argument's dtype (``x[i]``, ``a[i] = v``, views); an array of a Python float is float64."""
    if not args:
        return None
    first = args[0]
    if _python_float(first):
        return F64
    if isinstance(first.dtype, np.dtype) and first.dtype.kind in "biu" and first.dtype is not F64:
        return first.dtype  # (an item of an array of ints is an int: an index, not differentiated)
    return tracked(first) or (MASK if _weak(first) else None)


def passed_through(fn: Any, args: list[Value], kwargs: dict) -> Any:
    """The first argument's dtype for a call that may return that argument itself
    (``runtime.unbroadcast``): of a Python number, nothing (it stays a weak number)."""
    return tracked(args[0]) if args else None


def accumulated(fn: Any, args: list[Value], kwargs: dict) -> Any:
    """``acc += g`` (or at an index): ``acc``'s dtype, when ``g`` fits into it."""
    return F64 if args and args[0].dtype is F64 and fits_float64(args[-1]) else None


def where(fn: Any, args: list[Value], kwargs: dict) -> Any:
    """``np.where(c, x, y)``: float64 when each branch is a float64 array or a Python number, one
    of them a float64 array or a Python float (``np.where(c, g, 0.0)`` of a number ``g``)."""
    if len(args) != 3 or kwargs:
        return None
    branches = args[1:]
    if all(b.dtype is F64 or _weak(b) for b in branches) and any(b.dtype is F64 or _python_float(b) for b in branches):
        return F64
    return None


def ufunc_dtype(fn: Any, args: list[Value], kwargs: dict) -> Any:
    """A ufunc whose operands promote to float64 (a float64 array among arrays no wider; or Python
    floats alone): its output type on float64 inputs; a comparison of real arrays: a mask."""
    arrays = _arrays(args)
    if kwargs or any(tracked(a) is None for a in arrays):
        return None
    out = _ufunc_output(fn)
    if out == "?" and arrays:
        return MASK
    if arrays:
        return F64 if out == "d" and any(a.dtype is F64 for a in arrays) else None
    return F64 if out == "d" and args and all(_python_float(a) for a in args) else None


def _python_float(v: Value) -> bool:
    """A Python float (of Python ints, a ufunc may pick an int loop: ``np.negative(2)`` is an int)."""
    return v.pytype is float or (v.is_const and type(v.const) is float)


def keeps_float(fn: Any, args: list[Value], kwargs: dict) -> Any:
    """Float64 when every array operand is float64 or a mask, one float64 among them; a mask
    when all are masks."""
    if set(kwargs) - {"axis", "keepdims"}:
        return None
    arrays = _arrays(args)
    if arrays and all(tracked(a) is not None for a in arrays):
        return F64 if any(a.dtype is F64 for a in arrays) else MASK
    return None


def reduced_dtype(fn: Any, args: list[Value], kwargs: dict) -> Any:
    """A reduction over any axes (``keepdims``, ``ddof``) of a float64 array: float64; of a mask:
    a mask (the sum of booleans is an int). With a ``dtype``, ``out``, ``initial`` or ``where``: not tracked."""
    if not args or set(kwargs) - {"axis", "keepdims", "ddof", "correction"}:
        return None
    # positionally: axis, then None for dtype= and out=, and numbers for ddof= and keepdims=
    if not all(a.is_const and (a.const is None or type(a.const) in (int, bool)) for a in args[2:]):
        return None
    return tracked(args[0])


def cast(fn: Any, args: list[Value], kwargs: dict) -> Any:
    """``x.astype(t)``: float64 when ``t`` is a constant naming float64 (``float``, ``np.float64``)."""
    if len(args) != 2 or kwargs or not args[1].is_const:
        return None
    try:
        return F64 if np.dtype(args[1].const) == F64 else None
    except TypeError:  # not a dtype: astype raises
        return None


def infer_dtype(fn: Any, args: list[Value], kwargs: dict[str, Value]) -> Any:
    """``F64`` when ``fn(*args)`` is surely a float64 array (or scalar), MASK for comparisons, or None."""
    record = primitives.lookup(fn)
    return record.dtype(record.fn, args, kwargs)


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

