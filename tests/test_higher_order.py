"""Derivatives of derivatives: functions symdiff made are differentiated again (to any order),
called inside differentiated functions, and passed to every transformation.

Each result is compared with central finite differences of the lower-order derivative (itself
checked against finite differences elsewhere), never with a hard-coded number.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import symdiff

EPS = 1e-5


def central(f, x, direction=None, eps=EPS):
    """Central finite difference of ``f`` at ``x`` (along ``direction`` for arrays)."""
    if direction is None:
        return (f(x + eps) - f(x - eps)) / (2 * eps)
    return (f(x + eps * direction) - f(x - eps * direction)) / (2 * eps)


def scalar_f(x):
    return math.sin(x) * x ** 3 + math.exp(0.3 * x)


def array_f(w):
    return np.sum(np.tanh(w) ** 2 * w) + np.sum(w ** 3) / 3.0


SCALAR_GRAD = symdiff.grad(scalar_f)
ARRAY_GRAD = symdiff.grad(array_f)
V = np.array([1.0, -2.0, 0.5])


def calls_array_grad(w):
    return np.sum(ARRAY_GRAD(w) * V)


def calls_scalar_grad_in_a_loop(x):
    total = 0.0
    for k in range(3):
        total = total + SCALAR_GRAD(x * (k + 1)) * k
    return total


@pytest.mark.parametrize("x", [0.7, -1.3, 2.1])
def test_grad_of_grad_is_the_derivative_of_the_gradient(x):
    second = symdiff.grad(SCALAR_GRAD)
    np.testing.assert_allclose(second(x), central(SCALAR_GRAD, x), rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("x", [0.7, -1.3])
def test_third_and_fourth_derivatives(x):
    second = symdiff.grad(SCALAR_GRAD)
    third = symdiff.grad(second)
    fourth = symdiff.grad(third)
    np.testing.assert_allclose(third(x), central(second, x), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(fourth(x), central(third, x), rtol=1e-6, atol=1e-6)


def test_value_and_grad_of_a_gradient():
    value, slope = symdiff.value_and_grad(SCALAR_GRAD)(0.4)
    assert value == SCALAR_GRAD(0.4)
    np.testing.assert_allclose(slope, central(SCALAR_GRAD, 0.4), rtol=1e-7)


def test_grad_of_a_gradient_of_an_array_argument_needs_a_scalar_output():
    with pytest.raises(symdiff.SymdiffError, match="needs a scalar output"):
        symdiff.grad(ARRAY_GRAD)(np.ones(3))


def test_grad_of_a_function_calling_a_gradient_is_a_hessian_vector_product():
    w = np.array([0.1, 0.5, -0.3])
    got = symdiff.grad(calls_array_grad)(w)
    np.testing.assert_allclose(got, central(ARRAY_GRAD, w, V), rtol=1e-6, atol=1e-8)  # H is symmetric
    np.testing.assert_allclose(got, symdiff.hvp(array_f)(w, V), rtol=1e-10)


def test_a_gradient_called_in_a_loop_is_differentiated():
    x = 0.3
    np.testing.assert_allclose(symdiff.grad(calls_scalar_grad_in_a_loop)(x),
                               central(calls_scalar_grad_in_a_loop, x), rtol=1e-6)


def test_a_gradient_passed_as_an_argument_is_differentiated():
    def twice(f, x):
        return f(x) * 2.0

    x = 1.1
    np.testing.assert_allclose(symdiff.grad(twice, argnums=1)(SCALAR_GRAD, x),
                               2.0 * central(SCALAR_GRAD, x), rtol=1e-7)


def test_jacobians_of_a_gradient_are_the_hessian():
    w = np.array([0.2, -0.7, 1.1])
    fd = np.stack([central(ARRAY_GRAD, w, e) for e in np.eye(3)], axis=1)
    np.testing.assert_allclose(symdiff.jacfwd(ARRAY_GRAD)(w), fd, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(symdiff.jacrev(ARRAY_GRAD)(w), fd, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(symdiff.hessian(array_f)(w), fd, rtol=1e-6, atol=1e-8)


def test_jvp_and_vjp_of_a_gradient():
    w, t, u = np.array([0.2, -0.7, 1.1]), np.array([0.3, 0.1, -1.0]), np.array([1.0, 2.0, 3.0])
    out, tangent = symdiff.jvp(ARRAY_GRAD, (w,), (t,))
    np.testing.assert_allclose(out, ARRAY_GRAD(w))
    np.testing.assert_allclose(tangent, central(ARRAY_GRAD, w, t), rtol=1e-6, atol=1e-8)
    out, pullback = symdiff.vjp(ARRAY_GRAD, w)
    hessian = symdiff.hessian(array_f)(w)
    np.testing.assert_allclose(pullback(u)[0], hessian.T @ u, rtol=1e-10)


def test_a_hessian_vector_product_is_differentiated_again():
    product = symdiff.hvp(scalar_f)

    def along(x):
        return product(x, 1.0)  # the second derivative

    x = 0.9
    np.testing.assert_allclose(symdiff.grad(along)(x), central(along, x), rtol=1e-6)
    np.testing.assert_allclose(symdiff.grad(lambda x: product(x, 2.0))(x), 2.0 * central(along, x), rtol=1e-6)


def test_higher_derivative_source_says_what_it_computes():
    second = symdiff.grad(SCALAR_GRAD)
    second(0.5)
    assert "a derivative of order 2" in second.source
    assert "def grad_grad_scalar_f(x):" in second.source


def two_args(x, y):
    return np.sin(x) * np.sum(y ** 2) + x ** 3 * y[0]


@pytest.mark.parametrize("outer", [symdiff.jacfwd, symdiff.jacrev])
@pytest.mark.parametrize("inner", [symdiff.jacfwd, symdiff.jacrev])
@pytest.mark.parametrize("argnum", [0, 1])
def test_jacobians_of_jacobians_are_second_derivatives(outer, inner, argnum):
    x, y = np.array([0.3, -0.5]), np.array([1.0, 2.0, 0.5])
    jacobian = inner(two_args)
    got = outer(jacobian, argnums=argnum)(x, y)

    def moved(step):
        return jacobian(x + step, y) if argnum == 0 else jacobian(x, y + step)

    size = (x, y)[argnum].size
    fd = np.stack([(moved(EPS * u) - moved(-EPS * u)) / (2 * EPS) for u in np.eye(size)], axis=-1)
    assert got.shape == (2, 2, size)
    np.testing.assert_allclose(got, fd, rtol=1e-6, atol=1e-8)


def rosenbrock_pair(p):
    x, y = p
    return (1 - x) ** 2 + 100 * (y - x ** 2) ** 2


def weighted_cubes(p):
    return np.sum(p["w"] ** 3) * p["c"]


def test_hessian_of_a_tuple_argument_has_its_structure_twice():
    x, y = 1.2, 0.8
    got = symdiff.hessian(rosenbrock_pair)((x, y))
    expected = ((1200 * x ** 2 - 400 * y + 2, -400 * x), (-400 * x, 200.0))  # by hand
    np.testing.assert_allclose(np.array(got), np.array(expected), rtol=1e-12)


def test_hessian_of_a_dict_argument_by_blocks():
    w, c = np.array([1.0, 2.0]), 0.5
    got = symdiff.hessian(weighted_cubes)({"w": w, "c": c})
    np.testing.assert_allclose(got["w"]["w"], np.diag(6 * w * c))
    np.testing.assert_allclose(got["w"]["c"], 3 * w ** 2)
    np.testing.assert_allclose(got["c"]["w"], 3 * w ** 2)
    assert got["c"]["c"] == 0.0


def test_hessian_with_a_tuple_argnums_gives_blocks():
    a, b = np.array([0.1, 0.4]), np.array([1.0, 2.0])
    blocks = symdiff.hessian(two_args_same_shape, argnums=(0, 1))(a, b)
    gradient = symdiff.grad(two_args_same_shape, argnums=(0, 1))
    for j, arg in enumerate((a, b)):
        for i in range(2):
            def moved(step, i=i, j=j):
                shifted = [a, b]
                shifted[j] = shifted[j] + step
                return gradient(*shifted)[i]
            fd = np.stack([(moved(EPS * u) - moved(-EPS * u)) / (2 * EPS) for u in np.eye(arg.size)], axis=-1)
            np.testing.assert_allclose(blocks[i][j], fd, rtol=1e-6, atol=1e-8)


def two_args_same_shape(a, b):
    return np.sum(np.sin(a) * b ** 2) + a[0] * b[1]


def test_hessian_argnums_out_of_range_is_a_clear_error():
    with pytest.raises(symdiff.SymdiffError, match="out of range"):
        symdiff.hessian(two_args_same_shape, argnums=(0, 2))
