"""vjp and jacrev: vector-Jacobian products and Jacobians of functions with outputs of any shape,
checked against central finite differences."""

import numpy as np
import pytest
from fd import numerical_grad

import symdiff
from symdiff import SymdiffError

RNG = np.random.default_rng(5)


def layer(x, W):
    return np.tanh(W @ x) * x[0]


def pairwise(x):
    return np.outer(np.sin(x), x) - x[:, None] ** 2


def broadcast_sum(x, b):
    return np.exp(x[:, None] * 0.5) + b


def scalar_loss(x):
    return np.sum(x ** 3) / 3.0


def looped(x, n):
    h = x
    for _ in range(n):
        h = np.tanh(h * 1.5 + 0.1)
    return h


def numerical_jacobian(f, args, argnum, eps=1e-6):
    """d f(args) / d args[argnum] by central differences, of shape out.shape + arg.shape."""
    x = np.asarray(args[argnum], dtype=float)
    cols = []
    for i in np.ndindex(*x.shape):
        step = np.zeros_like(x)
        step[i] = eps
        up = list(args)
        down = list(args)
        up[argnum], down[argnum] = x + step, x - step
        cols.append((np.asarray(f(*up)) - np.asarray(f(*down))) / (2 * eps))
    out = np.asarray(f(*args))
    return np.reshape(np.stack(cols, axis=-1), out.shape + x.shape)


CASES = [
    (layer, lambda: (RNG.normal(size=3), RNG.normal(size=(2, 3))), (0, 1)),
    (pairwise, lambda: (RNG.normal(size=4),), (0,)),
    (broadcast_sum, lambda: (RNG.normal(size=3), RNG.normal(size=(1, 2))), (0, 1)),
    (scalar_loss, lambda: (RNG.normal(size=5),), (0,)),
    (looped, lambda: (RNG.normal(size=3), 3), (0,)),
]


@pytest.mark.parametrize("f, make, argnums", CASES, ids=[c[0].__name__ for c in CASES])
def test_vjp_is_the_transposed_jacobian_applied_to_the_cotangent(f, make, argnums):
    args = make()
    out, pullback = symdiff.vjp(f, *args)
    np.testing.assert_allclose(out, f(*args))
    u = RNG.normal(size=np.shape(out)) if np.shape(out) else float(RNG.normal())
    cotangents = pullback(u)
    assert len(cotangents) == len(args)
    for n in argnums:
        want = numerical_grad(lambda *a: float(np.sum(np.asarray(f(*a)) * u)), list(args), n)
        np.testing.assert_allclose(cotangents[n], want, rtol=1e-6, atol=1e-8)
        assert np.shape(cotangents[n]) == np.shape(args[n])


@pytest.mark.parametrize("f, make, argnums", CASES, ids=[c[0].__name__ for c in CASES])
def test_jacrev_matches_finite_differences_with_the_output_axes_first(f, make, argnums):
    args = make()
    jacobians = symdiff.jacrev(f, argnums=argnums)(*args)
    for n, jac in zip(argnums, jacobians):
        want = numerical_jacobian(f, args, n)
        assert jac.shape == np.shape(f(*args)) + np.shape(args[n])
        np.testing.assert_allclose(jac, want, rtol=1e-6, atol=1e-8)


def test_jacrev_of_a_scalar_function_is_its_gradient():
    x = RNG.normal(size=4)
    np.testing.assert_allclose(symdiff.jacrev(scalar_loss)(x), symdiff.grad(scalar_loss)(x))
    assert symdiff.jacobian is symdiff.jacrev


def sine_with_energy(x):
    y = 2.0 * np.sin(x)
    return y, {"energy": np.sum(y ** 2)}


def test_vjp_with_aux_returns_the_aux_and_differentiates_the_output_only():
    x = RNG.normal(size=3)
    out, pullback, aux = symdiff.vjp(sine_with_energy, x, has_aux=True)
    np.testing.assert_allclose(aux["energy"], np.sum((2.0 * np.sin(x)) ** 2))
    (dx,) = pullback(np.ones(3))
    np.testing.assert_allclose(dx, 2.0 * np.cos(x))


def test_a_pullback_keeps_the_primals_it_was_made_at():
    x, W = RNG.normal(size=3), RNG.normal(size=(2, 3))
    x0, W0 = x.copy(), W.copy()
    _, pullback = symdiff.vjp(layer, x, W)
    u = np.array([1.0, -2.0])
    first = pullback(u)
    np.testing.assert_array_equal(x, x0)  # the caller's arrays (and the cotangent) are not changed
    np.testing.assert_array_equal(W, W0)
    np.testing.assert_array_equal(u, [1.0, -2.0])
    x += 1.0  # a later change of the caller's array does not reach the pullback
    second = pullback(u)
    np.testing.assert_array_equal(first[0], second[0])


def test_a_cotangent_of_the_wrong_shape_is_refused():
    _, pullback = symdiff.vjp(layer, RNG.normal(size=3), RNG.normal(size=(2, 3)))
    with pytest.raises(SymdiffError, match=r"cotangent has shape \(3,\), the output \(2,\)"):
        pullback(np.ones(3))


def two_outputs(x):
    return np.sin(x), x * 2.0


def test_vjp_of_a_tuple_output_takes_a_tuple_cotangent_and_jacrev_refuses_it():
    x = RNG.normal(size=3)
    _, pullback = symdiff.vjp(two_outputs, x)
    (dx,) = pullback((np.ones(3), np.full(3, 0.5)))
    np.testing.assert_allclose(dx, np.cos(x) + 1.0)
    with pytest.raises(SymdiffError, match="needs an array or number output"):
        symdiff.jacrev(two_outputs)(x)


def test_a_pullback_shows_its_generated_source():
    _, pullback = symdiff.vjp(layer, RNG.normal(size=3), RNG.normal(size=(2, 3)))
    pullback(np.ones(2))
    assert "def vjp_layer(x, W, cotangent):" in pullback.source
    assert "# vjp of layer" in pullback.source


def test_the_error_for_a_non_scalar_grad_names_a_function_that_exists():
    with pytest.raises(SymdiffError, match="symdiff.vjp") as info:
        symdiff.grad(layer)(RNG.normal(size=3), RNG.normal(size=(2, 3)))
    assert hasattr(symdiff, "vjp"), str(info.value)
