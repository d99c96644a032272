"""Small helpers that generated gradient code calls where inline NumPy would not do.

Generated source imports them by name (``from symdiff.runtime import unbroadcast``), so it
runs anywhere symdiff is installed.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Callable

import numpy as np

from .errors import SymdiffError

_DISPATCHING: dict[type, bool] = {}


def dispatches(x: Any) -> bool:
    """Whether ``x`` is an array of another library that NumPy's functions and ufuncs hand
    over to (``__array_function__`` and ``__array_ufunc__``, NEP 18 and NEP 13: dask, CuPy),
    not an ndarray: generated code keeps it as it is, and never converts it to an ndarray
    (which would compute a dask array, or copy a CuPy array to the host)."""
    kind = type(x)
    known = _DISPATCHING.get(kind)
    if known is None:
        known = _DISPATCHING[kind] = (not issubclass(kind, (np.ndarray, np.generic))
                                      and hasattr(kind, "__array_function__") and hasattr(kind, "__array_ufunc__"))
    return known


def _array(x: Any) -> Any:
    """``np.asarray(x)``, except that an array of another library (:func:`dispatches`) stays itself."""
    if type(x) is np.ndarray or dispatches(x):
        return x
    return np.asarray(x)


def _add_at(out: Any, index: Any, g: Any) -> None:
    """``np.add.at(out, index, g)``: ``out[index] += g`` with repeated indices adding up. Arrays
    of other libraries may not implement it (dask does not): a clear error then, rather than
    converting them to NumPy (which would compute a dask array)."""
    if not (dispatches(out) or dispatches(g)):
        np.add.at(out, index, g)
        return
    try:
        np.add.at(out, index, g)
    except (TypeError, NotImplementedError):
        kind = type(out if dispatches(out) else g)
        raise SymdiffError(
            f"this gradient adds cotangents at repeated (fancy) indices, np.add.at, which {kind.__module__}."
            f"{kind.__qualname__} does not implement: index it with slices and ints, or convert it to a NumPy "
            "array first") from None


def unbroadcast(g: Any, x: Any) -> Any:
    """Sum the cotangent ``g`` over the axes along which ``x`` was broadcast."""
    shape = np.shape(x)
    if np.shape(g) == shape:
        return g
    g = _array(g)
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
    if dispatches(ties):  # (a test of its values would compute a dask array)
        return above + 0.5 * ties
    return above + 0.5 * ties if np.count_nonzero(ties) else above  # count_nonzero: faster than any()


def sign(x: float) -> float:
    """The sign of a Python number (or a NumPy scalar, an element of an array): -1.0, 0.0 or 1.0."""
    return float(x > 0) - float(x < 0)


def zeros_of(x: Any) -> Any:
    """A zero tangent for ``x``: 0.0 for a number, float zeros for an array, and the same for
    each item of a tuple, list or dict."""
    if isinstance(x, (tuple, list)):
        return type(x)(zeros_of(v) for v in x)
    if isinstance(x, dict):
        return {k: zeros_of(v) for k, v in x.items()}
    if isinstance(x, np.ndarray) or dispatches(x):
        return np.zeros_like(x, dtype=x.dtype if np.issubdtype(x.dtype, np.inexact) else float)
    return 0.0


def spread_like(t: Any, shape: tuple) -> Any:
    """The tangent ``t`` of an element-by-element result, broadcast to the result's ``shape``
    (where every differentiated operand was smaller than the result)."""
    return t if np.shape(t) == shape else np.broadcast_to(t, shape)


def log_or_zero(x: Any) -> Any:
    """``log(x)``, with 0 where ``x == 0`` (the derivative of ``x**y`` in ``y`` at ``x == 0``)."""
    if isinstance(x, (int, float)):
        return math.log(x) if x > 0 else (0.0 if x == 0 else math.nan)
    x = _array(x)
    return np.log(np.where(x == 0, 1.0, x))


def power_slope(x: Any, y: Any, power: Any = None) -> Any:
    """``y * x ** (y - 1)``, the derivative of ``x ** y`` in ``x`` (``power``: math.pow or
    np.float_power, else ``**``), also where ``x == 0``: 0 where ``y == 0`` (``x ** 0`` is 1 for
    every x), +inf where ``0 < y < 1`` (as JAX), with no ZeroDivisionError and no warning."""
    power = power or (lambda a, b: a ** b)
    if type(x) in (int, float) and type(y) in (int, float):
        if x != 0 or y >= 1:
            return y * power(x, y - 1)
        return 0.0 if y == 0 else math.copysign(math.inf, y)
    with np.errstate(divide="ignore"):  # 0 ** negative: inf, the one-sided limit
        slope = power(x, y - 1) if power is not math.pow else np.power(np.asarray(x, float), y - 1)
    return y * np.where(np.equal(y, 0), 0, slope)


def matmul_vjp(g: Any, x: Any, y: Any, argnum: int) -> Any:
    """The cotangent of ``x`` (argnum 0) or ``y`` (argnum 1) in ``x @ y``, for any ranks."""
    x, y, g = _array(x), _array(y), _array(g)
    if x.ndim == 0 or y.ndim == 0:  # np.dot with a scalar is a product
        return unbroadcast(g * (y if argnum == 0 else x), x if argnum == 0 else y)
    if x.ndim == 1 and y.ndim == 1:  # an inner product: g is a scalar
        return g * (y if argnum == 0 else x)
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
    x, y, g = _array(x), _array(y), _array(g)
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


# Sequences (lists, tuples) built inside a differentiated function: their cotangent is a dict
# {position: cotangent}, positions without an entry having a zero cotangent. Appends only
# ever add positions, so a cotangent stays valid for every version of a growing list.


def list_append(items: list, value: Any, position: int) -> list:
    """``items.append(value)`` (in place, as in Python); ``position`` is ``len(items)`` before."""
    items.append(value)
    return items


def list_index(items: Any, index: Any) -> int:
    """A non-negative position for ``items[index]`` (checked like Python's indexing)."""
    if type(index) is slice:  # items[1:]: a new list of the selected items
        return index
    n = len(items)
    if not -n <= index < n:
        raise IndexError("list index out of range")
    return index + n if index < 0 else index


def cotangent_at(cotangent: dict, position: int, like: Any) -> Any:
    """The cotangent of item ``position`` (zeros shaped like ``like`` if none reached it)."""
    if not isinstance(cotangent, dict):  # a nested display's cotangent arrived stacked
        return cotangent[position]
    g = cotangent.get(position)
    return zero_cotangent(like) if g is None else g


def sequence_cotangent(gradient: Any) -> Any:
    """A gradient as the backward sweep holds the cotangent of a value: for a list or tuple (a
    list argument's gradient, returned by a recursive function's VJP), ``{position: cotangent}``
    with the items' own cotangents; anything else as it is."""
    if isinstance(gradient, (list, tuple)):
        return {k: sequence_cotangent(g) for k, g in enumerate(gradient)}
    return gradient


def copy_sequence(seq: Any) -> Any:
    """A copy of a list or tuple, of the same type: what ``xs + ys`` reads of a list that grows later."""
    return seq[:]


def joined_cotangent(cotangent: Any, first: Any, of_first: bool) -> Any:
    """The cotangent of ``first`` (``of_first``) or of the second operand in ``first + second``,
    two tuples or lists joined, from the cotangent of the joined sequence: ``{position:
    cotangent}``, or the items' cotangents stacked in one array."""
    n = len(first)
    if not isinstance(cotangent, dict):
        return cotangent[:n] if of_first else cotangent[n:]
    if of_first:
        return {i: g for i, g in cotangent.items() if i < n}
    return {i - n: g for i, g in cotangent.items() if i >= n}


def plus_cotangent(cotangent: Any, first: Any, second: Any, of_first: bool) -> Any:
    """The cotangent of ``first`` (``of_first``) or ``second`` in ``first + second`` where the
    compiler did not know what they are: of two tuples or lists joined, the cotangent of the items
    of one (:func:`joined_cotangent`); of numbers or arrays, the cotangent unbroadcast."""
    if isinstance(first, (list, tuple)) and isinstance(second, (list, tuple)):
        return joined_cotangent(cotangent, first, of_first)
    return unbroadcast(cotangent, first if of_first else second)


def zero_cotangent(like: Any) -> Any:
    """A zero cotangent for ``like``: 0.0 for a number, zeros for an array, ``{}`` (no item has
    one) for a list, tuple or dict."""
    if isinstance(like, (int, float)):
        return 0.0
    if isinstance(like, (list, tuple, dict)):
        return {}
    if dispatches(like):
        return np.zeros_like(like, dtype=float)
    return np.zeros(np.shape(like))


def cotangent_at_key(cotangent: Any, key: Any, like: Any) -> Any:
    """The cotangent of the value at ``key`` of a dict (zeros shaped like ``like`` if none reached it)."""
    g = cotangent.get(key) if isinstance(cotangent, dict) else None
    return zero_cotangent(like) if g is None else g


def add_cotangents(a: Any, b: Any) -> Any:
    """The sum of two sequence cotangents (those of items that are sequences too, item by item):
    each ``{position: cotangent}``, or the items' cotangents stacked in one array (what
    ``np.array(seq)`` and ``np.stack(seq)`` give back)."""
    if not isinstance(a, dict) and not isinstance(b, dict):
        return a + b
    out = dict(_items_of(a))
    for k, g in _items_of(b).items():
        out[k] = _plus(out[k], g) if k in out else g
    return out


def _items_of(cotangent: Any) -> dict:
    """A sequence cotangent as ``{position: cotangent}``."""
    return cotangent if isinstance(cotangent, dict) else dict(enumerate(cotangent))


def _plus(a: Any, b: Any) -> Any:
    """``a + b`` of two cotangents of one item: arrays or numbers, or sequence cotangents
    (one of them maybe stacked in an array)."""
    return add_cotangents(a, b) if isinstance(a, dict) or isinstance(b, dict) else a + b


def add_at_key(acc: dict, position: int, g: Any) -> dict:
    """``acc[position] += g`` in place (the backward sweep's own accumulator); returns ``acc``."""
    acc[position] = _plus(acc[position], g) if position in acc else g
    return acc


# The context managers a ``with`` block in a differentiated function may use: entering and
# leaving them changes only how warnings and floating-point errors are reported.
CONTEXTS = (np.errstate, warnings.catch_warnings)


def throw(exc: Any, *managers: Any) -> None:
    """``raise exc``: the user's ``raise`` statement (and a failing ``assert``), where the
    user's function raises it, after leaving the ``with`` blocks it is in (``managers``,
    innermost first), as the ``with`` statements would."""
    for manager in managers:
        manager.__exit__(type(exc) if isinstance(exc, BaseException) else exc, exc, None)
    raise exc


def enter_context(manager: Any) -> None:
    """Enter ``manager`` (an ``np.errstate`` or ``warnings.catch_warnings``): the first half
    of the user's ``with`` block, before the operations of its body."""
    manager.__enter__()


def exit_context(manager: Any) -> None:
    """Leave ``manager``, entered by :func:`enter_context`: the end of the ``with`` block."""
    manager.__exit__(None, None, None)


def reverse_sequence(seq: Any) -> tuple:
    """``reversed(seq)`` for a list built in the function, as a tuple one can index."""
    return tuple(reversed(seq))


def reverse_cotangent(g: dict, seq: Any) -> dict:
    """The cotangent of ``seq`` in ``reverse_sequence(seq)``."""
    last = len(seq) - 1
    return {last - k: v for k, v in g.items()} if isinstance(g, dict) else {
        last - k: v for k, v in enumerate(g)}


def restack(g: Any, seq: Any) -> Any:
    """The cotangent of ``seq`` in ``list(seq)``: for an array, the items' cotangents
    ``{position: cotangent}`` as an array of its shape; for a sequence, ``g`` itself."""
    if not isinstance(seq, np.ndarray) or not isinstance(g, dict):
        return g
    out = np.zeros(seq.shape, dtype=np.result_type(seq.dtype, float))
    for position, part in g.items():
        out[position] += part
    return out


def unstack(g: Any, axis: int = 0) -> dict:
    """The cotangent of the sequence in ``np.stack(seq, axis)`` (or ``np.array(seq)``)."""
    g = np.moveaxis(_array(g), axis, 0)
    return dict(enumerate(g))


def repeat_cotangent(g: Any, seq: Any) -> Any:
    """The cotangent of ``seq`` in ``sum(seq)``: ``g`` for every item (summed to its shape)."""
    if dispatches(seq) or dispatches(g):
        return np.broadcast_to(g, seq.shape) + np.zeros_like(seq, dtype=float)
    if isinstance(seq, np.ndarray):
        return np.array(np.broadcast_to(g, seq.shape))
    return {i: unbroadcast(g, item) for i, item in enumerate(seq)}


def unstack_pieces(g: Any, seq: Any, how: str) -> dict:
    """The cotangent of the sequence in ``np.hstack/vstack/dstack/column_stack(seq)``."""
    if how == "vstack":
        pieces, axis = [np.atleast_2d(x) for x in seq], 0
    elif how == "dstack":
        pieces, axis = [np.atleast_3d(x) for x in seq], 2
    elif how == "column_stack":
        pieces = [_array(x)[:, None] if np.ndim(x) == 1 else _array(x) for x in seq]
        axis = 1
    else:  # hstack
        pieces = [np.atleast_1d(x) for x in seq]
        axis = 0 if pieces[0].ndim == 1 else 1
    sizes = np.cumsum([p.shape[axis] for p in pieces])[:-1]
    return {i: part.reshape(np.shape(x)) for i, (part, x) in enumerate(zip(np.split(_array(g), sizes, axis), seq))}


def unsplit(g: dict, pieces: Any, axis: int) -> np.ndarray:
    """The cotangent of ``x`` in ``pieces = np.split(x, ..., axis)``: the pieces' cotangents,
    zeros where none reached, put back together."""
    return np.concatenate([g.get(i, np.zeros(np.shape(p))) if isinstance(g, dict) else g[i]
                           for i, p in enumerate(pieces)], axis=axis)


def hsplit_axis(x: Any) -> int:
    """The axis ``np.hsplit`` splits ``x`` along."""
    return 0 if np.ndim(x) == 1 else 1


def slogdet_vjp(g: dict, a: Any) -> np.ndarray:
    """The cotangent of ``a`` in ``sign, logabsdet = np.linalg.slogdet(a)`` (sign is constant)."""
    d_logdet = g.get(1, 0.0) if isinstance(g, dict) else g[1]
    return _array(d_logdet)[..., None, None] * np.swapaxes(np.linalg.inv(a), -1, -2)


def unconcatenate(g: Any, seq: Any, axis: int | None = 0) -> dict:
    """The cotangent of the sequence in ``np.concatenate(seq, axis)`` (``axis=None``: of the items
    flattened)."""
    if axis is None:
        sizes = np.cumsum([np.size(item) for item in seq])[:-1]
        parts = np.split(np.ravel(g), sizes)
        return {i: part.reshape(np.shape(item)) for i, (part, item) in enumerate(zip(parts, seq))}
    sizes = np.cumsum([np.shape(item)[axis] for item in seq])[:-1]
    return dict(enumerate(np.split(_array(g), sizes, axis=axis)))


def getitem_vjp(g: Any, x: Any, index: Any) -> Any:
    """The cotangent of ``x`` in ``x[index]``: zeros, with ``g`` added at ``index``
    (accumulating over repeated fancy indices); for a sequence, ``{index: g}``."""
    if isinstance(x, dict):
        return {index: g}
    if isinstance(x, (list, tuple)):
        if type(index) is slice:  # item k of x[index] is item positions[k] of x
            positions = range(len(x))[index]
            parts = g.items() if isinstance(g, dict) else enumerate(g)
            return {positions[k]: part for k, part in parts}
        return {index + len(x) if index < 0 else index: g}
    if dispatches(x) or dispatches(g):  # zeros of the library of x, or else of g
        dtype = np.result_type(x.dtype, float) if hasattr(x, "dtype") else np.dtype(np.float64)
        out = np.zeros_like(x if dispatches(x) else g, shape=np.shape(x), dtype=dtype)
    else:
        out = np.zeros(np.shape(x), dtype=np.result_type(_array(x).dtype, float))
    if is_basic_index(index):  # each element at most once: a plain assignment
        out[index] = g
    else:
        _add_at(out, index, g)
    return out


def setitem_value_vjp(g: Any, index: Any, value: Any) -> Any:
    """The cotangent of ``v`` in ``a[index] = v``: what reached ``a[index]``, except at
    entries a later write to the same position overwrote (NumPy: the last write wins)."""
    g = _array(g)
    part = g[index]
    if not is_basic_index(index):
        order = np.arange(1, part.size + 1).reshape(part.shape)
        marker = np.zeros(g.shape, dtype=np.intp)
        marker[index] = order
        part = part * (marker[index] == order)
    return unbroadcast(part, value)


def add_into(acc: Any, g: Any) -> Any:
    """``acc += g`` in place when ``acc`` is an array of the right shape (the gradient code's own
    accumulator), else ``acc + g`` (for the cotangents of a list's items, their dicts merged)."""
    if type(acc) is dict:
        return add_cotangents(acc, g)
    if type(acc) is np.ndarray and not dispatches(g) and (np.shape(g) == acc.shape or np.ndim(g) < acc.ndim):
        try:
            acc += g
            return acc
        except (TypeError, ValueError):  # e.g. a complex cotangent into a real array
            pass
    return acc + g


def sum_of_outer(lefts: list, rights: list, shape: Any = None) -> Any:
    """``sum(np.outer(u, v) for u, v in zip(lefts, rights))`` -- or of ``a.T @ b`` for matrices
    -- as one product of the stacked rows: what a loop adding an outer product per iteration
    into an accumulator computes (zeros of ``shape``, or 0.0, when the loop did not run)."""
    if lefts is None or len(lefts) == 0:
        return np.zeros(shape) if shape is not None else 0.0
    return stacked(lefts).T @ stacked(rights)


def stacked(rows: Any) -> Any:
    """``np.vstack(rows)`` (rows may already be stacked), or None for no rows."""
    if isinstance(rows, np.ndarray) or rows is None:
        return rows
    if not rows:
        return None
    first = rows[0]
    if type(first) is np.ndarray and first.ndim == 1 and len({getattr(r, "shape", None) for r in rows}) == 1:
        # what np.vstack computes for vectors of one length, in a third of the time (it makes
        # each row a matrix first): one concatenation
        return np.concatenate(rows).reshape(len(rows), first.shape[0])
    return np.vstack(rows)


def add_at_index(acc: np.ndarray, index: Any, g: Any) -> np.ndarray:
    """``acc[index] += g`` in place (``acc`` is the gradient code's own array, or a sequence
    cotangent); returns ``acc``."""
    if isinstance(acc, dict):
        return add_at_key(acc, index, g)
    if is_basic_index(index):
        acc[index] += g
    else:
        _add_at(acc, index, g)
    return acc


def is_basic_index(index: Any) -> bool:
    """Whether ``index`` is basic indexing (ints, slices, None, ...), which never repeats an element."""
    parts = index if type(index) is tuple else (index,)
    return all(type(p) in (int, slice, type(None), type(Ellipsis)) or isinstance(p, np.integer) for p in parts)


def setitem(a: Any, index: Any, value: Any) -> Any:
    """``a`` with ``a[index] = value``, as a new array (or list, or dict): the original is untouched."""
    out = a.copy() if isinstance(a, np.ndarray) else dict(a) if isinstance(a, dict) else list(a)
    out[index] = value
    return out


def store(a: np.ndarray, index: Any, value: Any) -> np.ndarray:
    """``a[index] = value`` in place (``a`` is the code's own array, whose old value is dead); returns ``a``."""
    a[index] = value
    return a


def _position(a: Any, index: Any) -> Any:
    """The non-negative position ``a[index]`` stands for in a list (a dict's key as it is)."""
    if isinstance(a, dict) or not isinstance(index, int):
        return index
    return list_index(a, index)


def setitem_base_vjp(g: Any, a: Any, index: Any) -> Any:
    """The cotangent of ``a`` in ``a[index] = v`` (``a`` not an ndarray): ``g`` without what
    reached ``a[index]`` -- for a list's cotangent ``{position: cotangent}``, without that key."""
    if isinstance(g, dict):
        position = _position(a, index)
        return {k: v for k, v in g.items() if k != position}
    return setitem(g, index, 0.0)


def setitem_item_vjp(g: Any, a: Any, index: Any, value: Any) -> Any:
    """The cotangent of ``v`` in ``a[index] = v`` (``a`` not an ndarray): what reached ``a[index]``."""
    if isinstance(g, dict):
        got = g.get(_position(a, index))
        return (0.0 if isinstance(value, (int, float)) else np.zeros(np.shape(value))) if got is None else got
    return setitem_value_vjp(g, index, value)


def add_at(acc: np.ndarray, index: Any, g: Any) -> np.ndarray:
    """``acc[index] += g`` in place and return ``acc`` (the backward sweep's own accumulator; for
    the cotangents of a list's items, a dict: :func:`add_at_key`)."""
    if type(acc) is dict:
        return add_at_key(acc, index, g)
    acc[index] += g
    return acc


def check_pair(pair: Any, name: str) -> None:
    """Check that a function differentiated with ``has_aux`` returned a ``(loss, aux)`` pair."""
    if not isinstance(pair, tuple) or len(pair) != 2:
        raise SymdiffError(f"{name}: has_aux=True needs the function to return a pair, `return loss, aux`; "
                           f"got {_describe(pair)}")


def scalar_seed(out: Any, name: str) -> float:
    """The cotangent 1.0 of a function's output, after checking that it is a real scalar."""
    if isinstance(out, (tuple, list)):
        raise SymdiffError(f"grad of {name} needs a real scalar output, got a {type(out).__name__} of {len(out)} "
                           "items; did you mean has_aux=True? (the function then returns a pair (loss, aux): "
                           "loss is differentiated, aux handed back as it is)")
    if np.ndim(out) != 0 or isinstance(out, (complex, np.complexfloating)):
        raise SymdiffError(f"grad of {name} needs a real scalar output, got {_describe(out)}; "
                           "reduce it first (e.g. np.sum) or use symdiff.vjp")
    return 1.0


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    return f"a value of type {type(value).__name__}"


def grad_like(dx: Any, x: Any) -> Any:
    """Give the gradient ``dx`` the type, shape and dtype of its argument ``x`` (a fresh array).

    An array of another library (:func:`dispatches`) is the exception: a gradient computed as
    one (a dask array, of a NumPy parameter of a loss over dask data) stays one, lazy -- of
    ``x``'s shape and dtype, a 0-d array for a number ``x``; a NumPy gradient of an argument of
    another library becomes one of that library (``np.zeros_like(x)`` plus it)."""
    plain = type(dx) in (np.ndarray, float, np.float64) or not dispatches(dx)  # (the NumPy cases tested first: fast)
    if isinstance(x, np.ndarray) and plain:
        dtype = _float_dtype(x)
        if np.iscomplexobj(dx) and dtype.kind != "c" and not np.any(np.imag(dx)):
            dx = np.real(dx)  # (through np.linalg.eig, complex from NumPy 2.5 on, of real eigenvalues)
        if np.shape(dx) == x.shape:
            return np.array(dx, dtype=dtype)
        out = np.empty(x.shape, dtype=dtype)
        out[...] = dx
        return out
    if isinstance(x, np.generic) and plain:
        return _float_dtype(x).type(dx)
    if isinstance(x, (int, float)) and plain:
        return float(dx)
    if not plain or dispatches(x):
        return _foreign_grad(dx, x)
    return dx


def _float_dtype(x: Any) -> Any:
    """The dtype of the gradient of ``x``: its own if floating (or complex), else float64."""
    dtype = getattr(x, "dtype", None)
    return dtype if dtype is not None and np.issubdtype(dtype, np.inexact) else np.dtype(np.float64)


def _foreign_grad(dx: Any, x: Any) -> Any:
    """:func:`grad_like` where ``dx`` or ``x`` is an array of another library: never computed
    nor copied to NumPy here."""
    dtype, shape = _float_dtype(x), np.shape(x)
    if not dispatches(dx):  # of x's library, of x's chunks
        return np.zeros_like(x, dtype=dtype) + dx
    if dx.dtype != dtype:
        dx = dx.astype(dtype)
    return dx if dx.shape == shape else np.broadcast_to(dx, shape)


def as_grad(dx: Any, x: Any) -> Any:
    """:func:`grad_like` for a ``dx`` the gradient code computed itself: no copy when it fits."""
    if type(dx) is np.ndarray and type(x) is np.ndarray and dx.shape == x.shape and dx.dtype == x.dtype:
        return dx
    return grad_like(dx, x)


def zero_grad(x: Any) -> Any:
    """The gradient of an argument the output does not depend on."""
    return grad_like(0.0, x)


# ----------------------------------------------------------------------------- NumPy rule helpers


def fmax_share(x: Any, y: Any) -> Any:
    """The share of the cotangent of ``np.fmax(x, y)`` that goes to ``x``: :func:`winner_mask`,
    and 1 where ``y`` is NaN and ``x`` is not (fmax ignores NaN)."""
    return winner_mask(x, y) + np.logical_and(np.isnan(y), np.logical_not(np.isnan(x)))


def fmin_share(x: Any, y: Any) -> Any:
    """The share of the cotangent of ``np.fmin(x, y)`` that goes to ``x`` (see :func:`fmax_share`)."""
    return winner_mask(y, x) + np.logical_and(np.isnan(y), np.logical_not(np.isnan(x)))


def sinc_grad(x: Any, ans: Any) -> Any:
    """d sinc(x) / dx = (cos(pi x) - sinc(x)) / x, and 0 at x == 0."""
    x = _array(x)
    safe = np.where(x == 0, 1.0, x)
    return np.where(x == 0, 0.0, (np.cos(np.pi * x) - ans) / safe)


def _axes(axis: Any, ndim: int) -> tuple:
    if axis is None:
        return tuple(range(ndim))
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    return tuple(sorted(int(a) % ndim for a in axes))


def _expand(g: Any, axes: tuple, keepdims: bool) -> np.ndarray:
    g = _array(g)
    return g if keepdims or not axes else np.expand_dims(g, axes)


def prod_vjp(g: Any, x: Any, axis: Any = None, keepdims: bool = False) -> np.ndarray:
    """The cotangent of ``x`` in ``np.prod(x, axis, keepdims)``: ``g`` times the product of the
    *other* elements of each reduced group, computed exactly (zeros included) from exclusive
    cumulative products taken from both ends."""
    x = _array(x)
    axes = _axes(axis, x.ndim)
    g = _expand(g, axes, keepdims)
    if x.ndim == 0:
        return g * np.ones_like(x, dtype=np.result_type(x, float))
    rest = [i for i in range(x.ndim) if i not in axes]
    moved = np.transpose(x, rest + list(axes))
    flat = moved.reshape(moved.shape[: len(rest)] + (-1,))
    ones = np.ones(flat.shape[:-1] + (1,), dtype=np.result_type(flat, float))
    left = np.cumprod(np.concatenate([ones, flat[..., :-1]], axis=-1), axis=-1)
    right = np.cumprod(np.concatenate([ones, flat[..., :0:-1]], axis=-1), axis=-1)[..., ::-1]
    others = np.transpose((left * right).reshape(moved.shape), np.argsort(rest + list(axes)))
    return g * others


def untranspose(g: Any, axes: Any) -> np.ndarray:
    """The cotangent of ``x`` in ``np.transpose(x, axes)`` (axes known at run time only)."""
    g = _array(g)
    if axes is None:
        return np.transpose(g)
    return np.transpose(g, np.argsort(np.mod(np.atleast_1d(axes), max(g.ndim, 1))))


def reshape_back(g: Any, x: Any, order: str = "C") -> np.ndarray:
    """The cotangent of ``x`` in a reshape of it (``np.reshape``, ``ravel``, ``flatten``) that reads
    its elements in ``order``: 'C', 'F', 'A' (F for Fortran-contiguous ``x``) or 'K' (memory order)."""
    x, g = _array(x), _array(g)
    if order == "A":
        order = "F" if np.isfortran(x) else "C"
    if order == "K":
        position = np.empty_like(x, dtype=np.intp)  # x's memory layout
        position[...] = np.arange(x.size).reshape(x.shape)
        out = np.empty(x.size, dtype=g.dtype)
        out[np.ravel(position, order="K")] = np.ravel(g)
        return out.reshape(x.shape)
    return np.reshape(g, x.shape, order=order)


def cumsum_vjp(g: Any, x: Any, axis: Any = None) -> np.ndarray:
    """The cotangent of ``x`` in ``np.cumsum(x, axis)``: ``g`` summed from the end."""
    g = _array(g)
    if axis is None:
        return np.reshape(np.cumsum(g[::-1])[::-1], np.shape(x))
    return np.flip(np.cumsum(np.flip(g, axis), axis), axis)


def tile_vjp(g: Any, x: Any, reps: Any) -> np.ndarray:
    """The cotangent of ``x`` in ``np.tile(x, reps)``: the tiles of ``g`` summed."""
    g = _array(g)
    reps = (reps,) if np.ndim(reps) == 0 else tuple(reps)
    shape = np.shape(x)
    ndim = max(len(shape), len(reps))
    full = (1,) * (ndim - len(shape)) + tuple(shape)
    reps = (1,) * (ndim - len(reps)) + reps
    split = [n for pair in zip(reps, full) for n in pair]
    out = g.reshape(split).sum(axis=tuple(range(0, 2 * ndim, 2)))
    return out.reshape(shape)


def repeat_vjp(g: Any, x: Any, repeats: Any, axis: Any = None) -> np.ndarray:
    """The cotangent of ``x`` in ``np.repeat(x, repeats, axis)``: each run of repeats summed."""
    x = _array(x)
    g = _array(g)
    if axis is None:
        return repeat_vjp(g, x.ravel(), repeats, 0).reshape(x.shape)
    axis = axis % x.ndim
    n = x.shape[axis]
    owner = np.repeat(np.arange(n), repeats)
    out = np.zeros(np.moveaxis(x, axis, 0).shape, dtype=np.result_type(g, float))
    _add_at(out, owner, np.moveaxis(g, axis, 0))
    return np.moveaxis(out, 0, axis)


PAD_COPYING_MODES = ("edge", "reflect", "symmetric", "wrap")


def pad_vjp(g: Any, x: Any, pad_width: Any, mode: str = "constant", reflect_type: str = "even") -> np.ndarray:
    """The cotangent of ``x`` in ``np.pad(x, pad_width, mode)``. Constant mode: the middle of ``g``.
    The modes that fill the border with copies of elements of ``x`` (edge, reflect, symmetric,
    wrap): each element also gets the cotangents of its copies."""
    g = _array(g)
    if mode in ("constant", "empty"):
        widths = np.broadcast_to(np.asarray(pad_width, dtype=int), (g.ndim, 2))  # 3, (3,), (1, 2) or pairs
        return g[tuple(slice(int(b), g.shape[i] - int(a)) for i, (b, a) in enumerate(widths))]
    if mode not in PAD_COPYING_MODES or reflect_type != "even":
        raise SymdiffError(f"the gradient of np.pad with mode={mode!r}"
                           f"{', reflect_type=' + repr(reflect_type) if reflect_type != 'even' else ''} "
                           "is not supported (modes: constant, edge, reflect, symmetric, wrap)")
    shape = np.shape(x)
    source = np.pad(np.arange(math.prod(shape)).reshape(shape), pad_width, mode=mode)  # the element copied
    out = np.bincount(source.ravel(), weights=g.ravel(), minlength=math.prod(shape))
    return out.reshape(shape).astype(np.result_type(g, float), copy=False)


def sort_vjp(g: Any, x: Any, axis: Any = -1) -> np.ndarray:
    """The cotangent of ``x`` in ``np.sort(x, axis)``: ``g`` sent back through the sorting
    permutation (``np.argsort``; tied elements each get one of the tied cotangents)."""
    x = _array(x)
    g = _array(g)
    if axis is None:
        return sort_vjp(g, x.ravel(), 0).reshape(x.shape)
    perm = np.argsort(x, axis=axis)
    out = np.empty(x.shape, dtype=np.result_type(g, float))
    np.put_along_axis(out, perm, g, axis=axis)
    return out


def diagonal_vjp(g: Any, x: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> np.ndarray:
    """The cotangent of ``x`` in ``np.diagonal(x, offset, axis1, axis2)``: ``g`` placed on that
    diagonal of zeros."""
    x = _array(x)
    g = _array(g)
    out = np.zeros(x.shape, dtype=np.result_type(g, float))
    moved = np.moveaxis(out, (axis1, axis2), (-2, -1))  # a view of out
    n = g.shape[-1]
    rows = np.arange(n) + max(-offset, 0)
    cols = np.arange(n) + max(offset, 0)
    moved[..., rows, cols] = g
    return out


def trace_vjp(g: Any, x: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> np.ndarray:
    """The cotangent of ``x`` in ``np.trace(x, offset, axis1, axis2)``."""
    n = np.diagonal(_array(x), offset, axis1, axis2).shape[-1]
    g = _array(g)
    return diagonal_vjp(np.broadcast_to(g[..., None], g.shape + (n,)), x, offset, axis1, axis2)


def diag_vjp(g: Any, x: Any, k: int = 0) -> np.ndarray:
    """The cotangent of ``x`` in ``np.diag(x, k)``: for a vector (which ``diag`` places on a
    diagonal) that diagonal of ``g``; for a matrix, ``g`` placed on its ``k``-th diagonal."""
    if np.ndim(x) == 1:
        return np.diagonal(g, k).copy()
    return diagonal_vjp(g, x, k)


_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _einsum_terms(subscripts: str, ndims: list) -> tuple[list, str]:
    """The input terms and output term of an einsum, with ``...`` spelt out as letters and an
    implicit output made explicit."""
    spec = subscripts.replace(" ", "")
    ins, arrow, out = spec.partition("->")
    terms = ins.split(",")
    if len(terms) != len(ndims):
        raise ValueError(f"einsum {subscripts!r} has {len(terms)} operands, got {len(ndims)}")
    unused = [c for c in _LETTERS if c not in spec]
    ell = max((nd - (len(t) - 3) for t, nd in zip(terms, ndims) if "..." in t), default=0)
    pool = "".join(unused[:ell])
    spelt = []
    for t, nd in zip(terms, ndims):
        if "..." in t:
            k = nd - (len(t) - 3)
            t = t.replace("...", pool[ell - k:] if k else "")
        spelt.append(t)
    if not arrow:
        counts = "".join(spelt)
        out = pool + "".join(sorted(c for c in set(counts) if counts.count(c) == 1 and c not in pool))
    else:
        out = out.replace("...", pool)
    return spelt, out


def einsum_vjp(g: Any, argnum: int, subscripts: str, *operands: Any) -> np.ndarray:
    """The cotangent of operand ``argnum`` of ``np.einsum(subscripts, *operands)``: the einsum
    of ``g`` with the other operands, read back into the operand's subscripts (broadcast along
    subscripts the forward summed away, placed on the diagonal of repeated subscripts)."""
    operands = [_array(o) for o in operands]
    terms, out = _einsum_terms(subscripts, [o.ndim for o in operands])
    x, xs = operands[argnum], terms[argnum]
    uniq = "".join(dict.fromkeys(xs))
    others = [t for k, t in enumerate(terms) if k != argnum]
    available = set(out).union(*others)
    keep = "".join(c for c in uniq if c in available)
    r = np.einsum(",".join([out] + others) + "->" + keep, g, *[o for k, o in enumerate(operands) if k != argnum])
    sizes = dict(zip(xs, x.shape))
    broadcast = tuple(i for i, c in enumerate(keep) if sizes[c] == 1 and r.shape[i] != 1)  # '...' of size 1
    if broadcast:
        r = r.sum(axis=broadcast, keepdims=True)
    r = r.reshape([r.shape[keep.index(c)] if c in keep else 1 for c in uniq])
    r = np.broadcast_to(r, [sizes[c] for c in uniq])  # also along subscripts another operand broadcast
    if len(uniq) == len(xs):
        return np.transpose(r, [uniq.index(c) for c in xs]) if uniq != xs else np.array(r)
    result = np.zeros(x.shape, dtype=np.result_type(r, float))
    np.einsum(xs + "->" + uniq, result)[...] = r  # a writeable view on the repeated diagonal
    return result


def tensordot_subscripts(a_ndim: int, b_ndim: int, axes: Any = 2) -> str:
    """The einsum spelling of ``np.tensordot(a, b, axes)``."""
    if np.ndim(axes) == 0:
        n = int(axes)
        a_axes, b_axes = list(range(a_ndim - n, a_ndim)), list(range(n))
    else:
        a_axes, b_axes = axes
        a_axes = [a_axes] if np.ndim(a_axes) == 0 else list(a_axes)
        b_axes = [b_axes] if np.ndim(b_axes) == 0 else list(b_axes)
    a = list(_LETTERS[:a_ndim])
    b = list(_LETTERS[a_ndim: a_ndim + b_ndim])
    for i, j in zip(a_axes, b_axes):
        b[j % b_ndim] = a[i % a_ndim]
    a_free = [c for k, c in enumerate(a) if k not in {i % a_ndim for i in a_axes}]
    b_free = [c for k, c in enumerate(b) if k not in {j % b_ndim for j in b_axes}]
    return f"{''.join(a)},{''.join(b)}->{''.join(a_free + b_free)}"


def tensordot_vjp(g: Any, argnum: int, a: Any, b: Any, axes: Any = 2) -> np.ndarray:
    """The cotangent of ``a`` (argnum 0) or ``b`` (argnum 1) in ``np.tensordot(a, b, axes)``."""
    return einsum_vjp(g, argnum, tensordot_subscripts(np.ndim(a), np.ndim(b), axes), a, b)


def inner_vjp(g: Any, argnum: int, a: Any, b: Any) -> Any:
    """The cotangent of ``a`` or ``b`` in ``np.inner(a, b)`` (contracting the last axes)."""
    if np.ndim(a) == 0 or np.ndim(b) == 0:
        return unbroadcast(_array(g) * (b if argnum == 0 else a), a if argnum == 0 else b)
    return tensordot_vjp(g, argnum, a, b, ([-1], [-1]))


def kron_vjp(g: Any, argnum: int, a: Any, b: Any) -> np.ndarray:
    """The cotangent of ``a`` or ``b`` in ``np.kron(a, b)``."""
    a, b, g = _array(a), _array(b), _array(g)
    nd = max(a.ndim, b.ndim)
    sa = (1,) * (nd - a.ndim) + a.shape
    sb = (1,) * (nd - b.ndim) + b.shape
    blocks = g.reshape([n for pair in zip(sa, sb) for n in pair])
    la, lb = _LETTERS[:nd], _LETTERS[nd: 2 * nd]
    gs = "".join(p + q for p, q in zip(la, lb))
    if argnum == 0:
        return np.einsum(f"{gs},{lb}->{la}", blocks, b.reshape(sb)).reshape(a.shape)
    return np.einsum(f"{gs},{la}->{lb}", blocks, a.reshape(sa)).reshape(b.shape)


def average_vjp(g: Any, a: Any, axis: Any, weights: Any, keepdims: bool, ans: Any, argnum: int) -> np.ndarray:
    """The cotangent of ``a`` (argnum 0) or of ``weights`` (argnum 2) in
    ``np.average(a, axis, weights, keepdims=keepdims)``."""
    a, w = _array(a), _array(weights)
    axes = _axes(axis, a.ndim)
    if w.shape != a.shape:  # 1-D weights along a single axis
        w = np.expand_dims(w, tuple(i for i in range(a.ndim) if i != axes[0]))
    total = np.sum(np.broadcast_to(w, a.shape), axis=axes, keepdims=True)
    g = _expand(g, axes, keepdims)
    if argnum == 0:
        return g * w / total
    out = g * (a - _expand(ans, axes, keepdims)) / total
    return unbroadcast(out, w).reshape(np.shape(weights))


def norm_inf_vjp(g: Any, x: Any, ans: Any, axis: Any, keepdims: bool) -> np.ndarray:
    """The cotangent of ``x`` in the vector norm ``ord=inf`` (or ``-inf``) along ``axis``: like
    ``max(abs(x))``, ties splitting the cotangent evenly."""
    x = _array(x)
    axes = _axes(axis, x.ndim)
    g, ans = _expand(g, axes, keepdims), _expand(ans, axes, keepdims)
    mask = np.abs(x) == ans
    return g * np.sign(x) * mask / np.sum(mask, axis=axes, keepdims=True)


def norm_vjp(g: Any, x: Any, ans: Any, ord: Any = None, axis: Any = None, keepdims: bool = False) -> np.ndarray:
    """The cotangent of ``x`` in ``np.linalg.norm(x, ord, axis, keepdims)`` for vector norms and
    the Frobenius norm, when the rank of ``x`` is only known at run time."""
    x = _array(x)
    if isinstance(axis, int):
        axis = (axis,)
    matrix = len(axis) == 2 if axis is not None else (ord is not None and x.ndim == 2)
    if matrix and ord not in (None, "fro"):
        return matrix_norm_vjp(g, x, ans, ord, axis, keepdims)
    axes = _axes(axis, x.ndim)
    g, ans = _expand(g, axes, keepdims), _expand(ans, axes, keepdims)
    return vector_norm_cotangent(g, x, ans, ord, lambda: norm_inf_vjp(g, x, ans, axes, True))


def vector_norm_cotangent(g: Any, x: Any, ans: Any, ord: Any, inf_norm: Callable[[], Any]) -> Any:
    """``g`` times the derivative of the vector norm ``ans`` of ``x`` (``g`` and ``ans`` with the
    reduced axes kept as size 1). Written with NumPy operations alone, so that it runs on arrays
    here and, traced on symbols, is inlined by the rule of ``np.linalg.norm``; ``inf_norm()``
    gives the ``ord=inf`` case (ties split evenly), which needs a helper of its own."""
    if ord in (None, 2, "fro"):
        return g * x / ans
    if ord == 1:
        return g * np.sign(x)
    if ord == 0:
        return g * 0.0 * x
    if ord in (np.inf, -np.inf):
        return inf_norm()
    return g * x * np.abs(x) ** (ord - 2) / ans ** (ord - 1)


def solve_vjp(g: Any, a: Any, ans: Any, argnum: int, b: Any = None) -> np.ndarray:
    """The cotangent of ``a`` (argnum 0) or ``b`` (argnum 1) in ``ans = np.linalg.solve(a, b)``
    (also batched and broadcast; ``b`` a vector or a stack of matrices, as NumPy >= 2 reads it)."""
    a, ans, g = _array(a), _array(ans), _array(g)
    b_ndim = ans.ndim if b is None else np.ndim(b)
    vector = b_ndim == 1 or (np.lib.NumpyVersion(np.__version__) < "2.0.0" and b_ndim == a.ndim - 1)
    gb = np.linalg.solve(np.swapaxes(a, -1, -2), g[..., None] if vector else g)
    if argnum == 1:
        return unbroadcast(gb[..., 0] if vector else gb, b)
    x = ans[..., None] if vector else ans
    return unbroadcast(-gb @ np.swapaxes(x, -1, -2), a)


def cholesky_vjp(g: Any, chol: Any, upper: bool = False) -> np.ndarray:
    """The cotangent of ``a`` in ``chol = np.linalg.cholesky(a)``, symmetrised (``a`` is read as a
    symmetric matrix; Murray 2016, as in JAX and autograd). ``upper=True``: ``chol`` is the upper
    factor, the transpose of the lower one."""
    chol, g = _array(chol), _array(g)
    if upper:
        chol, g = np.swapaxes(chol, -1, -2), np.swapaxes(g, -1, -2)
    phi = np.tril(np.swapaxes(chol, -1, -2) @ g)
    phi = phi - 0.5 * np.tril(np.triu(phi))  # halve the diagonal
    inv = np.linalg.inv(chol)
    s = np.swapaxes(inv, -1, -2) @ phi @ inv
    return 0.5 * (s + np.swapaxes(s, -1, -2))


# ----------------------------------------------------------------------------- linear algebra helpers
# Each takes the cotangents of a decomposition's outputs ({position: cotangent} for a tuple
# result, positions missing where no cotangent reached) and returns the input's cotangent.


def _mT(a: Any) -> np.ndarray:
    return np.swapaxes(a, -1, -2)


def _part(g: Any, i: int) -> Any:
    """Item ``i`` of a tuple result's cotangent, or None where none reached it."""
    if isinstance(g, dict):
        return g.get(i)
    return g[i]


def _off_diagonal_inverse(w: np.ndarray) -> np.ndarray:
    """F with F[..., i, j] = 1 / (w[j] - w[i]) off the diagonal and 0 on it (distinct w)."""
    diff = w[..., None, :] - w[..., :, None]
    eye = np.eye(w.shape[-1], dtype=bool)
    return np.where(eye, 0.0, 1.0 / np.where(eye, 1.0, diff))


def _diag_embed(d: np.ndarray) -> np.ndarray:
    return d[..., :, None] * np.eye(d.shape[-1], dtype=d.dtype)


def eigh_vjp(g: Any, a: Any, result: Any = None) -> np.ndarray:
    """The cotangent of a symmetric ``a`` in ``result = w, v = np.linalg.eigh(a)`` (or, with no
    ``result``, of ``w = eigvalsh(a)``: ``g`` is then the eigenvalues' cotangent). Needs distinct
    eigenvalues; symmetrised, as ``a`` is read as symmetric."""
    if result is None:
        w, v = np.linalg.eigh(a)
        gw, gv = _array(g), None
    else:
        (w, v), gw, gv = result, _part(g, 0), _part(g, 1)
    inner = _diag_embed(np.zeros(w.shape, w.dtype) if gw is None else _array(gw))
    if gv is not None:
        inner = inner + _off_diagonal_inverse(w) * (_mT(v) @ gv)
    out = v @ inner @ _mT(v)
    return 0.5 * (out + _mT(out))


def _real_eig(a: Any) -> tuple:
    return _real_eigen_pair(*np.linalg.eig(a))


def _real_eigen_pair(w: Any, v: Any, what: str = "gradient") -> tuple:
    """The eigenvalues and eigenvectors ``np.linalg.eig`` returned, as real arrays: derivatives
    of ``eig`` are only supported where every eigenvalue is real. NumPy before 2.5 returns real
    arrays exactly then; from 2.5 on it always returns complex ones, with zero imaginary parts."""
    if np.iscomplexobj(w) or np.iscomplexobj(v):
        if np.any(np.imag(w) != 0) or np.any(np.imag(v) != 0):
            raise SymdiffError(f"the {what} of np.linalg.eig is only supported where every eigenvalue is real")
        w, v = np.real(w), np.real(v)
    return w, v


def real_eigen(v: Any) -> Any:
    """``v``, the eigenvectors of ``np.linalg.eig`` in tangent code, as a real array (see
    :func:`_real_eigen_pair`)."""
    return _real_eigen_pair(np.zeros(()), v, "derivative")[1]


def eig_vjp(g: Any, a: Any, result: Any = None) -> np.ndarray:
    """The cotangent of a real ``a`` in ``result = w, v = np.linalg.eig(a)`` (or, with no
    ``result``, ``w = eigvals(a)``), for real, distinct eigenvalues; ``v``'s columns have unit
    norm, as NumPy returns them."""
    if result is None:
        w, v = _real_eig(a)
        gw, gv = _array(g), None
    else:
        (w, v), gw, gv = _real_eigen_pair(*result), _part(g, 0), _part(g, 1)
    inner = _diag_embed(np.zeros(w.shape, w.dtype) if gw is None else _array(gw))
    if gv is not None:
        gv = gv - v * np.sum(v * gv, axis=-2, keepdims=True)  # the unit-norm normalisation
        inner = inner + _off_diagonal_inverse(w) * (_mT(v) @ gv)
    return np.linalg.solve(_mT(v), inner @ _mT(v))


def svd_vjp(g: Any, a: Any, result: Any = None) -> np.ndarray:
    """The cotangent of ``a`` in ``result = u, s, vh = np.linalg.svd(a, full_matrices=False)`` (or,
    with no ``result``, of ``s = svd(a, compute_uv=False)``: ``g`` is then the singular values'
    cotangent). Needs distinct, nonzero singular values when ``u`` or ``vh`` is differentiated."""
    if result is None:
        u, s, vh = np.linalg.svd(a, full_matrices=False)
        gu, gs, gvh = None, _array(g), None
    else:
        (u, s, vh), gu, gs, gvh = result, _part(g, 0), _part(g, 1), _part(g, 2)
        if u.shape[-1] != vh.shape[-2] and gu is None and gvh is None:  # full matrices, only s used
            u, s, vh = np.linalg.svd(a, full_matrices=False)
        elif u.shape[-1] != vh.shape[-2]:
            raise SymdiffError("the gradient of np.linalg.svd of a non-square matrix needs full_matrices=False")
    v = _mT(vh)
    inner = _diag_embed(np.zeros(s.shape, s.dtype) if gs is None else _array(gs))
    out = 0.0
    if gu is not None or gvh is not None:
        f = _off_diagonal_inverse(s ** 2)
        if gu is not None:
            ug = _mT(u) @ gu
            inner = inner + (f * (ug - _mT(ug))) * s[..., None, :]
            out = out + (gu - u @ ug) / s[..., None, :] @ vh  # (I - U U^T) gU S^-1 V^T
        if gvh is not None:
            gv = _mT(gvh)
            vg = vh @ gv
            inner = inner + s[..., :, None] * (f * (vg - _mT(vg)))
            out = out + u @ (_mT(gv - v @ vg) / s[..., :, None])  # U S^-1 gV^T (I - V V^T)
    return u @ inner @ vh + out


def qr_vjp(g: Any, a: Any, result: Any) -> np.ndarray:
    """The cotangent of ``a`` in ``result = q, r = np.linalg.qr(a)`` (reduced mode). With more
    columns than rows, ``a = [x, y]`` with ``x`` square: ``q, r[:, :m]`` is the QR of ``x`` and
    ``r[:, m:] = q^T y``."""
    q, r = result
    gq, gr = _part(g, 0), _part(g, 1)
    gq = np.zeros(np.shape(q), q.dtype) if gq is None else _array(gq)
    gr = np.zeros(np.shape(r), r.dtype) if gr is None else _array(gr)
    rows = np.shape(a)[-2]
    if rows < np.shape(a)[-1]:
        a = _array(a)
        y, gr_y = a[..., rows:], gr[..., rows:]
        gx = qr_vjp({0: gq + y @ _mT(gr_y), 1: gr[..., :rows]}, a[..., :rows], (q, r[..., :rows]))
        return np.concatenate([gx, q @ gr_y], axis=-1)
    m = r @ _mT(gr) - _mT(gq) @ q
    m = np.tril(m) + _mT(np.tril(m, -1))  # lower triangle copied to the upper one
    return _mT(np.linalg.solve(r, _mT(gq + q @ m)))  # (gQ + Q m) R^-T


def qr_r_vjp(g: Any, a: Any) -> np.ndarray:
    """The cotangent of ``a`` in ``r = np.linalg.qr(a, mode='r')``."""
    return qr_vjp({1: g}, a, np.linalg.qr(a))


def vecdot_vjp(g: Any, x: Any, y: Any, axis: int = -1) -> np.ndarray:
    """The cotangent of ``x`` in ``np.vecdot(x, y, axis=axis)`` (real arrays): ``g`` times ``y``
    along the contracted axis, summed over the axes ``x`` was broadcast along."""
    xm, ym = np.moveaxis(_array(x), axis, -1), np.moveaxis(_array(y), axis, -1)
    return np.moveaxis(unbroadcast(np.expand_dims(g, -1) * ym, xm), -1, axis)


def matrix_power_vjp(g: Any, a: Any, n: int) -> np.ndarray:
    """The cotangent of ``a`` in ``np.linalg.matrix_power(a, n)`` (also batched): the sum over
    ``k`` of ``(A^T)^k g (A^T)^(n-1-k)``; for ``n < 0``, through ``inv(a)``."""
    a, g = _array(a), _array(g)
    if n < 0:
        b = np.linalg.inv(a)
        gb = matrix_power_vjp(g, b, -n)
        return -_mT(b) @ gb @ _mT(b)
    if n == 0:
        return np.zeros(a.shape, dtype=np.result_type(g, float))
    at = _mT(a)
    powers = [np.broadcast_to(np.eye(a.shape[-1], dtype=at.dtype), a.shape)]
    for _ in range(n - 1):
        powers.append(powers[-1] @ at)
    return sum(powers[k] @ g @ powers[n - 1 - k] for k in range(n))


def multi_dot_vjp(g: Any, arrays: Any) -> dict:
    """The cotangents ``{position: cotangent}`` of the arrays in ``np.linalg.multi_dot(arrays)``
    (a 1-D first array is a row, a 1-D last one a column, as multi_dot reads them)."""
    mats = [_array(m) for m in arrays]
    first, last = mats[0].ndim == 1, mats[-1].ndim == 1
    if first:
        mats[0] = mats[0][None, :]
    if last:
        mats[-1] = mats[-1][:, None]
    g = _array(g).reshape(mats[0].shape[0], mats[-1].shape[1])
    out = {}
    for i in range(len(mats)):
        left = g
        for before in mats[:i]:
            left = _mT(before) @ left
        for after in mats[i + 1:][::-1]:
            left = left @ _mT(after)
        out[i] = left.reshape(np.shape(arrays[i]))
    return out


def pinv_vjp(g: Any, a: Any, p: Any) -> np.ndarray:
    """The cotangent of ``a`` in ``p = np.linalg.pinv(a)``, for ``a`` of full rank."""
    g = _array(g)
    gt = _mT(g)
    eye_m, eye_n = np.eye(np.shape(a)[-2]), np.eye(np.shape(a)[-1])
    return (-_mT(p) @ g @ _mT(p) + (eye_m - a @ p) @ gt @ (p @ _mT(p))
            + (_mT(p) @ p) @ gt @ (eye_n - p @ a))


def lstsq_vjp(g: Any, argnum: int, a: Any, b: Any, result: Any) -> np.ndarray:
    """The cotangent of ``a`` (argnum 0) or ``b`` (1) in ``x, res, rank, sv = np.linalg.lstsq(a, b)``
    for ``a`` of full rank, from the cotangents of ``x`` and of the residuals ``res``."""
    if _part(g, 2) is not None or _part(g, 3) is not None:
        raise SymdiffError("the gradient of np.linalg.lstsq flows through the solution and the residuals only")
    a, b, x = _array(a), _array(b), _array(result[0])
    gx, gres = _part(g, 0), _part(g, 1)
    vector = b.ndim == 1
    bm, xm = (b[:, None], x[:, None]) if vector else (b, x)
    p = np.linalg.pinv(a)
    gxm = np.zeros(xm.shape) if gx is None else (_array(gx)[:, None] if vector else _array(gx))
    if argnum == 1:
        out = _mT(p) @ gxm
    else:
        out = pinv_vjp(gxm @ _mT(bm), a, p)
    if gres is not None and np.size(gres):
        resid = a @ xm - bm  # d res = 2 resid^T (da x - db): the a @ dx term is 0 at the optimum
        scaled = 2.0 * resid * _array(gres)
        out = out + (scaled @ _mT(xm) if argnum == 0 else -scaled)
    return out[:, 0] if argnum == 1 and vector else out


def matrix_norm_vjp(g: Any, x: Any, ans: Any, ord: Any, axis: Any = None, keepdims: bool = False) -> np.ndarray:
    """The cotangent of ``x`` in the matrix norm ``np.linalg.norm(x, ord, axis, keepdims)`` (ord 'nuc', 2,
    -2, 1, -1, inf, -inf over the two ``axis``, the last two by default); the extreme singular
    value, column or row must be unique (ties split evenly for columns and rows)."""
    x = _array(x)
    axes = (-2, -1) if axis is None else tuple(axis)
    axes = tuple(int(a) % x.ndim for a in axes)
    g = _expand(g, axes, keepdims)
    moved = np.moveaxis(x, axes, (-2, -1))
    gm = np.moveaxis(_array(g), axes, (-2, -1))
    if ord in ("nuc", 2, -2):
        u, s, vh = np.linalg.svd(moved, full_matrices=False)
        if ord == "nuc":
            out = gm * (u @ vh)
        else:
            k = 0 if ord == 2 else -1
            out = gm * (u[..., :, k:k + 1 or None] @ vh[..., k:k + 1 or None, :])
    elif ord in (1, -1, np.inf, -np.inf):
        sums_axis = -2 if ord in (1, -1) else -1  # ord 1: columns (sum over rows); inf: rows
        sums = np.sum(np.abs(moved), axis=sums_axis, keepdims=True)
        best = np.max(sums, axis=-1 if sums_axis == -2 else -2, keepdims=True) if ord in (1, np.inf) else \
            np.min(sums, axis=-1 if sums_axis == -2 else -2, keepdims=True)
        mask = sums == best
        out = gm * np.sign(moved) * mask / np.sum(mask, axis=(-2, -1), keepdims=True)
    else:
        raise SymdiffError(f"the gradient of np.linalg.norm with the matrix norm ord={ord!r} is not supported")
    return np.moveaxis(out, (-2, -1), axes)


# ----------------------------------------------------------------------------- more NumPy rule helpers


def diff_vjp(g: Any, n: int = 1, axis: int = -1, shape: Any = None) -> np.ndarray:
    """The cotangent of ``x`` (of ``shape``) in ``np.diff(x, n, axis)``: the transposed difference,
    ``n`` times; zeros where ``n`` exceeds the length of ``x`` along ``axis`` (an empty result)."""
    g = _array(g)
    if shape is not None and n > shape[axis]:
        return np.zeros(shape, dtype=np.result_type(g, float))
    for _ in range(n):
        g = -np.diff(g, axis=axis, prepend=0.0, append=0.0)
    return g


def take_vjp(g: Any, x: Any, indices: Any, axis: Any = None) -> np.ndarray:
    """The cotangent of ``x`` in ``np.take(x, indices, axis)``: ``g`` added at the indices taken
    (repeated indices accumulate)."""
    x, g = _array(x), _array(g)
    out = np.zeros(x.size if axis is None else x.shape, dtype=np.result_type(g, float))
    if axis is None:
        _add_at(out, _array(indices), g)
        return out.reshape(x.shape)
    axis = axis % x.ndim
    _add_at(out, (slice(None),) * axis + (_array(indices),), g)
    return out


def take_along_axis_vjp(g: Any, x: Any, indices: Any, axis: Any) -> np.ndarray:
    """The cotangent of ``x`` in ``np.take_along_axis(x, indices, axis)`` (repeats accumulate)."""
    x, g, indices = _array(x), _array(g), _array(indices)
    if axis is None:
        return take_vjp(g, x, indices)
    axis = axis % x.ndim
    full = np.broadcast_shapes(x.shape[:axis] + (1,) + x.shape[axis + 1:], indices.shape)
    # (along an axis where x has size 1 and the indices more, x was broadcast: position 0)
    index = list(np.ix_(*(np.zeros(n, dtype=np.intp) if x.shape[d] == 1 else np.arange(n)
                          for d, n in enumerate(full))))
    index[axis] = np.broadcast_to(indices, full)
    out = np.zeros(x.shape, dtype=np.result_type(g, float))
    _add_at(out, tuple(index), np.broadcast_to(g, full))
    return out


def quantile_vjp(g: Any, x: Any, q: Any, axis: Any = None, keepdims: bool = False, percent: bool = False) -> np.ndarray:
    """The cotangent of ``x`` in ``np.quantile(x, q, axis, keepdims=keepdims)`` (or ``np.percentile``,
    ``percent``; linear interpolation, the default method): each quantile's cotangent goes to the
    two order statistics it interpolates between, by their weights (ties: to one of the equal elements)."""
    x, q = _array(x), np.asarray(q, dtype=float) / (100 if percent else 1)
    axes = _axes(axis, x.ndim)
    rest = [i for i in range(x.ndim) if i not in axes]
    moved = np.transpose(x, rest + list(axes))
    flat = moved.reshape(moved.shape[:len(rest)] + (-1,))
    n = flat.shape[-1]
    position = q.ravel() * (n - 1)
    lo = np.floor(position).astype(int)
    hi = np.minimum(lo + 1, n - 1)
    weights = np.zeros((q.size, n))
    _add_at(weights, (np.arange(q.size), lo), 1.0 - (position - lo))
    _add_at(weights, (np.arange(q.size), hi), position - lo)
    gq = _array(g).reshape(q.size, -1)  # q's axes first, then the axes not reduced (kept ones are 1)
    spread = (gq.T @ weights).reshape(flat.shape)
    out = np.empty(flat.shape, dtype=np.result_type(g, float))
    np.put_along_axis(out, np.argsort(flat, axis=-1), spread, axis=-1)
    return np.transpose(out.reshape(moved.shape), np.argsort(rest + list(axes)))


def cumprod_vjp(g: Any, x: Any, ans: Any, axis: Any = None) -> np.ndarray:
    """The cotangent of ``x`` in ``ans = np.cumprod(x, axis)``: the reversed cumulative sum of
    ``g * ans`` divided by ``x`` where no element is 0; exact with zeros (each element's
    products of the others, O(n^2) along the axis)."""
    x, g = _array(x), _array(g)
    if axis is None:
        return cumprod_vjp(g, x.ravel(), ans, 0).reshape(x.shape)
    if np.all(x != 0):
        return cumsum_vjp(g * ans, x, axis) / x
    moved, gm = np.moveaxis(x, axis, -1), np.moveaxis(g, axis, -1)
    n = moved.shape[-1]
    others = np.broadcast_to(moved[..., None, :], moved.shape + (n,)).copy()
    others[..., np.arange(n), np.arange(n)] = 1.0  # row i: x with x[i] replaced by 1
    products = np.triu(np.cumprod(others, axis=-1))  # [i, k]: prod_{j <= k, j != i} x[j], for k >= i
    return np.moveaxis(np.sum(products * gm[..., None, :], axis=-1), -1, axis)


def append_vjp(g: Any, argnum: int, arr: Any, values: Any, axis: Any = None) -> np.ndarray:
    """The cotangent of ``arr`` (argnum 0) or ``values`` (1) in ``np.append(arr, values, axis)``."""
    g = _array(g)
    if axis is None:
        part = g[:np.size(arr)] if argnum == 0 else g[np.size(arr):]
        return part.reshape(np.shape(arr if argnum == 0 else values))
    first, rest = np.split(g, [np.shape(arr)[axis]], axis=axis)
    return first if argnum == 0 else rest


def rollaxis_vjp(g: Any, x: Any, axis: int, start: int = 0) -> np.ndarray:
    """The cotangent of ``x`` in ``np.rollaxis(x, axis, start)``."""
    ndim = np.ndim(x)
    axis = axis % ndim
    start = start + ndim if start < 0 else start
    to = start - 1 if start > axis else start
    return np.moveaxis(g, to, axis)


def cross_vjp(g: Any, argnum: int, a: Any, b: Any) -> np.ndarray:
    """The cotangent of ``a`` (argnum 0) or ``b`` (1) in ``np.cross(a, b)`` of 3-component vectors
    along the last axis (broadcast): ``b x g`` and ``g x a``."""
    a, b, g = _array(a), _array(b), _array(g)
    if a.shape[-1:] != (3,) or b.shape[-1:] != (3,):
        raise SymdiffError("the gradient of np.cross is supported for 3-component vectors along the last axis")
    part = np.cross(b, g) if argnum == 0 else np.cross(g, a)
    return unbroadcast(part, a if argnum == 0 else b)


def select_vjp(g: Any, condlist: Any, choicelist: Any) -> dict:
    """The cotangent of ``choicelist`` in ``np.select(condlist, choicelist, default)``: each choice
    gets ``g`` where its condition is the first one true."""
    g = _array(g)
    taken = np.zeros(g.shape, dtype=bool)
    out = {}
    for i, (cond, choice) in enumerate(zip(condlist, choicelist)):
        mine = np.broadcast_to(cond, g.shape) & ~taken
        taken = taken | mine
        out[i] = unbroadcast(np.where(mine, g, 0.0), choice)
    return out


def select_default_vjp(g: Any, condlist: Any, default: Any) -> Any:
    """The cotangent of ``default`` in ``np.select(condlist, choicelist, default)``."""
    g = _array(g)
    none = np.ones(g.shape, dtype=bool)
    for cond in condlist:
        none = none & ~np.broadcast_to(cond, g.shape)
    return unbroadcast(np.where(none, g, 0.0), default)


def interp_vjp(g: Any, argnum: int, x: Any, xp: Any, fp: Any) -> np.ndarray:
    """The cotangent of ``x`` (argnum 0) or ``fp`` (2) in ``np.interp(x, xp, fp)`` (no period or
    left/right values): the slope of the segment ``x`` falls in (0 outside ``xp``), or the two
    interpolation weights on ``fp``."""
    x, xp, fp, g = _array(x), _array(xp), _array(fp), _array(g)
    hi = np.clip(np.searchsorted(xp, x, side="right"), 1, len(xp) - 1)
    lo = hi - 1
    width = xp[hi] - xp[lo]
    if argnum == 0:
        inside = (x >= xp[0]) & (x <= xp[-1])
        return np.where(inside, g * (fp[hi] - fp[lo]) / width, 0.0)
    t = np.clip((x - xp[lo]) / width, 0.0, 1.0)
    out = np.zeros(fp.shape, dtype=np.result_type(g, float))
    _add_at(out, lo.ravel(), (g * (1.0 - t)).ravel())
    _add_at(out, hi.ravel(), (g * t).ravel())
    return out


def convolve_vjp(g: Any, argnum: int, a: Any, v: Any, mode: str = "full") -> np.ndarray:
    """The cotangent of ``a`` (argnum 0) or ``v`` (1) in ``np.convolve(a, v, mode)``: ``g`` placed in
    the full-length output, correlated with the other operand."""
    a, v, g = _array(a), _array(v), _array(g)
    n_full = a.size + v.size - 1
    start = {"full": 0, "same": (min(a.size, v.size) - 1) // 2, "valid": min(a.size, v.size) - 1}[mode]
    full = np.zeros(n_full, dtype=np.result_type(g, float))
    full[start:start + g.size] = g
    return np.correlate(full, v if argnum == 0 else a, mode="valid")


def polyval_vjp(g: Any, argnum: int, p: Any, x: Any) -> Any:
    """The cotangent of ``p`` (argnum 0) or ``x`` (1) in ``np.polyval(p, x)``."""
    p, g = _array(p), _array(g)
    if argnum == 1:
        return g * np.polyval(np.polyder(p), x) if p.size > 1 else g * 0.0
    powers = _array(x)[..., None] ** np.arange(p.size - 1, -1, -1)
    return np.sum(g[..., None] * powers, axis=tuple(range(powers.ndim - 1)))


def linspace_vjp(g: Any, argnum: int, start: Any, stop: Any, num: int = 50, endpoint: bool = True,
                 axis: int = 0) -> Any:
    """The cotangent of ``start`` (argnum 0) or ``stop`` (1) in ``np.linspace(start, stop, num,
    endpoint)``: ``start + (stop - start) * t`` with ``t = i / (num - 1)`` (or ``i / num``)."""
    g = np.moveaxis(_array(g), axis, 0)
    steps = num - 1 if endpoint else num
    t = np.arange(num) / steps if steps > 0 else np.zeros(num)
    t = t.reshape((num,) + (1,) * (g.ndim - 1))
    part = np.sum(g * (t if argnum == 1 else 1.0 - t), axis=0)
    return unbroadcast(part, start if argnum == 0 else stop)


def gradient_vjp(g: Any, x: Any, *varargs: Any, axis: Any = None, edge_order: int = 1) -> np.ndarray:
    """The cotangent of ``x`` in ``np.gradient(x, *varargs, axis=axis, edge_order=edge_order)`` for
    one axis (a 1-D ``x``, or an int ``axis``): the transpose of the linear difference operator,
    read off by applying ``np.gradient`` to the identity."""
    x, g = _array(x), _array(g)
    if axis is None and x.ndim != 1:
        raise SymdiffError("the gradient of np.gradient is supported for 1-D arrays or one int axis= "
                           "(of an n-D array it returns a list of arrays)")
    axis = 0 if axis is None else axis % x.ndim
    n = x.shape[axis]
    operator_ = np.gradient(np.eye(n), *varargs, axis=0, edge_order=edge_order)  # [out, in]
    return np.moveaxis(np.tensordot(operator_, np.moveaxis(g, axis, 0), axes=([0], [0])), 0, axis)


def partition_vjp(g: Any, x: Any, ans: Any, axis: Any = -1) -> np.ndarray:
    """The cotangent of ``x`` in ``ans = np.partition(x, kth, axis)``: ``ans`` is a permutation of
    ``x``; equal ranks in both sortings pair each output with its element."""
    x, g, ans = _array(x), _array(g), _array(ans)
    if axis is None:
        return partition_vjp(g, x.ravel(), ans, 0).reshape(x.shape)
    out = np.empty(x.shape, dtype=np.result_type(g, float))
    ranked = np.take_along_axis(g, np.argsort(ans, axis=axis), axis=axis)
    np.put_along_axis(out, np.argsort(x, axis=axis), ranked, axis=axis)
    return out


def nan_mask(x: Any) -> Any:
    """1 where ``x`` is not NaN, 0 where it is (the share of the cotangent of ``np.nansum``)."""
    return np.logical_not(np.isnan(x))


def concatenator_vjp(g: Any, how: str, index: Any) -> dict:
    """The cotangent of the items of ``np.r_[index]`` (``how`` 'r': joined along the first axis) or
    ``np.c_[index]`` ('c': 1-D items as columns, joined along the last axis)."""
    items = index if isinstance(index, tuple) else (index,)
    if any(isinstance(item, str) for item in items):
        raise SymdiffError(f"the gradient of np.{how}_[...] with a string directive is not supported")
    join = np.r_ if how == "r" else np.c_
    axis = 0 if how == "r" else -1
    sizes = np.cumsum([join[item].shape[axis] for item in items])[:-1]
    pieces = np.split(_array(g), sizes, axis=axis)
    return {i: piece.reshape(np.shape(item)) if not isinstance(item, slice) else piece
            for i, (piece, item) in enumerate(zip(pieces, items))}
