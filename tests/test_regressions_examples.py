"""Cases found by running HIPS/autograd's examples through symdiff (samples/autograd_examples),
each minimised."""

import numpy as np
import pytest
from fd import check_grad
from jvpcheck import check_jvp

import symdiff
from symdiff import NoRuleError, primitives


@pytest.fixture(autouse=True)
def registry():
    """Rules registered by a test are removed after it (the registry is global)."""
    with primitives.restored():
        yield


def lse(x):
    return np.log(np.sum(np.exp(x)))


def squared_lse(y):
    return lse(y ** 2)


def full_shape_rule(g, ans, x):
    # define_gradient.py's rule: np.full(x.shape, g) cannot run on the symbols rules are traced with
    return np.full(x.shape, g) * np.exp(x - np.full(x.shape, ans))


def test_a_rule_that_cannot_be_traced_is_called_on_the_values_when_the_gradient_runs():
    symdiff.defvjp(lse, full_shape_rule)
    check_grad(squared_lse, np.array([0.3, -0.2, 0.5]))
    source = symdiff.grad(squared_lse).source
    assert "rule_lse(" in source and "np.full" not in source  # the rule is called, not inlined
    assert ".shape" not in source  # and what it emitted before it raised is dropped


def branching_rule(g, ans, x):
    if np.ndim(x) == 0:  # an if on a value: runs on values, not on symbols
        return g * np.exp(x - ans)
    return g * np.exp(x - ans)


def test_a_rule_branching_on_a_value_runs_in_a_loop_on_the_taped_values():
    def looped(x):
        total = 0.0
        for k in range(3):
            total = total + lse(x * (k + 1.0))
        return total

    symdiff.defvjp(lse, branching_rule)
    check_grad(looped, np.array([0.3, -0.2, 0.5]))


def test_a_rule_that_cannot_be_traced_raises_its_own_errors_when_the_gradient_runs():
    def wrong(g, ans, x):
        raise ValueError("from the rule")

    symdiff.defvjp(lse, wrong)
    with pytest.raises(ValueError, match="from the rule"):
        symdiff.grad(squared_lse)(np.arange(3.0))


def tanh_of(x):
    return np.tanh(x)


def tanh_jvp(t, ans, x):
    if np.ndim(x) > 8:  # an if on a value: the rule runs on values
        raise AssertionError
    return t * (1.0 - ans ** 2)


def weighted_tanh(x):
    return np.sum(tanh_of(x) * x)


def test_a_forward_rule_that_cannot_be_traced_is_called_on_the_values():
    symdiff.defjvp(tanh_of, tanh_jvp)
    check_jvp(weighted_tanh, [np.array([0.3, -0.2, 0.5])], [0], np.random.default_rng(0))


def test_differentiating_a_rule_called_on_values_again_is_refused_naming_the_rule():
    symdiff.defjvp(tanh_of, tanh_jvp)
    symdiff.defvjp(tanh_of, lambda g, ans, x: g * (1.0 - ans ** 2))
    x, v = np.array([0.3, -0.2, 0.5]), np.ones(3)
    with pytest.raises(NoRuleError, match=r"rule tanh_jvp \(.*test_regressions_examples.py:\d+\) registered for "
                                          r".*tanh_of could not be traced.*higher order") as info:
        symdiff.hvp(weighted_tanh)(x, v)
    assert "np.where" in str(info.value)


def test_a_table_rule_that_raises_while_traced_is_still_an_internal_error():
    # only rules given with defvjp/defjvp run on values; symdiff's own must trace
    from symdiff import rules

    assert not rules.given_by_user(rules.lookup(np.tanh)[0])


def test_the_same_rule_written_with_full_like_gives_the_gradient():
    symdiff.defvjp(lse, lambda g, ans, x: np.full_like(x, g) * np.exp(x - ans))
    check_grad(squared_lse, np.array([0.3, -0.2, 0.5]))


def joined(x, flag):
    args = (x,) if flag else (x, 2.0 * x)
    return np.sum(np.hstack(args + (x ** 2,)))


def joined_twice(x, flag):
    args = (x,) if flag else (x, 3.0 * x)
    return np.sum(np.stack(args + args) ** 2)


def joined_lists(x, flag):
    parts = [np.sin(x)] if flag else [np.sin(x), np.cos(x)]
    parts = parts + [x * x]
    return np.sum(parts[-1] * parts[0]) + np.sum(np.concatenate(parts))


@pytest.mark.parametrize("flag", [True, False])
@pytest.mark.parametrize("fn", [joined, joined_twice, joined_lists])
def test_sequences_joined_by_plus_split_their_cotangent_between_the_operands(fn, flag):
    # rnn.py's concat_and_multiply: np.hstack(args + (ones,)) with args a tuple whose length the
    # compiler does not know (here: set by an if); `+` joins the tuples, it adds no numbers
    check_grad(fn, np.array([0.3, -0.2, 0.5]), flag, argnums=0)


@pytest.mark.parametrize("flag", [True, False])
@pytest.mark.parametrize("fn", [joined, joined_twice, joined_lists])
def test_sequences_joined_by_plus_have_the_tangent_of_their_items(fn, flag):
    check_jvp(fn, [np.array([0.3, -0.2, 0.5]), flag], [0], np.random.default_rng(0))
