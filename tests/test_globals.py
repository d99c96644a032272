"""Globals and closure variables: compiled in, and checked on every call (rebinding one
recompiles; changing an array in place is seen, since the gradient reads the array)."""

import numpy as np

import symdiff

SCALE = 2.0
WEIGHTS = np.array([1.0, -1.0, 0.5])


def scaled(x):
    return np.sum(x * WEIGHTS) * SCALE


def test_rebinding_a_global_recompiles_the_gradient():
    global SCALE, WEIGHTS
    g = symdiff.grad(scaled)
    x = np.ones(3)
    np.testing.assert_allclose(g(x), 2.0 * WEIGHTS)
    old_scale, old_weights = SCALE, WEIGHTS
    try:
        SCALE = 3.0
        np.testing.assert_allclose(g(x), 3.0 * WEIGHTS)
        WEIGHTS = np.array([0.0, 1.0, 2.0, 3.0])  # a new array, even of another shape
        np.testing.assert_allclose(g(np.ones(4)), 3.0 * WEIGHTS)
    finally:
        SCALE, WEIGHTS = old_scale, old_weights
    np.testing.assert_allclose(g(x), 2.0 * WEIGHTS)


def test_changing_a_global_array_in_place_is_seen():
    g = symdiff.grad(scaled)
    x = np.ones(3)
    g(x)
    saved = WEIGHTS.copy()
    try:
        WEIGHTS[0] = 10.0
        np.testing.assert_allclose(g(x), 2.0 * WEIGHTS)
    finally:
        WEIGHTS[:] = saved


def helper(t):
    return t * t


def calls_helper(x):
    return helper(x) + 1.0


def test_redefining_an_inlined_helper_recompiles():
    global helper
    g = symdiff.grad(calls_helper)
    assert g(3.0) == 6.0
    original = helper
    try:
        def helper(t):
            return t * t * t
        assert g(3.0) == 27.0
    finally:
        helper = original


def test_rebinding_a_closure_variable_recompiles():
    k = 2.0

    def f(x):
        return x * k

    g = symdiff.grad(f)
    assert g(1.0) == 2.0
    k = 5.0
    assert g(1.0) == 5.0
