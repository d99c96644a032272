"""Every derivative rule of ``symdiff.rules`` checked against central finite differences.

The functions below are ordinary module-level ``def``s (symdiff reads their source). Each is
reduced to a scalar through a fixed random weighting ``w`` of the shape of the op's output,
passed as a non-differentiated argument, so that a gradient with the right shape but the
wrong entries (a transposed or mis-broadcast cotangent) cannot pass.

``CASES`` is the table: (id, function, input domain/shapes, the ``VJPS`` keys it exercises).
``test_every_rule_has_a_case`` makes sure no rule of ``VJPS`` escapes the table, and
``test_case_exercises_the_rules_it_claims`` makes sure the claims are true (each claimed key
is called in the lowered IR of the case's function).
"""

from __future__ import annotations

import importlib.util
import math
import operator
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pytest
from fd import check_grad

import symdiff
from symdiff import primitives, runtime
from symdiff.ir import BUILD_LIST, BUILD_TUPLE, GetAttr, Method

# ============================================================================ input domains

SHAPE_NAMES = {None: "scalar", (4,): "vector", (3, 4): "matrix", (2, 3, 4): "3d"}


def _shape(values: np.ndarray, shape: tuple | None) -> Any:
    """A Python float when ``shape`` is None, else an ndarray of ``shape`` (float64)."""
    if shape is None:
        return float(values.ravel()[0])
    return np.asarray(values, dtype=np.float64).reshape(shape)


def _n(shape: tuple | None) -> int:
    return 1 if shape is None else int(np.prod(shape, dtype=int))


def REAL(rng, shape):  # anywhere on a moderate range
    return _shape(rng.uniform(-2.0, 2.0, _n(shape)), shape)


def POS(rng, shape):  # log, sqrt, the base of a power
    return _shape(rng.uniform(0.5, 2.0, _n(shape)), shape)


def UNIT(rng, shape):  # arcsin/arccos domain, and tan away from its poles
    return _shape(rng.uniform(-0.9, 0.9, _n(shape)), shape)


def NONZERO(rng, shape):  # abs, sign, division: away from the kink/pole at 0
    n = _n(shape)
    return _shape(rng.choice([-1.0, 1.0], n) * rng.uniform(0.5, 2.0, n), shape)


def AWAY(rng, shape):
    """Away from integers (floor/ceil/trunc jump there), from half-integers (round jumps
    there) and from 0 and 0.5 (the comparison thresholds used below)."""
    n = _n(shape)
    frac = np.where(rng.random(n) < 0.5, rng.uniform(0.1, 0.4, n), rng.uniform(0.6, 0.9, n))
    return _shape(rng.integers(-3, 3, n) + frac, shape)


def BASE(rng, shape):  # the base of math.log(x, base): positive and away from 1
    return _shape(rng.uniform(1.5, 3.0, _n(shape)), shape)


def weight(rng, shape):
    """The fixed random weighting of an output of ``shape`` (a float for a scalar output)."""
    n = _n(shape)
    return _shape(rng.choice([-1.0, 1.0], n) * rng.uniform(0.5, 1.5, n), shape)


def out_shape(shape: tuple) -> tuple | None:
    return None if shape == () else tuple(shape)


# ============================================================================ the case table


@dataclass
class Case:
    id: str
    fn: Callable
    make: Callable[[np.random.Generator], tuple]  # rng -> the arguments
    argnums: tuple
    covers: tuple  # the VJPS keys this case exercises
    rtol: float = 1e-5
    atol: float = 1e-6
    check: Callable | None = field(default=None)  # extra assertion on the gradient, if any

    def args(self) -> tuple:
        return self.make(np.random.default_rng(zlib.crc32(self.id.encode())))


CASES: list[Case] = []


def case(id, fn, make, argnums, covers, **kw) -> None:
    assert all(c.id != id for c in CASES), f"duplicate case id {id}"
    CASES.append(Case(id, fn, make, tuple(argnums), tuple(covers), **kw))


# ---------------------------------------------------------------------------- unary, elementwise
# f(x, w) = sum(op(x) * w); w has the shape of x.


def u_neg(x, w): return np.sum(-x * w)
# runtime helpers that tangent code calls (differentiated again for second derivatives)
def u_power_slope(x, w): return np.sum(runtime.power_slope(x, 2.5) * w)
def u_log_or_zero(x, w): return np.sum(runtime.log_or_zero(x) * w)
def u_sinc_grad(x, w): return np.sum(runtime.sinc_grad(x, np.sinc(x)) * w)
def u_spread_like(x, w): return np.sum(runtime.spread_like(x, np.shape(w)) * w)
def u_real_eigen(x, w): return np.sum(runtime.real_eigen(x) * w)
def u_pos(x, w): return np.sum(+x * w)
def u_abs(x, w): return np.sum(abs(x) * w)
def u_operator_abs(x, w): return np.sum(operator.abs(x) * w)
def u_pow_int(x, w): return np.sum(x ** 3 * w)
def u_pow_two(x, w): return np.sum(x ** 2 * w)
def u_pow_negative_int(x, w): return np.sum(x ** -2 * w)
def u_pow_half(x, w): return np.sum(x ** 0.5 * w)
def u_rpow_const(x, w): return np.sum(2.0 ** x * w)
def u_np_exp(x, w): return np.sum(np.exp(x) * w)
def u_np_expm1(x, w): return np.sum(np.expm1(x) * w)
def u_np_log(x, w): return np.sum(np.log(x) * w)
def u_np_log1p(x, w): return np.sum(np.log1p(x) * w)
def u_np_sqrt(x, w): return np.sum(np.sqrt(x) * w)
def u_np_square(x, w): return np.sum(np.square(x) * w)
def u_np_sin(x, w): return np.sum(np.sin(x) * w)
def u_np_cos(x, w): return np.sum(np.cos(x) * w)
def u_np_tan(x, w): return np.sum(np.tan(x) * w)
def u_np_arctan(x, w): return np.sum(np.arctan(x) * w)
def u_np_sinh(x, w): return np.sum(np.sinh(x) * w)
def u_np_cosh(x, w): return np.sum(np.cosh(x) * w)
def u_np_tanh(x, w): return np.sum(np.tanh(x) * w)
def u_np_abs(x, w): return np.sum(np.abs(x) * w)
def u_np_absolute(x, w): return np.sum(np.absolute(x) * w)
def u_np_negative(x, w): return np.sum(np.negative(x) * w)
def u_np_reciprocal(x, w): return np.sum(np.reciprocal(x) * w)
def u_np_copy_method(x, w): return np.sum(x.copy() * w)


def u_setitem(x, w):
    y = x * 1.5
    y[..., 0] = np.sin(x[..., -1])  # the overwritten part of y gets no gradient
    return np.sum(y * w)
def u_leaky_relu(x, w): return np.sum(np.where(x > 0, x, 0.1 * x) * w)
def u_np_maximum_self(x, w): return np.sum(np.maximum(x, x) * w)
def u_np_minimum_self(x, w): return np.sum(np.minimum(x, x) * w)


ELEMENTWISE_SHAPES = [None, (4,), (3, 4)]
ARRAY_SHAPES = [(4,), (3, 4)]

UNARY = [
    # (name, function, domain, covers, shapes)
    ("neg", u_neg, REAL, [operator.neg], ELEMENTWISE_SHAPES + [(2, 3, 4)]),
    ("pos", u_pos, REAL, [operator.pos], ELEMENTWISE_SHAPES),
    ("builtin abs", u_abs, NONZERO, [abs], ELEMENTWISE_SHAPES),
    ("operator.abs", u_operator_abs, NONZERO, [operator.abs], ELEMENTWISE_SHAPES),
    ("x**3", u_pow_int, REAL, [operator.pow], ELEMENTWISE_SHAPES),
    ("x**2", u_pow_two, REAL, [operator.pow], ELEMENTWISE_SHAPES),
    ("x**-2", u_pow_negative_int, NONZERO, [operator.pow], ELEMENTWISE_SHAPES),
    ("x**0.5", u_pow_half, POS, [operator.pow], ELEMENTWISE_SHAPES),
    ("2.0**x", u_rpow_const, REAL, [operator.pow], ELEMENTWISE_SHAPES),
    ("np.exp", u_np_exp, REAL, [np.exp], ELEMENTWISE_SHAPES + [(2, 3, 4)]),
    ("np.expm1", u_np_expm1, REAL, [np.expm1], ELEMENTWISE_SHAPES),
    ("np.log", u_np_log, POS, [np.log], ELEMENTWISE_SHAPES),
    ("np.log1p", u_np_log1p, POS, [np.log1p], ELEMENTWISE_SHAPES),
    ("np.sqrt", u_np_sqrt, POS, [np.sqrt], ELEMENTWISE_SHAPES),
    ("np.square", u_np_square, REAL, [np.square], ELEMENTWISE_SHAPES),
    ("np.sin", u_np_sin, REAL, [np.sin], ELEMENTWISE_SHAPES),
    ("np.cos", u_np_cos, REAL, [np.cos], ELEMENTWISE_SHAPES),
    ("np.tan", u_np_tan, UNIT, [np.tan], ELEMENTWISE_SHAPES),
    ("np.arctan", u_np_arctan, REAL, [np.arctan], ELEMENTWISE_SHAPES),
    ("np.sinh", u_np_sinh, REAL, [np.sinh], ELEMENTWISE_SHAPES),
    ("np.cosh", u_np_cosh, REAL, [np.cosh], ELEMENTWISE_SHAPES),
    ("np.tanh", u_np_tanh, REAL, [np.tanh], ELEMENTWISE_SHAPES + [(2, 3, 4)]),
    ("np.abs", u_np_abs, NONZERO, [np.abs], ELEMENTWISE_SHAPES),
    ("np.absolute", u_np_absolute, NONZERO, [np.absolute], ELEMENTWISE_SHAPES),
    ("np.negative", u_np_negative, REAL, [np.negative], ELEMENTWISE_SHAPES),
    ("np.reciprocal", u_np_reciprocal, NONZERO, [np.reciprocal], ELEMENTWISE_SHAPES),
    ("x.copy()", u_np_copy_method, REAL, [Method("copy")], ARRAY_SHAPES),
    ("y[..., 0] = v", u_setitem, REAL, [runtime.setitem], ARRAY_SHAPES),
    ("np.where leaky relu", u_leaky_relu, NONZERO, [np.where], ELEMENTWISE_SHAPES),
    # a tie everywhere: both halves of the split come back to x, so the gradient is w
    ("np.maximum(x, x)", u_np_maximum_self, REAL, [np.maximum], ELEMENTWISE_SHAPES),
    ("np.minimum(x, x)", u_np_minimum_self, REAL, [np.minimum], ELEMENTWISE_SHAPES),
    ("runtime.power_slope", u_power_slope, POS, [runtime.power_slope], ARRAY_SHAPES),
    ("runtime.log_or_zero", u_log_or_zero, POS, [runtime.log_or_zero], ARRAY_SHAPES),
    ("runtime.sinc_grad", u_sinc_grad, NONZERO, [runtime.sinc_grad, np.sinc], ARRAY_SHAPES),
    ("runtime.spread_like", u_spread_like, REAL, [runtime.spread_like], ARRAY_SHAPES),
    ("runtime.real_eigen", u_real_eigen, REAL, [runtime.real_eigen], ARRAY_SHAPES),
]


def _unary_make(domain, shape):
    return lambda rng: (domain(rng, shape), weight(rng, shape))


for _name, _fn, _dom, _covers, _shapes in UNARY:
    for _s in _shapes:
        case(f"{_name}[{SHAPE_NAMES[_s]}]", _fn, _unary_make(_dom, _s), (0,), _covers)


# ---------------------------------------------------------------------------- pure-scalar code
# Python floats only: plain arithmetic and `math`, no NumPy anywhere.


def s_add(x, y, w): return (x + y) * w
def s_sub(x, y, w): return (x - y) * w
def s_mul(x, y, w): return x * y * w
def s_div(x, y, w): return x / y * w
def s_pow(x, y, w): return x ** y * w
def s_builtin_pow(x, y, w): return pow(x, y) * w
def s_mod(x, y, w): return (x % y) * w
def s_neg(x, w): return -x * w
def s_pos(x, w): return +x * w
def s_abs(x, w): return abs(x) * w
def s_operator_abs(x, w): return operator.abs(x) * w
def s_float(x, w): return float(x) * w
def s_float_of_array_sum(x, w): return float(np.sum(x * w))
def s_max(x, y, w): return max(x, y) * w
def s_min(x, y, w): return min(x, y) * w
def s_max_self(x, w): return max(x, x) * w
def s_min_self(x, w): return min(x, x) * w
def m_exp(x, w): return math.exp(x) * w
def m_expm1(x, w): return math.expm1(x) * w
def m_log(x, w): return math.log(x) * w
def m_log_const_base(x, w): return math.log(x, 2.5) * w
def m_log_base(x, b, w): return math.log(x, b) * w
def m_log1p(x, w): return math.log1p(x) * w
def m_log2(x, w): return math.log2(x) * w
def m_log10(x, w): return math.log10(x) * w
def m_sqrt(x, w): return math.sqrt(x) * w
def m_sin(x, w): return math.sin(x) * w
def m_cos(x, w): return math.cos(x) * w
def m_tan(x, w): return math.tan(x) * w
def m_asin(x, w): return math.asin(x) * w
def m_acos(x, w): return math.acos(x) * w
def m_atan(x, w): return math.atan(x) * w
def m_sinh(x, w): return math.sinh(x) * w
def m_cosh(x, w): return math.cosh(x) * w
def m_tanh(x, w): return math.tanh(x) * w
def m_fabs(x, w): return math.fabs(x) * w
def m_erf(x, w): return math.erf(x) * w
def m_atan2(y, x, w): return math.atan2(y, x) * w
def m_hypot(x, y, w): return math.hypot(x, y) * w
def m_pow(x, y, w): return math.pow(x, y) * w
def m_pow_const_exponent(x, w): return math.pow(x, 3.0) * w


def _scalars(*domains):
    return lambda rng: tuple(d(rng, None) for d in domains) + (weight(rng, None),)


def _distinct_pair(rng):
    """Two floats at least 0.2 apart (max/min have a kink where they are equal), in random order."""
    x = REAL(rng, None)
    return (x, x + float(rng.choice([-1.0, 1.0])) * float(rng.uniform(0.2, 1.0)), weight(rng, None))


def _mod_scalars(rng):
    y = NONZERO(rng, None)
    q = float(rng.integers(-2, 3)) + float(rng.uniform(0.2, 0.8))  # x / y away from integers
    return (q * y, y, weight(rng, None))


SCALAR_CASES = [
    # (name, function, argument maker, argnums, covers)
    ("x + y", s_add, _scalars(REAL, REAL), (0, 1), [operator.add]),
    ("x - y", s_sub, _scalars(REAL, REAL), (0, 1), [operator.sub]),
    ("x * y", s_mul, _scalars(REAL, REAL), (0, 1), [operator.mul]),
    ("x / y", s_div, _scalars(REAL, NONZERO), (0, 1), [operator.truediv]),
    ("x ** y", s_pow, _scalars(POS, REAL), (0, 1), [operator.pow]),
    ("pow(x, y)", s_builtin_pow, _scalars(POS, REAL), (0, 1), [pow]),
    ("x % y", s_mod, _mod_scalars, (0, 1), [operator.mod]),
    ("-x", s_neg, _scalars(REAL), (0,), [operator.neg]),
    ("+x", s_pos, _scalars(REAL), (0,), [operator.pos]),
    ("abs(x)", s_abs, _scalars(NONZERO), (0,), [abs]),
    ("operator.abs(x)", s_operator_abs, _scalars(NONZERO), (0,), [operator.abs]),
    ("float(x)", s_float, _scalars(REAL), (0,), [float]),
    ("max(x, y)", s_max, _distinct_pair, (0, 1), [max]),
    ("min(x, y)", s_min, _distinct_pair, (0, 1), [min]),
    ("max(x, x)", s_max_self, _scalars(REAL), (0,), [max]),
    ("min(x, x)", s_min_self, _scalars(REAL), (0,), [min]),
    ("math.exp", m_exp, _scalars(REAL), (0,), [math.exp]),
    ("math.expm1", m_expm1, _scalars(REAL), (0,), [math.expm1]),
    ("math.log", m_log, _scalars(POS), (0,), [math.log]),
    ("math.log(x, 2.5)", m_log_const_base, _scalars(POS), (0,), [math.log]),
    ("math.log(x, base)", m_log_base, _scalars(POS, BASE), (0, 1), [math.log]),
    ("math.log1p", m_log1p, _scalars(POS), (0,), [math.log1p]),
    ("math.log2", m_log2, _scalars(POS), (0,), [math.log2]),
    ("math.log10", m_log10, _scalars(POS), (0,), [math.log10]),
    ("math.sqrt", m_sqrt, _scalars(POS), (0,), [math.sqrt]),
    ("math.sin", m_sin, _scalars(REAL), (0,), [math.sin]),
    ("math.cos", m_cos, _scalars(REAL), (0,), [math.cos]),
    ("math.tan", m_tan, _scalars(UNIT), (0,), [math.tan]),
    ("math.asin", m_asin, _scalars(UNIT), (0,), [math.asin]),
    ("math.acos", m_acos, _scalars(UNIT), (0,), [math.acos]),
    ("math.atan", m_atan, _scalars(REAL), (0,), [math.atan]),
    ("math.sinh", m_sinh, _scalars(REAL), (0,), [math.sinh]),
    ("math.cosh", m_cosh, _scalars(REAL), (0,), [math.cosh]),
    ("math.tanh", m_tanh, _scalars(REAL), (0,), [math.tanh]),
    ("math.fabs", m_fabs, _scalars(NONZERO), (0,), [math.fabs]),
    ("math.erf", m_erf, _scalars(REAL), (0,), [math.erf]),
    ("math.atan2", m_atan2, _scalars(NONZERO, NONZERO), (0, 1), [math.atan2]),
    ("math.hypot", m_hypot, _scalars(NONZERO, NONZERO), (0, 1), [math.hypot]),
    ("math.pow", m_pow, _scalars(POS, REAL), (0, 1), [math.pow]),
    # negative base, constant exponent: only d/dx is needed (log(x) would be nan)
    ("math.pow(x, 3.0) negative base", m_pow_const_exponent,
     lambda rng: (-POS(rng, None), weight(rng, None)), (0,), [math.pow]),
]

for _name, _fn, _make, _nums, _covers in SCALAR_CASES:
    for _variant in range(2):  # two random points each (the id seeds the generator)
        case(f"{_name}[scalar#{_variant}]", _fn, _make, _nums, _covers)

case("float(np.sum(x * w))[vector]", s_float_of_array_sum,
     lambda rng: (REAL(rng, (4,)), weight(rng, (4,))), (0,), [float])

# ---------------------------------------------------------------------------- binary, broadcasting
# f(x, y, w) = sum(op(x, y) * w), differentiated in x and y; w has the broadcast shape.


def b_add(x, y, w): return np.sum((x + y) * w)
def b_sub(x, y, w): return np.sum((x - y) * w)
def b_mul(x, y, w): return np.sum(x * y * w)
def b_div(x, y, w): return np.sum(x / y * w)
def b_pow(x, y, w): return np.sum(x ** y * w)
def b_mod(x, y, w): return np.sum((x % y) * w)
def b_np_add(x, y, w): return np.sum(np.add(x, y) * w)
def b_np_subtract(x, y, w): return np.sum(np.subtract(x, y) * w)
def b_np_multiply(x, y, w): return np.sum(np.multiply(x, y) * w)
def b_np_divide(x, y, w): return np.sum(np.divide(x, y) * w)
def b_np_power(x, y, w): return np.sum(np.power(x, y) * w)
def b_np_maximum(x, y, w): return np.sum(np.maximum(x, y) * w)
def b_np_minimum(x, y, w): return np.sum(np.minimum(x, y) * w)
def b_np_where(c, x, y, w): return np.sum(np.where(c > 0.0, x, y) * w)


PAIRS = [  # (label, shape of x, shape of y); None is a Python float
    ("scalar-scalar", None, None),
    ("vector-vector", (4,), (4,)),
    ("matrix-matrix", (3, 4), (3, 4)),
    ("scalar-matrix", None, (3, 4)),
    ("matrix-scalar", (3, 4), None),
    ("row(1,n)-matrix", (1, 4), (3, 4)),
    ("matrix-row(1,n)", (3, 4), (1, 4)),
    ("row(n,)-matrix", (4,), (3, 4)),
    ("matrix-row(n,)", (3, 4), (4,)),
    ("column-matrix", (3, 1), (3, 4)),
    ("matrix-column", (3, 4), (3, 1)),
    ("column-row", (3, 1), (1, 4)),
    ("matrix-3d", (3, 4), (2, 3, 4)),
]


def _broadcast(sx, sy):
    return out_shape(np.broadcast_shapes(sx or (), sy or ()))


def _binary_make(dx, dy, sx, sy):
    return lambda rng: (dx(rng, sx), dy(rng, sy), weight(rng, _broadcast(sx, sy)))


def _mod_make(sx, sy):
    """x % y with y away from 0 and x / y away from integers (where x % y jumps)."""
    full = _broadcast(sx, sy)

    def make(rng):
        if (sx or None) == full:
            y = NONZERO(rng, sy)
            q = rng.integers(-2, 3, _n(full)) + rng.uniform(0.2, 0.8, _n(full))
            x = _shape(q.reshape(full or ()) * y, sx) if full else float(q[0] * y)
        else:
            x = POS(rng, sx)
            q = rng.integers(0, 3, _n(full)) + rng.uniform(0.2, 0.8, _n(full))
            y = _shape(x / q.reshape(full), sy)
        return x, y, weight(rng, full)
    return make


BINARY = [
    # (name, function, domain of x, domain of y, covers)
    ("x + y", b_add, REAL, REAL, [operator.add]),
    ("x - y", b_sub, REAL, REAL, [operator.sub]),
    ("x * y", b_mul, REAL, REAL, [operator.mul]),
    ("x / y", b_div, REAL, NONZERO, [operator.truediv]),
    ("x ** y", b_pow, POS, REAL, [operator.pow]),
    ("np.add", b_np_add, REAL, REAL, [np.add]),
    ("np.subtract", b_np_subtract, REAL, REAL, [np.subtract]),
    ("np.multiply", b_np_multiply, REAL, REAL, [np.multiply]),
    ("np.divide", b_np_divide, REAL, NONZERO, [np.divide]),
    ("np.power", b_np_power, POS, REAL, [np.power]),
    ("np.maximum", b_np_maximum, REAL, REAL, [np.maximum]),
    ("np.minimum", b_np_minimum, REAL, REAL, [np.minimum]),
]

for _name, _fn, _dx, _dy, _covers in BINARY:
    for _label, _sx, _sy in PAIRS:
        case(f"{_name}[{_label}]", _fn, _binary_make(_dx, _dy, _sx, _sy), (0, 1), _covers)

for _label, _sx, _sy in PAIRS:
    if _label in ("scalar-scalar", "vector-vector", "matrix-matrix", "matrix-scalar", "scalar-matrix",
                  "matrix-row(1,n)", "matrix-row(n,)", "matrix-column", "row(n,)-matrix"):
        case(f"x % y[{_label}]", b_mod, _mod_make(_sx, _sy), (0, 1), [operator.mod])


def _where_make(sx, sy):
    full = _broadcast(sx, sy)
    return lambda rng: (NONZERO(rng, full), REAL(rng, sx), REAL(rng, sy), weight(rng, full))


for _label, _sx, _sy in PAIRS:
    if _sx is None and _sy is None:
        continue  # np.where's condition is the full-shape array below; covered by the others
    case(f"np.where(c, x, y)[{_label}]", b_np_where, _where_make(_sx, _sy), (1, 2), [np.where])
case("np.where(c, x, y)[scalar condition]", b_np_where,
     lambda rng: (1.0, REAL(rng, None), REAL(rng, None), weight(rng, None)), (1, 2), [np.where])


# ---------------------------------------------------------------------------- ties


def _tie_make(shape):
    def make(rng):
        x = REAL(rng, shape)
        y = x.copy() if isinstance(x, np.ndarray) else x
        return x, y, weight(rng, shape)
    return make


def _half_each(args, grads):
    w = args[2]
    for g in grads:
        np.testing.assert_allclose(g, 0.5 * np.asarray(w), rtol=1e-12, atol=0)


for _shape_ in ELEMENTWISE_SHAPES:
    for _name, _fn, _key in (("np.maximum", b_np_maximum, np.maximum), ("np.minimum", b_np_minimum, np.minimum)):
        # At x == y the cotangent splits 0.5 / 0.5, which is also what central differences see.
        case(f"{_name} tie splits evenly[{SHAPE_NAMES[_shape_]}]", _fn, _tie_make(_shape_), (0, 1), [_key],
             check=_half_each)


# ---------------------------------------------------------------------------- matmul / dot
# f(x, y, w) = sum(matmul(x, y) * w).


def mm_op(x, y, w): return np.sum((x @ y) * w)
def mm_np_matmul(x, y, w): return np.sum(np.matmul(x, y) * w)
def mm_np_dot(x, y, w): return np.sum(np.dot(x, y) * w)
def mm_method_dot(x, y, w): return np.sum(x.dot(y) * w)


MATMUL_SHAPES = [
    ("v@v", (4,), (4,)),
    ("M@v", (3, 4), (4,)),
    ("v@M", (3,), (3, 4)),
    ("M@M", (3, 4), (4, 2)),
    ("batched 3d@M", (2, 3, 4), (4, 5)),
    ("batched 3d@3d", (2, 3, 4), (2, 4, 5)),
    ("broadcast M@3d", (3, 4), (2, 4, 5)),
    ("3d@v", (2, 3, 4), (4,)),
    ("v@3d", (3,), (2, 3, 4)),
]
DOT_SHAPES = MATMUL_SHAPES[:5] + [("3d.3d (tensor contraction)", (2, 3, 4), (3, 4, 2)),
                                  ("scalar.v", None, (4,)), ("v.scalar", (4,), None)]


def _matmul_make(sx, sy, product):
    def make(rng):
        x, y = REAL(rng, sx), REAL(rng, sy)
        return x, y, weight(rng, out_shape(np.shape(product(x, y))))
    return make


for _label, _sx, _sy in MATMUL_SHAPES:
    case(f"x @ y[{_label}]", mm_op, _matmul_make(_sx, _sy, np.matmul), (0, 1), [operator.matmul])
    case(f"np.matmul[{_label}]", mm_np_matmul, _matmul_make(_sx, _sy, np.matmul), (0, 1), [np.matmul])
for _label, _sx, _sy in DOT_SHAPES:
    case(f"np.dot[{_label}]", mm_np_dot, _matmul_make(_sx, _sy, np.dot), (0, 1), [np.dot])
for _label, _sx, _sy in MATMUL_SHAPES[:4]:
    case(f"x.dot(y)[{_label}]", mm_method_dot, _matmul_make(_sx, _sy, np.dot), (0, 1), [Method("dot")])


# ---------------------------------------------------------------------------- reductions
# f(x, w) = sum(reduce(x) * w) with w of the reduced shape.


def r_sum_none(x, w): return np.sum(np.sum(x) * w)
def r_sum_none_keep(x, w): return np.sum(np.sum(x, keepdims=True) * w)
def r_sum_0(x, w): return np.sum(np.sum(x, axis=0) * w)
def r_sum_0_keep(x, w): return np.sum(np.sum(x, axis=0, keepdims=True) * w)
def r_sum_1(x, w): return np.sum(np.sum(x, axis=1) * w)
def r_sum_1_keep(x, w): return np.sum(np.sum(x, axis=1, keepdims=True) * w)
def r_sum_m1(x, w): return np.sum(np.sum(x, axis=-1) * w)
def r_sum_m1_keep(x, w): return np.sum(np.sum(x, axis=-1, keepdims=True) * w)
def r_sum_01(x, w): return np.sum(np.sum(x, axis=(0, 1)) * w)
def r_sum_01_keep(x, w): return np.sum(np.sum(x, axis=(0, 1), keepdims=True) * w)
def r_sum_positional_axis(x, w): return np.sum(np.sum(x, 1) * w)
def r_mean_none(x, w): return np.sum(np.mean(x) * w)
def r_mean_none_keep(x, w): return np.sum(np.mean(x, keepdims=True) * w)
def r_mean_0(x, w): return np.sum(np.mean(x, axis=0) * w)
def r_mean_0_keep(x, w): return np.sum(np.mean(x, axis=0, keepdims=True) * w)
def r_mean_1(x, w): return np.sum(np.mean(x, axis=1) * w)
def r_mean_1_keep(x, w): return np.sum(np.mean(x, axis=1, keepdims=True) * w)
def r_mean_m1(x, w): return np.sum(np.mean(x, axis=-1) * w)
def r_mean_m1_keep(x, w): return np.sum(np.mean(x, axis=-1, keepdims=True) * w)
def r_mean_01(x, w): return np.sum(np.mean(x, axis=(0, 1)) * w)
def r_mean_01_keep(x, w): return np.sum(np.mean(x, axis=(0, 1), keepdims=True) * w)
def r_mean_positional_axis(x, w): return np.sum(np.mean(x, 1) * w)
def r_method_sum(x, w): return np.sum(x.sum() * w)
def r_method_sum_0(x, w): return np.sum(x.sum(axis=0) * w)
def r_method_sum_1_keep(x, w): return np.sum(x.sum(axis=1, keepdims=True) * w)
def r_method_sum_m1(x, w): return np.sum(x.sum(-1) * w)
def r_method_sum_01(x, w): return np.sum(x.sum(axis=(0, 1)) * w)
def r_method_mean(x, w): return np.sum(x.mean() * w)
def r_method_mean_0(x, w): return np.sum(x.mean(axis=0) * w)
def r_method_mean_1_keep(x, w): return np.sum(x.mean(axis=1, keepdims=True) * w)
def r_method_mean_m1(x, w): return np.sum(x.mean(-1) * w)
def r_method_mean_01(x, w): return np.sum(x.mean(axis=(0, 1)) * w)
def r_sum_plain(x): return np.sum(x)
def r_mean_plain(x): return np.mean(x)
def r_sum_of_square(x): return np.sum(x * x)


REDUCTIONS = [
    # (name, function, the same reduction in NumPy (for w's shape), covers)
    ("np.sum(x)", r_sum_none, lambda x: np.sum(x), [np.sum]),
    ("np.sum(x, keepdims=True)", r_sum_none_keep, lambda x: np.sum(x, keepdims=True), [np.sum]),
    ("np.sum(x, axis=0)", r_sum_0, lambda x: np.sum(x, axis=0), [np.sum]),
    ("np.sum(x, axis=0, keepdims=True)", r_sum_0_keep, lambda x: np.sum(x, axis=0, keepdims=True), [np.sum]),
    ("np.sum(x, axis=1)", r_sum_1, lambda x: np.sum(x, axis=1), [np.sum]),
    ("np.sum(x, axis=1, keepdims=True)", r_sum_1_keep, lambda x: np.sum(x, axis=1, keepdims=True), [np.sum]),
    ("np.sum(x, axis=-1)", r_sum_m1, lambda x: np.sum(x, axis=-1), [np.sum]),
    ("np.sum(x, axis=-1, keepdims=True)", r_sum_m1_keep, lambda x: np.sum(x, axis=-1, keepdims=True), [np.sum]),
    ("np.sum(x, axis=(0,1))", r_sum_01, lambda x: np.sum(x, axis=(0, 1)), [np.sum]),
    ("np.sum(x, axis=(0,1), keepdims=True)", r_sum_01_keep,
     lambda x: np.sum(x, axis=(0, 1), keepdims=True), [np.sum]),
    ("np.sum(x, 1)", r_sum_positional_axis, lambda x: np.sum(x, 1), [np.sum]),
    ("np.mean(x)", r_mean_none, lambda x: np.mean(x), [np.mean]),
    ("np.mean(x, keepdims=True)", r_mean_none_keep, lambda x: np.mean(x, keepdims=True), [np.mean]),
    ("np.mean(x, axis=0)", r_mean_0, lambda x: np.mean(x, axis=0), [np.mean]),
    ("np.mean(x, axis=0, keepdims=True)", r_mean_0_keep, lambda x: np.mean(x, axis=0, keepdims=True), [np.mean]),
    ("np.mean(x, axis=1)", r_mean_1, lambda x: np.mean(x, axis=1), [np.mean]),
    ("np.mean(x, axis=1, keepdims=True)", r_mean_1_keep, lambda x: np.mean(x, axis=1, keepdims=True), [np.mean]),
    ("np.mean(x, axis=-1)", r_mean_m1, lambda x: np.mean(x, axis=-1), [np.mean]),
    ("np.mean(x, axis=-1, keepdims=True)", r_mean_m1_keep,
     lambda x: np.mean(x, axis=-1, keepdims=True), [np.mean]),
    ("np.mean(x, axis=(0,1))", r_mean_01, lambda x: np.mean(x, axis=(0, 1)), [np.mean]),
    ("np.mean(x, axis=(0,1), keepdims=True)", r_mean_01_keep,
     lambda x: np.mean(x, axis=(0, 1), keepdims=True), [np.mean]),
    ("np.mean(x, 1)", r_mean_positional_axis, lambda x: np.mean(x, 1), [np.mean]),
    ("x.sum()", r_method_sum, lambda x: x.sum(), [Method("sum")]),
    ("x.sum(axis=0)", r_method_sum_0, lambda x: x.sum(axis=0), [Method("sum")]),
    ("x.sum(axis=1, keepdims=True)", r_method_sum_1_keep, lambda x: x.sum(axis=1, keepdims=True), [Method("sum")]),
    ("x.sum(-1)", r_method_sum_m1, lambda x: x.sum(-1), [Method("sum")]),
    ("x.sum(axis=(0,1))", r_method_sum_01, lambda x: x.sum(axis=(0, 1)), [Method("sum")]),
    ("x.mean()", r_method_mean, lambda x: x.mean(), [Method("mean")]),
    ("x.mean(axis=0)", r_method_mean_0, lambda x: x.mean(axis=0), [Method("mean")]),
    ("x.mean(axis=1, keepdims=True)", r_method_mean_1_keep,
     lambda x: x.mean(axis=1, keepdims=True), [Method("mean")]),
    ("x.mean(-1)", r_method_mean_m1, lambda x: x.mean(-1), [Method("mean")]),
    ("x.mean(axis=(0,1))", r_method_mean_01, lambda x: x.mean(axis=(0, 1)), [Method("mean")]),
]


def _reduce_make(shape, reduce):
    def make(rng):
        x = REAL(rng, shape)
        return x, weight(rng, out_shape(np.shape(reduce(x))))
    return make


for _name, _fn, _reduce, _covers in REDUCTIONS:
    for _s in [(3, 4), (2, 3, 4)]:
        case(f"{_name}[{SHAPE_NAMES[_s]}]", _fn, _reduce_make(_s, _reduce), (0,), _covers)
for _name, _fn, _covers in (("np.sum(x) unweighted", r_sum_plain, [np.sum]),
                            ("np.mean(x) unweighted", r_mean_plain, [np.mean]),
                            ("np.sum(x * x)", r_sum_of_square, [np.sum, operator.mul])):
    for _s in [None, (4,), (3, 4), (2, 3, 4)]:
        case(f"{_name}[{SHAPE_NAMES[_s]}]", _fn, (lambda s: lambda rng: (REAL(rng, s),))(_s), (0,), _covers)


# ---------------------------------------------------------------------------- shape ops
# f(x, w) = sum(op(x) * w).


def t_T(x, w): return np.sum(x.T * w)
def t_transpose(x, w): return np.sum(np.transpose(x) * w)
def t_transpose_axes(x, w): return np.sum(np.transpose(x, (1, 0, 2)) * w)
def t_transpose_axes_kw(x, w): return np.sum(np.transpose(x, axes=(2, 0, 1)) * w)
def t_reshape_fn(x, w): return np.sum(np.reshape(x, (4, 3)) * w)
def t_reshape_fn_flat(x, w): return np.sum(np.reshape(x, -1) * w)
def t_reshape_method_varargs(x, w): return np.sum(x.reshape(4, 3) * w)
def t_reshape_method_tuple(x, w): return np.sum(x.reshape((2, 6)) * w)
def t_reshape_method_flat(x, w): return np.sum(x.reshape(-1) * w)
def t_reshape_then_matmul(x, w): return np.sum(x.reshape(2, 6) @ w)


SHAPE_OPS = [
    # (name, function, shape of x, the same op in NumPy, covers)
    ("x.T", t_T, (3, 4), lambda x: x.T, [GetAttr("T")]),
    ("x.T", t_T, (4,), lambda x: x.T, [GetAttr("T")]),
    ("x.T", t_T, (2, 3, 4), lambda x: x.T, [GetAttr("T")]),
    ("np.transpose(x)", t_transpose, (3, 4), lambda x: np.transpose(x), [np.transpose]),
    ("np.transpose(x)", t_transpose, (2, 3, 4), lambda x: np.transpose(x), [np.transpose]),
    ("np.transpose(x, (1,0,2))", t_transpose_axes, (2, 3, 4), lambda x: np.transpose(x, (1, 0, 2)),
     [np.transpose]),
    ("np.transpose(x, axes=(2,0,1))", t_transpose_axes_kw, (2, 3, 4),
     lambda x: np.transpose(x, axes=(2, 0, 1)), [np.transpose]),
    ("np.reshape(x, (4,3))", t_reshape_fn, (3, 4), lambda x: np.reshape(x, (4, 3)), [np.reshape]),
    ("np.reshape(x, (4,3))", t_reshape_fn, (12,), lambda x: np.reshape(x, (4, 3)), [np.reshape]),
    ("np.reshape(x, -1)", t_reshape_fn_flat, (2, 3, 2), lambda x: np.reshape(x, -1), [np.reshape]),
    ("x.reshape(4, 3)", t_reshape_method_varargs, (3, 4), lambda x: x.reshape(4, 3), [Method("reshape")]),
    ("x.reshape((2, 6))", t_reshape_method_tuple, (3, 4), lambda x: x.reshape((2, 6)), [Method("reshape")]),
    ("x.reshape(-1)", t_reshape_method_flat, (3, 4), lambda x: x.reshape(-1), [Method("reshape")]),
    ("x.reshape(2, 6) @ w", t_reshape_then_matmul, (12,), lambda x: np.zeros(6), [Method("reshape")]),
]

for _name, _fn, _s, _op, _covers in SHAPE_OPS:
    case(f"{_name}[{_s}]", _fn, _reduce_make(_s, _op), (0,), _covers)


# ---------------------------------------------------------------------------- indexing

IDX = np.array([0, 2, 2, 1, 2])  # repeated indices: the adjoint must accumulate
MASK = np.array([[True, False, True, True], [False, False, True, False], [True, True, False, True]])


def i_int(x, w): return np.sum(x[1] * w)
def i_negative_int(x, w): return np.sum(x[-1] * w)
def i_two_ints(x, w): return np.sum(x[1, 2] * w)
def i_two_negative_ints(x, w): return np.sum(x[-1, -2] * w)
def i_chained(x, w): return np.sum(x[2][1] * w)
def i_slice(x, w): return np.sum(x[1:3] * w)
def i_step(x, w): return np.sum(x[::2] * w)
def i_reverse(x, w): return np.sum(x[::-1] * w)
def i_negative_step(x, w): return np.sum(x[3:0:-2] * w)
def i_matrix_slices(x, w): return np.sum(x[1:, ::2] * w)
def i_column(x, w): return np.sum(x[:, 1] * w)
def i_none(x, w): return np.sum(x[None] * w)
def i_column_newaxis(x, w): return np.sum(x[:, np.newaxis] * w)
def i_none_both(x, w): return np.sum(x[None, :, None] * w)
def i_ellipsis(x, w): return np.sum(x[..., 0] * w)
def i_ellipsis_none(x, w): return np.sum(x[..., None] * w)
def i_int_ellipsis(x, w): return np.sum(x[0, ...] * w)
def i_fancy_list(x, w): return np.sum(x[[0, 2, 2, 1, 2]] * w)
def i_fancy_array(x, w): return np.sum(x[IDX] * w)
def i_fancy_2d(x, w): return np.sum(x[[0, 0, 2], [1, 1, 3]] * w)
def i_fancy_columns(x, w): return np.sum(x[:, [3, 3, 0]] * w)
def i_bool_mask(x, w): return np.sum(x[MASK] * w)
def i_data_dependent_mask(x): return np.sum(x[x > 0] ** 2)
def i_scalar_from_vector(x, w): return x[1] * x[3] * w


INDEXING = [
    # (name, function, shape of x, the same indexing in NumPy, domain)
    ("x[1]", i_int, (4,), lambda x: x[1], REAL),
    ("x[1]", i_int, (3, 4), lambda x: x[1], REAL),
    ("x[-1]", i_negative_int, (4,), lambda x: x[-1], REAL),
    ("x[-1]", i_negative_int, (3, 4), lambda x: x[-1], REAL),
    ("x[1, 2]", i_two_ints, (3, 4), lambda x: x[1, 2], REAL),
    ("x[-1, -2]", i_two_negative_ints, (3, 4), lambda x: x[-1, -2], REAL),
    ("x[2][1]", i_chained, (3, 4), lambda x: x[2][1], REAL),
    ("x[1:3]", i_slice, (4,), lambda x: x[1:3], REAL),
    ("x[1:3]", i_slice, (3, 4), lambda x: x[1:3], REAL),
    ("x[::2]", i_step, (5,), lambda x: x[::2], REAL),
    ("x[::-1]", i_reverse, (4,), lambda x: x[::-1], REAL),
    ("x[3:0:-2]", i_negative_step, (4,), lambda x: x[3:0:-2], REAL),
    ("x[1:, ::2]", i_matrix_slices, (3, 4), lambda x: x[1:, ::2], REAL),
    ("x[:, 1]", i_column, (3, 4), lambda x: x[:, 1], REAL),
    ("x[None]", i_none, (4,), lambda x: x[None], REAL),
    ("x[:, np.newaxis]", i_column_newaxis, (4,), lambda x: x[:, np.newaxis], REAL),
    ("x[None, :, None]", i_none_both, (4,), lambda x: x[None, :, None], REAL),
    ("x[..., 0]", i_ellipsis, (3, 4), lambda x: x[..., 0], REAL),
    ("x[..., 0]", i_ellipsis, (2, 3, 4), lambda x: x[..., 0], REAL),
    ("x[..., None]", i_ellipsis_none, (3, 4), lambda x: x[..., None], REAL),
    ("x[0, ...]", i_int_ellipsis, (2, 3, 4), lambda x: x[0, ...], REAL),
    ("x[[0, 2, 2, 1, 2]] repeated", i_fancy_list, (4,), lambda x: x[[0, 2, 2, 1, 2]], REAL),
    ("x[[0, 2, 2, 1, 2]] repeated rows", i_fancy_list, (3, 4), lambda x: x[[0, 2, 2, 1, 2]], REAL),
    ("x[IDX] repeated (constant array)", i_fancy_array, (4,), lambda x: x[IDX], REAL),
    ("x[[0, 0, 2], [1, 1, 3]] repeated", i_fancy_2d, (3, 4), lambda x: x[[0, 0, 2], [1, 1, 3]], REAL),
    ("x[:, [3, 3, 0]] repeated", i_fancy_columns, (3, 4), lambda x: x[:, [3, 3, 0]], REAL),
    ("x[MASK] boolean", i_bool_mask, (3, 4), lambda x: x[MASK], REAL),
    ("x[1] * x[3]", i_scalar_from_vector, (4,), lambda x: x[1], REAL),
]


def _index_make(shape, op, domain):
    def make(rng):
        x = domain(rng, shape)
        return x, weight(rng, out_shape(np.shape(op(x))))
    return make


for _name, _fn, _s, _op, _dom in INDEXING:
    case(f"{_name}[{_s}]", _fn, _index_make(_s, _op, _dom), (0,), [operator.getitem])
for _s in [(5,), (3, 4)]:
    case(f"x[x > 0] data-dependent mask[{_s}]", i_data_dependent_mask,
         (lambda s: lambda rng: (NONZERO(rng, s),))(_s), (0,), [operator.getitem])


# ---------------------------------------------------------------------------- loops the user checkpoints


def _cell(h, x, a):
    return np.tanh(a * h + x)


def c_checkpoint_loop(h, xs, a, w):
    return np.sum(symdiff.checkpoint_loop(_cell, h, xs, a, segment=2) * w)


case("checkpoint_loop(cell, h, xs, a)[vector]", c_checkpoint_loop,
     lambda rng: (REAL(rng, (4,)), REAL(rng, (5, 4)), REAL(rng, (4,)), weight(rng, (4,))), (0, 1, 2),
     [symdiff.checkpoint_loop])


# ---------------------------------------------------------------------------- the parametrized check


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_gradient_matches_finite_differences(case: Case) -> None:
    args = case.args()
    check_grad(case.fn, *args, argnums=case.argnums, rtol=case.rtol, atol=case.atol)
    if case.check is not None:
        grads = symdiff.grad(case.fn, argnums=case.argnums)(*args)
        case.check(args, grads)


# ============================================================================ non-differentiable ops
# f(x) = sum(nd(x) * x * w): nd has zero derivative, so the gradient is nd(x) * w. Checked at
# points away from the jumps of nd (AWAY), where central differences agree.


def nd_floor(x, w): return np.sum(np.floor(x) * x * w)
def nd_ceil(x, w): return np.sum(np.ceil(x) * x * w)
def nd_round(x, w): return np.sum(np.round(x) * x * w)
def nd_rint(x, w): return np.sum(np.rint(x) * x * w)
def nd_trunc(x, w): return np.sum(np.trunc(x) * x * w)
def nd_sign(x, w): return np.sum(np.sign(x) * x * w)
def nd_gt(x, w): return np.sum((x > 0.5) * x * w)
def nd_ge(x, w): return np.sum((x >= 0.5) * x * w)
def nd_lt(x, w): return np.sum((x < 0.5) * x * w)
def nd_le(x, w): return np.sum((x <= 0.5) * x * w)
def nd_ne(x, w): return np.sum((x != 0.5) * x * w)
def nd_np_greater(x, w): return np.sum(np.greater(x, 0.5) * x * w)
def nd_np_less_equal(x, w): return np.sum(np.less_equal(x, 0.5) * x * w)
def nd_floordiv(x, w): return np.sum((x // 1.0) * x * w)
def nd_np_floor_divide(x, w): return np.sum(np.floor_divide(x, 1.0) * x * w)
def nd_zeros_like(x, w): return np.sum((np.zeros_like(x) + x) * w)
def nd_ones_like(x, w): return np.sum(np.ones_like(x) * x * w)
def nd_argmax(x, w): return x[np.argmax(x)] * w
def nd_argmin_method(x, w): return x[x.argmin()] * w
def nd_shape(x, w): return np.sum(x * w) * x.shape[0]
def nd_len(x, w): return np.sum(x * w) / len(x)
def nd_size(x, w): return np.sum(x * w) / x.size
def nd_math_floor(x, w): return math.floor(x) * x * w
def nd_math_ceil(x, w): return math.ceil(x) * x * w
def nd_math_trunc(x, w): return math.trunc(x) * x * w
def nd_round_builtin(x, w): return round(x) * x * w
def nd_int(x, w): return int(x) * x * w
def nd_bool_times(x, w): return (x > 0.5) * x * w
def nd_not(x, w): return (not x > 0.5) * x * w


NONDIFF_CASES = [
    ("np.floor", nd_floor, ELEMENTWISE_SHAPES),
    ("np.ceil", nd_ceil, ELEMENTWISE_SHAPES),
    ("np.round", nd_round, ELEMENTWISE_SHAPES),
    ("np.rint", nd_rint, ARRAY_SHAPES),
    ("np.trunc", nd_trunc, ARRAY_SHAPES),
    ("np.sign", nd_sign, ELEMENTWISE_SHAPES),
    ("x > 0.5", nd_gt, ELEMENTWISE_SHAPES),
    ("x >= 0.5", nd_ge, ARRAY_SHAPES),
    ("x < 0.5", nd_lt, ARRAY_SHAPES),
    ("x <= 0.5", nd_le, ARRAY_SHAPES),
    ("x != 0.5", nd_ne, ARRAY_SHAPES),
    ("np.greater", nd_np_greater, ARRAY_SHAPES),
    ("np.less_equal", nd_np_less_equal, ARRAY_SHAPES),
    ("x // 1.0", nd_floordiv, ELEMENTWISE_SHAPES),
    ("np.floor_divide", nd_np_floor_divide, ARRAY_SHAPES),
    ("np.zeros_like", nd_zeros_like, ARRAY_SHAPES),
    ("np.ones_like", nd_ones_like, ARRAY_SHAPES),
    ("x[np.argmax(x)]", nd_argmax, [(4,)]),
    ("x[x.argmin()]", nd_argmin_method, [(4,)]),
    ("x.shape[0]", nd_shape, ARRAY_SHAPES),
    ("len(x)", nd_len, ARRAY_SHAPES),
    ("x.size", nd_size, ARRAY_SHAPES),
    ("math.floor", nd_math_floor, [None]),
    ("math.ceil", nd_math_ceil, [None]),
    ("math.trunc", nd_math_trunc, [None]),
    ("round", nd_round_builtin, [None]),
    ("int", nd_int, [None]),
    ("float comparison", nd_bool_times, [None]),
    ("not", nd_not, [None]),
]

_ND_PARAMS = [pytest.param(fn, s, id=f"{name}[{SHAPE_NAMES.get(s, s)}]")
              for name, fn, shapes in NONDIFF_CASES for s in shapes]


@pytest.mark.parametrize("fn, shape", _ND_PARAMS)
def test_non_differentiable_op_contributes_zero_gradient(fn, shape) -> None:
    rng = np.random.default_rng(zlib.crc32(fn.__name__.encode() + repr(shape).encode()))
    x = AWAY(rng, shape)
    w = weight(rng, None if fn in (nd_argmax, nd_argmin_method) else shape)  # w: the output's shape
    check_grad(fn, x, w, argnums=(0,))


@pytest.mark.parametrize("shape", ELEMENTWISE_SHAPES, ids=lambda s: SHAPE_NAMES[s])
def test_floor_times_x_has_gradient_floor_x(shape) -> None:
    """d/dx sum(floor(x) * x) = floor(x): floor' = 0 contributes nothing."""
    x = AWAY(np.random.default_rng(7), shape)
    w = 1.0 if shape is None else np.ones(shape)
    (g,) = symdiff.grad(nd_floor, argnums=(0,))(x, w)
    np.testing.assert_allclose(g, np.floor(x), rtol=1e-12, atol=0)
    check_grad(nd_floor, x, w, argnums=(0,))


# ============================================================================ coverage of the table

# VJPS keys exercised only under another name (key -> the key whose cases exercise it).
# Currently empty: every key has a case that calls it directly.
ALIASES: dict[Any, Any] = {}


def _covered() -> list:
    return [k for c in CASES for k in c.covers]


# ---------------------------------------------------------------------------- sequences
# Lists and tuples built inside the function and handed to NumPy (cotangents per position).


def q_stack_list(x, w): return np.sum(np.stack([x, 2.0 * x, np.sin(x)]) * w)
def q_stack_tuple(x, w): return np.sum(np.stack((x, x * x), axis=-1) * w)
def q_array(x, w): return np.sum(np.array([x, 3.0 * x]) * w)
def q_asarray(x, w): return np.sum(np.asarray([np.cos(x), x]) * w)
def q_sum(x, w): return np.sum(sum([x, x * x, np.tanh(x)]) * w)
def q_concatenate(x, w): return np.sum(np.concatenate([x, x ** 2], axis=0) * w)


def q_append(x, w):
    parts = []
    for i in range(3):
        parts.append(x * (i + 1.0) + np.sin(x))
    return np.sum(np.stack(parts) * w)


def q_reversed(x, w):
    parts = [x, np.sin(x), 3.0 * x]
    return np.sum(np.stack(list(reversed(parts))) * w)


def q_hstack(x, w): return np.sum(np.hstack([x, np.sin(x)]) * w)
def q_vstack(x, w): return np.sum(np.vstack((x, x * x)) * w)
def q_dstack(x, w): return np.sum(np.dstack([x, 2.0 * x]) * w)
def q_column_stack(x, w): return np.sum(np.column_stack([x, x ** 2]) * w)


def q_split(x, w):
    a, b = np.split(x, 2, axis=-1)  # only some pieces reach the output
    return np.sum(np.concatenate([b * b, a], axis=-1) * w)


def q_array_split(x, w):
    parts = np.array_split(x, 3, axis=0)
    return np.sum(parts[0] * 2.0) + np.sum(np.tanh(parts[-1])) + np.sum(x * w)


def q_hsplit(x, w):
    left, right = np.hsplit(x, 2)
    return np.sum(left * right) + np.sum(x * w)


def q_vsplit(x, w):
    top = np.vsplit(x, 2)[1]
    return np.sum(np.sin(top)) + np.sum(x * w)


def q_dsplit(x, w):
    return np.sum(np.dsplit(x, 2)[0] ** 2) + np.sum(x * w)


def q_slogdet(x, w):
    sign, logdet = np.linalg.slogdet(x @ x.T + 2.0 * np.eye(x.shape[0]))
    return logdet * sign + np.sum(x * w)


def q_astype(x, w): return np.sum(x.astype(np.float64) * w) + np.sum(x.astype(int) * w)


def q_joined(x, w):
    parts = []
    for i in range(2):
        parts.append(x * (i + 1.0))
    joined = parts + [np.sin(x)]  # a list that grows: joined from a copy of it
    parts.append(x * x)
    return np.sum(np.stack(joined) * w) + np.sum(parts[-1] * w[0])


def _seq_make(stack_shape):
    def make_for(shape):
        def make(rng):
            return REAL(rng, shape), weight(rng, stack_shape(shape))
        return make
    return make_for


for _id, _fn, _stack, _covers in [
    ("np.stack([..])", q_stack_list, lambda s: (3,) + s, [BUILD_LIST, np.stack]),
    ("np.stack((..), axis=-1)", q_stack_tuple, lambda s: s + (2,), [BUILD_TUPLE, np.stack]),
    ("np.array([..])", q_array, lambda s: (2,) + s, [BUILD_LIST, np.array]),
    ("np.asarray([..])", q_asarray, lambda s: (2,) + s, [BUILD_LIST, np.asarray]),
    ("sum([..])", q_sum, lambda s: s, [BUILD_LIST, sum]),
    ("np.concatenate([..])", q_concatenate, lambda s: (2 * s[0],) + s[1:], [BUILD_LIST, np.concatenate]),
    ("np.stack(reversed([..]))", q_reversed, lambda s: (3,) + s, [runtime.reverse_sequence, list]),
    ("np.hstack", q_hstack, lambda s: s[:-1] + (2 * s[-1],) if len(s) > 1 else (2 * s[0],), [np.hstack]),
    ("np.vstack", q_vstack, lambda s: (2 * s[0],) + s[1:] if len(s) > 1 else (2, s[0]), [np.vstack]),
    ("np.dstack", q_dstack, lambda s: ((1,) + s + (2,)) if len(s) == 1 else s + (2,), [np.dstack]),
    ("np.column_stack", q_column_stack, lambda s: (s[0], 2) if len(s) == 1 else (s[0], 2 * s[1]),
     [np.column_stack]),
    ("np.split", q_split, lambda s: s, [np.split]),
    ("np.hsplit", q_hsplit, lambda s: s, [np.hsplit]),
    ("x.astype", q_astype, lambda s: s, [Method("astype")]),
    ("list.append in a loop, stacked", q_append, lambda s: (3,) + s, [runtime.list_append, tuple, np.stack]),
    ("a growing list + [..]", q_joined, lambda s: (3,) + s, [runtime.copy_sequence, operator.add, np.stack]),
]:
    for _seq_shape in [(4,), (3, 4)]:
        case(f"{_id}[{_seq_shape}]", _fn, _seq_make(_stack)(_seq_shape), (0,), _covers)
for _id, _fn, _shape_, _covers in [
    ("np.array_split", q_array_split, (5, 2), [np.array_split]),
    ("np.vsplit", q_vsplit, (4, 3), [np.vsplit]),
    ("np.dsplit", q_dsplit, (2, 3, 4), [np.dsplit]),
    ("np.linalg.slogdet", q_slogdet, (3, 3), [np.linalg.slogdet]),
]:
    case(_id, _fn, _seq_make(lambda s: s)(_shape_), (0,), _covers)


def _in(key, keys) -> bool:
    for k in keys:
        try:
            if k is key or (type(k) is type(key) and k == key):
                return True
        except Exception:  # pragma: no cover - exotic __eq__
            continue
    return False


def test_every_rule_has_a_case() -> None:
    from test_numpy_rules import CASES as NUMPY_CASES  # the broad NumPy rule table

    covered = _covered() + [k for c in NUMPY_CASES for k in c.covers]
    if importlib.util.find_spec("scipy") is not None:
        from test_scipy_rules import covered as scipy_covered  # the SciPy rows
        covered += scipy_covered()
    table = [r for r in primitives.with_rules() if not r.user and getattr(r.fn, "_symdiff", None) is None]
    spellings = [k for r in table for k in primitives.spellings(r)]  # (not users' records, nor symdiff's functions)
    missing = [k for k in spellings if not _in(k, covered) and not _in(k, list(ALIASES))]
    assert not missing, ("rules (each spelling: function and method) without a finite-difference case in "
                         f"tests/test_rules.py or tests/test_numpy_rules.py: {missing}")


def test_aliases_are_exercised_through_their_target() -> None:
    covered = _covered()
    for key, target in ALIASES.items():
        assert primitives.lookup(key).vjps is not None, f"stale alias {key!r}: no longer has a rule"
        assert _in(target, covered), f"alias {key!r} -> {target!r}, but no case covers {target!r}"


def _called(fn, args) -> list:
    """The callees of every call op in the lowered (primal) IR of ``fn`` for ``args``."""
    from symdiff import api, frontend, ir, lower

    primal = lower.lower(frontend.parse_function(fn), [api._guard_key(a) for a in args])
    return [op.fn for op, _ in ir.walk(primal.body) if op.kind == "call"]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_case_exercises_the_rules_it_claims(case: Case) -> None:
    called = _called(case.fn, case.args())
    for key in case.covers:
        assert _in(key, called), f"{case.id} claims to exercise {key!r}, but its IR calls {called}"
