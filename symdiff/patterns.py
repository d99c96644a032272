"""Matching values by how they were made: the call that produced a value, and constants.

Peepholes and whole-function passes ask questions such as "is ``g`` a call of ``np.full``
with two positional arguments?" or "is ``y`` the constant 1?"; :func:`match` and
:func:`is_const` answer them in one call, given the map from values to the ops producing
them (``Builder.producer``, or ``ir.definitions(region)``).
"""

from __future__ import annotations

from typing import Any

from .ir import Build, BuildDict, GetAttr, Method, Op, OpKind, Value

# Callee markers are equal when their fields are (``GetAttr("T") == GetAttr("T")``); every
# other callee is compared by identity, whatever its ``__eq__`` does.
MARKERS = (Method, GetAttr, Build, BuildDict)


def same_callee(a: Any, b: Any) -> bool:
    """Whether callees ``a`` and ``b`` are the same: the same object, or equal markers."""
    return a is b or (type(a) is type(b) and isinstance(a, MARKERS) and a == b)


def among(fn: Any, fns: Any) -> bool:
    """Whether callee ``fn`` is ``fns``, or one of them if ``fns`` is a tuple."""
    if type(fns) is not tuple:
        return fn is fns or same_callee(fn, fns)
    marker = isinstance(fn, MARKERS)  # (same_callee of each, inline: the passes ask this of every op)
    for f in fns:
        if fn is f or (marker and type(fn) is type(f) and fn == f):
            return True
    return False


def calls(op: Op | None, fn: Any = None, arity: int | None = None, kwargs: bool = False) -> bool:
    """Whether ``op`` is a call of ``fn`` (of one of them if a tuple, of anything if None)
    with ``arity`` positional arguments (any number if None) and no keyword arguments
    (unless ``kwargs``)."""
    if op is None or op.kind is not OpKind.CALL or (op.kwnames and not kwargs):
        return False
    if arity is not None and len(op.args) - len(op.kwnames) != arity:
        return False
    return fn is None or among(op.fn, fn)


def match(producers: dict[Value, Op], value: Value, fn: Any = None, arity: int | None = None,
          kwargs: bool = False) -> Op | None:
    """The call op that produced ``value`` if it is a call of ``fn`` with ``arity`` positional
    arguments and no keywords (see :func:`calls`), else None. ``producers`` maps values to
    the ops producing them."""
    op = producers.get(value)
    return op if calls(op, fn, arity, kwargs) else None


def is_const(value: Value, number: float) -> bool:
    """Whether ``value`` is an int or float constant equal to ``number`` (never a bool)."""
    return value.is_const and type(value.const) in (int, float) and value.const == number


def is_float(value: Value) -> bool:
    """Whether ``value`` is a Python float constant."""
    return value.is_const and type(value.const) is float
