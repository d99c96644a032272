"""Fill loops (``y[i] = ...`` into an array the function made) and scalar code on elements
(``s = x[0]``): what is known of ints and elements, the backward sweep reading indices and
elements again instead of taping them, and stores made in place where the array's old value is
dead. The gradients are checked against finite differences (which also check that the
caller's arrays are left as they were); the generated code for the work it does per iteration."""

from __future__ import annotations

import ast
import linecache
import math
import operator
import re
from typing import Callable

import numpy as np
import pytest
from fd import check_grad
from jvpcheck import check_jvp
from test_passes_ir import after, calls, dump, gradient_ir, primal_ir

import symdiff
from symdiff import ir, optimize, passes, runtime
from symdiff.ir import SCALAR, SEQUENCE, Method, OpKind

RNG = np.random.default_rng(3)
VECTOR = RNG.normal(size=7)
MATRIX = RNG.normal(size=(3, 4))


@pytest.fixture
def every_pass_on(monkeypatch):
    """The passes behave the same whatever SYMDIFF_OPTIMIZE says (IR tests run them themselves)."""
    monkeypatch.setattr(passes, "DISABLED", set())


# ----------------------------------------------------------------------------- functions


def stencil(x):
    n = x.shape[0]
    y = np.zeros(n)
    for i in range(1, n - 1):
        y[i] = 0.25 * x[i - 1] + 0.5 * x[i] + 0.25 * x[i + 1]
    return np.sum(y * y)


def fill_matrix(x):
    n, m = x.shape
    y = np.zeros((n, m))
    for i in range(n):
        for j in range(1, m):
            y[i, j] = x[i, j] * x[i, j - 1] + 0.5 * y[i, j - 1]
    return np.sum(y * y)


def fill_slices(x):
    n = len(x)
    y = np.zeros(n + 1)
    for i in range(0, n - 1, 2):
        y[i:i + 2] = x[i:i + 2] * x[i]
    return np.sum(y ** 2)


def fill_a_constant_slice(x):
    y = np.zeros(len(x))
    s = 0.0
    for i in range(3):
        y[1:3] = x[1:3] * x[i]  # (the backward sweep reads dy[1:3], a view, before zeroing it)
        s = s + np.sum(y * y)
    return s


def fill_rows(x):
    y = np.zeros(x.shape)
    for i in range(x.shape[0]):
        y[i, :] = x[i] * 2.0 + x[i - 1]
    return np.sum(y * x)


def fill_strided(x):
    n = len(x)
    y = np.ones(n)
    for i in range(0, n, 3):
        y[i] = math.sin(x[i]) * x[n - 1 - i]
    return np.sum(y * x)


def recurrence(x):
    n = len(x)
    y = np.zeros(n)
    y[0] = x[0]
    for i in range(1, n):
        y[i] = y[i - 1] * 0.5 + x[i]
    return np.sum(y * y)


def reads_what_it_wrote(x):
    n = len(x)
    y = np.zeros(n + 1)
    for i in range(n):
        y[i] = x[i] * 2.0
        t = y[i] * y[i]
        y[i + 1] = t + x[i]  # overwritten by the next iteration's first store
    return np.sum(y * y)


def two_names_one_array(x):
    y = np.zeros(len(x))
    z = y
    for i in range(len(x)):
        y[i] = x[i] * 3.0
    return np.sum(z * y)


def writes_into_the_argument(x):
    y = x  # the caller's array: the gradient must not write into it
    for i in range(1, len(x)):
        y[i] = y[i - 1] * x[i]
    return np.sum(y)


def writes_into_a_copy_of_the_argument(x):
    y = x.copy()
    for i in range(1, len(x)):
        y[i] = y[i] * y[i - 1]
    return np.sum(y * x)


def reads_the_whole_array_each_iteration(x):
    y = np.zeros(len(x))
    s = 0.0
    for i in range(len(x)):
        y[i] = x[i] * x[i]
        s = s + np.dot(y, x)  # the backward sweep needs y as it was at each iteration
    return s


def keeps_old_versions(x):
    y = np.zeros(len(x))
    ys = []
    for i in range(len(x)):
        y[i] = x[i]
        ys.append(y.copy())  # (a copy of its own: y's old value is still dead)
    return np.sum(np.stack(ys) * 2.0) + np.sum(y * y)


def stores_under_a_branch(x):
    y = np.zeros(len(x))
    for i in range(len(x)):
        if x[i] > 0:
            y[i] = x[i] * x[i]
        else:
            y[i] = -x[i]
    return np.sum(y * x)


def stores_in_a_while_loop(x):
    y = np.zeros(len(x))
    i = 0
    while i < len(x):
        y[i] = x[i] * 2.0
        i = i + 1
    return np.sum(y * y)


def stores_after_the_loop(x):
    y = np.zeros(len(x))
    for i in range(len(x)):
        y[i] = x[i] * 2.0
    y[0] = 5.0
    w = y * x
    y[1] = w[0]
    return np.sum(w * y)


def reads_an_old_version_after_a_store(x):
    y = np.zeros(len(x))
    y[0] = x[0]
    s = np.dot(y, x)  # its derivative in x is y as it is here, before the next store
    y[1] = x[1] * s
    return np.sum(y * x)


def loop_in_a_loop_on_the_argument(x):
    y = x
    for k in range(2):
        for i in range(len(x)):
            y[i] = y[i] * 0.5 + x[i] * k
    return np.sum(y * y)


def scalar_code_on_elements(x):
    s = x[0]
    t = x[1]
    return math.cos(s) * t + s * t * t + np.sin(t) + abs(s - t) + t ** 3


def scalar_loop_on_an_element(x):
    s = 0.0
    for i in range(1000):
        s = s + math.sin(x[0] * i) * 0.001
    return s


def branches_and_kinks_on_elements(x):
    s = 0.0
    for i in range(len(x)):
        xi = x[i]
        if xi > 0:
            s = s + xi * xi
        else:
            s = s + 0.5 * xi
        s = s + max(xi, 0.1) * min(xi, 0.3 * i)
    return s


def elements_at_constant_positions(x):
    a = x[0]
    b = x[2]
    c = x[-1]  # (the last element: maybe x[2] itself, so it is added, not assigned)
    d = x[0]  # (x[0] again: added to what x[0] has)
    return a * b + math.sin(c) * b + d * d * a


def sums_on_fixed_elements(x):
    s = 0.0
    k = len(x) - 1
    for i in range(5):
        s = s + math.sin(x[0] * i) * x[k] + x[0] * x[1]
    return s


def fixed_element_and_the_whole_array(x):
    s = 0.0
    for i in range(4):
        s = s + x[1] * i + np.sum(x * s)  # x is read whole too: its cotangent is an array each step
    return s


FILL_LOOPS = [(stencil, VECTOR), (fill_matrix, MATRIX), (fill_slices, VECTOR), (fill_a_constant_slice, VECTOR),
              (fill_rows, MATRIX), (fill_strided, VECTOR), (recurrence, VECTOR), (reads_what_it_wrote, VECTOR),
              (two_names_one_array, VECTOR), (writes_into_the_argument, VECTOR + 2.0),
              (writes_into_a_copy_of_the_argument, VECTOR), (reads_the_whole_array_each_iteration, VECTOR),
              (keeps_old_versions, VECTOR), (stores_under_a_branch, VECTOR),
              (stores_in_a_while_loop, VECTOR), (stores_after_the_loop, VECTOR),
              (reads_an_old_version_after_a_store, VECTOR), (loop_in_a_loop_on_the_argument, VECTOR),
              (scalar_code_on_elements, VECTOR), (scalar_loop_on_an_element, np.array([0.3, 1.0])),
              (branches_and_kinks_on_elements, VECTOR), (elements_at_constant_positions, VECTOR),
              (elements_at_constant_positions, VECTOR[:3]), (sums_on_fixed_elements, VECTOR),
              (fixed_element_and_the_whole_array, VECTOR), (scalar_loop_on_an_element, VECTOR[:1])]


# ----------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("fn, x", FILL_LOOPS, ids=[f.__name__ for f, _ in FILL_LOOPS])
def test_fill_loops_have_the_gradient_of_finite_differences(fn, x):
    check_grad(fn, x.copy())


@pytest.mark.parametrize("fn", [stencil, recurrence, writes_into_a_copy_of_the_argument, writes_into_the_argument,
                                fill_strided, loop_in_a_loop_on_the_argument])
def test_fill_loops_on_float32_give_float32_gradients_of_the_float64_values(fn):
    x = (VECTOR + 2.0).astype(np.float32)
    before = x.copy()
    got = symdiff.grad(fn)(x)
    np.testing.assert_array_equal(x, before)  # the caller's array is left as it was
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, symdiff.grad(fn)(x.astype(np.float64)), rtol=1e-4, atol=1e-5)


def test_an_element_cotangent_is_not_added_into_an_argument():
    """``np.dot(w, x)``'s cotangent of ``x`` is ``w`` itself, the caller's array: ``x[0]``'s
    cotangent is added to it in a new array, not into it."""
    def f(x, w):
        a = x[0]
        return np.dot(w, x) + a * a

    check_grad(f, VECTOR.copy(), VECTOR + 1.0)


def scale_rows(a, t):
    y = a * 1.0
    for i in range(3):
        y[i] = y[i] * t + 0.1  # (y[i], a view, is read again by the tangent after the store)
    return np.sum(np.sin(y))


def scale_a_copy_of_ints(b, t):
    y = b.copy()  # (of an int array: ints, not float64, nor known to be either)
    return np.sum(y * t) * t


@pytest.mark.parametrize("fn, args", [(scale_rows, (MATRIX, 0.5)), (scale_a_copy_of_ints, (np.arange(4), 0.5))],
                         ids=["rows", "int array"])
def test_forward_mode_of_a_fill_loop_matches_finite_differences(fn, args):
    check_jvp(fn, list(args), [1], np.random.default_rng(0))


def test_a_gradient_run_twice_gives_the_same_gradient():
    """The arrays the generated code writes into in place are its own: a second call starts afresh."""
    x = VECTOR + 2.0
    g = symdiff.grad(writes_into_the_argument)
    first = g(x)
    np.testing.assert_array_equal(g(x), first)


def test_value_and_grad_of_a_fill_loop_returns_the_value_before_the_backward_sweep():
    def f(x):
        y = np.zeros(len(x))
        for i in range(len(x)):
            y[i] = x[i] * 2.0
        return np.sum(y), y

    (value, y), dx = symdiff.value_and_grad(f, has_aux=True)(VECTOR)
    np.testing.assert_allclose(y, VECTOR * 2.0)
    assert value == pytest.approx(np.sum(VECTOR) * 2.0)
    np.testing.assert_allclose(dx, np.full(VECTOR.shape, 2.0))


# ----------------------------------------------------------------------------- generated code


def loop_calls(source: str, backward: bool = False) -> list[str]:
    """The callees (``np.zeros``, ``setitem``, ``x.copy``...) called inside the loops of ``source``
    (with ``backward``, of the backward sweep's, over ``reversed(...)``), spelt as written, with
    ``.append`` for stacks pushed."""
    found = []
    for loop in (n for n in ast.walk(ast.parse(source)) if isinstance(n, (ast.For, ast.While))):
        if backward and not (isinstance(loop, ast.For) and "reversed(" in ast.unparse(loop.iter)):
            continue
        for node in (n for stmt in loop.body for n in ast.walk(stmt)):
            if isinstance(node, ast.Call):
                found.append(ast.unparse(node.func))
    return found


def source_of(fn, x) -> str:
    g = symdiff.grad(fn)
    g(x.copy())
    return g.source


@pytest.mark.optimized_source
@pytest.mark.parametrize("fn, x", [(stencil, VECTOR), (fill_matrix, MATRIX), (recurrence, VECTOR),
                                   (writes_into_a_copy_of_the_argument, VECTOR), (fill_strided, VECTOR),
                                   (two_names_one_array, VECTOR), (writes_into_the_argument, VECTOR),
                                   (loop_in_a_loop_on_the_argument, VECTOR)],
                         ids=lambda v: getattr(v, "__name__", ""))
def test_fill_loops_copy_no_array_per_iteration(fn, x):
    source = source_of(fn, x)
    inside = loop_calls(source)
    copies = [c for c in inside if c in ("setitem", "np.zeros", "add_into", "getitem_vjp", "unbroadcast")
              or c.endswith(".copy")]
    assert not copies, source


@pytest.mark.optimized_source
def test_the_stencil_tapes_nothing():
    source = source_of(stencil, VECTOR)
    assert "_stack" not in source and not any(c.endswith(".append") for c in loop_calls(source)), source
    assert "y[i] = " in source and "dy[i_1] = 0.0" in source, source  # stored in place, both sweeps
    assert "dx[i_1 - 1] += " in source, source  # the element's cotangent scattered into dx


@pytest.mark.optimized_source
def test_a_scalar_loop_on_an_element_tapes_nothing():
    source = source_of(scalar_loop_on_an_element, np.array([0.3, 1.0]))
    assert "_stack" not in source and "math.cos" in source, source


@pytest.mark.optimized_source
def test_scalar_code_on_elements_is_plain_arithmetic():
    source = source_of(scalar_code_on_elements, VECTOR)
    assert "unbroadcast" not in source and "math.sin(s)" in source and "np.zeros(x.shape)" in source, source
    assert source.count("np.zeros") == 1, source


@pytest.mark.optimized_source
def test_an_argument_written_into_is_copied_once_before_the_loop():
    source = source_of(writes_into_the_argument, VECTOR)
    assert "x.copy()" in source and "x.copy" not in loop_calls(source), source


@pytest.mark.optimized_source
@pytest.mark.parametrize("fn", [reads_the_whole_array_each_iteration, stores_under_a_branch])
def test_stores_whose_old_value_is_read_stay_copies(fn):
    """The array is read after the store (by the backward sweep, which pushes it on a stack), or
    the store is under a branch: a copy."""
    source = source_of(fn, VECTOR)
    assert "setitem" in source.split("# line")[0] or "setitem(" in source, source


@pytest.mark.optimized_source
def test_a_while_loop_stores_in_place():
    source = source_of(stores_in_a_while_loop, VECTOR)
    assert "setitem" not in loop_calls(source) and "y[i] = " in source, source


@pytest.mark.optimized_source
@pytest.mark.parametrize("fn, x", [(fill_rows, MATRIX), (fill_slices, VECTOR), (fill_a_constant_slice, VECTOR)],
                         ids=lambda v: getattr(v, "__name__", ""))
def test_rows_and_slices_are_zeroed_in_place_after_their_part_is_copied(fn, x):
    """The backward sweep reads the part of ``dy`` the store wrote (a view), then zeroes it in
    place: the part is copied first (its size, not the array's), and read through the copy."""
    source = source_of(fn, x)
    inside = loop_calls(source, backward=True)
    assert "setitem" not in inside and "np.zeros" not in inside and "getitem_vjp" not in inside, source
    lines = [line.strip() for line in source.splitlines()]
    zeroed = next(i for i, line in enumerate(lines) if re.fullmatch(r"dy\w*\[.*\] = 0\.0", line))
    copied = [i for i, line in enumerate(lines) if line.endswith(".copy()")]
    assert copied and max(copied) < zeroed, source


# ----------------------------------------------------------------------------- facts on IR


def results_of(fn_ir: ir.Function, callee) -> list[ir.Value]:
    return [op.result for op in calls(fn_ir, callee)]


def test_int_arithmetic_on_ints_is_known_to_be_an_int():
    def f(x):
        n = x.shape[0]
        m = len(x)
        total = 0.0
        for i in range(n):
            total = total + x[i - 1] + x[i + 1 - n] + x[2 * i % n] + x[n // 2] + x[-i] + x[m - 1]
        return total

    fn_ir = primal_ir(f, VECTOR)
    arithmetic = (operator.add, operator.sub, operator.mul, operator.mod, operator.floordiv, operator.neg)
    on_ints = [op.result for op, _ in ir.walk(fn_ir.body) if op.kind is OpKind.CALL and op.fn in arithmetic
               and all(a.integer for a in op.args)]
    assert len(on_ints) == 8, dump(fn_ir)  # i - 1, i + 1, (i + 1) - n, 2 * i, % n, n // 2, -i, m - 1
    assert all(v.integer and v.kind == SCALAR for v in on_ints), dump(fn_ir)


def test_arithmetic_with_a_float_is_no_int():
    def f(x, t):
        n = len(x)
        return x * (n * 0.5) + x * (n / 2) + x * (n * t)

    fn_ir = primal_ir(f, VECTOR, 0.5)
    scalars = [op.result for op, _ in ir.walk(fn_ir.body) if op.kind is OpKind.CALL and op.result.kind == SCALAR
               and op.fn is not len]
    assert scalars and not any(v.integer for v in scalars), dump(fn_ir)


def test_an_element_of_a_float64_array_is_a_numpy_float64_scalar():
    def f(x, m, y):
        a = x[0]
        b = m[1, 2]
        c = 0.25 * a + b
        d = y[0]  # (float32: an np.float32, whose arithmetic with float64 arrays widens them)
        e = m[1]  # a row
        return a * b * c * d * np.sum(e) + math.cos(a) + np.cos(b)

    fn_ir = primal_ir(f, VECTOR, MATRIX, VECTOR.astype(np.float32))
    items = results_of(fn_ir, operator.getitem)
    assert [v.pytype is np.float64 and v.kind == SCALAR for v in items] == [True, True, False, False], dump(fn_ir)
    combined = results_of(fn_ir, operator.add)[0]
    assert combined.pytype is np.float64 and combined.kind == SCALAR, dump(fn_ir)
    (cosine,) = results_of(fn_ir, math.cos)  # math.cos of an element: a Python float
    assert cosine.kind == SCALAR and cosine.pytype is None and passes.surely_float(cosine, ir.definitions(fn_ir.body))
    (np_cosine,) = results_of(fn_ir, np.cos)
    assert np_cosine.pytype is np.float64, dump(fn_ir)


def test_element_arithmetic_is_no_python_float():
    """A float's gradient is a Python float: ``t * x[0]``'s cotangent of ``t`` must be converted."""
    def f(x, t):
        return t * x[0] * 2.0

    fn_ir = primal_ir(f, VECTOR, 0.5)
    producers = ir.definitions(fn_ir.body)
    assert not any(passes.surely_float(v, producers) for v in results_of(fn_ir, operator.mul)), dump(fn_ir)
    dt = symdiff.grad(f, argnums=1)(VECTOR, 0.5)
    assert type(dt) is float and dt == 2.0 * VECTOR[0]


def test_an_index_tuple_of_ints_has_the_shape_of_a_pair():
    def f(m):
        total = 0.0
        for i in range(m.shape[0]):
            total = total + m[i, i] + m[i, 0]
        return total

    fn_ir = primal_ir(f, MATRIX)
    pairs = [op.result for op in calls(fn_ir, ir.BUILD_TUPLE)]
    assert pairs and all(p.kind == SEQUENCE and p.shape == (2,) for p in pairs), dump(fn_ir)


def test_the_backward_sweep_recomputes_indices_and_elements_of_arguments(every_pass_on):
    fn_ir = gradient_ir(stencil, VECTOR)
    pushed = [op for op, _ in ir.walk(fn_ir.body) if op.kind is OpKind.CALL and op.fn == Method("append")]
    assert not pushed, dump(fn_ir)
    backward = [op for op in ir.walk(fn_ir.body) if op[0].adjoint and op[0].kind is OpKind.FOR][0][0]
    recomputed = [op.fn for op, _ in ir.walk(backward.body) if op.kind is OpKind.CALL]
    assert operator.sub in recomputed and operator.add in recomputed, dump(fn_ir)


def test_conditions_and_kinks_on_elements_are_recomputed_and_the_forward_loop_goes(every_pass_on):
    # nothing the backward sweep reads needs the forward sweep's carried sum, so no loop runs it
    fn_ir = gradient_ir(branches_and_kinks_on_elements, VECTOR)
    pushed = [op for op, _ in ir.walk(fn_ir.body) if op.kind is OpKind.CALL and op.fn == Method("append")]
    assert not pushed, dump(fn_ir)
    optimize.optimize(fn_ir)
    loops = [op for op, _ in ir.walk(fn_ir.body) if op.kind is OpKind.FOR]
    assert len(loops) == 1 and loops[0].adjoint, dump(fn_ir)


@pytest.mark.optimized_source
def test_element_cotangents_at_distinct_constant_positions_are_assigned_not_added():
    source = source_of(scalar_code_on_elements, VECTOR)
    assert "dx[1] = " in source and "dx[0] = " in source and "+=" not in source, source
    source = source_of(elements_at_constant_positions, VECTOR)
    assert "dx[-1] += " in source or "dx[2] += " in source, source  # x[-1] may be x[2]


@pytest.mark.optimized_source
def test_an_element_cotangent_summed_in_a_loop_is_carried_as_a_number():
    source = source_of(scalar_loop_on_an_element, np.array([0.3, 1.0]))
    assert "dx_sum = dx_sum + " in source and "dx[0] += dx_sum" in source, source
    assert not any(c.startswith("dx[") for c in re.findall(r"^ {8}(\S+) \+=", source, re.M)), source


def test_element_cotangents_are_added_into_one_array(every_pass_on):
    fn_ir = gradient_ir(stencil, VECTOR)
    assert not calls(fn_ir, runtime.getitem_vjp) and not calls(fn_ir, runtime.add_into), dump(fn_ir)
    assert len(calls(fn_ir, runtime.add_at_index)) == 3, dump(fn_ir)


def test_store_in_place_makes_both_sweeps_store_in_place(every_pass_on):
    fn_ir = gradient_ir(stencil, VECTOR)
    assert len(calls(fn_ir, runtime.setitem)) == 2, dump(fn_ir)
    after(optimize.store_in_place, fn_ir)
    assert not calls(fn_ir, runtime.setitem) and len(calls(fn_ir, runtime.store)) == 2, dump(fn_ir)


@pytest.mark.parametrize("fn", [reads_the_whole_array_each_iteration])
def test_store_in_place_leaves_an_array_read_after_the_store(every_pass_on, fn):
    fn_ir = gradient_ir(fn, VECTOR)
    forward = [op for op, _ in ir.walk(fn_ir.body) if op.kind is OpKind.FOR and not op.adjoint][0]
    stores = [op for op, _ in ir.walk(forward.body) if op.kind is OpKind.CALL and op.fn is runtime.setitem]
    after(optimize.store_in_place, fn_ir)
    assert stores and all(op.fn is runtime.setitem for op in stores), dump(fn_ir)


def test_store_in_place_copies_an_argument_once_before_the_loop(every_pass_on):
    fn_ir = gradient_ir(writes_into_the_argument, VECTOR)
    after(optimize.store_in_place, fn_ir)
    copies = [op for op in fn_ir.body.ops if op.kind is OpKind.CALL and op.fn == Method("copy")]
    assert len(copies) == 1 and copies[0].args == fn_ir.body.params[:1], dump(fn_ir)
    loop_copies = [op for op, region in ir.walk(fn_ir.body) if region is not fn_ir.body
                   and op.kind is OpKind.CALL and op.fn == Method("copy")]
    assert not loop_copies and len(calls(fn_ir, runtime.store)) == 2, dump(fn_ir)


def store_chain(n: int) -> Callable:
    """``y[k % 3] = y[(k + 1) % 3] * 0.5 + x[k % 3]`` ``n`` times on an array the function made."""
    lines = ["def chain(x):", "    y = np.zeros(3)"]
    lines += [f"    y[{k % 3}] = y[{(k + 1) % 3}] * 0.5 + x[{k % 3}]" for k in range(n)]
    source = "\n".join(lines + ["    return np.sum(y * y)"]) + "\n"
    filename = f"<store chain of {n}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace = {"np": np}
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102 -- the test's own source
    return namespace["chain"]


def test_store_in_place_walks_a_chain_of_stores_once(every_pass_on, monkeypatch):
    # each store's array descends from every store before it: asking afresh from each one is quadratic
    steps = []
    dead_but_at = optimize._dead_but_at
    monkeypatch.setattr(optimize, "_dead_but_at", lambda *a: steps.append(1) or dead_but_at(*a))
    counts = {}
    for n in (100, 200):
        fn_ir = primal_ir(store_chain(n), VECTOR[:3])
        steps.clear()
        optimize.store_in_place(fn_ir)
        assert len(calls(fn_ir, runtime.store)) == n, dump(fn_ir)
        counts[n] = len(steps)
    assert counts[200] <= 2 * counts[100] + 10, counts


def reads_each_element_once_in_a_branch(x, w):
    s = 0.0
    for i in range(0, x.shape[0], 2):
        if w[i] > 0:
            s = s + x[i] ** 2
        else:
            s = s + 3.0 * w[i]
    return s + np.sum(x * w)


def reads_each_element_once(x):
    s = 0.0
    for i in range(x.shape[0]):
        s = s + x[i] * x[i] + np.sin(x[i])
    return s


def reads_neighbours(x):
    s = 0.0
    for i in range(1, x.shape[0]):
        s = s + x[i] * x[i - 1]
    return s


def reads_in_an_inner_loop(x):
    s = 0.0
    for i in range(x.shape[0]):
        for j in range(x.shape[0]):
            s = s + x[j] * (i + 1.0)
    return s


def reads_from_both_ends(x):
    s = 0.0
    for i in range(-3, 3):  # x[-3] and x[0] are one element of a vector of three
        s = s + x[i] ** 2 * (i + 4.0)
    return s


def reads_backwards(x):
    s = 0.0
    for i in range(x.shape[0] - 1, -1, -1):
        s = s + np.sin(x[i]) * (i + 1.0)
    return s


ONCE_PER_ITERATION = [(reads_from_both_ends, (VECTOR[:3].copy(),), "dx[i] += "),
                      (reads_backwards, (VECTOR,), "dx[i] = "),
                      (reads_each_element_once_in_a_branch, (VECTOR, VECTOR[::-1].copy()), "dx[i] = "),
                      (reads_each_element_once, (VECTOR,), "dx[i] = "),
                      (reads_neighbours, (VECTOR,), "dx[i] += "),
                      (reads_in_an_inner_loop, (VECTOR,), "dx[j] += ")]


@pytest.mark.parametrize("fn, args, written", ONCE_PER_ITERATION, ids=lambda v: getattr(v, "__name__", ""))
def test_element_loops_reading_each_index_once_or_more_have_the_gradient_of_finite_differences(fn, args, written):
    check_grad(fn, *args, argnums=tuple(range(len(args))))


@pytest.mark.optimized_source
@pytest.mark.parametrize("fn, args, written", ONCE_PER_ITERATION, ids=lambda v: getattr(v, "__name__", ""))
def test_an_element_read_once_per_index_is_assigned_its_cotangent_and_others_added(fn, args, written):
    g = symdiff.grad(fn)
    g(*args)
    assert written in g.source, g.source
