"""Public rule registration: symdiff.defvjp gives a function a derivative rule, inlined into
generated code like the built-in ones."""

import numpy as np
import pytest
from fd import check_grad

import symdiff
from symdiff import primitives


@pytest.fixture(autouse=True)
def registry():
    """Rules registered by a test are removed after it (the registry is global)."""
    with primitives.restored():
        symdiff.defvjp(softplus, lambda g, ans, x: g * (1.0 - np.exp(-ans)))
        yield


def softplus(x):
    return np.log1p(np.exp(x))


def loss(x):
    return np.sum(softplus(x) ** 2)


def test_registered_rule_is_used_and_correct():
    check_grad(loss, np.array([0.3, -1.2, 2.0]))


def test_registered_rule_body_is_inlined_in_the_source():
    g = symdiff.grad(loss)
    g(np.array([0.3, -1.2]))
    assert "1.0 - np.exp(-softplus" in g.source  # the rule's expression, with the user's names
    assert "softplus(x)" in g.source  # the forward calls the function itself


def test_rule_for_a_c_function_from_another_library():
    special = pytest.importorskip("scipy.special")
    symdiff.defvjp(special.expit, lambda g, ans, x: g * ans * (1.0 - ans))

    def f(x):
        return np.sum(special.expit(x) * x)

    check_grad(f, np.array([0.5, -0.25, 1.5]))


def opaque(x):
    return x * 2.0


def test_nondifferentiable_registration_gives_zero():
    symdiff.defnondiff(opaque)

    def f(x):
        return np.sum(opaque(x) + x)

    np.testing.assert_array_equal(symdiff.grad(f)(np.ones(3)), np.ones(3))
