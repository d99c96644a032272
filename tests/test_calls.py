"""Calls of the user's own Python functions are differentiated through by inlining them."""

import math

import numpy as np
from _helpers import clipped_square, softplus
from fd import check_grad

import symdiff

W = np.array([[0.4, -0.3], [0.1, 0.8], [-0.5, 0.2]])


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def layer(x, w, b=0.1):
    return sigmoid(x @ w + b)


def mlp_loss(x, w):
    return np.sum(layer(x, w) ** 2)


def test_module_level_helpers_calling_helpers_are_inlined():
    check_grad(mlp_loss, np.array([[0.3, -0.2, 0.5], [1.0, 0.1, -0.7]]), W)


def test_keyword_and_default_arguments_of_helpers():
    def f(x):
        return np.sum(layer(x, w=W) + layer(x, W, b=-0.3))

    check_grad(f, np.array([[0.3, -0.2, 0.5]]))


def test_helpers_imported_from_another_module():
    def f(x, t):
        return np.sum(softplus(x, beta=2.0)) + clipped_square(t)

    check_grad(f, np.array([0.3, -1.2]), 1.5)
    check_grad(f, np.array([0.3, -1.2]), 2.5)


def test_nested_helper_and_a_helper_held_in_a_closure():
    scale = 1.5

    def inner(t):
        return math.sin(t) * scale

    def make():
        def f(x):
            return inner(x) + inner(2.0 * x)
        return f

    check_grad(make(), 0.7)


def scaled_cube(t, k):
    for _ in range(3):
        t = t * k
    return t


def test_helper_with_a_loop_called_inside_a_loop():
    def f(x):
        s = 0.0
        for i in range(4):
            s = s + scaled_cube(x, 1.0 + 0.1 * i)
        return s

    check_grad(f, 0.8)


def early(t):
    if t < 0.0:
        return -t
    y = t * 3.0
    return y * y


def test_helper_with_early_returns_on_both_paths():
    def f(x):
        return early(x) + early(-2.0 * x)

    check_grad(f, 0.6)
    check_grad(f, -0.6)


def test_generated_source_points_back_into_the_helpers_file():
    g = symdiff.grad(mlp_loss, argnums=1)
    g(np.ones((2, 3)), W)
    assert "# line" in g.source
    assert "sigmoid" not in g.source.split("def ")[1].split("\n")[0]  # inlined, not called


def test_comments_for_code_inlined_from_another_file_name_that_file_and_quote_its_line():
    def f(x):
        return np.sum(softplus(x, beta=2.0))

    g = symdiff.grad(f)
    g(np.array([0.1, 0.3]))
    line = softplus.__code__.co_firstlineno + 1
    assert f"    # _helpers.py:{line}: return np.log1p(np.exp(beta * z)) / beta\n" in g.source


def test_helper_names_do_not_clash_with_the_callers():
    def f(z):
        t = z * 2.0
        return sigmoid(t) * t + sigmoid(z)  # sigmoid's own `z` is a different variable

    check_grad(f, 0.3)


def recursive_power(t, n):
    if n == 0:
        return 1.0
    return t * recursive_power(t, n - 1)


def tree(x, depth):
    if depth == 0:
        return np.sin(x)
    return tree(x * 0.5, depth - 1) + tree(x * x, depth - 1) * 0.3


def is_even_poly(x, n):
    return 1.0 if n == 0 else x * is_odd_poly(x + 0.1, n - 1)


def is_odd_poly(x, n):
    return 2.0 if n == 0 else np.cos(x) * is_even_poly(x, n - 1)


def test_recursive_functions_use_their_own_generated_vjp():
    check_grad(lambda x: recursive_power(x, 4) + math.sin(x), 0.7)
    check_grad(lambda x: np.sum(tree(x, 3)), np.array([0.3, -0.4]))
    g = symdiff.grad(lambda x: recursive_power(x, 4))
    g(0.7)
    assert "vjp_recursive_power(" in g.source


def test_mutually_recursive_functions():
    check_grad(lambda x: is_even_poly(x, 5), 0.4)
