"""Cases found by running HIPS/autograd's examples through symdiff (samples/autograd_examples),
each minimised."""

import re
from functools import partial

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


# Recursive functions whose results are lists and tuples (hmm_em.py, gmm.py's unflatten): a
# recursive call's result is of a kind the compiler does not know, so `+` of two of them may join
# lists, and the cotangent of a list is a dict of its items' cotangents


def leaves(v, d):
    return [v] if d == 0 else leaves(v, d - 1) + leaves(2.0 * v, d - 1)


def stacked_leaves(x):
    return np.sum(np.stack(leaves(x, 2)) ** 2)


def picked_leaves(x):
    found = leaves(x, 2)
    return np.sum(found[1] * found[3])


def walked_leaves(x):
    total = 0.0
    for item in leaves(x, 2):
        total = total + np.sum(np.sin(item))
    return total


def nested(v, d):
    if d == 0:
        return [v, [v * 3.0]]
    inner = nested(v * 0.5, d - 1)
    return [inner[0] + v, inner[1] + [v]]


def nested_lists(x):
    found = nested(x, 2)
    return np.sum(found[0]) + np.sum(found[1][0] * found[1][-1])


def unflatten(vector, start, depth):
    if depth == 0:
        return vector[start:start + 2], start + 2
    a, start = unflatten(vector, start, depth - 1)
    b, start = unflatten(vector, start, depth - 1)
    return a * b, start


def unflattened(x):
    value, _ = unflatten(x, 0, 2)
    return np.sum(value ** 2)


def counted(x, idx, n):
    return np.sum(x[idx] ** 2) if n == 0 else counted(x, idx, n - 1) + 1.0


RECURSIVE = [stacked_leaves, picked_leaves, walked_leaves, nested_lists, unflattened]


@pytest.mark.parametrize("fn", RECURSIVE)
def test_recursive_functions_returning_lists_and_tuples_differentiate(fn):
    check_grad(fn, np.array([0.3, -0.2, 0.5, 0.7, 0.1, 0.9, 1.1, 0.4]))


@pytest.mark.parametrize("fn", RECURSIVE)
def test_recursive_functions_returning_lists_and_tuples_have_hessian_vector_products(fn):
    x, v = np.array([0.3, -0.2, 0.5, 0.7, 0.1, 0.9, 1.1, 0.4]), np.linspace(-1.0, 1.0, 8)
    gradient = symdiff.grad(fn)
    want = (gradient(x + 1e-5 * v) - gradient(x - 1e-5 * v)) / 2e-5
    np.testing.assert_allclose(symdiff.hvp(fn)(x, v), want, rtol=1e-5, atol=1e-7)


def test_a_recursive_call_passing_an_index_array_on_differentiates_the_array_only():
    # the recursive function's own VJP differentiates every argument: nothing flows into an index
    check_grad(counted, np.array([0.3, -0.2, 0.5]), np.array([0, 2]), 2, argnums=0)


def test_a_recursive_vjp_is_called_once_per_call_for_all_its_arguments():
    symdiff.grad(stacked_leaves)(np.arange(3.0))
    from symdiff import api
    source = next(iter(api.recursive_vjp(leaves)._symdiff.cache.values())).source
    assert len(re.findall(r"vjp_leaves(_\d+)?\(", source)) == 1 + 2  # its def, and one call per recursive call


# hmm_em.py: sum(map(partial(f, params), data)), f recursive, data lists of int arrays


def chain_score(params, data):
    if isinstance(data, list):
        return sum(map(partial(chain_score, params), data))
    weights, bias = params
    total = 0.0
    for y in data:  # y: an int, the index of a column
        total = total + np.sum(np.tanh(weights[:, y] * bias))
    return total


def partial_in_a_comprehension(w, data):
    return sum([partial(np.dot, w)(row) ** 2 for row in data]) + sum(partial(scaled, w)(r) for r in data)


def scaled(w, row):
    return np.sum(w * row) * 2.0


def test_map_of_a_partial_made_in_the_function_inlines_the_partial_function():
    params = [np.array([[0.3, -0.2, 0.5], [0.1, 0.7, -0.4]]), np.array([0.5, -1.5])]
    data = [np.array([0, 2, 1]), np.array([2, 2])]
    check_grad(lambda w, b: chain_score([w, b], data), *params)


def test_a_partial_called_inside_the_function_is_the_function_with_those_arguments_first():
    check_grad(partial_in_a_comprehension, np.array([0.3, -0.2]), [np.array([1.0, 2.0]), np.array([-0.5, 0.3])],
               argnums=0)


# negative_binomial_maxlike.py: grad(f) called inside a differentiated lambda, differentiated twice


def loglike(r, p):
    return np.sum(r ** 3 * np.log(p) + np.sin(r * p))


loglike_lambda = lambda r, p: np.sum(r ** 3 * np.log(p))  # noqa: E731


def test_grad_called_inside_a_differentiated_function_is_made_when_compiling():
    rprime = lambda r: symdiff.grad(loglike)(r, r / (r + 2.0))  # noqa: E731
    check_grad(rprime, 1.3)
    second = symdiff.grad(symdiff.grad(rprime))
    eps = 1e-5
    want = (symdiff.grad(rprime)(1.3 + eps) - symdiff.grad(rprime)(1.3 - eps)) / (2 * eps)
    np.testing.assert_allclose(second(1.3), want, rtol=1e-6)


def test_a_global_named_like_the_generated_function_is_not_shadowed_by_it():
    # the gradient object grad(loglike) is named grad_lambda, as is the gradient of the lambda
    # calling it: the generated code must call the object, not itself
    gradient = symdiff.grad(lambda r: symdiff.grad(loglike_lambda)(r, 0.4))
    check_grad(lambda r: symdiff.grad(loglike_lambda)(r, 0.4), 1.3)
    source = gradient.source
    assert "def grad_lambda(" in source and "grad_lambda_1(" in source


# tanh.py: elementwise_grad of elementwise_grad, and a third derivative through gradients called
# inside differentiated functions


def tanh_ratio(x):
    return (1.0 - np.exp(-2 * x)) / (1.0 + np.exp(-(2 * x)))


def test_elementwise_grad_nests_to_the_fourth_derivative():
    x = np.linspace(-2.0, 2.0, 5)
    lower = tanh_ratio
    for order in range(1, 5):
        higher = symdiff.elementwise_grad(lower)
        want = (lower(x + 1e-5) - lower(x - 1e-5)) / 2e-5
        np.testing.assert_allclose(higher(x), want, rtol=1e-5, atol=1e-6, err_msg=f"order {order}")
        lower = higher


def test_elementwise_grad_of_a_lambda_and_of_two_arguments():
    scaled_tanh = symdiff.elementwise_grad(lambda v, w: np.tanh(v) * w, argnums=(0, 1))
    dv, dw = scaled_tanh(np.array([0.3, -0.4]), np.array([2.0, 3.0]))
    np.testing.assert_allclose(dv, (1.0 - np.tanh([0.3, -0.4]) ** 2) * [2.0, 3.0])
    np.testing.assert_allclose(dw, np.tanh([0.3, -0.4]))


def cubed_tanh(x):
    return np.sum(np.tanh(x) ** 3)


def test_a_third_derivative_through_gradients_called_inside_differentiated_functions():
    first = symdiff.grad(cubed_tanh)
    second = symdiff.grad(lambda y: np.sum(first(y)))
    third = symdiff.grad(lambda x: np.sum(second(x)))
    x = np.array([0.3, -0.4, 0.8])
    want = (second(x + 1e-5) - second(x - 1e-5)) / 2e-5  # (second acts element by element)
    np.testing.assert_allclose(third(x), want, rtol=1e-5)


# variational_autoencoder.py: rs.randn(*mean.shape), mean computed from train_images[slice(a, b)]
# (a slice made by a helper), params[:, :d] and np.mean(..., keepdims=True): ranks known, sizes not

IMAGES = np.linspace(-1.0, 1.0, 40).reshape(10, 4)


def batch(i):
    return slice(i * 2, (i + 1) * 2)


def noisy_batch(w, i):
    data = IMAGES[batch(i)]
    hidden = np.dot(data, w)
    centred = hidden - np.mean(hidden, axis=0, keepdims=True)
    half = np.shape(centred)[-1] // 2
    mean, scale = centred[:, :half], centred[:, half:]
    noise = np.random.RandomState(0).randn(*mean.shape)
    return np.sum(np.tanh(noise * scale + mean))


def test_star_of_the_shape_of_a_value_sliced_with_a_slice_object_spreads_its_sizes():
    check_grad(noisy_batch, np.linspace(-0.5, 0.5, 16).reshape(4, 4), 1, argnums=0)

