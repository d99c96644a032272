"""Gradients of functions thousands of statements long: the compiler's walks along chains of
values keep their own stacks (no RecursionError at Python's default limit), and the gradient
is right -- against the derivative carried forward alongside the function by hand, and
against central finite differences. (benchmarks/compile_scaling.py times such functions.)"""

from __future__ import annotations

import linecache
import math
from typing import Callable

import numpy as np
import pytest
from fd import numerical_grad

import symdiff


def define(name: str, body: list[str]) -> Callable:
    """The function ``name(x, y)`` with ``body``, its source registered with linecache."""
    source = "\n".join([f"def {name}(x, y):"] + ["    " + line for line in body]) + "\n"
    filename = f"<{name}, {len(body)} lines>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace = {"np": np, "math": math}
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102 -- the test's own source
    return namespace[name]


STRAIGHT = ("np.sin(a) * x", "a + np.tanh(y)", "a * 0.5 + x", "np.exp(-a * a)")


def straight_line(n: int) -> Callable:
    """``n`` assignments on arrays, each reading the one before, cycling through STRAIGHT."""
    return define("straight", ["a = x * y"] + [f"a = {STRAIGHT[k % 4]}" for k in range(1, n - 1)]
                  + ["return np.sum(a)"])


def straight_line_gradient(n: int, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The gradient of ``straight_line(n)``, each value's derivatives carried forward with it
    (every step is elementwise, so they are arrays like x and y)."""
    a, ax, ay = x * y, y.copy(), x.copy()
    for k in range(1, n - 1):
        step = k % 4
        if step == 0:
            a, ax, ay = np.sin(a) * x, np.cos(a) * ax * x + np.sin(a), np.cos(a) * ay * x
        elif step == 1:
            a, ay = a + np.tanh(y), ay + 1 - np.tanh(y) ** 2
        elif step == 2:
            a, ax, ay = a * 0.5 + x, ax * 0.5 + 1, ay * 0.5
        else:
            e = np.exp(-a * a)
            a, ax, ay = e, -2 * a * e * ax, -2 * a * e * ay
    return ax, ay


def if_chain(lines: int) -> Callable:
    """About ``lines`` lines of ``if``/``else`` on a Python float, each reading the last result."""
    body = ["s = x * y"]
    for k in range((lines - 2) // 4):
        body += [f"if s > {(k % 7) / 7 - 0.5:.2f}:", "    s = s * 0.9 + math.sin(x)", "else:", "    s = s + y * 0.1"]
    return define("if_chain", body + ["return s"])


def if_chain_gradient(lines: int, x: float, y: float) -> tuple[float, float]:
    """The gradient of ``if_chain(lines)``, carried forward along the branches the value takes."""
    s, sx, sy = x * y, y, x
    for k in range((lines - 2) // 4):
        if s > round((k % 7) / 7 - 0.5, 2):
            s, sx, sy = s * 0.9 + math.sin(x), sx * 0.9 + math.cos(x), sy * 0.9
        else:
            s, sy = s + y * 0.1, sy + 0.1
    return sx, sy


def test_a_3000_statement_straight_line_function_has_the_right_gradient():
    x, y = np.linspace(0.1, 0.9, 5), np.linspace(1.0, 2.0, 5)
    f = straight_line(3000)
    gx, gy = symdiff.grad(f, argnums=(0, 1))(x, y)
    want_x, want_y = straight_line_gradient(3000, x, y)
    np.testing.assert_allclose(gx, want_x, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(gy, want_y, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(gx, numerical_grad(f, [x, y], 0), rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("x, y", [(0.3, 0.7), (-0.4, 1.3)])
def test_a_1000_line_if_chain_has_the_right_gradient(x, y):
    f = if_chain(1000)
    gx, gy = symdiff.grad(f, argnums=(0, 1))(x, y)
    want_x, want_y = if_chain_gradient(1000, x, y)
    assert type(gx) is float and type(gy) is float
    assert gx == pytest.approx(want_x, rel=1e-12, abs=1e-12) and gy == pytest.approx(want_y, rel=1e-12, abs=1e-12)
    assert gx == pytest.approx(numerical_grad(f, [x, y], 0), rel=1e-5, abs=1e-7)
    assert gy == pytest.approx(numerical_grad(f, [x, y], 1), rel=1e-5, abs=1e-7)
