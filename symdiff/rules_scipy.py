"""The SciPy rows of the primitive table: ``scipy.special`` and ``scipy.stats`` distributions.

SciPy is optional: :func:`register` adds these rows when it can be imported (``rules`` calls
it last) and does nothing otherwise. The rules are written like those of :mod:`symdiff.rules`,
with NumPy and SciPy functions that have rules of their own, so that derivatives of
derivatives (Hessians) go through them too: ``gammaln``'s rule calls ``digamma``, whose rule
calls ``polygamma``.

A distribution's method (``scipy.stats.norm.logpdf``) is a method bound to a module-level
object; a fresh bound method is made at each attribute read, but bound methods of one object
and one function are equal, so the record registered for one of them serves them all
(``lower`` turns ``norm.logpdf(x, ...)`` into a call of that bound method).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from . import primitives, shapes
from .primitives import define
from .rules import ARRAY_FUNCTION, UFUNC, Facts, _expand, _ndim, _unsupported, rule
from .tracing import Sym, apply, is_scalar, shape_of, unbroadcast

Rule = Callable[..., Any]
SQRT_2PI = math.sqrt(2 * math.pi)
ELEMENTS = Facts(UFUNC, dtype=shapes.unknown_dtype)  # (a Python function working element by element)


def register() -> bool:
    """Add the SciPy rows to the table when SciPy is installed; whether it is."""
    try:
        import scipy.special as special
        import scipy.stats as stats
    except ImportError:
        return False
    _special(special)
    _distributions(stats, special)
    return True


# ============================================================================= scipy.special


def _reduced_args(name: str, args: tuple, kw: dict, names: tuple) -> dict:
    """The keyword view of optional arguments given positionally or by keyword."""
    if len(args) > len(names):
        _unsupported(f"{name} with {len(args)} extra positional arguments")
    return {**dict(zip(names, args)), **kw}


def _logsumexp_options(args: tuple, kw: dict) -> dict:
    opts = _reduced_args("scipy.special.logsumexp", args, kw, ("axis", "b", "keepdims", "return_sign"))
    if opts.get("return_sign"):
        _unsupported("differentiating scipy.special.logsumexp with return_sign=True")
    return opts


def _logsumexp_weights(ans: Any, a: Any, opts: dict) -> Any:
    """exp(a - logsumexp(a)): d logsumexp / d(b * exp(a)), by element."""
    return np.exp(a - _expand(ans, opts.get("axis"), opts.get("keepdims", False)))


def _logsumexp_vjp(argnum: int) -> Rule:
    """d/da = b exp(a - ans), d/db = exp(a - ans), the cotangent spread over the reduced axes."""
    def vjp(g, ans, a, *args, **kw):
        opts = _logsumexp_options(args, kw)
        axis, keepdims, b = opts.get("axis"), opts.get("keepdims", False), opts.get("b")
        weights = _logsumexp_weights(ans, a, opts) * _expand(g, axis, keepdims)
        if argnum == 0:
            return unbroadcast(weights if b is None else weights * b, a)
        return unbroadcast(weights, b)
    return vjp


def _logsumexp_jvp(argnum: int) -> Rule:
    def jvp(t, ans, a, *args, **kw):
        opts = _logsumexp_options(args, kw)
        b = opts.get("b")
        weights = _logsumexp_weights(ans, a, opts)
        part = weights * t if argnum == 1 or b is None else weights * b * t
        return np.sum(part, axis=opts.get("axis"), keepdims=opts.get("keepdims", False))
    return jvp


def _logsumexp_shape(fn: Any, args: list, kwargs: dict, shps: list) -> Any:
    """Reduced like np.sum, unless b= (which may broadcast a) is given."""
    if len(args) > 2 or "b" in kwargs or "return_sign" in kwargs:
        return None
    return shapes.reduced(fn, args, kwargs, shps)


def _axis(name: str, args: tuple, kw: dict) -> Any:
    return _reduced_args(name, args, kw, ("axis",)).get("axis")


def _summed(x: Any, axis: Any) -> Any:
    return np.sum(x, axis=axis, keepdims=True)


def _multigammaln_slope(a: Any, d: Any, digamma: Any) -> Any:
    """d multigammaln(a, d) / da = sum over j < d of digamma(a - j / 2)."""
    if isinstance(d, Sym):
        _unsupported("differentiating scipy.special.multigammaln with a dimension d computed at run time")
    total = digamma(a)
    for j in range(1, int(d)):
        total = total + digamma(a - j / 2)
    return total


def _special(sc: Any) -> None:
    """The rows of scipy.special."""
    for name in ("expit", "logit", "log_expit", "gammaln", "digamma", "polygamma", "betaln", "erf", "erfc",
                 "erfinv", "erfcinv", "xlogy", "xlog1py", "entr", "i0", "i1", "i0e", "i1e", "gamma", "beta",
                 "multigammaln", "ndtr", "ndtri", "log_ndtr", "logsumexp", "softmax", "log_softmax"):
        primitives.name_publicly(getattr(sc, name), f"scipy.special.{name}")  # (its ufuncs name no module)

    def polygamma(n: Any, x: Any) -> Any:
        return apply(sc.polygamma, n, x)

    def bessel_i1_slope(x: Any) -> Any:
        """I1'(x) = I0(x) - I1(x) / x, 1/2 at 0."""
        zero = x == 0
        return np.where(zero, 0.5, sc.i0(x) - sc.i1(x) / np.where(zero, 1.0, x))

    def bessel_i1e_slope(x: Any) -> Any:
        """d/dx exp(-|x|) I1(x) = exp(-|x|) I1'(x) - sign(x) i1e(x)."""
        zero = x == 0
        return np.where(zero, 0.5, sc.i0e(x) - sc.i1e(x) / np.where(zero, 1.0, x)) - np.sign(x) * sc.i1e(x)

    rule(sc.expit, lambda g, ans, x: g * ans * (1 - ans))
    rule(sc.logit, lambda g, ans, x: g / (x * (1 - x)))
    rule(sc.log_expit, lambda g, ans, x: g * sc.expit(-x))
    rule(sc.gammaln, lambda g, ans, x: g * sc.digamma(x))  # (of log |Gamma(x)|, also for x < 0)
    rule(sc.digamma, lambda g, ans, x: g * polygamma(1, x))
    rule(sc.polygamma, None, lambda g, ans, n, x: unbroadcast(g * polygamma(n + 1, x), x, n), ELEMENTS)
    rule(sc.betaln, lambda g, ans, a, b: unbroadcast(g * (sc.digamma(a) - sc.digamma(a + b)), a, b),
         lambda g, ans, a, b: unbroadcast(g * (sc.digamma(b) - sc.digamma(a + b)), b, a))
    rule(sc.beta, lambda g, ans, a, b: unbroadcast(g * ans * (sc.digamma(a) - sc.digamma(a + b)), a, b),
         lambda g, ans, a, b: unbroadcast(g * ans * (sc.digamma(b) - sc.digamma(a + b)), b, a))
    rule(sc.gamma, lambda g, ans, x: g * ans * sc.digamma(x))
    rule(sc.erf, lambda g, ans, x: g * (2 / math.sqrt(math.pi)) * np.exp(-x * x))
    rule(sc.erfc, lambda g, ans, x: g * (-2 / math.sqrt(math.pi)) * np.exp(-x * x))
    rule(sc.erfinv, lambda g, ans, x: g * (math.sqrt(math.pi) / 2) * np.exp(ans * ans))
    rule(sc.erfcinv, lambda g, ans, x: g * (-math.sqrt(math.pi) / 2) * np.exp(ans * ans))
    # xlogy(0, y) is 0 for every y: its derivative in x is log(y) (xlogy(g, y) is 0 where g is)
    rule(sc.xlogy, lambda g, ans, x, y: unbroadcast(sc.xlogy(g, y), x, y),
         lambda g, ans, x, y: unbroadcast(g * x / y, y, x))
    rule(sc.xlog1py, lambda g, ans, x, y: unbroadcast(sc.xlog1py(g, y), x, y),
         lambda g, ans, x, y: unbroadcast(g * x / (1 + y), y, x))
    rule(sc.entr, lambda g, ans, x: -g * (np.log(x) + 1))  # (x > 0; -inf at 0, as the slope of -x log x)
    rule(sc.i0, lambda g, ans, x: g * sc.i1(x))
    rule(sc.i1, lambda g, ans, x: g * bessel_i1_slope(x))
    rule(sc.i0e, lambda g, ans, x: g * (sc.i1e(x) - np.sign(x) * ans))
    rule(sc.i1e, lambda g, ans, x: g * bessel_i1e_slope(x))
    rule(sc.ndtr, lambda g, ans, x: g * np.exp(-0.5 * x * x) / SQRT_2PI)
    rule(sc.ndtri, lambda g, ans, x: g * SQRT_2PI * np.exp(0.5 * ans * ans))
    rule(sc.log_ndtr, lambda g, ans, x: g * np.exp(-0.5 * x * x - ans) / SQRT_2PI)
    rule(sc.multigammaln, lambda g, ans, a, d: g * _multigammaln_slope(a, d, sc.digamma), None, ELEMENTS)

    rule(sc.logsumexp, _logsumexp_vjp(0), ARRAY_FUNCTION, nature=primitives.REDUCES, shape=_logsumexp_shape,
         dtype=shapes.reduced_dtype, keywords={"b": 1})
    define(sc.logsumexp, jvps=(_logsumexp_jvp(0), _logsumexp_jvp(1)), vjps=(_logsumexp_vjp(0), _logsumexp_vjp(1)))
    rule(sc.softmax, lambda g, ans, x, *args, **kw: ans * (g - _summed(g * ans, _axis("softmax", args, kw))),
         ARRAY_FUNCTION, shape=shapes.first, dtype=shapes.unknown_dtype, nature=primitives.KEEPS)
    define(sc.softmax, jvps=(lambda t, ans, x, *args, **kw: ans * (t - _summed(t * ans, _axis("softmax", args, kw))),))
    rule(sc.log_softmax, lambda g, ans, x, *args, **kw: g - np.exp(ans) * _summed(g, _axis("log_softmax", args, kw)),
         ARRAY_FUNCTION, shape=shapes.first, dtype=shapes.unknown_dtype, nature=primitives.KEEPS)
    define(sc.log_softmax, jvps=(lambda t, ans, x, *args, **kw:
                                 t - _summed(np.exp(ans) * t, _axis("log_softmax", args, kw)),))


# ============================================================================= scipy.stats


def _bind(label: str, names: tuple, defaults: dict, args: tuple, kw: dict) -> dict:
    """The parameters of a distribution's method by name, given positionally or by keyword
    (as SciPy takes them: shape parameters, then loc, then scale)."""
    if len(args) > len(names):
        _unsupported(f"{label} with {len(args)} positional arguments")
    given = dict(zip(names, args))
    for name, value in kw.items():
        if name not in names or name in given:
            _unsupported(f"{label} with the keyword argument {name}=")
        given[name] = value
    missing = [n for n in names if n not in given and n not in defaults]
    if missing:
        _unsupported(f"{label} without its parameter {missing[0]}")
    return {n: given.get(n, defaults.get(n)) for n in names}


def _elementwise_rules(label: str, names: tuple, defaults: dict, slopes: Callable[[dict, Any], dict],
                       fixed: tuple = ()) -> tuple:
    """One VJP per parameter of a method working element by element over its broadcast
    parameters: ``g`` times the partial derivative ``slopes(params, ans)[name]``, summed back
    to the parameter's shape; None for the ``fixed`` (not differentiable) ones."""
    def vjp_of(name: str) -> Rule:
        def vjp(g, ans, *args, **kw):
            p = _bind(label, names, defaults, args, kw)
            slope = slopes(p, ans)[name]
            if slope is None:
                _unsupported(f"the derivative of {label} in its parameter {name}")
            return unbroadcast(g * slope, p[name], *[p[n] for n in names if n != name])
        return vjp
    return tuple(None if name in fixed else vjp_of(name) for name in names)


def _register_method(owner: Any, owner_name: str, method: str, names: tuple, defaults: dict,
                     slopes: Callable[[dict, Any], dict], fixed: tuple = ()) -> None:
    """The row of ``owner.method`` (``scipy.stats.norm.logpdf``), elementwise in its parameters."""
    bound = getattr(owner, method)
    label = f"{owner_name}.{method}"
    vjps = _elementwise_rules(label, names, defaults, slopes, fixed)
    define(bound, vjps=vjps, **ELEMENTS, keywords={n: i for i, n in enumerate(names) if n not in fixed},
           name=label)


def _standardised(p: dict) -> Any:
    return (p["x"] - p["loc"]) / p["scale"]


def _location_scale(dz: Any, p: dict, z: Any, **shape_slopes: Any) -> dict:
    """Partials of a function of z = (x - loc) / scale (and of log scale), given d/dz of it
    and of the density's normalisation ``-log(scale)``: d/dx = dz / scale, d/dloc = -dz / scale,
    d/dscale = (-1 - z dz) / scale for a log density."""
    scale = p["scale"]
    return {"x": dz / scale, "loc": -dz / scale, "scale": -(1 + z * dz) / scale, **shape_slopes}


def _log_density_family(owner: Any, owner_name: str, names: tuple, defaults: dict,
                        log_slopes: Callable[[dict], dict]) -> None:
    """logpdf, pdf, logcdf and cdf of a location-scale distribution ``owner`` from the partials
    of its logpdf (``log_slopes``); the cdf's slopes call its pdf, the logcdf's exp(logpdf - logcdf)
    (pdf / cdf, without underflow in the far left tail). The cdf is not differentiated in the
    shape parameters (no closed form): its rules refuse them."""
    _register_method(owner, owner_name, "logpdf", names, defaults, lambda p, ans: log_slopes(p))
    _register_method(owner, owner_name, "pdf", names, defaults,
                     lambda p, ans: {k: None if v is None else ans * v for k, v in log_slopes(p).items()})

    def cdf_slopes(p: dict, density: Any) -> dict:
        """d cdf: pdf in x, -pdf in loc, -z pdf in scale; None (refused) in the shape parameters."""
        z = _standardised(p)
        out = {"x": density, "loc": -density, "scale": -z * density}
        return {n: out.get(n) for n in names}

    def call(method: str, p: dict) -> Any:
        return apply(getattr(owner, method), *[p[n] for n in names])

    _register_method(owner, owner_name, "cdf", names, defaults, lambda p, ans: cdf_slopes(p, call("pdf", p)))
    _register_method(owner, owner_name, "logcdf", names, defaults,
                     lambda p, ans: cdf_slopes(p, np.exp(call("logpdf", p) - ans)))


def _multivariate_normal(stats: Any) -> None:
    """logpdf and pdf of scipy.stats.multivariate_normal in x, mean and cov (x's last axis is
    the dimension; cov a symmetric matrix, or a number or vector of variances when it is not
    differentiated). The cotangent of cov is the symmetric one, -(P - P r r^T P) / 2 with P
    its inverse, as for any function of a symmetric matrix written without its symmetry."""
    mvn = stats.multivariate_normal
    label = "scipy.stats.multivariate_normal"
    names, defaults = ("x", "mean", "cov"), {"mean": None, "cov": 1}

    def parts(args: tuple, kw: dict, what: str) -> tuple:
        if kw.get("allow_singular") or len(args) > 3:
            _unsupported(f"differentiating {label}.{what} with allow_singular=")
        p = _bind(f"{label}.{what}", names + ("allow_singular",), {**defaults, "allow_singular": False},
                  args, kw)
        r = p["x"] if p["mean"] is None else p["x"] - p["mean"]
        cov = p["cov"]
        ndim = _ndim(cov)
        if ndim is not None and ndim < 2:  # variances
            return p, r, r / cov, None
        precision = np.linalg.inv(cov)  # (a cov of unknown rank computed in the function is a matrix:
        #                                 np.linalg.inv refuses anything else when the derivative runs)
        return p, r, r @ precision, precision  # (cov symmetric: precision @ r for each row r)

    def cov_cotangent(p: dict, s: Any, precision: Any, g: Any) -> Any:
        if precision is None:
            _unsupported(f"the derivative of {label} in a cov= that is not a matrix")
        rows = np.reshape(s, (-1, shape_of(s)[-1]))
        weights = np.reshape(g, (-1,))
        return 0.5 * ((rows.T * weights) @ rows) - 0.5 * np.sum(weights) * precision

    def log_vjp(argnum: int, scaled: bool) -> Rule:
        what = "pdf" if scaled else "logpdf"

        def vjp(g, ans, *args, **kw):
            p, r, s, precision = parts(args, kw, what)
            if scaled:
                g = g * ans
            if argnum == 2:
                return cov_cotangent(p, s, precision, g)
            row = -s * (g if is_scalar(g) else np.expand_dims(g, -1))
            if argnum == 0:
                return unbroadcast(row, p["x"])
            return unbroadcast(-row, p["mean"])
        return vjp

    def log_jvp(argnum: int, scaled: bool) -> Rule:
        what = "pdf" if scaled else "logpdf"

        def jvp(t, ans, *args, **kw):
            p, r, s, precision = parts(args, kw, what)
            if argnum == 2:
                if precision is None:
                    _unsupported(f"the derivative of {label} in a cov= that is not a matrix")
                out = 0.5 * np.sum((s @ t) * s, axis=-1) - 0.5 * np.sum(precision * t)
            else:
                out = np.sum(s * t, axis=-1) * (-1.0 if argnum == 0 else 1.0)
            return out * ans if scaled else out
        return jvp

    for what, scaled in (("logpdf", False), ("pdf", True)):
        bound = getattr(mvn, what)
        define(bound, vjps=tuple(log_vjp(i, scaled) for i in range(3)),
               jvps=tuple(log_jvp(i, scaled) for i in range(3)), keywords={"x": 0, "mean": 1, "cov": 2},
               name=f"{label}.{what}", **ARRAY_FUNCTION)


def _distributions(stats: Any, sc: Any) -> None:
    """The rows of the scipy.stats distributions."""
    for name in ("norm", "t", "gamma", "beta", "poisson", "multivariate_normal"):
        primitives.name_publicly(getattr(stats, name), f"scipy.stats.{name}")
    unit = {"loc": 0.0, "scale": 1.0}

    def norm_slopes(p: dict) -> dict:
        z = _standardised(p)
        return _location_scale(-z, p, z)

    _log_density_family(stats.norm, "scipy.stats.norm", ("x", "loc", "scale"), unit, norm_slopes)

    def t_slopes(p: dict) -> dict:
        z, df = _standardised(p), p["df"]
        zz = z * z
        dz = -(df + 1) * z / (df + zz)
        ddf = 0.5 * (sc.digamma((df + 1) / 2) - sc.digamma(df / 2) - 1 / df - np.log1p(zz / df)
                     + (df + 1) * zz / (df * (df + zz)))
        return _location_scale(dz, p, z, df=ddf)

    _log_density_family(stats.t, "scipy.stats.t", ("x", "df", "loc", "scale"), unit, t_slopes)

    def gamma_slopes(p: dict) -> dict:
        y, a = _standardised(p), p["a"]
        return _location_scale((a - 1) / y - 1, p, y, a=np.log(y) - sc.digamma(a))

    _log_density_family(stats.gamma, "scipy.stats.gamma", ("x", "a", "loc", "scale"), unit, gamma_slopes)

    def beta_slopes(p: dict) -> dict:
        y, a, b = _standardised(p), p["a"], p["b"]
        both = sc.digamma(a + b)
        return _location_scale((a - 1) / y - (b - 1) / (1 - y), p, y, a=np.log(y) - sc.digamma(a) + both,
                               b=np.log1p(-y) - sc.digamma(b) + both)

    _log_density_family(stats.beta, "scipy.stats.beta", ("x", "a", "b", "loc", "scale"), unit, beta_slopes)

    # poisson: in mu (k and loc shift a count: no derivative)
    poisson, names, shift = stats.poisson, ("k", "mu", "loc"), {"loc": 0}

    def count(p: dict) -> Any:
        return p["k"] - p["loc"]

    _register_method(poisson, "scipy.stats.poisson", "logpmf", names, shift,
                     lambda p, ans: {"mu": count(p) / p["mu"] - 1, "loc": None}, fixed=("k", "loc"))
    _register_method(poisson, "scipy.stats.poisson", "pmf", names, shift,
                     lambda p, ans: {"mu": ans * (count(p) / p["mu"] - 1), "loc": None}, fixed=("k", "loc"))

    def cdf_mu(p: dict) -> Any:  # d/dmu P(K <= k) = -P(K = floor(k))
        return -apply(poisson.pmf, np.floor(count(p)), p["mu"])

    _register_method(poisson, "scipy.stats.poisson", "cdf", names, shift,
                     lambda p, ans: {"mu": cdf_mu(p), "loc": None}, fixed=("k", "loc"))
    _register_method(poisson, "scipy.stats.poisson", "logcdf", names, shift,
                     lambda p, ans: {"mu": cdf_mu(p) / np.exp(ans), "loc": None}, fixed=("k", "loc"))
    _multivariate_normal(stats)
