"""A systematic finite-difference sweep of the NumPy rule table.

Where ``tests/test_numpy_rules.py`` has one hand-written case per rule, this file generates
cases along every axis a rule can get wrong: input shapes (size-1 axes included), broadcasting
pairs and Python float operands, every ``axis``/``keepdims``/``ddof`` spelling of the
reductions, the axis/shape arguments of the shape functions, the operand ranks of the products
and decompositions, method spellings (``x.sum(1)``, ``x.T``), dtypes (float32 arrays and
scalars, float32 mixed with float64, NumPy scalars, 0-d arrays) and non-differentiated int
arguments (an axis, a shape, an exponent or an index array passed as an argument).

Each case is an expression written exactly as user code spells it, such as
``np.sum(x, axis=(0, 2), keepdims=True)``. It becomes the real source of a function
``def f(x, w): return np.sum((EXPR) * w)`` (registered with ``linecache``, so symdiff reads
it like any file): ``w`` is a fixed random weighting of the output's shape, so that a gradient
of the right shape but with wrong entries cannot pass. Every float argument is differentiated
and compared with central finite differences in float64 (``tests/fd.py``).

The dtype rules checked are those of the README: an ndarray argument gets a gradient of its
own shape and dtype (float32 stays float32 even where it meets float64), a Python float a
``float``, a NumPy scalar a NumPy scalar of its type.
"""

from __future__ import annotations

import linecache
import math
import warnings
import zlib
from dataclasses import dataclass, replace
from typing import Any, Callable

import numpy as np
import pytest
from fd import numerical_grad

import symdiff
from symdiff import passes

# ============================================================================ input domains
# domain(rng, shape) -> a float64 ndarray of ``shape``, or a Python float when shape is None


def _values(values: np.ndarray, shape: tuple | None) -> Any:
    if shape is None:
        return float(values.ravel()[0])
    return np.asarray(values, dtype=np.float64).reshape(shape)


def _count(shape: tuple | None) -> int:
    return 1 if shape is None else math.prod(shape)


def REAL(rng, shape):
    return _values(rng.uniform(-2.0, 2.0, _count(shape)), shape)


def POS(rng, shape):
    return _values(rng.uniform(0.5, 2.0, _count(shape)), shape)


def UNIT(rng, shape):
    return _values(rng.uniform(-0.9, 0.9, _count(shape)), shape)


def ABOVE1(rng, shape):
    return _values(rng.uniform(1.2, 3.0, _count(shape)), shape)


def NONZERO(rng, shape):
    n = _count(shape)
    return _values(rng.choice([-1.0, 1.0], n) * rng.uniform(0.5, 2.0, n), shape)


def SPREAD(rng, shape):
    """Distinct values at least ~0.1 apart: no ties within the finite-difference step (max,
    sort, median), and distinct absolute values too (norm ord=inf)."""
    n = _count(shape)
    values = np.linspace(0.3, 2.0, n) * rng.choice([-1.0, 1.0], n) + rng.uniform(-0.01, 0.01, n)
    return _values(rng.permutation(values), shape)


def AWAY(rng, shape):
    """Away from integers and half-integers (floor, round, mod with 1 jump there)."""
    n = _count(shape)
    frac = np.where(rng.random(n) < 0.5, rng.uniform(0.1, 0.4, n), rng.uniform(0.6, 0.9, n))
    return _values(rng.integers(-3, 3, n) + frac, shape)


def SQUARE(rng, shape):
    """Square matrices (or stacks of them) near 3 * identity: well conditioned."""
    return rng.uniform(-1.0, 1.0, shape) + 3.0 * np.eye(shape[-1])


def REAL_EIG(rng, shape):
    """Matrices with real, well separated eigenvalues (1, 2, 3...) for np.linalg.eig."""
    n = shape[-1]
    return np.diag(np.arange(1.0, n + 1.0)) + 0.2 * rng.uniform(-1.0, 1.0, shape)


def weight(rng, shape: tuple) -> Any:
    """The weighting of an output of ``shape``: a Python float for a scalar output."""
    n = _count(shape)
    values = rng.choice([-1.0, 1.0], n) * rng.uniform(0.5, 1.5, n)
    return float(values[0]) if shape == () else values.reshape(shape)


# ============================================================================ cases


@dataclass(frozen=True)
class Arg:
    """One parameter of a case's function: a differentiated float (or float array) drawn from
    ``domain``, or a constant (``value``) that is passed but not differentiated."""

    name: str
    domain: Callable | None = None
    shape: tuple | None = None
    value: Any = None

    @property
    def differentiated(self) -> bool:
        return self.domain is not None

    def draw(self, rng: np.random.Generator) -> Any:
        return self.domain(rng, self.shape) if self.differentiated else self.value


def A(name: str, domain: Callable, shape: tuple | None) -> Arg:
    return Arg(name, domain, shape)


def K(name: str, value: Any) -> Arg:
    return Arg(name, value=value)


@dataclass(frozen=True)
class Case:
    expr: str
    args: tuple[Arg, ...]
    pre: str = ""  # statements before the expression (one per line)
    rtol: float = 1e-5
    atol: float = 1e-6
    dtype: str = "float64"  # float64, float32 (every differentiated array), mixed (the first one), npscalar
    tag: str = ""
    f32: bool = True  # also run in float32
    numpy: str = "1.22.0"  # the oldest NumPy with every function the case calls

    @property
    def base(self) -> str:
        """The id without the dtype variant: every variant draws the same numbers."""
        shapes = ",".join(f"{a.name}{'' if a.shape is None else list(a.shape)}" if a.differentiated
                          else f"{a.name}={a.value!r}" for a in self.args)
        pre = f"{self.pre.strip()}; " if self.pre else ""
        return f"{pre}{self.expr} [{shapes}]{self.tag}"

    @property
    def id(self) -> str:
        return self.base + (f" {self.dtype}" if self.dtype != "float64" else "")

    @property
    def argnums(self) -> tuple:
        return tuple(i for i, a in enumerate(self.args) if a.differentiated)


CASES: list[Case] = []


NUMPY_2 = ("np.linalg.svdvals", "upper=", "correction=", ".logabsdet", ".eigenvalues", ".R", ".mT",
           "matrix_transpose", "vecdot")  # spellings NumPy 1.x does not have


def case(expr: str, *args: Arg, **kw: Any) -> None:
    if "numpy" not in kw:
        kw["numpy"] = "2.1.0" if "np.clip(x, min=" in expr else \
            "2.0.0" if any(word in expr for word in NUMPY_2) else "1.22.0"
    CASES.append(Case(expr, tuple(args), **kw))


def _x(shape, domain=REAL) -> Arg:
    return A("x", domain, shape)


# ---------------------------------------------------------------------------- elementwise, unary

ELEMENTWISE_SHAPES = [None, (), (3,), (2, 3), (2, 1, 3)]
ARRAY_SHAPES = ELEMENTWISE_SHAPES[1:]

UNARY = [  # (expression in x, domain, for Python floats too)
    ("-x", REAL, True), ("+x", REAL, True), ("abs(x)", NONZERO, True), ("x ** 2", REAL, True),
    ("x ** 3", REAL, True), ("x ** -2", NONZERO, True), ("x ** 0.5", POS, True), ("x ** 2.5", POS, True),
    ("2.0 ** x", REAL, True), ("pow(x, 3)", REAL, True), ("x ** x", POS, True), ("3.0 - x", REAL, True),
    ("x / 2.5", REAL, True), ("2.5 / x", NONZERO, True), ("x * x * x", REAL, True), ("x % 0.7", AWAY, True),
    ("1.0 + x * (2.0 - x)", REAL, True), ("-(x ** 2) / (1.0 + x ** 2)", REAL, True),
    ("np.exp(x)", REAL, True), ("np.expm1(x)", REAL, True), ("np.exp2(x)", REAL, True), ("np.log(x)", POS, True),
    ("np.log1p(x)", POS, True), ("np.log2(x)", POS, True), ("np.log10(x)", POS, True), ("np.sqrt(x)", POS, True),
    ("np.cbrt(x)", NONZERO, True), ("np.square(x)", REAL, True), ("np.reciprocal(x)", NONZERO, True),
    ("np.sin(x)", REAL, True), ("np.cos(x)", REAL, True), ("np.tan(x)", UNIT, True), ("np.arcsin(x)", UNIT, True),
    ("np.arccos(x)", UNIT, True), ("np.arctan(x)", REAL, True), ("np.sinh(x)", REAL, True),
    ("np.cosh(x)", REAL, True), ("np.tanh(x)", REAL, True), ("np.arcsinh(x)", REAL, True),
    ("np.arccosh(x)", ABOVE1, True), ("np.arctanh(x)", UNIT, True), ("np.abs(x)", NONZERO, True),
    ("np.absolute(x)", NONZERO, True), ("np.fabs(x)", NONZERO, True), ("np.negative(x)", REAL, True),
    ("np.positive(x)", REAL, True), ("np.sinc(x)", REAL, True), ("np.deg2rad(x)", REAL, True),
    ("np.radians(x)", REAL, True), ("np.rad2deg(x)", REAL, True), ("np.degrees(x)", REAL, True),
    ("np.conjugate(x)", REAL, True), ("np.conj(x)", REAL, True), ("np.real(x)", REAL, True),
    ("np.imag(x) + x", REAL, True), ("np.angle(x) + x", NONZERO, True), ("np.nan_to_num(x)", REAL, True),
    ("np.float_power(x, 3)", REAL, True), ("np.power(x, 2.5)", POS, True), ("np.power(2.0, x)", REAL, True),
    ("np.clip(x, -0.5, 0.7)", AWAY, True), ("np.maximum(x, 0.3)", AWAY, True), ("np.minimum(0.3, x)", AWAY, True),
    ("np.fmax(x, -0.2)", AWAY, True), ("np.fmin(-0.2, x)", AWAY, True), ("np.hypot(x, 1.5)", REAL, True),
    ("np.arctan2(x, 2.0)", REAL, True), ("np.arctan2(1.5, x)", NONZERO, True), ("np.logaddexp(x, 0.5)", REAL, True),
    ("np.logaddexp2(0.5, x)", REAL, True), ("np.mod(x, 1.0)", AWAY, True), ("np.fmod(x, 1.5)", AWAY, True),
    ("np.remainder(2.0, x)", POS, True), ("np.where(x > 0, x, 0.1 * x)", NONZERO, True),
    ("np.sign(x) * x", NONZERO, True), ("np.floor(x) + x", AWAY, True), ("np.round(x) * x", AWAY, True),
    ("np.heaviside(x, 0.5) * x", NONZERO, True), ("np.exp(np.sin(x)) * np.tanh(x)", REAL, True),
    ("x.copy()", REAL, False), ("x.conj()", REAL, False), ("x.real", REAL, False), ("x.imag + x", REAL, False),
    ("x.astype(np.float64)", REAL, False), ("x.astype(float)", REAL, False), ("x.clip(-0.5, 0.7)", AWAY, False),
    ("x.clip(min=-0.5)", AWAY, False), ("x.clip(max=0.5)", AWAY, False), ("np.array(x)", REAL, False),
    ("np.asarray(x)", REAL, False), ("np.copy(x)", REAL, False),
]

MATH = [  # Python floats only
    ("math.exp(x)", REAL), ("math.expm1(x)", REAL), ("math.log(x)", POS), ("math.log1p(x)", POS),
    ("math.log2(x)", POS), ("math.log10(x)", POS), ("math.sqrt(x)", POS), ("math.sin(x)", REAL),
    ("math.cos(x)", REAL), ("math.tan(x)", UNIT), ("math.asin(x)", UNIT), ("math.acos(x)", UNIT),
    ("math.atan(x)", REAL), ("math.sinh(x)", REAL), ("math.cosh(x)", REAL), ("math.tanh(x)", REAL),
    ("math.erf(x)", REAL), ("math.fabs(x)", NONZERO), ("math.log(x, 3.0)", POS), ("math.log(3.0, x)", ABOVE1),
    ("math.pow(x, 2.5)", POS), ("math.pow(2.5, x)", REAL), ("math.atan2(x, 1.5)", REAL),
    ("math.atan2(1.5, x)", NONZERO), ("math.hypot(x, 2.0)", REAL), ("max(x, 0.3)", AWAY), ("min(0.3, x)", AWAY),
    ("max(x, -x, 0.1)", NONZERO), ("float(x)", REAL), ("math.floor(x) * x", AWAY), ("x * math.pi", REAL),
]

for _expr, _dom, _floats in UNARY:
    for _s in ELEMENTWISE_SHAPES if _floats else ARRAY_SHAPES:
        case(_expr, _x(_s, _dom), f32=_s in ((), (2, 1, 3)))
for _expr, _dom in MATH:
    case(_expr, _x(None, _dom))

# ---------------------------------------------------------------------------- elementwise, binary

PAIRS = [((3,), (2, 3)), ((2, 3), (3,)), ((2, 1), (1, 3)), ((), (2, 3)), ((2, 3), ()), (None, (2, 3)),
         ((2, 3), None), ((2, 3), (2, 3)), ((2, 1, 3), (2, 3)), ((1,), (3,)), ((1, 3), (2, 1)), (None, None),
         ((), ())]

BINARY = [  # (expression in x and y, domain of x, domain of y)
    ("x + y", REAL, REAL), ("x - y", REAL, REAL), ("x * y", REAL, REAL), ("x / y", REAL, NONZERO),
    ("x ** y", POS, REAL), ("pow(x, y)", POS, REAL), ("x % y", REAL, POS), ("np.add(x, y)", REAL, REAL),
    ("np.subtract(x, y)", REAL, REAL), ("np.multiply(x, y)", REAL, REAL), ("np.divide(x, y)", REAL, NONZERO),
    ("np.true_divide(x, y)", REAL, NONZERO), ("np.power(x, y)", POS, REAL), ("np.float_power(x, y)", POS, REAL),
    ("np.maximum(x, y)", REAL, REAL), ("np.minimum(x, y)", REAL, REAL), ("np.fmax(x, y)", REAL, REAL),
    ("np.fmin(x, y)", REAL, REAL), ("np.hypot(x, y)", NONZERO, NONZERO), ("np.arctan2(x, y)", NONZERO, NONZERO),
    ("np.logaddexp(x, y)", REAL, REAL), ("np.logaddexp2(x, y)", REAL, REAL), ("np.mod(x, y)", REAL, POS),
    ("np.remainder(x, y)", REAL, POS), ("np.fmod(x, y)", REAL, NONZERO), ("np.where(x > y, x, y)", REAL, REAL),
    ("np.where(x > 0.0, y, x * y)", NONZERO, REAL), ("x * np.exp(y) - y / (1.0 + x ** 2)", REAL, REAL),
]

for _expr, _dx, _dy in BINARY:
    for _sx, _sy in PAIRS:
        case(_expr, A("x", _dx, _sx), A("y", _dy, _sy))

# ---------------------------------------------------------------------------- reductions

AXES = {
    (4,): [None, 0, -1, (0,)],
    (3, 4): [None, 0, 1, -1, -2, (0, 1), (-1, 0)],
    (2, 3, 4): [None, 0, 1, 2, -1, -3, (0, 1), (0, 2), (2, 0), (1, -1), (0, 1, 2)],
}

REDUCTIONS = [  # (spelling with {x} and {opts}, domain)
    ("np.sum({x}{opts})", REAL), ("np.mean({x}{opts})", REAL), ("np.prod({x}{opts})", NONZERO),
    ("np.max({x}{opts})", SPREAD), ("np.min({x}{opts})", SPREAD), ("np.amax({x}{opts})", SPREAD),
    ("np.amin({x}{opts})", SPREAD), ("np.nanmax({x}{opts})", SPREAD), ("np.nanmin({x}{opts})", SPREAD),
    ("np.std({x}{opts})", REAL), ("np.var({x}{opts})", REAL),
    ("np.nansum({x}{opts})", REAL), ("np.nanmean({x}{opts})", REAL), ("np.median({x}{opts})", SPREAD),
    ("np.average({x}{opts})", REAL), ("np.quantile({x}, 0.3{opts})", SPREAD),
    ("np.percentile({x}, 65.0{opts})", SPREAD),
    ("{x}.sum({opts1})", REAL), ("{x}.mean({opts1})", REAL), ("{x}.prod({opts1})", NONZERO),
    ("{x}.max({opts1})", SPREAD), ("{x}.min({opts1})", SPREAD), ("{x}.std({opts1})", REAL),
    ("{x}.var({opts1})", REAL),
]


def _reduction(template: str, axis: Any, keepdims: bool | None, positional: bool = False) -> str:
    parts = [] if axis is None and keepdims is None else [repr(axis) if positional else f"axis={axis!r}"]
    if keepdims is not None:
        parts.append(f"keepdims={keepdims}")
    opts = ", ".join(parts)
    return template.format(x="x", opts=", " + opts if opts else "", opts1=opts)


SIZE_ONE_AXES = {(1,): [None, 0], (2, 1, 3): [None, 1, -1, (0, 1), (1, 2)], (1, 1): [None, 0, (0, 1)]}

for _template, _dom in REDUCTIONS:
    for _s, _axes in SIZE_ONE_AXES.items():  # size-1 axes: the shapes symdiff specialises on
        for _axis in _axes:
            case(_reduction(_template, _axis, _axis is not None), _x(_s, _dom), f32=False)
    for _s, _axes in AXES.items():  # (float32 too for 3-D arrays)
        case(_reduction(_template, None, None), _x(_s, _dom), f32=len(_s) == 3)  # the default: every axis
        case(_reduction(_template, 0, None, positional=True), _x(_s, _dom), f32=len(_s) == 3)
        for _axis in _axes:
            for _keep in (False, True):
                case(_reduction(_template, _axis, _keep), _x(_s, _dom), f32=len(_s) == 3)

for _op in ("np.std", "np.var", "x.std", "x.var"):
    _call = (lambda op: (lambda opts: f"{op}(x, {opts})") if op.startswith("np") else
             (lambda opts: f"{op}({opts})"))(_op)
    for _opts, _shape in [("ddof=1", (4,)), ("ddof=1", (3, 4)), ("axis=0, ddof=1", (3, 4)),
                          ("axis=1, ddof=2", (3, 4)), ("axis=(0, 2), ddof=1, keepdims=True", (2, 3, 4)),
                          ("axis=-1, ddof=3", (2, 3, 4)), ("ddof=0.5", (3, 4)), ("axis=1, correction=1", (3, 4))]:
        if "correction" in _opts and not _op.startswith("np"):
            continue
        case(_call(_opts), _x(_shape))
case("np.std(x, 1, None, None, 1)", _x((3, 4)))  # ddof positionally

for _q in ("[0.2, 0.7]", "(0.0, 0.5, 1.0)"):
    for _opts in ("", ", axis=1", ", axis=0, keepdims=True"):
        case(f"np.quantile(x, {_q}{_opts})", _x((3, 4), SPREAD))
case("np.percentile(x, [10.0, 90.0], axis=(0, 2))", _x((2, 3, 4), SPREAD))
case("np.median(x, 1, keepdims=True)", _x((2, 3, 4), SPREAD))

CUMULATIVE = [("np.cumsum(x{opts})", REAL), ("x.cumsum({opts1})", REAL), ("np.cumprod(x{opts})", NONZERO),
              ("x.cumprod({opts1})", NONZERO)]
for _template, _dom in CUMULATIVE:
    for _s in [(4,), (3, 4), (2, 3, 4)]:
        for _axis in [None, 0, -1] + ([1] if len(_s) > 1 else []):
            if _axis is None:
                case(_template.format(opts="", opts1=""), _x(_s, _dom))
            else:
                case(_template.format(opts=f", axis={_axis}", opts1=f"axis={_axis}"), _x(_s, _dom))
                case(_template.format(opts=f", {_axis}", opts1=f"{_axis}"), _x(_s, _dom))

for _opts, _wshape in [("weights=v", (3, 4)), ("axis=1, weights=u", (4,)), ("axis=0, weights=t", (3,)),
                       ("axis=1, weights=u, keepdims=True", (4,))]:
    _name = _opts.split("weights=")[1].split(",")[0]
    case(f"np.average(x, {_opts})", _x((3, 4)), A(_name, POS, _wshape))

# ---------------------------------------------------------------------------- norms

VECTOR_ORDS = [None, 2, 1, "np.inf", "-np.inf", 3, 0.5, -1, 0]
for _s in [(4,), (3, 4), (2, 3, 4)]:
    for _o in VECTOR_ORDS:
        _ord = f", ord={_o}" if _o is not None else ""
        _dom = SPREAD if _o in ("np.inf", "-np.inf") else NONZERO
        if len(_s) == 1:
            case(f"np.linalg.norm(x{_ord})", _x(_s, _dom))
            case(f"np.linalg.norm(x{_ord}, keepdims=True)", _x(_s, _dom))
        for _axis in ([0, -1] if len(_s) == 1 else [0, -1, 1]):
            for _keep in (False, True):
                case(f"np.linalg.norm(x{_ord}, axis={_axis}, keepdims={_keep})", _x(_s, _dom), f32=len(_s) == 3)
case("np.linalg.norm(x, 3, 1)", _x((3, 4), NONZERO))  # ord and axis positionally

MATRIX_ORDS = [None, "'fro'", "'nuc'", 2, -2, 1, -1, "np.inf", "-np.inf"]
for _o in MATRIX_ORDS:
    _ord = f", ord={_o}" if _o is not None else ""
    case(f"np.linalg.norm(x{_ord})", _x((3, 4), SPREAD))
    case(f"np.linalg.norm(x{_ord}, keepdims=True)", _x((4, 3), SPREAD))
    for _axis in [(1, 2), (0, 2), (2, 1), (-1, 0)]:
        for _keep in (False, True):
            case(f"np.linalg.norm(x{_ord}, axis={_axis}, keepdims={_keep})", _x((2, 3, 4), SPREAD))
case("np.linalg.norm(x, axis=(0, 1))", _x((3, 4)))

# ---------------------------------------------------------------------------- shape functions

FIRST_STRUCTURAL = len(CASES)  # from here on, each case also runs with size-1 axes (see below)

SHAPE_OPS = [  # (expression, shape of x, domain)
    ("np.reshape(x, (6, 4))", (2, 3, 4)), ("np.reshape(x, (4, -1))", (2, 3, 4)), ("np.reshape(x, -1)", (2, 3, 4)),
    ("np.reshape(x, (2, -1, 2))", (2, 3, 4)), ("np.reshape(x, (1, 24, 1))", (2, 3, 4)),
    ("x.reshape(6, 4)", (2, 3, 4)), ("x.reshape((-1, 3))", (2, 3, 4)), ("x.reshape(-1)", (2, 3, 4)),
    ("x.reshape(4, 6, order='F')", (2, 3, 4)), ("np.reshape(x, (4, 6), order='F')", (2, 3, 4)),
    ("x.reshape(3, 2)", (6,)), ("np.reshape(x, ())", (1,)), ("np.reshape(x, (1, 1))", ()),
    ("np.ravel(x)", (2, 3, 4)), ("np.ravel(x, order='F')", (2, 3, 4)), ("x.ravel()", (2, 3)),
    ("x.ravel('F')", (2, 3)), ("x.flatten()", (2, 3, 4)), ("x.flatten('F')", (2, 3)), ("x.flatten()", ()),
    ("np.transpose(x)", (2, 3, 4)), ("np.transpose(x, (1, 0, 2))", (2, 3, 4)),
    ("np.transpose(x, (2, 0, 1))", (2, 3, 4)),
    ("np.transpose(x, axes=(1, 2, 0))", (2, 3, 4)), ("np.transpose(x, (-1, 0, 1))", (2, 3, 4)),
    ("np.transpose(x, [0, 2, 1])", (2, 3, 4)), ("np.transpose(x, (1, -1, 0))", (2, 3, 4)), ("np.transpose(x)", (3,)),
    ("x.T", (2, 3)), ("x.T", (2, 3, 4)), ("x.T", (3,)), ("x.transpose()", (2, 3, 4)),
    ("x.transpose(2, 0, 1)", (2, 3, 4)), ("x.transpose((1, 2, 0))", (2, 3, 4)), ("x.transpose(-1, 0, 1)", (2, 3, 4)),
    ("x.transpose([1, 0])", (2, 3)), ("np.swapaxes(x, 0, 2)", (2, 3, 4)), ("np.swapaxes(x, -1, 0)", (2, 3, 4)),
    ("x.swapaxes(1, 2)", (2, 3, 4)), ("np.moveaxis(x, 0, -1)", (2, 3, 4)), ("np.moveaxis(x, -1, 0)", (2, 3, 4)),
    ("np.moveaxis(x, (0, 1), (2, 0))", (2, 3, 4)), ("np.moveaxis(x, [0, 1], [-1, -2])", (2, 3, 4)),
    ("np.rollaxis(x, 2)", (2, 3, 4)), ("np.rollaxis(x, 0, 3)", (2, 3, 4)), ("np.rollaxis(x, -1, 1)", (2, 3, 4)),
    ("np.squeeze(x)", (2, 1, 3, 1)), ("np.squeeze(x, 1)", (2, 1, 3, 1)), ("np.squeeze(x, axis=(1, 3))", (2, 1, 3, 1)),
    ("np.squeeze(x, axis=-1)", (2, 1, 3, 1)), ("x.squeeze()", (2, 1, 3, 1)), ("x.squeeze(1)", (2, 1, 3, 1)),
    ("x.squeeze(axis=(1, -1))", (2, 1, 3, 1)), ("np.squeeze(x)", (1,)),
    ("np.expand_dims(x, 0)", (2, 3)), ("np.expand_dims(x, -1)", (2, 3)), ("np.expand_dims(x, (0, 2))", (2, 3)),
    ("np.expand_dims(x, axis=1)", (2, 3)), ("np.expand_dims(x, (-1, 0))", (3,)), ("x[None]", (2, 3)),
    ("x[:, None, :]", (2, 3)), ("x[..., None]", (2, 3)), ("np.atleast_1d(x)", None), ("np.atleast_2d(x)", (3,)),
    ("np.atleast_3d(x)", (2, 3)), ("np.atleast_3d(x)", (3,)), ("np.atleast_2d(x)", None),
    ("np.tile(x, 2)", (2, 3)), ("np.tile(x, (2, 1))", (2, 3)), ("np.tile(x, (2, 1, 1, 2))", (2, 3)),
    ("np.tile(x, (1, 3))", (3,)), ("np.tile(x, 3)", None), ("np.tile(x, (2, 2))", (2, 1, 3)),
    ("np.repeat(x, 2)", (2, 3)), ("np.repeat(x, 2, axis=1)", (2, 3)), ("np.repeat(x, [1, 0, 2], axis=1)", (2, 3)),
    ("x.repeat(3, axis=0)", (2, 3)), ("x.repeat(2)", (2, 3)), ("np.repeat(x, 3, axis=-1)", (2, 3, 4)),
    ("np.repeat(x, 3)", None), ("x.repeat([2, 1], 0)", (2, 3)),
    ("np.flip(x)", (2, 3, 4)), ("np.flip(x, 0)", (2, 3, 4)), ("np.flip(x, axis=(0, 2))", (2, 3, 4)),
    ("np.flip(x, -1)", (2, 3, 4)), ("np.fliplr(x)", (2, 3)), ("np.flipud(x)", (2, 3)), ("x[::-1]", (2, 3, 4)),
    ("x[:, ::-2]", (2, 3, 4)),
    ("np.roll(x, 1)", (2, 3, 4)), ("np.roll(x, -2, axis=1)", (2, 3, 4)), ("np.roll(x, (1, 2), axis=(0, 2))", (2, 3, 4)),
    ("np.roll(x, 7)", (2, 3, 4)), ("np.roll(x, 1, axis=-1)", (2, 3, 4)), ("np.roll(x, [1, -1], axis=[0, 1])", (2, 3)),
    ("np.roll(x, 2, 0)", (2, 3)),
    ("np.rot90(x)", (2, 3)), ("np.rot90(x, 2)", (2, 3)), ("np.rot90(x, -1, axes=(1, 2))", (2, 3, 4)),
    ("np.rot90(x, k=3)", (2, 3, 4)),
    ("np.pad(x, 1)", (2, 3)), ("np.pad(x, ((1, 0), (0, 2)))", (2, 3)), ("np.pad(x, (2, 1))", (2, 3)),
    ("np.pad(x, 1, constant_values=3.0)", (2, 3)), ("np.pad(x, ((0, 1), (2, 0)), mode='constant')", (2, 3)),
    ("np.pad(x, 2)", (3,)), ("np.pad(x, ((1, 1),))", (3,)), ("np.pad(x, 1, 'constant')", (2, 3, 4)),
    ("np.pad(x, 1, mode='edge')", (2, 3)), ("np.pad(x, (1, 2), mode='reflect')", (3, 4)),
    ("np.pad(x, 2, mode='wrap')", (2, 3)), ("np.pad(x, 1, mode='symmetric')", (2, 3)), ("np.pad(x, 2, 'edge')", (3,)),
    ("np.pad(x, ((1, 0), (0, 3)), mode='reflect')", (2, 3)), ("np.pad(x, 4, mode='wrap')", (3,)),
    ("np.broadcast_to(x, (2, 3))", (3,)), ("np.broadcast_to(x, (4, 2, 5, 3))", (2, 1, 3)),
    ("np.broadcast_to(x, (2, 3))", None), ("np.broadcast_to(x, (2, 3))", ()), ("np.broadcast_to(x, (3, 2, 3))", (1, 3)),
    ("np.diag(x)", (3,)), ("np.diag(x, 1)", (3,)), ("np.diag(x, k=-2)", (3,)), ("np.diag(x)", (3, 4)),
    ("np.diag(x, 1)", (3, 4)), ("np.diag(x, -1)", (3, 4)), ("np.diagonal(x)", (3, 4)), ("np.diagonal(x, 1)", (3, 4)),
    ("x.diagonal()", (3, 4)), ("x.diagonal(-1)", (4, 3)), ("np.diagonal(x, 0, 1, 2)", (2, 3, 4)),
    ("np.diagonal(x, axis1=0, axis2=2)", (2, 3, 4)), ("np.diagonal(x, -1, 2, 1)", (2, 3, 4)),
    ("x.diagonal(0, 0, 2)", (2, 3, 4)), ("np.diagonal(x, 1, -1, -2)", (2, 3, 4)),
    ("np.trace(x)", (3, 4)), ("np.trace(x, 1)", (3, 4)), ("x.trace()", (3, 3)), ("x.trace(offset=-1)", (3, 3)),
    ("np.trace(x, 0, 1, 2)", (2, 3, 4)), ("np.trace(x, axis1=2, axis2=0)", (2, 3, 4)),
    ("np.trace(x, -1, -1, 0)", (2, 3, 4)),
    ("np.triu(x)", (3, 4)), ("np.triu(x, 1)", (3, 4)), ("np.tril(x, k=-1)", (3, 4)), ("np.tril(x)", (4, 3)),
    ("np.triu(x, -1)", (2, 3, 3)), ("np.tril(x, 1)", (2, 3, 3)), ("np.triu(x)", (4,)),
    ("np.sort(x)", (2, 3, 4)), ("np.sort(x, axis=0)", (2, 3, 4)), ("np.sort(x, axis=None)", (2, 3, 4)),
    ("np.sort(x, 1)", (3, 4)), ("np.sort(x)[..., -1]", (3, 4)), ("np.sort(x, kind='stable')", (5,)),
    ("np.sort(x, axis=-2)", (2, 3, 4)), ("np.partition(x, 1)", (3, 4)), ("np.partition(x, 2, axis=0)", (4, 3)),
    ("np.partition(x, (0, 3))", (5,)),
    ("x.take([0, 2])", (2, 3)), ("x.take([1, 0, 1], axis=1)", (2, 3)), ("np.take(x, [0, 2])", (2, 3)),
    ("np.take(x, [1, 1, 0], axis=1)", (2, 3)), ("np.take(x, 3)", (2, 3)),
    ("np.take(x, [[0, 1], [2, 2]], axis=-1)", (2, 3)), ("np.take(x, [1, 0, 1], axis=0)", (2, 3, 4)),
    ("np.take_along_axis(x, np.argsort(x, axis=1), axis=1)", (3, 4)),
    ("np.take_along_axis(x, np.array([[0, 2, 1, 0]]), axis=0)", (3, 4)),
    ("np.take_along_axis(x, np.array([[0, 2, 1, 0]]), axis=0)", (3, 1)), ("x.mT", (2, 3, 4)),
    ("np.matrix_transpose(x)", (3, 4)), ("np.linalg.matrix_transpose(x)", (2, 3, 4)),
    ("x[0]", (2, 3)), ("x[:, 1]", (2, 3)), ("x[..., ::2]", (2, 3, 4)), ("x[[0, 0, 1]]", (2, 3)),
    ("x[x > 0]", (2, 3)), ("x[1:, -1]", (2, 3, 4)), ("x[np.array([2, 0, 2])]", (3,)), ("x[[0, 1], [1, 2]]", (2, 3)),
    ("x[:, [2, 0]]", (2, 3)), ("x[-1, ..., 0]", (2, 3, 4)), ("x[1, 2]", (2, 3)), ("x[()]", ()),
    ("x[:, np.newaxis]", (3,)), ("x[..., [0, 0], 1:]", (2, 3, 4)), ("x[np.arange(3) % 2 == 0]", (3, 2)),
    ("np.diff(x, 2)", (1,)), ("np.diff(x, 3, axis=0)", (2, 3)), ("np.diff(x)", (4,)), ("np.diff(x, 2)", (5,)),
    ("np.diff(x, axis=0)", (3, 4)), ("np.diff(x, n=2, axis=-1)", (2, 3, 4)),
    ("np.gradient(x)", (5,)), ("np.gradient(x, axis=1)", (3, 4)), ("np.gradient(x, 0.5)", (5,)),
    ("np.gradient(x, axis=-1, edge_order=2)", (3, 4)),
    ("np.linspace(x, 2.0, 5)", None), ("np.linspace(-1.0, x, 4, endpoint=False)", None),
]
for _expr, _s in SHAPE_OPS:
    case(_expr, _x(_s, SPREAD if "sort" in _expr or "partition" in _expr else REAL))

JOINS = [  # (expression in x and y, shape of x, shape of y)
    ("np.concatenate([x, y])", (2, 3), (1, 3)), ("np.concatenate((x, y), axis=1)", (2, 3), (2, 2)),
    ("np.concatenate([x, y], axis=-1)", (2, 3, 4), (2, 3, 1)), ("np.concatenate([x, y, x])", (2, 3), (1, 3)),
    ("np.concatenate([x, y], axis=None)", (2, 3), (4,)), ("np.concatenate([x, y])", (3,), (2,)),
    ("np.concatenate([x[:, :1], y, x], axis=1)", (2, 3), (2, 2)),
    ("np.stack([x, y])", (2, 3), (2, 3)), ("np.stack((x, y), axis=1)", (2, 3), (2, 3)),
    ("np.stack([x, y], axis=-1)", (2, 3), (2, 3)), ("np.stack([x, x * y])", (3,), (3,)),
    ("np.stack([x, y], -2)", (2, 3), (2, 3)), ("np.stack([x, y])", None, None),
    ("np.vstack([x, y])", (3,), (3,)), ("np.vstack([x, y])", (2, 3), (1, 3)), ("np.vstack((x, y))", (2, 3), (3,)),
    ("np.hstack([x, y])", (3,), (2,)), ("np.hstack([x, y])", (2, 3), (2, 1)), ("np.hstack((x, y))", None, (2,)),
    ("np.dstack([x, y])", (2, 3), (2, 3)), ("np.dstack([x, y])", (3,), (3,)),
    ("np.column_stack([x, y])", (3,), (3,)), ("np.column_stack((x, y))", (3, 2), (3,)),
    ("np.append(x, y)", (2, 3), (4,)), ("np.append(x, y, axis=0)", (2, 3), (1, 3)), ("np.append(x, y)", (2,), None),
    ("np.array([x, y])", (3,), (3,)), ("np.array([x, 2.0 * y, x * y])", None, None),
    ("np.array([[x, y], [y, x]])", None, None), ("np.asarray([x, y])", (2, 3), (2, 3)),
    ("np.r_[x, y]", (3,), (2,)), ("np.c_[x, y]", (3,), (3,)), ("np.r_[x, 1.0, y]", (2,), None),
    ("np.where(x > 0.0, x, y)", (2, 3), (3,)), ("np.where(x > y, x - y, 0.0)", (2, 1), (1, 3)),
    ("np.where(x > 0.5, 1.0, y)", (2, 3), None),
    ("np.select([x > 0.5, x < -0.5], [x * y, 2.0 * y], x + y)", (4,), (4,)),
    ("np.convolve(x, y)", (5,), (3,)), ("np.convolve(x, y, mode='same')", (5,), (3,)),
    ("np.convolve(x, y, 'valid')", (5,), (3,)), ("np.convolve(x, y)", (2,), (4,)),
    ("np.cross(x, y)", (3,), (3,)), ("np.cross(x, y)", (2, 3), (3,)), ("np.cross(x, y)", (2, 1, 3), (4, 3)),
    ("np.polyval(x, y)", (3,), (4,)), ("np.polyval(x, y)", (4,), None), ("np.polyval(x, y)", (2,), (2, 3)),
    ("np.interp(x, [-2.0, 0.0, 2.0], y)", (5,), (3,)), ("np.interp(x, [-2.0, -1.0, 0.5, 2.0], y)", None, (4,)),
    ("np.linspace(x, y, 5)", None, None), ("np.linspace(x, y, 4, axis=1)", (2,), (2,)),
    ("np.linspace(x, y, 3)", (2, 1), (3,)),
]
JOINS += [  # differentiated keyword arguments
    ("np.select([x > 0.5], [x * y], default=y)", (4,), (4,)), ("np.linspace(start=x, stop=y, num=4)", None, (2,)),
    ("np.interp(x, [-2.0, 0.0, 2.0], fp=y)", (4,), (3,)), ("np.append(x, values=y)", (2,), (3,)),
    ("np.average(x, axis=0, weights=y)", (3, 2), (3,)), ("np.clip(x, a_min=y, a_max=2.5)", (2, 3), (3,)),
    ("np.clip(x, min=-2.5, max=y)", (2, 3), None), ("x.clip(min=y)", (2, 3), (2, 1)),
]
for _expr, _sx, _sy in JOINS:
    case(_expr, _x(_sx), A("y", REAL, _sy))

SPLITS = [  # (expression picking pieces of split(x), shape of x)
    ("np.split(x, 2)[1]", (4, 6)), ("np.split(x, 3, axis=1)[0]", (4, 6)), ("np.split(x, [1, 4], axis=1)[1]", (4, 6)),
    ("np.split(x, [1, 3])[2] * np.split(x, [1, 3])[0]", (4, 6)), ("np.array_split(x, 3)[2]", (4, 6)),
    ("np.array_split(x, 4, axis=1)[0]", (4, 6)), ("np.array_split(x, 3)[0]", (5,)), ("np.hsplit(x, 2)[1]", (4, 6)),
    ("np.hsplit(x, 2)[0]", (6,)), ("np.vsplit(x, [1])[1]", (4, 6)), ("np.dsplit(x, 2)[0]", (2, 3, 4)),
    ("np.split(x, 2, axis=-1)[1]", (2, 3, 4)), ("np.stack(np.split(x, 2, axis=1))", (4, 6)),
]
for _expr, _s in SPLITS:
    case(_expr, _x(_s))
case("a * 1.5 + b * b - c", _x((4, 6)), pre="a, b, c = np.split(x, 3, axis=1)")
case("sum(np.split(x, 3))", _x((6, 2)))

for _expr in ("np.clip(x, lo, hi)", "x.clip(lo, hi)", "np.clip(x, a_min=lo, a_max=hi)", "np.clip(x, min=lo, max=hi)"):
    case(_expr, _x((2, 3)), A("lo", lambda rng, s: rng.uniform(-1.5, -0.5, s), (3,)),
         A("hi", lambda rng, s: rng.uniform(0.5, 1.5, s), (2, 1)))
case("np.clip(x, lo, None)", _x((2, 3)), A("lo", lambda rng, s: rng.uniform(-1.5, -0.5, s), (3,)))
case("np.clip(x, None, hi)", _x((2, 3)), A("hi", lambda rng, s: rng.uniform(0.5, 1.5, s), (2, 1)))
case("np.clip(x, lo, hi)", _x(None), A("lo", lambda rng, s: -0.2, None), A("hi", lambda rng, s: 0.3, None))
case("np.clip(0.1, a_min=x, a_max=3.0)", _x(None, POS))  # forward mode, through a keyword
case("np.clip(x, a_min=0.1, a_max=3.0) * x", _x(None, POS))

# ---------------------------------------------------------------------------- compositions
# Reductions broadcast back against their input (softmax, normalisation): the cotangent of a
# keepdims result meets the input's own.

COMPOSITIONS = [
    "x - np.mean(x, axis=-1, keepdims=True)", "x / np.linalg.norm(x, axis=-1, keepdims=True)",
    "np.exp(x - np.max(x, axis=-1, keepdims=True))",
    "np.exp(x) / np.sum(np.exp(x), axis=-1, keepdims=True)",
    "np.log(np.sum(np.exp(x), axis=0))", "(x - x.mean(0)) / x.std(0)",
    "(x - x.mean(axis=-1, keepdims=True)) / np.sqrt(x.var(axis=-1, keepdims=True) + 1e-3)",
    "x / np.sum(x ** 2)", "np.cumsum(x, axis=0) * np.cumprod(x, axis=0)", "np.sort(x, axis=0) * x",
    "np.maximum(x, np.mean(x))", "x * np.prod(x, axis=0, keepdims=True)", "np.tanh(x) @ np.swapaxes(x, -1, -2)",
    "np.where(x > np.median(x), x, -x)", "np.sum(x, axis=0) + np.sum(x, axis=-1, keepdims=True)",
    "x.mT @ x", "np.einsum('...ij,...ij->...i', x, np.exp(x))", "np.concatenate([x, x.sum(axis=0, keepdims=True)])",
]
for _expr in COMPOSITIONS:
    for _s in ((3, 4), (2, 3, 4), (1, 4), (3, 1)):
        if not (_s == (1, 4) and "std(0)" in _expr):  # (the std of one element is 0)
            case(_expr, _x(_s, SPREAD))

# ---------------------------------------------------------------------------- products

MATMUL_PAIRS = [((3,), (3,)), ((3,), (3, 2)), ((2, 3), (3,)), ((2, 3), (3, 4)), ((2, 2, 3), (3, 4)),
                ((2, 3), (2, 3, 4)), ((2, 2, 3), (2, 3, 4)), ((2, 1, 2, 3), (3, 3, 2)), ((3,), (2, 3, 4)),
                ((2, 2, 3), (3,)), ((1, 2, 3), (2, 3, 2)), ((1, 3), (3, 1)), ((3, 1), (1, 3))]
for _sx, _sy in MATMUL_PAIRS:
    case("x @ y", _x(_sx), A("y", REAL, _sy))
    case("np.matmul(x, y)", _x(_sx), A("y", REAL, _sy))
DOT_PAIRS = [((), (2, 3)), (None, (3,)), ((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)), ((2, 3), (3, 4)),
             ((2, 2, 3), (3,)), ((2, 2, 3), (3, 4)), ((2, 3), (2, 3, 4)), ((2, 2, 3), (2, 3, 4)), ((3,), (2, 3, 4))]
for _sx, _sy in DOT_PAIRS:
    case("np.dot(x, y)", _x(_sx), A("y", REAL, _sy))
    if _sx:
        case("x.dot(y)", _x(_sx), A("y", REAL, _sy))
for _sx, _sy in [((3,), (3,)), ((2, 3), (3,)), ((2, 3), (4, 3)), ((2, 2, 3), (4, 3)), ((), (3,)), ((3,), (2, 2, 3))]:
    case("np.inner(x, y)", _x(_sx), A("y", REAL, _sy))
for _sx, _sy in [((3,), (4,)), ((2, 3), (2,)), ((3,), (2, 2)), (None, (3,))]:
    case("np.outer(x, y)", _x(_sx), A("y", REAL, _sy))
for _sx, _sy in [((3,), (3,)), ((2, 3), (3, 2)), ((2, 3), (6,))]:
    case("np.vdot(x, y)", _x(_sx), A("y", REAL, _sy))
for _sx, _sy in [((2,), (3,)), ((2, 3), (2, 2)), ((2,), (2, 3)), ((2, 2, 2), (2, 3)), ((3, 1), (1, 2))]:
    case("np.kron(x, y)", _x(_sx), A("y", REAL, _sy))
TENSORDOTS = [("np.tensordot(x, y)", (2, 3, 4), (3, 4, 2)), ("np.tensordot(x, y, axes=2)", (2, 3, 4), (3, 4)),
              ("np.tensordot(x, y, 1)", (2, 3), (3, 4)), ("np.tensordot(x, y, axes=0)", (2, 3), (2,)),
              ("np.tensordot(x, y, axes=([1, 2], [1, 0]))", (2, 3, 4), (4, 3, 2)),
              ("np.tensordot(x, y, axes=([0, 1], [1, 0]))", (2, 3, 4), (3, 2)),
              ("np.tensordot(x, y, axes=[[2], [0]])", (2, 3, 4), (4, 2)),
              ("np.tensordot(x, y, axes=(1, 0))", (2, 3), (3, 4)),
              ("np.tensordot(x, y, axes=([-1], [-2]))", (2, 3), (2, 3, 4))]
for _expr, _sx, _sy in TENSORDOTS:
    case(_expr, _x(_sx), A("y", REAL, _sy))

EINSUMS = [  # (subscripts, operand shapes)
    ("ij,jk->ik", [(2, 3), (3, 4)]), ("ij,jk", [(2, 3), (3, 4)]), ("i,i", [(3,), (3,)]), ("i,i->", [(3,), (3,)]),
    ("ij->", [(2, 3)]), ("ij", [(2, 3)]), ("ji", [(2, 3)]), ("ii", [(3, 3)]), ("ii->i", [(3, 3)]),
    ("ij->ji", [(2, 3)]), ("ij->j", [(2, 3)]), ("bij,bjk->bik", [(2, 2, 3), (2, 3, 4)]),
    ("...ij,...jk->...ik", [(2, 2, 3), (2, 3, 4)]), ("...ij,jk", [(2, 2, 3), (3, 4)]), ("i,j->ij", [(2,), (3,)]),
    ("ijk,k->ij", [(2, 3, 4), (4,)]), ("ij,ij->i", [(2, 3), (2, 3)]), ("a,ab,b", [(2,), (2, 3), (3,)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]), ("i,i,i->", [(3,), (3,), (3,)]), ("ij,ji->", [(2, 3), (3, 2)]),
    ("iij->j", [(3, 3, 2)]), ("ij,j", [(2, 3), (3,)]), ("i->", [(3,)]), ("ab,cd->abcd", [(2, 2), (2, 3)]),
    ("bi,bi->b", [(2, 3), (2, 3)]), ("ij,kj->ik", [(2, 3), (4, 3)]), ("...i,...i->...", [(2, 3), (2, 3)]),
    ("i...->...", [(2, 3, 4)]), ("ij,i->j", [(2, 3), (1,)]), ("ijk->kji", [(2, 3, 4)]), ("i,->i", [(3,), ()]),
]
for _spec, _shapes in EINSUMS:
    _names = "xyz"[: len(_shapes)]
    case(f"np.einsum({_spec!r}, {', '.join(_names)})", *(A(n, REAL, s) for n, s in zip(_names, _shapes)))
case("np.einsum('ij,ij->', x, x)", _x((2, 3)))
case("np.einsum('ij,jk', x, x.T)", _x((2, 3)))

# ---------------------------------------------------------------------------- linear algebra

LINALG = [  # (expression, statements before it, shape of x, domain)
    ("np.linalg.inv(x)", "", (3, 3), SQUARE), ("np.linalg.inv(x)", "", (2, 3, 3), SQUARE),
    ("np.linalg.inv(x)", "", (1, 1), SQUARE), ("np.linalg.det(x)", "", (3, 3), SQUARE),
    ("np.linalg.det(x)", "", (2, 3, 3), SQUARE), ("np.linalg.det(x)", "", (2, 2), SQUARE),
    ("np.linalg.slogdet(x)[1]", "", (3, 3), SQUARE), ("np.linalg.slogdet(x)[1]", "", (2, 3, 3), SQUARE),
    ("np.linalg.slogdet(x)[1]", "", (3, 3), REAL_EIG), ("np.linalg.slogdet(x).logabsdet", "", (3, 3), SQUARE),
    ("sign * logdet", "sign, logdet = np.linalg.slogdet(x)", (3, 3), SQUARE),
    ("np.linalg.cholesky(s)", "s = x @ x.T + 3.0 * np.eye(3)", (3, 3), REAL),
    ("np.linalg.cholesky(s)", "s = x @ np.swapaxes(x, -1, -2) + 3.0 * np.eye(3)", (2, 3, 3), REAL),
    ("np.linalg.cholesky(s, upper=True)", "s = x @ x.T + 3.0 * np.eye(3)", (3, 3), REAL),
    ("np.linalg.pinv(x)", "", (3, 2), REAL), ("np.linalg.pinv(x)", "", (2, 3), REAL),
    ("np.linalg.pinv(x)", "", (2, 3, 2), REAL), ("np.linalg.pinv(x)", "", (3, 3), SQUARE),
    ("np.linalg.eigh(s)[0]", "s = x + x.T", (3, 3), REAL),
    ("np.linalg.eigvalsh(s)", "s = x + np.swapaxes(x, -1, -2)", (2, 3, 3), REAL),
    ("np.linalg.eigh(s).eigenvalues", "s = x + x.T", (3, 3), REAL),
    ("v * np.sign(v[0])", "s = x + x.T\nlam, v = np.linalg.eigh(s)", (3, 3), REAL),
    ("v * np.sign(v[..., :1, :])", "s = x + np.swapaxes(x, -1, -2)\nlam, v = np.linalg.eigh(s)", (2, 3, 3), REAL),
    ("np.linalg.eigvals(x)", "", (3, 3), REAL_EIG), ("np.linalg.eig(x)[0]", "", (3, 3), REAL_EIG),
    ("v * np.sign(v[0])", "lam, v = np.linalg.eig(x)", (3, 3), REAL_EIG),
    ("np.linalg.svd(x, compute_uv=False)", "", (3, 4), REAL), ("np.linalg.svd(x, compute_uv=False)", "", (4, 3), REAL),
    ("np.linalg.svd(x, compute_uv=False)", "", (2, 3, 4), REAL),
    ("np.linalg.svd(x, full_matrices=False)[1]", "", (4, 3), REAL),
    ("np.linalg.svd(x)[1]", "", (3, 3), REAL), ("np.linalg.svd(x)[1]", "", (3, 4), REAL),
    ("u * np.sign(u[0])", "u, sv, vh = np.linalg.svd(x, full_matrices=False)", (4, 3), REAL),
    ("vh * np.sign(u[0])[:, None]", "u, sv, vh = np.linalg.svd(x, full_matrices=False)", (3, 4), REAL),
    ("(u * sv[..., None, :]) @ vh", "u, sv, vh = np.linalg.svd(x, full_matrices=False)", (2, 3, 4), REAL),
    ("np.linalg.svdvals(x)", "", (3, 4), REAL),
    ("np.linalg.qr(x)[0]", "", (4, 3), REAL), ("np.linalg.qr(x)[1]", "", (4, 3), REAL),
    ("np.linalg.qr(x)[0]", "", (3, 3), REAL), ("np.linalg.qr(x).R", "", (3, 3), REAL),
    ("np.linalg.qr(x, mode='r')", "", (4, 3), REAL), ("q @ r", "q, r = np.linalg.qr(x)", (4, 3), REAL),
    ("np.linalg.qr(x)[1]", "", (2, 4, 3), REAL), ("np.linalg.qr(x)[0]", "", (3, 5), REAL),
    ("np.linalg.qr(x)[1]", "", (3, 5), REAL), ("q * r[:, :1]", "q, r = np.linalg.qr(x)", (2, 4), REAL),
    ("np.linalg.qr(x)[1]", "", (2, 2, 3), REAL),
    ("np.trace(x @ x.T)", "", (2, 3), REAL), ("np.linalg.matrix_power(x, 3)", "", (3, 3), REAL),
    ("np.linalg.matrix_power(x, 0)", "", (3, 3), REAL), ("np.linalg.matrix_power(x, 1)", "", (3, 3), REAL),
    ("np.linalg.matrix_power(x, 2)", "", (2, 3, 3), REAL), ("np.linalg.matrix_power(x, -1)", "", (3, 3), SQUARE),
    ("np.linalg.matrix_power(x, -2)", "", (2, 3, 3), SQUARE), ("np.linalg.multi_dot([x, x.T, x])", "", (2, 3), REAL),
    ("np.linalg.multi_dot([x[0], x.T, x, x[1]])", "", (2, 3), REAL),
    ("np.linalg.multi_dot((x.T, x[:, :2], x[1, :2]))", "", (2, 3), REAL),
]
for _expr, _pre, _s, _dom in LINALG:
    case(_expr, _x(_s, _dom), pre=_pre, tag=" near diag(1, 2, 3)" if _dom is REAL_EIG else "")

for _sx, _sy in [((3,), (3,)), ((2, 3), (3,)), ((2, 1, 3), (4, 3))]:
    case("np.vecdot(x, y)", _x(_sx), A("y", REAL, _sy))
    case("np.linalg.vecdot(x, y)", _x(_sx), A("y", REAL, _sy))
case("np.vecdot(x, y, axis=0)", _x((3, 2)), A("y", REAL, (3, 1)))
case("np.linalg.vecdot(x, y, axis=-2)", _x((2, 3, 2)), A("y", REAL, (3, 2)))
for _sa, _sb in [((3, 3), (3,)), ((3, 3), (3, 2)), ((2, 3, 3), (2, 3, 2)), ((2, 3, 3), (3, 2)), ((1, 1), (1,))]:
    case("np.linalg.solve(x, y)", _x(_sa, SQUARE), A("y", REAL, _sb))
for _expr in ("np.linalg.lstsq(x, y, rcond=None)[0]", "np.linalg.lstsq(x, y, rcond=None)[1]",
              "np.linalg.lstsq(x, y)[0]"):
    for _sb in [(5,), (5, 2)]:
        case(_expr, _x((5, 3)), A("y", REAL, _sb))

# ---------------------------------------------------------------------------- int arguments, not differentiated

INT_ARGS = [  # (expression, x's shape, the non-differentiated argument)
    ("np.sum(x, axis=n)", (2, 3), K("n", 1)), ("np.sum(x, n)", (2, 3, 4), K("n", -1)),
    ("np.mean(x, axis=n, keepdims=True)", (2, 3), K("n", 0)), ("x.sum(axis=n)", (2, 3), K("n", 1)),
    ("np.max(x, axis=n)", (2, 3), K("n", 1)), ("np.prod(x, axis=n)", (2, 3), K("n", 0)),
    ("np.std(x, ddof=n)", (2, 3), K("n", 1)), ("np.var(x, axis=0, ddof=n)", (3, 2), K("n", 1)),
    ("np.cumsum(x, axis=n)", (2, 3), K("n", 1)), ("np.cumprod(x, n)", (2, 3), K("n", 0)),
    ("np.reshape(x, (n, -1))", (2, 3, 4), K("n", 4)), ("x.reshape(n, 6)", (2, 3, 4), K("n", 4)),
    ("np.reshape(x, s)", (2, 3, 4), K("s", (4, 6))), ("np.transpose(x, p)", (2, 3, 4), K("p", (2, 0, 1))),
    ("x ** n", (2, 3), K("n", 3)), ("x ** n", None, K("n", 2)), ("np.power(x, n)", (2, 3), K("n", 2)),
    ("np.roll(x, n)", (2, 3), K("n", 2)), ("np.roll(x, n, axis=1)", (2, 3), K("n", -1)),
    ("np.repeat(x, n)", (2, 3), K("n", 2)), ("np.repeat(x, n, axis=0)", (2, 3), K("n", 3)),
    ("np.tile(x, n)", (2, 3), K("n", 2)), ("np.triu(x, n)", (3, 3), K("n", 1)), ("np.tril(x, n)", (3, 3), K("n", -1)),
    ("np.diag(x, n)", (3,), K("n", 1)), ("np.diag(x, n)", (3, 3), K("n", -1)), ("np.trace(x, n)", (3, 3), K("n", 1)),
    ("np.linalg.norm(x, n)", (4,), K("n", 1)), ("np.linalg.norm(x, n)", (4,), K("n", 3)),
    ("np.linalg.norm(x, axis=n)", (2, 3), K("n", 1)), ("np.linalg.norm(x, n, axis=1)", (2, 3), K("n", 2)),
    ("np.diff(x, n)", (5,), K("n", 2)), ("np.expand_dims(x, n)", (2, 3), K("n", 1)),
    ("np.moveaxis(x, n, 0)", (2, 3, 4), K("n", 2)), ("np.swapaxes(x, n, 0)", (2, 3, 4), K("n", 2)),
    ("np.squeeze(x, n)", (2, 1, 3), K("n", 1)), ("np.flip(x, n)", (2, 3), K("n", 1)),
    ("np.rot90(x, n)", (2, 3), K("n", 3)),
    ("np.take(x, i)", (2, 3), K("i", np.array([4, 0, 4]))), ("np.take(x, i, axis=1)", (2, 3), K("i", np.array([2, 2]))),
    ("x[i]", (4,), K("i", np.array([3, 0, 3]))), ("x[i]", (3, 2), K("i", 2)), ("x[:n]", (4,), K("n", 2)),
    ("x[i, 1:]", (3, 3), K("i", np.array([0, 2]))), ("x[m]", (2, 3), K("m", np.array([[True, False, True]] * 2))),
    ("x * k", (2, 3), K("k", np.array([1, -2, 3]))), ("x + k", (2, 3), K("k", np.array([[1], [2]]))),
    ("x / k", (3,), K("k", np.array([1, 2, 4]))),
    ("np.where(c, x, 0.0)", (2, 3), K("c", np.array([True, False, True]))),
    ("x * n", (2, 3), K("n", 3)), ("n - x", None, K("n", 2)), ("x * b", (2, 3), K("b", True)),
    ("np.quantile(x, q)", (5,), K("q", 0.4)), ("np.clip(x, lo, 0.5)", (2, 3), K("lo", -0.5)),
    ("np.linalg.matrix_power(x, n)", (3, 3), K("n", 2)), ("np.einsum(spec, x, x)", (2, 3), K("spec", "ij,ij->i")),
    ("np.split(x, n, axis=1)[1]", (2, 4), K("n", 2)), ("np.pad(x, n)", (2, 3), K("n", 1)),
]
for _expr, _s, _k in INT_ARGS:
    case(_expr, _x(_s, AWAY if "clip" in _expr else NONZERO), _k)

# ============================================================================ running a case


def _source(case: Case, name: str, weighted: bool) -> str:
    params = ", ".join([a.name for a in case.args] + (["w"] if weighted else []))
    body = [line.strip() for line in case.pre.splitlines() if line.strip()]
    body.append(f"return np.sum(({case.expr}) * w)" if weighted else f"return {case.expr}")
    return f"def {name}({params}):\n" + "".join(f"    {line}\n" for line in body)


_COMPILED: dict[str, tuple[Callable, Callable]] = {}


def functions(case: Case) -> tuple[Callable, Callable]:
    """``(f, value)``: ``f(*args, w)`` the weighted function symdiff differentiates, ``value(*args)``
    the expression itself; both with real source (linecache), in a module namespace of their own."""
    key = case.base
    if key not in _COMPILED:
        filename = f"<numpy systematic {len(_COMPILED)}>"
        source = _source(case, "f", True) + "\n\n" + _source(case, "value", False)
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        namespace = {"np": np, "math": math, "__name__": "numpy_systematic"}
        exec(compile(source, filename, "exec"), namespace)  # noqa: S102 -- the test's own source
        _COMPILED[key] = (namespace["f"], namespace["value"])
    return _COMPILED[key]


_GRADS: dict[str, Callable] = {}


def gradient(case: Case) -> Callable:
    """``symdiff.grad`` of the case's function; one per function, so that its dtype variants are
    specialisations compiled side by side in one gradient object (and dispatched between)."""
    if case.base not in _GRADS:
        f, _ = functions(case)
        _GRADS[case.base] = symdiff.grad(f, argnums=case.argnums)
    return _GRADS[case.base]


def _cast(value: Any, dtype: str, first: bool) -> Any:
    if dtype == "float32" or (dtype == "mixed" and first):
        return value.astype(np.float32) if isinstance(value, np.ndarray) else value
    if dtype == "npscalar" and type(value) is float:
        return np.float64(value) if first else np.float32(value)
    return value


def arguments(case: Case) -> list:
    """The case's arguments (the variant's dtypes), the weighting last."""
    rng = np.random.default_rng(zlib.crc32(case.base.encode()))
    args = [a.draw(rng) for a in case.args]
    _, value = functions(case)
    w = weight(rng, np.shape(value(*args)))
    arrays = [i for i, a in enumerate(case.args) if a.differentiated and a.shape is not None]
    floats = [i for i, a in enumerate(case.args) if a.differentiated and a.shape is None]
    first = (arrays if case.dtype != "npscalar" else floats)[:1]
    args = [_cast(v, case.dtype, i in first) if case.args[i].differentiated else v for i, v in enumerate(args)]
    if case.dtype == "float32" and isinstance(w, np.ndarray):
        w = w.astype(np.float32)
    return args + [w]


def _float64(value: Any) -> Any:
    """The same number in float64, where finite differences are taken."""
    if isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating):
        return value.astype(np.float64)
    if isinstance(value, np.floating):
        return float(value)
    return value


def check(case: Case) -> None:
    """symdiff's gradient of the case: of the argument's type, shape and dtype, the arguments
    left as they were, and equal to central differences in float64."""
    f, _ = functions(case)
    args = arguments(case)
    before = [np.copy(a) if isinstance(a, np.ndarray) else a for a in args]
    grads = gradient(case)(*args)
    for a, b in zip(args, before):
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, b, err_msg="the gradient mutated an argument")
    exact = [_float64(a) for a in args]
    f32 = case.dtype in ("float32", "mixed")
    for n, g in zip(case.argnums, grads):
        x = args[n]
        if isinstance(x, np.ndarray):
            assert type(g) is np.ndarray, f"argument {n}: gradient is {type(g).__name__}, not ndarray"
            assert g.shape == x.shape, f"argument {n}: gradient shape {g.shape} != {x.shape}"
            assert g.dtype == x.dtype, f"argument {n}: gradient dtype {g.dtype} != {x.dtype}"
        else:
            assert type(g) is type(x), f"argument {n}: gradient is {type(g).__name__}, not {type(x).__name__}"
        want = numerical_grad(f, exact, n)
        if f32 or isinstance(x, np.float32):
            scale = 1.0 + float(np.max(np.abs(want), initial=0.0))
            np.testing.assert_allclose(np.asarray(g, np.float64), want, rtol=3e-3, atol=3e-3 * scale,
                                       err_msg=f"argument {n}")
        else:
            np.testing.assert_allclose(g, want, rtol=case.rtol, atol=case.atol, err_msg=f"argument {n}")


# ---------------------------------------------------------------------------- variants
# The shape functions, products and decompositions again with each axis of size 1 in turn,
# wherever NumPy accepts the shapes (gradients are specialised on the size-1 axes).
# Every case with a differentiated array also runs with all of them float32 (the weighting too:
# the whole function in float32); products and elementwise pairs also with float32 meeting
# float64; cases with a differentiated Python float with NumPy scalars in its place.


def _size_one_variants(case: Case) -> list[Case]:
    """``case`` with one axis of one differentiated array of size 1, for each such axis NumPy accepts."""
    variants = []
    for i, a in enumerate(case.args):
        for k, n in enumerate(a.shape or ()):
            if not a.differentiated or n == 1:
                continue
            args = list(case.args)
            args[i] = replace(a, shape=a.shape[:k] + (1,) + a.shape[k + 1:])
            variant = replace(case, args=tuple(args), f32=False)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("error")  # (var with ddof >= n...: no derivative)
                    arguments(variant)
            except Exception:  # noqa: BLE001 -- NumPy refuses these shapes: no variant
                continue
            variants.append(variant)
    return variants


BASE_CASES = list(CASES)
_ids = {c.id for c in CASES}
for _c in BASE_CASES[FIRST_STRUCTURAL:]:
    for _variant in _size_one_variants(_c):
        if _variant.id not in _ids:
            _ids.add(_variant.id)
            CASES.append(_variant)
for _c in BASE_CASES:
    arrays = [a for a in _c.args if a.differentiated and a.shape is not None]
    floats = [a for a in _c.args if a.differentiated and a.shape is None]
    if arrays and _c.f32:
        CASES.append(replace(_c, dtype="float32"))
    if len(arrays) >= 2 and ("@" in _c.expr or "dot" in _c.expr or len(_c.args) == 2 and
                             any(_c.expr == b[0] for b in BINARY)):
        CASES.append(replace(_c, dtype="mixed"))
    if floats and (len(_c.args) == 1 or any(_c.expr == b[0] for b in BINARY)):
        CASES.append(replace(_c, dtype="npscalar"))



CASES = [c for c in CASES if np.lib.NumpyVersion(np.__version__) >= c.numpy]


# tests/test_passes_off.py reruns the corpus once per optimisation turned off: there, a fixed
# seventh of the cases, drawn from every section, keeps the twelve reruns short.
RUN = CASES if passes.OPTIMIZE else CASES[::7]


@pytest.mark.parametrize("case", RUN, ids=[c.id for c in RUN])
def test_gradient_matches_finite_differences(case: Case) -> None:
    check(case)


def test_case_ids_are_unique() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})


# ============================================================================ other argument types


def _sine_product(x, n):
    return np.sum(np.sin(x) * n)


@pytest.mark.parametrize("x, n, kinds", [
    (np.arange(3), 2, ((np.ndarray, np.float64), (float, None))),  # ints: float64 gradients
    (2, np.array([1, 2], dtype=np.int32), ((float, None), (np.ndarray, np.float64))),
    (np.array([0.5, 1.0], dtype=np.float16), np.float32(1.5), ((np.ndarray, np.float16), (np.float32, None))),
    (np.array([0.5, 1.0], dtype=np.float32), np.float64(1.5), ((np.ndarray, np.float32), (np.float64, None))),
], ids=["int array, int", "int, int32 array", "float16 array, np.float32", "float32 array, np.float64"])
def test_gradient_type_and_dtype_follow_the_argument(x, n, kinds) -> None:
    """ints get float64 (``float``) gradients; inexact arrays and NumPy scalars keep their dtype."""
    grads = symdiff.grad(_sine_product, argnums=(0, 1))(x, n)
    exact = [np.asarray(x, np.float64) if isinstance(x, np.ndarray) else float(x), float(np.sum(n)) if
             np.ndim(n) == 0 else np.asarray(n, np.float64)]
    for i, (g, (kind, dtype)) in enumerate(zip(grads, kinds)):
        assert type(g) is kind, f"argument {i}: {type(g).__name__}"
        if dtype is not None:
            assert g.dtype == dtype
        want = numerical_grad(_sine_product, exact, i)
        np.testing.assert_allclose(np.asarray(g, np.float64), want, rtol=5e-3, atol=5e-3)


# ============================================================================ refusals
# Functions without a rule (or outside what their rule covers) are refused with a SymdiffError
# that names them -- never an InternalError, never a wrong number.

REFUSED = [  # (expression, shape of x, words the message must contain)
    ("np.ptp(x)", (2, 3), "np.ptp"), ("np.nanprod(x)", (2, 3), "np.nanprod"), ("np.nanstd(x)", (2, 3), "np.nanstd"),
    ("np.nanvar(x)", (2, 3), "np.nanvar"), ("np.nanmedian(x)", (2, 3), "np.nanmedian"),
    ("np.nancumsum(x)", (2, 3), "np.nancumsum"), ("np.cumulative_sum(x, axis=0)", (2, 3), "cumulative_sum"),
    ("np.linalg.vector_norm(x)", (2, 3), "vector_norm"), ("np.linalg.matrix_norm(x)", (2, 3), "matrix_norm"),
    ("np.linalg.cond(x)", (3, 3), "np.linalg.cond"), ("np.linalg.tensorinv(x, ind=1)", (3, 3), "tensorinv"),
    ("np.linalg.tensorsolve(x, x[0])", (3, 3), "tensorsolve"), ("np.trapezoid(x)", (4,), "np.trapezoid"),
    ("np.cov(x)", (2, 3), "np.cov"), ("np.corrcoef(x)", (2, 3), "np.corrcoef"), ("np.ediff1d(x)", (4,), "ediff1d"),
    ("np.resize(x, (3, 3))", (2, 3), "np.resize"), ("np.insert(x, 1, 0.0)", (4,), "np.insert"),
    ("np.delete(x, 1)", (4,), "np.delete"), ("np.block([x, x])", (2, 3), "np.block"),
    ("np.choose([0, 1, 0], x)", (2, 3), "np.choose"), ("np.compress([True, False], x, axis=0)", (2, 3), "compress"),
    ("np.extract(x > 0, x)", (2, 3), "np.extract"), ("np.unwrap(x)", (4,), "np.unwrap"),
    ("np.meshgrid(x, x)[0]", (3,), "np.meshgrid"), ("np.copysign(x, -1.0)", (3,), "np.copysign"),
    ("np.ldexp(x, 2)", (3,), "np.ldexp"), ("np.modf(x)[0]", (3,), "np.modf"), ("np.i0(x)", (3,), "np.i0"),
    ("x.item(0)", (2, 3), ".item"), ("x.tolist()[0][0]", (2, 3), ".tolist"), ("x.flat[1]", (3,), ".flat"),
    ("np.add.reduce(x)", (2, 3), "reduce"), ("np.multiply.outer(x, x)", (3,), "outer"),
    ("np.apply_along_axis(np.sum, 0, x)", (2, 3), "apply_along_axis"),
    ("np.pad(x, 1, mode='linear_ramp')", (2, 3), "linear_ramp"), ("np.pad(x, 1, mode='mean')", (2, 3), "'mean'"),
    ("np.pad(x, 1, mode='maximum')", (2, 3), "'maximum'"),
    ("np.pad(x, 1, mode='reflect', reflect_type='odd')", (2, 3), "reflect_type='odd'"),
    ("np.linalg.qr(x, mode='complete')[0]", (4, 3), "mode='complete'"),
    ("np.linalg.svd(x)[0]", (2, 3), "full_matrices=False"), ("np.einsum(x, [0, 1], [1])", (2, 3), "np.einsum"),
    ("np.linalg.eigvals(x)", (3, 3), "real"),  # (complex eigenvalues at these numbers)
    ("np.diff(x, prepend=0.0)", (4,), "prepend="), ("np.interp(x, [0.0, 1.0], [1.0, 2.0], left=0.0)", (3,), "left="),
    ("np.take(x, [5], mode='wrap')", (3,), "mode="), ("np.max(x, initial=0.0)", (3,), "initial="),
    ("np.average(x, weights=x, returned=True)[0]", (3,), "returned=True"),
]


@pytest.mark.parametrize("expr, shape, words", REFUSED, ids=[r[0] for r in REFUSED])
def test_unsupported_function_is_refused_clearly(expr, shape, words) -> None:
    c = Case(expr, (_x(shape, SPREAD),))
    if np.lib.NumpyVersion(np.__version__) < "2.1.0":
        pytest.skip("written for the functions of NumPy 2.1")
    with pytest.raises(symdiff.SymdiffError) as info:
        check(c)
    assert not isinstance(info.value, symdiff.InternalError), str(info.value)
    assert words in str(info.value)
