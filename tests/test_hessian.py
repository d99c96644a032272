"""Second derivatives: ``symdiff.hvp`` and ``symdiff.hessian`` (reverse mode over forward mode)
against central finite differences of ``symdiff.grad`` (float64), over the rule tables of
``tests/test_rules.py`` and ``tests/test_numpy_rules.py`` (scalar functions ``sum(op(x) * w)``)
and over each control-flow construct, and against hand-written Hessians."""

from __future__ import annotations

import math
import re
import zlib

import numpy as np
import pytest
import test_numpy_rules
import test_rules
from jvpcheck import random_like
from test_jvp_systematic import DOCS, documented_refusal

import symdiff
from symdiff import NoRuleError

EPS = 1e-5


def grad_fd(f, args: list, argnum: int, v):
    """The derivative of ``grad(f)`` (with respect to ``argnum``) along ``v``, by central differences."""
    g = symdiff.grad(f, argnums=argnum)

    def at(step):
        a = list(args)
        a[argnum] = a[argnum] + step * v
        return np.asarray(g(*a), dtype=float)
    return (at(EPS) - at(-EPS)) / (2 * EPS)


def assert_hvp(f, args: list, argnum: int, v, rtol: float = 1e-5, atol: float = 1e-5) -> None:
    got = symdiff.hvp(f, argnums=argnum)(*args, v)
    want = grad_fd(f, args, argnum, v)
    assert np.shape(got) == np.shape(args[argnum])
    scale = 1.0 + float(np.max(np.abs(want), initial=0.0))
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol * scale)


# ---------------------------------------------------------------------------- the rule tables

RULE_CASES = test_rules.CASES + test_numpy_rules.CASES
HELPER_OF = {"prod_vjp": "np.prod"}  # the runtime helpers JVP rules call, and whose rule calls them
XFAIL = test_numpy_rules.XFAIL


def _param(case):
    marks = [pytest.mark.xfail(strict=False, reason=XFAIL[case.id])] if case.id in XFAIL else []
    return pytest.param(case, id=case.id, marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in RULE_CASES])
def test_hvp_of_each_rule_case_matches_finite_differences_of_grad(case) -> None:
    args = list(case.args())
    argnum = case.argnums[0]
    x = args[argnum]
    if not isinstance(x, (float, np.ndarray)) or isinstance(x, np.ndarray) and x.dtype != np.float64:
        pytest.skip("differentiates a container")
    if "tie" in case.id:
        pytest.skip("at a tie the gradient jumps: no finite differences of it")
    v = random_like(np.random.default_rng(zlib.crc32(case.id.encode())), x)
    try:
        assert_hvp(case.fn, args, argnum, v, rtol=max(case.rtol, 1e-5), atol=max(case.atol, 1e-5))
    except NoRuleError as error:
        helper = re.search(r"no derivative rule for (?:symdiff\.runtime\.)?(\w+); it is a helper of symdiff's "
                           r"derivative code", str(error))
        if helper is not None:  # a JVP rule's helper without rules of its own: its primitive's docs say so
            assert HELPER_OF.get(helper.group(1)) in DOCS.FORWARD_PARTIAL, str(error)
            return
        assert documented_refusal(error), f"the Hessian refused, for a reason docs/numpy.md does not give: {error}"


# ---------------------------------------------------------------------------- control flow


def for_range(x, n):
    s = 0.0
    for i in range(n):
        s = s + np.sum(np.sin(x * (i + 1))) / (i + 1)
    return s


def for_rows(X):
    total = 0.0
    for row in X:
        total = total + np.tanh(row @ row)
    return total


def enumerate_zip(x, y):
    total = 0.0
    for i, (a, b) in enumerate(zip(x, y)):
        total = total + (i + 1.0) * a * a * b
    return total


def while_loop(x):
    y = x
    k = 0
    while k < 4:
        y = np.sin(y) + 0.5 * y
        k += 1
    return np.sum(y * y)


def if_else(x):
    if np.sum(x) > 0.0:
        y = np.exp(x) * x
    else:
        y = x ** 3
    return np.sum(y)


def nested_loops(x):
    s = 0.0
    for i in range(3):
        for j in range(2):
            s = s + np.sum(np.cos(x[i] * x[j] + i - j))
    return s


def early_return(x):
    if np.max(x) > 10.0:
        return np.sum(x)
    y = np.tanh(x)
    for _ in range(2):
        if np.sum(y) > 100.0:
            return np.sum(y)
        y = y * x
    return np.sum(y ** 2)


def setitem_loop(x):
    a = np.zeros(len(x))
    for i in range(len(x)):
        a[i] = x[i] ** 2 * x[(i + 1) % len(x)]
    return np.sum(np.sin(a))


def append_stack(x):
    hs = []
    h = x
    for _ in range(3):
        h = np.tanh(h * 1.5 + 0.1)
        hs.append(h)
    return np.sum(np.stack(hs) ** 2)


def containers(x):
    d = {"a": x * 2.0, "b": np.exp(x)}
    t = (d["a"], d["b"] * x)
    return np.sum(t[0] * t[1]) + np.sum(d["b"])


def _helper(z, c):
    return np.log1p(z * z) * c


def helper_calls(x):
    return np.sum(_helper(x, 2.0) * _helper(x[::-1], 0.5))


def power_tower(x, n):
    if n == 0:
        return x
    return np.sin(power_tower(x, n - 1)) * x


def recursion(x):
    return np.sum(power_tower(x, 3))


def python_scalars(x):
    y = x
    for k in range(3):
        y = math.sin(y) * math.exp(-0.1 * k * x) + math.log(1.0 + x * x)
    return y * math.sqrt(x)


def mixed_scalar_array(x, v):
    s = 0.0
    for i in range(3):
        s = s + math.tanh(x * i) * float(np.sum(v ** 2))
    return s * x


CONSTRUCTS = [
    (for_range, lambda r: [r.uniform(-1, 1, 4), 3], 0),
    (for_rows, lambda r: [r.uniform(-1, 1, (3, 4))], 0),
    (enumerate_zip, lambda r: [r.uniform(-1, 1, 4), r.uniform(-1, 1, 4)], 0),
    (enumerate_zip, lambda r: [r.uniform(-1, 1, 4), r.uniform(-1, 1, 4)], 1),
    (while_loop, lambda r: [r.uniform(-1, 1, 4)], 0),
    (if_else, lambda r: [r.uniform(0.1, 1, 4)], 0),
    (if_else, lambda r: [r.uniform(-1, -0.1, 4)], 0),
    (nested_loops, lambda r: [r.uniform(-1, 1, (3, 2))], 0),
    (early_return, lambda r: [r.uniform(-1, 1, 4)], 0),
    (setitem_loop, lambda r: [r.uniform(-1, 1, 4)], 0),
    (append_stack, lambda r: [r.uniform(-1, 1, 4)], 0),
    (containers, lambda r: [r.uniform(-1, 1, 4)], 0),
    (helper_calls, lambda r: [r.uniform(-1, 1, 4)], 0),
    (recursion, lambda r: [r.uniform(-1, 1, 3)], 0),
    (python_scalars, lambda r: [r.uniform(0.5, 1.5)], 0),
    (mixed_scalar_array, lambda r: [r.uniform(0.5, 1.5), r.uniform(-1, 1, 3)], 0),
    (mixed_scalar_array, lambda r: [r.uniform(0.5, 1.5), r.uniform(-1, 1, 3)], 1),
]


def _construct_id(entry) -> str:
    f, _, argnum = entry.values if hasattr(entry, "values") else entry
    return f"{f.__name__}-{argnum}"


@pytest.mark.parametrize("f, make, argnum", CONSTRUCTS, ids=[_construct_id(c) for c in CONSTRUCTS])
def test_hessian_through_control_flow_matches_finite_differences_of_grad(f, make, argnum) -> None:
    rng = np.random.default_rng(zlib.crc32(f.__name__.encode()))
    args = make(rng)
    x = args[argnum]
    H = symdiff.hessian(f, argnums=argnum)(*args)
    n = np.size(x)
    H2 = np.reshape(H, (n, n))
    columns = []
    for k in range(n):
        unit = np.zeros(n)
        unit[k] = 1.0
        columns.append(np.ravel(grad_fd(f, args, argnum, unit.reshape(np.shape(x)) if np.ndim(x) else 1.0)))
    want = np.stack(columns, axis=-1)
    np.testing.assert_allclose(H2, want, rtol=1e-5, atol=1e-5 * (1 + np.abs(want).max()))
    np.testing.assert_allclose(H2, H2.T, rtol=1e-9, atol=1e-9 * (1 + np.abs(H2).max()))
    v = random_like(rng, x)
    np.testing.assert_allclose(symdiff.hvp(f, argnums=argnum)(*args, v), np.tensordot(H, v, axes=np.ndim(x)),
                               rtol=1e-9, atol=1e-10)


# ---------------------------------------------------------------------------- hand-written Hessians


def logistic_loss(w, X, y, lam):
    z = X @ w
    return np.mean(np.logaddexp(0.0, z) - y * z) + 0.5 * lam * np.sum(w * w)


def test_logistic_regression_hvp_is_the_hand_written_formula() -> None:
    rng = np.random.default_rng(3)
    X, y, w, v = rng.standard_normal((30, 5)), rng.integers(0, 2, 30).astype(float), rng.standard_normal(5), \
        rng.standard_normal(5)
    lam = 0.1
    s = 1.0 / (1.0 + np.exp(-(X @ w)))
    want = X.T @ (s * (1 - s) * (X @ v)) / len(y) + lam * v
    np.testing.assert_allclose(symdiff.hvp(logistic_loss, argnums=0)(w, X, y, lam, v), want, rtol=1e-10)
    np.testing.assert_allclose(symdiff.hessian(logistic_loss)(w, X, y, lam),
                               X.T @ (X * (s * (1 - s))[:, None]) / len(y) + lam * np.eye(5), rtol=1e-10)


def quadratic(x, A, b):
    return 0.5 * x @ A @ x + b @ np.sin(x)


def test_quadratic_hessian_is_the_symmetrised_matrix_plus_the_sine_term() -> None:
    rng = np.random.default_rng(4)
    A, b, x = rng.standard_normal((4, 4)), rng.standard_normal(4), rng.standard_normal(4)
    np.testing.assert_allclose(symdiff.hessian(quadratic)(x, A, b), 0.5 * (A + A.T) - np.diag(b * np.sin(x)),
                               rtol=1e-10, atol=1e-12)


def test_hvp_with_primals_and_tangents_is_the_jvp_of_grad() -> None:
    """As in JAX: ``hvp(f, primals, tangents)`` is ``jvp(grad(f), primals, tangents)[1]``: the
    tangents of the other arguments count too."""
    rng = np.random.default_rng(5)
    X, y, w = rng.standard_normal((10, 3)), rng.integers(0, 2, 10).astype(float), rng.standard_normal(3)
    tangents = (rng.standard_normal(3), rng.standard_normal((10, 3)), np.zeros(10), 0.5)
    got = symdiff.hvp(logistic_loss, (w, X, y, 0.1), tangents)
    g = symdiff.grad(logistic_loss)
    plus = g(w + EPS * tangents[0], X + EPS * tangents[1], y, 0.1 + EPS * tangents[3])
    minus = g(w - EPS * tangents[0], X - EPS * tangents[1], y, 0.1 - EPS * tangents[3])
    np.testing.assert_allclose(got, (plus - minus) / (2 * EPS), rtol=1e-6, atol=1e-8)


def test_scalar_python_hessian_is_the_second_derivative() -> None:
    x = 0.7
    want = -math.sin(x) * math.exp(x) + 2 * math.cos(x) * math.exp(x) + math.sin(x) * math.exp(x)
    got = symdiff.hessian(lambda t: math.sin(t) * math.exp(t))(x)
    assert type(got) is float
    assert got == pytest.approx(want, rel=1e-10)
