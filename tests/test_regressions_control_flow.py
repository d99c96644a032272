"""Control flow, lowering and CSE: gradients and values of programs that combine several loops,
jumps, nested conditional expressions and container arguments, against finite differences
and against the function itself. Every gradient is compiled and called twice (the second
call goes through the dispatcher's specialisation)."""

from __future__ import annotations

import math
import signal

import numpy as np
import pytest
from fd import check_grad, numerical_grad

import symdiff

X3 = np.array([0.3, -0.7, 1.1])


@pytest.fixture(autouse=True)
def _no_endless_loop():
    """Generated code that never leaves a loop fails the test instead of hanging the suite."""
    def stop(*_):
        raise TimeoutError("the gradient did not terminate")
    old = signal.signal(signal.SIGALRM, stop)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def check(fn, *args, argnums=0):
    """The value from value_and_grad is fn's own, on two calls, and the gradient (also on two
    calls) matches central differences."""
    want = fn(*args)
    vg = symdiff.value_and_grad(fn, argnums=argnums)
    for _ in range(2):
        value, _ = vg(*args)
        np.testing.assert_allclose(value, want, rtol=1e-12, atol=1e-12)
    grad = symdiff.grad(fn, argnums=argnums)
    first, second = grad(*args), grad(*args)
    for a, b in zip(first, second) if isinstance(argnums, tuple) else [(first, second)]:
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)
    check_grad(fn, *args, argnums=argnums)


# ============================================================================ loops sharing a range


def two_loops_over_one_range(t):
    for _k in range(3):
        t = np.sin(t)
    for _k in range(3):
        t = np.sin(t)
    return np.sum(t)


def list_built_in_one_loop_read_in_another(x):
    hs = []
    for _k in range(3):
        x = np.sin(x)
        hs.append(x)
    s = 0.0
    for k in range(3):
        s = s + hs[k] * x
    return np.sum(s)


@pytest.mark.parametrize("arg", [0.7, X3], ids=["float", "vector"])
@pytest.mark.parametrize("fn", [two_loops_over_one_range, list_built_in_one_loop_read_in_another])
def test_two_loops_over_one_range_both_run_backward(fn, arg):
    check(fn, arg)


# ============================================================================ break flags stay in their loop


def for_after_loop_with_break(x):
    for i in range(5):
        x = x * 1.5
        if i >= 1:
            break
    for _j in range(3):
        x = np.sin(x)
    return np.sum(x)


def while_after_loop_with_break(x):
    for i in range(5):
        x = x * 1.5
        if i >= 1:
            break
    k = 0
    while k < 3:
        x = np.sin(x)
        k += 1
    return np.sum(x)


def comprehension_after_loop_with_break(x):
    for i in range(5):
        x = x * 1.5
        if i >= 1:
            break
    return np.sum(sum([np.sin(x) * j for j in range(3)]))


def inner_loops_after_inner_break(x):
    for _i in range(2):
        for j in range(4):
            x = x * 1.1
            if j >= 1:
                break
        for _j in range(2):
            x = np.sin(x)
    return np.sum(x)


def loop_after_while_with_break(x):
    k = 0
    while True:
        x = x * 1.2
        k += 1
        if k >= 2:
            break
    for _j in range(3):
        x = np.cos(x)
    return np.sum(x)


@pytest.mark.parametrize("arg", [0.7, X3], ids=["float", "vector"])
@pytest.mark.parametrize("fn", [for_after_loop_with_break, while_after_loop_with_break,
                                comprehension_after_loop_with_break, inner_loops_after_inner_break,
                                loop_after_while_with_break])
def test_a_break_does_not_stop_the_loops_after_its_own(fn, arg):
    check(fn, arg)


# ============================================================================ boolean loop conditions


def while_and_with_break(s):
    k = 200
    while s > 0.0 and k > 0:
        s = s + 1.0
        k -= 1
        if s > 1e9:
            break
    return s


def while_and_with_taken_break(s):
    k = 200
    while s > 0.0 and k > 0:
        s = s * 1.5
        k -= 1
        if s > 3.0:
            break
    return s


def while_or_with_return(s):
    k = 0
    while s < 0.0 or k < 3:
        s = s + 0.5 + 0.1 * math.sin(s)
        k += 1
        if s > 50.0:
            return s * 2.0
    return s * s


def while_nested_condition_with_break(s):
    k = 0
    while (s > -10.0 and k < 4) or (k < 6 and not s > 100.0):
        s = s * 1.1 + 0.1
        k += 1
        if s > 1e6:
            break
    return s


@pytest.mark.parametrize("fn, arg", [
    pytest.param(while_and_with_break, -1.0, id="and, false at entry"),
    pytest.param(while_and_with_break, 0.5, id="and, runs to the counter"),
    pytest.param(while_and_with_taken_break, 0.5, id="and, break taken"),
    pytest.param(while_or_with_return, -0.7, id="or, with return not taken"),
    pytest.param(while_or_with_return, 0.4, id="or, true then false"),
    pytest.param(while_nested_condition_with_break, 0.3, id="nested and/or"),
    pytest.param(while_nested_condition_with_break, -20.0, id="nested and/or, second clause"),
])
def test_a_while_with_a_boolean_condition_and_a_jump_tests_its_condition(fn, arg):
    check(fn, arg)


def test_a_while_with_a_boolean_condition_false_at_entry_does_not_run():
    assert symdiff.value_and_grad(while_and_with_break)(-1.0) == (-1.0, 1.0)


# ============================================================================ nested conditional expressions


def ifexp_in_orelse(a):
    return a * a if a > 1.0 else (np.sin(a) if a > 0.0 else a * 3.0)


def ifexp_in_body(a):
    return (a * a if a > 2.0 else np.cos(a)) if a > 0.0 else -a


def ifexp_in_test(a):
    return a * 2.0 if (a > 0.0 if a < 1.0 else a > 1.5) else a * a


def ifexp_in_call_argument(a):
    return np.sum(np.exp(a if np.all(a > 0.0) else (a * a if np.any(a > 0.0) else -a)))


def ifexp_with_boolop_operands(a):
    return (a if a > 0.0 and a < 1.0 else 2.0 * a) + (a * a if a < -1.0 or a > 2.0 else a)


@pytest.mark.parametrize("fn, args", [
    pytest.param(ifexp_in_orelse, (1.5,), id="in orelse, first arm"),
    pytest.param(ifexp_in_orelse, (0.5,), id="in orelse, inner first arm"),
    pytest.param(ifexp_in_orelse, (-0.5,), id="in orelse, inner second arm"),
    pytest.param(ifexp_in_body, (2.5,), id="in body, inner first arm"),
    pytest.param(ifexp_in_body, (0.5,), id="in body, inner second arm"),
    pytest.param(ifexp_in_body, (-0.5,), id="in body, outer second arm"),
    pytest.param(ifexp_in_test, (0.5,), id="in the test, first"),
    pytest.param(ifexp_in_test, (1.7,), id="in the test, second"),
    pytest.param(ifexp_in_test, (1.2,), id="in the test, false"),
    pytest.param(ifexp_in_call_argument, (np.abs(X3),), id="in a call argument, all positive"),
    pytest.param(ifexp_in_call_argument, (X3,), id="in a call argument, some positive"),
    pytest.param(ifexp_in_call_argument, (-np.abs(X3),), id="in a call argument, none positive"),
    pytest.param(ifexp_with_boolop_operands, (0.5,), id="and/or tests"),
    pytest.param(ifexp_with_boolop_operands, (2.5,), id="and/or tests, other arms"),
])
def test_nested_conditional_expressions_match_finite_differences(fn, args):
    check(fn, *args)


# ============================================================================ early return in a loop


def return_in_loop_after_same_call(a):
    s = math.sin(a)
    for _i in range(3):
        return math.sin(a) + s


def return_in_loop_after_same_numpy_call(a):
    s = np.sin(a)
    for _i in range(3):
        return np.sum(np.sin(a) + s)


def return_in_loop_then_unreachable_code(v):
    for _i in range(2):
        return np.sum(v)
    return np.sum(v * v)


def return_in_while_then_unreachable_code(v):
    k = 0
    while k < 5:
        k += 1
        return np.sum(np.tanh(v)) * k
    return np.sum(v * v)


@pytest.mark.parametrize("fn, arg", [
    pytest.param(return_in_loop_after_same_call, 0.3, id="math.sin(a) computed before the loop"),
    pytest.param(return_in_loop_after_same_numpy_call, X3, id="np.sin(a) computed before the loop"),
    pytest.param(return_in_loop_then_unreachable_code, X3, id="for, unreachable code after"),
    pytest.param(return_in_loop_then_unreachable_code, 0.4, id="for, unreachable code after[float]"),
    pytest.param(return_in_while_then_unreachable_code, X3, id="while, unreachable code after"),
])
def test_an_early_return_inside_a_loop_passes_its_gradient_on(fn, arg):
    check(fn, arg)


# ============================================================================ continue in an elif


def continue_in_elif_then_dead_store(x):
    for _i in range(4):
        if x > 10.0:
            x = x * 2.0
        elif x > 0.0:
            continue
        y = x * 3.0  # noqa: F841 (the dead store is the point)
    return x


def continue_in_elif_with_else(x):
    s = 0.0
    for i in range(4):
        if i == 0:
            s = s + np.sin(x)
        elif np.sum(x) > 0.0:
            continue
        else:
            s = s - x
        t = s * 2.0  # noqa: F841 (the dead store is the point)
    return np.sum(s)


def continue_in_elif_in_while(x):
    k = 0
    while k < 3:
        k += 1
        if np.sum(x) > 10.0:
            x = x + 1.0
        elif np.sum(x) > 0.0:
            x = x * 1.5
            continue
        z = x
        x = np.cos(z)
    return np.sum(x)


@pytest.mark.parametrize("fn, arg", [
    pytest.param(continue_in_elif_then_dead_store, 0.5, id="for, continue taken"),
    pytest.param(continue_in_elif_then_dead_store, -0.5, id="for, continue not taken"),
    pytest.param(continue_in_elif_with_else, X3, id="for with else"),
    pytest.param(continue_in_elif_with_else, -np.abs(X3), id="for with else, else taken"),
    pytest.param(continue_in_elif_in_while, X3, id="while"),
    pytest.param(continue_in_elif_in_while, -np.abs(X3), id="while, continue not taken"),
])
def test_continue_in_an_elif_followed_by_a_dead_store(fn, arg):
    check(fn, arg)


# ============================================================================ container arguments


def _leaves(tree, path=()):
    if type(tree) in (list, tuple, dict):
        keys = list(tree) if type(tree) is dict else range(len(tree))
        return [leaf for k in keys for leaf in _leaves(tree[k], path + (k,))]
    return [(path, tree)]


def _replaced(tree, path, value):
    if not path:
        return value
    copy = dict(tree) if type(tree) is dict else list(tree)
    copy[path[0]] = _replaced(tree[path[0]], path[1:], value)
    return copy if type(tree) is not tuple else tuple(copy)


def _at(tree, path):
    for k in path:
        tree = tree[k]
    return tree


def check_tree(fn, *args):
    """``check`` for a container first argument: every leaf's gradient (of the leaf's type and
    shape) against central differences in that leaf, on two calls; the value too."""
    want = fn(*args)
    vg = symdiff.value_and_grad(fn)
    grad = symdiff.grad(fn)
    for _ in range(2):
        value, _ = vg(*args)
        np.testing.assert_allclose(value, want, rtol=1e-12, atol=1e-12)
        got = grad(*args)
        assert type(got) is type(args[0])
        for path, leaf in _leaves(args[0]):
            g = _at(got, path)
            rest = list(args[1:])
            want_g = numerical_grad(lambda v, *r, path=path: fn(_replaced(args[0], path, v), *r), [leaf] + rest, 0)
            if isinstance(leaf, np.ndarray):
                assert isinstance(g, np.ndarray) and g.shape == leaf.shape and g.dtype == leaf.dtype
            else:
                assert type(g) is float
            np.testing.assert_allclose(g, want_g, rtol=1e-5, atol=1e-6, err_msg=str(path))


def loop_over_a_slice_of_a_list_argument(params, x):
    for w in params[1:]:
        x = np.tanh(w * x)
    return np.sum(x * params[0])


def loop_over_a_reversed_slice_of_a_tuple_argument(params, x):
    for w in params[::-2]:
        x = np.sin(w * x)
    return np.sum(x)


def array_of_a_list_argument(x):
    return np.sum(np.array(x) ** 2)


def stack_of_a_list_argument(ws):
    return np.sum(np.stack(ws) ** 2) + np.sum(np.concatenate(ws[:1]))


def sum_of_a_nested_list_argument(p):
    return np.sum(sum(p["ws"]) * p["ws"][0]) * p["scale"]


def unused_item_of_a_pair(pair):
    a, b = pair
    return np.sum(a * a)


def unused_items_of_a_dict(p):
    return np.sum(p["a"] ** 2)


@pytest.mark.parametrize("fn, args", [
    pytest.param(loop_over_a_slice_of_a_list_argument, ([X3 * 0.5, X3, X3 * 2.0], X3), id="for w in params[1:]"),
    pytest.param(loop_over_a_reversed_slice_of_a_tuple_argument, ((X3, 0.5, X3 * 2.0), X3),
                 id="for w in params[::-2] (tuple)"),
    pytest.param(array_of_a_list_argument, ([0.5, -0.7, 1.25],), id="np.array(list of floats)"),
    pytest.param(stack_of_a_list_argument, ([X3, X3 * 2.0],), id="np.stack(list of arrays)"),
    pytest.param(sum_of_a_nested_list_argument, ({"ws": [X3, -X3 * 0.5], "scale": 1.5},), id="sum(nested list)"),
    pytest.param(unused_item_of_a_pair, ((X3, X3 * 2.0),), id="a, b = pair with b unused"),
    pytest.param(unused_items_of_a_dict, ({"a": X3, "b": 2.0, "c": X3 * 3.0},), id="p['b'] unused"),
])
def test_container_arguments_used_whole_sliced_or_partly(fn, args):
    check_tree(fn, *args)


def test_slicing_a_dict_argument_is_refused_with_its_location():
    def f(p):
        return np.sum(p[1:])
    with pytest.raises(symdiff.SymdiffError, match=r"test_regressions_control_flow.py:\d+: a dict cannot be sliced"):
        symdiff.grad(f)({"a": X3})


# ============================================================================ parameters named like builtins


def param_input(input):
    return np.sum(input * input)


def param_sum(sum):
    return np.sum(np.sin(sum)) * 2.0


def param_len(len, x):
    return np.sum(len * x)


def param_max(max):
    return np.sum(np.maximum(max, 0.1) ** 2)


def param_list(list):
    return np.sum(np.tanh(list))


def param_range_with_a_while(range):
    k = 0
    while k < 3:
        range = np.sin(range)
        k += 1
    return np.sum(range)



@pytest.mark.parametrize("fn, args", [
    pytest.param(param_input, (X3,), id="input"),
    pytest.param(param_input, (0.7,), id="input[float]"),
    pytest.param(param_sum, (X3,), id="sum"),
    pytest.param(param_len, (X3, X3 * 2.0), id="len"),
    pytest.param(param_max, (X3,), id="max"),
    pytest.param(param_list, (X3,), id="list"),
    pytest.param(param_range_with_a_while, (X3,), id="range, with a while loop"),
])
def test_a_parameter_named_like_a_builtin_works_on_every_call(fn, args):
    check(fn, *args)
    check(fn, *args)


# ============================================================================ enumerate, zip, reversed


def zip_into_one_name(x):
    s = 0.0
    for p in zip(x, X3):
        s = s + p[0] * p[1]
        if s > 100.0:
            break
    return s + np.sum(x)


def enumerate_of_zip(x):
    s = 0.0
    for i, (a, b) in enumerate(zip(x, X3 * 2.0)):
        s = s + a * b * (i + 1)
    return s


def zip_of_reversed_and_enumerate(x):
    s = 0.0
    for a, (i, b) in zip(reversed(x), enumerate(x)):
        s = s + a * b + i * a
    return s



def enumerate_with_len_shadowed(len, x):
    s = 0.0
    for i, v in enumerate(x):
        s = s * 0.5 + v * len[i] * i
    return s


@pytest.mark.parametrize("fn, args", [
    pytest.param(zip_into_one_name, (X3,), id="for p in zip(x, y)"),
    pytest.param(enumerate_of_zip, (X3,), id="enumerate(zip(x, y))"),
    pytest.param(zip_of_reversed_and_enumerate, (X3,), id="zip(reversed(x), enumerate(x))"),
    pytest.param(enumerate_with_len_shadowed, (X3 * 3.0, X3), id="enumerate with a parameter named len"),
])
def test_nested_enumerate_zip_and_reversed_loops_match_finite_differences(fn, args):
    check(fn, *args, argnums=tuple(range(len(args))))


def test_unpacking_a_known_tuple_into_too_few_names_is_refused():
    def f(x):
        s = 0.0
        for a, b in zip(x, x, x):
            s = s + a * b
        return s
    with pytest.raises(symdiff.SymdiffError, match="cannot unpack 3 values into 2 names"):
        symdiff.grad(f)(X3)


# ============================================================================ reshape with -1


def early_return_with_a_reshaped_column(x, b, u, n):
    v0 = np.reshape(u, (-1, 1))
    s3 = 0.0
    for _i in range(1, n):
        v0 = v0 + b
        return s3
    return np.mean(np.sin(v0))


def reshape_with_a_free_last_axis(u, b):
    return np.mean(np.sin(np.reshape(u, (3, -1)) + b))


def reshape_method_with_minus_one(u, b):
    return np.mean(np.sin(u.reshape(-1, 1) * b))


@pytest.mark.parametrize("fn, args, argnums", [
    pytest.param(early_return_with_a_reshaped_column, (X3, np.array([[0.2], [-0.4]]), np.array([0.5, 1.5]), 1), (1, 2),
                 id="loop not run, return after it"),
    pytest.param(early_return_with_a_reshaped_column, (X3, np.array([[0.2], [-0.4]]), np.array([0.5, 1.5]), 3), (1, 2),
                 id="early return in the loop"),
    pytest.param(reshape_with_a_free_last_axis, (np.linspace(-1.0, 1.0, 6), np.array([[0.3], [0.1], [-0.2]])), (0, 1),
                 id="np.reshape(u, (3, -1))"),
    pytest.param(reshape_method_with_minus_one, (X3, np.array([0.5, -1.0])), (0, 1), id="u.reshape(-1, 1)"),
])
def test_reshape_with_minus_one_has_the_right_static_shape(fn, args, argnums):
    check(fn, *args, argnums=argnums)


# ============================================================================ found by random programs


def value_of_one_loop_read_after_another(x, y, z):
    for _i1 in range(3):
        s0 = math.sin(y)
    for _i2 in range(3):
        z = 0.5
    return z + s0 + x


def return_in_a_while_false_at_entry(x, y, n):
    s0 = 1.0
    v1 = y if 1.1 >= 1.5 else abs(1.5)
    v2 = math.tanh(y)
    k5 = 0
    while k5 < 4 and s0 < y:
        k5 += 1
        return v2
    return (y - y if v1 < -0.7 or y > 0.5 else x) + x + v2 + v1


def break_in_a_while_false_at_entry(x, y, n):
    s0 = 1.0
    k1 = 0
    while k1 < 3 and s0 >= 1.1:
        k1 += 1
        if -0.5 < y < 0.0:
            break
    return y * x


def unpacked_pytree_item_and_dict_display(p, x):
    k, off = p["pair"]
    d = {"a": np.concatenate([x[:1], x[1:]]), "b": np.sum(off[[0, 2, 2, -1]])}
    return np.sum(d["a"]) * k


def zip_of_a_list_argument_and_its_reverse(ws, x):
    for a, c in zip(ws, reversed(ws)):
        s = np.sum(c * a * x)
    return s


@pytest.mark.parametrize("fn, args, argnums", [
    pytest.param(value_of_one_loop_read_after_another, (0.3, 0.7, 0.2), (0, 1, 2), id="loop value read after a loop"),
    pytest.param(return_in_a_while_false_at_entry, (0.3, 0.7, 2), (0, 1), id="return in a while false at entry"),
    pytest.param(return_in_a_while_false_at_entry, (0.3, 1.7, 2), (0, 1), id="return in a while taken"),
    pytest.param(break_in_a_while_false_at_entry, (0.3, -0.2, 2), (0, 1), id="break in a while false at entry"),
    pytest.param(break_in_a_while_false_at_entry, (0.3, 0.4, 2), (0, 1),
                 id="break in a while false at entry, not taken"),
])
def test_random_programs_with_loops(fn, args, argnums):
    check(fn, *args, argnums=argnums)


@pytest.mark.parametrize("fn, args", [
    pytest.param(unpacked_pytree_item_and_dict_display, ({"pair": (1.5, X3 * 2.0), "w": X3}, X3),
                 id="k, off = p['pair'] with off unused"),
    pytest.param(zip_of_a_list_argument_and_its_reverse, ([X3, X3 * 2.0, X3 * 3.0], X3), id="zip(ws, reversed(ws))"),
])
def test_random_programs_with_container_arguments(fn, args):
    check_tree(fn, *args)


# ============================================================================ closures passed to functions


def _apply(fn, u, k=2.0):
    c0 = 100.0  # not the closure's c0
    return fn(u) * k + np.sin(u) + c0


def closure_passed_to_a_helper(x, t):
    c0 = t * 2.0

    def inner(w):
        return np.tanh(w * c0) - 1.3
    return np.sum(_apply(inner, x))


def lambda_reading_a_parameter_passed_to_a_helper(x, t):
    return np.sum(_apply(lambda w: w * t, x, k=3.0))


def closure_reading_a_variable_rebound_before_the_call(x, t):
    c = t

    def inner(w):
        return w * c
    c = t * t
    return np.sum(_apply(inner, x))


@pytest.mark.parametrize("fn", [closure_passed_to_a_helper, lambda_reading_a_parameter_passed_to_a_helper,
                                closure_reading_a_variable_rebound_before_the_call])
def test_a_closure_passed_to_a_helper_reads_its_own_variables(fn):
    check(fn, X3, 0.7, argnums=(0, 1))


# ============================================================================ lists and dicts built in the function


def item_assignment_into_a_dict_display(x):
    d = {}
    d["a"] = x * 2.0
    d["b"] = d["a"] ** 2
    return np.sum(d["b"])


def augmented_item_assignment_into_a_dict_display(x):
    d = {"a": x * 1.0}
    y = d["a"]
    d["a"] *= 3.0  # in place: y is the same array
    key = "a"
    d[key] = d[key] + np.sin(x) + y
    return np.sum(d["a"])


def item_assignment_into_a_list_display(x):
    lst = [x, x * 2.0]
    alias = lst
    lst[1] = lst[0] * 5.0
    lst[-2] = np.cos(x)
    return np.sum(alias[1] + lst[0])


def item_assignment_by_loop_index_into_a_list(x):
    out = [0.0] * 3
    for i in range(3):
        out[i] = x[i] ** 2
    return sum(out)


def item_assignment_into_an_appended_list(x):
    out = []
    for i in range(3):
        out.append(x[i])
    out[1] = out[0] * 3.0
    return sum(out)


def list_of_an_array(x):
    lst = list(x)
    return lst[0] * lst[-1] + sum(lst)


@pytest.mark.parametrize("fn", [item_assignment_into_a_dict_display, augmented_item_assignment_into_a_dict_display,
                                item_assignment_into_a_list_display, item_assignment_by_loop_index_into_a_list,
                                item_assignment_into_an_appended_list, list_of_an_array])
def test_item_assignment_into_lists_and_dicts_built_here(fn):
    check(fn, X3)


def test_item_assignment_into_a_tuple_display_is_refused():
    def f(x):
        t = (x, x)
        t[0] = x * 2.0
        return np.sum(t[0])
    with pytest.raises(symdiff.SymdiffError, match="'tuple' object does not support item assignment"):
        symdiff.grad(f)(X3)


# ============================================================================ nested loops


def inner_loop_copies_an_outer_value(x, y):
    for _ in range(1, 4):
        for _ in range(2):
            s = y
    return s * x


def inner_loop_copies_an_outer_array(x, y):
    for _ in range(2):
        acc = x * 0.0
        for _ in range(3):
            acc = y
    return np.sum(acc * x)


@pytest.mark.parametrize("fn, args", [
    pytest.param(inner_loop_copies_an_outer_value, (0.3, 0.7), id="number"),
    pytest.param(inner_loop_copies_an_outer_array, (X3, X3[::-1].copy()), id="array"),
])
def test_a_value_from_outside_nested_loops_that_the_inner_one_yields_as_it_is_gets_its_gradient(fn, args):
    check(fn, *args, argnums=(0, 1))


# ============================================================================ the lowering's own names


def variables_named_like_the_return_flags(x):
    __return = x * 0.5
    __retval = 1.0
    for _i in range(4):
        __retval = __retval * x + __return
        if __retval > 2.0:
            return __retval * __return
    return __retval - __return


def variables_named_like_the_loop_flags(x):
    __break1, __continue1, __index1, __index2 = 0.0, 1.0, x, 2.0
    for i in range(5):
        __break1 = __break1 + __index1 * i
        if i == 1:
            continue
        __continue1 = __continue1 * x
        if __break1 > 3.0:
            break
    while __index2 < 9.0:
        __index2 = __index2 * (1.0 + x * x)
        if __index2 * __continue1 > 6.0:
            break
    return __break1 + __continue1 * __index2


def variables_named_like_the_index_loop_temporaries(x):
    __k = x * 2.0
    __seq = np.cos(x)
    _k, _seq, _items = 0.5, 1.5, 2.5
    s = 0.0
    for i, v in enumerate(np.sin(x)):
        s = s + v * __k[i] * _k
    for a, b in zip(__seq, reversed(__k)):
        s = s + a * b * _seq
    return s + _items * np.sum(__seq)


def a_lambda_reads_a_local_named_like_the_index(x):
    __k = x * 3.0
    __item = np.array([1.0, 2.0, 3.0])
    scale = lambda t: t * __k + __item  # noqa: E731
    total = 0.0
    for i, v in enumerate(x):
        total = total + np.sum(scale(v)) * i
    return total


def variables_named_like_the_expression_temporaries(x):
    __expr = x * 2.0 if np.sum(x) > 0 else x * 3.0
    __comprehension = [v * v for v in __expr]
    d = {"a": x * 1.0}
    __item = d["a"]
    d["a"] *= 2.0
    return sum(__comprehension) + np.sum(__item * d["a"]) if np.sum(x) > -9.0 and True else 0.0


def variables_named_like_the_flags(x):
    broke, returned, result, i, n, seq, go_on = 0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5
    for k in range(4):
        result = result * x + broke * k
        if result > 5.0:
            break
    while returned < 9.0:
        returned = returned * (1.0 + x * x) + i * n
        if returned > seq * go_on:
            return returned * result
    return result


@pytest.mark.parametrize("fn, arg", [
    pytest.param(variables_named_like_the_return_flags, 0.9, id="__return, __retval"),
    pytest.param(variables_named_like_the_return_flags, 0.3, id="__return, __retval: no early return"),
    pytest.param(variables_named_like_the_loop_flags, 0.7, id="__break1, __continue1, __index1"),
    pytest.param(variables_named_like_the_index_loop_temporaries, X3, id="__k, __seq, _k, _seq, _items"),
    pytest.param(a_lambda_reads_a_local_named_like_the_index, X3, id="a lambda reading __k"),
    pytest.param(variables_named_like_the_expression_temporaries, X3, id="__expr, __comprehension, __item"),
    pytest.param(variables_named_like_the_flags, 0.6, id="broke, returned, result, i, n, seq, go_on"),
    pytest.param(variables_named_like_the_flags, 1.2, id="broke, returned, result...: early return"),
])
def test_a_variable_named_like_a_name_of_the_lowering_is_the_users_own(fn, arg):
    check(fn, arg)


# ============================================================================ the flags a loop carries


def loop_with_break(x):
    s = 0.0
    for i in range(5):
        s = s + np.sum(x * i)
        if s > 3.0:
            break
    return s


def while_with_break(x):
    s = 0.0
    k = 0
    while k < 5:
        s = s + np.sum(x * k)
        k = k + 1
        if s > 3.0:
            break
    return s


def loop_with_early_return(x):
    s = 0.0
    for i in range(5):
        s = s + np.sum(x * i)
        if s > 3.0:
            return s * 2.0
    return s


def scalar_loop_with_break(x):
    s = 0.0
    for i in range(10):
        s = s + x * i
        if s > 5.0:
            break
    return s


def source_for(fn, arg):
    """The generated code of fn's gradient, specialised for ``arg``."""
    grad = symdiff.grad(fn)
    grad(arg)
    return grad.source


@pytest.mark.optimized_source  # (with passes off, other first-use memos start as None)
@pytest.mark.parametrize("fn", [loop_with_break, while_with_break])
def test_a_loop_with_break_carries_its_break_flag_only(fn):
    source = source_for(fn, X3)
    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith("#"))
    assert "broke" in code, source
    assert "returned" not in code and "result" not in code and "None" not in code, source
    assert code.count("not broke") == 1, source  # the loop's test; its body starts knowing it did not break
    assert "go_on_stack" not in code and "scalar_seed" not in code, source
    assert "# line 9: break" not in source and "# line 19: break" not in source, source
    check_grad(fn, X3)
    check_grad(fn, X3 * 0.1)


def test_a_loop_with_an_early_return_carries_no_break_flag():
    source = source_for(loop_with_early_return, X3)
    assert "returned" in source and "result" in source, source
    assert "broke" not in source and "go_on_stack" not in source, source
    check_grad(loop_with_early_return, X3)
    check_grad(loop_with_early_return, X3 * 0.1)


def test_the_items_of_a_range_a_loop_with_break_reads_are_numbers():
    """(so that the loop's value is known to be a number: no run-time check of the seed)"""
    source = source_for(scalar_loop_with_break, 0.7)
    assert "scalar_seed" not in source and "None" not in source, source
    check_grad(scalar_loop_with_break, 0.7)
    check_grad(scalar_loop_with_break, 0.01)


def pairs_rows_of_one_array(X):
    total = 0.0
    for row in X:
        inner = 0.0
        for other in X:
            inner = inner + np.sum(np.sin(other) * row)
        total = total + inner
    return total


def pairs_rows_of_a_reshaped_copy(x):
    rows = np.reshape(x, (2, -1))
    total = 0.0
    for row in rows:
        again = np.reshape(x, (2, -1))  # the same value as rows: merged into it by CSE
        for other in again:
            total = total + np.sum(other * row ** 2)
    return total


@pytest.mark.parametrize("fn, arg", [(pairs_rows_of_one_array, np.arange(6.0).reshape(2, 3) / 7 + 0.1),
                                     (pairs_rows_of_a_reshaped_copy, np.arange(6.0) / 5 - 0.4)])
def test_an_inner_loop_over_the_outer_loops_sequence_adds_its_cotangent(fn, arg):
    check_grad(fn, arg)


def snapshot_read_in_an_inner_loop(x, y):
    s = x
    k = 0
    while k < 2:
        k += 1
        before = s  # read inside the inner loop, which carries s under the same name
        while True:
            s = s * 0.8 + x * x
            if not before >= s:
                break
            return y * 3.0
    return s + y + y


def test_a_value_an_inner_loop_reads_is_not_overwritten_by_the_loop_it_carries_into():
    check_grad(snapshot_read_in_an_inner_loop, -0.1136, -0.085, argnums=(0, 1))
