"""Mutation inside the function is compiled as functional updates: gradients route correctly
(overwritten values get none) and the caller's arrays are never changed."""

import numpy as np
import pytest
from fd import check_grad

X = np.array([0.3, -0.8, 1.1, 0.5])
M = np.array([[0.2, -0.4, 0.9], [1.2, 0.3, -0.6]])


def set_item(x):
    y = x * 2.0
    y[0] = np.sin(x[1])  # the overwritten y[0] = 2 x[0] gets no gradient
    return np.sum(y * y)


def add_to_item(x):
    y = x * 1.0
    y[2] += x[0] * x[3]
    return np.sum(y ** 3)


def set_column(m, v):
    a = m * 1.0
    a[:, 1] = v
    return np.sum(a * a * m)


def in_place_operators(x, y):
    a = x * 1.0
    a += y
    a *= x
    a -= 0.5 * y
    a /= 2.0
    return np.sum(a * a)


def fill_in_a_loop(x):
    out = np.zeros(x.shape[0])
    for i in range(x.shape[0]):
        out[i] = np.tanh(x[i]) * x[i]
    return np.sum(out * out)


def mutate_argument(x):
    x[0] = 5.0  # changes only symdiff's view of x: the caller's array stays as it was
    x += 1.0
    return np.sum(x * x)


@pytest.mark.parametrize("fn, args", [
    (set_item, (X,)), (add_to_item, (X,)), (set_column, (M, np.array([0.5, -1.5]))),
    (in_place_operators, (X, X[::-1].copy())), (fill_in_a_loop, (X,)), (mutate_argument, (X,)),
])
def test_mutation_patterns_match_finite_differences_and_leave_arguments_alone(fn, args):
    before = [a.copy() for a in args]
    check_grad(fn, *[a.copy() for a in args])  # check_grad also asserts inputs are unchanged
    import symdiff
    symdiff.grad(fn, argnums=tuple(range(len(args))))(*args)
    for a, b in zip(args, before):
        np.testing.assert_array_equal(a, b)


def repeated_fancy_assignment(x, v):
    y = x * 1.0
    y[[0, 2, 0]] = v * v  # position 0 is written twice: the last write (v[2]) wins
    return np.sum(y * np.array([1.0, 2.0, 3.0, 4.0]))


def test_repeated_fancy_index_assignment_gives_gradient_only_to_the_winning_write():
    import symdiff
    x, v = np.array([0.3, -0.8, 1.1, 0.5]), np.array([0.5, -1.5, 2.0])
    check_grad(repeated_fancy_assignment, x, v)
    dv = symdiff.grad(repeated_fancy_assignment, argnums=1)(x, v)
    assert dv[0] == 0.0
