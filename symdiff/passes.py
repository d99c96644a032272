"""Passes on the IR: constant folding and algebraic peepholes at construction time, static
kinds of values, activity analysis and dead-code elimination."""

from __future__ import annotations

import math
import operator
import os
from dataclasses import dataclass
from typing import Any, Callable, Generator

import numpy as np

from . import primitives, shapes
from .ir import (
    BUILD_TUPLE,
    SCALAR,
    Builder,
    Function,
    GetAttr,
    Op,
    OpKind,
    Region,
    Value,
)
from .patterns import MARKERS, among, is_const, is_float, match

# The optimisations, each of which can be turned off for testing: SYMDIFF_OPTIMIZE=0 turns all
# of them off, SYMDIFF_OPTIMIZE=-cse,-licm the ones named (the tests run the corpus both ways).
# The algebraic identities of "peephole" (IDENTITIES, below) are turned off one by one the same
# way (SYMDIFF_OPTIMIZE=-times-one); the corpus reruns turn off whole passes, not identities.
# Folding of constants stays on in lowering (it makes `axis=-1` a static argument).
PASSES = {
    "peephole": "algebraic identities on adjoint arithmetic (no `g * 1.0`, no `0 + g`)",
    "unbroadcast": "undo broadcasting at compile time where static shapes allow",
    "copies": "copy propagation through if/loop results",
    "cse": "common-subexpression elimination",
    "dce": "dead-code elimination",
    "masks": "cotangents masked by one np.where condition summed inside one np.where",
    "defer": "sums of outer products over a loop formed after it, as one matrix product",
    "handover": "gradients the code made, of their argument's shape and dtype, returned as they are",
    "inplace": "cotangents added into the backward sweep's own fresh arrays in place (dx += part); stores "
               "into arrays the code made whose old value is dead made in place (y[i] = v)",
    "licm": "loop-invariant code motion (computed once, on first use where it may raise)",
    "forward": "forward mode for gradients with respect to one Python number (no tape)",
}


def _disabled(setting: str) -> set[str]:
    setting = setting.strip()
    if setting in ("", "1"):
        return set()
    if setting == "0":
        return set(PASSES)
    names = {part.strip().lstrip("-") for part in setting.split(",") if part.strip()}
    identities = [identity.name for identity in IDENTITIES]
    unknown = names - set(PASSES) - set(identities)
    if unknown:
        raise ValueError(f"SYMDIFF_OPTIMIZE: unknown pass(es) {sorted(unknown)}; known: {sorted(PASSES)}, "
                         f"and the identities of 'peephole': {identities}")
    return names


def enabled(name: str) -> bool:
    """Whether optimisation ``name`` (a key of PASSES, or the name of one of the IDENTITIES)
    is on."""
    return name not in DISABLED


def both(a: Any, b: Any) -> Any:
    """``a and b`` on two already-computed booleans (no short circuit needed)."""
    return a and b


def stateful(fn: Any) -> bool:
    """Whether ``fn(...)`` returns an object whose state changes as it is used (an iterator):
    two such calls are two objects even with the same operands, so they are never shared."""
    return primitives.lookup(fn).stateful


def is_pure(fn: Any) -> bool:
    """Whether a call of ``fn`` has no side effects (so it may be removed when unused)."""
    return primitives.lookup(fn).pure


def surely_float(v: Value, producer: dict[Value, Op], memo: dict[Value, bool] | None = None) -> bool:
    """Whether scalar ``v`` is surely a Python float: a float constant or argument, or float
    arithmetic on one (``if`` and loop results: when every value flowing into them is).

    Each value is visited once (a chain of ``if``s joins its branches again and again, so an
    unmemoised walk is exponential); a loop's carried values are assumed floats while its body
    is checked, and only answers that did not lean on such an assumption are remembered as
    true (an answer of false never leans on one: assuming more only proves more). ``memo``
    keeps the answers for the next question about the same IR (a pass asking about every value
    of a chain), and the walk keeps its own stack, so a chain as long as the function does not
    reach Python's recursion limit."""
    memo = {} if memo is None else memo
    if v in memo:
        return memo[v]
    stack = [_float_steps(v, producer, frozenset(), memo)]
    answer: bool | None = None
    while stack:
        try:
            u, assuming = stack[-1].send(answer)
        except StopIteration as done:
            stack.pop()
            answer = done.value
            continue
        if u in memo:
            answer = memo[u]
        else:
            stack.append(_float_steps(u, producer, assuming, memo))
            answer = None
    return bool(answer)


FloatSteps = Generator[tuple[Value, frozenset], bool, bool]


def _float_steps(v: Value, producer: dict[Value, Op], assumed: frozenset, memo: dict[Value, bool]) -> FloatSteps:
    """:func:`surely_float` of ``v`` under ``assumed``, as steps: it yields each question
    ``(value, assuming)`` it depends on and is sent the answer."""
    if v in memo:
        return memo[v]
    if v.is_const:
        return type(v.const) is float
    if v.pytype is not None and v.pytype is not float:  # an int, or a NumPy float64 scalar
        return False
    if v.pytype is float or v in assumed:
        return True
    answer = yield from _float_by_producer(v, producer, assumed)
    if not answer or not assumed:
        memo[v] = answer
    return answer


def _float_by_producer(v: Value, producer: dict[Value, Op], assumed: frozenset) -> FloatSteps:
    op = producer.get(v)
    if op is None:
        return False
    if op.kind is OpKind.IF:
        i = op.results.index(v)
        for sub in op.regions:
            if not (yield sub.yields[i], assumed):
                return False
        return True
    if op.is_loop:
        i = op.results.index(v)
        assuming = assumed | {v} | {op.carried(sub)[i] for sub in op.regions}
        return bool((yield op.inits[i], assumed)) and bool((yield op.body.yields[i], assuming))
    fn = op.fn
    if primitives.lookup(fn).float_result:
        return True
    if fn in (operator.neg, operator.pos, operator.abs):
        return bool((yield op.args[0], assumed))
    if fn is operator.pow:  # float ** float may be complex; float ** int is a float
        return bool((yield op.args[0], assumed)) and op.args[1].integer
    if fn in (operator.add, operator.sub, operator.mul, operator.truediv, operator.mod, operator.floordiv):
        # (of Python numbers alone: a NumPy float64 scalar -- an element x[i] -- makes another)
        floats = []
        for a in op.args:
            floats.append(bool((yield a, assumed)))
        return any(floats) and all(f or _python_int(a) for f, a in zip(floats, op.args))
    return False


def _python_int(v: Value) -> bool:
    """Whether ``v`` is surely a Python int or bool (a constant, a loop index, a size, an argument)."""
    return v.integer or v.pytype in (int, bool) or (v.is_const and type(v.const) in (int, bool))


def fresh_array(v: Value, producer: dict[Value, Op]) -> bool:
    """Whether ``v`` is an array the gradient code created (not a view, argument or constant)."""
    while True:  # (a loop, not recursion: chains of views and updates can be as long as the function)
        op = match(producer, v, kwargs=True)
        if op is None:
            return False
        record = primitives.lookup(op.fn)
        if record.alias == primitives.FRESH:
            return True
        if record.alias != primitives.ITSELF:
            return False
        if len(op.args) <= record.viewed:
            return True
        v = op.args[record.viewed]


def new_array(v: Value, producer: dict[Value, Op], memo: dict[Value, bool] | None = None) -> bool:
    """Whether ``v`` is a new array nothing else refers to: made by a call that returns a new
    array, or an in-place update of such an array (whose old value is gone). ``memo`` keeps the
    answers along the chain of updates, so a pass asking about each value of a chain of N
    updates walks it once, not N times."""
    chain = []
    answer = False
    while True:  # (a loop, not recursion: a chain of updates can be as long as the function)
        if memo is not None and v in memo:
            answer = memo[v]
            break
        chain.append(v)
        op = match(producer, v, kwargs=True)
        if op is None:
            break
        record = primitives.lookup(op.fn)
        if record.alias == primitives.FRESH:
            answer = True
            break
        if not (record.alias == primitives.ITSELF and record.updates):
            break
        v = op.args[record.viewed]
    if memo is not None:
        memo.update(dict.fromkeys(chain, answer))
    return answer


# ----------------------------------------------------------------------------- peepholes

def fold_constants(b: Builder, fn: Any, args: list[Value], kwargs: dict[str, Value]) -> Value | None:
    """Evaluate pure scalar operations on constants at compile time, and take items of
    tuples built in the same function (``a, b = pair`` where ``pair = (x, y)``)."""
    if fn is operator.getitem and args[1].is_const and type(args[1].const) is int:
        pair = match(b.producer, args[0], BUILD_TUPLE)
        if pair is not None and -len(pair.args) <= args[1].const < len(pair.args):
            return pair.args[args[1].const]
    if kwargs or not all(a.is_const for a in args):
        return None
    values = [a.const for a in args]
    record = primitives.lookup(fn)
    if record.fold is not None and all(type(v) in record.fold_types for v in values):
        try:
            return b.const(record.fold(*values))
        except (ArithmeticError, ValueError):
            return None  # leave it to raise at run time, where the user expects it
    return None


def adjoint_builder(region: Region) -> Builder:
    """A builder for derivative code (cotangents, tangents) appended to ``region``: adjoint
    peepholes on (unless turned off), static shapes and dtypes annotated."""
    b = Builder(region, simplify=simplify_adjoint if enabled("peephole") else None, annotate=shapes.annotate)
    b.adjoint = True
    return b


def simplify_adjoint(b: Builder, fn: Any, args: list[Value], kwargs: dict[str, Value]) -> Value | None:
    """The simpler value of ``fn(*args)`` in derivative code, built with ``b``: that of the
    first identity in :data:`IDENTITIES` (of those turned on) that applies, or None (build
    the call as it is; so are calls with keywords)."""
    if kwargs:
        return None
    for identity in _identities_about(fn):
        if enabled(identity.name):
            simpler = identity.rewrite(b, fn, args)
            if simpler is not None:
                return simpler
    return None


_ABOUT: dict[Any, tuple[Any, tuple]] = {}  # callee (a marker, or the id of anything else) -> (callee, identities)


def _identities_about(fn: Any) -> tuple:
    """The identities of :data:`IDENTITIES` that may apply to a call of ``fn``, in order:
    those about ``fn`` and those about any callee (asked once per callee, not at each call)."""
    marker = isinstance(fn, MARKERS)
    try:
        entry = _ABOUT.get(fn if marker else id(fn))
    except TypeError:  # a marker holding something unhashable
        return _identities_of(fn)
    if entry is None or (entry[0] is not fn and not marker):  # (an id is only kept with its object)
        entry = _ABOUT[fn if marker else id(fn)] = (fn, _identities_of(fn))
    return entry[1]


def _identities_of(fn: Any) -> tuple:
    return tuple(i for i in IDENTITIES if i.fns is None or among(fn, i.fns))


Rewrite = Callable[[Builder, Any, list[Value]], "Value | None"]


@dataclass(frozen=True)
class Identity:
    """An algebraic identity of derivative arithmetic, which is on floats (so ``g * 1 -> g`` is
    exact). ``rewrite(b, fn, args)`` builds the simpler value of ``fn(*args)`` with ``b``, or
    returns None where the identity does not apply; ``fns`` are the callees it is about (None:
    the rewrite asks the callee's record). ``name`` turns it off: ``SYMDIFF_OPTIMIZE=-name``."""

    name: str
    law: str
    fns: tuple | None
    rewrite: Rewrite


PRODUCTS = (operator.mul, operator.truediv)


def _fold(b: Builder, fn: Any, args: list[Value]) -> Value | None:
    return fold_constants(b, fn, args, {})


def _float_operands(b: Builder, fn: Any, args: list[Value]) -> Value | None:
    if primitives.lookup(fn).float_operands and any(_small_int(a) for a in args):  # float op float is fastest
        return _call(b, fn, *(b.const(float(a.const)) if _small_int(a) else a for a in args))
    return None


def _times_one(b: Builder, fn: Any, args: list[Value]) -> Value | None:
    x, y = args
    if is_const(y, 1) and _not_boolean(b, x):
        return x
    if fn is operator.mul and is_const(x, 1) and _not_boolean(b, y):
        return y
    return None


def _times_minus_one(b: Builder, fn: Any, args: list[Value]) -> Value | None:
    x, y = args
    if is_const(y, -1):
        return _call(b, operator.neg, x)
    if fn is operator.mul and is_const(x, -1):
        return _call(b, operator.neg, y)
    return None


def _scale_a_mask(b: Builder, fn: Any, args: list[Value]) -> Value | None:
    x, y = args
    return _scale_mask(b, x, y) or _scale_mask(b, y, x)


def _negated_constant(b: Builder, fn: Any, args: list[Value]) -> Value | None:
    x, y = args
    a = _negated(b, x)
    if a is not None and is_float(y):
        return _call(b, fn, a, b.const(-y.const))
    a = _negated(b, y)
    if a is not None and is_float(x):
        return _call(b, fn, b.const(-x.const), a)
    return None


def _negation_out(b: Builder, fn: Any, args: list[Value]) -> Value | None:
    x, y = args
    a = _negated(b, x)
    if a is not None:
        return _call(b, operator.neg, _call(b, fn, a, y))
    a = _negated(b, y)
    if a is not None and fn is operator.mul:
        return _call(b, operator.neg, _call(b, fn, x, a))
    return None


def _spread_factor(b: Builder, fn: Any, args: list[Value]) -> Value | None:
    x, y = args
    for i, (v, other) in enumerate(((x, y), (y, x))):
        spread = _spread_from(b, v)
        if spread is None or not (fn is operator.mul or i == 0):
            continue
        spreader, shape, core = spread
        operands = (core, y) if i == 0 else (x, core)
        if shapes.same(other.shape, v.shape) or _shape_read_off(b, shape) is other:  # broadcasts it anyway
            return _call(b, fn, *operands)
        if other.shape == ():  # scale before spreading
            scaled = _call(b, fn, *operands)
            return b.call(spreader, [shape, scaled] if spreader is np.full else [scaled, shape])
    return None


def _spread_operand(b: Builder, fn: Any, args: list[Value]) -> Value | None:
    if among(fn, PRODUCTS) or not _elementwise(fn):  # products: spread-factor
        return None
    return _absorb_spread(b, fn, args)


def _plus_zero(b: Builder, fn: Any, args: list[Value]) -> Value | None:
    x, y = args
    return x if is_const(y, 0) else y if is_const(x, 0) else None


def _doubled(b: Builder, fn: Any, args: list[Value]) -> Value | None:
    x, y = args
    if x is y or _swapped_products(b, x, y):
        return _call(b, operator.mul, b.const(2.0), x)
    return None


def _plus_negated(b: Builder, fn: Any, args: list[Value]) -> Value | None:
    x, y = args
    if _negated(b, y) is not None:
        return _call(b, operator.sub, x, _negated(b, y))
    if _negated(b, x) is not None:
        return _call(b, operator.sub, y, _negated(b, x))
    return None


def _minus_zero(b: Builder, fn: Any, args: list[Value]) -> Value | None:
    x, y = args
    if is_const(y, 0):
        return x
    return _call(b, operator.neg, y) if is_const(x, 0) else None


def _minus_negated(b: Builder, fn: Any, args: list[Value]) -> Value | None:
    x, y = args
    return None if _negated(b, y) is None else _call(b, operator.add, x, _negated(b, y))


def _double_negation(b: Builder, fn: Any, args: list[Value]) -> Value | None:
    return _negated(b, args[0])


def _power_one(b: Builder, fn: Any, args: list[Value]) -> Value | None:
    return args[0] if is_const(args[1], 1) else None


# The identities, tried in this order on each call built (the first that applies rewrites it);
# a rewrite's own calls are simplified in turn. All of them are part of "peephole".
IDENTITIES = (
    Identity("fold", "f(c1, c2) = its value, for constants c1, c2 and pure scalar f; (a, b)[0] = a",
             None, _fold),
    Identity("float-constants", "x * 2 = x * 2.0 (ints below 2**53 are exact floats; float op float is fastest)",
             None, _float_operands),
    Identity("times-one", "x * 1 = x, x / 1 = x, 1 * x = x (x not a boolean array: 1.0 * mask is float)",
             PRODUCTS, _times_one),
    Identity("times-minus-one", "x * -1 = -x, x / -1 = -x, -1 * x = -x", PRODUCTS, _times_minus_one),
    Identity("scale-mask", "k * where(c, a, e) = where(c, k*a, k*e); k * (where(c, a, e) * x) = "
             "where(c, k*a, k*e) * x where exact (a, e in {0, 1, -1}, or k a power of two)",
             (operator.mul,), _scale_a_mask),
    Identity("negated-constant", "-a * k = a * -k, k * -a = -k * a, -a / k = a / -k, k / -a = -k / a "
             "(k a float constant)", PRODUCTS, _negated_constant),
    Identity("negation-out", "-a * y = -(a * y), x * -a = -(x * a), -a / y = -(a / y)", PRODUCTS, _negation_out),
    Identity("spread-factor", "full(S, c) * y = c * y, y * full(S, c) = y * c, full(S, c) / y = c / y where y "
             "has shape S; full(S, c) * k = full(S, c * k) for a number k (also broadcast_to(c, S))",
             PRODUCTS, _spread_factor),
    Identity("spread", "f(full(S, c), y) = f(c, y) for elementwise f where y broadcasts to S "
             "(also broadcast_to(c, S))", None, _spread_operand),
    Identity("plus-zero", "x + 0 = x, 0 + y = y", (operator.add,), _plus_zero),
    Identity("doubling", "p + p = 2.0 * p, p*q + q*p = 2.0 * (p*q) (doubling is exact)", (operator.add,), _doubled),
    Identity("plus-negated", "x + -y = x - y, -x + y = y - x", (operator.add,), _plus_negated),
    Identity("minus-zero", "x - 0 = x, 0 - y = -y", (operator.sub,), _minus_zero),
    Identity("minus-negated", "x - -y = x + y", (operator.sub,), _minus_negated),
    Identity("double-negation", "-(-a) = a", (operator.neg,), _double_negation),
    Identity("power-one", "x ** 1 = x", (operator.pow,), _power_one),
)

DISABLED = _disabled(os.environ.get("SYMDIFF_OPTIMIZE", "1"))  # (here: the names of IDENTITIES are settings too)
OPTIMIZE = not DISABLED  # every optimisation on (tests of the optimised source apply)


def _small_int(v: Value) -> bool:
    return v.is_const and type(v.const) is int and abs(v.const) < 2 ** 53


def _not_boolean(b: Builder, v: Value) -> bool:
    """Whether ``v`` is surely not a boolean array: a float64 one, a Python number, or the
    result of a ufunc that never returns booleans (``np.cos``)."""
    if v.dtype is shapes.F64 or v.kind == SCALAR:
        return True
    op = match(b.producer, v, kwargs=True)
    return op is not None and type(op.fn) is np.ufunc and not any(t.endswith("?") for t in op.fn.types)


def _elementwise(fn: Any) -> bool:
    """Elementwise on floats (not ``//`` or ``%``, whose operands stay as they are)."""
    record = primitives.lookup(fn)
    return record.elementwise and (record.float_operands or not record.on_numbers)


def _absorb_spread(b: Builder, fn: Any, args: list[Value]) -> Value | None:
    """``f(..., np.full(S, c), ...)`` is ``f(..., c, ...)`` when the other operands broadcast
    to ``S`` anyway (``np.where(m, np.full(x.shape, 1.0), 0.0)`` -> ``np.where(m, 1.0, 0.0)``)."""
    for i, a in enumerate(args):
        spread = _spread_from(b, a)
        if spread is None:
            continue
        others = shapes.broadcast(*[o.shape for j, o in enumerate(args) if j != i])
        if shapes.same(others, a.shape):
            new = list(args)
            new[i] = spread[2]
            return _call(b, fn, *new)
    return None


def _swapped_products(b: Builder, x: Value, y: Value) -> bool:
    """``x`` is ``p * q`` and ``y`` is ``q * p`` (what the product rule gives for ``p * p``)."""
    px, py = match(b.producer, x, operator.mul), match(b.producer, y, operator.mul)
    return px is not None and py is not None and px.args == py.args[::-1]


def _const_where(b: Builder, v: Value) -> tuple[Value, float, float] | None:
    """``(c, a, b)`` if ``v`` was built as ``np.where(c, a, b)`` of two float constants."""
    op = match(b.producer, v, np.where, 3)
    if op is None:
        return None
    c, a, e = op.args
    if not (is_float(a) and is_float(e)):
        return None
    return c, a.const, e.const


def _scale_mask(b: Builder, k: Value, m: Value) -> Value | None:
    """A float constant ``k`` times ``np.where(c, a, e)`` (constants) is ``np.where(c, k*a, k*e)``;
    times ``np.where(c, a, e) * x`` it is ``np.where(c, k*a, k*e) * x`` when that is exact (``a``,
    ``e`` in {0, 1, -1}, or ``k`` a power of two)."""
    if not is_float(k):
        return None
    where = _const_where(b, m)
    if where is not None:
        c, a, e = where
        return b.call(np.where, [c, b.const(k.const * a), b.const(k.const * e)], kind=m.kind)
    op = match(b.producer, m, operator.mul)
    if op is None:
        return None
    for i, inner in enumerate(op.args):
        where = _const_where(b, inner)
        if where is None:
            continue
        c, a, e = where
        exact = {a, e} <= {0.0, 1.0, -1.0} or (k.const != 0 and math.frexp(abs(k.const))[0] == 0.5)
        if exact:
            mask = b.call(np.where, [c, b.const(k.const * a), b.const(k.const * e)], kind=inner.kind)
            other = op.args[1 - i]
            return _call(b, operator.mul, *((mask, other) if i == 0 else (other, mask)))
    return None


def _call(b: Builder, fn: Any, *args: Value) -> Value:
    return b.call(fn, list(args), kind=shapes.result_kind(fn, [a.kind for a in args]))


def _spread_from(b: Builder, value: Value) -> tuple[Any, Value, Value] | None:
    """``(np.full, shape, c)`` if ``value`` was built as ``np.full(shape, c)`` of a scalar ``c``,
    or ``(np.broadcast_to, shape, c)`` for ``np.broadcast_to(c, shape)``."""
    op = match(b.producer, value, (np.full, np.broadcast_to), 2)
    if op is None:
        return None
    if op.fn is np.full:
        return np.full, op.args[0], op.args[1]
    return np.broadcast_to, op.args[1], op.args[0]


def _shape_read_off(b: Builder, shape: Value) -> Value | None:
    """``x`` if ``shape`` was built as ``np.shape(x)`` (or ``x.shape``)."""
    op = match(b.producer, shape, (np.shape, GetAttr("shape")), 1)
    return None if op is None else op.args[0]


def _negated(b: Builder, value: Value) -> Value | None:
    """``v`` if ``value`` was built as ``-v`` by this builder, else None."""
    op = match(b.producer, value, operator.neg, kwargs=True)
    return None if op is None else op.args[0]


# ----------------------------------------------------------------------------- activity


def activity(fn: Function, wrt: list[Value], differentiable: Callable[[Any], bool]) -> set[Value]:
    """Values that depend on ``wrt`` through differentiable ops *and* reach the output."""
    varied = set(wrt)
    useful = set(fn.body.yields)
    changed = True
    while changed:  # a fixpoint: loops feed values back to their own inputs
        before = len(varied), len(useful)
        _forward_varied(fn.body, varied, differentiable)
        _backward_useful(fn.body, useful, differentiable)
        changed = (len(varied), len(useful)) != before
    return varied & useful


def varied_values(fn: Function, wrt: list[Value], differentiable: Callable[[Any], bool]) -> set[Value]:
    """Values that depend on ``wrt`` through differentiable ops."""
    varied = set(wrt)
    before = -1
    while len(varied) != before:
        before = len(varied)
        _forward_varied(fn.body, varied, differentiable)
    return varied


def _forward_varied(region: Region, varied: set[Value], differentiable: Callable[[Any], bool]) -> None:
    for op in region.ops:
        if op.kind is OpKind.CONST:
            continue
        if op.kind is OpKind.CALL:
            if differentiable(op.fn) and any(a in varied for a in op.args):
                varied.update(op.results)
            continue
        for sub in op.regions:
            _seed_params(op, sub, varied)
            _forward_varied(sub, varied, differentiable)
        inits = op.inits if op.is_loop else []
        for i, r in enumerate(op.results):
            if op.kind is OpKind.IF:
                hit = any(sub.yields[i] in varied for sub in op.regions)
            else:
                hit = inits[i] in varied or op.body.yields[i] in varied
            if hit:
                varied.add(r)


def _seed_params(op: Op, region: Region, varied: set[Value]) -> None:
    """Loop params are varied when their initial value or the value fed back is."""
    if not op.is_loop:
        return
    if op.kind is OpKind.FOR and op.iterable in varied:
        varied.add(op.target)
    for p, init, y in zip(op.carried(region), op.inits, op.body.yields):
        if init in varied or y in varied:
            varied.add(p)


def _backward_useful(region: Region, useful: set[Value], differentiable: Callable[[Any], bool]) -> None:
    for op in reversed(region.ops):
        if op.kind is OpKind.CONST:
            continue
        if op.kind is OpKind.CALL:
            if differentiable(op.fn) and any(r in useful for r in op.results):
                useful.update(op.args)
            continue
        if op.kind is OpKind.IF:
            for i, r in enumerate(op.results):
                if r in useful:
                    useful.update(sub.yields[i] for sub in op.regions)
            for sub in op.regions:
                _backward_useful(sub, useful, differentiable)
            continue
        body, inits = op.body, op.inits
        carried = op.carried(body)
        for i, r in enumerate(op.results):
            if r in useful or carried[i] in useful:
                useful.add(body.yields[i])
                useful.add(inits[i])
        _backward_useful(body, useful, differentiable)
        for i, p in enumerate(carried):
            if p in useful:
                useful.add(body.yields[i])
                useful.add(inits[i])
        if op.kind is OpKind.FOR and op.target in useful:
            useful.add(op.iterable)


# ----------------------------------------------------------------------------- dead code


def eliminate_dead_code(fn: Function) -> None:
    """Remove what nothing live reads: pure ops, ``if`` results, and loop-carried values --
    also those that only feed themselves (``total = total + x`` when ``total`` is unused) --
    then ``for`` loops and ``if`` ops left empty."""
    live = _live_values(fn)
    _sweep(fn.body, live)


def _live_values(fn: Function) -> set[Value]:
    """Values something live reads, from the function's result and side effects backwards; a
    fixpoint, since loop bodies read their own carried values."""
    live: set[Value] = set(fn.body.yields)
    changed = True

    def mark(values: Any) -> None:
        nonlocal changed
        for v in values:
            if v not in live:
                live.add(v)
                changed = True

    def mark_carried(loop: Op) -> None:
        """A loop's carried value is live when its result or its param in a region is: mark
        its initial value and what the body yields for it."""
        carried = [loop.carried(sub) for sub in loop.regions]
        inits, yields = loop.inits, loop.body.yields
        for i, r in enumerate(loop.results):
            if r in live or any(params[i] in live for params in carried):
                mark([inits[i], yields[i]])

    def visit(region: Region) -> bool:
        """Mark what the live ops of ``region`` read; True if any op in it is live."""
        any_live = False
        for op in reversed(region.ops):
            if op.kind is OpKind.CONST:  # kept if read (also from outside its region): so is its region
                any_live = any_live or op.result in live
                continue
            if op.kind is OpKind.CALL:
                if op.effect or not live.isdisjoint(op.results):
                    mark(op.args)
                    any_live = True
                continue
            # (what the results need is marked before the regions are visited, so that one
            # visit finds what is live in them; a later round only follows loop-carried values)
            if op.kind is OpKind.IF:
                for i, r in enumerate(op.results):
                    if r in live:
                        mark(sub.yields[i] for sub in op.regions)
                inner = [visit(sub) for sub in op.regions]
                if any(inner) or any(r in live for r in op.results):
                    mark(op.args)
                    any_live = True
                continue
            mark_carried(op)
            inner = [visit(sub) for sub in op.regions]
            mark_carried(op)  # (and what the visit found live inside)
            if op.kind is OpKind.WHILE or any(inner) or any(r in live for r in op.results):
                if op.kind is OpKind.FOR:
                    mark([op.iterable])
                else:  # a while loop always runs (it may not end)
                    mark(op.cond.yields)
                any_live = True
        return any_live

    while changed:
        changed = False
        visit(fn.body)
    return live


def _sweep(region: Region, live: set[Value]) -> None:
    kept = []
    for op in region.ops:
        for sub in op.regions:
            _sweep(sub, live)
        if op.kind is OpKind.CONST or op.kind is OpKind.CALL:
            if op.effect or not live.isdisjoint(op.results):
                kept.append(op)
            continue
        _drop_dead_results(op, lambda v: v in live)
        # (constants print as literals wherever they are read: a region of constants alone is empty)
        empty = not op.results and all(o.kind is OpKind.CONST for sub in op.regions for o in sub.ops)
        if not (empty and op.kind in (OpKind.IF, OpKind.FOR)):
            kept.append(op)
    region.ops = kept


def _drop_dead_results(op: Op, used: Callable[[Value], bool]) -> bool:
    keep = []
    carried = [op.carried(sub) for sub in op.regions] if op.is_loop else []
    for i, r in enumerate(op.results):
        keep.append(used(r) or any(used(params[i]) for params in carried))
    if all(keep):
        return False
    op.keep_results([i for i, k in enumerate(keep) if k])
    return True
