"""What is known of the values a loop walks: ``for row in X`` gives ``row`` the abstract value
of ``X[i]`` (its shape, rank and dtype), as ``enumerate``, ``zip``, ``reversed`` and a loop
that breaks do; a global or closure array compiled in carries its rank and dtype. The
gradient of a loop over rows is then the gradient of the loop over indices -- the same
deferred sums, no runtime helper deciding shapes -- and stays right for every shape the
specialisation admits: size-1 axes, float32 and no rows at all."""

from __future__ import annotations

import operator
import re
from typing import Any, Callable

import numpy as np
import pytest
import test_desugar as td
import test_passes_ir as pir
from fd import check_grad, numerical_grad

import symdiff
from symdiff import api, ir, lower, passes, runtime, shapes
from symdiff.ir import RANGE, SCALAR, OpKind

F64 = np.dtype(np.float64)
RNG = np.random.default_rng(7)
SHAPE_HELPERS = (runtime.unbroadcast, runtime.matmul_vjp, runtime.grad_like)


@pytest.fixture
def every_pass_on(monkeypatch):
    """The IR tests ask what the compiler makes with its passes on, whatever SYMDIFF_OPTIMIZE says."""
    monkeypatch.setattr(passes, "DISABLED", set())


def loop_targets(fn_ir: ir.Function) -> list[ir.Value]:
    """The loop variable of every ``for`` op of ``fn_ir``, in program order."""
    return [op.target for op in pir.loops(fn_ir) if op.kind is OpKind.FOR]


def param(fn_ir: ir.Function, name: str) -> ir.Value:
    return next(p for p in fn_ir.body.params if p.hint == name)


def pushed(fn_ir: ir.Function) -> list[ir.Op | None]:
    """The op computing each value the forward sweep pushes onto a stack (None: a parameter)."""
    defs = ir.definitions(fn_ir.body)
    return [defs.get(op.args[1]) for op, _ in ir.walk(fn_ir.body)
            if op.kind is OpKind.CALL and op.fn == ir.Method("append") and op.args[0].hint.endswith("_stack")]


def helpers_imported(g: Callable) -> set[str]:
    """The runtime helpers the generated source of ``g`` (after a call) imports."""
    found = re.search(r"from symdiff\.runtime import (.*)", g.source)
    return set(found.group(1).split(", ")) if found else set()


# ----------------------------------------------------------------------------- the functions


def rnn_rows(Wx, Wh, xs):
    h = np.zeros(Wh.shape[0])
    for x_t in xs:
        h = np.tanh(Wh @ h + Wx @ x_t)
    return np.sum(h)


def rnn_indexed(Wx, Wh, xs):
    h = np.zeros(Wh.shape[0])
    for t in range(xs.shape[0]):
        h = np.tanh(Wh @ h + Wx @ xs[t])
    return np.sum(h)


def rows(W, xs):
    h = np.zeros(W.shape[0])
    for x in xs:
        h = np.tanh(W @ x + h)
    return np.sum(h ** 2)


def enumerated(W, xs):
    h = np.zeros(W.shape[0])
    for t, x in enumerate(xs):
        h = np.tanh(W @ x + h * t)
    return np.sum(h ** 2)


def zipped(W, xs):
    h = np.zeros(W.shape[0])
    for x, y in zip(xs, xs[::-1]):
        h = np.tanh(W @ x + h) * np.sum(y)
    return np.sum(h ** 2)


def counted(W, xs):
    h = np.zeros(W.shape[0])
    for t, x in zip(range(xs.shape[0]), xs):
        h = np.tanh(W @ x + h) * (t + 1)
    return np.sum(h ** 2)


def reversed_rows(W, xs):
    h = np.zeros(W.shape[0])
    for x in reversed(xs):
        h = np.tanh(W @ x + h)
    return np.sum(h ** 2)


def outer_products(W, xs):
    total = 0.0
    for x in xs:
        total = total + np.sum(np.outer(x, W @ x))
    return total


def broadcast_rows(W, xs):
    h = W * 0.5
    for x in xs:  # a row of one column (xs of shape (n, 1)) is broadcast across W's
        h = np.tanh(W * x + h)
    return np.sum(h ** 2)


def rows_until_large(W, xs):
    h = np.zeros(W.shape[0])
    for x in xs:
        if np.sum(x) > 100.0:
            break
        h = np.tanh(W @ x + h)
    return np.sum(h ** 2)


def elements(a, xs):
    s = 0.0
    for x in xs:
        s = s + np.sum(np.sin(a * x)) * x
    return s * np.sum(a)


def enumerated_elements(a, xs):
    s = 0.0
    for t, x in enumerate(reversed(xs)):
        s = s + np.sum(np.cos(a * x)) * (t + x)
    return s


OVER_ROWS = [rows, enumerated, zipped, counted, reversed_rows, outer_products, broadcast_rows, rows_until_large]
OVER_ELEMENTS = [elements, enumerated_elements]
# rows x columns of the array walked: several, one, none; a column of one
ROW_SHAPES = [(5, 3), (1, 3), (0, 3), (4, 1), (1, 1), (0, 1)]


def rows_case(f: Callable, shape: tuple, dtype: Any) -> tuple:
    T, D = shape
    W = RNG.normal(size=(D, D) if f is outer_products else (4, 3) if f is broadcast_rows else (4, D)).astype(dtype)
    return W, RNG.normal(size=(T, D)).astype(dtype)


def elements_case(shape: tuple, dtype: Any) -> tuple:
    T, D = shape
    return RNG.normal(size=D).astype(dtype), RNG.normal(size=T).astype(dtype)


# ----------------------------------------------------------------------------- facts on IR


def test_the_loop_variable_over_a_matrix_is_a_row_of_its_shape_and_dtype():
    fn_ir = pir.primal_ir(rows, np.ones((4, 3)), np.ones((5, 3)))
    row, = loop_targets(fn_ir)
    xs = param(fn_ir, "xs")
    assert row.kind == 1 and shapes.same(row.shape, xs.shape[1:]) and row.dtype is F64, pir.dump(fn_ir)


def test_the_loop_variable_over_a_stack_of_matrices_is_a_matrix():
    def f(xs):
        s = 0.0
        for m in xs:
            s = s + np.sum(m @ m)
        return s

    fn_ir = pir.primal_ir(f, np.ones((2, 3, 3)))
    m, = loop_targets(fn_ir)
    assert m.kind == 2 and shapes.same(m.shape, param(fn_ir, "xs").shape[1:]) and m.dtype is F64


def test_the_loop_variable_over_a_vector_is_what_an_item_of_it_is():
    fn_ir = pir.primal_ir(elements, np.ones(3), np.ones(5))
    e, = loop_targets(fn_ir)
    assert e.shape == () and e.kind is None and e.dtype is F64  # a NumPy scalar, as xs[i]


def test_the_loop_variable_keeps_the_size_1_axes_of_the_rows():
    column = pir.primal_ir(rows, np.ones((4, 1)), np.ones((5, 1)))
    assert loop_targets(column)[0].shape == (1,)
    single = pir.primal_ir(rows, np.ones((4, 3)), np.ones((1, 3)))
    row, = loop_targets(single)
    assert shapes.same(row.shape, param(single, "xs").shape[1:]) and row.shape[0] != 1


def test_the_loop_variable_over_float32_rows_has_their_dtype():
    fn_ir = pir.primal_ir(rows, np.ones((4, 3), np.float32), np.ones((5, 3), np.float32))
    row, = loop_targets(fn_ir)
    indexed = pir.primal_ir(rnn_indexed, *(np.ones(s, np.float32) for s in ((4, 3), (4, 4), (5, 3))))
    item, = (op.result for op in pir.calls(indexed, operator.getitem) if op.result.kind == 1)
    assert row.dtype is item.dtype is shapes.MASK  # float32: no wider than float64, not float64


def test_the_row_of_a_loop_that_breaks_has_the_shape_of_a_row():
    fn_ir = pir.primal_ir(rows_until_large, np.ones((4, 3)), np.ones((5, 3)))
    (loop,) = pir.loops(fn_ir)
    assert loop.kind is OpKind.WHILE
    row = next(op.result for op, _ in ir.walk(loop.body) if op.kind is OpKind.CALL and op.fn is operator.getitem
               and op.args[0] is param(fn_ir, "xs"))
    assert row.kind == 1 and shapes.same(row.shape, param(fn_ir, "xs").shape[1:]) and row.dtype is F64


def test_a_loop_over_a_value_of_unknown_rank_knows_nothing_of_its_items():
    fn_ir = lower.lower(pir.frontend.parse_function(rows), [None, None])
    row, = loop_targets(fn_ir)
    assert row.aval == ir.Abstract()


def test_the_counter_zipped_with_rows_is_the_index_not_an_item_of_a_range():
    fn_ir = pir.primal_ir(counted, np.ones((4, 3)), np.ones((5, 3)))
    assert not [op for op in pir.calls(fn_ir, operator.getitem) if op.args[0].kind == RANGE], pir.dump(fn_ir)
    t, = loop_targets(fn_ir)
    assert t.kind == SCALAR and t.integer


def test_the_item_of_a_zipped_or_reversed_range_is_written_as_the_index():
    td.same_body(td.index_loops("""
        def f(n, xs):
            for t, x in zip(range(n), xs):
                s = x * t
            for i in reversed(range(n)):
                s = s * i
    """), """
        _seq = range(n)
        for _k in range(min(len(_seq), len(xs))):
            t, x = _k, xs[_k]
            s = x * t
        _seq_1 = range(n)
        for _k_1 in range(len(_seq_1) - 1, -1, -1):
            i = _k_1
            s = s * i
    """)


@pytest.mark.usefixtures("every_pass_on")
def test_the_backward_sweep_over_rows_undoes_no_broadcast_at_run_time():
    grad_ir = pir.gradient_ir(rnn_rows, np.ones((4, 3)), np.ones((4, 4)), np.ones((5, 3)), argnums=(0, 1))
    used = {op.fn for op, _ in ir.walk(grad_ir.body) if op.kind is OpKind.CALL}
    assert not used & {runtime.unbroadcast, runtime.matmul_vjp}, pir.dump(grad_ir)


@pytest.mark.usefixtures("every_pass_on")
def test_the_loop_over_rows_stacks_no_product_only_for_its_shape():
    grad_ir = pir.gradient_ir(rnn_rows, np.ones((4, 3)), np.ones((4, 4)), np.ones((5, 3)), argnums=(0, 1))
    producers = [op.fn for op in pushed(grad_ir) if op is not None]
    assert operator.matmul not in producers and np.tanh in producers, pir.dump(grad_ir)


def test_a_global_array_has_its_rank_shape_and_dtype():
    fn_ir = pir.primal_ir(through_global, np.ones(3))
    w, = (op.result for op, _ in ir.walk(fn_ir.body) if op.kind is OpKind.CONST and op.fn is WEIGHTS)
    assert (w.kind, w.shape, w.dtype) == (2, (4, 3), F64)


@pytest.mark.usefixtures("every_pass_on")
def test_the_gradient_through_a_global_matrix_needs_no_runtime_product_rule():
    grad_ir = pir.gradient_ir(through_global, np.ones(3))
    assert not pir.calls(grad_ir, runtime.matmul_vjp), pir.dump(grad_ir)


@pytest.mark.usefixtures("every_pass_on")
def test_the_gradient_through_a_closure_matrix_needs_no_runtime_product_rule():
    M = np.arange(6.0).reshape(2, 3)

    def f(x):
        return np.sum(np.tanh(M @ x))

    grad_ir = pir.gradient_ir(f, np.ones(3))
    assert not pir.calls(grad_ir, runtime.matmul_vjp), pir.dump(grad_ir)
    check_grad(f, np.linspace(-1.0, 1.0, 3))


def scaled_by_a_numpy_number(x):
    return np.sum(np.tanh(RATE * (WEIGHTS @ x)) ** 2)


def test_a_global_numpy_number_is_a_number_of_its_dtype():
    fn_ir = pir.primal_ir(scaled_by_a_numpy_number, np.ones(3))
    rate, = (op.result for op, _ in ir.walk(fn_ir.body) if op.kind is OpKind.CONST and op.fn is RATE)
    assert rate.shape == () and rate.dtype is F64
    product, = (op.result for op in pir.calls(fn_ir, operator.mul))
    assert product.shape == (4,) and product.dtype is F64


@pytest.mark.usefixtures("every_pass_on")
def test_the_gradient_through_a_global_numpy_number_undoes_no_broadcast_at_run_time():
    grad_ir = pir.gradient_ir(scaled_by_a_numpy_number, np.ones(3))
    assert not pir.calls(grad_ir, runtime.unbroadcast), pir.dump(grad_ir)
    check_grad(scaled_by_a_numpy_number, np.linspace(-1.0, 1.0, 3))


def test_an_inlined_helper_returns_what_its_body_computes():
    fn_ir = pir.primal_ir(calls_a_helper, np.ones(3))
    total, = (op.args[0] for op in pir.calls(fn_ir, np.sum))
    assert total.kind == 1 and total.shape == (4,) and total.dtype is F64, pir.dump(fn_ir)


def made_of_identities(x, n):
    return np.sum(np.eye(3) + np.identity(3) * x + np.eye(2, 3, 1) @ x + np.arange(n) + np.eye(3, dtype=int))


def test_identity_matrices_and_ranges_are_known_matrices_and_vectors():
    fn_ir = pir.primal_ir(made_of_identities, np.ones((3, 3)), 3)
    eye, eye_rect, eye_int = pir.calls(fn_ir, np.eye)
    (identity,), (arange,) = pir.calls(fn_ir, np.identity), pir.calls(fn_ir, np.arange)
    for op in (eye, identity):
        assert op.result.kind == 2 and op.result.shape == (3, 3) and op.result.dtype is F64, pir.dump(fn_ir)
    assert eye_rect.result.kind == 2 and eye_rect.result.shape == (2, 3) and eye_rect.result.dtype is F64
    assert eye_int.result.kind == 2 and eye_int.result.dtype is not F64  # (its dtype= is int)
    assert arange.result.kind == 1, pir.dump(fn_ir)


def cholesky_of_shifted_gram(x):
    return np.sum(np.linalg.cholesky(x @ x.T + 3.0 * np.eye(3)) ** 2)


def test_forward_mode_through_a_matrix_plus_an_identity_knows_its_rank():
    x, t = RNG.normal(size=(3, 3)), RNG.normal(size=(3, 3))
    _, tangent = symdiff.jvp(cholesky_of_shifted_gram, (x,), (t,))
    assert tangent == pytest.approx(np.sum(symdiff.grad(cholesky_of_shifted_gram)(x) * t), rel=1e-10)
    eps = 1e-6
    g = symdiff.grad(cholesky_of_shifted_gram)
    np.testing.assert_allclose(symdiff.hvp(cholesky_of_shifted_gram)(x, t),
                               (g(x + eps * t) - g(x - eps * t)) / (2 * eps), rtol=1e-5, atol=1e-7)


# ----------------------------------------------------------------------------- generated code


@pytest.mark.optimized_source
def test_the_gradient_over_rows_is_the_gradient_over_indices():
    args = (RNG.normal(size=(6, 3)), RNG.normal(size=(6, 6)), RNG.normal(size=(5, 3)))
    by_rows, by_index = symdiff.grad(rnn_rows, argnums=(0, 1)), symdiff.grad(rnn_indexed, argnums=(0, 1))
    for got, want in zip(by_rows(*args), by_index(*args)):
        np.testing.assert_allclose(got, want, rtol=1e-12)
    assert helpers_imported(by_rows) == helpers_imported(by_index) == {"stacked", "sum_of_outer"}
    assert "_stack.append(matmul" not in by_rows.source and "matmul" not in by_rows.source


@pytest.mark.parametrize("rows", [
    [RNG.normal(size=4) for _ in range(7)],
    [RNG.normal(size=4).astype(np.float32), RNG.normal(size=4)],  # promoted as np.vstack promotes
    [RNG.normal(size=(2, 3)), RNG.normal(size=(1, 3))],  # matrices: their rows one after another
    [np.ones(0), np.ones(0)],
    [RNG.normal(size=5)],
], ids=["vectors", "mixed dtypes", "matrices", "empty vectors", "one row"])
def test_stacked_rows_are_what_np_vstack_makes_of_them(rows):
    got, want = runtime.stacked(rows), np.vstack(rows)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


def test_stacking_vectors_of_different_lengths_raises_as_np_vstack_does():
    rows = [np.ones(3), np.ones(2), np.ones(4)]  # 9 elements: as many as three rows of three
    with pytest.raises(ValueError):
        np.vstack(rows)
    with pytest.raises(ValueError):
        runtime.stacked(rows)


# ----------------------------------------------------------------------------- gradients


def through_global(x):
    return np.sum(np.tanh(WEIGHTS @ x) ** 2)


def helper_layer(x):
    return np.tanh(WEIGHTS @ x)


def calls_a_helper(x):
    return np.sum(helper_layer(x) ** 2)


WEIGHTS = np.arange(12.0).reshape(4, 3) / 10.0
RATE = np.float64(0.7)


def close_to_differences(f: Callable, args: tuple) -> None:
    """symdiff's gradient in every argument, of the arguments' dtype and shape, against central
    differences at the arguments in float64 (of float32 arguments: to float32's precision)."""
    if all(a.dtype == F64 for a in args):
        check_grad(f, *args)
        return
    got = symdiff.grad(f, argnums=tuple(range(len(args))))(*args)
    wide = [a.astype(np.float64) for a in args]
    for n, (g, a) in enumerate(zip(got, args)):
        assert g.shape == a.shape and g.dtype == a.dtype
        np.testing.assert_allclose(g, numerical_grad(f, wide, n), rtol=1e-3, atol=1e-3, err_msg=f"argument {n}")


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("shape", ROW_SHAPES, ids=[f"{t}x{d}" for t, d in ROW_SHAPES])
@pytest.mark.parametrize("f", OVER_ROWS, ids=[f.__name__ for f in OVER_ROWS])
def test_gradients_of_loops_over_rows_match_finite_differences(f, shape, dtype):
    close_to_differences(f, rows_case(f, shape, dtype))


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("shape", ROW_SHAPES, ids=[f"{t}x{d}" for t, d in ROW_SHAPES])
@pytest.mark.parametrize("f", OVER_ELEMENTS, ids=[f.__name__ for f in OVER_ELEMENTS])
def test_gradients_of_loops_over_elements_match_finite_differences(f, shape, dtype):
    close_to_differences(f, elements_case(shape, dtype))


CONSTANT_WITHOUT_ROWS = [f for f in OVER_ROWS + OVER_ELEMENTS if f is not broadcast_rows]


@pytest.mark.parametrize("f", CONSTANT_WITHOUT_ROWS, ids=[f.__name__ for f in CONSTANT_WITHOUT_ROWS])
def test_a_loop_over_no_rows_has_zero_gradients(f):
    args = rows_case(f, (0, 3), np.float64) if f in OVER_ROWS else elements_case((0, 3), np.float64)
    for g, a in zip(symdiff.grad(f, argnums=(0, 1))(*args), args):
        assert g.shape == a.shape and g.dtype == a.dtype
        np.testing.assert_array_equal(g, np.zeros_like(a))


def test_gradients_through_a_global_matrix_and_a_helper_match_finite_differences():
    x = np.linspace(-1.0, 1.0, 3)
    check_grad(through_global, x)
    check_grad(calls_a_helper, x)


def test_reshaping_a_global_array_in_place_recompiles_the_gradient():
    """The gradient assumed the global's rank: reshaped in place (the same object), it is
    compiled again for the new shape instead of running code made for the old one."""
    g = symdiff.grad(through_global)
    np.testing.assert_allclose(g(np.full(3, 0.3)), numerical_grad(through_global, [np.full(3, 0.3)], 0), rtol=1e-6)
    saved = WEIGHTS.shape
    try:
        WEIGHTS.shape = (12,)  # the vector product of the same key's argument
        x = np.full(12, 0.3)
        np.testing.assert_allclose(g(x), numerical_grad(through_global, [x], 0), rtol=1e-6, atol=1e-8)
    finally:
        WEIGHTS.shape = saved


def test_the_specialisation_for_a_global_array_compares_its_shape_and_dtype():
    g = symdiff.grad(through_global)
    g(np.ones(3))
    key = api._guard_key(np.ones(3)),
    (_, _, obj, facts), = g._symdiff.reads[key]
    assert obj is WEIGHTS and facts == ((4, 3), F64)


# ----------------------------------------------------------------------------- what helpers return


def layer_or_other(W, h, x):
    z = W @ h + x
    if np.sum(z) > 0.0:
        return np.tanh(z), np.sum(z), (z, 1.0)
    return np.sin(z), np.sum(z ** 2), (2.0 * z, 1.0)


def steps_through_a_branching_helper(W, h, xs):
    total = 0.0
    for x in xs:
        h, s, (z, one) = layer_or_other(W, h, x)
        total = total + s * one + np.sum(z)
    return np.sum(h) + total


def whole_tuple_of_a_branching_helper(W, h, x):
    out = layer_or_other(W, h, x)
    return np.sum(np.stack(out[:1]) ** 2) + out[1] * len(out)


def test_a_helper_returning_a_tuple_from_either_arm_of_an_if_keeps_each_items_facts():
    fn_ir = pir.primal_ir(steps_through_a_branching_helper, np.ones((3, 3)), np.ones(3), np.ones((4, 3)))
    assert not pir.calls(fn_ir, runtime.list_index), pir.dump(fn_ir)  # the items are not looked up at run time
    branch, = (op for op, _ in ir.walk(fn_ir.body) if op.kind is OpKind.IF)
    vectors = [r for r in branch.results if r.kind == 1]
    assert len(vectors) == 2 and all(r.dtype is F64 and r.shape is not None for r in vectors), pir.dump(fn_ir)
    total, = (r for r in branch.results if r.shape == ())
    assert total.dtype is F64
    loop, = pir.loops(fn_ir)
    h, = (p for p in loop.carried(loop.body) if p.hint == "h")
    assert h.kind == 1 and h.dtype is F64, pir.dump(fn_ir)  # carried with its facts, the loop's too


def test_an_if_result_keeps_the_dtype_and_int_ness_both_arms_give_it():
    def f(x, y):
        if np.sum(x) > 0.0:
            n, v = len(x), np.sin(x)
        else:
            n, v = len(y), x * 2.0
        return np.sum(v) * n

    fn_ir = pir.primal_ir(f, np.ones(3), np.ones(2))
    branch, = (op for op, _ in ir.walk(fn_ir.body) if op.kind is OpKind.IF)
    n, v = branch.results
    assert n.integer and n.kind == SCALAR and v.dtype is F64 and v.kind == 1


@pytest.mark.parametrize("f", [steps_through_a_branching_helper, whole_tuple_of_a_branching_helper])
@pytest.mark.parametrize("sign", [1.0, -1.0], ids=["then", "else"])
def test_gradients_through_a_helper_returning_from_either_arm_match_finite_differences(f, sign):
    W, h = RNG.normal(size=(3, 3)) * 0.3, np.array([0.2, -0.1, 0.4])
    xs = sign * (np.abs(RNG.normal(size=(4, 3))) + 2.0)  # the sum of z keeps one sign
    check_grad(f, W, h, xs if f is steps_through_a_branching_helper else xs[0])
