"""The primitive table: for each callee, its derivative rules and what else the compiler knows.

Each row registers one primitive's record (:mod:`symdiff.primitives`): its vector-Jacobian
products, one per positional argument, and facts about its result and memory. A rule is an
ordinary Python function ``(g, ans, *args, **kwargs) -> cotangent`` written with NumPy and
operators; it is *run once at compile time* on symbols (:mod:`symdiff.tracing`) so that its
body ends up inlined in the generated source: ``np.tanh``'s rule ``g * (1 - ans**2)`` becomes
``dz = dh * (1 - h ** 2)``. ``g`` is the cotangent of ``ans``; the result must have the shape
of the argument (``unbroadcast`` undoes NumPy broadcasting).

Facts shared by a family of primitives are written once (``OPERATOR``, ``REDUCTION``...);
ufuncs, ``math`` functions and other NumPy functions without a row of their own get the
facts of their family (:func:`symdiff.primitives.derive`, at the top of the table).
"""

from __future__ import annotations

import functools
import math
import operator
from typing import Any, Callable

import numpy as np

from . import runtime, shapes, tracing
from .errors import NoRuleError, SymdiffError
from .ir import BUILD_LIST, BUILD_SLICE, BUILD_TUPLE, SEQUENCE, BuildDict, GetAttr, Method
from .passes import both
from .primitives import (
    AXES,
    EACH,
    ELEMENTWISE,
    FRESH,
    ITSELF,
    JOINTLY,
    KEEPS,
    NUMBER,
    OPAQUE,
    REDUCES,
    VIEW,
    define,
    define_all,
    derive,
    registered,
)
from .primitives import (
    lookup as record_of,
)
from .tracing import Sym, apply, is_scalar, shape_of, size_of, static_shape, unbroadcast

Rule = Callable[..., Any]
NUMPY_2 = np.lib.NumpyVersion(np.__version__) >= "2.0.0"


def defvjp(fn: Callable[..., Any], *vjps: Rule | None) -> None:
    """Register VJP rules for ``fn``: one ``(g, ans, *args, **kwargs) -> cotangent`` per
    positional argument (``None`` for an argument that is not differentiable).

    Parameters:
        fn: the function (yours, or a library's) that differentiated code calls.
        vjps: one rule per positional argument of ``fn``: given the output's cotangent ``g``,
            the output ``ans`` and the arguments, the cotangent of that argument.

    The rule body is written with NumPy and operators, and is inlined into generated code.

    Example::

        symdiff.defvjp(my_softplus, lambda g, ans, x: g * (1 - np.exp(-ans)))
    """
    user = registered(fn) is None and record_of(fn).fn is None  # a function of the user's: nothing known
    _given(vjps)
    define(fn, vjps=tuple(vjps), nondiff=False, user=user)


def defjvp(fn: Callable[..., Any], *jvps: Rule | None) -> None:
    """Register JVP rules for ``fn`` (forward mode): one ``(t, ans, *args, **kwargs) -> tangent``
    per positional argument.

    Parameters:
        fn: the function that differentiated code calls.
        jvps: one rule per positional argument of ``fn``, giving the tangent of ``fn``'s result
            for the tangent ``t`` of that argument (``None`` for an argument that is not
            differentiable); the tangents of several arguments add up.

    Written with NumPy and operators, and inlined like VJP rules.

    Example::

        symdiff.defjvp(my_softplus, lambda t, ans, x: t * (1 - np.exp(-ans)))
    """
    user = registered(fn) is None and record_of(fn).fn is None
    _given(jvps)
    define(fn, jvps=tuple(jvps), nondiff=False, user=user)


_GIVEN: dict[int, Rule] = {}  # the rules users gave (defvjp, defjvp), by id
_AT_RUN_TIME: dict[int, tuple[Rule, Any]] = {}  # id(rule) -> (rule, the RuleAtRunTime calling it)
_MOST_OPERANDS = 64  # more operands than a rule is ever called with


def _given(rules: tuple) -> None:
    """Note ``rules`` as given by a user: one that cannot run on symbols may run on values."""
    for r in rules:
        if r is not None:
            _GIVEN[id(r)] = r


def given_by_user(rule: Rule) -> bool:
    """Whether ``rule`` was given with :func:`defvjp` or :func:`defjvp`."""
    return _GIVEN.get(id(rule)) is rule


class RuleAtRunTime:
    """A rule given with :func:`defvjp` or :func:`defjvp` that cannot run on symbols, as the
    generated code calls it: on the values themselves, when the gradient runs (as autograd runs
    its rules). It is a pure primitive whose own derivatives are refused (:attr:`refusal`):
    code symdiff does not look into cannot be differentiated again."""

    def __init__(self, rule: Rule, callee: str, why: Exception):
        self.rule = rule
        short = callee.rsplit(".", 1)[-1]
        self.__name__ = self.__qualname__ = f"rule_{short}" if short.isidentifier() else "rule"
        self.__doc__ = f"The derivative rule registered for {callee}, run on values (it could not be traced)."
        name, where = getattr(rule, "__name__", "") or "", _where(rule)
        self.refusal = (
            f"the derivative rule {name}{f' ({where})' if where else ''} registered for {callee} could not be "
            f"traced when the gradient was compiled ({type(why).__name__}: {why}), so the generated code calls it "
            "as it is; symdiff cannot look into it, and derivatives of higher order through it are not supported. "
            "To differentiate it again, write the rule with operations that run on symbols (np.full_like(x, g) "
            "rather than np.full(x.shape, g), np.where rather than an if on a value)")

    def __call__(self, *operands: Any, **keywords: Any) -> Any:
        return self.rule(*operands, **keywords)

    def __repr__(self) -> str:
        return f"<symdiff {self.__name__}>"


def at_run_time(rule: Rule, callee: str, why: Exception) -> RuleAtRunTime:
    """The primitive generated code calls to run ``rule``, registered for ``callee``, that
    raised ``why`` when run on symbols (one per rule; see :class:`RuleAtRunTime`)."""
    cached = _AT_RUN_TIME.get(id(rule))
    if cached is not None and cached[0] is rule and registered(cached[1]) is not None:
        return cached[1]
    made = RuleAtRunTime(rule, callee, why)

    def refuse(*_: Any, **__: Any) -> Any:
        raise NoRuleError(made.refusal)

    refusals = (refuse,) * _MOST_OPERANDS
    define(made, vjps=refusals, jvps=refusals, nondiff=False, pure=True, alias=OPAQUE, shape=shapes.dynamic,
           dtype=shapes.unknown_dtype, user=True)
    _AT_RUN_TIME[id(rule)] = (rule, made)
    return made


def raised_by_rule_at_run_time(error: BaseException) -> bool:
    """Whether ``error`` was raised inside a user's rule that generated code called on values
    (:func:`at_run_time`): the error is the rule's, not the compiler's."""
    tb = error.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code is RuleAtRunTime.__call__.__code__:
            return True
        tb = tb.tb_next
    return False


def refusal_of(fn: Any) -> str | None:
    """Why ``fn``, a :class:`RuleAtRunTime`, cannot be differentiated; None for other callees."""
    return fn.refusal if isinstance(fn, RuleAtRunTime) else None


def applied(rule: Rule, callee: str | None, /, *operands: Any, **keywords: Any) -> Any:
    """``rule(*operands, **keywords)`` run on symbols (inside :func:`tracing.run`). If it raises
    (other than a :class:`SymdiffError`: a NumPy function that needs a real shape, an ``if`` on a
    value), was given by a user (:func:`given_by_user`) and ``callee`` names the function it is
    registered for, what it emitted is dropped and a call of the rule itself on the values is
    emitted instead (:func:`at_run_time`)."""
    b = tracing.current_builder()
    outer, b.trail = b.trail, []
    try:
        result = rule(*operands, **keywords)
    except SymdiffError:
        raise
    except Exception as exc:
        if callee is None or not given_by_user(rule):
            raise
        b.drop(b.trail)
        b.trail = []
        result = tracing.apply(at_run_time(rule, callee, exc), *operands, **keywords)
    finally:
        emitted, b.trail = b.trail, outer
        if outer is not None:
            outer.extend(emitted)
    return result


def _where(fn: Any) -> str | None:
    """``file:line`` of a Python function's definition, or None."""
    code = getattr(fn, "__code__", None)
    return f"{code.co_filename}:{code.co_firstlineno}" if code is not None else None


def defnondiff(*fns: Callable[..., Any]) -> None:
    """Declare that ``fns`` have zero derivative everywhere it exists (comparisons, rounding).

    Parameters:
        fns: the functions; differentiated code calls them as they are, and no derivative
            flows through their results.

    Example::

        symdiff.defnondiff(my_bucket_index)
    """
    for fn in fns:
        define(fn, nondiff=True)


class Facts(dict):
    """Facts shared by a family of rows, given to :func:`rule`, :func:`nondiff` and :func:`facts`
    before the facts of the row itself."""


def _split(parts: tuple) -> tuple[tuple, dict]:
    """Rules and the merged presets among ``parts``."""
    rules = tuple(p for p in parts if not isinstance(p, Facts))
    merged: dict = {}
    for preset in (p for p in parts if isinstance(p, Facts)):
        merged.update(preset)
    return rules, merged


def rule(fn: Any, *parts: Any, **known: Any) -> None:
    """A row of the table: ``fn``'s VJP rules (one per positional argument, None where it is not
    differentiable), then presets (:class:`Facts`), then its own facts."""
    vjps, merged = _split(parts)
    define(fn, vjps=vjps, **{**merged, **known})


def nondiff(*parts: Any, **known: Any) -> None:
    """A row for each callee among ``parts``: zero derivative wherever it exists; presets; facts."""
    fns, merged = _split(parts)
    define_all(fns, nondiff=True, **{**merged, **known})


def facts(*parts: Any, **known: Any) -> None:
    """Facts about each callee among ``parts`` (presets, then fields of
    :class:`~symdiff.primitives.Primitive`) without rules."""
    fns, merged = _split(parts)
    define_all(fns, **{**merged, **known})


def keywords(fn: Any, **positions: int) -> None:
    """Let keyword arguments of ``fn`` be differentiated: ``name=position`` says which positional
    rule of ``fn`` gives the cotangent of the argument passed as ``name=`` (the rule reads it from
    its keyword arguments)."""
    define(fn, keywords=positions)


def keyword_position(fn: Any, name: str) -> int | None:
    """The position of the rule for ``fn``'s keyword argument ``name``, or None."""
    return record_of(fn).keywords.get(name)


def lookup(fn: Any) -> tuple[Rule | None, ...] | None:
    """The VJP rules of ``fn``, or None."""
    if type(fn) is BuildDict:  # a dict display: each value gets the cotangent of its key
        return tuple(functools.partial(_dict_item_vjp, i, key) for i, key in enumerate(fn.keys))
    return record_of(fn).vjps


def differentiable(fn: Any) -> bool:
    """Whether derivatives flow through calls of ``fn`` (False for comparisons, floor, len...)."""
    return not record_of(fn).nondiff


def sequence_result(fn: Any, args: list, kwargs: dict) -> bool:
    """Whether ``fn(*args, **kwargs)`` returns a tuple or list (its cotangent a {position: ...} dict)."""
    sequence = record_of(fn).sequence
    return sequence(args, kwargs) if callable(sequence) else bool(sequence)


def call(fn: Any, *args: Any) -> Any:
    """``fn(*args)`` in a rule, or its scalar twin (``math.cos`` for ``np.cos``) on Python numbers."""
    twin = record_of(fn).twin
    return apply(twin if twin is not None and all(is_scalar(a) for a in args) else fn, *args)


def sign(x: Any) -> Any:
    return apply(runtime.sign, x) if is_scalar(x) else np.sign(x)


# ----------------------------------------------------------------------------- rule helpers


def _unsupported(what: str) -> Any:
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

# ----------------------------------------------------------------------------- families
# Facts shared by families of rows; the first ones also describe callees without a row.

ARRAY_FUNCTION = Facts(pure=True, alias=FRESH, shape=shapes.dynamic, dtype=shapes.unknown_dtype)  # a new array
CONTAINER = Facts(pure=True, alias=OPAQUE, shape=shapes.dynamic, dtype=shapes.unknown_dtype)  # not (only) an array
UFUNC = Facts(ARRAY_FUNCTION, elementwise=True, nature=ELEMENTWISE, shape=shapes.elementwise, dtype=shapes.ufunc_dtype)
MATH = Facts(ARRAY_FUNCTION, on_numbers=True, fold_self=True, float_result=True, nature=NUMBER,
             shape=shapes.elementwise)
derive("ufunc", **UFUNC)
derive("gufunc", **ARRAY_FUNCTION)
derive("math", **MATH)
derive("numpy", **CONTAINER)  # (a NumPy function without a row: nothing known but that it is pure)
derive("attribute", **CONTAINER)
derive("display", **CONTAINER, linear=JOINTLY)  # (a display is linear in its items)

OPERATOR = Facts(UFUNC, on_numbers=True, fold_self=True, dtype=shapes.keeps_float)
COMPARISON = Facts(OPERATOR, total=True, dtype=shapes.compared)
NUMBERS = Facts(ARRAY_FUNCTION, on_numbers=True)  # builtins of numbers
REDUCTION = Facts(ARRAY_FUNCTION, nature=REDUCES, shape=shapes.reduced, dtype=shapes.reduced_dtype)
RESHAPING = Facts(pure=True, alias=VIEW, shape=shapes.dynamic, dtype=shapes.first_dtype)  # a view, other axes
PIECES = Facts(ARRAY_FUNCTION, alias=OPAQUE, sequence=True)  # a tuple or list of arrays
HELPER = ARRAY_FUNCTION  # a runtime helper computing a new value

# ----------------------------------------------------------------------------- operators

INT_ARITHMETIC = Facts(integer=shapes.integer_arithmetic)  # of Python ints, a Python int


def _both_sequences(x: Any, y: Any) -> bool:
    """Whether ``x + y`` joins two tuples or lists (``args + (ones,)``) rather than adding numbers."""
    return getattr(x, "kind", None) == SEQUENCE and getattr(y, "kind", None) == SEQUENCE


def _add_vjp(first: bool) -> Rule:
    """The VJP of ``x + y`` for ``x`` (``first``) or ``y``: of two sequences joined, the cotangents
    of their items (runtime.joined_cotangent); of numbers and arrays, ``g`` unbroadcast."""
    def vjp(g, ans, x, y):
        if _both_sequences(x, y) and not tracing.in_tangent_mode():
            return apply(runtime.joined_cotangent, g, x, first)
        if _both_unknown(x, y) and not tracing.in_tangent_mode():  # (results of recursive calls)
            return apply(runtime.plus_cotangent, g, x, y, first)
        return unbroadcast(g, x, y) if first else unbroadcast(g, y, x)
    return vjp


def _both_unknown(x: Any, y: Any) -> bool:
    """Whether neither operand of ``x + y`` is known to be a number or an array (each is of
    unknown kind, or a sequence): it may join two lists, decided when the code runs
    (:func:`runtime.plus_cotangent`)."""
    return all(map(_may_be_sequence, (x, y)))


def _may_be_sequence(v: Any) -> bool:
    """Whether the operand ``v`` is a sequence, or of unknown kind and dtype (``np.sum(a)`` of an
    ``a`` of unknown rank has a dtype: it is no list)."""
    if not isinstance(v, Sym) or v.kind not in (None, SEQUENCE):
        return False
    return v.kind == SEQUENCE or v.value.dtype is None and v.value.pytype is None


rule(operator.add, _add_vjp(True), _add_vjp(False), OPERATOR, INT_ARITHMETIC, total=True, float_operands=True,
     accumulates=True)
rule(operator.sub, lambda g, ans, x, y: unbroadcast(g, x, y),
     lambda g, ans, x, y: unbroadcast(-g, y, x), OPERATOR, INT_ARITHMETIC, total=True, float_operands=True)
rule(operator.mul, lambda g, ans, x, y: unbroadcast(g * y, x, y),
     lambda g, ans, x, y: unbroadcast(x * g, y, x), OPERATOR, INT_ARITHMETIC, total=True, float_operands=True)
rule(operator.truediv, lambda g, ans, x, y: unbroadcast(g / y, x, y),
     lambda g, ans, x, y: unbroadcast(-g * ans / y, y, x), OPERATOR, float_operands=True)


def times_power_slope(g: Any, x: Any, y: Any, power: Any = operator.pow) -> Any:
    """``g * y * x ** (y - 1)``: ``g`` times d(x ** y)/dx. A constant ``y >= 1`` (or ``y < 0``, where
    ``0 ** y`` is itself infinite) cannot meet ``0 ** negative`` where ``x ** y`` is finite, so it is
    inlined; any other ``y`` goes through runtime.power_slope (0 where ``y == 0``, inf where ``0 < y < 1``)."""
    if type(y) in (int, float) and (y >= 1 or y < 0):
        return g * y * (x ** (y - 1) if power is operator.pow else apply(power, x, y - 1))
    return g * (apply(runtime.power_slope, x, y) if power is operator.pow else apply(runtime.power_slope, x, y, power))


POWER_VJPS = (lambda g, ans, x, y: unbroadcast(times_power_slope(g, x, y), x, y),
              lambda g, ans, x, y: unbroadcast(g * ans * apply(runtime.log_or_zero, x), y, x))
rule(operator.pow, *POWER_VJPS, OPERATOR)
rule(pow, *POWER_VJPS, NUMBERS, elementwise=True, shape=shapes.elementwise)
rule(operator.neg, lambda g, ans, x: -g, OPERATOR, INT_ARITHMETIC, total=True)
rule(operator.pos, lambda g, ans, x: g, OPERATOR, INT_ARITHMETIC, total=True)
rule(operator.abs, lambda g, ans, x: g * sign(x), OPERATOR, INT_ARITHMETIC, total=True)
rule(operator.mod, lambda g, ans, x, y: unbroadcast(g, x, y),  # x // y: numbers stay numbers
     lambda g, ans, x, y: unbroadcast(-g * apply(operator.floordiv, x, y), y, x), OPERATOR, INT_ARITHMETIC)
nondiff(operator.floordiv, OPERATOR, INT_ARITHMETIC)
rule(abs, lambda g, ans, x: g * sign(x), NUMBERS, elementwise=True, shape=shapes.elementwise)
rule(float, lambda g, ans, x: g, NUMBERS, shape=shapes.scalar, rank=shapes.a_number, float_result=True)


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


# (the result is one of the arguments itself: of arrays, not a new one)
rule(max, *(_winner_vjp(i, operator.gt, operator.ge) for i in range(16)), NUMBERS, alias=OPAQUE)
rule(min, *(_winner_vjp(i, operator.lt, operator.le) for i in range(16)), NUMBERS, alias=OPAQUE)
nondiff(operator.lt, operator.le, operator.gt, operator.ge, operator.eq, operator.ne, COMPARISON)
nondiff(operator.not_, both, NUMBERS, total=True, fold_self=True, nature=NUMBER)
nondiff(operator.is_, operator.is_not, NUMBERS, fold_self=True, nature=NUMBER)
nondiff(operator.and_, operator.or_, operator.xor, ARRAY_FUNCTION, elementwise=True, shape=shapes.elementwise)
nondiff(operator.invert, ARRAY_FUNCTION, elementwise=True, shape=shapes.elementwise)
nondiff(round, int, bool, NUMBERS)
nondiff(isinstance, NUMBERS, alias=OPAQUE)
nondiff(len, NUMBERS, integer=True, rank=shapes.a_number, reads_only=True, shape=shapes.scalar, dims=shapes.length_dims)
nondiff(range, pure=True, alias=OPAQUE, rank=shapes.a_range, cheap=True, shape=shapes.dynamic,
        dtype=shapes.unknown_dtype)
facts(enumerate, zip, reversed, pure=True, stateful=True, alias=OPAQUE, shape=shapes.dynamic,
      dtype=shapes.unknown_dtype)
facts(iter, map, filter, np.nditer, np.ndenumerate, np.ndindex, np.broadcast, Method("__iter__"), stateful=True,
      alias=OPAQUE, shape=shapes.dynamic, dtype=shapes.unknown_dtype)
nondiff(math.floor, math.ceil, math.trunc, math.isnan, math.isinf, math.isfinite, float_result=False)
facts(math.isclose, math.factorial, math.gcd, math.lcm, math.comb, math.perm, math.isqrt, math.prod, math.fsum,
      float_result=False)
facts(math.frexp, math.modf, CONTAINER, float_result=False, on_numbers=False, nature=None)  # (a pair of numbers)
facts(operator.iadd, updates=True, alias=ITSELF, shape=shapes.elementwise, dtype=shapes.keeps_float)


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


PRODUCT = Facts(ARRAY_FUNCTION, shape=shapes.matrix_product, rank=shapes.product_rank, dtype=shapes.keeps_float)
for _mm in (operator.matmul, np.matmul):
    rule(_mm, _matmul_vjp(0), _matmul_vjp(1), PRODUCT)
rule(np.dot, _dot_vjp(0), _dot_vjp(1), PRODUCT, method="dot")

# ----------------------------------------------------------------------------- math
# (a function of numbers to a number: the ``math`` family's facts)

rule(math.exp, lambda g, ans, x: g * ans)
rule(math.expm1, lambda g, ans, x: g * (ans + 1))
rule(math.log, lambda g, ans, x, base=None: g / x if base is None else g / (x * apply(math.log, base)),
     lambda g, ans, x, base: -g * ans / (base * apply(math.log, base)))
rule(math.log1p, lambda g, ans, x: g / (1 + x))
rule(math.log2, lambda g, ans, x: g / (x * math.log(2)))
rule(math.log10, lambda g, ans, x: g / (x * math.log(10)))
rule(math.sqrt, lambda g, ans, x: g / (2 * ans))
rule(math.sin, lambda g, ans, x: g * call(np.cos, x))
rule(math.cos, lambda g, ans, x: -g * call(np.sin, x))
rule(math.tan, lambda g, ans, x: g * (1 + ans ** 2))
rule(math.asin, lambda g, ans, x: g / call(np.sqrt, 1 - x ** 2))
rule(math.acos, lambda g, ans, x: -g / call(np.sqrt, 1 - x ** 2))
rule(math.atan, lambda g, ans, x: g / (1 + x ** 2))
rule(math.sinh, lambda g, ans, x: g * call(np.cosh, x))
rule(math.cosh, lambda g, ans, x: g * call(np.sinh, x))
rule(math.tanh, lambda g, ans, x: g * (1 - ans ** 2))
rule(math.atan2, lambda g, ans, y, x: g * x / (x ** 2 + y ** 2),
     lambda g, ans, y, x: -g * y / (x ** 2 + y ** 2))
rule(math.hypot, lambda g, ans, x, y: g * x / ans, lambda g, ans, x, y: g * y / ans)
rule(math.pow, lambda g, ans, x, y: times_power_slope(g, x, y, math.pow),
     lambda g, ans, x, y: g * ans * apply(runtime.log_or_zero, x))
rule(math.fabs, lambda g, ans, x: g * sign(x))
rule(math.erf, lambda g, ans, x: g * (2 / math.sqrt(math.pi)) * apply(math.exp, -x ** 2))

# ----------------------------------------------------------------------------- numpy elementwise
# Each rule is exact where the function is differentiable; a comment says what happens at
# kinks and ties. (Ufuncs: shape, dtype and aliasing from the ``ufunc`` family; ``twin`` is
# the math function.)

rule(np.exp, lambda g, ans, x: g * ans, twin=math.exp)
rule(np.expm1, lambda g, ans, x: g * (ans + 1), twin=math.expm1)
rule(np.log, lambda g, ans, x: g / x, twin=math.log)
rule(np.log1p, lambda g, ans, x: g / (1 + x), twin=math.log1p)
rule(np.sqrt, lambda g, ans, x: g / (2 * ans), twin=math.sqrt)
rule(np.square, lambda g, ans, x: g * 2 * x)
rule(np.sin, lambda g, ans, x: g * np.cos(x), twin=math.sin)
rule(np.cos, lambda g, ans, x: -g * np.sin(x), twin=math.cos)
rule(np.tan, lambda g, ans, x: g * (1 + ans ** 2), twin=math.tan)
rule(np.arctan, lambda g, ans, x: g / (1 + x ** 2), twin=math.atan)
rule(np.sinh, lambda g, ans, x: g * np.cosh(x), twin=math.sinh)
rule(np.cosh, lambda g, ans, x: g * np.sinh(x), twin=math.cosh)
rule(np.tanh, lambda g, ans, x: g * (1 - ans ** 2), twin=math.tanh)
rule(np.abs, lambda g, ans, x: g * np.sign(x), twin=abs)
rule(np.negative, lambda g, ans, x: -g)
rule(np.reciprocal, lambda g, ans, x: -g * ans ** 2)
rule(np.add, *record_of(operator.add).vjps)
rule(np.subtract, *record_of(operator.sub).vjps)
rule(np.multiply, *record_of(operator.mul).vjps)
rule(np.divide, *record_of(operator.truediv).vjps)
rule(np.power, *POWER_VJPS)
# Between two values ties split the cotangent evenly, as JAX does (winner_mask: 1 above, 0.5 on
# ties, 0 below); against a constant bound (np.maximum(x, 0.0): ReLU, clipping) the bound wins a
# tie, so one comparison is the mask (as PyTorch's relu: slope 0 at 0).
rule(np.maximum, lambda g, ans, x, y: unbroadcast(g * _share_above(x, y, ans), x),
     lambda g, ans, x, y: unbroadcast(g * _share_above(y, x, ans), y))
rule(np.minimum, lambda g, ans, x, y: unbroadcast(g * _share_above(y, x, ans), x),
     lambda g, ans, x, y: unbroadcast(g * _share_above(x, y, ans), y))
rule(np.where, None, lambda g, ans, c, x, y: unbroadcast(np.where(c, g, 0.0), x),
     lambda g, ans, c, x, y: unbroadcast(np.where(c, 0.0, g), y),
     pure=True, alias=FRESH, elementwise=True, nature=ELEMENTWISE, shape=shapes.elementwise, dtype=shapes.where)
nondiff(np.sign, np.heaviside, np.floor, np.ceil, np.rint, np.trunc, np.greater, np.less, np.greater_equal,
        np.less_equal, np.equal, np.not_equal, np.logical_and, np.logical_or, np.logical_not, np.isnan,
        np.isinf, np.isfinite, np.floor_divide)
nondiff(np.round, ARRAY_FUNCTION, method="round")
nondiff(np.argmax, ARRAY_FUNCTION, method="argmax")
nondiff(np.argmin, ARRAY_FUNCTION, method="argmin")
nondiff(runtime.winner_mask, HELPER, elementwise=True, shape=shapes.elementwise, dtype=shapes.mask)
# (an ndarray of x's shape, or of the shape= asked for: 0-d too)
nondiff(np.zeros_like, ARRAY_FUNCTION, ndarray=True, shape=shapes.like, dtype=shapes.zeros_like)
nondiff(np.ones_like, ARRAY_FUNCTION, ndarray=True, shape=shapes.like)
facts(np.empty_like, np.full_like, ARRAY_FUNCTION, ndarray=True, shape=shapes.like)
facts(np.zeros, np.ones, np.empty, ARRAY_FUNCTION, ndarray=True, shape=shapes.created,
                                          dtype=shapes.float_created)
facts(np.full, ARRAY_FUNCTION, ndarray=True, shape=shapes.created, dtype=shapes.filled)
facts(np.arange, ARRAY_FUNCTION, nature=AXES, rank=shapes.a_vector)
facts(np.eye, np.identity, ARRAY_FUNCTION, nature=AXES, rank=shapes.a_matrix, shape=shapes.identity_shape,
      dtype=shapes.identity_dtype)
nondiff(np.shape, GetAttr("shape"), pure=True, alias=OPAQUE, dims=shapes.shape_dims, shape=shapes.dynamic,
        dtype=shapes.unknown_dtype)
nondiff(np.ndim, np.size, GetAttr("ndim"), GetAttr("size"), NUMBERS, integer=True, on_numbers=False)
nondiff(GetAttr("dtype"), CONTAINER)

rule(np.exp2, lambda g, ans, x: g * ans * LN2)
rule(np.log2, lambda g, ans, x: g / (x * LN2))
rule(np.log10, lambda g, ans, x: g / (x * LN10))
rule(np.cbrt, lambda g, ans, x: g / (3 * ans ** 2))  # infinite at 0, as d/dx x**(1/3)
rule(np.positive, lambda g, ans, x: g)
rule(np.arcsin, lambda g, ans, x: g / np.sqrt(1 - x ** 2), twin=math.asin)
rule(np.arccos, lambda g, ans, x: -g / np.sqrt(1 - x ** 2), twin=math.acos)
rule(np.arcsinh, lambda g, ans, x: g / np.sqrt(x ** 2 + 1))
rule(np.arccosh, lambda g, ans, x: g / np.sqrt(x ** 2 - 1))
rule(np.arctanh, lambda g, ans, x: g / (1 - x ** 2))
rule(np.fabs, lambda g, ans, x: g * np.sign(x), twin=math.fabs)  # 0 at the kink x == 0 (as np.abs)
rule(np.sinc, lambda g, ans, x: g * apply(runtime.sinc_grad, x, ans), ARRAY_FUNCTION, shape=shapes.first)
rule(np.deg2rad, lambda g, ans, x: g * (math.pi / 180))
rule(np.radians, lambda g, ans, x: g * (math.pi / 180))
rule(np.rad2deg, lambda g, ans, x: g * (180 / math.pi))
rule(np.degrees, lambda g, ans, x: g * (180 / math.pi))
nondiff(np.fix, np.around, np.signbit, np.isclose, np.allclose, np.array_equal, np.flatnonzero, np.count_nonzero,
        np.searchsorted, np.logical_xor, ARRAY_FUNCTION)
for _name in ("argsort", "nonzero", "all", "any"):
    nondiff(getattr(np, _name), ARRAY_FUNCTION, method=_name)
nondiff(runtime.fmax_share, runtime.fmin_share, HELPER, elementwise=True, shape=shapes.elementwise,
        dtype=shapes.mask)

def _share_above(x: Any, y: Any, ans: Any) -> Any:
    """The share of the cotangent of ``maximum(x, y)`` that goes to ``x`` (of ``minimum(y, x)``
    that goes to ``y``): 1 where ``x > y``, 0 below, and at a tie 0.5 -- or 0 when either is a
    constant number, a bound that wins its ties: then one comparison of the result ``ans`` with
    the bound is the mask (a ReLU's ``h > 0``, so that its input need not be kept)."""
    numbers = (int, float, bool)
    if type(y) in numbers:  # x > y where max(x, y) > y; for minimum(y, x): x < y where min < y
        return np.greater(ans, y) if type(x) not in numbers else np.greater(x, y)
    if type(x) in numbers:
        return np.less(ans, x)
    return apply(runtime.winner_mask, x, y)


def _share_of(x: Any, y: Any) -> Any:
    """``exp(x) / (exp(x) + exp(y))``, the slope of ``logaddexp(x, y)`` in ``x``, as
    ``1 / (1 + exp(y - x))``: one exp and no need of ``logaddexp`` itself (the forward value is
    not kept for it). The exponent is capped at 88, so it never overflows (in float32 either);
    where the cap acts the share is below 1e-38 and is returned as about that."""
    return 1.0 / (1.0 + np.exp(np.minimum(y - x, 88.0)))


rule(np.true_divide, *record_of(operator.truediv).vjps)  # np.true_divide is np.divide in NumPy >= 1.x
rule(np.float_power, lambda g, ans, x, y: unbroadcast(times_power_slope(g, x, y, np.float_power), x, y),
       lambda g, ans, x, y: unbroadcast(g * ans * apply(runtime.log_or_zero, x), y, x))
rule(np.hypot, lambda g, ans, x, y: unbroadcast(g * x / ans, x, y),
       lambda g, ans, x, y: unbroadcast(g * y / ans, y, x))
rule(np.arctan2, lambda g, ans, y, x: unbroadcast(g * x / (x ** 2 + y ** 2), y, x),
       lambda g, ans, y, x: unbroadcast(-g * y / (x ** 2 + y ** 2), x, y))
rule(np.logaddexp, lambda g, ans, x, y: unbroadcast(g * _share_of(x, y), x, y),
       lambda g, ans, x, y: unbroadcast(g * _share_of(y, x), y, x))
rule(np.logaddexp2, lambda g, ans, x, y: unbroadcast(g * np.exp2(x - ans), x, y),
       lambda g, ans, x, y: unbroadcast(g * np.exp2(y - ans), y, x))
# fmax/fmin: as maximum/minimum (ties split evenly), except that a NaN operand loses outright,
# as NumPy ignores it; where both are NaN neither gets anything.
rule(np.fmax, lambda g, ans, x, y: unbroadcast(g * apply(runtime.fmax_share, x, y), x, y),
       lambda g, ans, x, y: unbroadcast(g * apply(runtime.fmax_share, y, x), y, x))
rule(np.fmin, lambda g, ans, x, y: unbroadcast(g * apply(runtime.fmin_share, x, y), x, y),
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


rule(np.clip, _clip_vjp(0), _clip_vjp(1), _clip_vjp(2), ARRAY_FUNCTION, method="clip", nature=KEEPS,
     shape=shapes.clipped, elementwise=True)
keywords(np.clip, a_min=1, min=1, a_max=2, max=2)

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


rule(np.sum, _sum_vjp, REDUCTION, method="sum")
rule(np.mean, _mean_vjp, REDUCTION, method="mean")


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


rule(np.prod, _prod_vjp("np.prod"), REDUCTION, method="prod")
rule(np.max, _extremum_vjp("np.max"), REDUCTION, method="max")
rule(np.min, _extremum_vjp("np.min"), REDUCTION, method="min")
for _name in ("amax", "amin", "nanmax", "nanmin"):  # (NaN never equals the result)
    rule(getattr(np, _name), _extremum_vjp(f"np.{_name}"), REDUCTION)
rule(np.var, _var_vjp("np.var"), REDUCTION, method="var")
rule(np.std, _std_vjp("np.std"), REDUCTION, method="std")
rule(np.cumsum, _cumsum_vjp("np.cumsum"), ARRAY_FUNCTION, method="cumsum", nature=AXES, shape=shapes.along_axis,
     dtype=shapes.keeps_float)
rule(np.cumprod, _cumprod_vjp("np.cumprod"), ARRAY_FUNCTION, method="cumprod", nature=AXES,
     shape=shapes.along_axis)


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


rule(np.average, _average_vjp(0), None, _average_vjp(2), REDUCTION, shape=shapes.dynamic, dtype=shapes.unknown_dtype)
keywords(np.average, weights=2)


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
    return runtime.vector_norm_cotangent(g, x, ans, ord_, lambda: apply(runtime.norm_inf_vjp, g, x, ans, axes, True))


rule(np.linalg.norm, _norm_vjp, ARRAY_FUNCTION, shape=shapes.norm, dtype=shapes.first_dtype)

# ----------------------------------------------------------------------------- shape ops


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


rule(GetAttr("T"), lambda g, ans, x: g.T, RESHAPING, nature=KEEPS, rank=shapes.same_rank, shape=shapes.transposed)
if NUMPY_2:  # x.mT, np.matrix_transpose, np.linalg.matrix_transpose
    for _fn in (GetAttr("mT"), np.matrix_transpose, np.linalg.matrix_transpose):
        rule(_fn, lambda g, ans, x: np.swapaxes(g, -1, -2), RESHAPING)
rule(np.transpose, lambda g, ans, x, axes=None: _untranspose(g, x, axes), RESHAPING, nature=KEEPS,
     shape=shapes.transposed)
# (the method's shape comes as separate arguments: x.reshape(2, 3) is np.reshape(x, (2, 3)))
rule(Method("reshape"), lambda g, ans, x, *shape, **kw: _reshape_back(g, x, kw.get("order", "C")), RESHAPING)
rule(np.reshape, lambda g, ans, x, *args, **kw: _reshape_back(g, x, _order(args, kw, 1)), RESHAPING,
     shape=shapes.reshaped)
rule(np.copy, lambda g, ans, x, *args, **kw: g, ARRAY_FUNCTION, nature=KEEPS, ndarray=True, shape=shapes.first)
# (of a list, a dict or an array: a new one)
rule(Method("copy"), lambda g, ans, x, *args, **kw: g, ARRAY_FUNCTION, nature=KEEPS, rank=shapes.same_rank,
     dtype=shapes.keeps_float, shape=shapes.first)


rule(np.squeeze, lambda g, ans, x, *args, **kw: _reshape_back(g, x), RESHAPING, method="squeeze")
rule(np.expand_dims, lambda g, ans, x, *args, **kw: _reshape_back(g, x), RESHAPING, shape=shapes.expand_dims)
for _fn in (np.atleast_1d, np.atleast_2d, np.atleast_3d):
    rule(_fn, lambda g, ans, x, *args, **kw: _reshape_back(g, x), RESHAPING, nature=AXES)
# (order positionally or by keyword; x.flatten() copies)
rule(np.ravel, lambda g, ans, x, *args, **kw: _reshape_back(g, x, _order(args, kw, 0)), RESHAPING,
     method="ravel", nature=AXES)
rule(Method("flatten"), lambda g, ans, x, *args, **kw: _reshape_back(g, x, _order(args, kw, 0)),
     ARRAY_FUNCTION, nature=AXES)
rule(np.swapaxes, lambda g, ans, x, axis1, axis2: np.swapaxes(g, axis1, axis2), RESHAPING, method="swapaxes",
     nature=KEEPS)
rule(np.moveaxis, lambda g, ans, x, source, destination: np.moveaxis(g, destination, source), RESHAPING,
     nature=KEEPS)


def _method_transpose(g, ans, x, *axes):
    """x.transpose(), x.transpose(1, 0, 2), x.transpose((1, 0, 2)), x.transpose([1, 0])."""
    if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
        axes = axes[0]
    if not axes:
        return np.transpose(g)
    if len(axes) == 1 and isinstance(axes[0], Sym):  # one value: a sequence of axes (or a vector's 0)
        return apply(runtime.untranspose, g, axes[0])
    return _untranspose(g, x, tuple(axes))


rule(Method("transpose"), _method_transpose, RESHAPING, nature=KEEPS)
rule(np.broadcast_to, lambda g, ans, x, shape, **kw: unbroadcast(g, x), RESHAPING, shape=shapes.broadcast_to)
rule(np.tile, lambda g, ans, x, reps: apply(runtime.tile_vjp, g, x, reps), ARRAY_FUNCTION, nature=AXES)


def _repeat_vjp(g, ans, x, repeats, axis=None):
    return apply(runtime.repeat_vjp, g, x, repeats, axis)


rule(np.repeat, _repeat_vjp, ARRAY_FUNCTION, method="repeat", nature=AXES)
rule(np.flip, lambda g, ans, x, axis=None: np.flip(g, axis), RESHAPING, nature=KEEPS, shape=shapes.first)
rule(np.fliplr, lambda g, ans, x: np.fliplr(g), RESHAPING, shape=shapes.first)
rule(np.flipud, lambda g, ans, x: np.flipud(g), RESHAPING, shape=shapes.first)


def _roll_vjp(g, ans, x, shift, axis=None):
    back = np.negative(shift) if isinstance(shift, Sym) else (
        tuple(-s for s in shift) if isinstance(shift, (tuple, list)) else -shift)
    return np.roll(g, back, axis)


rule(np.roll, _roll_vjp, ARRAY_FUNCTION, nature=KEEPS, shape=shapes.first)


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


rule(np.pad, _pad_vjp, ARRAY_FUNCTION)
# (of a vector v, triu gives the matrix of rows v, masked: its cotangent is the columns' sum)
rule(np.triu, lambda g, ans, x, k=0: unbroadcast(np.triu(g, k), x), ARRAY_FUNCTION, nature=KEEPS,
     shape=shapes.triangle)
rule(np.tril, lambda g, ans, x, k=0: unbroadcast(np.tril(g, k), x), ARRAY_FUNCTION, nature=KEEPS,
     shape=shapes.triangle)
# Sorting permutes: the cotangent goes back through the permutation (np.argsort of x). Tied
# elements have equal values, so which of them gets which tied cotangent does not matter.
rule(np.sort, lambda g, ans, x, axis=-1, **kw: apply(runtime.sort_vjp, g, x, axis), ARRAY_FUNCTION, nature=KEEPS,
     shape=shapes.along_axis)


def _diagonal_vjp(g, ans, x, offset=0, axis1=0, axis2=1):
    return apply(runtime.diagonal_vjp, g, x, offset, axis1, axis2)


def _trace_vjp(g, ans, x, offset=0, axis1=0, axis2=1, *args, **kw):
    if (args and args[0] is not None) or kw.get("dtype") is not None:
        _unsupported("np.trace with dtype=")
    return apply(runtime.trace_vjp, g, x, offset, axis1, axis2)


rule(np.diagonal, _diagonal_vjp, RESHAPING, method="diagonal")
rule(np.trace, _trace_vjp, ARRAY_FUNCTION, method="trace")
# (of a matrix: a view of its diagonal; of a vector: a new matrix)
rule(np.diag, lambda g, ans, x, k=0: np.diagonal(g, k) if _ndim(x) == 1 else apply(runtime.diag_vjp, g, x, k),
     RESHAPING, dtype=shapes.unknown_dtype)

# ----------------------------------------------------------------------------- indexing


def _index_vjp(g, ans, x, index):
    """The items of ``np.r_[a, b, ...]`` and ``np.c_[a, b, ...]`` (an index of np.r_): the pieces of
    ``g``; no other index is differentiable."""
    if x is not np.r_ and x is not np.c_:
        _unsupported("differentiating an index (other than the items of np.r_[...] or np.c_[...])")
    return apply(runtime.concatenator_vjp, g, "r" if x is np.r_ else "c", index)


rule(operator.getitem, lambda g, ans, x, index: apply(runtime.getitem_vjp, g, x, index), _index_vjp,
     pure=True, alias=VIEW, reads_only=True, shape=shapes.indexed, rank=shapes.item_rank, dims=shapes.item_dims,
     integer=shapes.size_read_off_shape, dtype=shapes.first_dtype)
# a[i] = v: the overwritten part of a gets no gradient; v gets what reached a[i]
# (a list or dict, or an argument that may be one, has a cotangent {position: cotangent})
rule(runtime.setitem, lambda g, ans, a, index, value: apply(runtime.setitem, g, index, 0.0) if _known_ndarray(a)
       else apply(runtime.setitem_base_vjp, g, a, index), None,
       lambda g, ans, a, index, value: apply(runtime.setitem_item_vjp, g, a, index, value) if not _known_ndarray(a)
       else unbroadcast(g[index], value) if _basic_index(index)
       else apply(runtime.setitem_value_vjp, g, index, value),
     alias=FRESH, nature=KEEPS, shape=shapes.first, rank=shapes.updated_rank, dtype=shapes.first_dtype)


def _known_ndarray(x: Any) -> bool:
    """Known at compile time to be an ndarray."""
    return isinstance(x, np.ndarray) or (isinstance(x, Sym) and type(x.kind) is int)


def _basic_index(index: Any) -> bool:
    """An index known at compile time to pick each element at most once."""
    if isinstance(index, Sym):
        return index.value.integer or index.value.shape is not None and index.kind == SEQUENCE  # (i, j)
    return runtime.is_basic_index(index)


# ----------------------------------------------------------------------------- products

rule(np.outer, lambda g, ans, a, b: g @ b if _ndim(a) == 1 and _ndim(b) == 1
       else np.reshape(g @ np.ravel(b), shape_of(a)),
       lambda g, ans, a, b: a @ g if _ndim(a) == 1 and _ndim(b) == 1
       else np.reshape(np.ravel(a) @ g, shape_of(b)),
     ARRAY_FUNCTION, nature=AXES, shape=shapes.outer, dtype=shapes.keeps_float)
rule(np.inner, lambda g, ans, a, b: apply(runtime.inner_vjp, g, 0, a, b),
       lambda g, ans, a, b: apply(runtime.inner_vjp, g, 1, a, b), ARRAY_FUNCTION)
rule(np.vdot, lambda g, ans, a, b: g * b if shapes.same(static_shape(a), static_shape(b))
       else np.reshape(g * b, shape_of(a)),
       lambda g, ans, a, b: g * a if shapes.same(static_shape(a), static_shape(b))
       else np.reshape(g * a, shape_of(b)), REDUCTION, shape=shapes.scalar, dtype=shapes.unknown_dtype)
rule(np.kron, lambda g, ans, a, b: apply(runtime.kron_vjp, g, 0, a, b),
       lambda g, ans, a, b: apply(runtime.kron_vjp, g, 1, a, b), ARRAY_FUNCTION)
rule(np.tensordot, lambda g, ans, a, b, axes=2: apply(runtime.tensordot_vjp, g, 0, a, b, axes),
       lambda g, ans, a, b, axes=2: apply(runtime.tensordot_vjp, g, 1, a, b, axes), ARRAY_FUNCTION)


def _einsum_vjp(argnum: int) -> Rule:
    """np.einsum('subscripts', *operands), explicit or implicit output, '...' included: the
    einsum of g with the other operands into this operand's subscripts (runtime.einsum_vjp)."""
    def vjp(g, ans, subscripts, *operands, **kw):
        if not isinstance(subscripts, (str, Sym)):
            _unsupported("np.einsum without a subscripts string (the operand-list form)")
        return apply(runtime.einsum_vjp, g, argnum, subscripts, *operands)
    return vjp


# (of one operand, np.einsum returns a view of it where it can: 'ij->ji', 'ii->i')
rule(np.einsum, None, *(_einsum_vjp(i) for i in range(16)), ARRAY_FUNCTION, alias=VIEW, viewed=1)

# ----------------------------------------------------------------------------- linear algebra


def _mT(a: Any) -> Any:
    """The matrix transpose of ``a`` (of each matrix of a stack)."""
    return a.T if _ndim(a) == 2 else np.swapaxes(a, -1, -2)


# d inv(A) = -inv(A) dA inv(A), so dA = -inv(A)^T g inv(A)^T.
rule(np.linalg.inv, lambda g, ans, a: -(_mT(ans) @ g @ _mT(ans)), ARRAY_FUNCTION, shape=shapes.first,
     dtype=shapes.first_dtype)


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


rule(np.linalg.solve, _solve_vjp(0), _solve_vjp(1), ARRAY_FUNCTION)


def _det_vjp(g, ans, a):
    """d det(A) = det(A) inv(A)^T (A must be invertible)."""
    if _ndim(a) == 2:
        return g * ans * np.linalg.inv(a).T
    return np.expand_dims(g * ans, (-2, -1)) * np.swapaxes(np.linalg.inv(a), -1, -2)


rule(np.linalg.det, _det_vjp, ARRAY_FUNCTION, shape=shapes.stacked_matrices)
rule(np.linalg.cholesky, lambda g, ans, a, **kw: apply(runtime.cholesky_vjp, g, ans, kw["upper"])
       if "upper" in kw else apply(runtime.cholesky_vjp, g, ans), ARRAY_FUNCTION, shape=shapes.first)
# Decompositions (runtime.*_vjp): distinct eigenvalues / singular values; a tuple result's
# cotangent is {position: cotangent}.
rule(np.linalg.pinv, lambda g, ans, a, *args, **kw: apply(runtime.pinv_vjp, g, a, ans), ARRAY_FUNCTION)
rule(np.linalg.eigh, lambda g, ans, a, *args, **kw: apply(runtime.eigh_vjp, g, a, ans), PIECES)
rule(np.linalg.eigvalsh, lambda g, ans, a, *args, **kw: apply(runtime.eigh_vjp, g, a), ARRAY_FUNCTION)
rule(np.linalg.eig, lambda g, ans, a: apply(runtime.eig_vjp, g, a, ans), PIECES)
rule(np.linalg.eigvals, lambda g, ans, a: apply(runtime.eig_vjp, g, a), ARRAY_FUNCTION)


def _svd_tuple(args: list, kwargs: dict) -> bool:
    """``np.linalg.svd`` returns (u, s, vh) unless ``compute_uv=False``."""
    compute_uv = kwargs.get("compute_uv", args[2] if len(args) > 2 else None)
    return compute_uv is None or not compute_uv.is_const or bool(compute_uv.const)


def _qr_tuple(args: list, kwargs: dict) -> bool:
    """``np.linalg.qr`` returns (q, r) unless ``mode="r"``."""
    mode = kwargs.get("mode", args[1] if len(args) > 1 else None)
    return mode is None or not mode.is_const or mode.const != "r"


def _svd_vjp(g, ans, a, full_matrices=True, compute_uv=True, hermitian=False):
    """u, s, vh = svd(a, full_matrices=False) (full matrices only when square), or s alone."""
    return apply(runtime.svd_vjp, g, a, ans) if compute_uv else apply(runtime.svd_vjp, g, a)


def _qr_vjp(g, ans, a, mode="reduced"):
    if mode == "r":
        return apply(runtime.qr_r_vjp, g, a)
    if mode != "reduced":
        _unsupported(f"np.linalg.qr with mode={mode!r}")
    return apply(runtime.qr_vjp, g, a, ans)


rule(np.linalg.svd, _svd_vjp, ARRAY_FUNCTION, alias=OPAQUE, sequence=_svd_tuple)
if hasattr(np.linalg, "svdvals"):
    rule(np.linalg.svdvals, lambda g, ans, a: apply(runtime.svd_vjp, g, a), ARRAY_FUNCTION)
rule(np.linalg.qr, _qr_vjp, ARRAY_FUNCTION, alias=OPAQUE, sequence=_qr_tuple)
for _fn in (np.vecdot, np.linalg.vecdot) if NUMPY_2 else ():
    rule(_fn, lambda g, ans, x, y, **kw: apply(runtime.vecdot_vjp, g, x, y, kw.get("axis", -1)),
           lambda g, ans, x, y, **kw: apply(runtime.vecdot_vjp, g, y, x, kw.get("axis", -1)), ARRAY_FUNCTION)
# (matrix_power(a, 1) is a itself)
rule(np.linalg.matrix_power, lambda g, ans, a, n: apply(runtime.matrix_power_vjp, g, a, n), ARRAY_FUNCTION,
     alias=ITSELF)
rule(np.linalg.multi_dot, lambda g, ans, arrays, **kw: apply(runtime.multi_dot_vjp, g, arrays), ARRAY_FUNCTION)
rule(np.linalg.lstsq, lambda g, ans, a, b, *args, **kw: apply(runtime.lstsq_vjp, g, 0, a, b, ans),
       lambda g, ans, a, b, *args, **kw: apply(runtime.lstsq_vjp, g, 1, a, b, ans), PIECES)


# ----------------------------------------------------------------------------- more NumPy functions
# Helpers with loops or index bookkeeping live in runtime (one place for the math).


def _diff_vjp(g, ans, a, n=1, axis=-1, **kw):
    if kw:
        _unsupported("np.diff with prepend= or append=")
    return apply(runtime.diff_vjp, g, n, axis, shape_of(a))


def _quantile_options(name: str, args: tuple, kw: dict, what: str) -> dict:
    """The keyword view of np.quantile's / np.percentile's / np.median's optional arguments; ``what``
    is refused with out= or a method other than linear interpolation."""
    names = ("axis", "out", "overwrite_input", "keepdims") if name == "np.median" else \
        ("q", "axis", "out", "overwrite_input", "method", "keepdims")
    opts = dict(_positional(name, args, names), **kw)
    if opts.get("out") is not None or opts.get("method", "linear") != "linear":
        _unsupported(f"{what} with out= or a method other than 'linear'")
    return opts


def _quantile_vjp(name: str, percent: bool = False) -> Rule:
    """np.quantile / np.percentile (q / 100) / np.median (q = 0.5): linear interpolation only."""
    def vjp(g, ans, a, *args, **kw):
        opts = _quantile_options(name, args, kw, name)
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


rule(np.diff, _diff_vjp, ARRAY_FUNCTION, nature=AXES, alias=ITSELF)  # (np.diff(x, 0) is x itself)
def _take_vjp(g, ans, a, indices, axis=None, out=None, mode="raise"):
    if out is not None or mode != "raise":
        _unsupported("np.take with out= or mode= (indices out of range)")
    return apply(runtime.take_vjp, g, a, indices, axis)


rule(np.take, _take_vjp, ARRAY_FUNCTION, method="take")
rule(np.take_along_axis, lambda g, ans, a, indices, axis=-1: apply(runtime.take_along_axis_vjp, g, a, indices, axis),
     ARRAY_FUNCTION)
rule(np.quantile, _quantile_vjp("np.quantile"), ARRAY_FUNCTION)
rule(np.percentile, _quantile_vjp("np.percentile", percent=True), ARRAY_FUNCTION)
rule(np.median, _quantile_vjp("np.median"), REDUCTION, shape=shapes.dynamic, dtype=shapes.unknown_dtype)
rule(np.mod, *record_of(operator.mod).vjps)  # np.remainder is np.mod
rule(np.fmod, lambda g, ans, x, y: unbroadcast(g, x, y),
       lambda g, ans, x, y: unbroadcast(-g * np.trunc(x / y), y, x), twin=math.fmod)
rule(np.append, lambda g, ans, arr, values, axis=None: apply(runtime.append_vjp, g, 0, arr, values, axis),
       lambda g, ans, arr, values, axis=None: apply(runtime.append_vjp, g, 1, arr, values, axis),
     ARRAY_FUNCTION, nature=AXES)
rule(np.rot90, lambda g, ans, m, k=1, axes=(0, 1): np.rot90(g, -k, axes), RESHAPING, dtype=shapes.unknown_dtype)
rule(np.rollaxis, lambda g, ans, a, axis, start=0: apply(runtime.rollaxis_vjp, g, a, axis, start), RESHAPING)
rule(np.cross, lambda g, ans, a, b: apply(runtime.cross_vjp, g, 0, a, b),
       lambda g, ans, a, b: apply(runtime.cross_vjp, g, 1, a, b), ARRAY_FUNCTION)
rule(np.select, None, lambda g, ans, conds, choices, default=0: apply(runtime.select_vjp, g, conds, choices),
       lambda g, ans, conds, choices, default: apply(runtime.select_default_vjp, g, conds, default), ARRAY_FUNCTION)
rule(np.interp, _interp_vjp(0), None, _interp_vjp(2), ARRAY_FUNCTION)
rule(np.convolve, lambda g, ans, a, v, mode="full": apply(runtime.convolve_vjp, g, 0, a, v, mode),
       lambda g, ans, a, v, mode="full": apply(runtime.convolve_vjp, g, 1, a, v, mode), ARRAY_FUNCTION)
rule(np.polyval, lambda g, ans, p, x: apply(runtime.polyval_vjp, g, 0, p, x),
       lambda g, ans, p, x: apply(runtime.polyval_vjp, g, 1, p, x), ARRAY_FUNCTION)
rule(np.nansum, lambda g, ans, x, axis=None, dtype=None, out=None, keepdims=False, **kw:
       _sum_vjp(g, ans, x, axis, keepdims=keepdims) * apply(runtime.nan_mask, x),
     REDUCTION, shape=shapes.dynamic, dtype=shapes.unknown_dtype)
rule(np.nanmean, _nanmean_vjp, REDUCTION, shape=shapes.dynamic, dtype=shapes.unknown_dtype)
rule(np.partition, lambda g, ans, a, kth, axis=-1, **kw: apply(runtime.partition_vjp, g, a, ans, axis), ARRAY_FUNCTION)
rule(np.nan_to_num, lambda g, ans, x, *args, **kw: g * np.isfinite(x), ARRAY_FUNCTION, shape=shapes.first)
rule(np.linspace, _linspace_vjp(0), _linspace_vjp(1), ARRAY_FUNCTION, nature=AXES)
for _fn, _positions in ((np.select, {"default": 2}), (np.linspace, {"start": 0, "stop": 1}),
                        (np.interp, {"fp": 2}), (np.append, {"values": 1})):
    keywords(_fn, **_positions)
rule(np.gradient, _gradient_vjp, ARRAY_FUNCTION)
# Of real arrays (complex ones are refused where they appear): real and conj are the identity,
# imag and angle constant.
rule(np.conj, lambda g, ans, x: g)
# (x.conj() of a real array is x itself, where np.conj(x) is a new array)
rule(Method("conj"), lambda g, ans, x: g, RESHAPING, alias=ITSELF, nature=KEEPS, rank=shapes.same_rank,
     shape=shapes.first)
for _fn in (np.real, GetAttr("real")):
    rule(_fn, lambda g, ans, x: g, RESHAPING, shape=shapes.first)
for _fn in (np.imag, GetAttr("imag")):
    rule(_fn, lambda g, ans, x, *args, **kw: 0.0 * g, RESHAPING, shape=shapes.first)
rule(np.angle, lambda g, ans, x, *args, **kw: 0.0 * g, ARRAY_FUNCTION, shape=shapes.first)


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


_SIMPLE = (int, float, bool, type(None), slice, tuple, str)
define(BUILD_SLICE, cheap=True, fold=lambda *parts: slice(*parts), fold_types=_SIMPLE)
define(BUILD_TUPLE, vjps=_ItemRules(), fold=lambda *items: tuple(items), fold_types=_SIMPLE, dims=shapes.tuple_dims,
       shape=shapes.int_tuple)
define(BUILD_LIST, vjps=_ItemRules())
rule(runtime.list_append, lambda g, ans, items, value, position: g,
       lambda g, ans, items, value, position: apply(runtime.cotangent_at, g, position, value), None, CONTAINER,
     pure=False, updates=True, alias=ITSELF)
# list(x) / tuple(x): of a sequence, its cotangent as it is; of an array, the items' cotangents stacked
rule(tuple, lambda g, ans, seq: g if getattr(seq, "kind", None) == SEQUENCE else apply(runtime.restack, g, seq),
     CONTAINER, reads_only=True)
rule(list, lambda g, ans, seq: g if getattr(seq, "kind", None) == SEQUENCE else apply(runtime.restack, g, seq),
     CONTAINER)
rule(runtime.copy_sequence, lambda g, ans, seq: g, CONTAINER, reads_only=True)
rule(runtime.reverse_sequence, lambda g, ans, seq: apply(runtime.reverse_cotangent, g, seq),
     CONTAINER, pure=False, reads_only=True)
# (of an empty sequence, start itself)
rule(sum, lambda g, ans, seq, start=0: apply(runtime.repeat_cotangent, g, seq),
       lambda g, ans, seq, start: g, ARRAY_FUNCTION, alias=ITSELF, viewed=1)
rule(np.stack, lambda g, ans, seq, axis=0, **_: apply(runtime.unstack, g, axis), ARRAY_FUNCTION, nature=AXES)
rule(np.concatenate, lambda g, ans, seq, axis=0, **_: apply(runtime.unconcatenate, g, seq, axis),
     ARRAY_FUNCTION, nature=AXES)
for _array, _alias in ((np.array, FRESH), (np.asarray, VIEW)):  # of a sequence: like np.stack; of an array: itself
    rule(_array, lambda g, ans, x, *args, **kwargs: apply(runtime.unstack, g, 0)
         if getattr(x, "kind", None) == SEQUENCE else g, ARRAY_FUNCTION, alias=_alias, nature=KEEPS, ndarray=True)
facts(np.asanyarray, Method("view"), RESHAPING, dtype=shapes.keeps_float)  # (a dtype argument changes it)
facts(GetAttr("flat"), RESHAPING, stateful=True, dtype=shapes.unknown_dtype)  # (an iterator, not an array)
for _name in ("hstack", "vstack", "dstack", "column_stack"):
    rule(getattr(np, _name), lambda g, ans, seq, *a, _how=_name, **k: apply(runtime.unstack_pieces, g, seq, _how),
         ARRAY_FUNCTION, nature=AXES)


# split family: the result is a list of pieces; the cotangent ({piece: cotangent}) is joined back
rule(np.split, lambda g, ans, x, sections, axis=0: apply(runtime.unsplit, g, ans, axis), PIECES)
rule(np.array_split, lambda g, ans, x, sections, axis=0: apply(runtime.unsplit, g, ans, axis), PIECES)
rule(np.vsplit, lambda g, ans, x, sections: apply(runtime.unsplit, g, ans, 0), PIECES)
rule(np.dsplit, lambda g, ans, x, sections: apply(runtime.unsplit, g, ans, 2), PIECES)
rule(np.hsplit, lambda g, ans, x, sections: apply(runtime.unsplit, g, ans, apply(runtime.hsplit_axis, x)), PIECES)
rule(np.linalg.slogdet, lambda g, ans, a: apply(runtime.slogdet_vjp, g, a), PIECES)
# ufuncs of several outputs return a tuple of arrays, not an array of their operands' shape
facts(*(getattr(np, _name) for _name in ("modf", "frexp", "divmod")), PIECES, elementwise=False, nature=None)
# (a copy: astype(t, copy=False), which may return x itself, is rare enough not to be modelled)
rule(Method("astype"), lambda g, ans, x, dtype, *a, **k: g if np.issubdtype(np.dtype(dtype), np.inexact)
     else 0.0 * g, ARRAY_FUNCTION, nature=KEEPS, rank=shapes.same_rank, dtype=shapes.cast)
nondiff(runtime.list_index, HELPER, reads_only=True, alias=OPAQUE)
nondiff(runtime.hsplit_axis, runtime.check_pair, HELPER)
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
    rule(GetAttr(_name), _field_vjp(_position))


def is_result_field(fn: Any) -> bool:
    """Whether ``fn`` reads a field of a named tuple result (which never grows: no snapshot needed)."""
    return isinstance(fn, GetAttr) and fn.name in RESULT_FIELDS


# ============================================================================= methods of containers
# (list, tuple and dict methods generated code calls; the array methods are the rows of their
# NumPy functions, through ``method=``)

facts(*(Method(m) for m in ("index", "count", "keys", "values", "items", "get", "tolist", "item")), pure=True,
      alias=OPAQUE, shape=shapes.dynamic, dtype=shapes.unknown_dtype)
facts(Method("append"), Method("pop"), updates=True, alias=OPAQUE, shape=shapes.dynamic, dtype=shapes.unknown_dtype)

# ============================================================================= runtime helpers
# What the generated code calls besides NumPy (symdiff.runtime): how each treats memory.

facts(runtime.add_into, updates=True, alias=ITSELF, accumulates=True, shape=shapes.elementwise,
      dtype=shapes.accumulated)
facts(runtime.add_at_index, runtime.add_at, updates=True, alias=ITSELF, shape=shapes.first, dtype=shapes.accumulated)
facts(runtime.store, updates=True, alias=ITSELF, shape=shapes.first, dtype=shapes.first_dtype, rank=shapes.updated_rank)
facts(runtime.add_at_key, updates=True, alias=ITSELF, shape=shapes.dynamic, dtype=shapes.unknown_dtype)
facts(runtime.scalar_seed, reads_only=True, alias=FRESH, shape=shapes.scalar, dtype=shapes.unknown_dtype)
facts(runtime.sign, runtime.log_or_zero, runtime.sinc_grad, runtime.matmul_vjp, runtime.dot_vjp,
      runtime.setitem_base_vjp, runtime.setitem_item_vjp, runtime.restack, HELPER)
facts(runtime.setitem_value_vjp, HELPER, alias=VIEW)  # (g[index] as it is, for a basic index)
facts(runtime.getitem_vjp, HELPER, shape=shapes.second, dtype=shapes.second_dtype)
facts(runtime.power_slope, alias=FRESH, shape=shapes.elementwise, dtype=shapes.keeps_float)
facts(runtime.unbroadcast, HELPER, alias=ITSELF, dtype=shapes.passed_through)
facts(runtime.as_grad, alias=ITSELF, shape=shapes.dynamic, dtype=shapes.unknown_dtype)
# (stacked returns rows that are already stacked as they are: in generated code they never are)
facts(runtime.grad_like, runtime.sum_of_outer, runtime.stacked, alias=FRESH, shape=shapes.dynamic,
      dtype=shapes.unknown_dtype)


# ============================================================================= forward mode
# A call's tangent (forward.py): element-by-element rows need nothing more (their VJP run on a
# tangent is their JVP); rows linear in their arguments say so; the rest have JVP rules
# ``(t, ans, *args, **kwargs) -> tangent``, written like VJPs and inlined the same way.

facts(operator.matmul, np.matmul, np.dot, np.outer, np.inner, np.vdot, np.kron, np.tensordot, np.einsum,
      np.cross, np.convolve, linear=EACH)  # (multilinear: linear in each operand)
facts(GetAttr("T"), np.transpose, Method("transpose"), Method("reshape"), np.reshape, np.copy, Method("copy"),
      np.squeeze, np.expand_dims, np.atleast_1d, np.atleast_2d, np.atleast_3d, np.ravel, Method("flatten"),
      np.swapaxes, np.moveaxis, np.rollaxis, np.broadcast_to, np.tile, np.repeat, np.flip, np.fliplr, np.flipud,
      np.roll, np.rot90, np.triu, np.tril, np.diagonal, np.trace, np.diag, operator.getitem, np.take,
      np.take_along_axis, np.sum, np.mean, np.cumsum, np.diff, np.gradient, np.conj, Method("conj"), np.real,
      GetAttr("real"), np.imag, GetAttr("imag"), np.stack, np.concatenate, np.hstack, np.vstack, np.dstack,
      np.column_stack, np.array, np.asarray, np.split, np.array_split, np.vsplit, np.dsplit, np.hsplit, tuple,
      list, runtime.reverse_sequence, runtime.copy_sequence, Method("astype"), linear=EACH)
facts(np.where, np.select, runtime.setitem, runtime.list_append, sum, np.linspace, np.append, linear=JOINTLY)
facts(float, linear=EACH)
if NUMPY_2:
    facts(np.vecdot, np.linalg.vecdot, GetAttr("mT"), np.matrix_transpose, np.linalg.matrix_transpose, linear=EACH)


def _extremum_jvp(name: str) -> Rule:
    """max/min: the mean of the tangent over the elements that attain the extremum."""
    def jvp(t, ans, x, *args, **kw):
        opts = _reduction_args(name, args, kw, ("axis", "out", "keepdims", "initial", "where"))
        axis, keepdims = opts.get("axis"), opts.get("keepdims", False)
        mask = x == _expand(ans, axis, keepdims)
        return np.sum(t * mask, axis=axis, keepdims=keepdims) / np.sum(mask, axis=axis, keepdims=keepdims)
    return jvp


def _var_jvp(name: str, std: bool = False) -> Rule:
    """d var = 2 sum((x - mean) t) / (N - ddof); d std = d var / (2 std), 0 where std == 0."""
    def jvp(t, ans, x, *args, **kw):
        axis, keepdims, ddof = _moments(name, args, kw)
        centred, n = _centred(x, ans, axis, ddof)
        dot = np.sum(centred * t, axis=axis, keepdims=keepdims)
        return dot / (n * np.where(ans == 0, 1.0, ans)) if std else dot * (2 / n)
    return jvp


def _norm_jvp(t, ans, x, ord=None, axis=None, keepdims=False):
    """The 2-norm of vectors, the Frobenius norm of matrices: sum(x t) / norm, 0 where the norm is 0."""
    vector = isinstance(axis, int) or isinstance(axis, tuple) and len(axis) == 1 or axis is None and _ndim(x) == 1
    if isinstance(ord, Sym) or not (ord is None or ord == 2 and vector or ord == "fro" and not vector):
        _unsupported("forward mode through np.linalg.norm other than the 2-norm of vectors and the Frobenius norm")
    return np.sum(x * t, axis=axis, keepdims=keepdims) / np.where(ans == 0, 1.0, ans)


def _sort_jvp(t, ans, x, axis=-1, **kw):
    if axis is None:
        return np.ravel(t)[np.argsort(np.ravel(x))]
    return np.take_along_axis(t, np.argsort(x, axis=axis), axis=axis)


def _solve_jvp(argnum: int) -> Rule:
    """x = solve(a, b): dx = solve(a, db - da x)."""
    def jvp(t, ans, a, b):
        if argnum == 1:
            return np.linalg.solve(a, t)
        return -np.linalg.solve(a, t @ ans)
    return jvp


def _cholesky_jvp(t, ans, a, **kw):
    """dL = L phi(L^-1 dA L^-T), phi keeping the lower triangle with half the diagonal."""
    if kw.get("upper") or _ndim(a) != 2:
        _unsupported("forward mode through np.linalg.cholesky of a stack of matrices or with upper=True")
    inner = np.linalg.solve(ans, np.linalg.solve(ans, t).T).T
    return ans @ (np.tril(inner, -1) + 0.5 * np.diag(np.diagonal(inner)))


def _eigh_tangents(t, w, v):
    """d(eigenvalues), d(eigenvectors) of a symmetric matrix with eigen-decomposition (w, v)."""
    rotated = v.T @ t @ v
    eye = np.diag(np.ones_like(w))
    return np.diagonal(rotated), v @ ((1.0 - eye) / (w[None, :] - w[:, None] + eye) * rotated)


def _eigh_jvp(t, ans, a, *args, **kw):
    if _ndim(a) != 2:
        _unsupported("forward mode through np.linalg.eigh of a stack of matrices")
    return tuple(_eigh_tangents(t, ans[0], ans[1]))


def _eigvalsh_jvp(t, ans, a, *args, **kw):
    if _ndim(a) != 2:
        _unsupported("forward mode through np.linalg.eigvalsh of a stack of matrices")
    wv = np.linalg.eigh(a)
    return _eigh_tangents(t, wv[0], wv[1])[0]


def _slogdet_jvp(t, ans, a):
    return (0.0 * ans[0], np.trace(np.linalg.solve(a, t), axis1=-2, axis2=-1))


def _nan_free(t, x):
    return np.where(np.isnan(x), 0.0, t)


def _pad_jvp(t, ans, x, pad_width, *args, **kw):
    """np.pad is linear in x, with 0 for the constants it pads with."""
    return np.pad(t, pad_width, *args, **{k: v for k, v in kw.items() if k not in ("constant_values", "end_values")})


def _prod_jvp(t, ans, x, *args, **kw):
    """The tangent times the product of the other elements of each group (exact at zeros)."""
    opts = _reduction_args("np.prod", args, kw, ("axis", "dtype", "out", "keepdims"))
    axis, keepdims = opts.get("axis"), bool(opts.get("keepdims", False))
    others = apply(runtime.prod_vjp, np.ones_like(ans), x, axis, keepdims)
    return np.sum(others * t, axis=axis, keepdims=keepdims)


def _matrix_power_jvp(t, ans, a, n):
    """d(a^n) = sum over k of a^k da a^(n-1-k) for a constant n >= 0; a^-n is (a^-1)^n, with
    d(a^-1) = -a^-1 da a^-1."""
    if type(n) is not int:
        _unsupported("forward mode through np.linalg.matrix_power with a variable power")
    if n < 0:
        a = np.linalg.inv(a)
        t, n = -(a @ t @ a), -n
    parts = [np.linalg.matrix_power(a, k) @ t @ np.linalg.matrix_power(a, n - 1 - k) for k in range(n)]
    return functools.reduce(operator.add, parts) if parts else 0.0 * t


class _TupleTangent(tuple):
    """The tangent of a tuple result: the tangents of several arguments add item by item."""

    def __add__(self, other: Any) -> _TupleTangent:
        return _TupleTangent(a + b for a, b in zip(self, other))


def _length(x: Any, axis: int = -1) -> Any:
    """``x.shape[axis]``, spelt from the arguments' shapes where it can be."""
    return shape_of(x)[axis]


def _slice(start: Any, stop: Any) -> Any:
    """``start:stop`` in an index, its bounds possibly symbolic (an index tuple holds symbols,
    not slices of them)."""
    if isinstance(start, Sym) or isinstance(stop, Sym):
        return apply(BUILD_SLICE, start, stop, None)
    return slice(start, stop)


def _off_diagonal_inverse(w: Any) -> Any:
    """F with F[..., i, j] = 1 / (w[j] - w[i]) off the diagonal and 0 on it (distinct w)."""
    eye = apply(np.eye, _length(w), dtype=bool)
    gaps = w[..., None, :] - w[..., :, None]
    return np.where(eye, 0.0, 1.0 / np.where(eye, 1.0, gaps))


def _cumprod_jvp(t, ans, x, *args, **kw):
    """d cumprod[k] = sum over i <= k of t[i] times the product of x[j] for j <= k, j != i:
    exact with zeros, like the VJP (O(n^2) along the axis)."""
    axis = _reduction_args("np.cumprod", args, kw, ("axis", "dtype", "out")).get("axis")
    if axis is None:
        x, t, axis = np.ravel(x), np.ravel(t), 0
    xm, tm = np.moveaxis(x, axis, -1), np.moveaxis(t, axis, -1)
    eye = apply(np.eye, _length(xm), dtype=bool)
    others = np.where(eye, 1.0, xm[..., None, :])  # row i: x with x[i] replaced by 1
    products = np.triu(np.cumprod(others, axis=-1))  # [i, k]: prod_{j <= k, j != i} x[j], for k >= i
    return np.moveaxis(np.sum(tm[..., :, None] * products, axis=-2), -1, axis)


def _interp_jvp(argnum: int) -> Rule:
    """np.interp: along x, the slope of the segment x falls in (the right one at a knot; 0
    outside xp), as runtime.interp_vjp; along fp, np.interp itself (it is linear in fp)."""
    def jvp(t, ans, x, xp, fp, left=None, right=None, period=None):
        if left is not None or right is not None or period is not None:
            _unsupported("forward mode through np.interp with left=, right= or period=")
        if argnum == 2:
            return np.interp(x, xp, t)
        # the segment from xp[k] to xp[k + 1], k counted among the inner knots (tangent code
        # has no integer constants to add)
        k = apply(np.searchsorted, xp[1:-1], x, side="right")
        starts, ends = slice(None, -1), slice(1, None)
        slope = (apply(np.take, fp[ends], k) - apply(np.take, fp[starts], k)) / \
            (apply(np.take, xp[ends], k) - apply(np.take, xp[starts], k))
        return np.where(np.logical_and(x >= xp[0], x <= xp[-1]), t * slope, 0.0)
    return jvp


def _reduced_first(x: Any, axis: Any) -> Any:
    """``x`` with the axes ``axis`` reduces flattened into its first axis, in the order
    runtime.quantile_vjp flattens them (the other axes follow, in order)."""
    if axis is None:
        return np.ravel(x)
    if isinstance(axis, Sym):
        _unsupported("forward mode through a quantile with an axis= computed at run time")
    if not isinstance(axis, (tuple, list)):
        return np.moveaxis(x, axis, 0)
    axes = [int(a) for a in axis]
    ndim = _ndim(x)
    if ndim is not None:
        axes = sorted(a % ndim for a in axes)
    elif all(a >= 0 for a in axes) or all(a < 0 for a in axes):
        axes = sorted(axes)
    else:
        axes = np.sort(np.mod(np.asarray(axes), np.ndim(x)))  # (sorted once the rank is known)
    moved = np.moveaxis(x, axes, tuple(range(len(axis))))
    return np.reshape(moved, (-1,) + shape_of(moved)[len(axis):])


def _quantile_jvp(name: str, percent: bool = False) -> Rule:
    """np.quantile / np.percentile / np.median (linear interpolation): the tangent of the order
    statistics each quantile interpolates between, by the same weights (ties as the VJP)."""
    def jvp(t, ans, a, *args, **kw):
        opts = _quantile_options(name, args, kw, f"forward mode through {name}")
        axis, keepdims = opts.get("axis"), opts.get("keepdims", False)
        flat = _reduced_first(a, axis)
        ordered = np.take_along_axis(_reduced_first(t, axis), np.argsort(flat, axis=0), axis=0)
        n = _length(flat, 0)
        q = apply(np.asarray, 0.5 if name == "np.median" else opts["q"], dtype=float)
        position = (q / 100 if percent else q) * (n - 1)
        lo = np.floor(position)
        hi = np.minimum(lo + 1, n - 1)
        frac = (position - lo)[..., None]
        rank = apply(np.arange, n)
        weights = (rank == lo[..., None]) * (1.0 - frac) + (rank == hi[..., None]) * frac  # q's axes, then n
        out = np.tensordot(weights, ordered, axes=([-1], [0]))
        return out if keepdims is False else np.reshape(out, shape_of(ans))
    return jvp


def _partition_jvp(t, ans, a, kth, axis=-1, **kw):
    """ans is a permutation of a: equal ranks in both sortings pair each output with its element
    (as runtime.partition_vjp)."""
    if axis is None:
        a, t, axis = np.ravel(a), np.ravel(t), 0
    ranked = np.take_along_axis(t, np.argsort(a, axis=axis), axis=axis)
    return np.take_along_axis(ranked, np.argsort(np.argsort(ans, axis=axis), axis=axis), axis=axis)


def _eig_tangents(t, w, v):
    """d(eigenvalues), d(eigenvectors) of a real matrix with real, distinct eigenvalues w and
    unit-norm eigenvectors v: V^-1 dA V's diagonal, and V (F * V^-1 dA V) less each column's
    part along itself (the normalisation)."""
    v = apply(runtime.real_eigen, v)
    inner = np.linalg.solve(v, t @ v)
    dv = v @ (_off_diagonal_inverse(w) * inner)
    return np.diagonal(inner, axis1=-2, axis2=-1), dv - v * np.sum(v * dv, axis=-2, keepdims=True)


def _eigvals_jvp(t, ans, a):
    pair = np.linalg.eig(a)
    w = pair[0]
    dw = _eig_tangents(t, w, pair[1])[0]
    nearest = np.argmin(np.abs(ans[..., :, None] - w[..., None, :]), axis=-1)  # (eig's order may differ)
    return np.take_along_axis(dw, nearest, axis=-1)


def _svd_tangents(t, u, s, vh):
    """d(u), d(s), d(vh) of the reduced SVD u s vh of a (distinct, nonzero singular values):
    with dP = u^T da v and F = 1 / (s_j^2 - s_i^2) off the diagonal, ds = diag(dP),
    du = u (F * (dP S + S dP^T)) + (I - u u^T) da v / s, dv likewise."""
    v = _mT(vh)
    dp = _mT(u) @ t @ v
    f = _off_diagonal_inverse(s * s)
    row, col = s[..., None, :], s[..., :, None]
    du = u @ (f * (dp * row + col * _mT(dp))) + (t @ v - u @ dp) / row
    dv = v @ (f * (col * dp + _mT(dp) * row)) + (_mT(t) @ u - v @ _mT(dp)) / row
    return du, np.diagonal(dp, axis1=-2, axis2=-1), _mT(dv)


def _singular_values_tangent(t, a):
    usv = np.linalg.svd(a, full_matrices=False)
    return np.sum(usv[0] * (t @ _mT(usv[2])), axis=-2)  # diag(u^T da v)


def _svd_jvp(t, ans, a, full_matrices=True, compute_uv=True, hermitian=False):
    """The reduced SVD's tangents. With full matrices, those of the reduced SVD (computed again:
    the VJP of the full one refuses u and vh of a non-square matrix), its singular vectors'
    signs matched to the full one's, and NaN for the other columns of u (rows of vh) of a
    non-square matrix: any basis of a complement, they have no derivative."""
    if isinstance(compute_uv, Sym) or isinstance(full_matrices, Sym):
        _unsupported("forward mode through np.linalg.svd with full_matrices= or compute_uv= computed at run time")
    if not compute_uv:
        return _singular_values_tangent(t, a)
    u, s, vh = ans[0], ans[1], ans[2]
    if not full_matrices:
        return tuple(_svd_tangents(t, u, s, vh))
    reduced = np.linalg.svd(a, full_matrices=False)
    k = _length(s)
    signs = np.sign(np.sum(u[..., :, _slice(None, k)] * reduced[0], axis=-2))
    du, ds, dvh = _svd_tangents(t, reduced[0], reduced[1], reduced[2])
    extra_u, extra_vh = u[..., :, _slice(k, None)], vh[..., _slice(k, None), :]
    return (np.concatenate([du * signs[..., None, :], apply(np.full, shape_of(extra_u), np.nan)], axis=-1), ds,
            np.concatenate([dvh * signs[..., :, None], apply(np.full, shape_of(extra_vh), np.nan)], axis=-2))


def _qr_tangents(t, a, q, r):
    """dq, dr of the reduced QR q r of a. With a = [x, y], x the first k = r.shape[-2] columns
    (all of them unless a has more columns than rows): X = q^T dx rx^-1, the antisymmetric
    q^T dq = tril(X, -1) - its transpose, drx = (X - q^T dq) rx, dq = dx rx^-1 - q (X - q^T dq),
    and dry = dq^T y + q^T dy (r[:, k:] = q^T y)."""
    k = _length(r, -2)
    rx = r[..., :, _slice(None, k)]
    right = _mT(np.linalg.solve(_mT(rx), _mT(t[..., :, _slice(None, k)])))  # dx rx^-1
    x = _mT(q) @ right
    lower = np.tril(x, -1)
    upper = x - (lower - _mT(lower))
    dq = right - q @ upper
    dry = _mT(dq) @ a[..., :, _slice(k, None)] + _mT(q) @ t[..., :, _slice(k, None)]
    return dq, np.concatenate([upper @ rx, dry], axis=-1)


def _qr_jvp(t, ans, a, mode="reduced"):
    if mode == "r":
        qr = np.linalg.qr(a)
        return _qr_tangents(t, a, qr[0], qr[1])[1]
    if mode != "reduced":
        _unsupported(f"forward mode through np.linalg.qr with mode={mode!r}")
    return tuple(_qr_tangents(t, a, ans[0], ans[1]))


def _pinv_tangent(t, a, p):
    """d pinv(a) for a of full rank: -p da p + p p^T da^T (I - a p) + (I - p a) da^T p^T p."""
    tt = _mT(t)
    return -(p @ t @ p) + (p @ _mT(p)) @ (tt - tt @ a @ p) + (tt - p @ a @ tt) @ (_mT(p) @ p)


def _lstsq_jvp(argnum: int) -> Rule:
    """x, res, rank, sv = lstsq(a, b), a of full rank: dx = d(pinv(a)) b + pinv(a) db; the
    residuals' 2 (a x - b)^T (da x - db) (a dx is orthogonal to a x - b); the singular values'
    diag(u^T da v); rank's 0."""
    def jvp(t, ans, a, b, *args, **kw):
        x, res = ans[0], ans[1]
        p = np.linalg.pinv(a)
        if argnum == 0:
            dx, dfit, dsv = _pinv_tangent(t, a, p) @ b, t @ x, _singular_values_tangent(t, a)
        else:
            dx, dfit, dsv = p @ t, -t, np.zeros_like(ans[3], dtype=float)
        dres = 2.0 * np.sum((a @ x - b) * dfit, axis=0)
        return _TupleTangent((dx, np.reshape(dres, (-1,))[_slice(None, apply(len, res))], 0.0, dsv))
    return jvp


def _display_items(seq: Any) -> list | None:
    """The items of a list or tuple display that tangent code built (a tangent of a sequence
    built in the function is one), or None."""
    if not isinstance(seq, Sym):
        return list(seq) if isinstance(seq, (tuple, list)) else None
    op = seq._b.producer.get(seq.value)
    if op is None or op.fn not in (BUILD_LIST, BUILD_TUPLE):
        return None
    return [Sym(seq._b, item) for item in op.args]


def _multi_dot_jvp(t, ans, arrays, **kw):
    """multi_dot is linear in each array: the sum over i of multi_dot with array i replaced by
    its tangent (the tangent of a list display is the display of its items' tangents)."""
    tangents = _display_items(t)
    if tangents is None:
        _unsupported("forward mode through np.linalg.multi_dot of a list that is not written as a display "
                     "[a, b, ...] in the function")
    items = [arrays[i] for i in range(len(tangents))]
    parts = [np.linalg.multi_dot(items[:i] + [ti] + items[i + 1:]) for i, ti in enumerate(tangents)]
    return functools.reduce(operator.add, parts)


define(np.cumprod, jvps=(_cumprod_jvp,))
define(np.interp, jvps=(_interp_jvp(0), None, _interp_jvp(2)))
define(np.quantile, jvps=(_quantile_jvp("np.quantile"),))
define(np.percentile, jvps=(_quantile_jvp("np.percentile", percent=True),))
define(np.median, jvps=(_quantile_jvp("np.median"),))
define(np.partition, jvps=(_partition_jvp,))
define(np.linalg.eig, jvps=(lambda t, ans, a: tuple(_eig_tangents(t, ans[0], ans[1])),))
define(np.linalg.eigvals, jvps=(_eigvals_jvp,))
define(np.linalg.svd, jvps=(_svd_jvp,))
if hasattr(np.linalg, "svdvals"):
    define(np.linalg.svdvals, jvps=(lambda t, ans, a: _singular_values_tangent(t, a),))
define(np.linalg.qr, jvps=(_qr_jvp,))
define(np.linalg.pinv, jvps=(lambda t, ans, a, *args, **kw: _pinv_tangent(t, a, ans),))
define(np.linalg.lstsq, jvps=(_lstsq_jvp(0), _lstsq_jvp(1)))
define(np.linalg.multi_dot, jvps=(_multi_dot_jvp,))
define(np.prod, jvps=(_prod_jvp,))
define(np.linalg.matrix_power, jvps=(_matrix_power_jvp, None))
define(np.sinc, jvps=(lambda t, ans, x: t * apply(runtime.sinc_grad, x, ans),))
define(np.nan_to_num, jvps=(lambda t, ans, x, *args, **kw: t * np.isfinite(x),))
define(np.angle, jvps=(lambda t, ans, x, *args, **kw: 0.0 * t,))


def _cast_jvp(fn: Any) -> Rule:
    """x.astype(dtype), np.array(x, dtype), np.asarray(x, dtype): the tangent cast alike, zero for a cast
    to ints or bools (which would otherwise truncate the tangent)."""
    def jvp(t, ans, x, *args, **kw):
        dtype = kw.get("dtype", args[0] if args else None)
        cast = apply(fn, t, *args, **kw)
        return cast if dtype is None or np.issubdtype(np.dtype(dtype), np.inexact) else 0.0 * cast
    return jvp


for _fn in (Method("astype"), np.array, np.asarray):
    define(_fn, jvps=(_cast_jvp(_fn),))
for _fn in (max, min):  # (of numbers, which Python's max/min compare: the winner's tangent, as its VJP)
    define(_fn, jvps=record_of(_fn).vjps)
for _name, _position in RESULT_FIELDS.items():  # (the tangent of an np.linalg result is a plain tuple)
    define(GetAttr(_name), jvps=(lambda t, ans, result, _position=_position: t[_position],))
define(np.max, jvps=(_extremum_jvp("np.max"),))
define(np.min, jvps=(_extremum_jvp("np.min"),))
for _name in ("amax", "amin", "nanmax", "nanmin"):
    define(getattr(np, _name), jvps=(_extremum_jvp(f"np.{_name}"),))
define(np.var, jvps=(_var_jvp("np.var"),))
define(np.std, jvps=(_var_jvp("np.std", std=True),))
define(np.linalg.norm, jvps=(_norm_jvp,))
define(np.sort, jvps=(_sort_jvp,))
define(np.pad, jvps=(_pad_jvp,))
define(np.nansum, jvps=(lambda t, ans, x, *args, **kw: np.sum(_nan_free(t, x), *args, **kw),))
define(np.nanmean, jvps=(lambda t, ans, x, axis=None, dtype=None, out=None, keepdims=False, **kw:
                         np.sum(_nan_free(t, x), axis=axis, keepdims=keepdims)
                         / np.sum(1.0 - np.isnan(x), axis=axis, keepdims=keepdims),))
define(np.average, jvps=(lambda t, ans, x, *args, **kw: np.average(t, *args, **kw),))
define(np.polyval, jvps=(lambda t, ans, p, x: np.polyval(t, x), None))
define(np.linalg.inv, jvps=(lambda t, ans, a: -(ans @ t @ ans),))
define(np.linalg.solve, jvps=(_solve_jvp(0), _solve_jvp(1)))
define(np.linalg.det, jvps=(lambda t, ans, a: ans * np.trace(np.linalg.solve(a, t), axis1=-2, axis2=-1),))
define(np.linalg.slogdet, jvps=(_slogdet_jvp,))
define(np.linalg.cholesky, jvps=(_cholesky_jvp,))
define(np.linalg.eigh, jvps=(_eigh_jvp,))
define(np.linalg.eigvalsh, jvps=(_eigvalsh_jvp,))

# the runtime helpers that tangent code calls, so that it can be differentiated again
nondiff(runtime.sign, runtime.zeros_of, HELPER)
rule(runtime.log_or_zero, lambda g, ans, x: g / x, elementwise=True, nature=ELEMENTWISE)
rule(runtime.power_slope, lambda g, ans, x, y, power=None: unbroadcast(g * y * apply(runtime.power_slope, x, y - 1, *(
        (power,) if power is not None else ())), x, y),
     lambda g, ans, x, y, power=None: unbroadcast(g * (x ** (y - 1) if power is None else apply(power, x, y - 1))
                                                  * (1 + y * apply(runtime.log_or_zero, x)), y, x),
     elementwise=True, nature=ELEMENTWISE)
rule(runtime.sinc_grad, lambda g, ans, x, sinc: g * (-math.pi * np.sin(math.pi * x) - ans) / x,
     lambda g, ans, x, sinc: -g / x, elementwise=True, nature=ELEMENTWISE)
# (a check that passes its argument through: as the identity)
rule(runtime.real_eigen, lambda g, ans, x: g, HELPER, alias=ITSELF, linear=EACH, shape=shapes.first,
     dtype=shapes.first_dtype)
rule(runtime.spread_like, lambda g, ans, t, shape: unbroadcast(g, t), None, HELPER, alias=VIEW, linear=EACH,
     shape=shapes.broadcast_to, dtype=shapes.first_dtype)


# the SciPy rows (scipy.special, scipy.stats distributions), when SciPy is installed
from . import rules_scipy  # noqa: E402

rules_scipy.register()
