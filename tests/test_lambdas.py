"""Lambdas: differentiated like defs, including several on one line."""

import numpy as np
import pytest
from fd import check_grad

import symdiff

RNG = np.random.default_rng(3)
X = RNG.normal(size=(20, 3))
Y = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * RNG.normal(size=20)


def loss(w, X, y):
    return np.mean((X @ w - y) ** 2) + 0.01 * np.sum(w * w)


def test_top_level_lambda():
    check_grad(lambda x: x ** 3 + 2.0 * x, 0.7)


def test_lambda_calling_a_function_with_captured_data():
    w = np.array([0.3, 0.1, -0.2])
    check_grad(lambda w: loss(w, X, Y), w)


def test_two_lambdas_on_one_line_each_get_their_own_gradient():
    f, g = symdiff.grad(lambda x: x * x), symdiff.grad(lambda x: x * x * x)
    assert f(2.0) == 4.0
    assert g(2.0) == 12.0


def test_lambda_gradient_as_jac_in_scipy_minimize():
    optimize = pytest.importorskip("scipy.optimize")
    w0 = np.zeros(3)
    result = optimize.minimize(lambda w: loss(w, X, Y), w0, jac=symdiff.grad(lambda w: loss(w, X, Y)),
                               method="BFGS")
    assert result.success
    np.testing.assert_allclose(symdiff.grad(loss)(result.x, X, Y), 0.0, atol=1e-5)
