"""Tracing: rules are ordinary Python functions run on symbols that record what they compute.

A :class:`Sym` stands for a value of the code being generated. Arithmetic on it, NumPy calls
on it (through ``__array_ufunc__``/``__array_function__``) and :func:`apply` emit IR through
the symbol's builder, so running a rule such as ``lambda g, ans, x: g * (1 - ans**2)`` once
at compile time leaves its body, inlined, in the generated code. Arguments that are
compile-time constants stay plain Python values, so rules may branch on them.

The helpers at the end are what rules use to stay cheap: :func:`unbroadcast` undoes NumPy
broadcasting (statically where shapes are known), :func:`shape_of`/:func:`size_of` spell a
shape from the arguments' shapes rather than keeping a value alive only to ask for it.
"""

from __future__ import annotations

import contextlib
import operator
from typing import Any, Callable, Iterator

import numpy as np

from . import runtime, shapes
from .ir import BUILD_LIST, BUILD_SLICE, BUILD_TUPLE, SCALAR, Builder, GetAttr, Method, Value
from .passes import enabled


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
    builder = _builder_of(args, kwargs)
    values = [as_value(builder, a) for a in args]
    kw = {k: as_value(builder, v) for k, v in kwargs.items()}
    kind = shapes.result_kind(fn, [v.kind for v in values])
    return Sym(builder, builder.call(fn, values, kw, hint=None, kind=kind))


_builders: list[Builder] = []  # the builder rules emit into when no argument is symbolic


def _builder_of(args: tuple, kwargs: dict[str, Any]) -> Builder:
    """The builder of the first symbol among ``args`` then ``kwargs``, else the current rule's."""
    for a in args:
        if isinstance(a, Sym):
            return a._b
    for a in kwargs.values():
        if isinstance(a, Sym):
            return a._b
    return _builders[-1]


def current_builder() -> Builder:
    """The builder of the rule being run (by :func:`run`)."""
    return _builders[-1]


def run(builder: Builder, rule: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run ``rule`` (a function of symbols) so that what it computes is emitted into ``builder``."""
    _builders.append(builder)
    try:
        return rule(*args, **kwargs)
    finally:
        _builders.pop()


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


def constant(builder: Builder, v: Value) -> Any:
    """What a rule sees for the constant ``v``: its Python value (rules may branch on it), but
    an array (a global or closure array compiled in) as a symbol, whose rank, shape and dtype
    the rule reads as it reads an argument's."""
    return Sym(builder, v) if type(v.const) is np.ndarray else v.const


def is_scalar(x: Any) -> bool:
    """True for Python numbers and symbols statically known to be Python numbers."""
    return type(x) in (int, float, bool) or (isinstance(x, Sym) and x.kind == SCALAR)


_tangent_mode = False


@contextlib.contextmanager
def tangent_mode() -> Iterator[None]:
    """Run rules on tangents rather than cotangents: :func:`unbroadcast` leaves its argument as
    it is. The VJP of an element-by-element primitive, ``unbroadcast(g * df/dx, x)``, then
    computes its JVP ``t * df/dx`` (a diagonal Jacobian is its own transpose)."""
    global _tangent_mode
    was, _tangent_mode = _tangent_mode, True
    try:
        yield
    finally:
        _tangent_mode = was


def in_tangent_mode() -> bool:
    """Whether VJP rules are being run on a tangent (forward.py), not on a cotangent."""
    return _tangent_mode


def unbroadcast(g: Any, x: Any, *others: Any) -> Any:
    """Sum ``g`` down to the shape of ``x`` (NumPy broadcasting in reverse).

    Nothing to do where shapes provably match (both scalars, or every other operand a
    scalar); static sums where the shapes are known; a runtime helper otherwise.
    """
    if _tangent_mode:  # a VJP run on a tangent (forward.py): the JVP keeps the broadcast shape
        return g
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
