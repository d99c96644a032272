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


class Spring:
    """A user object whose method is given a rule of its own."""

    def __init__(self, stiffness):
        self.stiffness = stiffness

    def energy(self, x):
        return 0.5 * self.stiffness * np.sum(x ** 2)


spring = Spring(2.0)


def spring_loss(x):
    return spring.energy(x) + np.sum(x)


def test_rule_registered_for_a_method_of_a_user_object_is_used():
    x = np.array([0.5, -1.0])
    np.testing.assert_allclose(symdiff.grad(spring_loss)(x), 2.0 * x + 1.0)  # inlined without a rule
    symdiff.defvjp(spring.energy, lambda g, ans, x: g * 10.0 * x)  # (not its true derivative: to see it used)

    def spring_loss_with_rule(x):
        return spring.energy(x) + np.sum(x)

    np.testing.assert_allclose(symdiff.grad(spring_loss_with_rule)(x), 10.0 * x + 1.0)


def test_rule_of_one_object_does_not_reach_another_of_its_class():
    other = Spring(3.0)
    symdiff.defvjp(spring.energy, lambda g, ans, x: g * 10.0 * x)

    def other_loss(x):
        return other.energy(x)

    x = np.array([0.5, -1.0])
    np.testing.assert_allclose(symdiff.grad(other_loss)(x), 3.0 * x)


def test_rule_registered_for_a_scipy_distribution_method_is_used():
    stats = pytest.importorskip("scipy.stats")
    from scipy.stats import norm

    symdiff.defvjp(norm.logpdf, lambda g, ans, x, *args, **kw: g * 7.0)  # a fresh bound method: the same key

    def through_name(x):
        return np.sum(norm.logpdf(x, 0.0, 2.0))

    def through_module(x):
        return np.sum(stats.norm.logpdf(x))

    x = np.array([0.5, -1.0])
    np.testing.assert_allclose(symdiff.grad(through_name)(x), [7.0, 7.0])
    np.testing.assert_allclose(symdiff.grad(through_module)(x), [7.0, 7.0])


def test_forward_mode_through_a_method_with_a_user_rule_asks_for_its_jvp_by_name():
    symdiff.defvjp(spring.energy, lambda g, ans, x: g * 10.0 * x)

    def energy_only(x):
        return spring.energy(x)

    x = np.array([0.5, -1.0])
    with pytest.raises(symdiff.NoRuleError, match=r"symdiff\.defjvp\((?:[\w.]+\.)?spring\.energy, lambda t, ans"):
        symdiff.jvp(energy_only, (x,), (np.ones(2),))
    symdiff.defjvp(spring.energy, lambda t, ans, x: np.sum(t * 10.0 * x))  # (as the message says)

    def energy_again(x):
        return spring.energy(x)

    np.testing.assert_allclose(symdiff.jvp(energy_again, (x,), (np.ones(2),))[1], -5.0)
