"""Small helpers that generated gradient code calls where inline NumPy would not do.

Generated source imports them by name (``from symdiff.runtime import unbroadcast``), so it
runs anywhere symdiff is installed.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .errors import SymdiffError


def unbroadcast(g: Any, x: Any) -> Any:
    """Sum the cotangent ``g`` over the axes along which ``x`` was broadcast."""
    shape = np.shape(x)
    if np.shape(g) == shape:
        return g
    g = np.asarray(g)
    extra = g.ndim - len(shape)
    if extra > 0:
        g = g.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    if g.shape != shape:  # x was broadcast up from a smaller shape the other way round
        g = np.broadcast_to(g, shape)
    return g


def winner_mask(x: Any, y: Any) -> Any:
    """1 where ``x > y``, 0.5 where ``x == y``, 0 elsewhere: the share of the cotangent of
    ``maximum(x, y)`` that goes to ``x`` (ties split evenly, as in JAX)."""
    above = np.greater(x, y)
    ties = np.equal(x, y)
    return above + 0.5 * ties if ties.any() else above


def sign(x: float) -> float:
    """The sign of a Python number: -1.0, 0.0 or 1.0."""
    return float((x > 0) - (x < 0))


def log_or_zero(x: Any) -> Any:
    """``log(x)``, with 0 where ``x == 0`` (the derivative of ``x**y`` in ``y`` at ``x == 0``)."""
    if isinstance(x, (int, float)):
        return math.log(x) if x > 0 else (0.0 if x == 0 else math.nan)
    x = np.asarray(x)
    return np.log(np.where(x == 0, 1.0, x))


def matmul_vjp(g: Any, x: Any, y: Any, argnum: int) -> Any:
    """The cotangent of ``x`` (argnum 0) or ``y`` (argnum 1) in ``x @ y``, for any ranks."""
    x, y, g = np.asarray(x), np.asarray(y), np.asarray(g)
    if x.ndim == 0 or y.ndim == 0:  # np.dot with a scalar is a product
        return unbroadcast(g * (y if argnum == 0 else x), x if argnum == 0 else y)
    xm = x[None, :] if x.ndim == 1 else x
    ym = y[:, None] if y.ndim == 1 else y
    gm = g
    if x.ndim == 1:
        gm = np.expand_dims(gm, -2)
    if y.ndim == 1:
        gm = np.expand_dims(gm, -1)
    if argnum == 0:
        out = gm @ np.swapaxes(ym, -1, -2)
        out = out[..., 0, :] if x.ndim == 1 else out
        return unbroadcast(out, x)
    out = np.swapaxes(xm, -1, -2) @ gm
    out = out[..., 0] if y.ndim == 1 else out
    return unbroadcast(out, y)


def dot_vjp(g: Any, x: Any, y: Any, argnum: int) -> Any:
    """The cotangent of ``x`` (argnum 0) or ``y`` (argnum 1) in ``np.dot(x, y)``, any ranks."""
    x, y, g = np.asarray(x), np.asarray(y), np.asarray(g)
    if x.ndim == 0 or y.ndim == 0 or (x.ndim <= 2 and y.ndim <= 2):
        return matmul_vjp(g, x, y, argnum)
    letters = "abcdefghijklmnopqrstuvwxyz"
    xs = letters[: x.ndim - 1] + "Z"  # Z: the contracted axis
    rest = letters[x.ndim - 1: x.ndim - 1 + y.ndim - 1]
    ys = rest[:-1] + "Z" + rest[-1] if y.ndim >= 2 else "Z"
    out = xs[:-1] + (rest[:-1] + rest[-1] if y.ndim >= 2 else "")
    if argnum == 0:
        return np.einsum(f"{out},{ys}->{xs}", g, y)
    return np.einsum(f"{xs},{out}->{ys}", x, g)


def getitem_vjp(g: Any, x: Any, index: Any) -> np.ndarray:
    """The cotangent of ``x`` in ``x[index]``: zeros, with ``g`` added at ``index``
    (accumulating over repeated fancy indices)."""
    out = np.zeros(np.shape(x), dtype=np.result_type(np.asarray(x).dtype, float))
    np.add.at(out, index, g)
    return out


def setitem(a: Any, index: Any, value: Any) -> Any:
    """``a`` with ``a[index] = value``, as a new array (or list): the original is untouched."""
    out = a.copy() if isinstance(a, np.ndarray) else list(a)
    out[index] = value
    return out


def add_at(acc: np.ndarray, index: Any, g: Any) -> np.ndarray:
    """``acc[index] += g`` in place and return ``acc`` (the backward sweep's own accumulator)."""
    acc[index] += g
    return acc


def updates_in_place(value: Any) -> bool:
    """Whether ``value += ...`` changes ``value`` itself (arrays, lists) rather than rebinding."""
    return isinstance(value, (np.ndarray, list))


def scalar_seed(out: Any, name: str) -> float:
    """The cotangent 1.0 of a function's output, after checking that it is a real scalar."""
    if np.ndim(out) != 0 or isinstance(out, (complex, np.complexfloating)):
        raise SymdiffError(f"grad of {name} needs a real scalar output, got {_describe(out)}; "
                           "reduce it first (e.g. np.sum) or use symdiff.vjp")
    return 1.0


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    return f"a value of type {type(value).__name__}"


def grad_like(dx: Any, x: Any) -> Any:
    """Give the gradient ``dx`` the type, shape and dtype of its argument ``x`` (a fresh array)."""
    if isinstance(x, np.ndarray):
        dtype = x.dtype if np.issubdtype(x.dtype, np.inexact) else np.float64
        if np.shape(dx) == x.shape:
            return np.array(dx, dtype=dtype)
        out = np.empty(x.shape, dtype=dtype)
        out[...] = dx
        return out
    if isinstance(x, np.generic):
        dtype = x.dtype if np.issubdtype(x.dtype, np.inexact) else np.float64
        return dtype.type(dx)
    if isinstance(x, (int, float)):
        return float(dx)
    return dx


def as_grad(dx: Any, x: Any) -> Any:
    """:func:`grad_like` for a ``dx`` the gradient code computed itself: no copy when it fits."""
    if type(dx) is np.ndarray and type(x) is np.ndarray and dx.shape == x.shape and dx.dtype == x.dtype:
        return dx
    return grad_like(dx, x)


def zero_grad(x: Any) -> Any:
    """The gradient of an argument the output does not depend on."""
    return grad_like(0.0, x)
