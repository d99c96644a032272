"""Lambdas and defs inside the differentiated function, and functions passed as arguments."""

import math

import numpy as np
import pytest
from fd import check_grad

import symdiff


def uses_local_lambda(x):
    act = lambda z: np.tanh(z) * 2.0  # noqa: E731
    return np.sum(act(x) + act(x * x))


def uses_nested_def(x, y):
    scale = 3.0

    def inner(t, power=2.0):
        if t > 0.0:
            return scale * t ** power
        return -t * scale

    total = inner(x) + inner(y, power=3.0)
    scale = 0.5  # a closure reads the variable when called, as in Python
    return total + inner(x * y)


def test_lambda_assigned_inside_the_function():
    check_grad(uses_local_lambda, np.array([0.3, -0.8, 1.2]))


def test_nested_def_with_defaults_branches_and_closure_reads():
    check_grad(uses_nested_def, 0.7, 1.3)
    check_grad(uses_nested_def, -0.7, 1.3)


def apply_twice(f, x):
    return f(f(x))


def test_function_passed_as_an_argument_is_inlined():
    g = symdiff.grad(apply_twice, argnums=1)
    assert g(math.sin, 0.5) == pytest.approx(math.cos(math.sin(0.5)) * math.cos(0.5))
    assert g(lambda t: t * t, 1.5) == pytest.approx(4 * 1.5 ** 3)


def passes_a_local_function_on(x):
    f = lambda t: t * 2.0  # noqa: E731
    return sum(sorted([x, 2.0 * x], key=f))


def maps_a_local_function(x):
    f = lambda t: t * 2.0  # noqa: E731
    return sum(map(f, [x, x * x]))


def test_a_local_function_mapped_over_a_list_is_inlined_per_item():
    assert symdiff.grad(maps_a_local_function)(1.5) == pytest.approx(2.0 + 4.0 * 1.5)


def test_a_local_function_escaping_to_other_code_is_a_clear_error():
    with pytest.raises(symdiff.SymdiffError, match="called directly"):
        symdiff.grad(passes_a_local_function_on)(1.0)
