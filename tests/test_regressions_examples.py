"""Cases found by running HIPS/autograd's examples through symdiff (samples/autograd_examples),
each minimised."""

import numpy as np
import pytest
from fd import check_grad
from jvpcheck import check_jvp

import symdiff
from symdiff import InternalError, SymdiffError, primitives


@pytest.fixture(autouse=True)
def registry():
    """Rules registered by a test are removed after it (the registry is global)."""
    with primitives.restored():
        yield


def lse(x):
    return np.log(np.sum(np.exp(x)))


def squared_lse(y):
    return lse(y ** 2)


def test_a_rule_making_an_array_of_a_symbolic_shape_is_a_user_error_that_says_what_to_write():
    # define_gradient.py's rule: np.full(x.shape, g) cannot run on the symbols rules are traced with
    symdiff.defvjp(lse, lambda g, ans, x: np.full(x.shape, g) * np.exp(x - np.full(x.shape, ans)))
    with pytest.raises(SymdiffError, match=r"rule registered for lse raised TypeError.*np\.full_like") as info:
        symdiff.grad(squared_lse)(np.arange(3.0))
    assert not isinstance(info.value, InternalError)
    assert "test_regressions_examples.py" in str(info.value)  # located at the call of lse


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
