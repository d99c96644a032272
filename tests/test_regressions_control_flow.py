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
    first = grad(*args)
    np.testing.assert_allclose(grad(*args), first, rtol=1e-12, atol=1e-12)
    check_grad(fn, *args, argnums=argnums)


# ============================================================================ loops sharing a range


def two_loops_over_one_range(t):
    for k in range(3):
        t = np.sin(t)
    for k in range(3):
        t = np.sin(t)
    return np.sum(t)


def list_built_in_one_loop_read_in_another(x):
    hs = []
    for k in range(3):
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
    for j in range(3):
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
    for i in range(2):
        for j in range(4):
            x = x * 1.1
            if j >= 1:
                break
        for j in range(2):
            x = np.sin(x)
    return np.sum(x)


def loop_after_while_with_break(x):
    k = 0
    while True:
        x = x * 1.2
        k += 1
        if k >= 2:
            break
    for j in range(3):
        x = np.cos(x)
    return np.sum(x)


@pytest.mark.parametrize("arg", [0.7, X3], ids=["float", "vector"])
@pytest.mark.parametrize("fn", [for_after_loop_with_break, while_after_loop_with_break,
                                comprehension_after_loop_with_break, inner_loops_after_inner_break,
                                loop_after_while_with_break])
def test_a_break_does_not_stop_the_loops_after_its_own(fn, arg):
    check(fn, arg)
