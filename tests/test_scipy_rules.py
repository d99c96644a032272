"""The SciPy rows of the rule table against central finite differences in float64.

Each case is an expression as user code spells it (``stats.norm.logpdf(x, loc, scale=scale)``);
it becomes the real source of ``def f(..., w): return np.sum((EXPR) * w)`` (registered with
``linecache``), ``w`` a fixed random weighting of the output's shape, and every differentiable
argument is checked, in several broadcasting shapes, by ``grad`` and by ``jvp`` (whose
adjoint is checked against ``vjp``). One Hessian per family is checked against finite
differences of the gradient. Skipped when SciPy is not installed.
"""

from __future__ import annotations

import ast
import linecache
import math
import zlib
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pytest
from fd import numerical_grad
from jvpcheck import check_jvp

import symdiff

sc = pytest.importorskip("scipy.special")
stats = pytest.importorskip("scipy.stats")


def between(lo: float, hi: float) -> Callable:
    """A domain: uniform floats in [lo, hi]."""
    def draw(rng: np.random.Generator, shape: tuple | None) -> Any:
        values = rng.uniform(lo, hi, 1 if shape is None else math.prod(shape))
        return float(values[0]) if shape is None else values.reshape(shape)
    return draw


def counts(rng: np.random.Generator, shape: tuple | None) -> Any:
    """A domain of counts (not differentiated)."""
    values = rng.integers(0, 6, 1 if shape is None else math.prod(shape))
    return int(values[0]) if shape is None else values.reshape(shape)


REAL, POS, UNIT = between(-2.0, 2.0), between(0.5, 3.0), between(0.1, 0.9)
UNARY = ((3,), (2, 3), None)
BINARY = (((2, 3), (3,)), ((3,), None), (None, (2, 1)), ((2, 1), (1, 3)))


@dataclass(frozen=True)
class Case:
    """An expression, its arguments' domains (in order), the shapes of each variant, and the
    arguments that are passed but not differentiated."""

    expr: str
    domains: tuple
    shapes: tuple
    fixed: tuple = ()

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.domains]


def unary(expr: str, domain: Callable = REAL) -> Case:
    return Case(expr, (("x", domain),), tuple((s,) for s in UNARY))


CASES = [
    unary("sc.expit(x)"),
    unary("sc.logit(x)", UNIT),
    unary("sc.log_expit(x)"),
    unary("sc.gammaln(x)", POS),
    unary("sc.digamma(x)", POS),
    unary("sc.polygamma(1, x)", POS),
    unary("sc.polygamma(2, x)", POS),
    unary("sc.erf(x)"),
    unary("sc.erfc(x)"),
    unary("sc.erfinv(x)", between(-0.8, 0.8)),
    unary("sc.erfcinv(x)", between(0.2, 1.8)),
    unary("sc.entr(x)", POS),
    unary("sc.i0(x)"),
    unary("sc.i1(x)"),
    unary("sc.i0e(x)"),
    unary("sc.i1e(x)"),
    unary("sc.gamma(x)", POS),
    unary("sc.multigammaln(x, 3)", between(1.5, 3.0)),
    unary("sc.ndtr(x)"),
    unary("sc.ndtri(x)", UNIT),
    unary("sc.log_ndtr(x)", between(-6.0, 2.0)),
    Case("sc.betaln(a, b)", (("a", POS), ("b", POS)), BINARY),
    Case("sc.beta(a, b)", (("a", POS), ("b", POS)), BINARY),
    Case("sc.xlogy(x, y)", (("x", REAL), ("y", POS)), BINARY),
    Case("sc.xlog1py(x, y)", (("x", REAL), ("y", between(-0.5, 2.0))), BINARY),
    Case("sc.logsumexp(x)", (("x", REAL),), (((3,),), ((2, 3),))),
    Case("sc.logsumexp(x, axis=1)", (("x", REAL),), (((2, 3),), ((2, 3, 2),))),
    Case("sc.logsumexp(x, 0, keepdims=True)", (("x", REAL),), (((2, 3),),)),
    Case("sc.logsumexp(x, axis=-1, b=b)", (("x", REAL), ("b", POS)), (((2, 3), (3,)), ((2, 3), (2, 3)))),
    Case("sc.logsumexp(x, b=b)", (("x", REAL), ("b", POS)), (((2, 3), (2, 3)),)),
    Case("sc.softmax(x)", (("x", REAL),), (((3,),), ((2, 3),))),
    Case("sc.softmax(x, axis=1)", (("x", REAL),), (((2, 3),),)),
    Case("sc.log_softmax(x)", (("x", REAL),), (((3,),), ((2, 3),))),
    Case("sc.log_softmax(x, axis=0)", (("x", REAL),), (((2, 3),),)),
]

LOCATION_SCALE = (((2, 3), (3,), None), ((3,), None, None), (None, (2, 1), (3,)))
NORM = (("x", REAL), ("loc", between(-0.5, 0.5)), ("scale", between(0.5, 2.0)))
for _expr in ("stats.norm.logpdf(x, loc, scale)", "stats.norm.pdf(x, loc=loc, scale=scale)",
              "stats.norm.cdf(x, loc, scale)", "stats.norm.logcdf(x, loc, scale=scale)"):
    CASES.append(Case(_expr, NORM, LOCATION_SCALE))
CASES.append(Case("stats.norm.logpdf(x)", (("x", REAL),), tuple((s,) for s in UNARY)))
CASES.append(Case("stats.norm.logpdf(x=x, loc=loc, scale=scale)", NORM, LOCATION_SCALE))
CASES.append(Case("stats.norm(loc, scale).logpdf(x)", NORM, LOCATION_SCALE))  # a frozen distribution
CASES.append(Case("stats.norm(loc=loc, scale=scale).cdf(x)", NORM, LOCATION_SCALE))

T = (("x", REAL), ("df", between(1.5, 6.0)), ("loc", between(-0.5, 0.5)), ("scale", between(0.5, 2.0)))
SHAPED = (((2, 3), (3,), None, None), ((3,), None, (2, 1), None), (None, (3,), None, (3,)))
CASES += [Case("stats.t.logpdf(x, df, loc, scale)", T, SHAPED),
          Case("stats.t.pdf(x, df=df, loc=loc, scale=scale)", T, SHAPED),
          Case("stats.t(df, loc, scale=scale).logpdf(x)", T, SHAPED),
          Case("stats.t.cdf(x, df, loc, scale)", T, SHAPED, fixed=("df",)),
          Case("stats.t.logcdf(x, df, loc=loc, scale=scale)", T, SHAPED, fixed=("df",))]
GAMMA = (("x", POS), ("a", between(0.8, 3.0)), ("loc", between(-0.3, 0.0)), ("scale", between(0.5, 2.0)))
CASES += [Case("stats.gamma.logpdf(x, a, loc, scale)", GAMMA, SHAPED),
          Case("stats.gamma.pdf(x, a, scale=scale, loc=loc)", GAMMA, SHAPED),
          Case("stats.gamma.cdf(x, a, loc, scale)", GAMMA, SHAPED, fixed=("a",)),
          Case("stats.gamma.logcdf(x, a, loc, scale)", GAMMA, SHAPED, fixed=("a",))]
BETA = (("x", between(0.1, 0.9)), ("a", between(0.8, 3.0)), ("b", between(0.8, 3.0)),
        ("loc", between(-0.05, 0.0)), ("scale", between(1.1, 1.4)))
BETA_SHAPES = (((2, 3), (3,), None, None, None), ((3,), None, (2, 1), None, (3,)))
CASES += [Case("stats.beta.logpdf(x, a, b, loc, scale)", BETA, BETA_SHAPES),
          Case("stats.beta.pdf(x, a, b=b, loc=loc, scale=scale)", BETA, BETA_SHAPES),
          Case("stats.beta.cdf(x, a, b, loc, scale)", BETA, BETA_SHAPES, fixed=("a", "b")),
          Case("stats.beta.logcdf(x, a, b, loc, scale)", BETA, BETA_SHAPES, fixed=("a", "b"))]
POISSON = (("k", counts), ("mu", between(0.5, 4.0)))
POISSON_SHAPES = (((2, 3), (3,)), ((3,), None), (None, (2, 1)))
CASES += [Case("stats.poisson.logpmf(k, mu)", POISSON, POISSON_SHAPES, fixed=("k",)),
          Case("stats.poisson.pmf(k, mu, 1)", POISSON, POISSON_SHAPES, fixed=("k",)),
          Case("stats.poisson.pmf(k, mu=mu)", POISSON, POISSON_SHAPES, fixed=("k",)),
          Case("stats.poisson(mu).logpmf(k)", POISSON, POISSON_SHAPES, fixed=("k",)),
          Case("stats.poisson.cdf(k, mu)", POISSON, POISSON_SHAPES, fixed=("k",)),
          Case("stats.poisson.logcdf(k, mu)", POISSON, POISSON_SHAPES, fixed=("k",))]
MVN = (("x", REAL), ("mean", between(-0.5, 0.5)), ("c", between(-1.0, 1.0)))
MVN_SHAPES = (((3,), (3,), (3, 3)), ((4, 3), (3,), (3, 3)))
CASES += [Case("stats.multivariate_normal.logpdf(x, mean, c @ c.T + np.eye(3))", MVN, MVN_SHAPES),
          Case("stats.multivariate_normal.pdf(x, mean=mean, cov=c @ c.T + np.eye(3))", MVN, MVN_SHAPES),
          Case("stats.multivariate_normal.logpdf(x, mean)", MVN[:2], tuple(s[:2] for s in MVN_SHAPES)),
          Case("stats.multivariate_normal(mean, c @ c.T + np.eye(3)).logpdf(x)", MVN, MVN_SHAPES),
          Case("stats.multivariate_normal.logpdf(x=x, mean=mean)", MVN[:2], tuple(s[:2] for s in MVN_SHAPES)),
          Case("stats.multivariate_normal.logpdf(x, cov=np.diag(c * c + 1.0))", (MVN[0], ("c", REAL)),
               (((3,), (3,)), ((2, 3), (3,))))]

def covered() -> list:
    """The callees the cases call (``sc.expit``, the bound method ``stats.norm.logpdf``), for
    the check that every rule of the table has a case (tests/test_rules.py)."""
    namespace = {"np": np, "sc": sc, "stats": stats}
    found = []
    for case in CASES + [Case(_source_of(f), (), ()) for f, _ in HESSIANS]:
        for node in ast.walk(ast.parse(case.expr)):
            dotted = ast.unparse(node.func) if isinstance(node, ast.Call) else ""
            if dotted.startswith(("sc.", "stats.")) and dotted.replace(".", "").replace("_", "").isalnum():
                found.append(eval(dotted, namespace))  # noqa: S307 -- the test's own names
            elif dotted.startswith("stats.") and isinstance(node.func.value, ast.Call):  # frozen: dist(...).method
                found.append(getattr(eval(ast.unparse(node.func.value.func), namespace), node.func.attr))  # noqa: S307
    return found


def _source_of(f: Callable) -> str:
    import inspect
    return inspect.getsource(f)


_COMPILED: dict[str, dict] = {}


def functions(case: Case) -> dict:
    """The case's module namespace: ``f(*args, w)`` the weighted sum symdiff differentiates,
    ``value(*args)`` the expression itself, and ``moving(*differentiated args)`` the expression
    reading the fixed arguments from the namespace (for forward mode and ``vjp``, which
    differentiate every argument); all with real source (linecache)."""
    if case.expr not in _COMPILED:
        params = ", ".join(case.names)
        moving = ", ".join(n for n in case.names if n not in case.fixed)
        source = (f"def f({params}, w):\n    return np.sum(({case.expr}) * w)\n\n\n"
                  f"def value({params}):\n    return {case.expr}\n\n\n"
                  f"def moving({moving}):\n    return {case.expr}\n")
        filename = f"<scipy rules {len(_COMPILED)}>"
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        namespace = {"np": np, "sc": sc, "stats": stats, "__name__": "scipy_rules"}
        exec(compile(source, filename, "exec"), namespace)  # noqa: S102 -- the test's own source
        _COMPILED[case.expr] = namespace
    return _COMPILED[case.expr]


def arguments(case: Case, variant: int) -> tuple[list, np.random.Generator]:
    rng = np.random.default_rng(zlib.crc32(f"{case.expr} {variant}".encode()))
    shapes = case.shapes[variant]
    return [domain(rng, shape) for (_, domain), shape in zip(case.domains, shapes)], rng


def differentiated(case: Case) -> list[int]:
    return [i for i, name in enumerate(case.names) if name not in case.fixed]


PARAMS = [pytest.param(case, v, id=f"{case.expr}-{case.shapes[v]}") for case in CASES for v in range(len(case.shapes))]


@pytest.mark.parametrize(("case", "variant"), PARAMS)
def test_gradient_matches_finite_differences(case: Case, variant: int) -> None:
    namespace = functions(case)
    f, value = namespace["f"], namespace["value"]
    args, rng = arguments(case, variant)
    w = rng.uniform(0.5, 1.5, np.shape(value(*args)))
    nums = differentiated(case)
    got = symdiff.grad(f, argnums=tuple(nums))(*args, w)
    for n, g in zip(nums, got):
        want = numerical_grad(f, args + [w], n)
        assert np.shape(g) == np.shape(args[n])
        np.testing.assert_allclose(g, want, rtol=1e-5, atol=1e-6, err_msg=f"{case.expr}: {case.names[n]}")


@pytest.mark.parametrize(("case", "variant"), PARAMS)
def test_jvp_matches_finite_differences(case: Case, variant: int) -> None:
    namespace = functions(case)
    args, rng = arguments(case, variant)
    nums = differentiated(case)
    namespace.update({name: a for name, a in zip(case.names, args) if name in case.fixed})
    check_jvp(namespace["moving"], [args[i] for i in nums], range(len(nums)), rng)


def _hessian_fd(f: Callable, x: Any) -> np.ndarray:
    """Central differences of symdiff's gradient (itself checked above)."""
    gradient = symdiff.grad(f)
    x = np.asarray(x, dtype=float)
    cols = []
    for i in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[i] = 1e-5
        cols.append((np.asarray(gradient(x + step)) - np.asarray(gradient(x - step))).ravel() / 2e-5)
    return np.array(cols).T.reshape(x.shape + x.shape)


XS = np.array([0.3, -1.2, 0.8])


def norm_in_loc(loc):
    return np.sum(stats.norm.logpdf(XS, loc, 1.5) + stats.norm.logcdf(XS, loc, 1.5))


def t_in_df(df):
    return np.sum(stats.t.logpdf(XS, df, 0.1, 1.3))


def gamma_in_shape(a):
    return np.sum(stats.gamma.logpdf(np.abs(XS) + 0.5, a[:, None], scale=2.0)) + np.sum(sc.gammaln(a))


def beta_in_shapes(ab):
    return np.sum(stats.beta.logpdf(np.array([0.2, 0.5]), ab[0], ab[1]) + sc.betaln(ab[0], ab[1]))


def special_mix(x):
    return np.sum(sc.expit(x) * sc.erf(x) + sc.log_ndtr(x) + sc.i1e(x) + sc.xlogy(x, x * x + 1.0))


def softmaxes(x):
    return sc.logsumexp(x) + np.sum(sc.softmax(x) * x) + np.sum(sc.log_softmax(x) * x)


def mvn_in_mean(mean):
    cov = np.array([[2.0, 0.3, 0.0], [0.3, 1.0, 0.2], [0.0, 0.2, 1.5]])
    return np.sum(stats.multivariate_normal.logpdf(np.array([[0.1, 0.2, 0.3], [1.0, -1.0, 0.5]]), mean, cov))


def poisson_in_mu(mu):
    return np.sum(stats.poisson.logpmf(np.array([0, 2, 5]), mu))


HESSIANS = [(norm_in_loc, 0.4), (t_in_df, 3.5), (gamma_in_shape, np.array([1.5, 2.5])),
            (beta_in_shapes, np.array([1.5, 2.5])), (special_mix, XS), (softmaxes, XS),
            (mvn_in_mean, np.array([0.2, -0.1, 0.4])), (poisson_in_mu, 2.5)]


@pytest.mark.parametrize(("f", "x"), HESSIANS, ids=[f.__name__ for f, _ in HESSIANS])
def test_hessian_matches_finite_differences_of_the_gradient(f: Callable, x: Any) -> None:
    got = symdiff.hessian(f)(x)
    np.testing.assert_allclose(got, _hessian_fd(f, x), rtol=1e-5, atol=1e-6)


def test_cdf_in_a_shape_parameter_is_refused_by_name() -> None:
    def f(x, df):
        return np.sum(stats.t.cdf(x, df))

    with pytest.raises(symdiff.NoRuleError, match=r"scipy\.stats\.t\.cdf in its parameter df"):
        symdiff.grad(f, argnums=1)(XS, 3.0)


def test_logsumexp_return_sign_is_refused() -> None:
    def f(x):
        return sc.logsumexp(x, return_sign=True)[0]

    with pytest.raises(symdiff.NoRuleError, match="return_sign"):
        symdiff.grad(f)(XS)


def test_distribution_methods_reached_through_the_module_or_a_name_are_one_rule() -> None:
    import scipy.stats
    from scipy.stats import norm

    def through_module(x):
        return np.sum(scipy.stats.norm.logpdf(x, 0.5, 2.0))

    def through_name(x):
        return np.sum(norm.logpdf(x, 0.5, 2.0))

    want = -(XS - 0.5) / 4.0
    np.testing.assert_allclose(symdiff.grad(through_module)(XS), want, rtol=1e-12)
    np.testing.assert_allclose(symdiff.grad(through_name)(XS), want, rtol=1e-12)


def test_scipy_docs_are_up_to_date() -> None:
    """docs/scipy.md is generated from the rule table by scripts/gen_numpy_docs.py."""
    import importlib.util
    import pathlib

    root = pathlib.Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("gen_numpy_docs", root / "scripts" / "gen_numpy_docs.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    current = (root / "docs" / "scipy.md").read_text()
    assert current == gen.render_scipy(), "docs/scipy.md is stale: run python3 scripts/gen_numpy_docs.py"


def test_logcdf_slope_stays_finite_far_in_the_left_tail() -> None:
    """Where the cdf and the pdf underflow to 0, d logcdf / dx = pdf / cdf is still about -x."""
    def f(x):
        return np.sum(stats.norm.logcdf(x, 0.0, 1.0) + sc.log_ndtr(x))

    x = np.array([-40.0, -5.0])
    want = 2.0 * np.exp(stats.norm.logpdf(x) - stats.norm.logcdf(x))  # (computed in logs: no underflow)
    np.testing.assert_allclose(symdiff.grad(f)(x), want, rtol=1e-10)
    assert 40.0 < want[0] / 2.0 < 40.1
