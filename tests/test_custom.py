"""stop_gradient, custom derivative rules (custom_vjp, custom_jvp) and checkpointing
(checkpoint, checkpoint_loop): what the user writes in their code to steer differentiation."""

import numpy as np
import pytest
from fd import numerical_grad

import symdiff
from symdiff import checkpoint, checkpoint_loop, custom_jvp, custom_vjp, stop_gradient

RNG = np.random.default_rng(7)
X = RNG.normal(size=4)
Y = RNG.normal(size=(3, 4))


def close(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def near(a, b):
    """Agreement with central finite differences."""
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8)


def same_gradients(f, g, *args, argnums=0):
    """The gradients of ``f`` and ``g`` agree (tightly) in every argument of ``argnums``."""
    gf, gg = symdiff.grad(f, argnums=argnums)(*args), symdiff.grad(g, argnums=argnums)(*args)
    for a, b in zip(*((gf, gg) if isinstance(argnums, tuple) else ((gf,), (gg,)))):
        close(a, b)


# ============================================================================ stop_gradient


def test_stop_gradient_returns_its_argument_itself():
    things = [X, 2.5, 3, [X, 1.0], {"a": X}, (X,)]
    for x in things:
        assert stop_gradient(x) is x


def test_no_derivative_flows_through_stop_gradient():
    # d/dx sum(x * c) with c = x held constant is c = x (not 2 x)
    close(symdiff.grad(lambda x: np.sum(x * stop_gradient(x)))(X), X)


def test_stop_gradient_of_a_python_number():
    close(symdiff.grad(lambda x: x * stop_gradient(x) ** 2)(1.5), 1.5 ** 2)


def test_no_tangent_flows_through_stop_gradient():
    close(symdiff.jvp(lambda x: x * stop_gradient(x), (X,), (np.ones(4),))[1], X)


def test_straight_through_estimator_has_the_gradient_of_the_identity():
    def rounded_loss(x):
        q = x + stop_gradient(np.round(x) - x)  # rounds forwards, identity backwards
        return np.sum(q ** 2)
    x = np.array([0.3, 1.6, -2.2])
    close(symdiff.grad(rounded_loss)(x), 2 * np.round(x))


def test_stop_gradient_of_a_whole_expression_leaves_the_other_paths():
    def f(x, y):
        return np.sum(np.tanh(x) * stop_gradient(np.sin(x) * y)) + np.sum(y * y)
    dx, dy = symdiff.grad(f, argnums=(0, 1))(X, Y)
    close(dx, (1 - np.tanh(X) ** 2) * np.sum(np.sin(X) * Y, axis=0))
    close(dy, 2 * Y)


# ============================================================================ custom_vjp


@custom_vjp
def log1pexp(x):
    return np.logaddexp(0.0, x)  # log(1 + e^x) without overflow


def log1pexp_fwd(x):
    return log1pexp(x), x


def log1pexp_bwd(x, g):
    return (g * 0.5 * (1.0 + np.tanh(0.5 * x)),)  # the logistic function, without overflow


log1pexp.defvjp(log1pexp_fwd, log1pexp_bwd)


def plain_log1pexp(x):
    return np.log1p(np.exp(x))  # its derivative e^x / (1 + e^x) overflows for big x


def test_calling_a_custom_vjp_function_runs_it():
    close(log1pexp(X), plain_log1pexp(X))
    assert log1pexp.__name__ == "log1pexp"


def test_custom_vjp_gradient_equals_the_plain_gradient():
    same_gradients(lambda x: np.sum(log1pexp(x) ** 2), lambda x: np.sum(plain_log1pexp(x) ** 2), X)


def test_custom_vjp_is_used_not_inlined():
    source = symdiff.grad(lambda x: np.sum(log1pexp(x))).source
    assert "vjp_log1pexp(" in source and "logaddexp" not in source


def test_custom_vjp_stays_finite_where_the_plain_gradient_overflows():
    x = np.array([800.0, -800.0, 0.0])
    with np.errstate(over="ignore", invalid="ignore"):
        plain = symdiff.grad(lambda x: np.sum(plain_log1pexp(x)))(x)
    custom = symdiff.grad(lambda x: np.sum(log1pexp(x)))(x)
    assert not np.all(np.isfinite(plain))
    close(custom, np.array([1.0, 0.0, 0.5]))


@custom_vjp
def scaled(x, y):
    return np.sin(x) * y


def scaled_fwd(x, y):
    return scaled(x, y), (np.cos(x), np.sin(x), y)


def scaled_bwd(res, g):
    cos, sin, y = res
    return np.sum(g * cos * y, axis=0), g * sin  # x (4,) was broadcast against y (3, 4)


scaled.defvjp(scaled_fwd, scaled_bwd)


def test_custom_vjp_of_two_arrays_with_broadcasting():
    same_gradients(lambda x, y: np.sum(np.tanh(scaled(x, y))), lambda x, y: np.sum(np.tanh(np.sin(x) * y)),
                   X, Y, argnums=(0, 1))


def test_custom_vjp_called_in_a_loop():
    def f(x, y):
        for i in range(3):
            x = log1pexp(x * y[i]) - 1.0
        return np.sum(x)

    def g(x, y):
        for i in range(3):
            x = plain_log1pexp(x * y[i]) - 1.0
        return np.sum(x)
    same_gradients(f, g, X, Y, argnums=(0, 1))


def test_custom_vjp_under_value_and_grad_vjp_and_jacrev():
    value, dx = symdiff.value_and_grad(lambda x: np.sum(log1pexp(x)))(X)
    close(value, np.sum(plain_log1pexp(X)))
    close(dx, 1 / (1 + np.exp(-X)))
    out, pullback = symdiff.vjp(log1pexp_user, X)
    close(pullback(np.ones(4))[0], 1 / (1 + np.exp(-X)))
    close(symdiff.jacrev(log1pexp_user)(X), np.diag(1 / (1 + np.exp(-X))))


def log1pexp_user(x):
    return log1pexp(x) * 1.0


@custom_vjp
def clip_gradient(x):
    return x


clip_gradient.defvjp(lambda x: (x, None), lambda _, g: (np.clip(g, -1.0, 1.0),))


def test_a_custom_vjp_that_differs_from_the_derivative_takes_effect():
    f = symdiff.grad(lambda x: np.sum(clip_gradient(x) * np.array([5.0, -0.5, -3.0, 0.25])))
    close(f(X), np.array([1.0, -0.5, -1.0, 0.25]))


def test_custom_vjp_of_a_python_number():
    f = symdiff.grad(lambda x: log1pexp(x) * x)
    x = 0.7
    near(f(x), numerical_grad(lambda x: plain_log1pexp(x) * x, [x], 0))


@custom_vjp
def pair_out(x):
    return np.sin(x), np.cos(x)


pair_out.defvjp(lambda x: (pair_out(x), x), lambda x, g: (g[0] * np.cos(x) - g[1] * np.sin(x),))


def test_custom_vjp_with_a_tuple_output():
    def f(x):
        s, c = pair_out(x)
        return np.sum(s * 2.0 + c ** 2)
    close(symdiff.grad(f)(X), 2 * np.cos(X) - 2 * np.cos(X) * np.sin(X))

    def only_first(x):
        return np.sum(pair_out(x)[0])
    close(symdiff.grad(only_first)(X), np.cos(X))


@custom_vjp
def power(x, n):
    return x ** n


power.defvjp(lambda x, n: (power(x, n), (x, n)), lambda res, g: (g * res[1] * res[0] ** (res[1] - 1), None))


def test_custom_vjp_with_an_integer_argument_whose_cotangent_is_none():
    def f(x, n):
        return np.sum(power(x, n))
    close(symdiff.grad(f)(X, 3), 3 * X ** 2)
    dx, dn = symdiff.grad(f, argnums=(0, 1))(X, 3)
    close(dx, 3 * X ** 2)
    assert dn == 0.0


def test_custom_vjp_without_defvjp_is_refused_where_it_is_called():
    @custom_vjp
    def nothing_yet(x):
        return x * 2.0

    def f(x):
        return np.sum(nothing_yet(x))
    with pytest.raises(symdiff.SymdiffError, match=r"(?s)test_custom.py:\d+.*nothing_yet.defvjp\(fwd, bwd\)"):
        symdiff.grad(f)(X)


def test_bwd_returning_the_wrong_number_of_cotangents_is_a_symdiff_error_naming_f():
    @custom_vjp
    def two(x, y):
        return x * y
    two.defvjp(lambda x, y: (x * y, (x, y)), lambda res, g: (g * res[1],))
    with pytest.raises(symdiff.SymdiffError, match=r"custom_vjp function .*two .*2 cotangent\(s\).*got a tuple of 1"):
        symdiff.grad(lambda x, y: np.sum(two(x, y)))(X, X)


def test_bwd_returning_a_cotangent_of_the_wrong_shape_is_a_symdiff_error_naming_f():
    @custom_vjp
    def summed(x):
        return np.sum(x)
    summed.defvjp(lambda x: (np.sum(x), None), lambda res, g: (g,))
    with pytest.raises(symdiff.SymdiffError, match=r"custom_vjp function .*summed.*shape \(\) for argument 1"):
        symdiff.grad(lambda x: summed(x))(X)


def test_fwd_not_returning_a_pair_is_a_symdiff_error():
    @custom_vjp
    def ident(x):
        return x
    ident.defvjp(lambda x: x, lambda res, g: (g,))
    with pytest.raises(symdiff.SymdiffError, match="fwd must return a pair"):
        symdiff.grad(lambda x: np.sum(ident(x)))(X)


# ============================================================================ custom_jvp


@custom_jvp
def wavy(x, y):
    return np.sin(x) * y


@wavy.defjvp
def wavy_jvp(primals, tangents):
    (x, y), (dx, dy) = primals, tangents
    return wavy(x, y), np.cos(x) * dx * y + np.sin(x) * dy


def test_reverse_mode_reads_the_vjp_off_the_jvp_rule():
    same_gradients(lambda x, y: np.sum(np.tanh(wavy(x, y))), lambda x, y: np.sum(np.tanh(np.sin(x) * y)),
                   X, Y, argnums=(0, 1))


def test_custom_jvp_of_python_numbers_in_a_loop():
    def f(x, y):
        for _ in range(3):
            x = wavy(x, y) + 0.5
        return x

    def g(x, y):
        for _ in range(3):
            x = np.sin(x) * y + 0.5
        return x
    same_gradients(f, g, 0.3, 1.7, argnums=(0, 1))


def test_custom_jvp_records_a_forward_rule_per_argument():
    record = symdiff.primitives.lookup(wavy)
    assert record.jvps is not None and len(record.jvps) == 2
    close(wavy._run_tangent(0, np.ones(4), X, Y), np.cos(X) * Y)
    close(wavy._run_tangent(1, np.ones((3, 4)), X, Y), np.broadcast_to(np.sin(X), (3, 4)))


def test_forward_mode_applies_the_jvp_rule():
    def f(x, y):
        return np.tanh(wavy(x, y))

    def g(x, y):
        return np.tanh(np.sin(x) * y)
    tangents = (RNG.normal(size=4), RNG.normal(size=(3, 4)))
    out, tangent = symdiff.jvp(f, (X, Y), tangents)
    plain_out, plain_tangent = symdiff.jvp(g, (X, Y), tangents)
    close(out, plain_out)
    close(tangent, plain_tangent)


def test_forward_mode_through_a_custom_vjp_function_is_refused_with_advice():
    with pytest.raises(symdiff.NoRuleError, match=r"(?s)log1pexp .*has a VJP only.*symdiff.custom_jvp"):
        symdiff.jvp(log1pexp_user, (X,), (X,))


def test_second_derivatives_through_a_custom_rule_are_refused():
    with pytest.raises(symdiff.NoRuleError, match="derivatives of second order through custom_jvp function wavy"):
        symdiff.hvp(lambda x: np.sum(wavy(x, Y)), (X,), (np.ones(4),))


@custom_jvp
def soft_clip(x):
    return np.clip(x, -1.0, 1.0)


soft_clip.defjvp(lambda primals, tangents: (soft_clip(primals[0]), tangents[0]))  # straight through
soft_clip.defvjp(lambda x: (soft_clip(x), None), lambda _, g: (0.5 * g,))


def test_a_vjp_given_to_a_custom_jvp_function_is_what_reverse_mode_uses():
    close(symdiff.grad(lambda x: np.sum(soft_clip(3.0 * x)))(X), np.full(4, 1.5))


def test_custom_jvp_without_a_rule_is_refused():
    @custom_jvp
    def bare(x):
        return x
    with pytest.raises(symdiff.SymdiffError, match=r"bare.defjvp\(rule\)"):
        symdiff.grad(lambda x: np.sum(bare(x)))(X)


# ============================================================================ checkpoint


def plain_step(h, x, W):
    a = np.tanh(W @ h + x)
    big = np.outer(a, h)  # an intermediate the tape would keep
    return np.tanh(big @ a) + 0.5 * h


step = checkpoint(plain_step)

H0, XS, W = RNG.normal(size=4), RNG.normal(size=(6, 4)), RNG.normal(size=(4, 4)) * 0.5


def rnn(h, xs, W):
    for t in range(len(xs)):
        h = step(h, xs[t], W)
    return np.sum(h ** 2)


def plain_rnn(h, xs, W):
    for t in range(len(xs)):
        h = plain_step(h, xs[t], W)
    return np.sum(h ** 2)


def test_calling_a_checkpointed_function_runs_it():
    close(step(H0, XS[0], W), plain_step(H0, XS[0], W))


def test_checkpointed_rnn_step_in_a_loop_has_the_plain_gradients():
    same_gradients(rnn, plain_rnn, H0, XS, W, argnums=(0, 1, 2))


def test_the_checkpointed_call_is_not_taped():
    source = symdiff.grad(rnn, argnums=(0, 1, 2)).source
    assert "vjp_plain_step(" in source and "np.outer" not in source and "big" not in source


def test_forward_mode_through_a_checkpoint_is_the_plain_jvp():
    tangents = (RNG.normal(size=4), RNG.normal(size=XS.shape), RNG.normal(size=W.shape))
    close(symdiff.jvp(rnn, (H0, XS, W), tangents)[1], symdiff.jvp(plain_rnn, (H0, XS, W), tangents)[1])


@checkpoint
def softplus_decorated(x, scale=2.0):
    return np.log1p(np.exp(scale * x)) / scale


def test_checkpoint_as_a_decorator_with_defaults_and_a_python_number():
    def f(x):
        return np.sum(softplus_decorated(x) * softplus_decorated(x, 3.0))
    near(symdiff.grad(f)(X), numerical_grad(f, [X], 0))
    g = symdiff.grad(lambda x: softplus_decorated(x) ** 2)
    near(g(0.4), numerical_grad(lambda x: softplus_decorated(x) ** 2, [0.4], 0))


def test_nested_checkpoints():
    outer = checkpoint(lambda h, x, W: step(step(h, x, W), x, W))

    def f(h, xs, W):
        return np.sum(outer(h, xs[0], W))

    def g(h, xs, W):
        return np.sum(plain_step(plain_step(h, xs[0], W), xs[0], W))
    same_gradients(f, g, H0, XS, W, argnums=(0, 1, 2))


# ============================================================================ checkpoint_loop


def test_checkpoint_loop_runs_the_loop():
    h = H0
    for t in range(len(XS)):
        h = plain_step(h, XS[t], W)
    close(checkpoint_loop(plain_step, H0, XS, W), h)


@pytest.mark.parametrize("segment", [None, 1, 2, 4, 6, 10])
def test_checkpoint_loop_has_the_plain_gradients(segment):
    def f(h, xs, W):
        return np.sum(checkpoint_loop(plain_step, h, xs, W, segment=segment) ** 2)
    same_gradients(f, plain_rnn, H0, XS, W, argnums=(0, 1, 2))


def test_checkpoint_loop_in_forward_mode_is_the_plain_jvp():
    def f(h, xs, W):
        return np.sum(checkpoint_loop(plain_step, h, xs, W) ** 2)
    tangents = (RNG.normal(size=4), RNG.normal(size=XS.shape), RNG.normal(size=W.shape))
    close(symdiff.jvp(f, (H0, XS, W), tangents)[1], symdiff.jvp(plain_rnn, (H0, XS, W), tangents)[1])


def test_checkpoint_loop_over_a_list_with_two_params():
    def cell(h, x, a, b):
        return np.tanh(a * h + x) * b

    def f(h, xs, a, b):
        return checkpoint_loop(cell, h, xs, a, b)

    def g(h, xs, a, b):
        for t in range(len(xs)):
            h = cell(h, xs[t], a, b)
        return h
    xs = [0.1, -0.4, 0.3]
    gf = symdiff.grad(f, argnums=(0, 1, 2, 3))(0.2, xs, 1.3, 0.9)
    gg = symdiff.grad(g, argnums=(0, 1, 2, 3))(0.2, xs, 1.3, 0.9)
    for a, b in zip(gf, gg):
        close(a, b)


def test_checkpoint_loop_refuses_a_bad_segment():
    with pytest.raises(symdiff.SymdiffError, match="segment must be a positive int"):
        symdiff.grad(lambda h, xs, W: np.sum(checkpoint_loop(plain_step, h, xs, W, segment=0)))(H0, XS, W)
