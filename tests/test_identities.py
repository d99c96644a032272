"""The algebraic identities of derivative arithmetic (``passes.IDENTITIES``) one by one: on IR
built by hand with the adjoint builder, each rewrites its pattern, leaves the call alone where
the identity does not hold, and leaves it alone when turned off on its own; and the gradients
of code that uses each agree with finite differences with the identity on and off."""

from __future__ import annotations

import math
import operator
from functools import partial
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np
import pytest
from fd import check_grad

import symdiff
from symdiff import passes, patterns, primitives
from symdiff.ir import BUILD_TUPLE, SCALAR, Builder, Function, GetAttr, Method, Op, OpKind, Region, Value
from symdiff.shapes import F64, Dim

NAMES = [identity.name for identity in passes.IDENTITIES]


@pytest.fixture(autouse=True)
def all_on(monkeypatch):
    """Every optimisation on, whatever SYMDIFF_OPTIMIZE says (tests turn identities off)."""
    monkeypatch.setattr(passes, "DISABLED", set())


def turn_off(monkeypatch, *names: str) -> None:
    monkeypatch.setattr(passes, "DISABLED", set(names))


# ----------------------------------------------------------------------------- hand-built IR


def vector(name: str, like: Value | None = None, dtype: Any = F64) -> Value:
    """A 1-d array parameter (of ``like``'s length, if given)."""
    v = Value(name, 1, dtype=dtype)
    v.shape = like.shape if like is not None else (Dim((v, 0)),)
    return v


def values() -> SimpleNamespace:
    """Parameters: float64 vectors ``x`` and ``y`` of one length, ``u`` of unknown dtype,
    a matrix ``z`` whose rows have that length, Python floats ``c`` and ``k``."""
    x = vector("x")
    z = Value("z", 2, dtype=F64)
    z.shape = (Dim((z, 0)), x.shape[0])
    return SimpleNamespace(x=x, y=vector("y", like=x), u=vector("u", like=x, dtype=None), z=z,
                           c=Value("c", SCALAR, shape=(), pytype=float), k=Value("k", SCALAR, shape=(), pytype=float))


def builder(p: SimpleNamespace) -> Builder:
    """An adjoint builder (identities as ``passes.DISABLED`` says) appending to ``f(x, y, ...)``."""
    return passes.adjoint_builder(Function("f", Region(params=list(vars(p).values()))).body)


def expr(b: Builder, v: Value) -> str:
    """``v`` as an expression of the parameters, naming each callee (``mul(x, 2.0)``)."""
    if v.is_const:
        return repr(v.const)
    op = b.producer.get(v)
    if op is None:
        return v.hint
    args = [expr(b, a) for a in op.positional]
    if isinstance(op.fn, GetAttr):
        return f"{args[0]}.{op.fn.name}"
    name = getattr(op.fn, "__name__", None) or getattr(op.fn, "what", None)
    return f"{name}({', '.join(args)})"


def call(fn: Any, *args: Any) -> Callable[[Builder], Value]:
    """Build ``fn(*args)``: each argument a Value, a Python constant, or such a builder itself."""
    def build(b: Builder) -> Value:
        return b.call(fn, [a(b) if callable(a) else a if isinstance(a, Value) else b.const(a) for a in args])
    return build


mul, div = partial(call, operator.mul), partial(call, operator.truediv)
add, sub, neg = partial(call, operator.add), partial(call, operator.sub), partial(call, operator.neg)
where = partial(call, np.where)


def mask(x: Value) -> Callable[[Builder], Value]:
    """Build ``x > 0.0``, a boolean array."""
    return call(operator.gt, x, 0.0)


def full_like(x: Value, c: Any) -> Callable[[Builder], Value]:
    """Build ``np.full(x.shape, c)``."""
    return call(np.full, call(GetAttr("shape"), x), c)


# (identity, pattern, what it becomes, what it stays with that identity alone off)
REWRITES = [
    ("fold", lambda p: mul(2.0, 3.0), "6.0", "mul(2.0, 3.0)"),
    ("fold", lambda p: call(operator.getitem, call(BUILD_TUPLE, p.x, p.y), 1), "y", "getitem(tuple(x, y), 1)"),
    ("float-constants", lambda p: mul(p.x, 2), "mul(x, 2.0)", "mul(x, 2)"),
    ("float-constants", lambda p: sub(3, p.x), "sub(3.0, x)", "sub(3, x)"),
    ("times-one", lambda p: mul(p.x, 1.0), "x", "mul(x, 1.0)"),
    ("times-one", lambda p: mul(1.0, p.x), "x", "mul(1.0, x)"),
    ("times-one", lambda p: div(p.x, 1.0), "x", "truediv(x, 1.0)"),
    ("times-one", lambda p: mul(call(np.cos, p.u), 1.0), "cos(u)", "mul(cos(u), 1.0)"),  # np.cos is never boolean
    ("times-minus-one", lambda p: mul(p.x, -1.0), "neg(x)", "mul(x, -1.0)"),
    ("times-minus-one", lambda p: mul(-1.0, p.x), "neg(x)", "mul(-1.0, x)"),
    ("times-minus-one", lambda p: div(p.x, -1.0), "neg(x)", "truediv(x, -1.0)"),
    ("scale-mask", lambda p: mul(2.0, where(mask(p.x), 1.0, 0.0)), "where(gt(x, 0.0), 2.0, 0.0)",
     "mul(2.0, where(gt(x, 0.0), 1.0, 0.0))"),
    ("scale-mask", lambda p: mul(where(mask(p.x), 1.0, -1.0), 3.0), "where(gt(x, 0.0), 3.0, -3.0)",
     "mul(where(gt(x, 0.0), 1.0, -1.0), 3.0)"),
    ("scale-mask", lambda p: mul(3.0, mul(where(mask(p.x), 1.0, 0.0), p.y)), "mul(where(gt(x, 0.0), 3.0, 0.0), y)",
     "mul(3.0, mul(where(gt(x, 0.0), 1.0, 0.0), y))"),
    ("scale-mask", lambda p: mul(4.0, mul(p.y, where(mask(p.x), 0.3, 0.7))),  # a power of two: exact
     f"mul(y, where(gt(x, 0.0), {4.0 * 0.3!r}, {4.0 * 0.7!r}))", "mul(4.0, mul(y, where(gt(x, 0.0), 0.3, 0.7)))"),
    ("negated-constant", lambda p: mul(neg(p.x), 2.0), "mul(x, -2.0)", "neg(mul(x, 2.0))"),
    ("negated-constant", lambda p: mul(2.0, neg(p.x)), "mul(-2.0, x)", "neg(mul(2.0, x))"),
    ("negated-constant", lambda p: div(neg(p.x), 2.0), "truediv(x, -2.0)", "neg(truediv(x, 2.0))"),
    ("negated-constant", lambda p: div(2.0, neg(p.x)), "truediv(-2.0, x)", "truediv(2.0, neg(x))"),
    ("negation-out", lambda p: mul(neg(p.x), p.y), "neg(mul(x, y))", "mul(neg(x), y)"),
    ("negation-out", lambda p: mul(p.y, neg(p.x)), "neg(mul(y, x))", "mul(y, neg(x))"),
    ("negation-out", lambda p: div(neg(p.x), p.y), "neg(truediv(x, y))", "truediv(neg(x), y)"),
    ("spread-factor", lambda p: mul(full_like(p.x, p.c), p.x), "mul(c, x)", "mul(full(x.shape, c), x)"),
    ("spread-factor", lambda p: mul(p.y, call(np.broadcast_to, p.c, call(GetAttr("shape"), p.x))), "mul(y, c)",
     "mul(y, broadcast_to(c, x.shape))"),  # y has x's shape
    ("spread-factor", lambda p: div(full_like(p.x, p.c), p.y), "truediv(c, y)", "truediv(full(x.shape, c), y)"),
    ("spread-factor", lambda p: mul(full_like(p.x, p.c), 2.0), "full(x.shape, mul(c, 2.0))",
     "mul(full(x.shape, c), 2.0)"),
    ("spread", lambda p: where(mask(p.x), full_like(p.x, 1.0), 0.0), "where(gt(x, 0.0), 1.0, 0.0)",
     "where(gt(x, 0.0), full(x.shape, 1.0), 0.0)"),
    ("spread", lambda p: add(full_like(p.x, p.c), p.y), "add(c, y)", "add(full(x.shape, c), y)"),
    ("plus-zero", lambda p: add(p.x, 0.0), "x", "add(x, 0.0)"),
    ("plus-zero", lambda p: add(0.0, p.x), "x", "add(0.0, x)"),
    ("doubling", lambda p: add(p.x, p.x), "mul(2.0, x)", "add(x, x)"),
    ("doubling", lambda p: add(mul(p.x, p.y), mul(p.y, p.x)), "mul(2.0, mul(x, y))", "add(mul(x, y), mul(y, x))"),
    ("plus-negated", lambda p: add(p.x, neg(p.y)), "sub(x, y)", "add(x, neg(y))"),
    ("plus-negated", lambda p: add(neg(p.x), p.y), "sub(y, x)", "add(neg(x), y)"),
    ("minus-zero", lambda p: sub(p.x, 0.0), "x", "sub(x, 0.0)"),
    ("minus-zero", lambda p: sub(0.0, p.x), "neg(x)", "sub(0.0, x)"),
    ("minus-negated", lambda p: sub(p.x, neg(p.y)), "add(x, y)", "sub(x, neg(y))"),
    ("double-negation", lambda p: neg(neg(p.x)), "x", "neg(neg(x))"),
    ("power-one", lambda p: call(operator.pow, p.x, 1), "x", "pow(x, 1)"),
]

# (identity, pattern, what it stays with every identity on): where an identity does not hold
KEPT = [
    ("fold", lambda p: div(1.0, 0.0), "truediv(1.0, 0.0)"),  # raises at run time, as written
    ("float-constants", lambda p: call(operator.floordiv, p.x, 2), "floordiv(x, 2)"),  # operands stay as they are
    ("float-constants", lambda p: mul(p.x, 2 ** 53), f"mul(x, {2 ** 53})"),  # not surely an exact float
    ("times-one", lambda p: mul(mask(p.x), 1.0), "mul(gt(x, 0.0), 1.0)"),  # a boolean mask: 1.0 * mask is float
    ("times-one", lambda p: mul(1.0, mask(p.x)), "mul(1.0, gt(x, 0.0))"),
    ("times-one", lambda p: mul(p.u, 1.0), "mul(u, 1.0)"),  # u may be a boolean array
    ("times-one", lambda p: div(1.0, p.x), "truediv(1.0, x)"),
    ("times-minus-one", lambda p: div(-1.0, p.x), "truediv(-1.0, x)"),
    ("scale-mask", lambda p: mul(3.0, mul(where(mask(p.x), 0.3, 0.7), p.y)),  # 3.0 * 0.3 rounds
     "mul(3.0, mul(where(gt(x, 0.0), 0.3, 0.7), y))"),
    ("scale-mask", lambda p: div(where(mask(p.x), 1.0, 0.0), 2.0), "truediv(where(gt(x, 0.0), 1.0, 0.0), 2.0)"),
    ("scale-mask", lambda p: mul(p.k, where(mask(p.x), 1.0, 0.0)), "mul(k, where(gt(x, 0.0), 1.0, 0.0))"),
    ("negated-constant", lambda p: mul(neg(p.x), p.k), "neg(mul(x, k))"),  # k is no constant: negation-out
    ("negation-out", lambda p: div(p.y, neg(p.x)), "truediv(y, neg(x))"),
    ("spread-factor", lambda p: mul(full_like(p.x, p.c), p.z), "mul(full(x.shape, c), z)"),  # z broadcasts it
    ("spread-factor", lambda p: div(p.y, full_like(p.x, p.c)), "truediv(y, full(x.shape, c))"),
    ("spread", lambda p: add(full_like(p.x, p.c), p.k), "add(full(x.shape, c), k)"),  # k does not spread
    ("doubling", lambda p: add(mul(p.x, p.y), mul(p.x, p.y)), "add(mul(x, y), mul(x, y))"),  # two products
    ("power-one", lambda p: call(operator.pow, p.x, 2), "pow(x, 2)"),
]


def built(pattern: Callable) -> str:
    p = values()
    b = builder(p)
    return expr(b, pattern(p)(b))


@pytest.mark.parametrize("name, pattern, on, off", REWRITES, ids=[f"{case[0]}: {case[2]}" for case in REWRITES])
def test_each_identity_rewrites_its_pattern_and_not_when_turned_off(name, pattern, on, off, monkeypatch):
    assert built(pattern) == on
    turn_off(monkeypatch, name)
    assert built(pattern) == off


@pytest.mark.parametrize("name, pattern, kept", KEPT, ids=[f"{case[0]}: {case[2]}" for case in KEPT])
def test_an_identity_leaves_alone_what_it_does_not_hold_for(name, pattern, kept):
    assert built(pattern) == kept


def test_every_identity_has_a_name_a_law_and_a_rewrite_tested_here():
    assert len(set(NAMES)) == len(NAMES)
    assert all(identity.law for identity in passes.IDENTITIES)
    assert {case[0] for case in REWRITES} == set(NAMES)
    assert not set(NAMES) & set(passes.PASSES)


def test_with_the_peephole_pass_off_no_identity_applies(monkeypatch):
    turn_off(monkeypatch, "peephole")
    assert built(lambda p: mul(p.x, 1.0)) == "mul(x, 1.0)"
    assert built(lambda p: neg(neg(p.x))) == "neg(neg(x))"


def test_calls_with_keywords_are_left_as_they_are():
    p = values()
    b = builder(p)
    assert passes.simplify_adjoint(b, operator.mul, [p.x, b.const(1.0)], {"out": p.y}) is None


def test_a_rewrite_is_simplified_in_turn():
    # -x * -1.0: times-minus-one gives -(-x), which double-negation cancels
    assert built(lambda p: mul(neg(p.x), -1.0)) == "x"
    # 2 * (-x * 3): the ints become floats, then the negation goes into the constant
    assert built(lambda p: mul(2, mul(neg(p.x), 3))) == "mul(2.0, mul(x, -3.0))"


def test_identity_names_are_settings_of_symdiff_optimize():
    assert passes._disabled("-times-one,-cse") == {"times-one", "cse"}
    assert passes._disabled("-" + ",-".join(NAMES)) == set(NAMES)
    with pytest.raises(ValueError, match="unknown pass.*times-one"):
        passes._disabled("-times-two")


# ----------------------------------------------------------------------------- patterns


def test_match_finds_the_call_producing_a_value_by_callee_arity_and_keywords():
    p = values()
    b = Builder(Function("f", Region(params=[p.x, p.y])).body)
    total = b.call(operator.add, [p.x, p.y])
    ones = b.call(np.ones_like, [p.x], {"dtype": b.const(float)})
    shape = b.call(GetAttr("shape"), [p.x])
    one = b.const(1.0)
    assert patterns.match(b.producer, total, operator.add) is b.producer[total]
    assert patterns.match(b.producer, total, (operator.sub, operator.add), 2) is b.producer[total]
    assert patterns.match(b.producer, total, operator.add, 3) is None
    assert patterns.match(b.producer, total, operator.sub) is None
    assert patterns.match(b.producer, total) is b.producer[total]  # any callee
    assert patterns.match(b.producer, ones, np.ones_like) is None  # a keyword
    assert patterns.match(b.producer, ones, np.ones_like, 1, kwargs=True) is b.producer[ones]
    assert patterns.match(b.producer, shape, GetAttr("shape"), 1) is b.producer[shape]  # markers compare equal
    assert patterns.match(b.producer, shape, GetAttr("T")) is None
    assert patterns.match(b.producer, one) is None  # a constant is no call
    assert patterns.match(b.producer, p.x) is None  # a parameter: made by nothing here


def test_callees_other_than_markers_are_compared_by_identity():
    class Odd:
        def __eq__(self, other):
            return np.array([True, False])  # neither True nor False

        __hash__ = object.__hash__

    odd = Odd()
    op = Op(OpKind.CALL, [], [Value()], fn=odd)
    assert patterns.calls(op, odd) and not patterns.calls(op, (operator.add, np.sum))
    assert patterns.calls(Op(OpKind.CALL, [Value()], [Value()], fn=Method("pop")), Method("pop"), 1)


def test_constants_are_numbers_not_booleans():
    b = Builder(Region())
    assert patterns.is_const(b.const(1), 1) and patterns.is_const(b.const(1.0), 1)
    assert not patterns.is_const(b.const(True), 1) and not patterns.is_const(Value("x"), 1)
    assert patterns.is_float(b.const(2.0)) and not patterns.is_float(b.const(2))


# ----------------------------------------------------------------------------- end to end


def _cosine(x):
    return math.cos(x)


def _rise(x):
    return x + 0.5 * x * x


def scaled(x):
    return 2.0 * (3.0 * x)


def valley(x, y):
    return (y - x ** 2) ** 2


def product(x, y):
    return x * y


def flipped(x):
    return np.sum(np.sin(x) * -1.0)


def scaled_relu(x):
    return np.sum(np.where(x > 0, 3.0 * x, 0.0))


def shifted(x, y):
    return np.sum(np.sin(y - 2.0 * x))


def bilinear(x, y):
    return np.sum(np.sin(y - x * y))


def sines(x):
    return np.sum(np.sin(x))


def relu(x):
    return np.sum(np.where(x > 0, x, 0.0))


def flagged(x, flag):
    return x * flag + x * 0


def square(x):
    return x * x


def mixed(x, y):
    return math.sin(x - y) + math.cos(x) * y


def cosine_wave(x):
    return _cosine(x) * 2.0


def rising(x):
    return math.sin(_rise(x))


def negated_twice(x):
    y = -math.sin(x)
    return -y


def squared(x):
    return x ** 2


VEC, ROW = np.array([-0.8, -0.1, 0.4, 1.3]), np.array([0.5, 1.1, -0.7, 2.0])
USES = [  # (identity, a function whose gradient uses it, arguments, argnums)
    ("fold", scaled, (1.3,), 0),
    ("float-constants", valley, (1.3, 0.4), (0, 1)),
    ("times-one", product, (1.3, 0.4), (0, 1)),
    ("times-minus-one", flipped, (VEC,), 0),
    ("scale-mask", scaled_relu, (VEC,), 0),
    ("negated-constant", shifted, (VEC, ROW), (0, 1)),
    ("negation-out", bilinear, (VEC, ROW), (0, 1)),
    ("spread-factor", sines, (VEC,), 0),
    ("spread", relu, (VEC,), 0),
    ("plus-zero", flagged, (1.3, True), 0),
    ("doubling", square, (1.3,), 0),
    ("plus-negated", mixed, (1.3, 0.4), (0, 1)),
    ("minus-zero", cosine_wave, (1.3,), 0),  # the rule of _cosine is written 0.0 - ...
    ("minus-negated", rising, (1.3,), 0),  # the rule of _rise is written g - (-g) * x
    ("double-negation", negated_twice, (1.3,), 0),
    ("power-one", squared, (1.3,), 0),
]


@pytest.fixture
def user_rules():
    with primitives.restored():
        symdiff.defvjp(_cosine, lambda g, ans, x: 0.0 - g * np.sin(x))
        symdiff.defvjp(_rise, lambda g, ans, x: g - (-g) * x)
        yield


def source_of(f: Callable, args: tuple, argnums: Any) -> str:
    g = symdiff.grad(f, argnums=argnums)
    g(*args)
    return g.source


@pytest.mark.parametrize("name, f, args, argnums", USES, ids=[case[0] for case in USES])
def test_gradients_match_finite_differences_with_each_identity_on_and_off(name, f, args, argnums, monkeypatch,
                                                                          user_rules):
    on = source_of(f, args, argnums)
    check_grad(f, *args, argnums=argnums)
    turn_off(monkeypatch, name)
    assert source_of(f, args, argnums) != on  # the identity shaped this gradient
    check_grad(f, *args, argnums=argnums)


def test_every_identity_is_checked_end_to_end():
    assert [case[0] for case in USES] == NAMES
