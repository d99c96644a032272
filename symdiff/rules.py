"""The derivative table: one vector-Jacobian product (VJP) per primitive and argument.

A rule is an ordinary Python function ``(g, ans, *args, **kwargs) -> cotangent`` written
with NumPy and operators. It is *run once at compile time* on symbolic values (``Sym``) that
record what it does as IR, so that its body ends up inlined in the generated source:
``np.tanh``'s rule ``g * (1 - ans**2)`` becomes ``dz = dh * (1 - h ** 2)``.
Arguments that are compile-time constants (``axis=1``) arrive as plain Python values, so
rules may branch on them. ``g`` is the cotangent of ``ans``; the result must have the shape
of the argument (``unbroadcast`` undoes NumPy broadcasting).
"""

from __future__ import annotations

import functools
import math
import operator
from typing import Any, Callable

import numpy as np

from . import runtime, shapes
from .ir import BUILD_LIST, BUILD_SLICE, BUILD_TUPLE, SCALAR, SEQUENCE, BuildDict, Builder, GetAttr, Method, Value
from .passes import enabled, result_kind

Rule = Callable[..., Any]
VJPS: dict[Any, tuple[Rule | None, ...]] = {}
NONDIFF: set[Any] = set()  # callees whose results carry no derivative (comparisons, floor...)
KEYWORD_POSITIONS: dict[Any, dict[str, int]] = {}  # differentiable keyword arguments (see defkeywords)


def defvjp(fn: Any, *vjps: Rule | None) -> None:
    """Register VJP rules for ``fn``: one ``(g, ans, *args, **kwargs) -> cotangent`` per
    positional argument (``None`` for an argument that is not differentiable).

    The rule body is written with NumPy and operators, and is inlined into generated code::

        symdiff.defvjp(my_softplus, lambda g, ans, x: g * (1 - np.exp(-ans)))
    """
    VJPS[_key(fn)] = tuple(vjps)


def defkeywords(fn: Any, **positions: int) -> None:
    """Let keyword arguments of ``fn`` be differentiated: ``name=position`` says which positional
    rule of ``fn`` gives the cotangent of the argument passed as ``name=`` (the rule reads it from
    its keyword arguments)."""
    KEYWORD_POSITIONS[_key(fn)] = positions


def keyword_position(fn: Any, name: str) -> int | None:
    """The position of the rule for ``fn``'s keyword argument ``name``, or None."""
    try:
        return KEYWORD_POSITIONS.get(fn, {}).get(name)
    except TypeError:
        return None


def defnondiff(*fns: Any) -> None:
    """Declare that ``fns`` have zero derivative everywhere it exists (comparisons, rounding)."""
    NONDIFF.update(_key(f) for f in fns)


def _key(fn: Any) -> Any:
    try:
        hash(fn)
        return fn
    except TypeError:  # pragma: no cover - unhashable callables cannot be looked up
        return id(fn)


def lookup(fn: Any) -> tuple[Rule | None, ...] | None:
    """The VJP rules of ``fn``, or None."""
    if type(fn) is BuildDict:  # a dict display: each value gets the cotangent of its key
        return tuple(functools.partial(_dict_item_vjp, i, key) for i, key in enumerate(fn.keys))
    try:
        return VJPS.get(fn)
    except TypeError:
        return None


def differentiable(fn: Any) -> bool:
    """Whether derivatives flow through calls of ``fn`` (False for comparisons, floor, len...)."""
    try:
        return fn not in NONDIFF
    except TypeError:
        return True


# ----------------------------------------------------------------------------- symbolic values


class Sym:
    """A value of the code being generated. Operations on it emit IR through its builder."""

    __array_priority__ = 1000

    def __init__(self, builder: Builder, value: Value | None = None, resolve: Callable[[], Value] | None = None,
                 kind: Any = None, shape: Any = None):
        self._b = builder
        self._value = value
        self._resolve = resolve
        self._kind = value.kind if value is not None else kind
        self._shape = value.shape if value is not None else shape
        self.shape_like: Sym | None = None  # a value known to have this one's shape (x for x ** 2)

    @property
    def value(self) -> Value:
        if self._value is None:
            self._value = self._resolve()  # primal values are looked up (and taped) lazily
        return self._value

    @property
    def kind(self) -> Any:
        """SCALAR, an ndim, or None -- known without reading (and so recording) the value."""
        return self._kind

    def __bool__(self) -> bool:
        raise TypeError("a rule used a symbolic value as a Python condition; use np.where")

    def __iter__(self):
        raise TypeError("a rule iterated over a symbolic value; NumPy functions without "
                        "__array_function__ dispatch must be called through apply()")

    # operators
    def __add__(self, o): return apply(operator.add, self, o)
    def __radd__(self, o): return apply(operator.add, o, self)
    def __sub__(self, o): return apply(operator.sub, self, o)
    def __rsub__(self, o): return apply(operator.sub, o, self)
    def __mul__(self, o): return apply(operator.mul, self, o)
    def __rmul__(self, o): return apply(operator.mul, o, self)
    def __truediv__(self, o): return apply(operator.truediv, self, o)
    def __rtruediv__(self, o): return apply(operator.truediv, o, self)
    def __pow__(self, o): return apply(operator.pow, self, o)
    def __rpow__(self, o): return apply(operator.pow, o, self)
    def __matmul__(self, o): return apply(operator.matmul, self, o)
    def __rmatmul__(self, o): return apply(operator.matmul, o, self)
    def __neg__(self): return apply(operator.neg, self)
    def __gt__(self, o): return apply(operator.gt, self, o)
    def __ge__(self, o): return apply(operator.ge, self, o)
    def __lt__(self, o): return apply(operator.lt, self, o)
    def __le__(self, o): return apply(operator.le, self, o)
    def __eq__(self, o): return apply(operator.eq, self, o)  # type: ignore[override]
    def __ne__(self, o): return apply(operator.ne, self, o)  # type: ignore[override]
    def __getitem__(self, index): return apply(operator.getitem, self, index)
    __hash__ = object.__hash__

    @property
    def T(self): return apply(GetAttr("T"), self)
    @property
    def static_shape(self) -> Any:
        """The shape known at compile time (see shapes.py), without reading the value."""
        return self._shape

    @property
    def shape(self): return shape_of(self)
    @property
    def ndim(self): return apply(np.ndim, self)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method != "__call__":
            return NotImplemented
        return apply(ufunc, *inputs, **kwargs)

    def __array_function__(self, func, types, args, kwargs):
        return apply(func, *args, **kwargs)


def apply(fn: Any, *args: Any, **kwargs: Any) -> Sym:
    """Emit ``fn(*args, **kwargs)`` into the code being generated and return its symbol."""
    builder = next(a._b for a in (*args, *kwargs.values()) if isinstance(a, Sym)) \
        if any(isinstance(a, Sym) for a in (*args, *kwargs.values())) else _current[-1]
    values = [as_value(builder, a) for a in args]
    kw = {k: as_value(builder, v) for k, v in kwargs.items()}
    kind = result_kind(fn, [v.kind for v in values])
    return Sym(builder, builder.call(fn, values, kw, hint=None, kind=kind))


_current: list[Builder] = []  # the builder rules emit into when no argument is symbolic


def as_value(builder: Builder, obj: Any) -> Value:
    """The IR value for a rule's operand: symbols, constants, and tuples/lists/slices of them."""
    if isinstance(obj, Sym):
        return obj.value
    if isinstance(obj, Value):
        return obj
    if isinstance(obj, (tuple, list)) and any(isinstance(o, Sym) for o in obj):
        build = BUILD_TUPLE if isinstance(obj, tuple) else BUILD_LIST
        return builder.call(build, [as_value(builder, o) for o in obj])
    if isinstance(obj, slice) and any(isinstance(o, Sym) for o in (obj.start, obj.stop, obj.step)):
        return builder.call(BUILD_SLICE, [as_value(builder, o) for o in (obj.start, obj.stop, obj.step)])
    return builder.const(obj)


def is_scalar(x: Any) -> bool:
    """True for Python numbers and symbols statically known to be Python numbers."""
    return type(x) in (int, float, bool) or (isinstance(x, Sym) and x.kind == SCALAR)


def unbroadcast(g: Any, x: Any, *others: Any) -> Any:
    """Sum ``g`` down to the shape of ``x`` (NumPy broadcasting in reverse).

    Nothing to do where shapes provably match (both scalars, or every other operand a
    scalar); static sums where the shapes are known; a runtime helper otherwise.
    """
    if not enabled("unbroadcast"):
        return apply(runtime.unbroadcast, g, x)
    if is_scalar(x) and is_scalar(g) or others and all(is_scalar(o) for o in others):
        return g
    axes = shapes.unbroadcast_axes(static_shape(x), static_shape(g))
    if axes is None:
        return apply(runtime.unbroadcast, g, x)
    lead, ones = axes
    if lead and not static_shape(x):
        return apply(Method("sum"), g)
    if lead:
        g = apply(Method("sum"), g, axis=lead[0] if len(lead) == 1 else lead)
    if ones:
        g = apply(Method("sum"), g, axis=ones[0] if len(ones) == 1 else ones, keepdims=True)
    return g


def static_shape(x: Any) -> Any:
    """The compile-time shape of a rule operand (symbol or constant), or None."""
    return x.static_shape if isinstance(x, Sym) else np.shape(x)


def shape_of(x: Any) -> Any:
    """``x``'s shape, spelt from the arguments' shapes (``X.shape``) when known statically,
    so that ``x`` itself need not be kept for the backward sweep."""
    if not isinstance(x, Sym):
        return np.shape(x)
    expr = _shape_expr(x._b, x.static_shape)
    if expr is None and x.shape_like is not None:
        return shape_of(x.shape_like)
    return expr if expr is not None else apply(np.shape, x)


def size_of(x: Any) -> Any:
    """``x``'s number of elements, like :func:`shape_of`."""
    if not isinstance(x, Sym):
        return np.size(x)
    shape, b = x.static_shape, x._b
    if shape is not None:
        if shapes.size(shape) is not None:
            return shapes.size(shape)
        for p in b.params:
            if shapes.same(p.shape, shape):
                return apply(GetAttr("size"), Sym(b, p))
        if all(type(d) is int or d.source is not None for d in shape):
            total = 1
            for d in shape:
                total = total * (d if type(d) is int else
                                 apply(operator.getitem, apply(GetAttr("shape"), Sym(b, d.source[0])), d.source[1]))
            return total
    return apply(np.size, x)


def _shape_expr(b: Builder, shape: Any) -> Sym | None:
    if shape is None:
        return None
    if all(type(d) is int for d in shape):
        return Sym(b, b.const(tuple(shape)))
    for p in b.params:
        if shapes.same(p.shape, shape):
            return apply(GetAttr("shape"), Sym(b, p))
    parts = []
    for d in shape:
        if type(d) is int:
            parts.append(d)
        elif d.source is not None:
            param, axis = d.source
            parts.append(apply(operator.getitem, apply(GetAttr("shape"), Sym(b, param)), axis))
        else:
            return None
    value = as_value(b, tuple(parts))
    value.dims = tuple(shape)
    return Sym(b, value)


def sign(x: Any) -> Any:
    return apply(runtime.sign, x) if is_scalar(x) else np.sign(x)


def fn_for(x: Any, scalar_fn: Any, array_fn: Any) -> Callable[..., Sym]:
    """``math.f`` on Python numbers, ``np.f`` on arrays."""
    return (lambda *a: apply(scalar_fn, *a)) if is_scalar(x) else (lambda *a: apply(array_fn, *a))


def cos(x): return fn_for(x, math.cos, np.cos)(x)
def sin(x): return fn_for(x, math.sin, np.sin)(x)
def log(x): return fn_for(x, math.log, np.log)(x)
def sqrt(x): return fn_for(x, math.sqrt, np.sqrt)(x)
def cosh(x): return fn_for(x, math.cosh, np.cosh)(x)
def sinh(x): return fn_for(x, math.sinh, np.sinh)(x)


# ----------------------------------------------------------------------------- operators

defvjp(operator.add, lambda g, ans, x, y: unbroadcast(g, x, y),
       lambda g, ans, x, y: unbroadcast(g, y, x))
defvjp(operator.sub, lambda g, ans, x, y: unbroadcast(g, x, y),
       lambda g, ans, x, y: unbroadcast(-g, y, x))
defvjp(operator.mul, lambda g, ans, x, y: unbroadcast(g * y, x, y),
       lambda g, ans, x, y: unbroadcast(x * g, y, x))
defvjp(operator.truediv, lambda g, ans, x, y: unbroadcast(g / y, x, y),
       lambda g, ans, x, y: unbroadcast(-g * ans / y, y, x))


def times_power_slope(g: Any, x: Any, y: Any, power: Any = operator.pow) -> Any:
    """``g * y * x ** (y - 1)``: ``g`` times d(x ** y)/dx. A constant ``y >= 1`` (or ``y < 0``, where
    ``0 ** y`` is itself infinite) cannot meet ``0 ** negative`` where ``x ** y`` is finite, so it is
    inlined; any other ``y`` goes through runtime.power_slope (0 where ``y == 0``, inf where ``0 < y < 1``)."""
    if type(y) in (int, float) and (y >= 1 or y < 0):
        return g * y * (x ** (y - 1) if power is operator.pow else apply(power, x, y - 1))
    return g * (apply(runtime.power_slope, x, y) if power is operator.pow else apply(runtime.power_slope, x, y, power))


defvjp(operator.pow, lambda g, ans, x, y: unbroadcast(times_power_slope(g, x, y), x, y),
       lambda g, ans, x, y: unbroadcast(g * ans * apply(runtime.log_or_zero, x), y, x))
defvjp(pow, *VJPS[operator.pow])
defvjp(operator.neg, lambda g, ans, x: -g)
defvjp(operator.pos, lambda g, ans, x: g)
defvjp(operator.abs, lambda g, ans, x: g * sign(x))
defvjp(operator.mod, lambda g, ans, x, y: unbroadcast(g, x, y),
       lambda g, ans, x, y: unbroadcast(-g * apply(operator.floordiv, x, y), y, x))  # x // y: numbers stay numbers
defvjp(abs, lambda g, ans, x: g * sign(x))
defvjp(float, lambda g, ans, x: g)


def _winner_vjp(argnum: int, beats: Any, ties: Any) -> Rule:
    """Builtin max/min of two or more numbers: the cotangent goes to the result, the first of
    the winning arguments (Python's choice on ties): argument i wins where it ``beats`` every
    earlier one strictly and ``ties`` (beats or equals) every later one."""
    def vjp(g, ans, *args, **kw):
        if kw or len(args) < 2:
            _unsupported("max/min with one sequence argument or key=/default= (write max(a, b, c))")
        x = args[argnum]
        for j, other in enumerate(args):
            if j != argnum:
                g = g * (beats(x, other) if j < argnum else ties(x, other))
        return g
    return vjp


defvjp(max, *(_winner_vjp(i, operator.gt, operator.ge) for i in range(16)))
defvjp(min, *(_winner_vjp(i, operator.lt, operator.le) for i in range(16)))
defnondiff(operator.lt, operator.le, operator.gt, operator.ge, operator.eq, operator.ne,
           operator.not_, operator.is_, operator.is_not, operator.floordiv, operator.and_,
           operator.or_, operator.xor, operator.invert, round, int, bool, len, range,
           isinstance,
           math.floor, math.ceil, math.trunc, math.isnan, math.isinf, math.isfinite)


def column(v: Any) -> Any:
    """``v[:, None]``: with ``* w`` the outer product of two vectors (cheaper than ``np.outer``)."""
    return v[:, None]


def _matmul_vjp(argnum: int) -> Rule:
    def vjp(g, ans, x, y):
        ranks = (getattr(x, "kind", None), getattr(y, "kind", None))
        if ranks == (2, 2):
            return g @ y.T if argnum == 0 else x.T @ g
        if ranks == (2, 1):
            return column(g) * y if argnum == 0 else g @ x
        if ranks == (1, 2):
            return y @ g if argnum == 0 else column(x) * g
        if ranks == (1, 1):
            return g * y if argnum == 0 else g * x
        return apply(runtime.matmul_vjp, g, x, y, argnum)
    return vjp


def _dot_vjp(argnum: int) -> Rule:
    """np.dot is matmul up to 2-D; beyond, it contracts x's last axis with y's second-to-last."""
    matmul = _matmul_vjp(argnum)

    def vjp(g, ans, x, y):
        ranks = (getattr(x, "kind", None), getattr(y, "kind", None))
        if all(type(r) is int and r <= 2 for r in ranks):
            return matmul(g, ans, x, y)
        return apply(runtime.dot_vjp, g, x, y, argnum)
    return vjp


for _mm in (operator.matmul, np.matmul):
    defvjp(_mm, _matmul_vjp(0), _matmul_vjp(1))
for _dot in (np.dot, Method("dot")):
    defvjp(_dot, _dot_vjp(0), _dot_vjp(1))

# ----------------------------------------------------------------------------- math

defvjp(math.exp, lambda g, ans, x: g * ans)
defvjp(math.expm1, lambda g, ans, x: g * (ans + 1))
defvjp(math.log, lambda g, ans, x, base=None: g / x if base is None else g / (x * apply(math.log, base)),
       lambda g, ans, x, base: -g * ans / (base * apply(math.log, base)))
defvjp(math.log1p, lambda g, ans, x: g / (1 + x))
defvjp(math.log2, lambda g, ans, x: g / (x * math.log(2)))
defvjp(math.log10, lambda g, ans, x: g / (x * math.log(10)))
defvjp(math.sqrt, lambda g, ans, x: g / (2 * ans))
defvjp(math.sin, lambda g, ans, x: g * cos(x))
defvjp(math.cos, lambda g, ans, x: -g * sin(x))
defvjp(math.tan, lambda g, ans, x: g * (1 + ans ** 2))
defvjp(math.asin, lambda g, ans, x: g / sqrt(1 - x ** 2))
defvjp(math.acos, lambda g, ans, x: -g / sqrt(1 - x ** 2))
defvjp(math.atan, lambda g, ans, x: g / (1 + x ** 2))
defvjp(math.sinh, lambda g, ans, x: g * cosh(x))
defvjp(math.cosh, lambda g, ans, x: g * sinh(x))
defvjp(math.tanh, lambda g, ans, x: g * (1 - ans ** 2))
defvjp(math.atan2, lambda g, ans, y, x: g * x / (x ** 2 + y ** 2),
       lambda g, ans, y, x: -g * y / (x ** 2 + y ** 2))
defvjp(math.hypot, lambda g, ans, x, y: g * x / ans, lambda g, ans, x, y: g * y / ans)
defvjp(math.pow, lambda g, ans, x, y: times_power_slope(g, x, y, math.pow),
       lambda g, ans, x, y: g * ans * apply(runtime.log_or_zero, x))
defvjp(math.fabs, lambda g, ans, x: g * sign(x))
defvjp(math.erf, lambda g, ans, x: g * (2 / math.sqrt(math.pi)) * apply(math.exp, -x ** 2))

# ----------------------------------------------------------------------------- numpy elementwise

defvjp(np.exp, lambda g, ans, x: g * ans)
defvjp(np.expm1, lambda g, ans, x: g * (ans + 1))
defvjp(np.log, lambda g, ans, x: g / x)
defvjp(np.log1p, lambda g, ans, x: g / (1 + x))
defvjp(np.sqrt, lambda g, ans, x: g / (2 * ans))
defvjp(np.square, lambda g, ans, x: g * 2 * x)
defvjp(np.sin, lambda g, ans, x: g * np.cos(x))
defvjp(np.cos, lambda g, ans, x: -g * np.sin(x))
defvjp(np.tan, lambda g, ans, x: g * (1 + ans ** 2))
defvjp(np.arctan, lambda g, ans, x: g / (1 + x ** 2))
defvjp(np.sinh, lambda g, ans, x: g * np.cosh(x))
defvjp(np.cosh, lambda g, ans, x: g * np.sinh(x))
defvjp(np.tanh, lambda g, ans, x: g * (1 - ans ** 2))
defvjp(np.abs, lambda g, ans, x: g * np.sign(x))
defvjp(np.negative, lambda g, ans, x: -g)
defvjp(np.reciprocal, lambda g, ans, x: -g * ans ** 2)
defvjp(np.add, *VJPS[operator.add])
defvjp(np.subtract, *VJPS[operator.sub])
defvjp(np.multiply, *VJPS[operator.mul])
defvjp(np.divide, *VJPS[operator.truediv])
defvjp(np.power, *VJPS[operator.pow])
# Ties split the cotangent evenly, as JAX does (winner_mask: 1 above, 0.5 on ties, 0 below).
defvjp(np.maximum, lambda g, ans, x, y: unbroadcast(g * apply(runtime.winner_mask, x, y), x),
       lambda g, ans, x, y: unbroadcast(g * apply(runtime.winner_mask, y, x), y))
defvjp(np.minimum, lambda g, ans, x, y: unbroadcast(g * apply(runtime.winner_mask, y, x), x),
       lambda g, ans, x, y: unbroadcast(g * apply(runtime.winner_mask, x, y), y))
defvjp(np.where, None, lambda g, ans, c, x, y: unbroadcast(np.where(c, g, 0.0), x),
       lambda g, ans, c, x, y: unbroadcast(np.where(c, 0.0, g), y))
defnondiff(np.sign, np.heaviside, runtime.winner_mask, np.floor, np.ceil, np.round, np.rint, np.trunc,
           np.greater, np.less,
           np.greater_equal, np.less_equal, np.equal, np.not_equal, np.logical_and,
           np.logical_or, np.logical_not, np.isnan, np.isinf, np.isfinite, np.argmax, np.argmin,
           np.zeros_like, np.ones_like, np.shape, np.ndim, np.size, np.floor_divide,
           GetAttr("shape"), GetAttr("ndim"), GetAttr("size"), GetAttr("dtype"),
           Method("argmax"), Method("argmin"))

# ----------------------------------------------------------------------------- reductions


def _sum_vjp(g, ans, x, axis=None, dtype=None, out=None, keepdims=False, **_):
    if axis is not None and not keepdims:
        g = np.expand_dims(g, axis)
    return _spread(g, x)


def _spread(g, x):
    """``g`` broadcast to ``x``'s shape (``np.full`` when it is a scalar: much cheaper)."""
    if shapes.same(static_shape(g), static_shape(x)):
        return g
    if static_shape(g) == ():
        return apply(np.full, shape_of(x), g)
    return np.broadcast_to(g, shape_of(x))


def _mean_vjp(g, ans, x, axis=None, dtype=None, out=None, keepdims=False, **_):
    if axis is None:
        return _spread(g / size_of(x), x)
    return _sum_vjp(g, ans, x, axis, keepdims=keepdims) / (size_of(x) / size_of(ans))


defvjp(np.sum, _sum_vjp)
defvjp(np.mean, _mean_vjp)
defvjp(Method("sum"), lambda g, ans, x, axis=None, **kw: _sum_vjp(g, ans, x, axis, **kw))
defvjp(Method("mean"), lambda g, ans, x, axis=None, **kw: _mean_vjp(g, ans, x, axis, **kw))
defvjp(GetAttr("T"), lambda g, ans, x: g.T)
NUMPY_2 = np.lib.NumpyVersion(np.__version__) >= "2.0.0"
if NUMPY_2:  # x.mT, np.matrix_transpose, np.linalg.matrix_transpose
    for _fn in (GetAttr("mT"), np.matrix_transpose, np.linalg.matrix_transpose):
        defvjp(_fn, lambda g, ans, x: np.swapaxes(g, -1, -2))


def _untranspose(g: Any, x: Any, axes: Any) -> Any:
    """The cotangent of ``x`` in ``np.transpose(x, axes)``: ``g`` under the inverse permutation
    (of the axes taken modulo ``x.ndim``: ``(-1, 0, 1)`` is ``(2, 0, 1)``)."""
    if axes is None:
        return np.transpose(g)
    ndim = _ndim(x)
    if isinstance(axes, (tuple, list)) and all(type(a) is int for a in axes) and ndim is not None:
        return np.transpose(g, tuple(int(i) for i in np.argsort([a % ndim for a in axes])))
    return apply(runtime.untranspose, g, axes)


def _order(args: tuple, kw: dict, position: int) -> Any:
    """The ``order=`` of a reshaping call, given positionally at ``args[position]`` or by keyword."""
    return args[position] if len(args) > position else kw.get("order", "C")


def _reshape_back(g: Any, x: Any, order: Any = "C") -> Any:
    """The cotangent of ``x`` in any op that only reshapes it, reading elements in ``order``:
    ``g`` reshaped back to ``x``'s shape in the same order."""
    if order is None or order == "C":
        return np.reshape(g, shape_of(x))
    if order == "F":
        return np.reshape(g, shape_of(x), order="F")
    return apply(runtime.reshape_back, g, x, order)  # 'A', 'K': by x's memory layout


defvjp(np.transpose, lambda g, ans, x, axes=None: _untranspose(g, x, axes))
defvjp(Method("reshape"), lambda g, ans, x, *shape, **kw: _reshape_back(g, x, kw.get("order", "C")))
defvjp(np.reshape, lambda g, ans, x, *args, **kw: _reshape_back(g, x, _order(args, kw, 1)))
for _fn in (Method("copy"), np.copy):
    defvjp(_fn, lambda g, ans, x, *args, **kw: g)


def _index_vjp(g, ans, x, index):
    """The items of ``np.r_[a, b, ...]`` and ``np.c_[a, b, ...]`` (an index of np.r_): the pieces of
    ``g``; no other index is differentiable."""
    if x is not np.r_ and x is not np.c_:
        _unsupported("differentiating an index (other than the items of np.r_[...] or np.c_[...])")
    return apply(runtime.concatenator_vjp, g, "r" if x is np.r_ else "c", index)


defvjp(operator.getitem, lambda g, ans, x, index: apply(runtime.getitem_vjp, g, x, index), _index_vjp)
# a[i] = v: the overwritten part of a gets no gradient; v gets what reached a[i]
# (a list or dict, or an argument that may be one, has a cotangent {position: cotangent})
defvjp(runtime.setitem, lambda g, ans, a, index, value: apply(runtime.setitem, g, index, 0.0) if _known_ndarray(a)
       else apply(runtime.setitem_base_vjp, g, a, index), None,
       lambda g, ans, a, index, value: apply(runtime.setitem_item_vjp, g, a, index, value) if not _known_ndarray(a)
       else unbroadcast(g[index], value) if _basic_index(index)
       else apply(runtime.setitem_value_vjp, g, index, value))


def _known_ndarray(x: Any) -> bool:
    """Known at compile time to be an ndarray."""
    return isinstance(x, np.ndarray) or (isinstance(x, Sym) and type(x.kind) is int)


def _basic_index(index: Any) -> bool:
    """An index known at compile time to pick each element at most once."""
    if isinstance(index, Sym):
        return index.value.integer
    return runtime.is_basic_index(index)

# ============================================================================= NumPy, broadly
# Rules for the NumPy functions people write most. Each is exact where the function
# is differentiable; the comment says what happens at kinks and ties.


def _unsupported(what: str) -> Any:
    from .errors import NoRuleError
    raise NoRuleError(f"{what} is not supported")


def _positional(name: str, given: tuple, names: tuple) -> dict:
    """Optional positional arguments of a NumPy function, by name."""
    if len(given) > len(names):
        _unsupported(f"{name} with {len(given)} extra positional arguments")
    return dict(zip(names, given))


def _ndim(x: Any) -> Any:
    """``x``'s number of axes when known at compile time (its kind, or its static shape), else None."""
    if not isinstance(x, Sym):
        return np.ndim(x)
    if type(x.kind) is int:
        return x.kind
    return len(x.static_shape) if x.static_shape is not None else None


LN2, LN10 = math.log(2.0), math.log(10.0)

# ----------------------------------------------------------------------------- elementwise, unary

defvjp(np.exp2, lambda g, ans, x: g * ans * LN2)
defvjp(np.log2, lambda g, ans, x: g / (x * LN2))
defvjp(np.log10, lambda g, ans, x: g / (x * LN10))
defvjp(np.cbrt, lambda g, ans, x: g / (3 * ans ** 2))  # infinite at 0, as d/dx x**(1/3)
defvjp(np.positive, lambda g, ans, x: g)
defvjp(np.arcsin, lambda g, ans, x: g / np.sqrt(1 - x ** 2))
defvjp(np.arccos, lambda g, ans, x: -g / np.sqrt(1 - x ** 2))
defvjp(np.arcsinh, lambda g, ans, x: g / np.sqrt(x ** 2 + 1))
defvjp(np.arccosh, lambda g, ans, x: g / np.sqrt(x ** 2 - 1))
defvjp(np.arctanh, lambda g, ans, x: g / (1 - x ** 2))
defvjp(np.fabs, lambda g, ans, x: g * np.sign(x))  # 0 at the kink x == 0 (as np.abs)
defvjp(np.sinc, lambda g, ans, x: g * apply(runtime.sinc_grad, x, ans))
defvjp(np.deg2rad, lambda g, ans, x: g * (math.pi / 180))
defvjp(np.radians, lambda g, ans, x: g * (math.pi / 180))
defvjp(np.rad2deg, lambda g, ans, x: g * (180 / math.pi))
defvjp(np.degrees, lambda g, ans, x: g * (180 / math.pi))
defnondiff(np.fix, np.around, np.signbit, np.isclose, np.allclose, np.array_equal, np.argsort,
           np.nonzero, np.flatnonzero, np.count_nonzero, np.searchsorted, np.all, np.any,
           np.logical_xor, Method("round"), Method("all"), Method("any"), Method("argsort"),
           Method("nonzero"), runtime.fmax_share, runtime.fmin_share)

# ----------------------------------------------------------------------------- elementwise, binary

defvjp(np.true_divide, *VJPS[operator.truediv])  # np.true_divide is np.divide in NumPy >= 1.x
defvjp(np.float_power, lambda g, ans, x, y: unbroadcast(times_power_slope(g, x, y, np.float_power), x, y),
       lambda g, ans, x, y: unbroadcast(g * ans * apply(runtime.log_or_zero, x), y, x))
defvjp(np.hypot, lambda g, ans, x, y: unbroadcast(g * x / ans, x, y),
       lambda g, ans, x, y: unbroadcast(g * y / ans, y, x))
defvjp(np.arctan2, lambda g, ans, y, x: unbroadcast(g * x / (x ** 2 + y ** 2), y, x),
       lambda g, ans, y, x: unbroadcast(-g * y / (x ** 2 + y ** 2), x, y))
defvjp(np.logaddexp, lambda g, ans, x, y: unbroadcast(g * np.exp(x - ans), x, y),
       lambda g, ans, x, y: unbroadcast(g * np.exp(y - ans), y, x))
defvjp(np.logaddexp2, lambda g, ans, x, y: unbroadcast(g * np.exp2(x - ans), x, y),
       lambda g, ans, x, y: unbroadcast(g * np.exp2(y - ans), y, x))
# fmax/fmin: as maximum/minimum (ties split evenly), except that a NaN operand loses outright,
# as NumPy ignores it; where both are NaN neither gets anything.
defvjp(np.fmax, lambda g, ans, x, y: unbroadcast(g * apply(runtime.fmax_share, x, y), x, y),
       lambda g, ans, x, y: unbroadcast(g * apply(runtime.fmax_share, y, x), y, x))
defvjp(np.fmin, lambda g, ans, x, y: unbroadcast(g * apply(runtime.fmin_share, x, y), x, y),
       lambda g, ans, x, y: unbroadcast(g * apply(runtime.fmin_share, y, x), y, x))


def _clip_bounds(args: tuple, kw: dict) -> tuple:
    bounds = _positional("np.clip", args, ("a_min", "a_max", "out"))
    lo = bounds.get("a_min", kw.get("a_min", kw.get("min")))
    hi = bounds.get("a_max", kw.get("a_max", kw.get("max")))
    return lo, hi


def _clip_vjp(argnum: int) -> Rule:
    """np.clip(x, lo, hi) = minimum(maximum(x, lo), hi). The cotangent passes to ``x`` where
    ``lo < x < hi`` strictly, to ``lo`` where ``x <= lo`` (and ``lo < hi``), to ``hi`` elsewhere;
    a bound of None takes nothing."""
    def vjp(g, ans, x, *args, **kw):
        lo, hi = _clip_bounds(args, kw)
        inside = (x > lo) if hi is None else (x < hi) if lo is None else (x > lo) * (x < hi)
        if argnum == 0:
            return unbroadcast(g * inside, x, *(b for b in (lo, hi) if b is not None))
        if argnum == 1:
            below = (x <= lo) if hi is None else (x <= lo) * (lo < hi)
            return unbroadcast(g * below, lo, x, *(() if hi is None else (hi,)))
        if lo is None:
            above = x >= hi
        else:
            above = 1 - inside - (x <= lo) * (lo < hi)
        return unbroadcast(g * above, hi, x, *(() if lo is None else (lo,)))
    return vjp


for _clip in (np.clip, Method("clip")):
    defvjp(_clip, _clip_vjp(0), _clip_vjp(1), _clip_vjp(2))
defkeywords(np.clip, a_min=1, min=1, a_max=2, max=2)
defkeywords(Method("clip"), min=1, max=2)

# ----------------------------------------------------------------------------- reductions


def _reduction_args(name: str, args: tuple, kw: dict, names: tuple) -> dict:
    """The keyword view of a reduction's optional arguments (``axis``, ``keepdims``...)."""
    opts = dict(_positional(name, args, names), **kw)
    for unsupported in ("where", "out"):
        if opts.get(unsupported) is not None:
            _unsupported(f"{name} with {unsupported}=")
    return opts


def _expand(g: Any, axis: Any, keepdims: Any) -> Any:
    """A reduction's cotangent (or result) with the reduced axes put back as size 1."""
    if axis is None or keepdims:
        return g
    return np.expand_dims(g, axis)


def _prod_vjp(name: str) -> Rule:
    """The product of the other elements of each group, exact at zeros (runtime.prod_vjp)."""
    def vjp(g, ans, x, *args, **kw):
        opts = _reduction_args(name, args, kw, ("axis", "dtype", "out", "keepdims"))
        return apply(runtime.prod_vjp, g, x, opts.get("axis"), bool(opts.get("keepdims", False)))
    return vjp


def _extremum_vjp(name: str) -> Rule:
    """max/min: the cotangent goes to the maximal (minimal) elements, split evenly among ties
    (the JAX/autograd convention; for x = [1, 3, 3] the gradient of max is [0, .5, .5])."""
    def vjp(g, ans, x, *args, **kw):
        opts = _reduction_args(name, args, kw, ("axis", "out", "keepdims", "initial", "where"))
        if opts.get("initial") is not None:
            _unsupported(f"{name} with initial=")
        axis, keepdims = opts.get("axis"), opts.get("keepdims", False)
        g, ans = _expand(g, axis, keepdims), _expand(ans, axis, keepdims)
        mask = x == ans
        return g * mask / np.sum(mask, axis=axis, keepdims=True)
    return vjp


def _moments(name: str, args: tuple, kw: dict) -> tuple:
    opts = _reduction_args(name, args, kw, ("axis", "dtype", "out", "ddof", "keepdims"))
    ddof = opts.get("ddof", 0) if opts.get("correction") is None else opts["correction"]
    return opts.get("axis"), opts.get("keepdims", False), ddof


def _centred(x: Any, ans: Any, axis: Any, ddof: Any) -> tuple:
    """``x`` minus its mean over ``axis`` (kept as size-1 axes), and the divisor ``N - ddof``."""
    mean = np.mean(x, axis=axis, keepdims=True)
    n = size_of(x) / size_of(ans)
    return x - mean, (n - ddof if type(ddof) is not int or ddof else n)


def _var_vjp(name: str) -> Rule:
    """d var = 2 (x - mean) / (N - ddof)."""
    def vjp(g, ans, x, *args, **kw):
        axis, keepdims, ddof = _moments(name, args, kw)
        centred, n = _centred(x, ans, axis, ddof)
        return _expand(g, axis, keepdims) * 2 * centred / n
    return vjp


def _std_vjp(name: str) -> Rule:
    """d std = (x - mean) / ((N - ddof) std); 0 where std == 0 (one element, or all equal: x - mean
    is 0 there too; like abs at 0), not NaN."""
    def vjp(g, ans, x, *args, **kw):
        axis, keepdims, ddof = _moments(name, args, kw)
        centred, n = _centred(x, ans, axis, ddof)
        ans = _expand(ans, axis, keepdims)
        return _expand(g, axis, keepdims) * centred / (n * np.where(ans == 0, 1.0, ans))
    return vjp


def _cumsum_vjp(name: str) -> Rule:
    def vjp(g, ans, x, *args, **kw):
        opts = _reduction_args(name, args, kw, ("axis", "dtype", "out"))
        return apply(runtime.cumsum_vjp, g, x, opts.get("axis"))
    return vjp


def _cumprod_vjp(name: str) -> Rule:
    """d cumprod: the reversed cumulative sum of g * ans, divided by x; exact with zeros
    (runtime.cumprod_vjp)."""
    def vjp(g, ans, x, *args, **kw):
        opts = _reduction_args(name, args, kw, ("axis", "dtype", "out"))
        return apply(runtime.cumprod_vjp, g, x, ans, opts.get("axis"))
    return vjp


for _name, _fn in (("np.prod", np.prod), ("x.prod", Method("prod"))):
    defvjp(_fn, _prod_vjp(_name))
for _name, _fn in (("np.max", np.max), ("np.amax", np.amax), ("np.min", np.min), ("np.amin", np.amin),
                   ("np.nanmax", np.nanmax), ("np.nanmin", np.nanmin),  # (NaN never equals the result)
                   ("x.max", Method("max")), ("x.min", Method("min"))):
    defvjp(_fn, _extremum_vjp(_name))
for _name, _fn in (("np.var", np.var), ("x.var", Method("var"))):
    defvjp(_fn, _var_vjp(_name))
for _name, _fn in (("np.std", np.std), ("x.std", Method("std"))):
    defvjp(_fn, _std_vjp(_name))
for _name, _fn in (("np.cumsum", np.cumsum), ("x.cumsum", Method("cumsum"))):
    defvjp(_fn, _cumsum_vjp(_name))
for _name, _fn in (("np.cumprod", np.cumprod), ("x.cumprod", Method("cumprod"))):
    defvjp(_fn, _cumprod_vjp(_name))


def _average_vjp(argnum: int) -> Rule:
    """np.average: the mean without weights; with weights w, d/da = w / sum(w) and
    d/dw = (a - average) / sum(w) (1-D weights apply along ``axis``)."""
    def vjp(g, ans, a, *args, **kw):
        opts = dict(_positional("np.average", args, ("axis", "weights", "returned")), **kw)
        if opts.get("returned"):
            _unsupported("np.average with returned=True (a tuple result)")
        axis, weights, keepdims = opts.get("axis"), opts.get("weights"), opts.get("keepdims", False)
        if weights is None:
            return _mean_vjp(g, ans, a, axis, keepdims=keepdims)
        return apply(runtime.average_vjp, g, a, axis, weights, bool(keepdims), ans, argnum)
    return vjp


defvjp(np.average, _average_vjp(0), None, _average_vjp(2))
defkeywords(np.average, weights=2)


def _norm_vjp(g, ans, x, *args, **kw):
    """np.linalg.norm: vector norms (ord None, 2, 1, inf, -inf, 0, any p) over the whole vector
    or ``axis``; the Frobenius norm of matrices (ord None or 'fro'), and the other matrix norms
    ('nuc', 2, -2, 1, -1, inf, -inf) through runtime.matrix_norm_vjp. Not differentiable where the
    norm is 0 (gives NaN) and, for ord inf, ties split evenly."""
    opts = dict(_positional("np.linalg.norm", args, ("ord", "axis", "keepdims")), **kw)
    ord_, axis, keepdims = opts.get("ord"), opts.get("axis"), opts.get("keepdims", False)
    ndim = _ndim(x)
    known = not any(isinstance(v, Sym) or isinstance(v, (tuple, list)) and any(isinstance(a, Sym) for a in v)
                    for v in (ord_, axis, keepdims))
    if not known or axis is None and ord_ is not None and ndim is None:  # decided at run time
        return apply(runtime.norm_vjp, g, x, ans, ord_, axis, keepdims)
    axes = (axis,) if isinstance(axis, int) else axis
    matrix = (len(axes) == 2) if axes is not None else (ord_ is not None and ndim == 2)
    if matrix and ord_ not in (None, "fro"):
        return apply(runtime.matrix_norm_vjp, g, x, ans, ord_, axis, keepdims)
    g, ans = _expand(g, axis, keepdims), _expand(ans, axis, keepdims)
    if ord_ in (None, 2, "fro"):
        return g * x / ans
    if ord_ == 1:
        return g * np.sign(x)
    if ord_ == 0:
        return g * 0.0 * x
    if ord_ in (math.inf, -math.inf):
        return apply(runtime.norm_inf_vjp, g, x, ans, axes, True)
    return g * x * np.abs(x) ** (ord_ - 2) / ans ** (ord_ - 1)


defvjp(np.linalg.norm, _norm_vjp)

# ----------------------------------------------------------------------------- shape ops


for _fn in (np.squeeze, Method("squeeze"), np.expand_dims, np.atleast_1d, np.atleast_2d, np.atleast_3d):
    defvjp(_fn, lambda g, ans, x, *args, **kw: _reshape_back(g, x))
for _fn in (np.ravel, Method("ravel"), Method("flatten")):  # order positionally or by keyword
    defvjp(_fn, lambda g, ans, x, *args, **kw: _reshape_back(g, x, _order(args, kw, 0)))
defvjp(np.swapaxes, lambda g, ans, x, axis1, axis2: np.swapaxes(g, axis1, axis2))
defvjp(Method("swapaxes"), lambda g, ans, x, axis1, axis2: np.swapaxes(g, axis1, axis2))
defvjp(np.moveaxis, lambda g, ans, x, source, destination: np.moveaxis(g, destination, source))


def _method_transpose(g, ans, x, *axes):
    """x.transpose(), x.transpose(1, 0, 2), x.transpose((1, 0, 2)), x.transpose([1, 0])."""
    if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
        axes = axes[0]
    if not axes:
        return np.transpose(g)
    if len(axes) == 1 and isinstance(axes[0], Sym):  # one value: a sequence of axes (or a vector's 0)
        return apply(runtime.untranspose, g, axes[0])
    return _untranspose(g, x, tuple(axes))


defvjp(Method("transpose"), _method_transpose)
defvjp(np.broadcast_to, lambda g, ans, x, shape, **kw: unbroadcast(g, x))
defvjp(np.tile, lambda g, ans, x, reps: apply(runtime.tile_vjp, g, x, reps))


def _repeat_vjp(g, ans, x, repeats, axis=None):
    return apply(runtime.repeat_vjp, g, x, repeats, axis)


defvjp(np.repeat, _repeat_vjp)
defvjp(Method("repeat"), _repeat_vjp)
defvjp(np.flip, lambda g, ans, x, axis=None: np.flip(g, axis))
defvjp(np.fliplr, lambda g, ans, x: np.fliplr(g))
defvjp(np.flipud, lambda g, ans, x: np.flipud(g))


def _roll_vjp(g, ans, x, shift, axis=None):
    back = np.negative(shift) if isinstance(shift, Sym) else (
        tuple(-s for s in shift) if isinstance(shift, (tuple, list)) else -shift)
    return np.roll(g, back, axis)


defvjp(np.roll, _roll_vjp)


def _pad_vjp(g, ans, x, pad_width, *args, **kw):
    """Constant mode (the default): the cotangent is the middle of ``g``; the modes that copy
    elements of ``x`` into the border also add the cotangents of the copies (runtime.pad_vjp)."""
    mode = args[0] if args else kw.get("mode", "constant")
    reflect_type = kw.get("reflect_type", "even")
    if isinstance(mode, str) and mode not in ("constant", "empty", *runtime.PAD_COPYING_MODES):
        _unsupported(f"np.pad with mode={mode!r}")
    if isinstance(reflect_type, str) and reflect_type != "even":
        _unsupported(f"np.pad with reflect_type={reflect_type!r}")
    if isinstance(mode, str) and mode in ("constant", "empty"):
        return apply(runtime.pad_vjp, g, x, pad_width)
    return apply(runtime.pad_vjp, g, x, pad_width, mode, reflect_type)


defvjp(np.pad, _pad_vjp)
# (of a vector v, triu gives the matrix of rows v, masked: its cotangent is the columns' sum)
defvjp(np.triu, lambda g, ans, x, k=0: unbroadcast(np.triu(g, k), x))
defvjp(np.tril, lambda g, ans, x, k=0: unbroadcast(np.tril(g, k), x))
# Sorting permutes: the cotangent goes back through the permutation (np.argsort of x). Tied
# elements have equal values, so which of them gets which tied cotangent does not matter.
defvjp(np.sort, lambda g, ans, x, axis=-1, **kw: apply(runtime.sort_vjp, g, x, axis))


def _diagonal_vjp(g, ans, x, offset=0, axis1=0, axis2=1):
    return apply(runtime.diagonal_vjp, g, x, offset, axis1, axis2)


def _trace_vjp(g, ans, x, offset=0, axis1=0, axis2=1, *args, **kw):
    if (args and args[0] is not None) or kw.get("dtype") is not None:
        _unsupported("np.trace with dtype=")
    return apply(runtime.trace_vjp, g, x, offset, axis1, axis2)


for _fn in (np.diagonal, Method("diagonal")):
    defvjp(_fn, _diagonal_vjp)
for _fn in (np.trace, Method("trace")):
    defvjp(_fn, _trace_vjp)
defvjp(np.diag, lambda g, ans, x, k=0: np.diagonal(g, k) if _ndim(x) == 1 else apply(runtime.diag_vjp, g, x, k))


# ----------------------------------------------------------------------------- products

defvjp(np.outer, lambda g, ans, a, b: g @ b if _ndim(a) == 1 and _ndim(b) == 1
       else np.reshape(g @ np.ravel(b), shape_of(a)),
       lambda g, ans, a, b: a @ g if _ndim(a) == 1 and _ndim(b) == 1
       else np.reshape(np.ravel(a) @ g, shape_of(b)))
defvjp(np.inner, lambda g, ans, a, b: apply(runtime.inner_vjp, g, 0, a, b),
       lambda g, ans, a, b: apply(runtime.inner_vjp, g, 1, a, b))
defvjp(np.vdot, lambda g, ans, a, b: g * b if shapes.same(static_shape(a), static_shape(b))
       else np.reshape(g * b, shape_of(a)),
       lambda g, ans, a, b: g * a if shapes.same(static_shape(a), static_shape(b))
       else np.reshape(g * a, shape_of(b)))
defvjp(np.kron, lambda g, ans, a, b: apply(runtime.kron_vjp, g, 0, a, b),
       lambda g, ans, a, b: apply(runtime.kron_vjp, g, 1, a, b))
defvjp(np.tensordot, lambda g, ans, a, b, axes=2: apply(runtime.tensordot_vjp, g, 0, a, b, axes),
       lambda g, ans, a, b, axes=2: apply(runtime.tensordot_vjp, g, 1, a, b, axes))


def _einsum_vjp(argnum: int) -> Rule:
    """np.einsum('subscripts', *operands), explicit or implicit output, '...' included: the
    einsum of g with the other operands into this operand's subscripts (runtime.einsum_vjp)."""
    def vjp(g, ans, subscripts, *operands, **kw):
        if not isinstance(subscripts, (str, Sym)):
            _unsupported("np.einsum without a subscripts string (the operand-list form)")
        return apply(runtime.einsum_vjp, g, argnum, subscripts, *operands)
    return vjp


defvjp(np.einsum, None, *(_einsum_vjp(i) for i in range(16)))

# ----------------------------------------------------------------------------- linear algebra


def _mT(a: Any) -> Any:
    """The matrix transpose of ``a`` (of each matrix of a stack)."""
    return a.T if _ndim(a) == 2 else np.swapaxes(a, -1, -2)


# d inv(A) = -inv(A) dA inv(A), so dA = -inv(A)^T g inv(A)^T.
defvjp(np.linalg.inv, lambda g, ans, a: -(_mT(ans) @ g @ _mT(ans)))


def _solve_vjp(argnum: int) -> Rule:
    """x = solve(A, b): db = solve(A^T, g), dA = -db x^T."""
    def vjp(g, ans, a, b):
        if _ndim(a) == 2 and _ndim(b) in (1, 2):
            gb = np.linalg.solve(a.T, g)
            if argnum == 1:
                return gb
            return -np.outer(gb, ans) if _ndim(b) == 1 else -(gb @ ans.T)
        return apply(runtime.solve_vjp, g, a, ans, argnum, b)
    return vjp


defvjp(np.linalg.solve, _solve_vjp(0), _solve_vjp(1))


def _det_vjp(g, ans, a):
    """d det(A) = det(A) inv(A)^T (A must be invertible)."""
    if _ndim(a) == 2:
        return g * ans * np.linalg.inv(a).T
    return np.expand_dims(g * ans, (-2, -1)) * np.swapaxes(np.linalg.inv(a), -1, -2)


defvjp(np.linalg.det, _det_vjp)
defvjp(np.linalg.cholesky, lambda g, ans, a, **kw: apply(runtime.cholesky_vjp, g, ans, kw["upper"])
       if "upper" in kw else apply(runtime.cholesky_vjp, g, ans))
# Decompositions (runtime.*_vjp): distinct eigenvalues / singular values; a tuple result's
# cotangent is {position: cotangent}.
defvjp(np.linalg.pinv, lambda g, ans, a, *args, **kw: apply(runtime.pinv_vjp, g, a, ans))
defvjp(np.linalg.eigh, lambda g, ans, a, *args, **kw: apply(runtime.eigh_vjp, g, a, ans))
defvjp(np.linalg.eigvalsh, lambda g, ans, a, *args, **kw: apply(runtime.eigh_vjp, g, a))
defvjp(np.linalg.eig, lambda g, ans, a: apply(runtime.eig_vjp, g, a, ans))
defvjp(np.linalg.eigvals, lambda g, ans, a: apply(runtime.eig_vjp, g, a))


def _svd_vjp(g, ans, a, full_matrices=True, compute_uv=True, hermitian=False):
    """u, s, vh = svd(a, full_matrices=False) (full matrices only when square), or s alone."""
    return apply(runtime.svd_vjp, g, a, ans) if compute_uv else apply(runtime.svd_vjp, g, a)


def _qr_vjp(g, ans, a, mode="reduced"):
    if mode == "r":
        return apply(runtime.qr_r_vjp, g, a)
    if mode != "reduced":
        _unsupported(f"np.linalg.qr with mode={mode!r}")
    return apply(runtime.qr_vjp, g, a, ans)


defvjp(np.linalg.svd, _svd_vjp)
if hasattr(np.linalg, "svdvals"):
    defvjp(np.linalg.svdvals, lambda g, ans, a: apply(runtime.svd_vjp, g, a))
defvjp(np.linalg.qr, _qr_vjp)
for _fn in (np.vecdot, np.linalg.vecdot) if NUMPY_2 else ():
    defvjp(_fn, lambda g, ans, x, y, **kw: apply(runtime.vecdot_vjp, g, x, y, kw.get("axis", -1)),
           lambda g, ans, x, y, **kw: apply(runtime.vecdot_vjp, g, y, x, kw.get("axis", -1)))
defvjp(np.linalg.matrix_power, lambda g, ans, a, n: apply(runtime.matrix_power_vjp, g, a, n))
defvjp(np.linalg.multi_dot, lambda g, ans, arrays, **kw: apply(runtime.multi_dot_vjp, g, arrays))
defvjp(np.linalg.lstsq, lambda g, ans, a, b, *args, **kw: apply(runtime.lstsq_vjp, g, 0, a, b, ans),
       lambda g, ans, a, b, *args, **kw: apply(runtime.lstsq_vjp, g, 1, a, b, ans))


# ----------------------------------------------------------------------------- more NumPy functions
# Helpers with loops or index bookkeeping live in runtime (one place for the math).


def _diff_vjp(g, ans, a, n=1, axis=-1, **kw):
    if kw:
        _unsupported("np.diff with prepend= or append=")
    return apply(runtime.diff_vjp, g, n, axis, shape_of(a))


def _quantile_vjp(name: str, percent: bool = False) -> Rule:
    """np.quantile / np.percentile (q / 100) / np.median (q = 0.5): linear interpolation only."""
    def vjp(g, ans, a, *args, **kw):
        names = ("axis", "out", "overwrite_input", "keepdims") if name == "np.median" else \
            ("q", "axis", "out", "overwrite_input", "method", "keepdims")
        opts = dict(_positional(name, args, names), **kw)
        if opts.get("out") is not None or opts.get("method", "linear") != "linear":
            _unsupported(f"{name} with out= or a method other than 'linear'")
        q = 0.5 if name == "np.median" else opts["q"]
        return apply(runtime.quantile_vjp, g, a, q, opts.get("axis"), bool(opts.get("keepdims", False)), percent)
    return vjp


def _interp_vjp(argnum: int) -> Rule:
    def vjp(g, ans, x, xp, fp, left=None, right=None, period=None):
        if left is not None or right is not None or period is not None:
            _unsupported("np.interp with left=, right= or period=")
        return apply(runtime.interp_vjp, g, argnum, x, xp, fp)
    return vjp


def _nanmean_vjp(g, ans, x, axis=None, dtype=None, out=None, keepdims=False, **kw):
    mask = apply(runtime.nan_mask, x)
    return _expand(g, axis, keepdims) * mask / np.sum(mask, axis=axis, keepdims=True)


def _linspace_vjp(argnum: int) -> Rule:
    def vjp(g, ans, start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0):
        if retstep:
            _unsupported("np.linspace with retstep=True")
        return apply(runtime.linspace_vjp, g, argnum, start, stop, num, endpoint, axis)
    return vjp


def _gradient_vjp(g, ans, f, *varargs, axis=None, edge_order=1):
    if (axis is not None and not isinstance(axis, int)) or (axis is None and _ndim(f) not in (1, None)):
        _unsupported("np.gradient of an n-D array without one int axis= (a list result)")
    return apply(runtime.gradient_vjp, g, f, *varargs, axis=axis, edge_order=edge_order)


defvjp(np.diff, _diff_vjp)
def _take_vjp(g, ans, a, indices, axis=None, out=None, mode="raise"):
    if out is not None or mode != "raise":
        _unsupported("np.take with out= or mode= (indices out of range)")
    return apply(runtime.take_vjp, g, a, indices, axis)


for _fn in (np.take, Method("take")):
    defvjp(_fn, _take_vjp)
defvjp(np.take_along_axis, lambda g, ans, a, indices, axis=-1: apply(runtime.take_along_axis_vjp, g, a, indices, axis))
defvjp(np.quantile, _quantile_vjp("np.quantile"))
defvjp(np.percentile, _quantile_vjp("np.percentile", percent=True))
defvjp(np.median, _quantile_vjp("np.median"))
defvjp(np.mod, *VJPS[operator.mod])  # np.remainder is np.mod
defvjp(np.fmod, lambda g, ans, x, y: unbroadcast(g, x, y),
       lambda g, ans, x, y: unbroadcast(-g * np.trunc(x / y), y, x))
defvjp(np.append, lambda g, ans, arr, values, axis=None: apply(runtime.append_vjp, g, 0, arr, values, axis),
       lambda g, ans, arr, values, axis=None: apply(runtime.append_vjp, g, 1, arr, values, axis))
defvjp(np.rot90, lambda g, ans, m, k=1, axes=(0, 1): np.rot90(g, -k, axes))
defvjp(np.rollaxis, lambda g, ans, a, axis, start=0: apply(runtime.rollaxis_vjp, g, a, axis, start))
defvjp(np.cross, lambda g, ans, a, b: apply(runtime.cross_vjp, g, 0, a, b),
       lambda g, ans, a, b: apply(runtime.cross_vjp, g, 1, a, b))
defvjp(np.select, None, lambda g, ans, conds, choices, default=0: apply(runtime.select_vjp, g, conds, choices),
       lambda g, ans, conds, choices, default: apply(runtime.select_default_vjp, g, conds, default))
defvjp(np.interp, _interp_vjp(0), None, _interp_vjp(2))
defvjp(np.convolve, lambda g, ans, a, v, mode="full": apply(runtime.convolve_vjp, g, 0, a, v, mode),
       lambda g, ans, a, v, mode="full": apply(runtime.convolve_vjp, g, 1, a, v, mode))
defvjp(np.polyval, lambda g, ans, p, x: apply(runtime.polyval_vjp, g, 0, p, x),
       lambda g, ans, p, x: apply(runtime.polyval_vjp, g, 1, p, x))
defvjp(np.nansum, lambda g, ans, x, axis=None, dtype=None, out=None, keepdims=False, **kw:
       _sum_vjp(g, ans, x, axis, keepdims=keepdims) * apply(runtime.nan_mask, x))
defvjp(np.nanmean, _nanmean_vjp)
defvjp(np.partition, lambda g, ans, a, kth, axis=-1, **kw: apply(runtime.partition_vjp, g, a, ans, axis))
defvjp(np.nan_to_num, lambda g, ans, x, *args, **kw: g * np.isfinite(x))
defvjp(np.linspace, _linspace_vjp(0), _linspace_vjp(1))
for _fn, _positions in ((np.select, {"default": 2}), (np.linspace, {"start": 0, "stop": 1}),
                        (np.interp, {"fp": 2}), (np.append, {"values": 1})):
    defkeywords(_fn, **_positions)
defvjp(np.gradient, _gradient_vjp)
# Of real arrays (complex ones are refused where they appear): real and conj are the identity,
# imag and angle constant.
for _fn in (np.real, np.conj, Method("conj"), GetAttr("real")):
    defvjp(_fn, lambda g, ans, x: g)
for _fn in (np.imag, np.angle, GetAttr("imag")):
    defvjp(_fn, lambda g, ans, x, *args, **kw: 0.0 * g)


# ============================================================================= sequences
# Lists and tuples built in the function: cotangents are {position: cotangent} dicts.


class _ItemRules:
    """The rule for each item of a tuple/list display, whatever its length."""

    def __len__(self) -> int:
        return 1 << 30

    def __getitem__(self, i: int) -> Rule:
        return lambda g, ans, *items: apply(runtime.cotangent_at, g, i, items[i])


def _dict_item_vjp(i: int, key: Any, g: Any, ans: Any, *items: Any) -> Any:
    return apply(runtime.cotangent_at_key, g, key, items[i])


for _build in (BUILD_LIST, BUILD_TUPLE):
    VJPS[_build] = _ItemRules()
defvjp(runtime.list_append, lambda g, ans, items, value, position: g,
       lambda g, ans, items, value, position: apply(runtime.cotangent_at, g, position, value), None)
# list(x) / tuple(x): of a sequence, its cotangent as it is; of an array, the items' cotangents stacked
defvjp(tuple, lambda g, ans, seq: g if getattr(seq, "kind", None) == SEQUENCE else apply(runtime.restack, g, seq))
defvjp(list, lambda g, ans, seq: g if getattr(seq, "kind", None) == SEQUENCE else apply(runtime.restack, g, seq))
defvjp(runtime.reverse_sequence, lambda g, ans, seq: apply(runtime.reverse_cotangent, g, seq))
defvjp(sum, lambda g, ans, seq, start=0: apply(runtime.repeat_cotangent, g, seq),
       lambda g, ans, seq, start: g)
defvjp(np.stack, lambda g, ans, seq, axis=0, **_: apply(runtime.unstack, g, axis))
defvjp(np.concatenate, lambda g, ans, seq, axis=0, **_: apply(runtime.unconcatenate, g, seq, axis))
for _array in (np.array, np.asarray):  # of a sequence: like np.stack; of an array: a copy
    defvjp(_array, lambda g, ans, x, *args, **kwargs: apply(runtime.unstack, g, 0)
           if getattr(x, "kind", None) == SEQUENCE else g)
for _name in ("hstack", "vstack", "dstack", "column_stack"):
    defvjp(getattr(np, _name), lambda g, ans, seq, *a, _how=_name, **k: apply(runtime.unstack_pieces, g, seq, _how))


# split family: the result is a list of pieces; the cotangent ({piece: cotangent}) is joined back
defvjp(np.split, lambda g, ans, x, sections, axis=0: apply(runtime.unsplit, g, ans, axis))
defvjp(np.array_split, lambda g, ans, x, sections, axis=0: apply(runtime.unsplit, g, ans, axis))
defvjp(np.vsplit, lambda g, ans, x, sections: apply(runtime.unsplit, g, ans, 0))
defvjp(np.dsplit, lambda g, ans, x, sections: apply(runtime.unsplit, g, ans, 2))
defvjp(np.hsplit, lambda g, ans, x, sections: apply(runtime.unsplit, g, ans, apply(runtime.hsplit_axis, x)))
defvjp(np.linalg.slogdet, lambda g, ans, a: apply(runtime.slogdet_vjp, g, a))
defvjp(Method("astype"), lambda g, ans, x, dtype, *a, **k: g if np.issubdtype(np.dtype(dtype), np.inexact)
       else 0.0 * g)
defnondiff(runtime.list_index, runtime.hsplit_axis, runtime.check_pair)
# The fields of the named tuples np.linalg returns in NumPy >= 2 (slogdet(a).logabsdet,
# eigh(a).eigenvectors, qr(a).R, svd(a).S, ...): as indexing the tuple with the field's position.
RESULT_FIELDS = {"sign": 0, "logabsdet": 1, "eigenvalues": 0, "eigenvectors": 1, "Q": 0, "R": 1,
                 "U": 0, "S": 1, "Vh": 2} if NUMPY_2 else {}


def _field_vjp(position: int) -> Rule:
    def vjp(g, ans, result):
        if getattr(result, "kind", None) != SEQUENCE:
            _unsupported("this attribute of a value that is not the result of an np.linalg function")
        return apply(runtime.getitem_vjp, g, result, position)
    return vjp


for _name, _position in RESULT_FIELDS.items():
    defvjp(GetAttr(_name), _field_vjp(_position))


def is_result_field(fn: Any) -> bool:
    """Whether ``fn`` reads a field of a named tuple result (which never grows: no snapshot needed)."""
    return isinstance(fn, GetAttr) and fn.name in RESULT_FIELDS
SEQUENCE_RESULTS = {np.split, np.array_split, np.hsplit, np.vsplit, np.dsplit, np.linalg.slogdet, np.linalg.eigh,
                    np.linalg.eig, np.linalg.svd, np.linalg.qr, np.linalg.lstsq}


def sequence_result(fn: Any, args: list, kwargs: dict) -> bool:
    """Whether ``fn(*args, **kwargs)`` returns a tuple or list (its cotangent a {position: ...} dict)."""
    if fn is np.linalg.svd:
        compute_uv = kwargs.get("compute_uv", args[2] if len(args) > 2 else None)
        return compute_uv is None or not compute_uv.is_const or bool(compute_uv.const)
    if fn is np.linalg.qr:
        mode = kwargs.get("mode", args[1] if len(args) > 1 else None)
        return mode is None or not mode.is_const or mode.const != "r"
    return fn in SEQUENCE_RESULTS
