"""Forward mode: a gradient with respect to one Python number, of code where everything that
depends on it is a Python number, carries the derivative alongside the computation (no tape,
no backward sweep). Each case is checked against central finite differences."""

import math

import numpy as np
import pytest
from fd import check_grad, numerical_grad

import symdiff
from symdiff import NoRuleError, passes


def branchy(x, n):
    s = x
    for _ in range(n):
        if s > 1.0:
            s = s * 0.9 + math.sin(x)
        else:
            s = s * 1.1 + x * 0.01
    return s


def doubling(x):
    y = x
    while y < 100.0:
        y = y * 2.0 + math.exp(-x)
    return y


def nested(x, n, m):
    total = 0.0
    for i in range(n):
        for j in range(m):
            total = total + math.tanh(x * i - j) / (1.0 + x * x)
    return total


def piecewise(x):
    y = x * x if x < 1.0 else math.log(x) + 1.0
    return y ** 3 - abs(x - 0.5)


@pytest.mark.parametrize("f, args", [(branchy, (0.5, 10)), (branchy, (0.5, 1000)), (branchy, (1.5, 0)),
                                     (doubling, (1.7,)), (nested, (0.3, 3, 4)), (piecewise, (0.7,)),
                                     (piecewise, (2.5,))])
def test_forward_mode_gradients_match_finite_differences(f, args):
    check_grad(f, *args, argnums=0)


@pytest.mark.optimized_source
def test_a_scalar_loop_carries_its_derivative_instead_of_recording():
    g = symdiff.grad(branchy)
    g(0.5, 10)
    assert "forward mode" in g.source.splitlines()[0]
    assert "_stack" not in g.source and "reversed" not in g.source and "pop" not in g.source


def test_int_arguments_and_value_and_grad_and_aux():
    assert symdiff.grad(lambda x, n: x * n)(2.0, 3) == 3.0
    assert type(symdiff.grad(lambda x, n: x * n)(2.0, 3)) is float
    assert symdiff.grad(lambda k: k * k)(3) == 6.0
    value, grad = symdiff.value_and_grad(branchy)(0.5, 10)
    assert value == branchy(0.5, 10)
    assert grad == pytest.approx(numerical_grad(branchy, [0.5, 10], 0), rel=1e-6)
    (loss, aux), grad = symdiff.value_and_grad(lambda x: (x ** 3, x + 1.0), has_aux=True)(2.0)
    assert (loss, aux, grad) == (8.0, 3.0, 12.0)
    assert symdiff.grad(branchy, argnums=(0,))(0.5, 10) == (pytest.approx(numerical_grad(branchy, [0.5, 10], 0)),)


def test_array_intermediates_use_reverse_mode():
    def f(x):
        v = np.array([1.0, 2.0]) * x
        return float(np.sum(v * v))

    g = symdiff.grad(f)
    assert g(1.5) == pytest.approx(10.0 * 1.5)  # d/dx 5 x**2
    assert "forward mode" not in g.source


def test_a_call_without_a_rule_is_an_error_located_at_the_call():
    def f(x):
        return math.gamma(x) * 2.0 + x

    with pytest.raises(NoRuleError, match=r"test_forward.py:\d+: .*math.gamma"):
        symdiff.grad(f)(1.5)


def remainder_of_a_varying_divisor(x, y):
    s = 0.0
    for _ in range(3):
        x = x % math.tanh(2.0 + math.tanh(s)) + y
        s = x
    return s * s


def test_remainder_by_an_active_divisor_keeps_python_floats():
    grad = symdiff.grad(remainder_of_a_varying_divisor)(0.684, 0.77)
    assert type(grad) is float
    assert grad == pytest.approx(numerical_grad(remainder_of_a_varying_divisor, [0.684, 0.77], 0), rel=1e-6)


def while_inside_for_after_an_update(x):
    s = x
    for _ in range(1, 4):
        s = s + math.sin(s)  # its derivative reads the old s, after the new one is made
        k = 0
        while k < 2:
            k += 1
            s = s * 0.8
    return s


def test_a_loop_carried_name_is_not_shared_while_its_old_value_is_still_read():
    g = symdiff.grad(while_inside_for_after_an_update)
    assert g(0.8) == pytest.approx(numerical_grad(while_inside_for_after_an_update, [0.8], 0), rel=1e-6)
    assert ("forward mode" in g.source) == passes.enabled("forward")
