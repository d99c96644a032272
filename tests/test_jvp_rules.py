"""Forward-mode (JVP) rules of the primitives whose Jacobian is not diagonal and that are not
linear: cumprod, interp, the quantiles, partition and the decompositions and solvers of
np.linalg. Each case is checked three ways, never against a hard-coded number:

* ``symdiff.jvp`` against central finite differences along a random tangent;
* ``<u, J t>`` from the JVP against ``<J^T u, t>`` from ``symdiff.vjp`` (the two rules agree);
* ``symdiff.hvp`` of a scalar function through the call against finite differences of
  ``symdiff.grad`` (reverse mode run over the forward-mode code).

A case's function returns one array; the outputs of a tuple result are joined into it.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

import symdiff
from symdiff import NoRuleError, SymdiffError

EPS = 1e-6


# ---------------------------------------------------------------------------- the functions


def cumprod_axis(x): return np.cumprod(x, axis=-1)
def cumprod_flat(x): return np.cumprod(x)
def cumprod_method(x): return x.cumprod(0)
def interp_x(x): return np.interp(x, XP, FP)
def interp_fp(fp): return np.interp(X_AT, XP, fp)
def interp_both(x, fp): return np.interp(x, XP, fp=fp)
def median_all(x): return np.median(x)
def median_axis(x): return np.median(x, axis=1, keepdims=True)
def quantile_list(x): return np.quantile(x, [0.1, 0.5, 0.95], axis=0)
def quantile_axes(x): return np.quantile(x, 0.3, axis=(0, 2))
def quantile_keepdims(x): return np.quantile(x, [0.25, 0.75], axis=(-1, 0), keepdims=True)
def percentile_all(x): return np.percentile(x, 40.0)
def percentile_axis(x): return np.percentile(x, [10, 60], axis=-1)
def partition_axis(x): return np.partition(x, 1, axis=1)
def partition_flat(x): return np.partition(x, 3, axis=None)
def partition_long(x): return np.partition(x, 700, axis=-1)  # (short arrays come back sorted)


def eig_both(a):
    w, v = np.linalg.eig(a)
    return np.concatenate([np.ravel(w), np.ravel(v)])


def eigvals(a): return np.linalg.eigvals(a)


def svd_reduced(a):
    u, s, vh = np.linalg.svd(a, full_matrices=False)
    return np.concatenate([np.ravel(u), np.ravel(s), np.ravel(vh)])


def svd_full_square(a):
    u, s, vh = np.linalg.svd(a)
    return np.concatenate([np.ravel(u), np.ravel(s), np.ravel(vh)])


def svd_full_only_s(a):
    u, s, vh = np.linalg.svd(a)
    return s


def svd_values(a): return np.linalg.svd(a, compute_uv=False)
def svdvals(a): return np.linalg.svdvals(a)


def qr_reduced(a):
    q, r = np.linalg.qr(a)
    return np.concatenate([np.ravel(q), np.ravel(r)])


def qr_r(a): return np.linalg.qr(a, mode="r")
def pinv(a): return np.linalg.pinv(a)


def lstsq_solution_and_residuals(a, b):
    x, res, rank, sv = np.linalg.lstsq(a, b, rcond=None)
    return np.concatenate([np.ravel(x), np.ravel(res)])


def lstsq_solution(a, b): return np.linalg.lstsq(a, b)[0]
def multi_dot_vectors(a, b, c): return np.linalg.multi_dot([a, b, c])
def multi_dot_repeated(a, b): return np.linalg.multi_dot((a, b, a, b))


XP = np.linspace(-1.0, 1.0, 7)
FP = np.cos(3 * XP)
X_AT = np.array([-1.4, -0.8, 0.05, 0.4, 1.2])


def normal(*shape):
    return lambda rng: rng.standard_normal(shape)


def spread_eigenvalues(*shape):
    """Matrices with real, well separated eigenvalues."""
    def make(rng):
        n = shape[-1]
        return rng.standard_normal(shape) * 0.3 + np.diag(np.arange(n) * 2.0 + 1.0)
    return make


def knots_and_outside(rng):
    return rng.uniform(-1.3, 1.3, 9)


CASES = {
    "cumprod along the last axis": (cumprod_axis, [normal(3, 4)]),
    "cumprod along the last axis, batched": (cumprod_axis, [normal(2, 3, 4)]),
    "cumprod of the flattened array": (cumprod_flat, [normal(3, 4)]),
    "x.cumprod(0)": (cumprod_method, [normal(4, 3)]),
    "interp along x": (interp_x, [knots_and_outside]),
    "interp along fp": (interp_fp, [lambda rng: rng.standard_normal(7)]),
    "interp along x and fp=": (interp_both, [knots_and_outside, lambda rng: rng.standard_normal(7)]),
    "median of all": (median_all, [normal(3, 5)]),
    "median along an axis, keepdims": (median_axis, [normal(3, 4, 2)]),
    "quantile of a q list along axis 0": (quantile_list, [normal(6, 3)]),
    "quantile over two axes": (quantile_axes, [normal(3, 2, 4)]),
    "quantile over mixed-sign axes, keepdims": (quantile_keepdims, [normal(3, 2, 4)]),
    "percentile of all": (percentile_all, [normal(4, 5)]),
    "percentile of a q list along the last axis": (percentile_axis, [normal(3, 6)]),
    "partition along an axis": (partition_axis, [normal(3, 8)]),
    "partition of the flattened array": (partition_flat, [normal(3, 5)]),
    "partition of long rows": (partition_long, [normal(2, 1500)]),
    "eig values and vectors": (eig_both, [spread_eigenvalues(4, 4)]),
    "eig values and vectors, batched": (eig_both, [spread_eigenvalues(2, 3, 3)]),
    "eigvals": (eigvals, [spread_eigenvalues(4, 4)]),
    "eigvals, batched": (eigvals, [spread_eigenvalues(2, 3, 3)]),
    "svd, reduced, tall": (svd_reduced, [normal(5, 3)]),
    "svd, reduced, wide, batched": (svd_reduced, [normal(2, 3, 5)]),
    "svd, full matrices of a square matrix": (svd_full_square, [normal(4, 4)]),
    "svd, full matrices of a tall matrix, s only": (svd_full_only_s, [normal(5, 3)]),
    "svd, compute_uv=False, batched": (svd_values, [normal(2, 4, 3)]),
    "qr, reduced, tall": (qr_reduced, [normal(5, 3)]),
    "qr, reduced, square, batched": (qr_reduced, [normal(2, 3, 3)]),
    "qr, reduced, wide": (qr_reduced, [normal(3, 5)]),
    "qr, mode='r', batched": (qr_r, [normal(2, 5, 3)]),
    "pinv, tall": (pinv, [normal(5, 3)]),
    "pinv, wide, batched": (pinv, [normal(2, 3, 4)]),
    "lstsq solution and residuals, vector b": (lstsq_solution_and_residuals, [normal(6, 3), normal(6)]),
    "lstsq solution and residuals, matrix b": (lstsq_solution_and_residuals, [normal(6, 3), normal(6, 2)]),
    "lstsq solution, underdetermined": (lstsq_solution, [normal(3, 5), normal(3)]),
    "multi_dot, 1-D ends": (multi_dot_vectors, [normal(3), normal(3, 4), normal(4)]),
    "multi_dot, an array used twice": (multi_dot_repeated, [normal(3, 4), normal(4, 3)]),
}
if hasattr(np.linalg, "svdvals"):
    CASES["svdvals"] = (svdvals, [normal(3, 5)])


def _arguments(name):
    fn, makers = CASES[name]
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    args = tuple(make(rng) for make in makers)
    tangents = tuple(rng.standard_normal(np.shape(a)) for a in args)
    return fn, args, tangents, rng


def _central(f, args, tangents, eps=EPS):
    plus = f(*(a + eps * t for a, t in zip(args, tangents)))
    minus = f(*(a - eps * t for a, t in zip(args, tangents)))
    return (np.asarray(plus) - np.asarray(minus)) / (2 * eps)


@pytest.mark.parametrize("name", CASES)
def test_jvp_matches_central_differences(name):
    fn, args, tangents, _ = _arguments(name)
    out, tangent = symdiff.jvp(fn, args, tangents)
    np.testing.assert_allclose(out, fn(*args), rtol=1e-12, atol=1e-12)
    assert np.shape(tangent) == np.shape(out)
    np.testing.assert_allclose(tangent, _central(fn, args, tangents), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", CASES)
def test_jvp_is_the_transpose_of_the_vjp(name):
    fn, args, tangents, rng = _arguments(name)
    out, tangent = symdiff.jvp(fn, args, tangents)
    u = rng.standard_normal(np.shape(out))
    _, pullback = symdiff.vjp(fn, *args)
    cotangents = pullback(u)
    transposed = sum(np.sum(c * t) for c, t in zip(cotangents, tangents))
    np.testing.assert_allclose(np.sum(u * tangent), transposed, rtol=1e-9, atol=1e-9)


def _scalar(fn, arity):
    """A scalar function of ``fn``'s arguments through ``fn`` (not quadratic: its Hessian is not
    the Gauss-Newton one)."""
    def of(y):
        return np.sum(np.sin(y) * y)

    def loss1(x):
        return of(fn(x))

    def loss2(x, y):
        return of(fn(x, y))

    def loss3(x, y, z):
        return of(fn(x, y, z))

    return (loss1, loss2, loss3)[arity - 1]


@pytest.mark.parametrize("name", CASES)
def test_hessian_vector_products_through_the_rule(name):
    fn, args, tangents, _ = _arguments(name)
    loss = _scalar(fn, len(args))
    got = symdiff.hvp(loss, args, tangents)
    gradient = symdiff.grad(loss)
    want = _central(gradient, args, tangents, eps=1e-5)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------- conventions, refusals


def test_cumprod_tangent_is_exact_at_zeros():
    x = np.array([[2.0, 0.0, 3.0, 0.0, 1.5], [0.0, 1.0, -2.0, 4.0, 0.5]])
    t = np.random.default_rng(0).standard_normal(x.shape)
    _, tangent = symdiff.jvp(cumprod_axis, (x,), (t,))
    np.testing.assert_allclose(tangent, _central(cumprod_axis, (x,), (t,)), rtol=1e-7, atol=1e-9)


def test_interp_takes_the_right_segment_at_a_knot_and_zero_outside():
    x = np.array([XP[2], XP[-1], -3.0, 3.0])
    t = np.ones(4)
    _, tangent = symdiff.jvp(interp_x, (x,), (t,))
    right_slope = (FP[3] - FP[2]) / (XP[3] - XP[2])
    last_slope = (FP[-1] - FP[-2]) / (XP[-1] - XP[-2])
    np.testing.assert_allclose(tangent, [right_slope, last_slope, 0.0, 0.0])


def test_quantile_tangent_at_ties_matches_the_vjp():
    x = np.array([[1.0, 3.0, 3.0, 0.5], [2.0, 2.0, 2.0, 7.0]])
    t = np.random.default_rng(1).standard_normal(x.shape)
    u = np.random.default_rng(2).standard_normal(3)

    def f(x):
        return np.quantile(x, [0.3, 0.5, 0.9])

    _, tangent = symdiff.jvp(f, (x,), (t,))
    (cotangent,) = symdiff.vjp(f, x)[1](u)
    np.testing.assert_allclose(np.sum(u * tangent), np.sum(cotangent * t), rtol=1e-12)


def test_full_svd_of_a_tall_matrix_leaves_the_extra_columns_of_u_without_a_derivative():
    a = np.random.default_rng(3).standard_normal((5, 3))
    t = np.random.default_rng(4).standard_normal((5, 3))

    def f(a):
        u, s, vh = np.linalg.svd(a)
        return u

    _, tangent = symdiff.jvp(f, (a,), (t,))
    assert np.isnan(tangent[:, 3:]).all()
    np.testing.assert_allclose(tangent[:, :3], _central(f, (a,), (t,))[:, :3], rtol=1e-5, atol=1e-6)


def test_eig_with_complex_eigenvalues_is_refused():
    a = np.array([[1.0, -2.0], [3.0, 0.5]])
    with pytest.raises(SymdiffError, match="every eigenvalue is real"):
        symdiff.jvp(eigvals, (a,), (np.ones((2, 2)),))


def test_multi_dot_of_a_list_argument_follows_its_items():
    def f(arrays):
        return np.linalg.multi_dot(arrays)

    a, b = np.array([[1.0, 2.0], [0.5, -1.0]]), np.array([[0.3, 0.0], [1.0, 2.0]])
    ta, tb = np.array([[0.2, -1.0], [1.0, 0.5]]), np.array([[1.0, 1.0], [0.0, -2.0]])
    _, tangent = symdiff.jvp(f, ([a, b],), ([ta, tb],))
    np.testing.assert_allclose(tangent, ta @ b + a @ tb, rtol=1e-12)  # the product rule, by hand


@pytest.mark.parametrize("f, what", [
    (lambda x: np.interp(x, XP, FP, left=0.0), "np.interp with left="),
    (lambda x: np.quantile(x, 0.5, method="nearest"), "a method other than 'linear'"),
    (lambda x: np.linalg.qr(x, mode="complete")[0], "mode='complete'"),
])
def test_unsupported_argument_forms_are_refused_at_the_call(f, what):
    x = np.random.default_rng(5).standard_normal((4, 4))
    with pytest.raises(NoRuleError, match=r"test_jvp_rules.py:\d+: forward mode through .*" + what.replace("(", r"\(")):
        symdiff.jvp(f, (x,), (x,))
