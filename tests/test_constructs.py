"""Finite-difference checks of symdiff on every Python construct it lowers.

Each construct is a module-level ``def`` (symdiff reads the source) with a scalar output,
checked at several inputs: Python floats, and vectors/matrices where that makes sense, and
inputs chosen to exercise every arm of every branch. Inputs stay away from the points where
control flow changes (a branch condition flipping), where the function is not differentiable.
"""

from __future__ import annotations

import math

import numpy as np
import numpy as onp  # a module alias, used inside the functions below
import pytest
from fd import check_grad

import symdiff

RNG = np.random.default_rng(20240607)
V = RNG.uniform(-1.0, 1.0, 4)  # fixed weightings, module constants read by the functions
M = RNG.uniform(-1.0, 1.0, (3, 4))
WH = RNG.uniform(-0.6, 0.6, (3, 3))


def vec(*values):
    return np.array(values, dtype=np.float64)


X4 = vec(0.3, -0.7, 1.1, 0.45)
Y4 = vec(-0.2, 0.8, 0.35, -1.3)
X34 = RNG.uniform(-1.0, 1.0, (3, 4))
Y34 = RNG.uniform(-1.0, 1.0, (3, 4))


# ============================================================================ assignment


def assign_chain(x):
    y = x * 2.0
    z = y
    y = np.sin(y) + z
    w = v = y * x
    return np.sum(w + v * z)


def assign_rebind_param(x, y):
    x = x * y
    y = x + y
    x = np.tanh(x) * y
    return np.sum(x)


def unpack_tuple_display(x, y):
    a, b = x * 2.0, np.sin(y)
    c, d = b, a  # evaluated before either is assigned
    a, b = b, a  # swap
    return np.sum(a * c + b * d * y)


def unpack_tuple_value(x, y):
    pair = (x * y, x - y)
    a, b = pair
    return np.sum(a * np.exp(b) + pair[0] * b)


def unpack_nested_targets(x, y):
    pair = (x * y, x - y)
    (c, d), e = (pair[1], x), pair[0]
    nested = ((x, y), x * 2.0)
    (f, g), h = nested
    return np.sum(c * d * e + f * g * h)


def unpack_list_display(x, y):
    [a, b] = [x + 1.0, y * y]
    return np.sum(a * b)


def unpack_array_rows(x):
    a, b, c = x  # iterates the first axis of a (3, ...) array
    return np.sum(a * b + np.sin(c) * a)


def augmented_assign_float(x, y):
    s = x
    s += y
    s -= 0.5 * x
    s *= x
    s /= 1.0 + y * y
    s **= 2
    return s


def augmented_assign_array(x, y):
    s = x * 1.0  # a fresh array: += below is in place on it, not on the argument
    s += y
    s -= 0.5 * x
    s *= x
    s /= 1.0 + y * y
    return np.sum(s * s)


def augmented_assign_param_float(x, y):
    x += y
    x *= y
    x -= 1.0
    x /= 2.0
    return x * x


def augmented_assign_in_place_alias(x):
    s = x * 1.0
    t = s  # the same array object: NumPy's s += ... also changes t
    s += x * x
    return np.sum(t * V)


@pytest.mark.parametrize("fn, args", [
    pytest.param(assign_chain, (0.7,), id="assign chain[float]"),
    pytest.param(assign_chain, (X4,), id="assign chain[vector]"),
    pytest.param(assign_rebind_param, (0.7, -0.4), id="rebinding parameters[float]"),
    pytest.param(assign_rebind_param, (X34, Y34), id="rebinding parameters[matrix]"),
    pytest.param(unpack_tuple_display, (0.7, -0.4), id="a, b = x, y and swap[float]"),
    pytest.param(unpack_tuple_display, (X4, Y4), id="a, b = x, y and swap[vector]"),
    pytest.param(unpack_tuple_value, (0.7, -0.4), id="a, b = pair (a tuple value)[float]"),
    pytest.param(unpack_tuple_value, (X34, Y34), id="a, b = pair (a tuple value)[matrix]"),
    pytest.param(unpack_nested_targets, (0.7, -0.4), id="(a, b), c = nested tuples[float]"),
    pytest.param(unpack_nested_targets, (X4, Y4), id="(a, b), c = nested tuples[vector]"),
    pytest.param(unpack_list_display, (0.7, -0.4), id="[a, b] = [x, y][float]"),
    pytest.param(unpack_list_display, (X4, Y4), id="[a, b] = [x, y][vector]"),
    pytest.param(unpack_array_rows, (vec(0.3, -0.8, 1.2),), id="a, b, c = vector"),
    pytest.param(unpack_array_rows, (X34[:, :3].T.copy(),), id="a, b, c = matrix rows"),
    pytest.param(augmented_assign_float, (0.7, -0.4), id="+= -= *= /= **=[float]"),
    pytest.param(augmented_assign_array, (X4, Y4), id="+= -= *= /=[vector]"),
    pytest.param(augmented_assign_array, (X34, Y34), id="+= -= *= /=[matrix]"),
    pytest.param(augmented_assign_array, (0.7, -0.4), id="+= -= *= /=[float, array code]"),
    pytest.param(augmented_assign_param_float, (0.7, -0.4), id="augmented assignment to a parameter[float]"),
    pytest.param(augmented_assign_in_place_alias, (X4,), id="+= on an array is in place, seen through an alias"),
])
def test_assignment_forms_match_finite_differences(fn, args):
    check_grad(fn, *args)


# ============================================================================ expressions


def chained_comparison(x):
    if 0.0 < x < 1.0:
        return x * x
    return 3.0 * x


def chained_comparison_array(x):
    s = np.sum(x)
    if -1.0 < s <= 1.0 < 5.0:
        return np.sum(np.sin(x))
    return np.sum(x * x)


def bool_ops(x, y):
    if x > 0.0 and y > 0.0:
        return x * y
    elif x > 0.0 or y > 0.0:
        return x + 2.0 * y
    elif not x > -1.0:
        return x * x * y
    return x - y


def bool_ops_arrays(x, y):
    if np.sum(x) > 0.0 and not np.sum(y) > 0.0:
        return np.sum(x * y)
    if np.sum(x) > 1.0 or np.sum(y) > 1.0:
        return np.sum(x + 2.0 * y)
    return np.sum(x - y)


def and_or_values(x, y):
    a = x > 1.0 and x * 2.0 or y * 3.0  # the classic and/or idiom: values, not booleans
    b = y or x  # y is nonzero here: b is y
    return a * b


def conditional_expression(x):
    y = np.sin(x) if x > 0.0 else x * x
    return y * (x if x < 1.0 else 2.0 * x)


def conditional_expression_array(x):
    y = np.sin(x) if np.sum(x) > 0.0 else x * x
    return np.sum(y * V)


def keyword_arguments(x):
    a = np.sum(x, axis=0)
    b = np.mean(x, axis=1, keepdims=True)
    return np.sum(a * a) + np.sum(b * x)


def module_alias(x):
    return onp.sum(onp.tanh(x) * onp.exp(-x))


def math_functions(x, y):
    return math.exp(x) * math.sin(y) + math.log(1.0 + x * x) / math.sqrt(2.0 + math.cos(y))


@pytest.mark.parametrize("fn, args", [
    pytest.param(chained_comparison, (0.5,), id="0 < x < 1: inside"),
    pytest.param(chained_comparison, (1.5,), id="0 < x < 1: above"),
    pytest.param(chained_comparison, (-0.5,), id="0 < x < 1: below"),
    pytest.param(chained_comparison_array, (X4 * 0.2,), id="-1 < sum(x) <= 1 < 5: inside[vector]"),
    pytest.param(chained_comparison_array, (X4 + 1.0,), id="-1 < sum(x) <= 1 < 5: outside[vector]"),
    pytest.param(bool_ops, (0.5, 0.7), id="and: both positive"),
    pytest.param(bool_ops, (0.5, -0.7), id="or: one positive"),
    pytest.param(bool_ops, (-1.5, -0.7), id="not: below -1"),
    pytest.param(bool_ops, (-0.5, -0.7), id="and/or/not: fall through"),
    pytest.param(bool_ops_arrays, (X4, -np.abs(Y4)), id="and not[vector]"),
    pytest.param(bool_ops_arrays, (-np.abs(X4), np.abs(Y4)), id="or[vector]"),
    pytest.param(bool_ops_arrays, (-np.abs(X4), -np.abs(Y4)), id="fall through[vector]"),
    pytest.param(and_or_values, (1.5, 0.7), id="x > 1 and x*2 or y*3: and-arm"),
    pytest.param(and_or_values, (0.5, 0.7), id="x > 1 and x*2 or y*3: or-arm"),
    pytest.param(conditional_expression, (0.5,), id="if-expression: true arms"),
    pytest.param(conditional_expression, (-0.5,), id="if-expression: mixed arms"),
    pytest.param(conditional_expression, (1.5,), id="if-expression: other mixed arms"),
    pytest.param(conditional_expression_array, (np.abs(X4),), id="if-expression: true arm[vector]"),
    pytest.param(conditional_expression_array, (-np.abs(X4),), id="if-expression: false arm[vector]"),
    pytest.param(keyword_arguments, (X34,), id="np.sum(x, axis=0), np.mean(x, axis=1, keepdims=True)"),
    pytest.param(module_alias, (0.3,), id="import numpy as onp[float]"),
    pytest.param(module_alias, (X34,), id="import numpy as onp[matrix]"),
    pytest.param(math_functions, (0.3, -1.2), id="math functions"),
])
def test_expressions_match_finite_differences(fn, args):
    check_grad(fn, *args)


# ============================================================================ if / elif / else


def if_elif_else(x):
    if x > 1.0:
        y = x * x
    elif x > 0.0:
        y = np.sin(x)
    else:
        y = -2.0 * x
    return y * x


def if_elif_else_array(x):
    s = np.sum(x)
    if s > 1.0:
        y = x * x
    elif s > 0.0:
        y = np.sin(x)
    else:
        y = -2.0 * x
    return np.sum(y * V)


def if_without_else(x):
    y = x * 3.0
    if x > 0.0:
        y = y * x
    return y


def nested_ifs(x, y):
    if x > 0.0:
        if y > 0.0:
            z = x * y
        else:
            z = x - y * y
    else:
        if y > 1.0:
            z = np.exp(x) * y
        elif y > 0.0:
            z = x * x + y
        else:
            z = x + y
    return z * x


def branch_only_one_arm_uses_input(x, y):
    if x > 0.0:
        z = 2.0  # constant in this arm
    else:
        z = y * y
    return z * x


@pytest.mark.parametrize("fn, args", [
    pytest.param(if_elif_else, (1.5,), id="if arm"),
    pytest.param(if_elif_else, (0.5,), id="elif arm"),
    pytest.param(if_elif_else, (-0.5,), id="else arm"),
    pytest.param(if_elif_else_array, (np.abs(X4),), id="if arm[vector]"),
    pytest.param(if_elif_else_array, (0.1 * np.abs(X4),), id="elif arm[vector]"),
    pytest.param(if_elif_else_array, (-np.abs(X4),), id="else arm[vector]"),
    pytest.param(if_without_else, (0.5,), id="if without else: taken"),
    pytest.param(if_without_else, (-0.5,), id="if without else: not taken"),
    pytest.param(nested_ifs, (0.5, 0.7), id="nested: ++"),
    pytest.param(nested_ifs, (0.5, -0.7), id="nested: +-"),
    pytest.param(nested_ifs, (-0.5, 1.7), id="nested: -, y>1"),
    pytest.param(nested_ifs, (-0.5, 0.7), id="nested: -, 0<y<1"),
    pytest.param(nested_ifs, (-0.5, -0.7), id="nested: --"),
    pytest.param(branch_only_one_arm_uses_input, (0.5, 0.7), id="arm with a constant"),
    pytest.param(branch_only_one_arm_uses_input, (-0.5, 0.7), id="arm with the input"),
])
def test_branches_match_finite_differences(fn, args):
    check_grad(fn, *args)


# ============================================================================ loops


def for_range_stop(x):
    s = 0.0
    for i in range(4):
        s = s * x + i
    return np.sum(s)


def for_range_start_stop_step(x):
    s = x
    for i in range(1, 8, 3):
        s = s * x + np.sin(s) * i
    return np.sum(s)


def for_range_negative_step(x):
    s = 1.0
    for i in range(5, 0, -2):
        s = s * x - i * x
    return np.sum(s * s)


def for_range_over_len(x):
    s = 0.0
    for i in range(len(x)):
        s = s + x[i] * x[len(x) - 1 - i] * (i + 1)
    return s


def for_range_reverse_index(x):
    s = 0.0
    for i in range(len(x) - 1, -1, -1):
        s = s * 0.5 + x[i] * x[i]
    return s


def for_over_rows(x):
    s = 0.0
    for row in x:
        s = s + np.sum(np.tanh(row) * V)
    return s


def for_over_vector_elements(x):
    s = 1.0
    for e in x:
        s = s * (1.0 + e * e)
    return s


def nested_loops(x):
    s = 0.0
    for i in range(3):
        for j in range(i, 4):
            s = s + M[i, j] * x * (i + j) + np.sin(s) * 0.1
    return np.sum(s)


def nested_loops_over_rows(x):
    s = 0.0
    for row in x:
        for e in row:
            s = s * 0.9 + e * e
    return s


def while_counter(x):
    y = x
    i = 0
    while i < 5:
        y = np.sin(y) + x
        i += 1
    return np.sum(y * y)


def while_data_dependent(x):
    y = 1.0
    n = 0
    while y < 10.0:  # the number of iterations depends on x (locally constant)
        y = y * x
        n = n + 1
    return y + n


def for_with_break(x):
    s = 1.0
    for _ in range(10):
        s = s * x + 1.0
        if s > 5.0:
            break
    return s


def for_with_break_array(x):
    s = x
    for _ in range(10):
        s = s * 1.5 + x
        if np.sum(s) > 5.0:
            break
    return np.sum(s * V)


def while_with_break(x):
    s = x
    while True:
        s = s * s + 0.1
        if s > 3.0:
            break
    return s


def for_with_continue(x):
    s = 0.0
    for i in range(6):
        if i % 2 == 0:
            continue
        s = s + x ** i
    return s


def for_with_data_dependent_continue(x):
    s = 0.0
    for row in x:
        if np.sum(row) < 0.0:
            continue
        s = s + np.sum(row * row * V)
    return s


def while_with_continue(x):
    s = 0.0
    i = 0
    while i < 6:
        i = i + 1
        if i == 3:
            continue
        s = s + np.sin(x * i)
    return np.sum(s)


def loop_carried_rnn(x):
    h = np.zeros(3)
    for t in range(x.shape[0]):
        h = np.tanh(WH @ h + x[t])
    return np.sum(h * vec(0.5, -1.0, 2.0))


def loop_carried_rnn_weights(w, x):
    h = np.zeros(3)
    for t in range(x.shape[0]):
        h = np.tanh(w @ h + x[t])
    return np.sum(h * h)


def rnn_over_rows(w, x):
    h = x[0] * 0.0
    for xt in x:
        h = np.tanh(w @ h + xt)
    return np.sum(h)


def if_inside_loop(x):
    s = 0.0
    for i in range(5):
        if s > 1.0:
            s = s * 0.5 + x
        else:
            s = s + x * x * i
    return s


def if_inside_loop_array(x):
    h = x
    for _ in range(4):
        if np.sum(h) > 0.0:
            h = np.tanh(h) * 2.0 - 0.3
        else:
            h = h * h + 0.2
    return np.sum(h * V)


def while_inside_for(x):
    s = x
    for i in range(3):
        j = 0
        while j < i + 1:
            s = np.sin(s) + x * j
            j = j + 1
    return np.sum(s)


def data_dependent_while_inside_for(x):
    s = 0.0
    for i in range(3):
        y = 0.1
        while y < 2.0:
            y = y * 2.0 + x
        s = s + y * (i + 1)
    return s


def value_defined_in_loop_used_after(x):
    for i in range(4):
        last = x * i
        y = np.sin(last)
    return np.sum(last * y) + i * np.sum(x)


def loop_target_used_after(x):
    for row in x:  # noqa: B007 (row is used after the loop)
        pass
    return np.sum(row * row)


def loop_accumulates_list_free(x):
    total = x * 0.0
    count = 0
    for i in range(3):
        total = total + x ** (i + 1)
        count += 1
    return np.sum(total) / count


@pytest.mark.parametrize("fn, args", [
    pytest.param(for_range_stop, (0.7,), id="for in range(stop)[float]"),
    pytest.param(for_range_stop, (X4,), id="for in range(stop)[vector]"),
    pytest.param(for_range_start_stop_step, (0.7,), id="for in range(start, stop, step)[float]"),
    pytest.param(for_range_start_stop_step, (X34,), id="for in range(start, stop, step)[matrix]"),
    pytest.param(for_range_negative_step, (0.7,), id="for in range(5, 0, -2)[float]"),
    pytest.param(for_range_negative_step, (X4,), id="for in range(5, 0, -2)[vector]"),
    pytest.param(for_range_over_len, (X4,), id="for in range(len(x)) indexing x[i]"),
    pytest.param(for_range_reverse_index, (X4,), id="for in range(len(x)-1, -1, -1) indexing x[i]"),
    pytest.param(for_over_rows, (X34,), id="for row in matrix"),
    pytest.param(for_over_vector_elements, (X4,), id="for e in vector"),
    pytest.param(nested_loops, (0.7,), id="nested for loops[float]"),
    pytest.param(nested_loops, (X4,), id="nested for loops[vector]"),
    pytest.param(nested_loops_over_rows, (X34,), id="nested for over rows and elements"),
    pytest.param(while_counter, (0.7,), id="while with a counter[float]"),
    pytest.param(while_counter, (X34,), id="while with a counter[matrix]"),
    pytest.param(while_data_dependent, (1.7,), id="while with a data-dependent trip count (5 trips)"),
    pytest.param(while_data_dependent, (3.3,), id="while with a data-dependent trip count (2 trips)"),
    pytest.param(for_with_break, (1.3,), id="for with break: breaks"),
    pytest.param(for_with_break, (0.3,), id="for with break: runs to the end"),
    pytest.param(for_with_break_array, (np.abs(X4),), id="for with break[vector]: breaks"),
    pytest.param(for_with_break_array, (-np.abs(X4),), id="for with break[vector]: runs to the end"),
    pytest.param(while_with_break, (0.9,), id="while True with break"),
    pytest.param(for_with_continue, (0.7,), id="for with continue"),
    pytest.param(for_with_data_dependent_continue, (X34,), id="for with data-dependent continue[matrix]"),
    pytest.param(while_with_continue, (0.7,), id="while with continue[float]"),
    pytest.param(while_with_continue, (X4,), id="while with continue[vector]"),
    pytest.param(loop_carried_rnn, (RNG.uniform(-1, 1, (5, 3)),), id="RNN h = tanh(W @ h + x[t]), d/dx"),
    pytest.param(loop_carried_rnn_weights, (WH, RNG.uniform(-1, 1, (5, 3))), id="RNN, d/dW and d/dx"),
    pytest.param(rnn_over_rows, (WH, RNG.uniform(-1, 1, (4, 3))), id="RNN over rows, d/dW and d/dx"),
    pytest.param(if_inside_loop, (0.8,), id="if inside a loop (both arms taken)[float]"),
    pytest.param(if_inside_loop, (0.3,), id="if inside a loop (else arm only)[float]"),
    pytest.param(if_inside_loop_array, (X4,), id="if inside a loop[vector]"),
    pytest.param(if_inside_loop_array, (-np.abs(X4),), id="if inside a loop, else arm first[vector]"),
    pytest.param(while_inside_for, (0.7,), id="while inside for[float]"),
    pytest.param(while_inside_for, (X4,), id="while inside for[vector]"),
    pytest.param(data_dependent_while_inside_for, (0.35,), id="data-dependent while inside for"),
    pytest.param(value_defined_in_loop_used_after, (0.7,), id="value defined in a loop used after it[float]"),
    pytest.param(value_defined_in_loop_used_after, (X4,), id="value defined in a loop used after it[vector]"),
    pytest.param(loop_target_used_after, (X34,), id="loop target used after the loop"),
    pytest.param(loop_accumulates_list_free, (X4,), id="accumulator with += counter in a loop"),
])
def test_loops_match_finite_differences(fn, args):
    check_grad(fn, *args)


# ============================================================================ early returns


def several_returns(x):
    if x > 1.0:
        return x * x
    if x > 0.0:
        return np.sin(x)
    y = x * 3.0
    if y < -3.0:
        return y * y * x
    return y


def several_returns_array(x):
    s = np.sum(x)
    if s > 1.0:
        return np.sum(x * x)
    if s > 0.0:
        return np.sum(np.sin(x) * V)
    return np.sum(x * V) * 2.0


def return_inside_loop(x):
    s = x
    for i in range(10):
        s = s * 1.5 + 0.1
        if s > 4.0:
            return s * i
    return -s


def return_inside_loop_array(x):
    s = x
    for row in M:
        s = s + np.tanh(row * s)
        if np.sum(s) > 2.0:
            return np.sum(s * V)
    return np.sum(s)


def return_inside_while(x):
    s = x
    while s < 100.0:
        s = s * s + 0.5
        if s > 2.0:
            return s
    return 0.0


def return_inside_nested_ifs(x, y):
    if x > 0.0:
        if y > 0.0:
            return x * y
        else:
            if y < -1.0:
                return x * y * y
    else:
        if y > 0.0:
            return x + y
    return x - y


def return_inside_nested_loops(x):
    s = x
    for i in range(4):
        for j in range(4):
            s = s * 1.2 + 0.1 * j
            if s > 3.0:
                return s + i
    return s


@pytest.mark.parametrize("fn, args", [
    pytest.param(several_returns, (1.5,), id="several returns: first"),
    pytest.param(several_returns, (0.5,), id="several returns: second"),
    pytest.param(several_returns, (-1.5,), id="several returns: third"),
    pytest.param(several_returns, (-0.5,), id="several returns: last"),
    pytest.param(several_returns_array, (np.abs(X4),), id="several returns: first[vector]"),
    pytest.param(several_returns_array, (0.1 * np.abs(X4),), id="several returns: second[vector]"),
    pytest.param(several_returns_array, (-np.abs(X4),), id="several returns: last[vector]"),
    pytest.param(return_inside_loop, (0.7,), id="return inside a for loop: returns early"),
    pytest.param(return_inside_loop, (-0.7,), id="return inside a for loop: falls through"),
    pytest.param(return_inside_loop_array, (np.abs(X4),), id="return inside a for loop: early[vector]"),
    pytest.param(return_inside_loop_array, (-np.abs(X4) - 1.0,), id="return inside a for loop: falls through[vector]"),
    pytest.param(return_inside_while, (1.1,), id="return inside a while loop"),
    pytest.param(return_inside_nested_ifs, (0.5, 0.7), id="return inside nested ifs: ++"),
    pytest.param(return_inside_nested_ifs, (0.5, -1.7), id="return inside nested ifs: +, y<-1"),
    pytest.param(return_inside_nested_ifs, (0.5, -0.7), id="return inside nested ifs: +, falls to the end"),
    pytest.param(return_inside_nested_ifs, (-0.5, 0.7), id="return inside nested ifs: -+"),
    pytest.param(return_inside_nested_ifs, (-0.5, -0.7), id="return inside nested ifs: --, falls to the end"),
    pytest.param(return_inside_nested_loops, (0.9,), id="return inside nested loops"),
])
def test_early_returns_match_finite_differences(fn, args):
    check_grad(fn, *args)


# ============================================================================ inputs are not mutated


def uses_its_inputs_heavily(x, y):
    s = x * 1.0
    s += y
    t = s
    for _ in range(3):
        t = np.tanh(t) * x
    u = x[0] * y[::-1]
    return np.sum(t * u) + np.sum(x.T @ y)


@pytest.mark.parametrize("shape", [(4,), (3, 4)], ids=["vector", "matrix"])
def test_gradient_never_mutates_its_array_inputs(shape):
    rng = np.random.default_rng(3)
    x, y = rng.uniform(-1, 1, shape), rng.uniform(-1, 1, shape)
    x0, y0 = x.copy(), y.copy()
    g = symdiff.grad(uses_its_inputs_heavily, argnums=(0, 1))
    gx, gy = g(x, y)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(y, y0)
    assert gx is not x and gy is not y and not np.shares_memory(gx, x) and not np.shares_memory(gy, y)
    gx[...] = 7.0  # the gradients are fresh arrays: writing them leaves the inputs alone
    np.testing.assert_array_equal(x, x0)
    gx2, _ = g(x, y)  # and a second call (cached specialisation) neither
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(y, y0)
    check_grad(uses_its_inputs_heavily, x, y)
