"""The primitive table checked against reality.

Every pass trusts the records of :mod:`symdiff.primitives` (filled in by ``symdiff/rules.py``):
a static shape that is wrong makes broadcasting be undone wrongly, a function marked as
returning a new array when it may return a view lets an update in place reach the caller's
array. These tests check the records themselves:

* every record of the table says what it knows of shape, dtype and aliasing;
* every method spelling (``x.sum()`` is ``np.sum``) reaches its record, and the NumPy method
  takes the function's arguments in the same order and computes the same;
* the facts hold on real NumPy: the functions of the finite-difference sweeps (and ``MORE``
  calls, ``GRADIENTS`` of loops and containers) are lowered to IR for their arguments, as
  :mod:`symdiff.api` does, and the IR -- as lowered, optimised, and the gradient built from it --
  is run by a small interpreter (:class:`FactChecker`) that compares each call's static shape,
  dtype, kind and aliasing with the value the call really returns;
* what the families of callees without a row say holds (ufuncs of several outputs, ``math``);
* the facts that were once wrong (``FIXED``), where the compiled gradient went wrong too;
* adding a NumPy function is one row of the table.
"""

from __future__ import annotations

import inspect
import linecache
import math
import operator
from typing import Any, Callable

import numpy as np
import pytest
import test_numpy_rules
import test_numpy_systematic as systematic
import test_rules
from fd import numerical_grad

import symdiff
from symdiff import api, forward, lower, optimize, primitives, reverse, rules, runtime, shapes
from symdiff.frontend import parse_function
from symdiff.ir import RANGE, SCALAR, SEQUENCE, Build, BuildDict, Function, GetAttr, Method, Op, OpKind, Region, Value

# ============================================================================ the records say what they know


def test_every_record_classifies_shape_dtype_and_aliasing() -> None:
    """No record of the table leaves its shape rule, dtype rule or aliasing unsaid."""
    missing = {r.name: r.classified() for r in primitives.records() if not r.user and r.classified()}
    assert not missing, f"records leaving facts unclassified: {missing}"


def test_every_record_is_reached_through_its_spellings() -> None:
    """``lookup`` of a record's function, and of ``Method(name)`` for its method spelling, is that record."""
    for record in primitives.records():
        for spelling in primitives.spellings(record):
            assert primitives.lookup(spelling) is record, (
                f"{primitives.spelling(spelling)} does not reach the record of {record.name}")


# ============================================================================ method spellings


def _method_records() -> list[primitives.Primitive]:
    return [r for r in primitives.records() if r.method is not None]


def _parameters(fn: Any) -> list[inspect.Parameter] | None:
    try:
        return list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):  # no signature (older NumPy): nothing to compare
        return None


def _positional(params: list[inspect.Parameter]) -> list[str]:
    return [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def _keywords(params: list[inspect.Parameter]) -> set[str]:
    return {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def _takes_any_keyword(params: list[inspect.Parameter]) -> bool:
    return any(p.kind is p.VAR_KEYWORD for p in params)


@pytest.mark.parametrize("record", _method_records(), ids=lambda r: r.name)
def test_method_spelling_takes_the_functions_arguments(record: primitives.Primitive) -> None:
    """``x.<method>(*a, **k)`` is looked up as ``fn(x, *a, **k)``: the method exists on ndarray, the
    function takes at least as many arguments by position, and each keyword the method takes is
    one the function takes (the argument at the same position, or one it also takes under that
    name, like ``x.clip(min, max)`` and ``np.clip(x, a_min, a_max, min=, max=)``)."""
    assert primitives.lookup(Method(record.method)) is record
    method = getattr(np.ndarray, record.method, None)
    assert callable(method), f"np.ndarray has no method {record.method!r} (the spelling of {record.name})"
    method_params, fn_params = _parameters(method), _parameters(record.fn)
    if method_params is None or fn_params is None:
        pytest.skip("this NumPy gives no signature to compare")
    method_params = method_params[1:]  # (after self)
    method_positional, fn_positional = _positional(method_params), _positional(fn_params)[1:]
    assert len(method_positional) <= len(fn_positional), (
        f"x.{record.method}() takes {method_positional} by position, {record.name} only {fn_positional}")
    by_keyword = _keywords(method_params)
    for at, (mine, theirs) in enumerate(zip(method_positional, fn_positional)):
        if mine in by_keyword:  # (a positional-only parameter's name does not matter)
            assert mine == theirs or mine in _keywords(fn_params), (
                f"x.{record.method}()'s argument {at + 1} is {mine!r}, {record.name}'s is {theirs!r}")
    for name in by_keyword:
        assert name in _keywords(fn_params) or _takes_any_keyword(fn_params), (
            f"x.{record.method}() takes {name}=, {record.name} does not")


_PROBES = [(), (0,), (1,), (-1,), (0, 1), (1, 0), ((0, 1),), ([0, 2],), (0.5,), (-0.5, 0.5), (True,)]


def _outcome(call: Callable) -> Any:
    """What ``call()`` returns (as an array, or a tuple of arrays), or the type of what it raises."""
    try:
        with np.errstate(all="ignore"):
            result = call()
    except Exception as error:  # noqa: BLE001 -- the outcome compared
        return type(error)
    return tuple(np.asarray(r) for r in result) if isinstance(result, tuple) else np.asarray(result)


def _same_outcome(a: Any, b: Any) -> bool:
    if isinstance(a, tuple) or isinstance(b, tuple):
        return isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b) and all(
            _same_outcome(p, q) for p, q in zip(a, b))
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)


@pytest.mark.parametrize("record", _method_records(), ids=lambda r: r.name)
def test_method_spelling_computes_what_the_function_does(record: primitives.Primitive) -> None:
    """On a matrix, ``x.<method>(*args)`` and ``fn(x, *args)`` return the same array wherever both
    run, for each of a handful of argument lists, and both run on some of them. (Where only one
    runs, NumPy checks its arguments differently: ``x.clip(0)`` runs, ``np.clip(x, 0)`` raises.)"""
    x = np.array([[0.5, -1.5, 2.0], [3.0, 0.0, -2.5], [1.0, 4.0, -0.25]])
    both = 0
    for args in _PROBES:
        by_method = _outcome(lambda args=args: getattr(x.copy(), record.method)(*args))
        by_function = _outcome(lambda args=args: record.fn(x.copy(), *args))
        if isinstance(by_method, type) or isinstance(by_function, type):
            continue
        assert _same_outcome(by_method, by_function), (
            f"x.{record.method}{args!r} and {record.name}(x, *{args!r}) differ: {by_method!r} and {by_function!r}")
        both += 1
    assert both, f"x.{record.method}() and {record.name} run on none of the same arguments"


def test_method_records_name_real_methods() -> None:
    """Each method callee with a record of its own (``x.reshape``, ``x.astype``, ``d.items``) is a
    method of an ndarray, a list, a tuple or a dict."""
    owners = (np.ndarray, list, tuple, dict)
    for record in primitives.records():
        if type(record.fn) is Method:
            assert any(hasattr(t, record.fn.name) for t in owners), f"no type has a method {record.fn.name!r}"


# ============================================================================ the fact checker
# An interpreter of the IR that runs a lowered function on real arguments, so that every IR value
# gets the value it has at run time, and compares what the compiler inferred of each call's
# result (from the callee's record) with what the call really returned.

_NUMBERS = (int, float, bool)


def _arrays_in(value: Any) -> list[np.ndarray]:
    """The ndarrays among ``value`` and the items of a tuple, list or dict it is (one level)."""
    if isinstance(value, np.ndarray):
        return [value]
    if isinstance(value, (tuple, list)):
        return [v for v in value if isinstance(v, np.ndarray)]
    if isinstance(value, dict):
        return [v for v in value.values() if isinstance(v, np.ndarray)]
    return []


class _Stopped(Exception):
    """A call raised: the rest of the function is not run."""


class FactChecker:
    """Runs IR functions (:meth:`run`), checking each call against the facts its record gave
    the compiler; what does not hold is collected in ``failures`` (one line each)."""

    def __init__(self, where: str, natures: dict | None = None):
        self.where = where
        self.natures = natures or {}  # what the lowering knew of values of unknown kind
        self.env: dict[Value, Any] = {}
        self.failures: list[str] = []
        self.checked: set[str] = set()  # spellings of the callees whose calls were checked

    # ------------------------------------------------------------------ running

    def run(self, fn: Function, args: list) -> list:
        """Run ``fn`` on ``args``; its yields."""
        return self.region(fn.body, list(args))

    def get(self, v: Value) -> Any:
        if v in self.env:
            return self.env[v]
        if v.is_const:
            return v.const
        raise KeyError(f"{v!r} read before it is defined")

    def region(self, region: Region, params: list) -> list:
        assert len(params) == len(region.params), "a region run with the wrong number of values"
        self.env.update(zip(region.params, params))
        for op in region.ops:
            self.op(op)
        return [self.get(y) for y in region.yields]

    def op(self, op: Op) -> None:
        if op.kind is OpKind.CONST:
            self.env[op.result] = op.fn
        elif op.kind is OpKind.CALL:
            self.call(op)
        elif op.kind is OpKind.IF:
            values = self.region(op.then if self.get(op.test) else op.orelse, [])
            self.env.update(zip(op.results, values))
        elif op.kind is OpKind.FOR:
            carried = [self.get(v) for v in op.inits]
            for item in self.get(op.iterable):
                carried = self.region(op.body, [item, *carried])
            self.env.update(zip(op.results, carried))
        else:
            carried = [self.get(v) for v in op.inits]
            while self.region(op.cond, carried)[0]:
                carried = self.region(op.body, carried)
            self.env.update(zip(op.results, carried))

    def call(self, op: Op) -> None:
        args = [self.get(v) for v in op.positional]
        kwargs = {k: self.get(v) for k, v in op.keywords.items()}
        try:
            result = self.invoke(op.fn, args, kwargs)
        except Exception as error:  # noqa: BLE001 -- what the compiler built does not run
            self.failures.append(f"{self.where}: {primitives.spelling(op.fn)} (line {op.line}) raised "
                                 f"{type(error).__name__}: {error} (a fact before it may be wrong)")
            raise _Stopped from error
        self.env[op.result] = result
        self.check(op, args, result)

    @staticmethod
    def invoke(fn: Any, args: list, kwargs: dict) -> Any:
        """What generated code does for a call of ``fn``."""
        if type(fn) is Method:
            return getattr(args[0], fn.name)(*args[1:], **kwargs)
        if type(fn) is GetAttr:
            return getattr(args[0], fn.name)
        if type(fn) is Build:
            return slice(*args) if fn.what == "slice" else {"tuple": tuple, "list": list}[fn.what](args)
        if type(fn) is BuildDict:
            return dict(zip(fn.keys, args))
        return fn(*args, **kwargs)

    # ------------------------------------------------------------------ checking

    def fail(self, op: Op, claim: str, result: Any) -> None:
        shown = f"{type(result).__name__}" + (f" of shape {result.shape} and dtype {result.dtype}"
                                                if isinstance(result, (np.ndarray, np.generic)) else f" {result!r:.60}")
        self.failures.append(f"{self.where}: {primitives.spelling(op.fn)} (line {op.line}): {claim}, "
                             f"but it returned {shown}")

    def size(self, dim: Any) -> int | None:
        """The size ``dim`` stands for in this run (None where it names no value that ran)."""
        if type(dim) is int:
            return dim
        if isinstance(dim, shapes.OffsetDim):
            base = self.size(dim.base)
            return None if base is None else base - dim.minus
        source = dim.source or dim.root().source
        if source is None or source[0] not in self.env:
            return None
        value, axis = self.env[source[0]], source[1]
        return np.shape(value)[axis] if -np.ndim(value) <= axis < np.ndim(value) else -1

    def dims_hold(self, dims: tuple, real: tuple) -> bool:
        """Whether static ``dims`` describe the sizes ``real``."""
        if len(dims) != len(real):
            return False
        for dim, n in zip(dims, real):
            if isinstance(dim, shapes.Dim):
                if n == 1:
                    return False
                for other in (dim, dim.root()):  # (the dims it was unified with are the same size)
                    if other.source is not None and self.size(other) not in (None, n):
                        return False
            elif self.size(dim) not in (None, n):
                return False
        return True

    def check(self, op: Op, args: list, result: Any) -> None:
        """Check what the compiler inferred of ``op``'s result against ``result``, its value."""
        record = primitives.lookup(op.fn)
        self.checked.add(primitives.spelling(op.fn))
        self.check_shape(op, result)
        self.check_kind(op, result)
        self.check_dtype(op, result)
        self.check_record(op, record, args, result)
        if isinstance(result, np.ndarray):
            self.check_alias(op, record, args, result)

    def check_shape(self, op: Op, result: Any) -> None:
        """The static shape, and the sizes a shape value (``x.shape``, ``(n, 3)``) holds."""
        value = op.result
        if value.shape is not None:
            int_tuple = value.kind == SEQUENCE and type(result) is tuple and all(type(i) is int for i in result)
            if not isinstance(result, (np.ndarray, np.generic, *_NUMBERS)) and not int_tuple:
                self.fail(op, f"the static shape {value.shape} says it returns an array, a number "
                              "or a tuple of ints", result)
            elif not self.dims_hold(value.shape, np.shape(result)):
                self.fail(op, f"the static shape is {value.shape}", result)
        if value.dims is not None:
            real = (result,) if value.integer else result  # (a size read off a shape: one dim)
            if not (type(real) is tuple and all(isinstance(n, int) for n in real) and self.dims_hold(value.dims, real)):
                self.fail(op, f"the result holds the sizes {value.dims}", result)
        if value.integer and type(result) is not int:
            self.fail(op, "the result is a Python int", result)

    def check_kind(self, op: Op, result: Any) -> None:
        """The static kind, and what the lowering knew of a value of unknown kind (its nature)."""
        kind = op.result.kind
        if op.result.pytype is np.float64:  # an element of a float64 array, or arithmetic on one
            if kind != SCALAR or type(result) is not np.float64:
                self.fail(op, "it is a NumPy float64 scalar", result)
        elif kind == SCALAR and type(result) not in _NUMBERS:
            self.fail(op, "its kind is a Python number", result)
        elif type(kind) is int and not (isinstance(result, np.ndarray) and result.ndim == kind):
            self.fail(op, f"its kind is an ndarray of {kind} axes", result)
        elif kind == RANGE and type(result) is not range:
            self.fail(op, "its kind is a range", result)
        nature = self.natures.get(op.result)
        if nature == "array" and not (isinstance(result, np.ndarray) and result.ndim > 0):
            self.fail(op, "its nature is an ndarray with axes", result)
        elif nature == "ndarray" and not isinstance(result, np.ndarray):
            self.fail(op, "its nature is an ndarray", result)
        elif nature == "number" and not isinstance(result, (*_NUMBERS, np.generic)):
            self.fail(op, "its nature is a number", result)

    def check_dtype(self, op: Op, result: Any) -> None:
        """The dtype: float64, or a mask (a real dtype no wider than float64)."""
        dtype = op.result.dtype
        if dtype is shapes.F64 and not (type(result) is float or getattr(result, "dtype", None) == np.float64):
            self.fail(op, "its dtype is float64", result)
        elif dtype is shapes.MASK and not _is_mask(result):
            self.fail(op, "it is a mask (booleans, or another real dtype no wider than float64)", result)

    def check_record(self, op: Op, record: primitives.Primitive, args: list, result: Any) -> None:
        """What the record says of every call: an ndarray, and on Python numbers a number (a float)."""
        if record.ndarray and not isinstance(result, np.ndarray):
            self.fail(op, "its record says it surely returns an ndarray", result)
        if not args or op.kwnames or not all(type(a) in _NUMBERS for a in args):
            return
        if record.float_result and type(result) is not float:
            self.fail(op, "its record says it returns a Python float on numbers", result)
        if record.on_numbers and type(result) not in _NUMBERS:
            self.fail(op, "its record says it returns a Python number on numbers", result)

    def check_alias(self, op: Op, record: primitives.Primitive, args: list, result: np.ndarray) -> None:
        """A new array shares memory with no argument; a view (or the argument itself) only
        with the argument it may view (or with arrays that overlap that one)."""
        given = [a for arg in [*args, *(self.get(v) for v in op.keywords.values())] for a in _arrays_in(arg)]
        shared = [a for a in given if np.shares_memory(result, a)]
        if record.alias == primitives.FRESH and shared:
            self.fail(op, "its record says it returns a new array, sharing no memory with its arguments", result)
        elif record.alias in (primitives.VIEW, primitives.ITSELF) and shared:
            # (the argument it may view, or be; of a list or tuple, its items)
            viewed = _arrays_in(args[record.viewed]) if len(args) > record.viewed else []
            if any(not any(a is v or np.shares_memory(a, v) for v in viewed) for a in shared):
                self.fail(op, f"its record says it {'may view' if record.alias == primitives.VIEW else 'may be'} its "
                          f"argument {record.viewed}, sharing memory with no other argument", result)
            elif record.alias == primitives.ITSELF and not any(result is v for v in viewed):
                self.fail(op, f"its record says it returns its argument {record.viewed} itself or a new array", result)


def _is_mask(value: Any) -> bool:
    """Booleans, or other real numbers no wider than float64 (see shapes.MASK)."""
    if type(value) in _NUMBERS:
        return True
    dtype = getattr(value, "dtype", None)
    return isinstance(dtype, np.dtype) and dtype.kind in "biuf" and dtype.itemsize <= 8


def check_facts(fn: Callable, args: list, argnums: tuple, where: str) -> FactChecker:
    """Lower ``fn`` specialised for ``args`` as :mod:`symdiff.api` does, and run the IR with a
    :class:`FactChecker`: as lowered, once optimised, and (with ``argnums``) the gradient function
    built from it (its backward sweep calls the rules' runtime functions)."""
    parsed = parse_function(fn)
    key = [api._guard_key(a) for a in args]
    lowering = lower.Lowerer(parsed, key)
    primal = lowering.lower()
    checker = FactChecker(where, lowering.nature)
    for stage in ("lowered", "optimised", "gradient") if argnums else ("lowered", "optimised"):
        if stage == "optimised":
            optimize.optimize(primal)
        if stage == "gradient":
            if forward.applies(primal, list(argnums), False):
                primal = forward.forward(primal, argnums[0], as_tuple=True)
            else:
                primal = reverse.reverse(primal, list(argnums), as_tuple=True, recursive_vjp=api.recursive_vjp)
        checker.where = f"{where} ({stage})"
        checker.env = {}
        try:
            checker.run(primal, [_copied(a) for a in args])
        except _Stopped:
            break
    return checker


def _copied(value: Any) -> Any:
    return np.copy(value) if isinstance(value, np.ndarray) else value


# ============================================================================ the facts on real NumPy


def _report(failures: list[str], checked: int) -> str:
    shown = "\n".join(failures[:25])
    more = f"\n... and {len(failures) - 25} more" if len(failures) > 25 else ""
    return f"{len(failures)} facts do not hold (in {checked} functions):\n{shown}{more}"


SWEEP_DTYPES = ("float64", "float32", "mixed", "npscalar")


@pytest.mark.parametrize("dtype", SWEEP_DTYPES)
def test_facts_hold_on_the_systematic_sweep(dtype: str) -> None:
    """Each function of tests/test_numpy_systematic.py, lowered for its arguments (and optimised,
    and differentiated), computes values whose shape, dtype, kind and aliasing are what the
    compiler inferred from the records."""
    failures: list[str] = []
    cases = [c for c in systematic.CASES if c.dtype == dtype]
    for c in cases:
        f, _ = systematic.functions(c)
        failures += check_facts(f, systematic.arguments(c), c.argnums, c.id).failures
    assert not failures, _report(failures, len(cases))


@pytest.mark.parametrize("module", [test_rules, test_numpy_rules], ids=lambda m: m.__name__)
def test_facts_hold_on_the_rule_tables(module: Any) -> None:
    """The same for the functions of tests/test_rules.py and tests/test_numpy_rules.py."""
    failures: list[str] = []
    for c in module.CASES:
        failures += check_facts(c.fn, list(c.args()), c.argnums, c.id).failures
    assert not failures, _report(failures, len(module.CASES))


# Calls the sweeps do not make: functions without derivatives, creation functions, attribute
# reads, containers and loops, and the arguments at which a NumPy function returns its own
# argument or a view of it (np.diff(x, 0) is x itself). Each is the body of
# ``def f(x, sq, v, t, s): return EXPR`` with x of shape (2, 3), sq (3, 3), v (3,) sorted, t a float
# and s a 0-d array.
MORE = [
    # comparisons, masks and rounding
    "np.greater(x, 0.0)", "np.less(x, v)", "np.greater_equal(x, 0.5)", "np.less_equal(x, v)", "np.equal(x, x)",
    "np.not_equal(x, v)", "x != v", "x == 0.5", "np.logical_and(x > 0, x < 1)", "np.logical_or(x > 0, x < -1)",
    "np.logical_not(x > 0)", "np.logical_xor(x > 0, x < 1)", "(x > 0) & (x < 1)", "(x > 0) | (x < 1)",
    "(x > 0) ^ (x < 1)", "~(x > 0)", "np.isnan(x)", "np.isinf(x)", "np.signbit(x)", "np.isclose(x, v)",
    "np.allclose(x, v)", "np.array_equal(x, x)", "np.ceil(x)", "np.rint(x)", "np.fix(x)", "np.around(x, 1)",
    "np.round(x, 1)", "x.round(1)", "np.floor_divide(x, 0.7)", "x // 0.7", "np.sign(x)", "not t", "t is None",
    "x is not None",
    # indices and counts
    "np.argmax(x)", "np.argmax(x, axis=0)", "x.argmax(axis=1)", "np.argmin(x)", "x.argmin()", "np.all(x > 0)",
    "x.all(axis=0)", "np.any(x > 0, axis=1)", "x.any()", "np.nonzero(x > 0)", "x.nonzero()", "np.flatnonzero(x)",
    "np.count_nonzero(x > 0)", "np.count_nonzero(x, axis=0)", "np.searchsorted(v, 0.5)", "np.argsort(x)",
    "x.argsort(axis=0)",
    # creation
    "np.zeros_like(x)", "np.zeros_like(x, dtype=float)", "np.ones_like(x)", "np.empty_like(x)",
    "np.full_like(x, 2.0)", "np.zeros((2, 3))", "np.ones(3)", "np.empty(x.shape)", "np.zeros(x.shape[0])",
    "np.full((2, 3), 1.5)", "np.full(x.shape, 2)", "np.full(3, t)", "np.identity(3)", "np.eye(3)", "np.arange(3.0)",
    "np.linspace(0.0, t, 4)",
    # sizes, attributes, conversions
    "np.ndim(x)", "np.size(x)", "x.ndim", "x.size", "x.shape", "np.shape(x)", "x.shape[1]", "(x.shape[0], 3)",
    "x.dtype", "len(x)", "x.item(0)", "x.tolist()", "x.view()", "np.asanyarray(x)", "np.asarray(x)", "np.array(x)",
    "np.array([v, v])", "np.array(t)", "np.asarray(v)[1:]", "round(t)", "int(t)", "bool(t)", "float(t)", "abs(t)",
    "isinstance(x, np.ndarray)", "x.astype(np.float64)", "x.astype(np.float32)", "x.astype(int)", "x.astype(bool)",
    "math.ceil(t)", "math.trunc(t)", "math.isnan(t)", "math.isinf(t)", "math.isfinite(t)", "math.isclose(t, 1.0)",
    "math.factorial(int(t * 4))", "math.gcd(int(t * 8), 4)", "math.lcm(int(t * 8), 4)", "math.comb(int(t * 8), 2)",
    "math.perm(int(t * 8), 2)", "math.isqrt(int(t * 20))", "list(x.flat)", "[r for r in np.nditer(x)]",
    "list(np.ndindex(2, 3))", "sum(iter(v))", "sum(map(float, v))",
    "sum(filter(None, v))", "list(np.ndenumerate(v))", "np.broadcast(x, v).shape",
    "math.frexp(t)", "math.modf(t)", "math.prod([t, 2.0])", "math.fsum([t, 2.0])", "max(t, 2.0)", "min(t, 2.0, 3.0)",
    "max(x[0, :1], v[:1])", "min(x[0, :1], v[:1])", "pow(t, 2)", "pow(x, 2)",
    # containers and iteration
    "list(enumerate(v))", "list(zip(v, v))", "list(reversed(v))", "tuple(v)", "list(x)", "[r * 2.0 for r in x]",
    "[a * b for a, b in zip(v, v)]", "sum(r for r in x)", "{'a': x}.get('a')", "list({'a': x}.keys())",
    "list({'a': x}.values())", "list({'a': x}.items())", "[1.0, t].index(t)", "[1.0, t].count(t)",
    # a function returning its argument, or a view of it, at some arguments
    "np.diff(x, 0)", "np.diff(x, 1)", "np.linalg.matrix_power(sq, 1)", "np.linalg.matrix_power(sq, 0)",
    "np.linalg.matrix_power(sq, 2)", "np.einsum('ii->i', sq)", "np.einsum('ij->ji', x)", "np.einsum('ij', x)",
    "np.einsum('ij,j->i', x, v)", "np.einsum('i,i', v, v)", "x.conj()", "np.conj(x)", "np.conjugate(x)",
    "np.real(x)", "np.imag(x)", "x.real", "x.imag", "x.T", "np.rot90(x, 0)", "np.rot90(x)", "np.tile(x, 1)",
    "np.roll(x, 0)", "np.pad(x, 0)", "np.repeat(x, 1)", "np.concatenate([x])", "np.stack([x])", "np.hstack([x])",
    "np.vstack([x])", "np.append(x, [])", "np.copy(x)", "x.copy()", "x.flatten()", "np.ravel(x)", "x.ravel()",
    "np.reshape(x, x.shape)", "x.reshape(-1)", "x.reshape(3, 2)", "np.squeeze(x)", "x.squeeze()",
    "np.expand_dims(x, 0)", "np.atleast_1d(x)", "np.atleast_2d(x)", "np.atleast_3d(x)", "np.broadcast_to(x, x.shape)",
    "np.transpose(x)", "x.transpose()", "x.transpose(1, 0)", "np.moveaxis(x, 0, 0)", "np.swapaxes(x, 0, 0)",
    "x.swapaxes(0, 1)", "np.flip(x)", "np.fliplr(x)", "np.flipud(x)", "np.diagonal(sq)", "sq.diagonal()",
    "np.diag(sq)", "np.diag(v)", "np.trace(sq)", "np.triu(x)", "np.tril(x, 5)", "np.nan_to_num(x)",
    "np.sum(x, axis=())", "np.max(x, axis=())", "np.mean(x, axis=())", "np.prod(x, axis=())", "np.std(x, axis=())",
    "np.cumsum(x, axis=0)", "np.sort(x)", "np.partition(v, 0)", "np.clip(x, -np.inf, np.inf)", "x.clip(-1.0, 1.0)",
    "np.where(True, x, 0.0)", "np.where(x > 0, x, v)", "np.select([x > 0], [x])", "np.take(x, [0, 1])",
    "x.take([0, 1], axis=1)", "np.take(v, 1)", "np.take_along_axis(x, np.zeros((2, 1), dtype=int), 1)",
    "np.linalg.multi_dot([sq, sq])", "np.linalg.multi_dot([sq, sq, v])", "np.dot(x, 1.0)", "np.dot(v, v)",
    "np.dot(np.ones((2, 3, 3)), sq)", "np.dot(np.ones((2, 3, 3)), v)", "np.dot(sq, np.ones((2, 3, 4)))",
    "v @ np.ones((2, 3, 4))", "np.ones((2, 4, 3)) @ v", "np.inner(x, v)", "np.vdot(v, v)", "np.outer(v, v)",
    "np.kron(x, sq)", "np.tensordot(x, sq, axes=1)", "sum([x])", "sum([x, x], v)", "sum([], v)", "abs(x)", "+x", "-x",
    "np.positive(x)", "np.negative(x)", "np.sin(s) * 2.0", "s * t", "s + x", "np.where(s > 0, s, 0.0)",
    "float(x[0, 0])", "x[0, 0] + t", "x[0] * t", "x[:, 1:]", "x[..., None]",
    "x[[0, 1]]", "x[x > 0]", "v[1:] - v[:-1]", "x.sum(axis=0, keepdims=True)", "np.linalg.norm(x, axis=1)",
    "np.median(x, axis=0)", "np.quantile(x, 0.5, axis=1)", "np.percentile(x, 50)", "np.average(x, axis=0)",
    "np.nansum(x, axis=0)", "np.nanmean(x)", "np.nanmax(x, axis=1)", "np.amin(x, axis=0)", "np.var(x, ddof=1)",
    "np.interp(x, v, v)", "np.gradient(v)", "np.convolve(v, v)", "np.polyval(v, x)", "np.cross(v, v)",
    "np.angle(x)", "np.sinc(x)", "np.linalg.inv(sq)", "np.linalg.pinv(x)", "np.linalg.det(sq)",
    "np.linalg.solve(sq, v)", "np.linalg.cholesky(sq @ sq.T)", "np.linalg.eigh(sq + sq.T)[1]",
    "np.linalg.eigvalsh(sq + sq.T)", "np.linalg.svd(x, full_matrices=False)[0]", "np.linalg.qr(sq)[1]",
    "np.linalg.slogdet(sq)[1]", "np.linalg.lstsq(sq, v, rcond=None)[0]", "np.split(x, 3, axis=1)[0]",
    "np.array_split(v, 2)[1]", "np.hsplit(x, 3)[2]", "np.vsplit(x, 2)[0]", "np.modf(x)[0]", "np.frexp(x)[1]",
    "np.divmod(x, 0.7)[0]", "math.frexp(t)[0]", "math.modf(t)[1]",
    # dtypes: of casts, masks, reductions of masks, Python numbers made arrays, float32 meeting float64
    "x.astype(float)", "x.astype(np.float32) * x", "x.view(np.int64)", "np.asanyarray(x, np.float32)",
    "np.sum(x > 0) * x", "np.mean(x > 0, axis=0) * x", "(x > 0) * (x < 1) * x", "np.sum(x, (0, 1))",
    "np.std(x, 1, None, None, 1)", "np.sum(x, 0, None, None, True)", "np.expand_dims(t, 0)", "np.exp(t)",
    "np.negative(len(x))", "np.exp(len(x))", "np.where(x > 0, t, 0.0)", "np.where(x > 0, len(x), 0.0)",
    "np.where(x > 0, 1, 0)", "np.where(x > 0, x.astype(np.float32), 0.0)", "np.linalg.inv(sq) @ v",
    "np.linalg.norm(x, axis=0) * x",
    # shapes given by arguments other than the first
    "np.zeros_like(x, shape=(4,))", "np.ones_like(x, shape=4)", "np.empty_like(x, shape=v.shape)",
    "np.full_like(x, 2.0, shape=(3, 2))", "np.zeros_like(x, float, 'C', True, (4,))", "np.zeros_like(x, shape=())",
    "np.max(x, 1, None, True)", "np.sum(x, 0, None, None, True)", "np.std(x, 0, None, None, 1, True)",
    "np.sum(x, axis=0, keepdims=t > 0.5)", "float(s)", "float(x[0, 0])",
]


# Functions whose gradients call the runtime functions of loops, containers and branches; each
# is the body of ``def f(x, sq, v, t, s)`` (statements, one per line), differentiated in ``argnums``.
GRADIENTS = [
    ("h = v\nfor k in range(3):\n    h = np.tanh(sq @ h)\nreturn np.sum(h)", (1, 2)),
    ("total = 0.0\nfor r in x:\n    total = total + np.sum(r * v)\nreturn total", (0, 2)),
    ("items = [v, v * 2.0]\ntotal = 0.0\nfor item in items:\n    total = total + np.sum(item * item)\n"
     "return total", (2,)),
    ("a = [v, v]\na[0] = v * t\nreturn np.sum(a[0] * a[1])", (2, 3)),
    ("rows = tuple(x)\nreturn np.sum(rows[0] * rows[1])", (0,)),
    ("d = {'a': x, 'b': v}\nreturn np.sum(d['a'] * d['b'])", (0, 2)),
    ("k = 0\nwhile k < 3:\n    v = v * t\n    k = k + 1\nreturn np.sum(v)", (2, 3)),
    ("y = x * t if t > 0.5 else x\nreturn np.sum(y * v)", (0, 2, 3)),
    ("return np.sum(x * v) * (0.0 < t < 1.0)", (0,)),
    ("s = 0.0\nfor i, r in enumerate(x):\n    s = s + i * np.sum(r)\nreturn s", (0,)),
    ("s = 0.0\nfor a, b in zip(x, x[::-1]):\n    s = s + np.sum(a * b)\nreturn s", (0,)),
    ("s = 0.0\nfor r in reversed(list(x)):\n    s = s * t + np.sum(r)\nreturn s", (0, 3)),
    ("acc = np.zeros(3)\nfor r in x:\n    acc += r * r\nreturn np.sum(acc * v)", (0, 2)),
    ("y = x.copy()\ny[0] = v * t\ny[1, 1:] += 1.0\nreturn np.sum(y * y)", (0, 2, 3)),
    ("p = {'w': sq, 'b': v}\nh = np.tanh(p['w'] @ x.T + p['b'][:, None])\nreturn np.sum(h ** 2)", (0, 1, 2)),
]


def _more_case(body: str) -> tuple[Callable, list]:
    """``f(x, sq, v, t, s)`` made of ``body`` (an expression it returns, or statements), with real
    source, and its arguments."""
    filename = f"<primitive facts {body.replace(chr(10), '; ')}>"
    lines = body.splitlines() if "return" in body else [f"return {body}"]
    source = "def f(x, sq, v, t, s):\n" + "".join(f"    {line}\n" for line in lines)
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace = {"np": np, "math": math}
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102 -- the test's own source
    rng = np.random.default_rng(7)
    x = rng.uniform(-2.0, 2.0, (2, 3))
    sq = rng.uniform(-1.0, 1.0, (3, 3)) + 3.0 * np.eye(3)
    return namespace["f"], [x, sq, np.array([-0.5, 0.25, 1.5]), 0.75, np.array(0.5)]


def test_facts_hold_on_more_calls() -> None:
    """The facts of calls the sweeps do not make (see ``MORE`` and ``GRADIENTS``)."""
    failures: list[str] = []
    for body, argnums in [(expr, ()) for expr in MORE] + GRADIENTS:
        f, args = _more_case(body)
        failures += check_facts(f, args, argnums, body.replace("\n", "; ")).failures
    assert not failures, _report(failures, len(MORE) + len(GRADIENTS))


# ============================================================================ what the families say


def test_ufuncs_of_several_outputs_are_not_elementwise() -> None:
    """A ufunc with several outputs (np.modf, np.divmod) returns a tuple of arrays: its record
    must not give it its operands' broadcast shape, as the ufunc family does."""
    for name in dir(np):
        fn = getattr(np, name)
        if isinstance(fn, np.ufunc) and fn.nout > 1:
            record = primitives.lookup(fn)
            assert record.shape is not shapes.elementwise and not record.elementwise and record.sequence, (
                f"np.{name} returns {fn.nout} arrays, but its record says it is elementwise")


def _first_call(fn: Callable) -> Any:
    """``fn`` on the first of a few argument lists it accepts (floats, then ints), or raises TypeError."""
    for args in ((0.75,), (0.75, 0.5), (6,), (6, 4), ([0.75, 0.5],)):
        try:
            return fn(*args)
        except (TypeError, ValueError):
            continue
    raise TypeError(f"{fn.__name__}: no argument list fits")


def test_math_functions_on_numbers_return_numbers() -> None:
    """What the records of ``math`` functions say of their results holds: a function "of numbers"
    returns a number, one "of floats" a float."""
    for name in dir(math):
        fn = getattr(math, name)
        if name.startswith("_") or not callable(fn):
            continue
        record = primitives.lookup(fn)
        try:
            result = _first_call(fn)
        except TypeError:
            continue
        if record.on_numbers:
            assert type(result) in _NUMBERS, f"math.{name} returns {type(result).__name__}, not a number"
        if record.float_result:
            assert type(result) is float, f"math.{name} returns {type(result).__name__}, not a float"
        if record.shape is shapes.elementwise:
            assert np.shape(result) == (), f"math.{name} returns {result!r}, which has no scalar shape"


# ============================================================================ the facts fixed
# Each of these facts was once wrong; the function is checked as the sweeps are, and where the
# wrong fact changed what the compiler did, the compiled gradient is checked too.

FIXED = [
    ("np.einsum('ii->i', sq)", "a view of its operand (not of its first argument, the subscripts)", ()),
    ("np.einsum('ij->ji', x)", "a view of its operand", ()),
    ("x.conj()", "x itself (np.conj(x) is a new array)", ()),
    ("np.linalg.matrix_power(sq, 1)", "sq itself", ()),
    ("np.diff(x, 0)", "x itself", ()),
    ("max(x[0, :1], v[:1])", "one of the arguments itself", ()),
    ("sum([], v)", "its start itself", ()),
    ("x.astype(int)", "an int array: the dtype argument is no float64 operand", ()),
    ("x.astype(np.float32)", "a float32 array", ()),
    ("v @ np.ones((2, 3, 4))", "2 axes: the vector's is contracted away", ()),
    ("np.dot(np.ones((2, 3, 3)), np.ones((2, 3, 4)))", "4 axes: np.dot keeps the other axes of both", ()),
    ("np.dot(np.ones((2, 3, 3)), v)", "2 axes", ()),
    ("np.sum(np.sin(s) * x)", "the backward sweep's np.cos(s) is a NumPy scalar (of 0-d arrays alone, not a 0-d "
     "array)", (4,)),
    ("np.modf(x)[0]", "a pair of arrays (not an array of x's shape)", ()),
    ("np.divmod(x, 0.7)[1]", "a pair of arrays", ()),
    ("math.frexp(t)[0]", "a pair of numbers (not a number)", ()),
    ("math.modf(t)[1]", "a pair of numbers", ()),
    ("list(x.flat)", "an iterator (not a float64 array)", ()),
    ("np.max(x, 1, None, True)", "of shape (2, 1): keepdims is given by position", ()),
    ("np.std(x, 0, None, None, 1, True)", "of shape (1, 3)", ()),
    ("np.sum(x, axis=0, keepdims=t > 0.5)", "of shape (1, 3): keepdims is not a constant", ()),
    ("np.zeros_like(x, shape=(4,))", "of shape (4,), not x's", ()),
    ("np.full_like(x, 2.0, shape=(3, 2))", "of shape (3, 2)", ()),
    ("np.zeros_like(x, shape=())", "a 0-d array (not one with axes)", ()),
]


@pytest.mark.parametrize("expr, result, argnums", FIXED, ids=[e for e, _, _ in FIXED])
def test_fixed_fact_holds(expr: str, result: str, argnums: tuple) -> None:
    """What the compiler infers of the result of ``expr`` (and, with ``argnums``, of its gradient) holds."""
    f, args = _more_case(expr)
    failures = check_facts(f, args, argnums, expr).failures
    assert not failures, _report(failures, 1)


def einsum_diagonal_doubled(x):
    d = np.einsum("ii->i", x)
    d *= 2.0  # doubles the diagonal of x
    return np.sum(x * x)


def conj_doubled(x):
    y = x.conj()
    y *= 2.0  # of a real array: doubles x
    return np.sum(x * x)


def matrix_power_doubled(x):
    y = np.linalg.matrix_power(x, 1)
    y *= 2.0  # doubles x
    return np.sum(x * x)


@pytest.mark.parametrize("fn", [einsum_diagonal_doubled, conj_doubled, matrix_power_doubled],
                         ids=lambda f: f.__name__)
def test_update_through_a_view_is_refused_not_miscompiled(fn: Callable) -> None:
    """These functions update ``x`` through another name. Taken for new arrays, those updated in
    place changed nothing else, and the gradient was silently wrong; a view (or ``x`` itself)
    updated in place is refused, as for slices and reshapes."""
    x = np.arange(1.0, 5.0).reshape(2, 2)
    with pytest.raises(symdiff.AliasingError, match="view"):
        symdiff.grad(fn)(x)


def modf_weighted(x, y):
    return np.sum(x * np.modf(y)[0])


def test_a_ufunc_of_two_outputs_gets_no_operand_shape() -> None:
    """``np.modf(y)[0]`` has y's shape; taken for an array of y's shape, its item ``[0]`` was given
    one axis fewer, and broadcasting it against ``x`` was undone wrongly."""
    x, y = np.array([0.5, 1.5, 2.5]), np.arange(6.0).reshape(2, 3) / 4 + 0.1
    got = symdiff.grad(modf_weighted)(x, y)
    np.testing.assert_allclose(got, numerical_grad(modf_weighted, [x, y], 0), rtol=1e-6)


def max_kept(x, w):
    return np.sum(np.max(x, 1, None, True) * w)


def zeros_of_shape(x, w):
    return np.sum((np.zeros_like(x, shape=(4,)) + x[0, 0]) * w[0, 0]) + np.sum(x * w)


@pytest.mark.parametrize("fn", [max_kept, zeros_of_shape], ids=lambda f: f.__name__)
def test_shape_given_by_another_argument(fn: Callable) -> None:
    """``keepdims`` given by position and ``np.zeros_like``'s ``shape=`` decide the result's shape;
    taken for the first argument's (or a reduction's without keepdims), the gradient was silently
    wrong (broadcasting against ``w`` was undone wrongly)."""
    x, w = np.arange(6.0).reshape(2, 3) / 7 + 0.1, np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    np.testing.assert_allclose(symdiff.grad(fn)(x, w), numerical_grad(fn, [x, w], 0), rtol=1e-6)


def test_float_is_a_python_float() -> None:
    """``float(x)`` is a Python float of no axes, whatever ``x`` (a number, a 0-d or size-1 array):
    not elementwise, which gave it ``x``'s shape and rank."""
    assert shapes.result_kind(float, [0]) == "scalar" and shapes.result_kind(float, [1]) == "scalar"
    x = Value("x", kind=1, shape=(1,))
    assert shapes.infer(float, [x], {}) == () and not shapes.is_elementwise(float)


def test_unknown_dtype_is_not_taken_for_float64() -> None:
    """``np.dtype(float) == None`` holds in NumPy: the dtype rules compare by identity, so an
    operand of unknown dtype leaves the result's dtype unknown."""
    known, unknown = Value("x", kind=1, dtype=shapes.F64), Value("y", kind=1)
    assert shapes.keeps_float(operator.mul, [known, unknown], {}) is None
    assert shapes.accumulated(runtime.add_into, [known, unknown], {}) is None
    assert shapes.keeps_float(operator.mul, [known, known], {}) is shapes.F64


# ============================================================================ adding a NumPy function


def copysign_weighted(x, y):
    return np.sum(np.copysign(x, y) * x)


def test_a_numpy_function_is_added_with_one_row() -> None:
    """A ufunc without a rule is refused; one ``rules.rule`` row (its VJPs alone: shape, dtype and
    aliasing come from the ufunc family) makes its gradient right, and the facts hold."""
    x, y = np.array([0.5, -1.5, 2.0]), np.array([-1.0, 2.0, -0.5])
    assert primitives.lookup(np.copysign).vjps is None
    with pytest.raises(symdiff.NoRuleError, match="np.copysign"):
        symdiff.grad(copysign_weighted)(x, y)
    with primitives.restored():
        rules.rule(np.copysign, lambda g, ans, x, y: rules.unbroadcast(g * np.sign(x) * np.sign(y), x, y), None)
        record = primitives.lookup(np.copysign)
        assert record.classified() == [] and record.alias == primitives.FRESH
        assert record.shape is shapes.elementwise and record.dtype is shapes.ufunc_dtype
        got = symdiff.grad(copysign_weighted)(x, y)
        np.testing.assert_allclose(got, numerical_grad(copysign_weighted, [x, y], 0), rtol=1e-6)
        failures = check_facts(copysign_weighted, [x, y], (0,), "np.copysign").failures
        assert not failures, _report(failures, 1)
    assert primitives.lookup(np.copysign).vjps is None
    with pytest.raises(symdiff.NoRuleError, match="np.copysign"):
        symdiff.grad(copysign_weighted)(x, y)
