"""Calls that change an array, list or dict in place, and what to write instead.

symdiff models a few updates as functional ones (``a[i] = v``, ``a += b``, ``xs.append(v)``
as a statement); every other mutating method or function would change a value behind the
compiler's back, so the lowering refuses it with the advice here (lower.py asks
:func:`method_message` and :func:`function_message`). In the advice, ``{r}`` is the
receiver's source, ``{args}`` the call's arguments (``{,args}``: a comma and them, if any),
``{a0}``, ``{a1}`` its positional arguments, ``{name}`` the callee as written.
"""

from __future__ import annotations

import ast
import bisect
import functools
import heapq
import inspect
import operator
import random
from typing import Any

import numpy as np

ARRAY_METHODS = {
    "sort": "in-place {r}.sort() is not supported: write {r} = np.sort({r}{,args})",
    "partition": "in-place {r}.partition() is not supported: write {r} = np.partition({r}{,args})",
    "fill": "in-place {r}.fill() is not supported: write {r} = np.full({r}.shape, {args})",
    "resize": "in-place {r}.resize() is not supported: slice or np.pad {r} into a new array",
    "put": "in-place {r}.put() is not supported: use item assignment, {r}[indices] = values",
    "itemset": "in-place {r}.itemset() is not supported: use item assignment, {r}[index] = value",
    "setfield": "in-place {r}.setfield() is not supported: build a new array instead",
    "setflags": "{r}.setflags() changes the array in place and is not supported: remove it "
                "(the gradient never writes into its arguments)",
    "byteswap": "in-place {r}.byteswap(inplace=True) is not supported: write {r} = {r}.byteswap()",
}

LIST_METHODS = {
    "sort": "in-place {r}.sort() is not supported: sort an array, {r} = list(np.sort(np.array({r})))",
    "reverse": "in-place {r}.reverse() is not supported: write {r} = {r}[::-1]",
    "insert": "in-place {r}.insert() is not supported: build the list in the order you need, "
              "with a display or with {r}.append(...)",
    "pop": "in-place {r}.pop() is not supported: read the item, {r}[{index}], and build the list "
           "of the rest by slicing ({r} = {r}[:-1] for the last item)",
    "extend": "in-place {r}.extend() is not supported: append the items one by one, "
              "for item in ...: {r}.append(item)",
    "remove": "in-place {r}.remove() is not supported: build a new list without the item, "
              "with a list comprehension",
    "clear": "in-place {r}.clear() is not supported: write {r} = []",
    "append": "{r}.append() is supported only as a statement on a list variable built in the "
              "function (name.append(value)): bind the list to a name first and append in a "
              "statement of its own",
}

DICT_METHODS = {
    "update": "in-place {r}.update() is not supported: assign the keys one by one, {r}[key] = value",
    "pop": "in-place {r}.pop() is not supported: read {r}[key], and build a new dict without "
           "the key",
    "popitem": "in-place {r}.popitem() is not supported: read {r}[key], and build a new dict "
               "without the key",
    "setdefault": "in-place {r}.setdefault() is not supported: assign {r}[key] = default "
                  "before the first read instead",
    "clear": "in-place {r}.clear() is not supported: write {r} = {{}}",
}

# methods of other objects (a random Generator made in the function) that change an argument
ANY_METHODS = {
    "shuffle": "{r}.shuffle() shuffles its argument in place: index with a permutation instead, "
               "{a0} = {a0}[{r}.permutation(len({a0}))]",
}

_BY_RECEIVER = {"array": ARRAY_METHODS, "list": LIST_METHODS, "dict": DICT_METHODS}
_OPERATOR_METHODS = {"__setitem__", "__delitem__", "__iadd__", "__isub__", "__imul__", "__itruediv__",
                     "__ifloordiv__", "__imod__", "__ipow__", "__imatmul__", "__ior__", "__iand__", "__ixor__"}
OPERATOR_METHOD = ("calling {r}.{method}() directly is not supported: write the operator "
                   "({r}[index] = value, {r} += value)")

_FUNCTION_ADVICE = {
    "copyto": "np.copyto writes into its argument: assign a new array, "
              "{a0} = np.broadcast_to({a1}, {a0}.shape).copy() (np.where(mask, {a1}, {a0}) for where=)",
    "put": "np.put writes into its argument: use item assignment, {a0}[indices] = values",
    "place": "np.place writes into its argument: write {a0} = np.where(mask, values, {a0})",
    "putmask": "np.putmask writes into its argument: write {a0} = np.where(mask, values, {a0})",
    "put_along_axis": "np.put_along_axis writes into its argument: use item assignment with "
                      "index arrays, {a0}[rows, cols] = values",
    "fill_diagonal": "np.fill_diagonal writes into its argument: build the array with np.where "
                     "or item assignment",
}
FUNCTIONS = {getattr(np, name): advice for name, advice in _FUNCTION_ADVICE.items() if hasattr(np, name)}
_HEAP = "{name} changes its list argument in place: build a new sorted list instead (sorted or np.sort)"
FUNCTIONS.update({getattr(heapq, name): _HEAP for name in ("heappush", "heappop", "heapify", "heapreplace",
                                                          "heappushpop")})
FUNCTIONS.update({getattr(bisect, name): _HEAP for name in ("insort", "insort_left", "insort_right")})
FUNCTIONS[operator.setitem] = "operator.setitem writes into its argument: use item assignment, {a0}[index] = value"
FUNCTIONS[operator.delitem] = "operator.delitem changes its argument in place: build a new list or dict instead"
_METHOD_OWNERS = {np.ndarray: "array", list: "list", dict: "dict"}

SHUFFLE = ("{name} shuffles its argument in place: index with a permutation instead, "
           "{a0} = {a0}[np.random.permutation(len({a0}))]")
UFUNC_AT = ("{name} updates its first argument in place: compute the result as a new array "
            "(for np.add.at: {a0} = {a0} + np.eye(n)[indices].T @ values)")
OUT = "out= is not supported: write {target} = {call}"
WHERE_UFUNC = ("where= on a ufunc leaves the other entries unspecified and is not supported: "
               "write np.where(condition, {call}, fallback)")
WHERE_REDUCTION = ("where= is not supported: mask the input instead, {masked} (with the "
                   "reduction's identity in place of 0.0)")


def method_message(call: ast.Call, receiver: str | None) -> str | None:
    """Why the method call ``call`` cannot be compiled, if it mutates its receiver.

    ``receiver`` is what the receiver is known to be: ``"array"``, ``"list"``, ``"dict"``,
    ``"other"`` (a number, a tuple, an object without these methods), or None (unknown: any of
    the three)."""
    name = call.func.attr
    if name == "byteswap" and not _true_argument(call, "inplace", 0):
        return None
    if name in _OPERATOR_METHODS and receiver != "other":
        return _fill(OPERATOR_METHOD, call, method=name)
    tables = [_BY_RECEIVER[receiver]] if receiver in _BY_RECEIVER else \
        [*_BY_RECEIVER.values(), ANY_METHODS] if receiver is None else []
    for table in tables:
        if name in table:
            return _fill(table[name], call)
    return None


def function_message(fn: Any, call: ast.Call, name: str) -> str | None:
    """Why calling ``fn`` (written ``name``) as ``call`` cannot be compiled: it writes into an
    argument, or ``call`` passes ``out=``/``where=`` (or ``out`` by position)."""
    owner = getattr(fn, "__self__", None)
    if isinstance(owner, (np.random.RandomState, np.random.Generator, random.Random)) \
            and getattr(fn, "__name__", "") == "shuffle":
        return _fill(SHUFFLE, call, name=name)
    receiver = _METHOD_OWNERS.get(getattr(fn, "__objclass__", None))
    if receiver is not None and call.args:  # np.ndarray.sort(y), list.sort(xs): the method on y
        as_method = ast.Call(ast.Attribute(call.args[0], fn.__name__), call.args[1:], call.keywords)
        message = method_message(as_method, receiver)
        if message is not None:
            return message
    if isinstance(owner, np.ufunc) and getattr(fn, "__name__", "") == "at":
        return _fill(UFUNC_AT, call, name=name)
    try:
        advice = FUNCTIONS.get(fn)
    except TypeError:  # unhashable callable
        advice = None
    if advice is not None:
        return _fill(advice, call, name=name)
    return keyword_message(fn, call)


def keyword_message(fn: Any, call: ast.Call) -> str | None:
    """Why ``call`` cannot be compiled because of an ``out``/``where`` argument (``fn`` is the
    callee when known: it tells a ufunc, and which positional argument is ``out``)."""
    keywords = {k.arg: k.value for k in call.keywords}
    out = keywords.get("out")
    if out is None and fn is not None:
        position = _positional_out(fn, len(call.args))
        out = call.args[position] if position is not None else None
    if out is not None and not (isinstance(out, ast.Constant) and out.value is None):
        target = ast.unparse(out.elts[0] if isinstance(out, ast.Tuple) and out.elts else out)
        return OUT.format(target=target, call=_without(call, out))
    where = keywords.get("where")
    if where is not None and not (isinstance(where, ast.Constant) and where.value is True):
        if isinstance(fn, np.ufunc):
            return WHERE_UFUNC.format(call=_without(call, where))
        return WHERE_REDUCTION.format(masked=_masked(call, where))
    return None


def _positional_out(fn: Any, nargs: int) -> int | None:
    """The index of the positional argument of ``fn`` that is its ``out``, if ``nargs`` reach it."""
    try:
        position = _out_position(fn)
    except TypeError:  # unhashable callable
        return None
    return position if position is not None and position < nargs else None


@functools.lru_cache(maxsize=1024)
def _out_position(fn: Any) -> int | None:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        if isinstance(fn, np.ufunc):  # (NumPy before 2.1 gives ufuncs no signature) out follows the inputs
            return fn.nin
        return None
    for i, param in enumerate(params):
        if param.kind not in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            return None
        if param.name == "out" or (param.name.startswith("out") and param.name[3:].isdigit()):
            return i
    return None


def _true_argument(call: ast.Call, name: str, position: int) -> bool:
    """Whether argument ``name`` (or positional ``position``) is given and not the constant False."""
    value = next((k.value for k in call.keywords if k.arg == name), None)
    if value is None and len(call.args) > position:
        value = call.args[position]
    return value is not None and not (isinstance(value, ast.Constant) and not value.value)


def _without(call: ast.Call, argument: ast.expr) -> str:
    """The source of ``call`` without ``argument`` (nor the positional ones after it)."""
    args = call.args[:call.args.index(argument)] if argument in call.args else call.args
    keywords = [k for k in call.keywords if k.value is not argument]
    return ast.unparse(ast.Call(call.func, args, keywords))


def _masked(call: ast.Call, where: ast.expr) -> str:
    """``call`` (a reduction) with ``where=`` moved into an ``np.where`` around its input."""
    func, args = call.func, list(call.args)
    keywords = [k for k in call.keywords if k.value is not where]
    if isinstance(func, ast.Attribute) and not args and not _is_module_path(func.value):  # x.sum(where=m)
        masked = ast.Call(ast.Name("np.where"), [where, func.value, ast.Constant(0.0)], [])
        return ast.unparse(ast.Call(ast.Attribute(masked, func.attr), [], keywords))
    if args:
        args[0] = ast.Call(ast.Name("np.where"), [where, args[0], ast.Constant(0.0)], [])
    return ast.unparse(ast.Call(func, args, keywords))


def _is_module_path(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id in ("np", "numpy")


def _fill(template: str, call: ast.Call, name: str = "", method: str = "") -> str:
    func = call.func
    receiver = ast.unparse(func.value) if isinstance(func, ast.Attribute) else ""
    args = ", ".join([ast.unparse(a) for a in call.args] + [ast.unparse(k) for k in call.keywords])
    positional = {f"a{i}": ast.unparse(a) for i, a in enumerate(call.args)}
    for i in range(len(call.args), 2):
        positional[f"a{i}"] = ("a", "b")[i]
    template = template.replace("{,args}", ", {args}" if args else "")
    return template.format(r=receiver, args=args or "value", index=args or "-1", name=name, method=method,
                           **positional)
