"""Each compiler pass on its own, on IR: build a small function's IR (by hand with the Builder,
or by lowering a Python function), run that one pass, and check what it did to the IR -- ops
removed, merged, moved or rewritten -- and what it must leave alone. The verifier accepts the
IR after every pass. (tests/test_optimize.py checks the same passes end to end, on the
generated source and on the gradients it computes.)"""

from __future__ import annotations

import linecache
import math
import operator
from typing import Any, Callable

import numpy as np
import pytest

from symdiff import api, frontend, ir, lower, optimize, passes, primitives, reverse, rules, runtime, shapes
from symdiff.ir import BUILD_LIST, BUILD_TUPLE, SCALAR, ArraySpec, Builder, Function, GetAttr, Op, OpKind, Region, Value

F64 = np.dtype(np.float64)
F32 = np.dtype(np.float32)

# The whole-function passes of optimize.optimize: left off while building a gradient, so that a
# test can run one of them alone on what reverse mode made.
WHOLE_FUNCTION = {"copies", "cse", "dce", "masks", "defer", "handover", "inplace", "licm"}


@pytest.fixture(autouse=True)
def every_pass_on(monkeypatch):
    """Builders and reverse mode behave the same whatever SYMDIFF_OPTIMIZE says (these tests
    call each pass themselves)."""
    monkeypatch.setattr(passes, "DISABLED", set())


# ----------------------------------------------------------------------------- helpers


def primal_ir(fn: Callable, *example_args: Any) -> Function:
    """The IR of ``fn`` as lowering makes it (no pass run), specialised like the gradient of
    ``fn`` called on ``example_args`` (Python number types, arrays' dtypes and size-1 axes)."""
    return lower.lower(frontend.parse_function(fn), [api._guard_key(a) for a in example_args])


def gradient_ir(fn: Callable, *example_args: Any, argnums: int | tuple = 0) -> Function:
    """The gradient function's IR as reverse mode makes it from the optimised primal (as
    ``symdiff.grad`` does), before the whole-function passes that ``optimize`` runs on it."""
    primal = primal_ir(fn, *example_args)
    optimize.optimize(primal)
    nums = [argnums] if isinstance(argnums, int) else list(argnums)
    kept = passes.DISABLED
    passes.DISABLED = kept | WHOLE_FUNCTION
    try:
        return reverse.reverse(primal, nums, as_tuple=not isinstance(argnums, int))
    finally:
        passes.DISABLED = kept


def ops_of(fn_ir: Function) -> list[tuple[str, int]]:
    """``(callee spelling, number of arguments)`` of every call in ``fn_ir``, nested regions
    included, in program order."""
    return [(primitives.spelling(op.fn), len(op.args)) for op, _ in ir.walk(fn_ir.body) if op.kind is OpKind.CALL]


def calls(fn_ir: Function, callee: Any) -> list[Op]:
    """The calls of ``callee`` in ``fn_ir`` (nested regions included), in program order."""
    return [op for op, _ in ir.walk(fn_ir.body) if op.kind is OpKind.CALL and op.fn is callee]


def loops(fn_ir: Function) -> list[Op]:
    """The ``for`` and ``while`` ops of ``fn_ir``, in program order."""
    return [op for op, _ in ir.walk(fn_ir.body) if op.is_loop]


def live_ops(fn_ir: Function) -> list[tuple[str, int]]:
    """:func:`ops_of` ``fn_ir`` once dead-code elimination has run on it: the calls that compute
    something (the passes other than DCE leave the ops they made dead behind)."""
    passes.eliminate_dead_code(fn_ir)
    return ops_of(fn_ir)


def producer(fn_ir: Function, v: Value) -> Op | None:
    """The op computing ``v`` in ``fn_ir``, or None (parameters, constants made by hand)."""
    return ir.definitions(fn_ir.body).get(v)


def dump(fn_ir: Function) -> str:
    """The IR printed, for the message of a failing assertion."""
    return "\n" + ir.format_function(fn_ir)


def after(pass_: Callable[[Function], None], fn_ir: Function) -> Function:
    """Run ``pass_`` alone on ``fn_ir`` and check that the verifier still accepts the IR."""
    pass_(fn_ir)
    try:
        ir.verify(fn_ir)
    except ir.IRError as error:
        raise AssertionError(f"{pass_.__name__} broke the IR: {error}{dump(fn_ir)}") from None
    return fn_ir


def array(hint: str, ndim: int = 1, dtype: Any = F64, ones: tuple = ()) -> Value:
    """A parameter specialised as an array of ``ndim`` axes (none of size 1 unless ``ones``)."""
    v = Value(hint)
    lower.specialise(v, ArraySpec(tuple(ones) or (False,) * ndim, np.dtype(dtype)))
    return v


def number(hint: str, type_: type = float) -> Value:
    """A parameter specialised as a Python number of type ``type_``."""
    v = Value(hint)
    lower.specialise(v, type_)
    return v


def function(*params: Value, adjoint: bool = False, simplify: Any = None) -> tuple[Function, Builder]:
    """An empty function of ``params`` and a builder appending to its body that annotates
    shapes and dtypes; with ``adjoint``, the backward sweep's builder (peepholes on, ops
    marked as derivative code)."""
    fn = Function("f", Region(params=list(params)))
    if adjoint:
        return fn, passes.adjoint_builder(fn.body)
    return fn, Builder(fn.body, simplify=simplify, annotate=shapes.annotate)


def call(b: Builder, fn: Any, *args: Value, hint: str | None = None, effect: bool = False) -> Value:
    """``fn(*args)`` appended by ``b``, its result of the static kind its operands give it."""
    return b.call(fn, list(args), hint=hint, kind=shapes.result_kind(fn, [a.kind for a in args]), effect=effect)


def like(v: Value, hint: str | None = None) -> Value:
    """A new value of the kind, shape and dtype of ``v`` (a loop's carried param or result)."""
    new = Value(hint or v.hint, v.kind)
    new.shape, new.dtype, new.integer = v.shape, v.dtype, v.integer
    return new


def for_loop(b: Builder, iterable: Value, inits: list[Value], body: Callable[..., list[Value]]) -> Op:
    """Append ``for target in iterable`` carrying ``inits``: ``body(b, target, *carried)``
    builds the body and returns the carried values' next values."""
    target = Value("i", SCALAR)
    target.integer = True
    carried = [like(v) for v in inits]
    region = Region(params=[target, *carried])
    b.push(region)
    region.yields = list(body(b, target, *carried))
    b.pop()
    return b.emit(Op(OpKind.FOR, [iterable, *inits], [like(v) for v in inits], regions=[region]))


def if_op(b: Builder, test: Value, then: Callable[[Builder], list[Value]],
          orelse: Callable[[Builder], list[Value]], hints: list[str]) -> Op:
    """Append ``if test`` whose arms are built by ``then(b)`` and ``orelse(b)``, each
    returning the values it yields (one per name in ``hints``)."""
    arms = []
    for build in (then, orelse):
        region = Region()
        b.push(region)
        region.yields = list(build(b))
        b.pop()
        arms.append(region)
    results = [like(y, h) for y, h in zip(arms[0].yields, hints)]
    return b.emit(Op(OpKind.IF, [test], results, regions=arms))


def named(fn_ir: Function, hint: str) -> list[Value]:
    """The results of ops of ``fn_ir`` (nested regions included) that carry the name ``hint``."""
    return [r for op, _ in ir.walk(fn_ir.body) for r in op.results if r.hint == hint]


# ----------------------------------------------------------------------------- copy propagation


def test_copies_read_an_if_result_whose_arms_yield_one_outer_value_through_that_value():
    x, c = number("x"), number("c")
    fn, b = function(x, c)
    y = call(b, operator.mul, x, b.const(2.0), hint="y")
    branch = if_op(b, call(b, operator.gt, c, b.const(0.0)), lambda b: [y, b.const(1.0)],
                   lambda b: [y, b.const(2.0)], ["y", "z"])
    fn.body.yields = [call(b, operator.add, *branch.results)]
    out = producer(fn, fn.body.yields[0])
    after(optimize.propagate_copies, fn)
    assert out.args[0] is y, dump(fn)  # the if's first result was a copy of y
    assert out.args[1] is branch.results[1], dump(fn)  # its second differs between the arms


def test_copies_read_a_loop_value_the_body_yields_back_unchanged_as_its_initial_value():
    x, n = number("x"), number("n", int)
    fn, b = function(x, n)
    start = call(b, operator.mul, x, b.const(3.0), hint="k")

    def body(b, i, k, total):
        return [k, call(b, operator.add, total, call(b, operator.mul, k, i))]

    loop = for_loop(b, b.call(range, [n]), [start, b.const(0.0)], body)
    fn.body.yields = [call(b, operator.add, *loop.results)]
    after(optimize.propagate_copies, fn)
    inner = calls(fn, operator.mul)[-1]
    assert inner.args[0] is start, dump(fn)  # the body reads the initial value, not its param
    assert producer(fn, fn.body.yields[0]).args[0] is start, dump(fn)
    assert producer(fn, fn.body.yields[0]).args[1] is loop.results[1], dump(fn)


def test_copies_keep_a_loop_value_the_body_changes_and_if_results_whose_arms_differ():
    def f(x, n):
        s = x
        for i in range(n):
            s = s * 0.5 + i
        if x > 0.0:
            t = s
        else:
            t = x
        return t

    fn = primal_ir(f, 1.0, 3)
    before = ops_of(fn)
    results = [list(op.results) for op in fn.body.ops if op.kind in (OpKind.FOR, OpKind.IF)]
    after(optimize.propagate_copies, fn)
    assert ops_of(fn) == before
    assert [list(op.results) for op in fn.body.ops if op.kind in (OpKind.FOR, OpKind.IF)] == results
    assert fn.body.yields[0] in [r for rs in results for r in rs], dump(fn)


def test_copies_simplify_adjoint_arithmetic_that_now_reads_a_constant():
    def f(x, y, n):
        total = 0.0
        for i in range(n):
            total = total + x * i + y
        return total

    fn = gradient_ir(f, 2.0, 1.0, 4, argnums=(0, 1))
    backward = loops(fn)[-1]
    dtotal = backward.carried(backward.body)[0]
    assert backward.body.yields[0] is dtotal, dump(fn)  # carried unchanged: it stays 1.0
    assert any(op.fn is operator.mul and dtotal in op.args for op in backward.body.ops), dump(fn)
    after(optimize.propagate_copies, fn)
    # dx + dtotal * i, with dtotal the constant 1.0, is dx + i
    dx = next(op for op in backward.body.ops if op.kind is OpKind.CALL and op.result is backward.body.yields[1])
    assert dx.fn is operator.add and backward.target in dx.args, dump(fn)
    assert all(dtotal not in op.args for op, _ in ir.walk(fn.body)), dump(fn)


# ----------------------------------------------------------------------------- CSE


def test_cse_merges_two_calls_of_a_pure_function_on_the_same_values():
    def f(x, y):
        a = math.sin(x) * y
        b = math.sin(x) * y
        return a + b

    fn = primal_ir(f, 1.0, 2.0)
    after(optimize.eliminate_common_subexpressions, fn)
    total = producer(fn, fn.body.yields[0])
    assert total.args[0] is total.args[1], dump(fn)  # a + a
    assert live_ops(fn) == [("math.sin", 1), ("operator.mul", 2), ("operator.add", 2)], dump(fn)


def test_cse_merges_equal_constants_of_one_type_and_keeps_the_users_name():
    x = array("x")
    fn, b = function(x)
    first = call(b, operator.add, x, b.const(1.0))  # no name of its own
    second = call(b, operator.add, x, b.const(1.0), hint="shifted")  # another constant object, equal
    fn.body.yields = [call(b, np.multiply, first, second)]
    after(optimize.eliminate_common_subexpressions, fn)
    product = producer(fn, fn.body.yields[0])
    assert product.args == [first, first], dump(fn)
    assert first.hint == "shifted"


def test_cse_reuses_an_expression_of_an_enclosing_region_inside_an_if_arm():
    x = array("x")
    fn, b = function(x)
    outer = call(b, np.exp, x)
    test = call(b, np.all, call(b, operator.gt, x, b.const(0.0)))
    branch = if_op(b, test, lambda b: [call(b, np.exp, x)], lambda b: [x], ["y"])
    fn.body.yields = [call(b, operator.add, outer, branch.result)]
    after(optimize.eliminate_common_subexpressions, fn)
    assert branch.then.yields == [outer], dump(fn)


def test_cse_does_not_reuse_what_an_if_arm_computed_after_the_if():
    x = array("x")
    fn, b = function(x)
    test = call(b, np.all, call(b, operator.gt, x, b.const(0.0)))
    branch = if_op(b, test, lambda b: [call(b, np.exp, x)], lambda b: [x], ["y"])
    later = call(b, np.exp, x)
    fn.body.yields = [call(b, operator.add, later, branch.result)]
    after(optimize.eliminate_common_subexpressions, fn)
    assert producer(fn, fn.body.yields[0]).args[0] is later, dump(fn)  # the arm may not run
    assert len(calls(fn, np.exp)) == 2


def test_cse_keeps_two_calls_of_an_impure_function_apart():
    x = number("x")
    fn, b = function(x)
    first, second = call(b, np.random.normal, x), call(b, np.random.normal, x)
    fn.body.yields = [call(b, operator.add, first, second)]
    after(optimize.eliminate_common_subexpressions, fn)
    assert producer(fn, fn.body.yields[0]).args == [first, second], dump(fn)


def test_cse_keeps_calls_marked_as_side_effects_apart_even_of_a_pure_callee():
    x = array("x")
    fn, b = function(x)
    first, second = (call(b, np.sin, x, effect=True) for _ in range(2))
    fn.body.yields = [call(b, operator.add, first, second)]
    after(optimize.eliminate_common_subexpressions, fn)
    assert producer(fn, fn.body.yields[0]).args == [first, second], dump(fn)


def test_cse_keeps_two_calls_returning_iterators_apart():
    xs, ys = Value("xs"), Value("ys")
    fn, b = function(xs, ys)
    first, second = b.call(zip, [xs, ys]), b.call(zip, [xs, ys])
    fn.body.yields = [b.call(BUILD_TUPLE, [first, second])]  # two loops over them: each needs its own
    after(optimize.eliminate_common_subexpressions, fn)
    assert producer(fn, fn.body.yields[0]).args == [first, second], dump(fn)


def test_cse_keeps_constants_of_different_types_apart():
    x = array("x", dtype=np.uint8)
    fn, b = function(x)
    ints, floats, bools = (call(b, operator.add, x, b.const(c)) for c in (100, 100.0, True))
    fn.body.yields = [b.call(BUILD_TUPLE, [ints, floats, bools])]
    after(optimize.eliminate_common_subexpressions, fn)
    assert producer(fn, fn.body.yields[0]).args == [ints, floats, bools], dump(fn)


def test_cse_does_not_merge_arrays_updated_in_place_or_lists():
    x = array("x")
    fn, b = function(x)
    shape = b.call(GetAttr("shape"), [x])
    acc, other = b.call(np.zeros, [shape]), b.call(np.zeros, [shape])
    b.call(runtime.add_into, [acc, x], effect=True)
    first, second = b.call(BUILD_LIST, []), b.call(BUILD_LIST, [])
    fn.body.yields = [b.call(BUILD_TUPLE, [acc, other, first, second])]
    after(optimize.eliminate_common_subexpressions, fn)
    assert producer(fn, fn.body.yields[0]).args == [acc, other, first, second], dump(fn)


# ----------------------------------------------------------------------------- dead code


def test_dce_removes_pure_calls_nothing_reads():
    x = array("x")
    fn, b = function(x)
    call(b, np.exp, call(b, np.sin, x))  # read by nothing
    fn.body.yields = [call(b, np.cos, x)]
    after(passes.eliminate_dead_code, fn)
    assert ops_of(fn) == [("np.cos", 1)], dump(fn)


def test_dce_removes_a_loop_value_that_only_feeds_itself():
    def f(x, n):
        unused = 0.0
        total = 0.0
        for i in range(n):
            unused = unused * 2.0 + x
            total = total + x * i
        return total

    fn = primal_ir(f, 2.0, 4)
    assert [len(loop.results) for loop in loops(fn)] == [2]
    after(passes.eliminate_dead_code, fn)
    (loop,) = loops(fn)
    assert [r.hint for r in loop.results] == ["total"], dump(fn)
    assert len(loop.inits) == 1 and len(loop.carried(loop.body)) == 1
    assert ops_of(fn) == [("range", 1), ("operator.mul", 2), ("operator.add", 2)], dump(fn)


def test_dce_removes_loops_and_ifs_left_empty():
    x, n = number("x"), number("n", int)
    fn, b = function(x, n)
    for_loop(b, b.call(range, [n]), [x], lambda b, i, s: [call(b, operator.add, s, i)])
    if_op(b, call(b, operator.gt, x, b.const(0.0)), lambda b: [call(b, operator.neg, x)], lambda b: [x], ["y"])
    fn.body.yields = [call(b, operator.mul, x, x)]
    after(passes.eliminate_dead_code, fn)
    assert [op.kind for op in fn.body.ops if op.kind is not OpKind.CONST] == [OpKind.CALL], dump(fn)
    assert ops_of(fn) == [("operator.mul", 2)], dump(fn)


def test_dce_keeps_a_call_with_a_side_effect_and_what_it_reads():
    x = array("x")
    fn, b = function(x)
    items = b.call(BUILD_LIST, [])
    b.call(print, [call(b, np.sin, x)], effect=True)
    b.call(ir.Method("append"), [items, call(b, np.exp, x)], effect=True)
    fn.body.yields = [x]
    after(passes.eliminate_dead_code, fn)
    assert ops_of(fn) == [("a list display", 0), ("np.sin", 1), ("print", 1), ("np.exp", 1), (".append()", 2)], \
        dump(fn)


def test_dce_keeps_a_while_loop_whose_results_are_unused_and_what_its_condition_reads():
    x = number("x")
    fn, b = function(x)
    cond = Region(params=[like(x, "k"), like(x)])
    b.push(cond)
    cond.yields = [call(b, operator.lt, cond.params[0], b.const(5.0))]
    b.pop()
    body = Region(params=[like(x, "k"), like(x)])
    b.push(body)
    body.yields = [call(b, operator.add, body.params[0], b.const(1.0)),
                   call(b, operator.mul, body.params[1], b.const(2.0))]
    b.pop()
    loop = b.emit(Op(OpKind.WHILE, [b.const(0.0), x], [like(x, "k"), like(x)], regions=[cond, body]))
    fn.body.yields = [x]  # the loop's results unused: it still runs (it may never end)
    after(passes.eliminate_dead_code, fn)
    assert loops(fn) == [loop], dump(fn)
    assert [r.hint for r in loop.results] == ["k"], dump(fn)  # x's slot is dead, the counter is not
    assert [op.fn for op in loop.body.ops if op.kind is OpKind.CALL] == [operator.add], dump(fn)


def test_dce_keeps_a_for_loop_with_a_side_effect_inside():
    x, n = array("x"), number("n", int)
    fn, b = function(x, n)
    items = b.call(BUILD_LIST, [])

    def body(b, i, s):
        b.call(ir.Method("append"), [items, call(b, operator.mul, x, i)], effect=True)
        return [call(b, operator.add, s, i)]  # the carried value is dead

    loop = for_loop(b, b.call(range, [n]), [b.const(0)], body)
    fn.body.yields = [items]
    after(passes.eliminate_dead_code, fn)
    assert loops(fn) == [loop] and loop.results == [], dump(fn)
    assert [primitives.spelling(op.fn) for op in loop.body.ops if op.kind is OpKind.CALL] == \
        ["operator.mul", ".append()"], dump(fn)


# ----------------------------------------------------------------------------- masked sums


def masked_terms(dtype: Any = F64) -> tuple[Function, Builder, Value, Value, Value, Value]:
    """``f(x)`` with the backward sweep's builder, a mask ``c = x > 0`` and two float
    cotangents ``p = 2.0 * x`` and ``q = np.cos(x)``: ``(fn, b, x, c, p, q)``."""
    x = array("x", dtype=dtype)
    fn, b = function(x, adjoint=True)
    c = call(b, operator.gt, x, b.const(0.0))
    return fn, b, x, c, call(b, operator.mul, b.const(2.0), x), call(b, np.cos, x)


def where(b: Builder, c: Value, p: Value, q: Value) -> Value:
    """``np.where(c, p, q)`` appended by ``b``."""
    return b.call(np.where, [c, p, q], kind=1)


def is_where(fn_ir: Function, v: Value, *args: Value) -> bool:
    """Whether ``v`` is computed as ``np.where(*args)`` (a float constant arm as any float
    constant of that value)."""
    op = producer(fn_ir, v)
    if op is None or op.fn is not np.where or len(op.args) != len(args):
        return False
    return all(a is w or (a.is_const and w.is_const and a.const == w.const) for a, w in zip(op.args, args))


def test_masks_merge_two_cotangents_masked_by_one_condition_into_one_where():
    fn, b, x, c, p, q = masked_terms()
    fn.body.yields = [call(b, operator.add, where(b, c, p, b.const(0.0)), where(b, c, b.const(0.0), q))]
    after(optimize.merge_masked_sums, fn)
    assert is_where(fn, fn.body.yields[0], c, p, q), dump(fn)
    assert live_ops(fn).count(("np.where", 3)) == 1, dump(fn)


def test_masks_merge_the_derivative_of_a_where_of_products_into_one_where():
    def f(x):
        return np.sum(np.where(x > 0, x * x, 0.5 * x))

    fn = gradient_ir(f, np.ones(3))
    assert ops_of(fn).count(("np.where", 3)) >= 2
    after(optimize.merge_masked_sums, fn)
    dx = calls(fn, runtime.as_grad)[0].args[0]
    merged = producer(fn, dx)
    assert merged.fn is np.where and merged.args[2].is_const and merged.args[2].const == 0.5, dump(fn)
    doubled = producer(fn, merged.args[1])  # where(c, 2.0 * x, 0.5)
    assert doubled.fn is operator.mul and doubled.args[0].const == 2.0 and doubled.args[1] is fn.body.params[0]
    assert live_ops(fn).count(("np.where", 3)) == 1, dump(fn)


def test_masks_merge_complementary_terms_around_another_term():
    fn, b, x, c, p, q = masked_terms()
    rest = call(b, np.tanh, x)
    inner = call(b, operator.add, rest, where(b, c, p, b.const(0.0)))
    fn.body.yields = [call(b, operator.add, inner, where(b, c, b.const(0.0), q))]
    after(optimize.merge_masked_sums, fn)
    total = producer(fn, fn.body.yields[0])
    assert total.fn is operator.add and total.args[0] is rest, dump(fn)
    assert is_where(fn, total.args[1], c, p, q), dump(fn)


def test_masks_do_not_merge_terms_masked_by_different_conditions():
    fn, b, x, c, p, q = masked_terms()
    d = call(b, operator.lt, x, b.const(1.0))
    total = call(b, operator.add, where(b, c, p, b.const(0.0)), where(b, d, b.const(0.0), q))
    fn.body.yields = [total]
    after(optimize.merge_masked_sums, fn)
    assert fn.body.yields == [total] and producer(fn, total).fn is operator.add, dump(fn)


def test_masks_do_not_merge_a_masked_term_something_else_reads():
    fn, b, x, c, p, q = masked_terms()
    left = where(b, c, p, b.const(0.0))
    total = call(b, operator.add, left, where(b, c, b.const(0.0), q))
    fn.body.yields = [b.call(BUILD_TUPLE, [total, left])]
    after(optimize.merge_masked_sums, fn)
    assert producer(fn, fn.body.yields[0]).args == [total, left], dump(fn)


def test_masks_do_not_merge_terms_of_one_side_around_another_term():
    # (where(c, p, 0) + tanh) + where(c, q, 0) is not where(c, p + q, 0) + tanh in floating point
    fn, b, x, c, p, q = masked_terms()
    inner = call(b, operator.add, where(b, c, p, b.const(0.0)), call(b, np.tanh, x))
    total = call(b, operator.add, inner, where(b, c, q, b.const(0.0)))
    fn.body.yields = [total]
    after(optimize.merge_masked_sums, fn)
    assert fn.body.yields == [total] and producer(fn, total).args[0] is inner, dump(fn)


def test_masks_do_not_merge_sums_not_known_to_be_float64():
    fn, b, x, c, p, q = masked_terms(F32)
    total = call(b, operator.add, where(b, c, p, b.const(0.0)), where(b, c, b.const(0.0), q))
    fn.body.yields = [total]
    after(optimize.merge_masked_sums, fn)
    assert fn.body.yields == [total], dump(fn)


# ----------------------------------------------------------------------------- deferred sums of outer products


def outer_sum(us, vs):
    acc = np.zeros((us.shape[1], vs.shape[1]))
    for t in range(us.shape[0]):
        acc = acc + np.outer(us[t], vs[t])
    return acc


def outer_sum_onto(w, us, vs):
    acc = w
    for t in range(us.shape[0]):
        acc = acc + np.outer(us[t], vs[t])
    return acc


def rnn(Wx, Wh, xs):
    h = np.zeros(Wh.shape[0])
    for t in range(xs.shape[0]):
        h = np.tanh(Wx @ xs[t] + Wh @ h)
    return np.sum(h ** 2)


RNN_ARGS = (np.ones((3, 2)), np.ones((3, 3)), np.ones((4, 2)))


def test_defer_collects_the_vectors_of_an_outer_product_sum_and_multiplies_them_after_the_loop():
    fn = primal_ir(outer_sum, np.ones((4, 3)), np.ones((4, 2)))
    (loop,) = loops(fn)
    (outer,) = calls(fn, np.outer)
    after(optimize.defer_outer_products, fn)
    assert loop.results == [] and loop.inits == [], dump(fn)  # acc is no longer carried
    assert optimize.use_counts(fn).get(outer.result, 0) == 0, dump(fn)
    (total,) = calls(fn, runtime.sum_of_outer)
    assert fn.body.yields == [total.result] and fn.body.ops.index(total) > fn.body.ops.index(loop), dump(fn)
    assert len(total.args) == 3, dump(fn)  # the zeros' shape: the sum when the loop does not run
    appends = [op for op in loop.body.ops if op.kind is OpKind.CALL and op.fn == ir.Method("append")]
    assert [op.args for op in appends] == [[total.args[0], outer.args[0]], [total.args[1], outer.args[1]]], dump(fn)
    rows = [producer(fn, r) for r in total.args[:2]]
    assert all(op.fn is BUILD_LIST and fn.body.ops.index(op) < fn.body.ops.index(loop) for op in rows), dump(fn)


def test_defer_adds_the_deferred_sum_to_an_accumulator_that_does_not_start_at_zero():
    fn = primal_ir(outer_sum_onto, np.ones((3, 2)), np.ones((4, 3)), np.ones((4, 2)))
    after(optimize.defer_outer_products, fn)
    (total,) = calls(fn, runtime.sum_of_outer)
    out = producer(fn, fn.body.yields[0])
    assert out.fn is operator.add and out.args == [fn.body.params[0], total.result], dump(fn)
    assert len(total.args) == 2


def test_defer_forms_the_backward_sums_of_an_rnn_after_the_loop_from_rows_stacked_once():
    fn = gradient_ir(rnn, *RNN_ARGS, argnums=(0, 1))
    backward = loops(fn)[-1]
    assert len(backward.results) == 3  # dh, dWx, dWh
    after(optimize.defer_outer_products, fn)
    assert [r.hint for r in backward.results] == ["dh"], dump(fn)
    assert all(op.fn is not runtime.add_into for op in backward.body.ops), dump(fn)
    sums = calls(fn, runtime.sum_of_outer)
    (stacked,) = calls(fn, runtime.stacked)  # the row cotangents both sums read
    assert len(sums) == 2 and all(op.args[0] is stacked.result for op in sums), dump(fn)


def accumulator_read_before(us, vs):
    acc = np.zeros((us.shape[1], vs.shape[1]))
    s = 0.0
    for t in range(us.shape[0]):
        s = s + np.sum(acc)  # the old acc
        acc = acc + np.outer(us[t], vs[t])
    return s


def accumulator_read_after(us, vs):
    acc = np.zeros((us.shape[1], vs.shape[1]))
    s = 0.0
    for t in range(us.shape[0]):
        acc = acc + np.outer(us[t], vs[t])
        s = s + np.sum(acc)  # the new acc
    return s


@pytest.mark.parametrize("f", [accumulator_read_before, accumulator_read_after])
def test_defer_leaves_an_accumulator_the_loop_also_reads(f):
    fn = primal_ir(f, np.ones((4, 3)), np.ones((4, 2)))
    before = ops_of(fn)
    after(optimize.defer_outer_products, fn)
    assert ops_of(fn) == before and [len(loop.results) for loop in loops(fn)] == [2], dump(fn)


def elementwise_sum(us, vs):
    acc = np.zeros(us.shape[1])
    for t in range(us.shape[0]):
        acc = acc + us[t] * vs[t]
    return acc


def outer_product_read_twice(us, vs):
    a = np.zeros((us.shape[1], vs.shape[1]))
    b = np.zeros((us.shape[1], vs.shape[1]))
    for t in range(us.shape[0]):
        o = np.outer(us[t], vs[t])
        a = a + o
        b = b + o
    return a * b


@pytest.mark.parametrize("f, vs", [(elementwise_sum, np.ones((4, 3))), (outer_product_read_twice, np.ones((4, 2)))],
                         ids=["elementwise", "read-twice"])
def test_defer_leaves_sums_of_other_products_and_outer_products_read_twice(f, vs):
    fn = primal_ir(f, np.ones((4, 3)), vs)
    before = ops_of(fn)
    after(optimize.defer_outer_products, fn)
    assert ops_of(fn) == before, dump(fn)


# ----------------------------------------------------------------------------- handing gradients over


def test_handover_returns_a_float64_gradient_of_the_arguments_shape_as_it_is():
    def f(x):
        return np.sum(np.tanh(x) * 3.0)

    fn = gradient_ir(f, np.ones(3))
    (handed,) = calls(fn, runtime.as_grad)
    dx = handed.args[0]
    assert fn.body.yields == [handed.result]
    after(optimize.hand_over_fresh_gradients, fn)
    assert fn.body.yields == [dx], dump(fn)


def test_handover_hands_over_a_gradient_the_code_made_instead_of_copying_it():
    w = array("W", 2)
    fn, b = function(w, adjoint=True)
    dw = call(b, operator.mul, w, b.const(2.0))
    fn.body.yields = [b.call(runtime.grad_like, [dw, w])]
    after(optimize.hand_over_fresh_gradients, fn)
    assert fn.body.yields == [dw], dump(fn)


def test_handover_makes_the_copy_of_a_deferred_sum_a_hand_over():
    fn = gradient_ir(rnn, *RNN_ARGS, argnums=(0, 1))
    optimize.defer_outer_products(fn)
    assert len(calls(fn, runtime.grad_like)) == 2
    after(optimize.hand_over_fresh_gradients, fn)
    sums = [op.result for op in calls(fn, runtime.sum_of_outer)]
    assert producer(fn, fn.body.yields[0]).args == sums[:2], dump(fn)


def test_handover_hands_over_a_gradient_that_other_ops_only_read_into_new_arrays():
    def f(x, w):
        return np.sum(np.tanh(x) * w)

    fn = gradient_ir(f, np.ones(3), np.ones(3), argnums=1)
    (copy,) = calls(fn, runtime.grad_like)  # dw is tanh(x), which the product reads too
    dw = copy.args[0]
    after(optimize.hand_over_fresh_gradients, fn)
    assert not calls(fn, runtime.grad_like) and fn.body.yields == [dw], dump(fn)


@pytest.mark.parametrize("other", ["a view", "a second output"])
def test_handover_keeps_the_copy_of_a_gradient_read_as_a_view_or_returned_twice(other):
    w = array("W", 2)
    fn, b = function(w, adjoint=True)
    dw = call(b, operator.mul, w, b.const(2.0))
    also = call(b, GetAttr("T"), dw) if other == "a view" else dw
    copy = b.call(runtime.grad_like, [dw, w])
    fn.body.yields = [copy, also]
    after(optimize.hand_over_fresh_gradients, fn)
    assert fn.body.yields[0] is copy and calls(fn, runtime.grad_like), dump(fn)


def test_handover_keeps_the_conversion_of_a_gradient_of_another_dtype():
    def f(x):
        return np.sum(np.tanh(x) * 3.0)

    fn = gradient_ir(f, np.ones(3, dtype=np.float32))
    (handed,) = calls(fn, runtime.as_grad)
    after(optimize.hand_over_fresh_gradients, fn)
    assert fn.body.yields == [handed.result], dump(fn)  # float32: as_grad converts it


def test_handover_keeps_the_copy_of_a_gradient_carried_out_of_a_loop():
    fn = gradient_ir(rnn, *RNN_ARGS, argnums=(0, 1))  # the weights' gradients: loop results
    copies = calls(fn, runtime.grad_like)
    after(optimize.hand_over_fresh_gradients, fn)
    assert calls(fn, runtime.grad_like) == copies and len(copies) == 2, dump(fn)


# ----------------------------------------------------------------------------- in-place accumulation


def cotangent_sum(dtype: Any = F64) -> tuple[Function, Builder, Value, Value, Value]:
    """``f(x)`` with the backward sweep's builder and two float cotangents of ``x``'s shape
    that it made: ``dx = 2.0 * x`` and ``part = np.cos(x)``: ``(fn, b, x, dx, part)``."""
    x = array("x", dtype=dtype)
    fn, b = function(x, adjoint=True)
    return fn, b, x, call(b, operator.mul, b.const(2.0), x, hint="dx"), call(b, np.cos, x)


def test_inplace_adds_a_contribution_into_a_fresh_cotangent_nothing_else_reads():
    fn, b, x, dx, part = cotangent_sum()
    fn.body.yields = [call(b, operator.add, dx, part, hint="dx")]
    add = producer(fn, fn.body.yields[0])
    after(optimize.accumulate_in_place, fn)
    assert add.fn is operator.iadd and add.effect and add.args == [dx, part], dump(fn)


def test_inplace_adds_a_chain_of_contributions_into_one_array():
    fn, b, x, dx, part = cotangent_sum()
    once = call(b, operator.add, dx, part)
    fn.body.yields = [call(b, operator.add, once, call(b, np.sin, x))]
    after(optimize.accumulate_in_place, fn)
    assert [op.fn for op in calls(fn, operator.iadd)] == [operator.iadd] * 2, dump(fn)
    assert calls(fn, operator.add) == [], dump(fn)


def test_inplace_adds_into_the_gradients_own_arrays_in_a_lowered_gradient():
    def f(x, w):
        return np.sum(np.tanh(x) * w + np.maximum(x, 0.1) * w)

    fn = gradient_ir(f, np.ones(3), np.ones(3), argnums=(0, 1))
    after(optimize.accumulate_in_place, fn)
    (update,) = calls(fn, operator.iadd)
    assert update.result.hint == "dx" and update.effect, dump(fn)


def test_inplace_does_not_update_an_array_that_has_another_use():
    fn, b, x, dx, part = cotangent_sum()
    total = call(b, operator.add, dx, part)
    fn.body.yields = [b.call(BUILD_TUPLE, [total, dx])]  # dx is read again after the sum
    after(optimize.accumulate_in_place, fn)
    assert producer(fn, total).fn is operator.add and not producer(fn, total).effect, dump(fn)


def test_inplace_does_not_update_an_argument():
    x, y = array("x"), array("y")
    fn, b = function(x, y, adjoint=True)
    fn.body.yields = [call(b, operator.add, x, call(b, np.cos, y))]  # x read once: by the sum
    after(optimize.accumulate_in_place, fn)
    assert calls(fn, operator.iadd) == [], dump(fn)


def test_inplace_does_not_update_an_array_the_sum_broadcasts_to_a_larger_shape():
    x, y = array("x"), array("Y", 2)
    fn, b = function(x, y, adjoint=True)
    fn.body.yields = [call(b, operator.add, call(b, np.sin, x), y)]  # (n,) + (m, n): a new, larger array
    after(optimize.accumulate_in_place, fn)
    assert calls(fn, operator.iadd) == [], dump(fn)


def test_inplace_adds_a_float32_part_into_a_float64_array():
    # float64 + float32 is computed in float64 either way: acc += z gives the same numbers
    x, z = array("x"), array("z", dtype=F32, ones=(True,))
    fn, b = function(x, z, adjoint=True)
    fn.body.yields = [call(b, operator.add, call(b, np.sin, x), z)]
    after(optimize.accumulate_in_place, fn)
    assert len(calls(fn, operator.iadd)) == 1, dump(fn)


def test_inplace_does_not_update_an_array_with_a_part_of_unknown_dtype():
    x, z = array("x"), array("z", dtype=np.longdouble, ones=(True,))
    fn, b = function(x, z, adjoint=True)
    fn.body.yields = [call(b, operator.add, call(b, np.sin, x), call(b, np.cos, z))]
    assert producer(fn, fn.body.yields[0]).args[1].dtype is None  # not known to fit
    after(optimize.accumulate_in_place, fn)
    assert calls(fn, operator.iadd) == [], dump(fn)


def test_inplace_does_not_rewrite_a_sum_of_the_primal():
    x = array("x")
    fn, b = function(x)  # not the backward sweep's builder
    fn.body.yields = [call(b, operator.add, call(b, np.sin, x), call(b, np.cos, x))]
    after(optimize.accumulate_in_place, fn)
    assert calls(fn, operator.iadd) == [], dump(fn)


# ----------------------------------------------------------------------------- loop-invariant code motion


def body_calls(loop: Op) -> list[Any]:
    """The callees of the calls directly in ``loop``'s body."""
    return [op.fn for op in loop.body.ops if op.kind is OpKind.CALL]


def test_licm_moves_scalar_arithmetic_that_cannot_raise_before_the_loop():
    def f(x, n):
        s = 0.0
        for i in range(n):
            s = s + x * 2.0 * i
        return s

    fn = primal_ir(f, 1.5, 3)
    (loop,) = loops(fn)
    (double,) = [op for op in loop.body.ops if op.kind is OpKind.CALL and fn.body.params[0] in op.args]
    after(optimize.hoist_loop_invariants, fn)
    assert double in fn.body.ops and fn.body.ops.index(double) < fn.body.ops.index(loop), dump(fn)
    assert body_calls(loop) == [operator.mul, operator.add], dump(fn)  # (x * 2.0) * i, s + ...


def test_licm_computes_a_call_that_may_raise_on_first_use_and_carries_it():
    def f(x, n):
        s = 0.0
        for i in range(n):
            s = s + math.sqrt(x) * i
        return s

    fn = primal_ir(f, 4.0, 3)
    (loop,) = loops(fn)
    (root,) = calls(fn, math.sqrt)
    after(optimize.hoist_loop_invariants, fn)
    assert root not in fn.body.ops, dump(fn)  # it would raise for x < 0 where the loop never runs
    assert len(loop.results) == 2 and loop.inits[1].is_const and loop.inits[1].const is None, dump(fn)
    fill = next(op for op in loop.body.ops if op.kind is OpKind.IF)
    assert fill.then.ops == [root] and fill.then.yields == [root.result], dump(fn)
    assert fill.orelse.yields == [loop.carried(loop.body)[1]] and loop.body.yields[1] is fill.result, dump(fn)
    assert producer(fn, fill.test).fn is operator.is_, dump(fn)


def test_licm_does_not_move_a_division_that_may_raise_before_the_loop():
    def f(x, y, n):
        s = 0.0
        for i in range(n):
            s = s + x / y * i
        return s

    fn = primal_ir(f, 1.0, 0.5, 3)
    (loop,) = loops(fn)
    (ratio,) = calls(fn, operator.truediv)
    after(optimize.hoist_loop_invariants, fn)
    assert ratio not in fn.body.ops, dump(fn)  # y may be 0 where the loop never runs
    assert any(ratio in op.then.ops for op in loop.body.ops if op.kind is OpKind.IF), dump(fn)


def test_licm_does_not_move_numpy_arithmetic_before_the_loop():
    def f(x, n):
        s = 0.0
        for i in range(n):
            s = s + np.sum(x * 2.0) * i
        return s

    fn = primal_ir(f, np.ones(3), 3)
    (loop,) = loops(fn)
    double = calls(fn, operator.mul)[0]
    assert double.args[0] is fn.body.params[0]
    after(optimize.hoist_loop_invariants, fn)
    assert double not in fn.body.ops, dump(fn)  # an array operation: computed on first use only
    (fill,) = [op for op in loop.body.ops if op.kind is OpKind.IF]
    assert fill.then.ops[0] is double, dump(fn)


def test_licm_leaves_what_reads_the_loop_index_or_has_a_side_effect():
    x, n = number("x"), number("n", int)
    fn, b = function(x, n)
    items = b.call(BUILD_LIST, [])

    def body(b, i, s):
        b.call(ir.Method("append"), [items, x], effect=True)
        return [call(b, operator.add, s, call(b, operator.mul, x, i))]

    loop = for_loop(b, b.call(range, [n]), [b.const(0.0)], body)
    fn.body.yields = [loop.result]
    before = body_calls(loop)
    after(optimize.hoist_loop_invariants, fn)
    assert body_calls(loop) == before == [ir.Method("append"), operator.mul, operator.add], dump(fn)
    assert len(loop.results) == 1, dump(fn)


def test_licm_computes_invariants_used_together_in_one_first_use_check():
    def f(x, n):
        s = 0.0
        for i in range(n):
            s = s + math.sin(x) * math.cos(x) * i
        return s

    fn = primal_ir(f, 1.0, 3)
    (loop,) = loops(fn)
    after(optimize.hoist_loop_invariants, fn)
    (fill,) = [op for op in loop.body.ops if op.kind is OpKind.IF]
    assert [op.fn for op in fill.then.ops if op.kind is OpKind.CALL] == [math.sin, math.cos, operator.mul], dump(fn)


def test_licm_keeps_invariants_on_either_side_of_a_side_effect_in_separate_first_use_checks():
    def f(x, n):
        s = 0.0
        for i in range(n):
            a = math.sin(x)
            print(i)
            s = s + a * math.cos(x) * i
        return s

    fn = primal_ir(f, 1.0, 3)
    (loop,) = loops(fn)
    after(optimize.hoist_loop_invariants, fn)
    passes.eliminate_dead_code(fn)
    order = [op.then.ops[0].fn if op.kind is OpKind.IF else op.fn for op in loop.body.ops
             if op.kind is OpKind.IF or op.fn in (print, operator.mul)]
    assert order == [math.sin, print, math.cos, operator.mul, operator.mul], dump(fn)  # cos after the print


def test_licm_moves_an_invariant_of_nested_loops_out_of_both():
    def f(x, n):
        s = 0.0
        for _i in range(n):
            for j in range(n):
                s = s + (x + 1.0) * j
        return s

    fn = primal_ir(f, 1.5, 3)
    shift = calls(fn, operator.add)[0]
    assert shift.args[0] is fn.body.params[0] and shift.args[1].const == 1.0
    outer = loops(fn)[0]
    after(optimize.hoist_loop_invariants, fn)
    assert shift in fn.body.ops and fn.body.ops.index(shift) < fn.body.ops.index(outer), dump(fn)


def test_licm_memo_in_a_while_loop_is_carried_by_its_condition_too():
    def f(x):
        y = x
        while y < 100.0:
            y = y * 2.0 + math.exp(-x)
        return y

    fn = primal_ir(f, 1.5)
    (loop,) = loops(fn)
    after(optimize.hoist_loop_invariants, fn)
    assert len(loop.results) == 2 and len(loop.carried(loop.cond)) == 2, dump(fn)
    assert any(op.kind is OpKind.IF for op in loop.body.ops), dump(fn)


def test_licm_reads_the_final_memo_after_the_loop_instead_of_a_stack_of_it():
    def f(x, n):
        s = 0.0
        for i in range(n):
            s = s + math.sqrt(x) * i
        return s

    fn = gradient_ir(f, 4.0, 3, argnums=(0,))
    assert [name for name, _ in ops_of(fn)].count(".append()") == 1  # sqrt(x) recorded each iteration
    after(optimize.hoist_loop_invariants, fn)
    forward, backward = loops(fn)
    names = [name for name, _ in ops_of(fn)]
    assert ".append()" not in names and ".pop()" not in names, dump(fn)
    memo = forward.results[-1]
    assert any(memo in op.args for op in backward.body.ops), dump(fn)


# ----------------------------------------------------------------------------- constant folding


def folding() -> tuple[Function, Builder, Value]:
    """``f(x)`` and a builder that folds constants as it appends (as lowering does)."""
    x = number("x")
    fn, b = function(x, simplify=passes.fold_constants)
    return fn, b, x


def test_fold_evaluates_scalar_arithmetic_on_constants_at_compile_time():
    fn, b, x = folding()
    five = b.call(operator.add, [b.const(2), b.const(3)])
    half = b.call(operator.truediv, [b.const(1), b.const(2)])
    power = b.call(operator.pow, [b.const(2.0), b.const(10)])
    root = b.call(math.sqrt, [b.const(16.0)])
    assert [(v.const, type(v.const)) for v in (five, half, power, root)] == [
        (5, int), (0.5, float), (1024.0, float), (4.0, float)]
    assert ops_of(fn) == [], dump(fn)


def test_fold_keeps_the_python_type_of_the_result():
    fn, b, x = folding()
    assert type(b.call(operator.add, [b.const(True), b.const(1)]).const) is int
    assert type(b.call(operator.mul, [b.const(2), b.const(1.5)]).const) is float
    assert b.call(operator.lt, [b.const(1), b.const(2.0)]).const is True


def test_fold_takes_an_item_of_a_tuple_built_in_the_function():
    fn, b, x = folding()
    y = b.call(operator.neg, [x])
    pair = b.call(BUILD_TUPLE, [x, y])
    assert b.call(operator.getitem, [pair, b.const(1)]) is y
    assert b.call(operator.getitem, [pair, b.const(-2)]) is x
    assert ops_of(fn) == [("operator.neg", 1), ("a tuple display", 2)], dump(fn)


def test_fold_leaves_what_would_raise_to_run_time():
    fn, b, x = folding()
    b.call(operator.truediv, [b.const(1.0), b.const(0.0)])
    b.call(math.sqrt, [b.const(-1.0)])
    pair = b.call(BUILD_TUPLE, [x, x])
    b.call(operator.getitem, [pair, b.const(2)])  # IndexError where the user expects it
    assert ops_of(fn) == [("operator.truediv", 2), ("math.sqrt", 1), ("a tuple display", 2),
                          ("operator.getitem", 2)], dump(fn)


def test_fold_leaves_calls_on_values_keywords_and_other_types():
    fn, b, x = folding()
    b.call(operator.add, [x, b.const(1.0)])
    b.call(math.isclose, [b.const(1.0), b.const(1.001)], {"rel_tol": b.const(0.01)})
    b.call(operator.add, [b.const("a"), b.const("b")])
    assert ops_of(fn) == [("operator.add", 2), ("math.isclose", 3), ("operator.add", 2)], dump(fn)


# ----------------------------------------------------------------------------- activity analysis


def branches(x, y):
    a = x * y  # depends on x, reaches the output
    b = y * 2.0  # does not depend on x
    c = x > 0.0  # a comparison: no derivative flows through it
    d = np.sin(x)  # noqa: F841 -- depends on x, read by nothing
    e = a * np.floor(x)  # floor: no derivative either
    return a + b + c + e


def test_varied_values_depend_on_the_input_through_differentiable_ops():
    fn = primal_ir(branches, 1.0, 2.0)
    x = fn.body.params[0]
    varied = passes.varied_values(fn, [x], rules.differentiable)
    (a,), (b,), (c,), (d,), (e,) = (named(fn, h) for h in "abcde")
    floor = calls(fn, np.floor)[0].result
    assert {x, a, d, e} <= varied and fn.body.yields[0] in varied
    assert not {b, c, floor} & varied


def test_activity_is_what_is_varied_and_reaches_the_output():
    fn = primal_ir(branches, 1.0, 2.0)
    x, y = fn.body.params
    active = passes.activity(fn, [x], rules.differentiable)
    (a,), (b,), (c,), (d,) = (named(fn, h) for h in "abcd")
    assert {x, a, fn.body.yields[0]} <= active
    assert not {y, b, c, d} & active  # d is varied but dead; y and b do not depend on x


def test_activity_follows_loop_carried_values_to_a_fixpoint():
    def f(x, n):
        u = 0.0
        v = 0.0
        k = 1.0
        for _i in range(n):
            u = v  # varied from the second iteration on
            v = x * 2.0
            k = k * 2.0
        return u + k

    fn = primal_ir(f, 1.5, 3)
    x = fn.body.params[0]
    (loop,) = loops(fn)
    u, v, k = loop.results
    assert [r.hint for r in loop.results] == ["u", "v", "k"]
    assert {u, v} <= passes.varied_values(fn, [x], rules.differentiable)
    active = passes.activity(fn, [x], rules.differentiable)
    assert u in active and not {v, k} & active  # v's final value is read by nothing
    u_in, v_in, k_in = loop.carried(loop.body)
    assert v_in in active and not {u_in, k_in} & active  # the body reads the old v, not the old u


def test_activity_asks_which_callees_are_differentiable():
    fn = primal_ir(branches, 1.0, 2.0)
    x = fn.body.params[0]
    (a,), (d,) = named(fn, "a"), named(fn, "d")
    varied = passes.varied_values(fn, [x], lambda f: f is not np.sin and rules.differentiable(f))
    assert a in varied and d not in varied
    assert passes.activity(fn, [x], lambda f: False) == set()  # x reaches the output through no derivative


# ----------------------------------------------------------------------------- static shapes and dtypes


def test_shapes_of_elementwise_results_are_the_broadcast_of_the_operands():
    x, m, one = array("x"), array("M", 2), array("one", ones=(True,))
    fn, b = function(x, m, one)
    total = b.call(operator.add, [x, m])
    assert shapes.same(total.shape, (m.shape[0], x.shape[0])) and total.kind == 2 and total.dtype is F64
    spread = b.call(operator.add, [one, m])  # a size-1 axis takes the other operand's
    assert shapes.same(spread.shape, m.shape)
    scaled = b.call(np.multiply, [x, b.const(2.0)])
    assert shapes.same(scaled.shape, x.shape) and scaled.dtype is F64


def test_shapes_of_reductions_and_matrix_products():
    m, n = array("M", 2), array("N", 2)
    fn, b = function(m, n)
    assert b.call(np.sum, [m]).shape == ()
    assert shapes.same(b.call(np.sum, [m], {"axis": b.const(0)}).shape, (m.shape[1],))
    assert shapes.same(b.call(np.sum, [m], {"axis": b.const(1), "keepdims": b.const(True)}).shape,
                       (m.shape[0], 1))
    product = b.call(operator.matmul, [m, n])
    assert shapes.same(product.shape, (m.shape[0], n.shape[1])) and product.dtype is F64
    assert shapes.same(b.call(GetAttr("T"), [m]).shape, (m.shape[1], m.shape[0]))


def test_shapes_dtypes_of_comparisons_creations_and_sizes():
    x = array("x")
    fn, b = function(x)
    assert b.call(operator.gt, [x, b.const(0.5)]).dtype == shapes.MASK
    shape = b.call(GetAttr("shape"), [x])
    assert shape.dims is not None and shapes.same(shape.dims, x.shape)
    zeros = b.call(np.zeros, [shape])
    assert shapes.same(zeros.shape, x.shape) and zeros.dtype is F64 and zeros.kind == 1
    size = b.call(len, [x])
    assert size.integer and size.kind == SCALAR and size.shape == ()


def test_shapes_are_unknown_for_unknown_callees_arguments_and_dtypes():
    x, anything, small = array("x"), Value("a"), array("s", dtype=F32)
    fn, b = function(x, anything, small)
    user = b.call(lambda v: v, [x])
    assert (user.shape, user.dtype, user.kind) == (None, None, None)
    unknown = b.call(np.sin, [anything])
    assert unknown.shape is None and unknown.dtype is None and unknown.kind is None
    single = b.call(np.sin, [small])
    assert shapes.same(single.shape, small.shape) and single.dtype is None  # float32: not tracked
    assert b.call(np.zeros, [b.call(GetAttr("shape"), [x])], {"dtype": b.const(np.int64)}).dtype is None


# ----------------------------------------------------------------------------- float-ness of scalars


class CountingProducers(dict):
    """A producer map that counts how often a pass asks it."""

    lookups = 0

    def get(self, key: Any, default: Any = None) -> Any:
        self.lookups += 1
        return super().get(key, default)


def if_chain(n: int) -> Callable:
    """A function of ``n`` ``if``/``else`` statements, each joining the previous one's result."""
    lines = ["def chain(x):", "    s = x * 1.5"]
    for k in range(n):
        lines += [f"    if s > {k / n}:", "        s = s * 0.5 + x", "    else:", "        s = s - x"]
    source = "\n".join(lines + ["    return s"]) + "\n"
    filename = f"<if chain of {n}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict = {}
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102 -- the test's own source
    return namespace["chain"]


def test_surely_float_visits_each_value_of_an_if_chain_once():
    # every if joins both branches, which both read the previous result: a walk that does not
    # remember what it has seen visits 2**n paths
    fn_ir = primal_ir(if_chain(16), 0.5)
    producers = CountingProducers(ir.definitions(fn_ir.body))
    result = fn_ir.body.yields[0]
    assert passes.surely_float(result, producers)
    assert producers.lookups < 10 * len(producers)


# ----------------------------------------------------------------------------- linear in the function's size
# The passes below are asked about every value of a chain as long as the function; what each
# asks (producer lookups, nodes walked, names tried) must grow like the chain, not like its
# square, and no walk along the chain may recurse once per value (Python's recursion limit).

CHAIN = 1500  # values in a long chain: well past the default recursion limit of 1000


def shallow_recursion(limit: int = 200) -> Any:
    """A context in which Python recurses at most ``limit`` frames deeper than the test."""
    import contextlib
    import inspect
    import sys

    @contextlib.contextmanager
    def context():
        kept = sys.getrecursionlimit()
        sys.setrecursionlimit(len(inspect.stack(0)) + limit)
        try:
            yield
        finally:
            sys.setrecursionlimit(kept)

    return context()


def float_chain(n: int) -> tuple[Function, list[Value]]:
    """IR of ``s = x; s = s * 0.5 + x`` ``n`` times on a Python float ``x``: each value reads the last."""
    x = number("x")
    fn, b = function(x)
    values, s = [], x
    for _ in range(n):
        s = call(b, operator.add, call(b, operator.mul, s, b.const(0.5)), x)
        values.append(s)
    fn.body.yields = [s]
    return fn, values


def test_surely_float_walks_a_chain_longer_than_the_recursion_limit():
    fn_ir, values = float_chain(CHAIN)
    producers = ir.definitions(fn_ir.body)
    with shallow_recursion():
        assert passes.surely_float(values[-1], producers)


def test_surely_float_with_one_memo_asks_about_each_value_of_a_chain_a_bounded_number_of_times():
    lookups = {}
    for n in (200, 400):
        fn_ir, values = float_chain(n)
        producers, memo = CountingProducers(ir.definitions(fn_ir.body)), {}
        assert all(passes.surely_float(v, producers, memo) for v in values)
        lookups[n] = producers.lookups
    assert lookups[400] <= 2 * lookups[200] + 10 and lookups[400] <= 4 * 2 * 400


def update_chain(n: int) -> tuple[Function, list[Value]]:
    """IR of ``acc = np.zeros(x.shape)`` then ``acc += x`` ``n`` times (each update returns ``acc``)."""
    x = array("x")
    fn, b = function(x)
    acc = call(b, np.zeros, call(b, GetAttr("shape"), x))
    values = [acc]
    for _ in range(n):
        acc = call(b, operator.iadd, acc, x, effect=True)
        values.append(acc)
    fn.body.yields = [acc]
    return fn, values


def test_new_array_follows_a_chain_of_updates_longer_than_the_recursion_limit():
    fn_ir, values = update_chain(CHAIN)
    producers = ir.definitions(fn_ir.body)
    with shallow_recursion():
        assert passes.new_array(values[-1], producers)
        assert passes.fresh_array(values[-1], producers)


def test_new_array_with_one_memo_walks_a_chain_of_updates_once():
    fn_ir, values = update_chain(400)
    producers, memo = CountingProducers(ir.definitions(fn_ir.body)), {}
    assert all(passes.new_array(v, producers, memo) for v in reversed(values))
    assert producers.lookups <= len(values) + 1  # the first question walks the chain; the others are remembered


def adjoint_sums(n: int) -> Function:
    """IR of a backward sweep adding ``n`` contributions into one fresh array, as ``dx_2 = dx + part``."""
    x = array("x")
    fn, b = function(x)
    b.adjoint = True
    acc = call(b, np.zeros, call(b, GetAttr("shape"), x))
    for _ in range(n):
        acc = call(b, operator.add, acc, call(b, np.sin, x))
    fn.body.yields = [acc]
    return fn


def test_accumulate_in_place_asks_about_a_chain_of_sums_linearly(monkeypatch):
    counted = []

    def counting_definitions(region: Region) -> dict:
        counted.append(CountingProducers(ir.definitions(region)))
        return counted[-1]

    monkeypatch.setattr(optimize, "definitions", counting_definitions)
    lookups = {}
    for n in (300, 600):
        fn_ir = adjoint_sums(n)
        optimize.accumulate_in_place(fn_ir)
        assert sum(calls_of(fn_ir, operator.iadd)) == n  # every sum went in place
        lookups[n] = counted[-1].lookups
        ir.verify(fn_ir)
    assert lookups[600] <= 2 * lookups[300] + 10


def calls_of(fn_ir: Function, callee: Any) -> list[int]:
    """One 1 per call of ``callee`` in ``fn_ir``."""
    return [1 for op, _ in ir.walk(fn_ir.body) if op.kind is OpKind.CALL and op.fn is callee]


def straight_line(n: int) -> Callable:
    """A function of ``n`` assignments on arrays, each reading the one before."""
    lines = ["def chain(x):", "    a = x * 1.0"]
    lines += ["    a = np.sin(a) * x" if k % 2 else "    a = a + np.tanh(x)" for k in range(n)]
    source = "\n".join(lines + ["    return np.sum(a)"]) + "\n"
    filename = f"<straight line of {n}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict = {"np": np}
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102 -- the test's own source
    return namespace["chain"]


def test_names_read_after_each_statement_walk_the_function_once(monkeypatch):
    import ast

    walked = []
    walk = ast.walk

    def counting_walk(node: ast.AST) -> Any:
        for sub in walk(node):
            walked.append(1)
            yield sub

    visits = {}
    for n in (100, 200):
        parsed = frontend.parse_function(straight_line(n))
        statements = parsed.node.body
        monkeypatch.setattr(frontend.ast, "walk", counting_walk)
        walked.clear()
        reads = [parsed.names_read_after(stmt) for stmt in statements]
        monkeypatch.setattr(frontend.ast, "walk", walk)
        visits[n] = len(walked)
        assert reads[0] == {"a", "x", "np"} and reads[-1] == set()
    assert visits[200] <= 2 * visits[100] + 10


def test_fresh_names_of_one_base_try_a_bounded_number_of_candidates():
    class CountingSet(set):
        tried = 0

        def __contains__(self, name: object) -> bool:
            self.tried += 1
            return super().__contains__(name)

    from symdiff import codegen

    gen = codegen.Codegen(Function("f", Region()))
    gen.taken = CountingSet(gen.taken)
    names = [gen.fresh("da") for _ in range(500)]
    assert names[:3] == ["da", "da_1", "da_2"] and len(set(names)) == 500
    assert gen.taken.tried <= 2 * 500
