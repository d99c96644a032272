"""The broad table of NumPy derivative rules, checked against central finite differences.

Same pattern as ``tests/test_rules.py``: each case reduces the op's output to a scalar with a
fixed random weighting ``w`` of the output's shape, so that a gradient with the right shape but
the wrong entries cannot pass. Functions whose call spelling varies (the axis of a reduction,
the subscripts of an einsum) are built by small factories: symdiff reads closure variables as
compile-time constants, so ``axis`` arrives in the rule exactly as a literal would.

``CASES`` is this module's table; ``tests/test_rules.py::test_every_rule_has_a_case`` accepts a
``VJPS`` key covered by a case here or there. Every case also runs in float32
(``test_float32_gradient``): the gradient must be float32 and close to float64 finite
differences with a looser tolerance.
"""

from __future__ import annotations

import math
import operator
import re
import warnings

import numpy as np
import pytest
from fd import check_grad, numerical_grad
from test_rules import (
    NONZERO,
    PAIRS,
    POS,
    REAL,
    SHAPE_NAMES,
    UNIT,
    Case,
    _broadcast,
    _called,
    _in,
    _n,
    _shape,
    out_shape,
    weight,
)

import symdiff
from symdiff.ir import GetAttr, Method

CASES: list[Case] = []
XFAIL: dict[str, str] = {}  # case id -> reason (a compiler limitation outside the rules)


def case(id, fn, make, argnums, covers, **kw) -> None:
    assert all(c.id != id for c in CASES), f"duplicate case id {id}"
    CASES.append(Case(id, fn, make, tuple(argnums), tuple(covers), **kw))


def _sname(shape) -> str:
    return SHAPE_NAMES.get(shape, str(shape))


# ============================================================================ domains


def ABOVE1(rng, shape):  # arccosh
    return _shape(rng.uniform(1.2, 3.0, _n(shape)), shape)


def SPREAD(rng, shape):
    """Distinct values at least 0.05 apart (max/min/sort/norm inf: no ties within eps)."""
    n = _n(shape)
    values = rng.permutation(np.linspace(-2.0, 2.0, n)) + rng.uniform(-0.01, 0.01, n) if n > 1 else \
        rng.uniform(-2.0, 2.0, 1)
    return _shape(values, shape)


def SPREAD_NONZERO(rng, shape):  # distinct and away from 0 (norm ord=1/inf, cumprod)
    n = _n(shape)
    mags = rng.permutation(np.linspace(0.5, 2.0, n)) + rng.uniform(-0.01, 0.01, n) if n > 1 else \
        rng.uniform(0.5, 2.0, 1)
    return _shape(rng.choice([-1.0, 1.0], n) * mags, shape)


def WELL_CONDITIONED(rng, shape):
    """Square matrices (or stacks) near 3 * identity: invertible, not close to singular."""
    a = rng.uniform(-1.0, 1.0, shape)
    return a + 3.0 * np.eye(shape[-1])


# ============================================================================ elementwise, unary


def u_exp2(x, w): return np.sum(np.exp2(x) * w)
def u_log2(x, w): return np.sum(np.log2(x) * w)
def u_log10(x, w): return np.sum(np.log10(x) * w)
def u_cbrt(x, w): return np.sum(np.cbrt(x) * w)
def u_positive(x, w): return np.sum(np.positive(x) * w)
def u_arcsin(x, w): return np.sum(np.arcsin(x) * w)
def u_arccos(x, w): return np.sum(np.arccos(x) * w)
def u_arcsinh(x, w): return np.sum(np.arcsinh(x) * w)
def u_arccosh(x, w): return np.sum(np.arccosh(x) * w)
def u_arctanh(x, w): return np.sum(np.arctanh(x) * w)
def u_fabs(x, w): return np.sum(np.fabs(x) * w)
def u_sinc(x, w): return np.sum(np.sinc(x) * w)
def u_deg2rad(x, w): return np.sum(np.deg2rad(x) * w)
def u_radians(x, w): return np.sum(np.radians(x) * w)
def u_rad2deg(x, w): return np.sum(np.rad2deg(x) * w)
def u_degrees(x, w): return np.sum(np.degrees(x) * w)


ALL_SHAPES = [None, (4,), (3, 4), (2, 3, 4)]

UNARY = [
    # (name, function, domain, covers)
    ("np.exp2", u_exp2, REAL, [np.exp2]),
    ("np.log2", u_log2, POS, [np.log2]),
    ("np.log10", u_log10, POS, [np.log10]),
    ("np.cbrt", u_cbrt, NONZERO, [np.cbrt]),
    ("np.positive", u_positive, REAL, [np.positive]),
    ("np.arcsin", u_arcsin, UNIT, [np.arcsin]),
    ("np.arccos", u_arccos, UNIT, [np.arccos]),
    ("np.arcsinh", u_arcsinh, REAL, [np.arcsinh]),
    ("np.arccosh", u_arccosh, ABOVE1, [np.arccosh]),
    ("np.arctanh", u_arctanh, UNIT, [np.arctanh]),
    ("np.fabs", u_fabs, NONZERO, [np.fabs]),
    ("np.sinc", u_sinc, REAL, [np.sinc]),
    ("np.deg2rad", u_deg2rad, REAL, [np.deg2rad]),
    ("np.radians", u_radians, REAL, [np.radians]),
    ("np.rad2deg", u_rad2deg, REAL, [np.rad2deg]),
    ("np.degrees", u_degrees, REAL, [np.degrees]),
]


def _unary_make(domain, shape):
    return lambda rng: (domain(rng, shape), weight(rng, shape))


for _name, _fn, _dom, _covers in UNARY:
    for _s in ALL_SHAPES:
        case(f"{_name}[{_sname(_s)}]", _fn, _unary_make(_dom, _s), (0,), _covers)


def test_sinc_gradient_at_zero_is_zero() -> None:
    x = np.array([0.0, 0.5, -1.5])
    (g,) = symdiff.grad(u_sinc, argnums=(0,))(x, np.ones(3))
    assert g[0] == 0.0
    np.testing.assert_allclose(g, numerical_grad(u_sinc, [x, np.ones(3)], 0), rtol=1e-6, atol=1e-8)


# ============================================================================ elementwise, binary


def b_float_power(x, y, w): return np.sum(np.float_power(x, y) * w)
def b_hypot(x, y, w): return np.sum(np.hypot(x, y) * w)
def b_arctan2(y, x, w): return np.sum(np.arctan2(y, x) * w)
def b_logaddexp(x, y, w): return np.sum(np.logaddexp(x, y) * w)
def b_logaddexp2(x, y, w): return np.sum(np.logaddexp2(x, y) * w)
def b_true_divide(x, y, w): return np.sum(np.true_divide(x, y) * w)
def b_fmax(x, y, w): return np.sum(np.fmax(x, y) * w)
def b_fmin(x, y, w): return np.sum(np.fmin(x, y) * w)


BINARY = [
    # (name, function, domain of x, domain of y, covers)
    ("np.float_power", b_float_power, POS, REAL, [np.float_power]),
    ("np.hypot", b_hypot, NONZERO, NONZERO, [np.hypot]),
    ("np.arctan2", b_arctan2, NONZERO, NONZERO, [np.arctan2]),
    ("np.logaddexp", b_logaddexp, REAL, REAL, [np.logaddexp]),
    ("np.logaddexp2", b_logaddexp2, REAL, REAL, [np.logaddexp2]),
    ("np.true_divide", b_true_divide, REAL, NONZERO, [np.true_divide]),
    ("np.fmax", b_fmax, REAL, REAL, [np.fmax]),
    ("np.fmin", b_fmin, REAL, REAL, [np.fmin]),
]


def _binary_make(dx, dy, sx, sy):
    return lambda rng: (dx(rng, sx), dy(rng, sy), weight(rng, _broadcast(sx, sy)))


for _name, _fn, _dx, _dy, _covers in BINARY:
    for _label, _sx, _sy in PAIRS:
        case(f"{_name}[{_label}]", _fn, _binary_make(_dx, _dy, _sx, _sy), (0, 1), _covers)


def test_fmax_fmin_ignore_nan() -> None:
    """NaN loses outright in fmax/fmin (NumPy returns the other operand); ties split evenly."""
    x = np.array([1.0, np.nan, 2.0, 3.0])
    y = np.array([np.nan, 1.0, 2.0, 0.0])
    w = np.array([1.0, 2.0, 4.0, 8.0])
    gx, gy = symdiff.grad(b_fmax, argnums=(0, 1))(x, y, w)
    np.testing.assert_array_equal(gx, [1.0, 0.0, 2.0, 8.0])
    np.testing.assert_array_equal(gy, [0.0, 2.0, 2.0, 0.0])
    gx, gy = symdiff.grad(b_fmin, argnums=(0, 1))(x, y, w)
    np.testing.assert_array_equal(gx, [1.0, 0.0, 2.0, 0.0])
    np.testing.assert_array_equal(gy, [0.0, 2.0, 2.0, 8.0])


# ---------------------------------------------------------------------------- clip


def c_clip(x, w): return np.sum(np.clip(x, -0.5, 0.7) * w)
def c_clip_keywords(x, w): return np.sum(np.clip(x, a_min=-0.5, a_max=0.7) * w)
def c_clip_no_min(x, w): return np.sum(np.clip(x, None, 0.7) * w)
def c_clip_no_max(x, w): return np.sum(np.clip(x, -0.5, None) * w)
def c_clip_method(x, w): return np.sum(x.clip(-0.5, 0.7) * w)
def c_clip_active(x, lo, hi, w): return np.sum(np.clip(x, lo, hi) * w)
def c_clip_active_no_max(x, lo, w): return np.sum(np.clip(x, lo, None) * w)
def c_clip_active_no_min(x, hi, w): return np.sum(np.clip(x, None, hi) * w)


def _clip_x(rng, shape):
    """Away from the bounds -0.5 and 0.7 (where the clip has kinks)."""
    n = _n(shape)
    values = rng.choice([-1.5, -1.0, 0.0, 0.3, 1.0, 1.5], n) + rng.uniform(-0.15, 0.15, n)
    return _shape(values, shape)


for _s in ALL_SHAPES:
    for _name, _fn, _covers in (("np.clip(x, -0.5, 0.7)", c_clip, [np.clip]),
                                ("np.clip(x, a_min=, a_max=)", c_clip_keywords, [np.clip]),
                                ("np.clip(x, None, 0.7)", c_clip_no_min, [np.clip]),
                                ("np.clip(x, -0.5, None)", c_clip_no_max, [np.clip])):
        case(f"{_name}[{_sname(_s)}]", _fn, _unary_make(_clip_x, _s), (0,), _covers)
for _s in [(4,), (3, 4)]:
    case(f"x.clip(-0.5, 0.7)[{_sname(_s)}]", c_clip_method, _unary_make(_clip_x, _s), (0,), [Method("clip")])


def _clip_active_make(sx, slo, shi):
    def make(rng):
        x = _clip_x(rng, sx)
        lo = _shape(np.full(_n(slo), -0.5) + rng.uniform(-0.05, 0.05, _n(slo)), slo)
        hi = _shape(np.full(_n(shi), 0.7) + rng.uniform(-0.05, 0.05, _n(shi)), shi)
        return x, lo, hi, weight(rng, _broadcast(_broadcast(sx, slo), shi))
    return make


for _label, _sx, _slo, _shi in (("scalars", None, None, None), ("vector, scalar bounds", (4,), None, None),
                                ("matrix, row bounds", (3, 4), (4,), (4,)),
                                ("matrix, column/scalar bounds", (3, 4), (3, 1), None),
                                ("matrix, matrix bounds", (3, 4), (3, 4), (3, 4))):
    case(f"np.clip(x, lo, hi) active bounds[{_label}]", c_clip_active, _clip_active_make(_sx, _slo, _shi),
         (0, 1, 2), [np.clip])
case("np.clip(x, lo, None) active bound[matrix]", c_clip_active_no_max,
     lambda rng: (_clip_x(rng, (3, 4)), -0.5 + 0.1 * REAL(rng, (4,)), weight(rng, (3, 4))), (0, 1), [np.clip])
case("np.clip(x, None, hi) active bound[matrix]", c_clip_active_no_min,
     lambda rng: (_clip_x(rng, (3, 4)), 0.7 + 0.1 * REAL(rng, (3, 1)), weight(rng, (3, 4))), (0, 1), [np.clip])


def test_clip_gradient_is_the_inside_mask() -> None:
    x = np.array([-2.0, -0.4, 0.0, 0.69, 3.0])
    (g,) = symdiff.grad(c_clip, argnums=(0,))(x, np.ones(5))
    np.testing.assert_array_equal(g, [0.0, 1.0, 1.0, 1.0, 0.0])


# ============================================================================ reductions
# f(x, w) = sum(reduce(x, axis=..., keepdims=...) * w).


def _fn_axis(op, axis, keepdims):
    def f(x, w):
        return np.sum(op(x, axis=axis, keepdims=keepdims) * w)
    return f


def _fn_plain(op):
    def f(x, w):
        return np.sum(op(x) * w)
    return f


def _fn_positional_axis(op, axis):
    def f(x, w):
        return np.sum(op(x, axis) * w)
    return f


def _fn_ddof(op, axis, ddof, keepdims):
    def f(x, w):
        return np.sum(op(x, axis=axis, ddof=ddof, keepdims=keepdims) * w)
    return f


def _m_prod(axis, keepdims):
    def f(x, w):
        return np.sum(x.prod(axis=axis, keepdims=keepdims) * w)
    return f


def _m_max(axis, keepdims):
    def f(x, w):
        return np.sum(x.max(axis=axis, keepdims=keepdims) * w)
    return f


def _m_min(axis, keepdims):
    def f(x, w):
        return np.sum(x.min(axis=axis, keepdims=keepdims) * w)
    return f


def _m_var(axis, keepdims):
    def f(x, w):
        return np.sum(x.var(axis=axis, keepdims=keepdims) * w)
    return f


def _m_std(axis, keepdims):
    def f(x, w):
        return np.sum(x.std(axis=axis, ddof=1, keepdims=keepdims) * w)
    return f


AXES = {  # every axis spelling: None, each axis, negative, tuples (negative and unsorted too)
    (4,): [None, 0, -1, (0,)],
    (3, 4): [None, 0, 1, -1, -2, (0, 1), (-1, 0), (1,)],
    (2, 3, 4): [None, 0, 1, 2, -1, -3, (0, 2), (2, 0), (1, -1), (0, 1, 2), (-3, -2)],
}


def _reduce_make(domain, shape, reduce):
    def make(rng):
        x = domain(rng, shape)
        return x, weight(rng, out_shape(np.shape(reduce(x))))
    return make


REDUCTIONS = [
    # (name, NumPy function, domain)
    ("np.prod", np.prod, REAL),
    ("np.max", np.max, SPREAD),
    ("np.min", np.min, SPREAD),
    ("np.amax", np.amax, SPREAD),
    ("np.amin", np.amin, SPREAD),
    ("np.var", np.var, REAL),
    ("np.std", np.std, REAL),
]

for _name, _op, _dom in REDUCTIONS:
    for _s in [None, (4,), (3, 4), (2, 3, 4)]:
        if _s is None and _op is np.std:
            continue  # the std of one number is 0, where std is not differentiable
        case(f"{_name}(x)[{_sname(_s)}]", _fn_plain(_op), _reduce_make(_dom, _s, _op), (0,), [_op])
    for _s, _axes in AXES.items():
        for _axis in _axes:
            for _keep in (False, True):
                _ref = (lambda op, a, k: lambda x: op(x, axis=a, keepdims=k))(_op, _axis, _keep)
                case(f"{_name}(x, axis={_axis}, keepdims={_keep})[{_sname(_s)}]", _fn_axis(_op, _axis, _keep),
                     _reduce_make(_dom, _s, _ref), (0,), [_op])
    case(f"{_name}(x, 1)[matrix]", _fn_positional_axis(_op, 1),
         _reduce_make(_dom, (3, 4), (lambda op: lambda x: op(x, 1))(_op)), (0,), [_op])

for _name, _op in (("np.var", np.var), ("np.std", np.std)):
    for _s, _axis in (((4,), None), ((3, 4), 0), ((3, 4), -1), ((2, 3, 4), (0, 2))):
        for _keep in (False, True):
            _ref = (lambda op, a, k: lambda x: op(x, axis=a, ddof=1, keepdims=k))(_op, _axis, _keep)
            case(f"{_name}(x, axis={_axis}, ddof=1, keepdims={_keep})[{_sname(_s)}]",
                 _fn_ddof(_op, _axis, 1, _keep), _reduce_make(REAL, _s, _ref), (0,), [_op])

METHODS = [
    # (name, factory, NumPy spelling, domain, covers)
    ("x.prod", _m_prod, lambda x, a, k: x.prod(axis=a, keepdims=k), REAL, Method("prod")),
    ("x.max", _m_max, lambda x, a, k: x.max(axis=a, keepdims=k), SPREAD, Method("max")),
    ("x.min", _m_min, lambda x, a, k: x.min(axis=a, keepdims=k), SPREAD, Method("min")),
    ("x.var", _m_var, lambda x, a, k: x.var(axis=a, keepdims=k), REAL, Method("var")),
    ("x.std(ddof=1)", _m_std, lambda x, a, k: x.std(axis=a, ddof=1, keepdims=k), REAL, Method("std")),
]
for _name, _factory, _spell, _dom, _key in METHODS:
    for _s, _axis, _keep in (((4,), None, False), ((3, 4), None, True), ((3, 4), 1, False), ((3, 4), -2, True),
                             ((2, 3, 4), (0, -1), False), ((2, 3, 4), 1, True)):
        _ref = (lambda sp, a, k: lambda x: sp(x, a, k))(_spell, _axis, _keep)
        case(f"{_name}(axis={_axis}, keepdims={_keep})[{_sname(_s)}]", _factory(_axis, _keep),
             _reduce_make(_dom, _s, _ref), (0,), [_key])


# ---------------------------------------------------------------------------- cumulative


def _fn_cum(op, axis):
    def f(x, w):
        return np.sum(op(x, axis=axis) * w)
    return f


def m_cumsum(x, w): return np.sum(x.cumsum() * w)
def m_cumsum_axis(x, w): return np.sum(x.cumsum(axis=-1) * w)
def m_cumprod(x, w): return np.sum(x.cumprod(0) * w)


for _name, _op, _dom in (("np.cumsum", np.cumsum, REAL), ("np.cumprod", np.cumprod, SPREAD_NONZERO)):
    for _s in [None, (4,), (3, 4), (2, 3, 4)]:
        case(f"{_name}(x)[{_sname(_s)}]", _fn_plain(_op), _reduce_make(_dom, _s, _op), (0,), [_op])
    for _s, _axes in AXES.items():
        for _axis in _axes:
            if isinstance(_axis, tuple) or _axis is None:
                continue
            _ref = (lambda op, a: lambda x: op(x, axis=a))(_op, _axis)
            case(f"{_name}(x, axis={_axis})[{_sname(_s)}]", _fn_cum(_op, _axis), _reduce_make(_dom, _s, _ref),
                 (0,), [_op])
for _s in [(4,), (3, 4)]:
    case(f"x.cumsum()[{_sname(_s)}]", m_cumsum, _reduce_make(REAL, _s, np.cumsum), (0,), [Method("cumsum")])
    case(f"x.cumsum(axis=-1)[{_sname(_s)}]", m_cumsum_axis,
         _reduce_make(REAL, _s, lambda x: np.cumsum(x, -1)), (0,), [Method("cumsum")])
    case(f"x.cumprod(0)[{_sname(_s)}]", m_cumprod,
         _reduce_make(SPREAD_NONZERO, _s, lambda x: np.cumprod(x, 0)), (0,), [Method("cumprod")])


# ---------------------------------------------------------------------------- norm


def _fn_norm(ord, axis, keepdims):
    def f(x, w):
        return np.sum(np.linalg.norm(x, ord=ord, axis=axis, keepdims=keepdims) * w)
    return f


def n_norm(x, w): return np.linalg.norm(x) * w
def n_norm_positional(x, w): return np.sum(np.linalg.norm(x, 2, -1) * w)


NORMS = [
    # (shape, ord, axis, keepdims, domain)
    ((4,), None, None, False, REAL), ((4,), 2, None, False, REAL), ((4,), 1, None, False, NONZERO),
    ((4,), np.inf, None, False, SPREAD_NONZERO), ((4,), -np.inf, None, False, SPREAD_NONZERO),
    ((4,), 3, None, False, NONZERO), ((4,), 0.5, None, False, NONZERO), ((4,), 2, 0, True, REAL),
    ((3, 4), None, None, False, REAL), ((3, 4), "fro", None, False, REAL), ((3, 4), None, None, True, REAL),
    ((3, 4), "fro", (0, 1), False, REAL), ((3, 4), None, (-1, -2), True, REAL),
    ((3, 4), None, 1, False, REAL), ((3, 4), 2, 0, True, REAL), ((3, 4), 1, -1, False, NONZERO),
    ((3, 4), np.inf, 1, True, SPREAD_NONZERO), ((3, 4), np.inf, 0, False, SPREAD_NONZERO),
    ((2, 3, 4), None, None, False, REAL), ((2, 3, 4), None, -1, False, REAL),
    ((2, 3, 4), 2, 1, True, REAL), ((2, 3, 4), None, (1, 2), False, REAL), ((2, 3, 4), "fro", (0, 2), True, REAL),
]
for _s, _ord, _axis, _keep, _dom in NORMS:
    _ref = (lambda o, a, k: lambda x: np.linalg.norm(x, ord=o, axis=a, keepdims=k))(_ord, _axis, _keep)
    case(f"np.linalg.norm(x, ord={_ord}, axis={_axis}, keepdims={_keep})[{_sname(_s)}]",
         _fn_norm(_ord, _axis, _keep), _reduce_make(_dom, _s, _ref), (0,), [np.linalg.norm])
for _s in [(4,), (3, 4), (2, 3, 4)]:
    case(f"np.linalg.norm(x)[{_sname(_s)}]", n_norm, lambda rng, s=_s: (REAL(rng, s), weight(rng, None)), (0,),
         [np.linalg.norm])
case("np.linalg.norm(x, 2, -1)[matrix]", n_norm_positional,
     _reduce_make(REAL, (3, 4), lambda x: np.linalg.norm(x, 2, -1)), (0,), [np.linalg.norm])


# ---------------------------------------------------------------------------- average


def a_average(x, w): return np.average(x) * w
def a_average_axis(x, w): return np.sum(np.average(x, axis=1) * w)
def a_weighted(x, v, w): return np.average(x, weights=v) * w
def a_weighted_axis(x, v, w): return np.sum(np.average(x, axis=-1, weights=v) * w)
def a_weighted_1d(x, v, w): return np.sum(np.average(x, axis=0, weights=v) * w)
def a_weighted_positional(x, v, w): return np.sum(np.average(x, 1, v) * w)
def a_weighted_keepdims(x, v, w): return np.sum(np.average(x, axis=0, weights=v, keepdims=True) * w)


case("np.average(x)[matrix]", a_average, lambda rng: (REAL(rng, (3, 4)), weight(rng, None)), (0,), [np.average])
case("np.average(x, axis=1)[matrix]", a_average_axis, lambda rng: (REAL(rng, (3, 4)), weight(rng, (3,))), (0,),
     [np.average])
case("np.average(x, weights=v)[matrix]", a_weighted,
     lambda rng: (REAL(rng, (3, 4)), POS(rng, (3, 4)), weight(rng, None)), (0,), [np.average])
case("np.average(x, axis=-1, weights=v) v full[matrix]", a_weighted_axis,
     lambda rng: (REAL(rng, (3, 4)), POS(rng, (3, 4)), weight(rng, (3,))), (0,), [np.average])
case("np.average(x, axis=0, weights=v) v 1-D[matrix]", a_weighted_1d,
     lambda rng: (REAL(rng, (3, 4)), POS(rng, (3,)), weight(rng, (4,))), (0,), [np.average])
case("np.average(x, axis=0, weights=v) v 1-D[3d]", a_weighted_1d,
     lambda rng: (REAL(rng, (2, 3, 4)), POS(rng, (2,)), weight(rng, (3, 4))), (0,), [np.average])
case("np.average(x, 1, v) positional weights, both differentiated[matrix]", a_weighted_positional,
     lambda rng: (REAL(rng, (3, 4)), POS(rng, (4,)), weight(rng, (3,))), (0, 1), [np.average])
case("np.average(x, 1, v) positional weights, both differentiated, v full[matrix]", a_weighted_positional,
     lambda rng: (REAL(rng, (3, 4)), POS(rng, (3, 4)), weight(rng, (3,))), (0, 1), [np.average])
case("np.average(x, axis=0, weights=v, keepdims=True)[matrix]", a_weighted_keepdims,
     lambda rng: (REAL(rng, (3, 4)), POS(rng, (3,)), weight(rng, (1, 4))), (0,), [np.average])


# ---------------------------------------------------------------------------- exact values


def r_max(x): return np.max(x)
def r_min(x): return np.min(x)
def r_max_axis(x, w): return np.sum(np.max(x, axis=-1, keepdims=True) * w)
def r_min_method(x, w): return np.sum(x.min(axis=0) * w)
def r_prod(x): return np.prod(x)
def r_prod_axis(x, w): return np.sum(np.prod(x, axis=1, keepdims=True) * w)


def test_max_min_ties_split_evenly() -> None:
    np.testing.assert_array_equal(symdiff.grad(r_max)(np.array([1.0, 3.0, 3.0])), [0.0, 0.5, 0.5])
    np.testing.assert_array_equal(symdiff.grad(r_min)(np.array([2.0, 1.0, 1.0, 1.0])), [0.0, 1 / 3, 1 / 3, 1 / 3])
    x = np.array([[1.0, 4.0, 4.0, 0.0], [2.0, 2.0, 2.0, 2.0]])
    g = symdiff.grad(r_max_axis)(x, np.array([[2.0], [8.0]]))
    np.testing.assert_array_equal(g, [[0.0, 1.0, 1.0, 0.0], [2.0, 2.0, 2.0, 2.0]])
    g = symdiff.grad(r_min_method)(np.array([[1.0, 5.0], [1.0, 3.0]]), np.array([1.0, 1.0]))
    np.testing.assert_array_equal(g, [[0.5, 0.0], [0.5, 1.0]])


def relu_sum(x): return np.sum(np.maximum(x, 0.0) * np.array([1.0, 2.0, 3.0]))
def relu_first_sum(x): return np.sum(np.maximum(0, x) * np.array([1.0, 2.0, 3.0]))
def capped_sum(x): return np.sum(np.minimum(x, 1.0) * np.array([1.0, 2.0, 3.0]))


@pytest.mark.parametrize("fn, x, want", [
    (relu_sum, [-1.0, 0.0, 2.0], [0.0, 0.0, 3.0]),
    (relu_first_sum, [-1.0, 0.0, 2.0], [0.0, 0.0, 3.0]),
    (capped_sum, [0.5, 1.0, 2.0], [1.0, 0.0, 0.0]),
], ids=["maximum-of-x-and-0", "maximum-of-0-and-x", "minimum-of-x-and-1"])
def test_a_constant_bound_of_maximum_or_minimum_wins_its_ties(fn, x, want) -> None:
    np.testing.assert_array_equal(symdiff.grad(fn)(np.array(x)), want)
    assert "winner_mask" not in symdiff.grad(fn).source  # one comparison is the whole mask


def maximum_of_two(x, y): return np.sum(np.maximum(x, y))


def test_ties_between_two_values_of_maximum_split_evenly() -> None:
    gx, gy = symdiff.grad(maximum_of_two, argnums=(0, 1))(np.array([1.0, 2.0]), np.array([1.0, 3.0]))
    np.testing.assert_array_equal(gx, [0.5, 0.0])
    np.testing.assert_array_equal(gy, [0.5, 1.0])


def test_prod_with_zeros_is_exact() -> None:
    np.testing.assert_array_equal(symdiff.grad(r_prod)(np.array([2.0, 0.0, 3.0, 4.0])), [0.0, 24.0, 0.0, 0.0])
    np.testing.assert_array_equal(symdiff.grad(r_prod)(np.array([2.0, 0.0, 3.0, 0.0])), [0.0, 0.0, 0.0, 0.0])
    x = np.array([[1.0, 0.0, 3.0], [0.0, 0.0, 2.0], [1.0, 2.0, 3.0]])
    g = symdiff.grad(r_prod_axis)(x, np.array([[1.0], [1.0], [1.0]]))
    np.testing.assert_array_equal(g, [[0.0, 3.0, 0.0], [0.0, 0.0, 0.0], [6.0, 3.0, 2.0]])
    for x in (np.array([0.0, 1.5, -2.0]), np.array([[0.0, 1.5], [-2.0, 0.0]])):
        np.testing.assert_allclose(symdiff.grad(r_prod)(x), numerical_grad(r_prod, [x], 0), rtol=1e-6, atol=1e-8)


# ============================================================================ shape ops
# f(x, w) = sum(op(x) * w).


def s_ravel(x, w): return np.sum(np.ravel(x) * w)
def s_ravel_method(x, w): return np.sum(x.ravel() * w)
def s_flatten(x, w): return np.sum(x.flatten() * w)
def s_squeeze(x, w): return np.sum(np.squeeze(x) * w)
def s_squeeze_axis(x, w): return np.sum(np.squeeze(x, axis=0) * w)
def s_squeeze_method(x, w): return np.sum(x.squeeze() * w)
def s_expand_dims(x, w): return np.sum(np.expand_dims(x, 1) * w)
def s_expand_dims_tuple(x, w): return np.sum(np.expand_dims(x, (0, -1)) * w)
def s_swapaxes(x, w): return np.sum(np.swapaxes(x, 0, -1) * w)
def s_swapaxes_method(x, w): return np.sum(x.swapaxes(1, 2) * w)
def s_moveaxis(x, w): return np.sum(np.moveaxis(x, 0, -1) * w)
def s_moveaxis_tuple(x, w): return np.sum(np.moveaxis(x, (0, 1), (2, 0)) * w)
def s_transpose_method(x, w): return np.sum(x.transpose() * w)
def s_transpose_method_axes(x, w): return np.sum(x.transpose(1, 2, 0) * w)
def s_transpose_method_tuple(x, w): return np.sum(x.transpose((2, 0, 1)) * w)
def s_broadcast_to(x, w): return np.sum(np.broadcast_to(x, (2, 3, 4)) * w)
def s_atleast_1d(x, w): return np.sum(np.atleast_1d(x) * w)
def s_atleast_2d(x, w): return np.sum(np.atleast_2d(x) * w)
def s_atleast_3d(x, w): return np.sum(np.atleast_3d(x) * w)
def s_tile(x, w): return np.sum(np.tile(x, 2) * w)
def s_tile_tuple(x, w): return np.sum(np.tile(x, (2, 1, 3)) * w)
def s_repeat(x, w): return np.sum(np.repeat(x, 2) * w)
def s_repeat_axis(x, w): return np.sum(np.repeat(x, 3, axis=-1) * w)
def s_repeat_counts(x, w): return np.sum(np.repeat(x, [2, 0, 1], axis=0) * w)
def s_repeat_method(x, w): return np.sum(x.repeat(2, axis=0) * w)
def s_flip(x, w): return np.sum(np.flip(x) * w)
def s_flip_axis(x, w): return np.sum(np.flip(x, axis=1) * w)
def s_flip_axes(x, w): return np.sum(np.flip(x, (0, -1)) * w)
def s_fliplr(x, w): return np.sum(np.fliplr(x) * w)
def s_flipud(x, w): return np.sum(np.flipud(x) * w)
def s_roll(x, w): return np.sum(np.roll(x, 2) * w)
def s_roll_axis(x, w): return np.sum(np.roll(x, -1, axis=1) * w)
def s_roll_axes(x, w): return np.sum(np.roll(x, (1, 2), axis=(0, 1)) * w)
def s_pad(x, w): return np.sum(np.pad(x, 1) * w)
def s_pad_pairs(x, w): return np.sum(np.pad(x, ((1, 0), (2, 3))) * w)
def s_pad_constant(x, w): return np.sum(np.pad(x, (2, 1), mode="constant", constant_values=5.0) * w)
def s_triu(x, w): return np.sum(np.triu(x) * w)
def s_triu_k(x, w): return np.sum(np.triu(x, 1) * w)
def s_tril(x, w): return np.sum(np.tril(x) * w)
def s_tril_k(x, w): return np.sum(np.tril(x, k=-1) * w)
def s_sort(x, w): return np.sum(np.sort(x) * w)
def s_sort_axis(x, w): return np.sum(np.sort(x, axis=0) * w)
def s_sort_none(x, w): return np.sum(np.sort(x, axis=None) * w)
def s_trace(x, w): return np.trace(x) * w
def s_trace_offset(x, w): return np.trace(x, 1) * w
def s_trace_axes(x, w): return np.sum(np.trace(x, 0, 1, 2) * w)
def s_trace_method(x, w): return x.trace(offset=-1) * w
def s_diag_vector(x, w): return np.sum(np.diag(x) * w)
def s_diag_vector_k(x, w): return np.sum(np.diag(x, -1) * w)
def s_diag_matrix(x, w): return np.sum(np.diag(x) * w)
def s_diag_matrix_k(x, w): return np.sum(np.diag(x, k=2) * w)
def s_diagonal(x, w): return np.sum(np.diagonal(x) * w)
def s_diagonal_axes(x, w): return np.sum(np.diagonal(x, 1, 0, 2) * w)
def s_diagonal_method(x, w): return np.sum(x.diagonal(-1) * w)


SHAPE_OPS = [
    # (name, function, shape of x, the same op in NumPy, covers, domain)
    ("np.ravel", s_ravel, (3, 4), np.ravel, [np.ravel]),
    ("np.ravel", s_ravel, (2, 3, 4), np.ravel, [np.ravel]),
    ("x.ravel()", s_ravel_method, (3, 4), np.ravel, [Method("ravel")]),
    ("x.flatten()", s_flatten, (3, 4), np.ravel, [Method("flatten")]),
    ("x.flatten()", s_flatten, (2, 3, 4), np.ravel, [Method("flatten")]),
    ("np.squeeze", s_squeeze, (1, 4), np.squeeze, [np.squeeze]),
    ("np.squeeze", s_squeeze, (3, 1, 4, 1), np.squeeze, [np.squeeze]),
    ("np.squeeze(x, axis=0)", s_squeeze_axis, (1, 3, 1), lambda x: np.squeeze(x, axis=0), [np.squeeze]),
    ("x.squeeze()", s_squeeze_method, (3, 1), np.squeeze, [Method("squeeze")]),
    ("np.expand_dims(x, 1)", s_expand_dims, (4,), lambda x: np.expand_dims(x, 1), [np.expand_dims]),
    ("np.expand_dims(x, 1)", s_expand_dims, (3, 4), lambda x: np.expand_dims(x, 1), [np.expand_dims]),
    ("np.expand_dims(x, (0, -1))", s_expand_dims_tuple, (3, 4), lambda x: np.expand_dims(x, (0, -1)),
     [np.expand_dims]),
    ("np.swapaxes(x, 0, -1)", s_swapaxes, (3, 4), lambda x: np.swapaxes(x, 0, -1), [np.swapaxes]),
    ("np.swapaxes(x, 0, -1)", s_swapaxes, (2, 3, 4), lambda x: np.swapaxes(x, 0, -1), [np.swapaxes]),
    ("x.swapaxes(1, 2)", s_swapaxes_method, (2, 3, 4), lambda x: x.swapaxes(1, 2), [Method("swapaxes")]),
    ("np.moveaxis(x, 0, -1)", s_moveaxis, (2, 3, 4), lambda x: np.moveaxis(x, 0, -1), [np.moveaxis]),
    ("np.moveaxis(x, (0, 1), (2, 0))", s_moveaxis_tuple, (2, 3, 4), lambda x: np.moveaxis(x, (0, 1), (2, 0)),
     [np.moveaxis]),
    ("x.transpose()", s_transpose_method, (3, 4), lambda x: x.transpose(), [Method("transpose")]),
    ("x.transpose()", s_transpose_method, (2, 3, 4), lambda x: x.transpose(), [Method("transpose")]),
    ("x.transpose(1, 2, 0)", s_transpose_method_axes, (2, 3, 4), lambda x: x.transpose(1, 2, 0),
     [Method("transpose")]),
    ("x.transpose((2, 0, 1))", s_transpose_method_tuple, (2, 3, 4), lambda x: x.transpose((2, 0, 1)),
     [Method("transpose")]),
    ("np.broadcast_to(x, (2, 3, 4))", s_broadcast_to, (4,), lambda x: np.broadcast_to(x, (2, 3, 4)),
     [np.broadcast_to]),
    ("np.broadcast_to(x, (2, 3, 4))", s_broadcast_to, (3, 1), lambda x: np.broadcast_to(x, (2, 3, 4)),
     [np.broadcast_to]),
    ("np.broadcast_to(x, (2, 3, 4))", s_broadcast_to, (1, 3, 4), lambda x: np.broadcast_to(x, (2, 3, 4)),
     [np.broadcast_to]),
    ("np.broadcast_to(x, (2, 3, 4))", s_broadcast_to, None, lambda x: np.broadcast_to(x, (2, 3, 4)),
     [np.broadcast_to]),
    ("np.atleast_1d", s_atleast_1d, None, np.atleast_1d, [np.atleast_1d]),
    ("np.atleast_1d", s_atleast_1d, (4,), np.atleast_1d, [np.atleast_1d]),
    ("np.atleast_2d", s_atleast_2d, None, np.atleast_2d, [np.atleast_2d]),
    ("np.atleast_2d", s_atleast_2d, (4,), np.atleast_2d, [np.atleast_2d]),
    ("np.atleast_2d", s_atleast_2d, (3, 4), np.atleast_2d, [np.atleast_2d]),
    ("np.atleast_3d", s_atleast_3d, (4,), np.atleast_3d, [np.atleast_3d]),
    ("np.atleast_3d", s_atleast_3d, (3, 4), np.atleast_3d, [np.atleast_3d]),
    ("np.tile(x, 2)", s_tile, (4,), lambda x: np.tile(x, 2), [np.tile]),
    ("np.tile(x, 2)", s_tile, (3, 4), lambda x: np.tile(x, 2), [np.tile]),
    ("np.tile(x, (2, 1, 3))", s_tile_tuple, (3, 4), lambda x: np.tile(x, (2, 1, 3)), [np.tile]),
    ("np.tile(x, (2, 1, 3))", s_tile_tuple, (4,), lambda x: np.tile(x, (2, 1, 3)), [np.tile]),
    ("np.repeat(x, 2)", s_repeat, (3, 4), lambda x: np.repeat(x, 2), [np.repeat]),
    ("np.repeat(x, 3, axis=-1)", s_repeat_axis, (3, 4), lambda x: np.repeat(x, 3, axis=-1), [np.repeat]),
    ("np.repeat(x, [2, 0, 1], axis=0)", s_repeat_counts, (3, 4), lambda x: np.repeat(x, [2, 0, 1], axis=0),
     [np.repeat]),
    ("x.repeat(2, axis=0)", s_repeat_method, (3, 4), lambda x: x.repeat(2, axis=0), [Method("repeat")]),
    ("np.flip(x)", s_flip, (3, 4), np.flip, [np.flip]),
    ("np.flip(x, axis=1)", s_flip_axis, (2, 3, 4), lambda x: np.flip(x, axis=1), [np.flip]),
    ("np.flip(x, (0, -1))", s_flip_axes, (2, 3, 4), lambda x: np.flip(x, (0, -1)), [np.flip]),
    ("np.fliplr", s_fliplr, (3, 4), np.fliplr, [np.fliplr]),
    ("np.flipud", s_flipud, (3, 4), np.flipud, [np.flipud]),
    ("np.flipud", s_flipud, (4,), np.flipud, [np.flipud]),
    ("np.roll(x, 2)", s_roll, (3, 4), lambda x: np.roll(x, 2), [np.roll]),
    ("np.roll(x, -1, axis=1)", s_roll_axis, (3, 4), lambda x: np.roll(x, -1, axis=1), [np.roll]),
    ("np.roll(x, (1, 2), axis=(0, 1))", s_roll_axes, (3, 4), lambda x: np.roll(x, (1, 2), axis=(0, 1)), [np.roll]),
    ("np.pad(x, 1)", s_pad, (4,), lambda x: np.pad(x, 1), [np.pad]),
    ("np.pad(x, 1)", s_pad, (3, 4), lambda x: np.pad(x, 1), [np.pad]),
    ("np.pad(x, ((1, 0), (2, 3)))", s_pad_pairs, (3, 4), lambda x: np.pad(x, ((1, 0), (2, 3))), [np.pad]),
    ("np.pad(x, (2, 1), constant_values=5.0)", s_pad_constant, (3, 4), lambda x: np.pad(x, (2, 1)), [np.pad]),
    ("np.triu", s_triu, (3, 4), np.triu, [np.triu]),
    ("np.triu(x, 1)", s_triu_k, (4, 3), lambda x: np.triu(x, 1), [np.triu]),
    ("np.triu", s_triu, (2, 3, 3), np.triu, [np.triu]),
    ("np.tril", s_tril, (3, 4), np.tril, [np.tril]),
    ("np.tril(x, k=-1)", s_tril_k, (3, 3), lambda x: np.tril(x, k=-1), [np.tril]),
    ("np.sort", s_sort, (5,), np.sort, [np.sort]),
    ("np.sort", s_sort, (3, 4), np.sort, [np.sort]),
    ("np.sort(x, axis=0)", s_sort_axis, (3, 4), lambda x: np.sort(x, axis=0), [np.sort]),
    ("np.sort(x, axis=None)", s_sort_none, (3, 4), lambda x: np.sort(x, axis=None), [np.sort]),
    ("np.trace", s_trace, (3, 3), np.trace, [np.trace]),
    ("np.trace", s_trace, (3, 4), np.trace, [np.trace]),
    ("np.trace(x, 1)", s_trace_offset, (4, 3), lambda x: np.trace(x, 1), [np.trace]),
    ("np.trace(x, 0, 1, 2)", s_trace_axes, (2, 3, 4), lambda x: np.trace(x, 0, 1, 2), [np.trace]),
    ("x.trace(offset=-1)", s_trace_method, (3, 3), lambda x: x.trace(offset=-1), [Method("trace")]),
    ("np.diag(vector)", s_diag_vector, (4,), np.diag, [np.diag]),
    ("np.diag(vector, -1)", s_diag_vector_k, (3,), lambda x: np.diag(x, -1), [np.diag]),
    ("np.diag(matrix)", s_diag_matrix, (3, 4), np.diag, [np.diag]),
    ("np.diag(matrix, k=2)", s_diag_matrix_k, (3, 4), lambda x: np.diag(x, k=2), [np.diag]),
    ("np.diagonal", s_diagonal, (3, 4), np.diagonal, [np.diagonal]),
    ("np.diagonal(x, 1, 0, 2)", s_diagonal_axes, (3, 2, 4), lambda x: np.diagonal(x, 1, 0, 2), [np.diagonal]),
    ("x.diagonal(-1)", s_diagonal_method, (4, 3), lambda x: x.diagonal(-1), [Method("diagonal")]),
]

for _name, _fn, _s, _op, _covers in SHAPE_OPS:
    _dom = SPREAD if np.sort in _covers else REAL
    case(f"{_name}[{_sname(_s)}]", _fn, _reduce_make(_dom, _s, _op), (0,), _covers)


# ============================================================================ products


def p_outer(a, b, w): return np.sum(np.outer(a, b) * w)
def p_inner(a, b, w): return np.sum(np.inner(a, b) * w)
def p_vdot(a, b, w): return np.vdot(a, b) * w
def p_kron(a, b, w): return np.sum(np.kron(a, b) * w)
def p_tensordot(a, b, w): return np.sum(np.tensordot(a, b) * w)
def p_tensordot_int(a, b, w): return np.sum(np.tensordot(a, b, 1) * w)
def p_tensordot_axes(a, b, w): return np.sum(np.tensordot(a, b, axes=([0, 2], [1, 0])) * w)


PRODUCTS = [
    # (name, function, shape of a, shape of b, the same product in NumPy, covers)
    ("np.outer", p_outer, (3,), (4,), np.outer, [np.outer]),
    ("np.outer", p_outer, (2, 3), (4,), np.outer, [np.outer]),
    ("np.outer", p_outer, (3,), (2, 2), np.outer, [np.outer]),
    ("np.inner", p_inner, (4,), (4,), np.inner, [np.inner]),
    ("np.inner", p_inner, (3, 4), (4,), np.inner, [np.inner]),
    ("np.inner", p_inner, (3, 4), (2, 4), np.inner, [np.inner]),
    ("np.inner", p_inner, (2, 3, 4), (5, 4), np.inner, [np.inner]),
    ("np.inner", p_inner, None, (3, 4), np.inner, [np.inner]),
    ("np.vdot", p_vdot, (4,), (4,), np.vdot, [np.vdot]),
    ("np.vdot", p_vdot, (3, 4), (3, 4), np.vdot, [np.vdot]),
    ("np.vdot", p_vdot, (3, 4), (12,), np.vdot, [np.vdot]),
    ("np.kron", p_kron, (3,), (2,), np.kron, [np.kron]),
    ("np.kron", p_kron, (2, 3), (3, 2), np.kron, [np.kron]),
    ("np.kron", p_kron, (3,), (2, 2), np.kron, [np.kron]),
    ("np.kron", p_kron, (2, 2, 2), (2, 3), np.kron, [np.kron]),
    ("np.tensordot", p_tensordot, (2, 3, 4), (3, 4, 5), np.tensordot, [np.tensordot]),
    ("np.tensordot", p_tensordot, (3, 4), (3, 4), np.tensordot, [np.tensordot]),
    ("np.tensordot(a, b, 1)", p_tensordot_int, (3, 4), (4, 2), lambda a, b: np.tensordot(a, b, 1), [np.tensordot]),
    ("np.tensordot(a, b, axes=([0, 2], [1, 0]))", p_tensordot_axes, (2, 3, 4), (4, 2, 5),
     lambda a, b: np.tensordot(a, b, axes=([0, 2], [1, 0])), [np.tensordot]),
]


def _product_make(sa, sb, product):
    def make(rng):
        a, b = REAL(rng, sa), REAL(rng, sb)
        return a, b, weight(rng, out_shape(np.shape(product(a, b))))
    return make


for _name, _fn, _sa, _sb, _op, _covers in PRODUCTS:
    case(f"{_name}[{_sname(_sa)}, {_sname(_sb)}]", _fn, _product_make(_sa, _sb, _op), (0, 1), _covers)


# ---------------------------------------------------------------------------- einsum


def _einsum1(spec):
    def f(a, w):
        return np.sum(np.einsum(spec, a) * w)
    return f


def _einsum2(spec):
    def f(a, b, w):
        return np.sum(np.einsum(spec, a, b) * w)
    return f


def _einsum3(spec):
    def f(a, b, c, w):
        return np.sum(np.einsum(spec, a, b, c) * w)
    return f


EINSUMS = [
    # (subscripts, operand shapes)
    ("ij->ji", [(3, 4)]),
    ("ij", [(3, 4)]),
    ("ji", [(3, 4)]),
    ("ij->", [(3, 4)]),
    ("ij->i", [(3, 4)]),
    ("ii->i", [(3, 3)]),
    ("ii", [(3, 3)]),
    ("iij->j", [(3, 3, 2)]),
    ("...i->...", [(2, 3, 4)]),
    ("i,i->", [(4,), (4,)]),
    ("i,i", [(4,), (4,)]),
    ("i,j->ij", [(3,), (4,)]),
    ("i,j", [(3,), (4,)]),
    ("ij,jk->ik", [(3, 4), (4, 2)]),
    ("ij,jk", [(3, 4), (4, 2)]),
    ("ij,ij->ij", [(3, 4), (3, 4)]),
    ("ij,ij->", [(3, 4), (3, 4)]),
    ("ij,j->i", [(3, 4), (4,)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("...ij,...jk->...ik", [(2, 3, 4), (2, 4, 5)]),
    ("...ij,jk", [(2, 3, 4), (4, 5)]),
    ("ij,kl->ijkl", [(2, 3), (2, 2)]),
    ("ii,i->i", [(3, 3), (3,)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]),
    ("i,ij,j", [(3,), (3, 4), (4,)]),
    ("ii->", [(3, 3)]),
    ("ij,jk->ki", [(3, 4), (4, 2)]),
    ("ij, jk -> ik", [(3, 4), (4, 2)]),
    ("bi,bi->b", [(2, 3), (2, 3)]),
    ("...,...->...", [(2, 3), (2, 3)]),
    ("i...,i...->...", [(3, 2), (3, 2)]),
    ("ij,ij,ij->i", [(2, 3), (2, 3), (2, 3)]),
    ("ijk->kji", [(2, 3, 4)]),
    ("ii,jj->ij", [(3, 3), (2, 2)]),
    ("ij,jk,kl", [(2, 3), (3, 4), (4, 2)]),
    ("i,i,i->", [(3,), (3,), (3,)]),
    ("...i,...i->...", [(2, 3, 4), (4,)]),
    ("iii->i", [(2, 2, 2)]),
    ("bii->b", [(2, 3, 3)]),
    ("...ij,...jk->...ik", [(2, 1, 3, 4), (3, 4, 2)]),
    ("ij...,jk...->ik...", [(2, 3, 2), (3, 4, 2)]),
    ("ij,ij->ij", [(3, 1), (3, 4)]),
]


def e_same_operand_twice(a, w): return np.sum(np.einsum("ij,ij->i", a, a) * w)
def e_same_operand_thrice(a, w): return np.einsum("ij,jk,ki->", a, a, a) * w


case("np.einsum('ij,ij->i', a, a)[matrix]", e_same_operand_twice,
     lambda rng: (REAL(rng, (3, 4)), weight(rng, (3,))), (0,), [np.einsum])
case("np.einsum('ij,jk,ki->', a, a, a)[(3, 3)]", e_same_operand_thrice,
     lambda rng: (REAL(rng, (3, 3)), weight(rng, None)), (0,), [np.einsum])


def _einsum_make(spec, shapes):
    def make(rng):
        ops = [REAL(rng, s) for s in shapes]
        return (*ops, weight(rng, out_shape(np.shape(np.einsum(spec, *ops)))))
    return make


for _spec, _shapes in EINSUMS:
    _factory = {1: _einsum1, 2: _einsum2, 3: _einsum3}[len(_shapes)]
    case(f"np.einsum('{_spec}')[{', '.join(map(str, _shapes))}]", _factory(_spec), _einsum_make(_spec, _shapes),
         tuple(range(len(_shapes))), [np.einsum])


# ============================================================================ linear algebra


def l_inv(a, w): return np.sum(np.linalg.inv(a) * w)
def l_solve(a, b, w): return np.sum(np.linalg.solve(a, b) * w)
def l_det(a, w): return np.sum(np.linalg.det(a) * w)
def l_cholesky(x, w): return np.sum(np.linalg.cholesky(x @ x.T + 3.0 * np.eye(3)) * w)
def l_cholesky_batched(x, w): return np.sum(np.linalg.cholesky(x @ np.swapaxes(x, -1, -2) + 3.0 * np.eye(3)) * w)


for _s in [(3, 3), (2, 3, 3)]:
    case(f"np.linalg.inv[{_s}]", l_inv, lambda rng, s=_s: (WELL_CONDITIONED(rng, s), weight(rng, s)), (0,),
         [np.linalg.inv])
    case(f"np.linalg.det[{_s}]", l_det,
         lambda rng, s=_s: (WELL_CONDITIONED(rng, s), weight(rng, out_shape(s[:-2]))), (0,), [np.linalg.det])


def _solve_make(sa, sb):
    def make(rng):
        a, b = WELL_CONDITIONED(rng, sa), REAL(rng, sb)
        return a, b, weight(rng, np.linalg.solve(a, b).shape)
    return make


for _sa, _sb in [((3, 3), (3,)), ((3, 3), (3, 2)), ((2, 3, 3), (2, 3, 2)), ((2, 3, 3), (3, 2))]:
    case(f"np.linalg.solve[{_sa}, {_sb}]", l_solve, _solve_make(_sa, _sb), (0, 1), [np.linalg.solve])
case("np.linalg.cholesky(x @ x.T + 3 I)[(3, 3)]", l_cholesky,
     lambda rng: (REAL(rng, (3, 3)), weight(rng, (3, 3))), (0,), [np.linalg.cholesky])
case("np.linalg.cholesky(x @ x.T + 3 I)[(3, 4)]", l_cholesky,
     lambda rng: (REAL(rng, (3, 4)), weight(rng, (3, 3))), (0,), [np.linalg.cholesky])
case("np.linalg.cholesky batched[(2, 3, 3)]", l_cholesky_batched,
     lambda rng: (REAL(rng, (2, 3, 3)), weight(rng, (2, 3, 3))), (0,), [np.linalg.cholesky])


# ---------------------------------------------------------------------------- decompositions
# Eigenvectors and singular vectors are defined up to sign: the functions below read them
# through sign-invariant expressions (squares, u_k v_k^T), so that finite differences agree.


def SPREAD_SYMMETRIC(rng, shape):
    """Square matrices (or stacks) whose symmetric part has eigenvalues at least 0.5 apart."""
    n = shape[-1]
    q, _ = np.linalg.qr(rng.normal(size=shape))
    w = np.linspace(-2.0, 2.0, n) + rng.uniform(-0.05, 0.05, n)
    return (q * w[..., None, :]) @ np.swapaxes(q, -1, -2) + 0.1 * rng.uniform(-1.0, 1.0, shape)


def REAL_EIGENVALUES(rng, shape):
    """Square matrices with real eigenvalues at least 0.5 apart, not symmetric."""
    n = shape[-1]
    v = rng.uniform(-1.0, 1.0, shape) + 2.0 * np.eye(n)
    w = np.linspace(-2.0, 2.0, n) + rng.uniform(-0.05, 0.05, n)
    return (v * w[..., None, :]) @ np.linalg.inv(v)


def l_pinv(a, w): return np.sum(np.linalg.pinv(a) * w)
def l_eigh(a, w1, w2):
    vals, vecs = np.linalg.eigh((a + np.swapaxes(a, -1, -2)) / 2)
    return np.sum(vals * w1) + np.sum(vecs ** 2 * w2)
def l_eigh_values(a, w1, w2): return np.sum(np.linalg.eigh((a + a.T) / 2)[0] * w1)
def l_eigvalsh(a, w1, w2): return np.sum(np.linalg.eigvalsh((a + a.T) / 2) * w1)
def l_eig(a, w1, w2):
    vals, vecs = np.linalg.eig(a)
    return np.sum(vals * w1) + np.sum(vecs ** 2 * w2)
def l_eigvals(a, w1, w2): return np.sum(np.linalg.eigvals(a) * w1)
def l_svd(a, w1, w2, w3):
    u, s, vh = np.linalg.svd(a, full_matrices=False)
    return np.sum(s * w1) + np.sum(u ** 2 * w2) + np.sum(vh ** 2 * w3) + np.sum(u[:, :1] * vh[:1, :] * w2[0, 0])
def l_svd_values(a, w1, w2, w3): return np.sum(np.linalg.svd(a, compute_uv=False) * w1)
def l_svd_square(a, w1, w2, w3):
    u, s, vh = np.linalg.svd(a)
    return np.sum(s * w1) + np.sum(u ** 2 * w2) + np.sum((u[:, :1] * vh[:1, :]) * w3)
def l_qr(a, w1, w2):
    q, r = np.linalg.qr(a)
    return np.sum((q * np.sign(np.diagonal(r))) * w1) + np.sum(np.abs(r) * w2)
def l_qr_r(a, w1, w2):
    return np.sum(np.linalg.qr(a)[1] ** 2 * w2)
def l_lstsq(a, b, w):
    x, res, rank, sv = np.linalg.lstsq(a, b, rcond=None)
    return np.sum(x * w) + np.sum(res)
def l_lstsq_solution(a, b, w): return np.sum(np.linalg.lstsq(a, b, rcond=None)[0] * w)


def _decomposition_make(domain, shape, weights):
    def make(rng):
        return (domain(rng, shape), *(weight(rng, s) for s in weights))
    return make


DECOMPOSITIONS = [
    # (name, function, domain, shape, weight shapes, covers)
    ("np.linalg.pinv", l_pinv, REAL, (3, 3), [(3, 3)], [np.linalg.pinv]),
    ("np.linalg.pinv", l_pinv, REAL, (4, 2), [(2, 4)], [np.linalg.pinv]),
    ("np.linalg.pinv", l_pinv, REAL, (2, 4), [(4, 2)], [np.linalg.pinv]),
    ("np.linalg.pinv", l_pinv, REAL, (2, 4, 3), [(2, 3, 4)], [np.linalg.pinv]),
    ("np.linalg.eigh((a + a.T) / 2)", l_eigh, SPREAD_SYMMETRIC, (3, 3), [(3,), (3, 3)], [np.linalg.eigh]),
    ("np.linalg.eigh((a + a.T) / 2)", l_eigh, SPREAD_SYMMETRIC, (4, 4), [(4,), (4, 4)], [np.linalg.eigh]),
    ("np.linalg.eigh batched", l_eigh, SPREAD_SYMMETRIC, (2, 3, 3), [(2, 3), (2, 3, 3)], [np.linalg.eigh]),
    ("np.linalg.eigh(...)[0]", l_eigh_values, SPREAD_SYMMETRIC, (3, 3), [(3,), (3, 3)], [np.linalg.eigh]),
    ("np.linalg.eigvalsh", l_eigvalsh, SPREAD_SYMMETRIC, (3, 3), [(3,), (3, 3)], [np.linalg.eigvalsh]),
    ("np.linalg.eig", l_eig, REAL_EIGENVALUES, (3, 3), [(3,), (3, 3)], [np.linalg.eig]),
    ("np.linalg.eigvals", l_eigvals, REAL_EIGENVALUES, (3, 3), [(3,), (3, 3)], [np.linalg.eigvals]),
    ("np.linalg.svd(a, full_matrices=False)", l_svd, SPREAD_SYMMETRIC, (3, 3), [(3,), (3, 3), (3, 3)],
     [np.linalg.svd]),
    ("np.linalg.svd(a, compute_uv=False)", l_svd_values, REAL, (3, 4), [(3,), (3, 3), (3, 3)], [np.linalg.svd]),
    ("np.linalg.svd(a) square", l_svd_square, SPREAD_SYMMETRIC, (3, 3), [(3,), (3, 3), (3, 3)], [np.linalg.svd]),
    ("np.linalg.qr", l_qr, REAL, (3, 3), [(3, 3), (3, 3)], [np.linalg.qr]),
    ("np.linalg.qr", l_qr, REAL, (4, 3), [(4, 3), (3, 3)], [np.linalg.qr]),
    ("np.linalg.qr(a)[1]", l_qr_r, REAL, (4, 3), [(4, 3), (3, 3)], [np.linalg.qr]),
    ("np.linalg.qr", l_qr, REAL, (2, 3), [(2, 2), (2, 3)], [np.linalg.qr]),  # more columns than rows
]
for _name, _fn, _dom, _s, _ws, _covers in DECOMPOSITIONS:
    case(f"{_name}[{_s}]", _fn, _decomposition_make(_dom, _s, _ws), (0,), _covers, rtol=1e-4, atol=1e-5)


def _svd_rect_make(shape):
    def make(rng):
        m, n = shape
        k = min(m, n)
        u, _ = np.linalg.qr(rng.normal(size=(m, k)))
        v, _ = np.linalg.qr(rng.normal(size=(n, k)))
        a = (u * np.linspace(1.0, 3.0, k)) @ v.T
        return a, weight(rng, (k,)), weight(rng, (m, k)), weight(rng, (k, n))
    return make


def l_svdvals(a, w): return np.sum(np.linalg.svdvals(a) * w)


if hasattr(np.linalg, "svdvals"):
    case("np.linalg.svdvals[(3, 4)]", l_svdvals, lambda rng: (REAL(rng, (3, 4)), weight(rng, (3,))), (0,),
         [np.linalg.svdvals], rtol=1e-4, atol=1e-5)
for _s in [(4, 3), (3, 5)]:
    case(f"np.linalg.svd(a, full_matrices=False)[{_s}]", l_svd, _svd_rect_make(_s), (0,), [np.linalg.svd],
         rtol=1e-4, atol=1e-5)


def _lstsq_make(sa, sb):
    def make(rng):
        a, b = REAL(rng, sa) + np.eye(*sa), REAL(rng, sb)
        return a, b, weight(rng, np.linalg.lstsq(a, b, rcond=None)[0].shape)
    return make


for _sa, _sb in [((4, 3), (4,)), ((5, 2), (5, 3)), ((3, 3), (3,))]:
    case(f"np.linalg.lstsq solution and residuals[{_sa}, {_sb}]", l_lstsq, _lstsq_make(_sa, _sb), (0, 1),
         [np.linalg.lstsq], rtol=1e-4, atol=1e-5)
case("np.linalg.lstsq(a, b)[0][(4, 3), (4, 2)]", l_lstsq_solution, _lstsq_make((4, 3), (4, 2)), (0, 1),
     [np.linalg.lstsq], rtol=1e-4, atol=1e-5)


def l_eig_complex(a): return np.sum(np.linalg.eig(a)[0])


def test_eig_with_complex_eigenvalues_is_refused() -> None:
    rotation = np.array([[0.0, -1.0], [1.0, 0.0]])
    with pytest.raises(symdiff.SymdiffError, match="real"):
        symdiff.grad(l_eig_complex)(rotation)


MATRIX_NORMS = [
    # (shape, ord, axis, keepdims)
    ((3, 4), "nuc", None, False), ((3, 4), 2, None, False), ((3, 4), -2, None, False),
    ((3, 4), 1, None, False), ((3, 4), -1, None, False), ((3, 4), np.inf, None, False),
    ((3, 4), -np.inf, None, False), ((4, 3), 2, None, True), ((2, 3, 4), "nuc", (1, 2), False),
    ((2, 3, 4), 1, (0, 2), True), ((2, 3, 4), -2, (-1, 0), False), ((2, 3, 4), np.inf, (1, 2), False),
]


def SPREAD_MATRIX(rng, shape):
    """Distinct singular values, column and row sums: matrix norms are differentiable there."""
    x = SPREAD_NONZERO(rng, shape)
    return x * (1.0 + np.arange(shape[-1])) * (1.0 + 0.3 * np.arange(shape[-2]))[:, None]


for _s, _ord, _axis, _keep in MATRIX_NORMS:
    _ref = (lambda o, a, k: lambda x: np.linalg.norm(x, ord=o, axis=a, keepdims=k))(_ord, _axis, _keep)
    case(f"np.linalg.norm(x, ord={_ord}, axis={_axis}, keepdims={_keep}) matrix norm[{_sname(_s)}]",
         _fn_norm(_ord, _axis, _keep), _reduce_make(SPREAD_MATRIX, _s, _ref), (0,), [np.linalg.norm],
         rtol=1e-4, atol=1e-5)


# ============================================================================ more NumPy functions
# f(x, w) = sum(op(x) * w), as for the shape ops above.


def m_diff(x, w): return np.sum(np.diff(x) * w)
def m_diff_n(x, w): return np.sum(np.diff(x, n=2) * w)
def m_diff_axis(x, w): return np.sum(np.diff(x, axis=0) * w)
def m_diff_n_axis(x, w): return np.sum(np.diff(x, 2, 1) * w)
def m_take(x, w): return np.sum(np.take(x, [0, 2, 2, 1]) * w)
def m_take_axis(x, w): return np.sum(np.take(x, [3, 0, 3], axis=1) * w)
def m_take_axis0(x, w): return np.sum(np.take(x, [1, 1], axis=0) * w)
def m_take_along_axis(x, w): return np.sum(np.take_along_axis(x, np.argsort(x, axis=1), axis=1) * w)
def m_take_along_axis0(x, w): return np.sum(np.take_along_axis(x, np.array([[0, 2, 1, 0]]), axis=0) * w)
def m_median(x, w): return np.median(x) * w
def m_median_axis(x, w): return np.sum(np.median(x, axis=1) * w)
def m_median_keepdims(x, w): return np.sum(np.median(x, axis=0, keepdims=True) * w)
def m_percentile(x, w): return np.percentile(x, 30) * w
def m_percentile_list(x, w): return np.sum(np.percentile(x, [10, 50, 85], axis=-1) * w)
def m_quantile(x, w): return np.sum(np.quantile(x, 0.3, axis=(0, 2)) * w)
def m_quantile_list(x, w): return np.sum(np.quantile(x, [0.25, 0.9]) * w)
def m_append(x, w): return np.sum(np.append(x, x[:1] * 2.0) * w)
def m_append_axis(x, w): return np.sum(np.append(x, x[:1] * 2.0, axis=0) * w)
def m_rot90(x, w): return np.sum(np.rot90(x) * w)
def m_rot90_k(x, w): return np.sum(np.rot90(x, 3, axes=(1, 2)) * w)
def m_rot90_neg(x, w): return np.sum(np.rot90(x, -2) * w)
def m_rollaxis(x, w): return np.sum(np.rollaxis(x, 2) * w)
def m_rollaxis_start(x, w): return np.sum(np.rollaxis(x, 0, 3) * w)
def m_rollaxis_neg(x, w): return np.sum(np.rollaxis(x, -1, 1) * w)
def m_nan_to_num(x, w): return np.sum(np.nan_to_num(x) * w)
def m_nansum(x, w): return np.nansum(x) * w
def m_nansum_axis(x, w): return np.sum(np.nansum(x, axis=1) * w)
def m_nanmean(x, w): return np.nanmean(x) * w
def m_nanmean_axis(x, w): return np.sum(np.nanmean(x, axis=0, keepdims=True) * w)
def m_partition(x, w): return np.sum(np.partition(x, 2) * w)
def m_partition_axis(x, w): return np.sum(np.partition(x, (0, 2), axis=0) * w)
def m_cumprod_zeros(x, w): return np.sum(np.cumprod(x * np.array([1.0, 0.0, 1.0, 1.0])) * w)
def m_cumprod_zeros_axis(x, w): return np.sum(np.cumprod(np.where(x > 1.0, 0.0, x), axis=1) * w)
def m_real(x, w): return np.sum(np.real(x) * w)
def m_imag(x, w): return np.sum((np.imag(x) + x) * w)
def m_conj(x, w): return np.sum(np.conj(x) * w)
def m_conj_method(x, w): return np.sum(x.conj() * w)
def m_angle(x, w): return np.sum((np.angle(x) + x) * w)
def m_real_attr(x, w): return np.sum((x.real + x.imag) * w)
def m_gradient(x, w): return np.sum(np.gradient(x) * w)
def m_gradient_spacing(x, w): return np.sum(np.gradient(x, 0.5) * w)
def m_gradient_axis(x, w): return np.sum(np.gradient(x, axis=1) * w)
def m_gradient_edge(x, w): return np.sum(np.gradient(x, 2.0, edge_order=2) * w)


MORE_OPS = [
    # (name, function, shape of x, the same op in NumPy, covers, domain)
    ("np.diff", m_diff, (5,), np.diff, [np.diff], REAL),
    ("np.diff", m_diff, (3, 4), np.diff, [np.diff], REAL),
    ("np.diff(x, n=2)", m_diff_n, (5,), lambda x: np.diff(x, n=2), [np.diff], REAL),
    ("np.diff(x, axis=0)", m_diff_axis, (3, 4), lambda x: np.diff(x, axis=0), [np.diff], REAL),
    ("np.diff(x, 2, 1)", m_diff_n_axis, (2, 3, 4), lambda x: np.diff(x, 2, 1), [np.diff], REAL),
    ("np.take(x, [0, 2, 2, 1])", m_take, (3, 4), lambda x: np.take(x, [0, 2, 2, 1]), [np.take], REAL),
    ("np.take(x, [3, 0, 3], axis=1)", m_take_axis, (3, 4), lambda x: np.take(x, [3, 0, 3], axis=1), [np.take], REAL),
    ("np.take(x, [1, 1], axis=0)", m_take_axis0, (4,), lambda x: np.take(x, [1, 1], axis=0), [np.take], REAL),
    ("np.take_along_axis(x, argsort, axis=1)", m_take_along_axis, (3, 4), lambda x: np.sort(x, axis=1),
     [np.take_along_axis], SPREAD),
    ("np.take_along_axis(x, [[0, 2, 1, 0]], axis=0)", m_take_along_axis0, (3, 4),
     lambda x: np.take_along_axis(x, np.array([[0, 2, 1, 0]]), axis=0), [np.take_along_axis], REAL),
    ("np.median", m_median, (5,), None, [np.median], SPREAD),
    ("np.median", m_median, (3, 4), None, [np.median], SPREAD),
    ("np.median(x, axis=1)", m_median_axis, (3, 4), lambda x: np.median(x, axis=1), [np.median], SPREAD),
    ("np.median(x, axis=0, keepdims=True)", m_median_keepdims, (3, 4),
     lambda x: np.median(x, axis=0, keepdims=True), [np.median], SPREAD),
    ("np.percentile(x, 30)", m_percentile, (3, 4), None, [np.percentile], SPREAD),
    ("np.percentile(x, [10, 50, 85], axis=-1)", m_percentile_list, (3, 4),
     lambda x: np.percentile(x, [10, 50, 85], axis=-1), [np.percentile], SPREAD),
    ("np.quantile(x, 0.3, axis=(0, 2))", m_quantile, (2, 3, 4), lambda x: np.quantile(x, 0.3, axis=(0, 2)),
     [np.quantile], SPREAD),
    ("np.quantile(x, [0.25, 0.9])", m_quantile_list, (2, 3), lambda x: np.quantile(x, [0.25, 0.9]), [np.quantile],
     SPREAD),
    ("np.append(x, 2 x[:1])", m_append, (3, 4), lambda x: np.append(x, x[:1]), [np.append], REAL),
    ("np.append(x, 2 x[:1], axis=0)", m_append_axis, (3, 4), lambda x: np.append(x, x[:1], axis=0), [np.append],
     REAL),
    ("np.rot90", m_rot90, (3, 4), np.rot90, [np.rot90], REAL),
    ("np.rot90(x, 3, axes=(1, 2))", m_rot90_k, (2, 3, 4), lambda x: np.rot90(x, 3, axes=(1, 2)), [np.rot90], REAL),
    ("np.rot90(x, -2)", m_rot90_neg, (3, 4), lambda x: np.rot90(x, -2), [np.rot90], REAL),
    ("np.rollaxis(x, 2)", m_rollaxis, (2, 3, 4), lambda x: np.rollaxis(x, 2), [np.rollaxis], REAL),
    ("np.rollaxis(x, 0, 3)", m_rollaxis_start, (2, 3, 4), lambda x: np.rollaxis(x, 0, 3), [np.rollaxis], REAL),
    ("np.rollaxis(x, -1, 1)", m_rollaxis_neg, (2, 3, 4), lambda x: np.rollaxis(x, -1, 1), [np.rollaxis], REAL),
    ("np.nan_to_num", m_nan_to_num, (3, 4), np.nan_to_num, [np.nan_to_num], REAL),
    ("np.nansum", m_nansum, (3, 4), None, [np.nansum], REAL),
    ("np.nansum(x, axis=1)", m_nansum_axis, (3, 4), lambda x: np.nansum(x, axis=1), [np.nansum], REAL),
    ("np.nanmean", m_nanmean, (3, 4), None, [np.nanmean], REAL),
    ("np.nanmean(x, axis=0, keepdims=True)", m_nanmean_axis, (3, 4), lambda x: np.nanmean(x, axis=0, keepdims=True),
     [np.nanmean], REAL),
    ("np.partition(x, 2)", m_partition, (5,), lambda x: np.partition(x, 2), [np.partition], SPREAD),
    ("np.partition(x, 2)", m_partition, (3, 5), lambda x: np.partition(x, 2), [np.partition], SPREAD),
    ("np.partition(x, (0, 2), axis=0)", m_partition_axis, (4, 3), lambda x: np.partition(x, (0, 2), axis=0),
     [np.partition], SPREAD),
    ("np.cumprod with a zero", m_cumprod_zeros, (4,), np.cumprod, [np.cumprod], SPREAD_NONZERO),
    ("np.cumprod with zeros, axis=1", m_cumprod_zeros_axis, (3, 4), lambda x: np.cumprod(x, axis=1), [np.cumprod],
     SPREAD_NONZERO),
    ("np.real", m_real, (3, 4), np.real, [np.real], REAL),
    ("np.imag(x) + x", m_imag, (3, 4), np.real, [np.imag], REAL),
    ("np.conj", m_conj, (3, 4), np.real, [np.conj], REAL),
    ("x.conj()", m_conj_method, (3, 4), np.real, [Method("conj")], REAL),
    ("np.angle(x) + x", m_angle, (3, 4), np.real, [np.angle], NONZERO),
    ("x.real + x.imag", m_real_attr, (3, 4), np.real, [GetAttr("real"), GetAttr("imag")], REAL),
    ("np.gradient", m_gradient, (5,), np.gradient, [np.gradient], REAL),
    ("np.gradient(x, 0.5)", m_gradient_spacing, (5,), np.gradient, [np.gradient], REAL),
    ("np.gradient(x, axis=1)", m_gradient_axis, (3, 4), lambda x: np.gradient(x, axis=1), [np.gradient], REAL),
    ("np.gradient(x, 2.0, edge_order=2)", m_gradient_edge, (6,), np.gradient, [np.gradient], REAL),
]

for _name, _fn, _s, _op, _covers, _dom in MORE_OPS:
    _make = _reduce_make(_dom, _s, _op) if _op is not None else \
        (lambda dom, s: lambda rng: (dom(rng, s), weight(rng, None)))(_dom, _s)
    case(f"{_name}[{_sname(_s)}]", _fn, _make, (0,), _covers)


def test_cumprod_with_zeros_is_exact() -> None:
    x = np.array([2.0, 0.0, 3.0, 0.0, 5.0])
    g = symdiff.grad(_fn_plain(np.cumprod))(x, np.ones(5))
    np.testing.assert_allclose(g, numerical_grad(_fn_plain(np.cumprod), [x, np.ones(5)], 0), atol=1e-8)
    np.testing.assert_array_equal(g, [1.0, 2.0 + 6.0, 0.0, 0.0, 0.0])


def test_nansum_nanmean_give_nan_elements_no_gradient() -> None:
    x = np.array([1.0, np.nan, 3.0, 4.0])
    np.testing.assert_array_equal(symdiff.grad(m_nansum)(x, 2.0), [2.0, 0.0, 2.0, 2.0])
    np.testing.assert_allclose(symdiff.grad(m_nanmean)(x, 3.0), [1.0, 0.0, 1.0, 1.0])


def test_nan_to_num_passes_finite_elements_only() -> None:
    x = np.array([1.0, np.nan, np.inf, -np.inf, -2.0])
    np.testing.assert_array_equal(symdiff.grad(m_nan_to_num)(x, np.ones(5)), [1.0, 0.0, 0.0, 0.0, 1.0])


def m_mod(x, y, w): return np.sum(np.mod(x, y) * w)
def m_remainder(x, y, w): return np.sum(np.remainder(x, y) * w)
def m_fmod(x, y, w): return np.sum(np.fmod(x, y) * w)
def m_percent(x, y, w): return np.sum((x % y) * w)


def AWAY_MULTIPLES(rng, shape):
    """x with x / y away from integers for y in [1.1, 1.9] (mod jumps there)."""
    n = _n(shape)
    return _shape(rng.choice([-1.0, 1.0], n) * (rng.integers(0, 3, n) * 1.5 + rng.uniform(0.3, 0.5, n)), shape)


def MODULI(rng, shape):
    n = _n(shape)
    return _shape(rng.choice([-1.0, 1.0], n) * rng.uniform(1.45, 1.55, n), shape)


for _name, _fn, _covers in (("np.mod", m_mod, [np.mod]), ("np.remainder", m_remainder, [np.remainder]),
                            ("np.fmod", m_fmod, [np.fmod]), ("x % y arrays", m_percent, [])):
    for _label, _sx, _sy in (("vector-vector", (4,), (4,)), ("matrix-scalar", (3, 4), None),
                             ("matrix-row(n,)", (3, 4), (4,))):
        case(f"{_name}[{_label}]", _fn, _binary_make(AWAY_MULTIPLES, MODULI, _sx, _sy), (0, 1), _covers)


def j_cross(a, b, w): return np.sum(np.cross(a, b) * w)
def j_select(x, y, w): return np.sum(np.select([x > 0.5, x < -0.5], [x * y, 2.0 * y], x + y) * w)
def j_interp(x, fp, w): return np.sum(np.interp(x, np.array([-2.0, -0.5, 0.4, 2.0]), fp) * w)
def j_convolve(a, v, w): return np.sum(np.convolve(a, v) * w)
def j_convolve_same(a, v, w): return np.sum(np.convolve(a, v, mode="same") * w)
def j_convolve_valid(a, v, w): return np.sum(np.convolve(a, v, "valid") * w)
def j_polyval(p, x, w): return np.sum(np.polyval(p, x) * w)
def j_linspace(a, b, w): return np.sum(np.linspace(a, b, 5) * w)
def j_linspace_open(a, b, w): return np.sum(np.linspace(a, b, num=4, endpoint=False) * w)


def _pair_make(da, sa, db, sb, op):
    def make(rng):
        a, b = da(rng, sa), db(rng, sb)
        return a, b, weight(rng, out_shape(np.shape(op(a, b))))
    return make


def INTERP_X(rng, shape):
    """Inside and outside the knots -2, -0.5, 0.4, 2 and away from them (the kinks)."""
    n = _n(shape)
    return _shape(rng.choice([-2.6, -1.2, -0.1, 1.1, 2.5], n) + rng.uniform(-0.1, 0.1, n), shape)


PAIRS_MORE = [
    # (name, function, (domain, shape) of each argument, the op in NumPy, covers)
    ("np.cross", j_cross, REAL, (3,), REAL, (3,), np.cross, [np.cross]),
    ("np.cross", j_cross, REAL, (4, 3), REAL, (3,), np.cross, [np.cross]),
    ("np.cross", j_cross, REAL, (2, 1, 3), REAL, (4, 3), np.cross, [np.cross]),
    ("np.select", j_select, NONZERO, (3, 4), REAL, (4,),
     lambda x, y: np.select([x > 0.5, x < -0.5], [x * y, 2.0 * y], x + y), [np.select]),
    ("np.interp", j_interp, INTERP_X, (6,), REAL, (4,), lambda x, fp: np.interp(x, [-2.0, -0.5, 0.4, 2.0], fp),
     [np.interp]),
    ("np.interp", j_interp, INTERP_X, (2, 3), REAL, (4,), lambda x, fp: np.interp(x, [-2.0, -0.5, 0.4, 2.0], fp),
     [np.interp]),
    ("np.convolve", j_convolve, REAL, (5,), REAL, (3,), np.convolve, [np.convolve]),
    ("np.convolve", j_convolve, REAL, (2,), REAL, (4,), np.convolve, [np.convolve]),
    ("np.convolve same", j_convolve_same, REAL, (5,), REAL, (3,), lambda a, v: np.convolve(a, v, "same"),
     [np.convolve]),
    ("np.convolve same", j_convolve_same, REAL, (5,), REAL, (4,), lambda a, v: np.convolve(a, v, "same"),
     [np.convolve]),
    ("np.convolve same", j_convolve_same, REAL, (3,), REAL, (6,), lambda a, v: np.convolve(a, v, "same"),
     [np.convolve]),
    ("np.convolve valid", j_convolve_valid, REAL, (6,), REAL, (3,), lambda a, v: np.convolve(a, v, "valid"),
     [np.convolve]),
    ("np.convolve valid", j_convolve_valid, REAL, (2,), REAL, (5,), lambda a, v: np.convolve(a, v, "valid"),
     [np.convolve]),
    ("np.polyval", j_polyval, REAL, (4,), REAL, (3, 2), np.polyval, [np.polyval]),
    ("np.polyval", j_polyval, REAL, (3,), REAL, None, np.polyval, [np.polyval]),
    ("np.linspace(a, b, 5)", j_linspace, REAL, None, REAL, None, lambda a, b: np.linspace(a, b, 5), [np.linspace]),
    ("np.linspace(a, b, 5)", j_linspace, REAL, (3,), REAL, (3,), lambda a, b: np.linspace(a, b, 5), [np.linspace]),
    ("np.linspace(a, b, 5)", j_linspace, REAL, (2, 3), REAL, None, lambda a, b: np.linspace(a, b, 5),
     [np.linspace]),
    ("np.linspace(a, b, num=4, endpoint=False)", j_linspace_open, REAL, None, REAL, (2,),
     lambda a, b: np.linspace(a, b, num=4, endpoint=False), [np.linspace]),
]
def j_r(a, b, w): return np.sum(np.r_[a, b] * w)
def j_r_mixed(a, b, w): return np.sum(np.r_[a, 2.0, b, 0:2] * w)
def j_c(a, b, w): return np.sum(np.c_[a, b] * w)


PAIRS_MORE += [
    ("np.r_[a, b]", j_r, REAL, (2,), REAL, (3,), lambda a, b: np.r_[a, b], [operator.getitem]),
    ("np.r_[a, b]", j_r, REAL, None, REAL, (3,), lambda a, b: np.r_[a, b], [operator.getitem]),
    ("np.r_[a, b]", j_r, REAL, (2, 3), REAL, (1, 3), lambda a, b: np.r_[a, b], [operator.getitem]),
    ("np.r_[a, 2.0, b, 0:2]", j_r_mixed, REAL, (2,), REAL, None, lambda a, b: np.r_[a, 2.0, b, 0:2],
     [operator.getitem]),
    ("np.c_[a, b]", j_c, REAL, (3,), REAL, (3,), lambda a, b: np.c_[a, b], [operator.getitem]),
    ("np.c_[a, b]", j_c, REAL, (3, 2), REAL, (3,), lambda a, b: np.c_[a, b], [operator.getitem]),
]
for _name, _fn, _da, _sa, _db, _sb, _op, _covers in PAIRS_MORE:
    case(f"{_name}[{_sname(_sa)}, {_sname(_sb)}]", _fn, _pair_make(_da, _sa, _db, _sb, _op), (0, 1), _covers)


def x_svd_full_rectangular(a): return np.sum(np.linalg.svd(a)[0])
def x_lstsq_singular_values(a, b): return np.sum(np.linalg.lstsq(a, b, rcond=None)[3])
def x_gradient_matrix(x): return np.sum(np.gradient(x)[0])
def x_diff_prepend(x): return np.sum(np.diff(x, prepend=0.0))
def x_quantile_method(x): return np.quantile(x, 0.5, method="nearest")
def x_interp_left(x, fp): return np.sum(np.interp(x, np.array([0.0, 1.0]), fp, left=0.0))
def x_qr_complete(a): return np.sum(np.linalg.qr(a, mode="complete")[0])
def x_r_directive(a, b): return np.sum(np.r_["0,2", a, b])
def x_take_wrap(x): return np.sum(np.take(x, [0, 5], mode="wrap"))


REFUSED = [
    # (function, arguments, argnums, words the error must contain)
    (x_svd_full_rectangular, (np.arange(6.0).reshape(3, 2),), 0, "full_matrices=False"),
    (x_lstsq_singular_values, (np.eye(3) + 0.5, np.ones(3)), 0, "residuals"),
    (x_gradient_matrix, (np.arange(6.0).reshape(2, 3),), 0, "np.gradient"),
    (x_diff_prepend, (np.arange(4.0),), 0, "prepend"),
    (x_quantile_method, (np.arange(4.0),), 0, "linear"),
    (x_interp_left, (np.array([0.5]), np.array([1.0, 2.0])), (0, 1), "left="),
    (x_qr_complete, (np.eye(3),), 0, "mode='complete'"),
    (x_r_directive, (np.ones(2), np.ones(2)), (0, 1), "string directive"),
    (x_take_wrap, (np.ones(3),), 0, "mode="),
]


@pytest.mark.parametrize("fn, args, argnums, words", REFUSED, ids=[r[0].__name__ for r in REFUSED])
def test_unsupported_uses_of_new_rules_are_refused_with_a_symdiff_error(fn, args, argnums, words) -> None:
    with pytest.raises(symdiff.SymdiffError, match=re.escape(words)):
        symdiff.grad(fn, argnums=argnums)(*args)


def v_std_one(x): return np.std(x)
def v_var_one(x): return np.var(x)
def v_std_rows(x, w): return np.sum(np.std(x, axis=1) * w)


def test_std_and_var_of_one_value_have_zero_gradient() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert symdiff.grad(v_std_one)(2.5) == 0.0
        assert symdiff.grad(v_var_one)(2.5) == 0.0
        np.testing.assert_array_equal(symdiff.grad(v_std_one)(np.array([2.5])), [0.0])
        np.testing.assert_array_equal(symdiff.grad(v_std_rows)(np.array([[1.0], [2.0]]), np.ones(2)), [[0.0], [0.0]])


for _s in [None, (1,), (1, 1)]:
    case(f"np.std(x) of one value[{_sname(_s)}]", _fn_plain(np.std), _reduce_make(REAL, _s, np.std), (0,), [np.std])


# ============================================================================ builtins, keywords, -1, powers at 0


def b_max3(x, y, z, w): return max(x, y, z) * w
def b_min3(x, y, z, w): return min(x, y, z) * w
def b_max4(x, y, z, t, w): return max(x, y, z, t) * w
def b_min_max3(x, y, z, w): return (max(z, x, y) - 2.0 * min(y, z, x)) * w


def _distinct_floats(n):
    """``n`` floats at least 0.2 apart (max/min have kinks where two are equal), in random order."""
    def make(rng):
        values = rng.permutation(np.linspace(-1.5, 1.5, n)) + rng.uniform(-0.05, 0.05, n)
        return (*(float(v) for v in values), float(weight(rng, None)))
    return make


for _seed in range(3):
    case(f"max(x, y, z)[draw {_seed}]", b_max3, _distinct_floats(3), (0, 1, 2), [max])
    case(f"min(x, y, z)[draw {_seed}]", b_min3, _distinct_floats(3), (0, 1, 2), [min])
    case(f"max(x, y, z, t)[draw {_seed}]", b_max4, _distinct_floats(4), (0, 1, 2, 3), [max])
    case(f"max(z, x, y) - 2 min(y, z, x)[draw {_seed}]", b_min_max3, _distinct_floats(3), (0, 1, 2), [max, min])


def test_three_argument_max_min_send_the_gradient_to_the_first_winner() -> None:
    assert symdiff.grad(b_max3, argnums=(0, 1, 2))(1.0, 3.0, 2.0, 1.0) == (0.0, 1.0, 0.0)
    assert symdiff.grad(b_min3, argnums=(0, 1, 2))(1.0, 3.0, -2.0, 2.0) == (0.0, 0.0, 2.0)
    assert symdiff.grad(b_max3, argnums=(0, 1, 2))(3.0, 1.0, 3.0, 1.0) == (1.0, 0.0, 0.0)  # a tie: the first
    assert symdiff.grad(b_min3, argnums=(0, 1, 2))(2.0, 1.0, 1.0, 1.0) == (0.0, 1.0, 0.0)
    assert symdiff.grad(b_max4, argnums=(0, 1, 2, 3))(0.0, 5.0, 5.0, 5.0, 1.0) == (0.0, 1.0, 0.0, 0.0)


def b_max_key(x, y, z): return max(x, y, z, key=abs)


def test_max_with_key_is_refused_with_a_located_error() -> None:
    with pytest.raises(symdiff.SymdiffError, match="key"):
        symdiff.grad(b_max_key, argnums=(0, 1, 2))(1.0, -3.0, 2.0)


def s_swapaxes_keywords(x, w): return np.sum(np.swapaxes(x, axis1=0, axis2=-1) * w)
def s_pad_one_width(x, w): return np.sum(np.pad(x, (3,)) * w)
def s_pad_int_width(x, w): return np.sum(np.pad(x, 3) * w)


KEYWORD_SHAPE_OPS = [
    ("np.swapaxes(x, axis1=0, axis2=-1)", s_swapaxes_keywords, (3, 4), lambda x: np.swapaxes(x, 0, -1),
     [np.swapaxes]),
    ("np.swapaxes(x, axis1=0, axis2=-1)", s_swapaxes_keywords, (2, 3, 4), lambda x: np.swapaxes(x, 0, -1),
     [np.swapaxes]),
    ("np.pad(x, 3)", s_pad_int_width, (4,), lambda x: np.pad(x, 3), [np.pad]),
    ("np.pad(x, 3)", s_pad_int_width, (3, 4), lambda x: np.pad(x, 3), [np.pad]),
    ("np.pad(x, (3,))", s_pad_one_width, (3, 4), lambda x: np.pad(x, (3,)), [np.pad]),
]
for _name, _fn, _s, _op, _covers in KEYWORD_SHAPE_OPS:
    case(f"{_name}[{_sname(_s)}]", _fn, _reduce_make(REAL, _s, _op), (0,), _covers)


def test_swapaxes_with_keyword_axes() -> None:
    x, w = np.arange(6.0).reshape(2, 3), np.arange(6.0).reshape(3, 2)
    np.testing.assert_array_equal(symdiff.grad(s_swapaxes_keywords)(x, w), w.T)


def test_pad_with_one_width_for_every_axis() -> None:
    x = np.ones((2, 3))
    w = np.arange(72.0).reshape(8, 9)
    np.testing.assert_array_equal(symdiff.grad(s_pad_one_width)(x, w), w[3:-3, 3:-3])


def r_mean_reshape_minus1(x): return np.mean(np.reshape(x, (3, -1)))
def r_mean_reshape_method_minus1(x): return np.mean(x.reshape(3, -1))
def r_sum_reshape_minus1(x, w): return np.sum(np.reshape(x, (-1,)) * w)
def r_sum_reshape_rows_minus1(x, w): return np.sum(np.reshape(x, (x.shape[0], -1)).sum(axis=0) * w)
def r_spread_reshape_minus1(x): return np.sum(np.reshape(x, (-1, 2)) * 3.0)


RESHAPES = [
    ("np.mean(np.reshape(x, (3, -1)))", r_mean_reshape_minus1, (3, 4), None, [np.reshape, np.mean]),
    ("np.mean(np.reshape(x, (3, -1)))", r_mean_reshape_minus1, (2, 3, 4), None, [np.reshape, np.mean]),
    ("np.mean(x.reshape(3, -1))", r_mean_reshape_method_minus1, (3, 4), None, [Method("reshape"), np.mean]),
    ("np.reshape(x, (-1,))", r_sum_reshape_minus1, (3, 4), (12,), [np.reshape]),
    ("np.reshape(x, (x.shape[0], -1)).sum(axis=0)", r_sum_reshape_rows_minus1, (3, 4), (4,), [np.reshape]),
    ("np.reshape(x, (x.shape[0], -1)).sum(axis=0)", r_sum_reshape_rows_minus1, (3, 2, 2), (4,), [np.reshape]),
    ("np.sum(np.reshape(x, (-1, 2)) * 3.0)", r_spread_reshape_minus1, (3, 4), None, [np.reshape]),
]


def _reshape_make(sx, sw):
    def make(rng):
        x = REAL(rng, sx)
        return (x,) if sw is None else (x, weight(rng, sw))
    return make


for _name, _fn, _sx, _sw, _covers in RESHAPES:
    case(f"{_name}[{_sname(_sx)}]", _fn, _reshape_make(_sx, _sw), (0,), _covers)


def test_reshape_with_minus_one_spreads_to_the_actual_shape() -> None:
    for fn in (r_mean_reshape_minus1, r_mean_reshape_method_minus1):
        g = symdiff.grad(fn)(np.ones((3, 4)))
        np.testing.assert_allclose(g, np.full((3, 4), 1 / 12))
        assert "(3, -1)," not in symdiff.grad(fn).source  # no np.full((3, -1), ...)
    np.testing.assert_array_equal(symdiff.grad(r_spread_reshape_minus1)(np.ones((2, 3))), np.full((2, 3), 3.0))


def j_stack(a, b, w): return np.sum(np.stack((a, b)) * w)
def j_stack_squared(a, b): return np.sum(np.stack((a, b)) ** 2)
def j_concatenate(a, b, w): return np.sum(np.concatenate((a, b)) * w)
def j_vstack(a, b, w): return np.sum(np.vstack((a, b)) * w)
def j_hstack(a, b, w): return np.sum(np.hstack([a, b]) * w)
def j_column_stack(a, b, w): return np.sum(np.column_stack((a, b)) * w)


JOINS_OF_ARGUMENTS = [
    ("np.stack((a, b))", j_stack, np.stack), ("np.concatenate((a, b))", j_concatenate, np.concatenate),
    ("np.vstack((a, b))", j_vstack, np.vstack), ("np.hstack([a, b])", j_hstack, np.hstack),
    ("np.column_stack((a, b))", j_column_stack, np.column_stack),
]


def _join_make(join):
    def make(rng):
        a, b = REAL(rng, (4,)), REAL(rng, (4,))
        return a, b, weight(rng, join((a, b)).shape)
    return make


for _name, _fn, _join in JOINS_OF_ARGUMENTS:
    case(f"{_name} of the differentiated arguments[vector]", _fn, _join_make(_join), (0, 1), [_join])
case("np.sum(np.stack((a, b)) ** 2) of the differentiated arguments[matrix]", j_stack_squared,
     lambda rng: (REAL(rng, (3, 4)), REAL(rng, (3, 4))), (0, 1), [np.stack])


def c_stack(ab, w): return np.sum(np.stack(ab) * w)
def c_concatenate(ab, w): return np.sum(np.concatenate(ab) * w)
def c_vstack(ab, w): return np.sum(np.vstack(ab) * w)
def c_hstack(ab, w): return np.sum(np.hstack(ab) * w)
def c_column_stack(ab, w): return np.sum(np.column_stack(ab) * w)
def c_array(ab, w): return np.sum(np.array(ab) * w)
def c_sum(ab, w): return np.sum(sum(ab) * w[0])
def c_nested(abc, w): return np.sum(np.stack(abc[0]) * w) * abc[1]


CONTAINER_JOINS = [(c_stack, np.stack), (c_concatenate, np.concatenate), (c_vstack, np.vstack), (c_hstack, np.hstack),
                   (c_column_stack, np.column_stack), (c_array, np.array), (c_sum, lambda ab: np.stack(ab))]


def _leaves_grad(fn, container, w):
    """Finite differences with respect to each array of a list/tuple argument."""
    def at(i):
        def f(x):
            items = list(container)
            items[i] = x
            return fn(type(container)(items), w)
        return f
    return [numerical_grad(at(i), [item], 0) for i, item in enumerate(container)]


@pytest.mark.parametrize("fn, join", CONTAINER_JOINS, ids=[c[0].__name__ for c in CONTAINER_JOINS])
@pytest.mark.parametrize("kind", [tuple, list])
def test_joining_a_differentiated_list_or_tuple_argument_passes_the_gradient_to_each_item(fn, join, kind) -> None:
    rng = np.random.default_rng(7)
    ab = kind([REAL(rng, (4,)), REAL(rng, (4,))])
    w = weight(rng, join(ab).shape)
    got = symdiff.grad(fn)(ab, w)
    assert type(got) is kind and len(got) == 2
    for g, want in zip(got, _leaves_grad(fn, ab, w)):
        np.testing.assert_allclose(g, want, rtol=1e-6, atol=1e-8)


def test_stacking_a_tuple_inside_a_differentiated_argument() -> None:
    rng = np.random.default_rng(8)
    pair = (REAL(rng, (3,)), REAL(rng, (3,)))
    w = weight(rng, (2, 3))
    (ga, gb), gs = symdiff.grad(c_nested)((pair, 1.5), w)
    np.testing.assert_allclose(ga, 1.5 * w[0])
    np.testing.assert_allclose(gb, 1.5 * w[1])
    np.testing.assert_allclose(gs, np.sum(np.stack(pair) * w))


def p_pow(x, y): return x ** y
def p_pow_weighted(x, y, w): return np.sum(x ** y * w)
def p_np_power(x, y, w): return np.sum(np.power(x, y) * w)
def p_pow_half(x): return x ** 0.5 + x
def p_pow_half_array(x, w): return np.sum(x ** 0.5 * w)
def p_pow_zero(x, y): return x ** y + 2.0 * x
def p_math_pow(x, y): return math.pow(x, y)


def test_power_of_zero_base_has_finite_gradient_where_the_function_is_smooth() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert symdiff.grad(p_pow, argnums=(0, 1))(0.0, 2.5) == (0.0, 0.0)
        assert symdiff.grad(p_pow, argnums=(0, 1))(0.0, 1.0) == (1.0, 0.0)
        assert symdiff.grad(p_pow, argnums=1)(0.0, 0.5) == 0.0
        assert symdiff.grad(p_pow_zero, argnums=(0, 1))(0.0, 0.0) == (2.0, 0.0)  # x ** 0 is 1 for every x
        assert symdiff.grad(p_math_pow, argnums=(0, 1))(0.0, 2.5) == (0.0, 0.0)
        x = np.array([0.0, 0.0, 0.0, 1.5])
        y = np.array([2.5, 1.0, 0.0, 0.5])
        w = np.array([1.0, 2.0, 3.0, 4.0])
        for fn in (p_pow_weighted, p_np_power):
            gx, gy = symdiff.grad(fn, argnums=(0, 1))(x, y, w)
            np.testing.assert_array_equal(gx[:3], [0.0, 2.0, 0.0])
            np.testing.assert_array_equal(gy[:3], [0.0, 0.0, 0.0])
            np.testing.assert_allclose(gx[3], 4.0 * 0.5 * 1.5 ** -0.5)
            np.testing.assert_allclose(gy[3], 4.0 * 1.5 ** 0.5 * np.log(1.5))


def test_power_below_one_of_zero_base_has_infinite_gradient_without_raising() -> None:
    """d/dx x ** y at x == 0 for 0 < y < 1 is +inf (as JAX gives), not a ZeroDivisionError."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert symdiff.grad(p_pow, argnums=(0, 1))(0.0, 0.5) == (math.inf, 0.0)
        assert symdiff.grad(p_pow_half)(0.0) == math.inf
        assert symdiff.grad(p_math_pow)(0.0, 0.5) == math.inf
        g = symdiff.grad(p_pow_half_array)(np.array([0.0, 4.0]), np.array([1.0, 1.0]))
        np.testing.assert_array_equal(g, [np.inf, 0.25])


# ============================================================================ NumPy 2 spellings, and more
# (the size-1 axes, orders, keywords and modes of these rules: tests/test_numpy_systematic.py)


def q_mT(x, w): return np.sum(x.mT * w)
def q_matrix_transpose(x, w): return np.sum(np.matrix_transpose(x) * w)
def q_linalg_matrix_transpose(x, w): return np.sum(np.linalg.matrix_transpose(x) * w)
def q_copy(x, w): return np.sum(np.copy(x) * w)
def q_nanmax(x, w): return np.sum(np.nanmax(x, axis=1) * w)
def q_nanmin(x, w): return np.sum(np.nanmin(x, axis=0, keepdims=True) * w)
def q_take_method(x, w): return np.sum(x.take([2, 0, 2], axis=1) * w)
def q_matrix_power(x, w): return np.sum(np.linalg.matrix_power(x, 3) * w)
def q_matrix_power_negative(x, w): return np.sum(np.linalg.matrix_power(x, -2) * w)
def q_multi_dot(x, w): return np.sum(np.linalg.multi_dot([x[0], x, x.T, x]) * w)
def q_vecdot(x, y, w): return np.sum(np.vecdot(x, y) * w)
def q_linalg_vecdot(x, y, w): return np.sum(np.linalg.vecdot(x, y, axis=0) * w)
def q_slogdet_fields(x, w):
    result = np.linalg.slogdet(x)
    return result.sign * result.logabsdet * w
def q_eigh_fields(x, w1, w2):
    result = np.linalg.eigh(x + x.T)
    return np.sum(result.eigenvalues * w1) + np.sum(result.eigenvectors * np.sign(result.eigenvectors[0]) * w2)
def q_qr_fields(x, w1, w2):
    result = np.linalg.qr(x)
    return np.sum(result.Q @ result.R * w1) + np.sum(result.R * w2)
def q_svd_fields(x, w1, w2, w3):
    result = np.linalg.svd(x, full_matrices=False)
    sign = np.sign(result.U[0])
    return np.sum(result.S * w1) + np.sum(result.U * sign * w2) + np.sum(result.Vh * sign[:, None] * w3)


if np.lib.NumpyVersion(np.__version__) >= "2.0.0":
    for _name, _fn, _s, _op, _covers, _dom in [
        ("x.mT", q_mT, (2, 3, 4), lambda x: x.mT, [GetAttr("mT")], REAL),
        ("np.matrix_transpose", q_matrix_transpose, (3, 4), np.matrix_transpose, [np.matrix_transpose], REAL),
        ("np.linalg.matrix_transpose", q_linalg_matrix_transpose, (2, 3, 4), np.linalg.matrix_transpose,
         [np.linalg.matrix_transpose], REAL),
    ]:
        case(f"{_name}[{_sname(_s)}]", _fn, _reduce_make(_dom, _s, _op), (0,), _covers)
    case("np.vecdot[(2, 1, 3), (4, 3)]", q_vecdot, _pair_make(REAL, (2, 1, 3), REAL, (4, 3), np.vecdot), (0, 1),
         [np.vecdot])
    case("np.linalg.vecdot(axis=0)[(3, 2), (3, 1)]", q_linalg_vecdot,
         _pair_make(REAL, (3, 2), REAL, (3, 1), lambda x, y: np.linalg.vecdot(x, y, axis=0)), (0, 1),
         [np.linalg.vecdot])
    case("slogdet(a).sign * .logabsdet", q_slogdet_fields, lambda rng: (WELL_CONDITIONED(rng, (3, 3)), 1.5), (0,),
         [GetAttr("sign"), GetAttr("logabsdet")])
    case("eigh(a).eigenvalues, .eigenvectors", q_eigh_fields,
         _decomposition_make(SPREAD_SYMMETRIC, (3, 3), [(3,), (3, 3)]), (0,),
         [GetAttr("eigenvalues"), GetAttr("eigenvectors")], rtol=1e-4, atol=1e-5)
    case("qr(a).Q, .R", q_qr_fields, _decomposition_make(REAL, (4, 3), [(4, 3), (3, 3)]), (0,),
         [GetAttr("Q"), GetAttr("R")], rtol=1e-4, atol=1e-5)
    case("svd(a).U, .S, .Vh", q_svd_fields, _svd_rect_make((4, 3)), (0,),
         [GetAttr("U"), GetAttr("S"), GetAttr("Vh")], rtol=1e-4, atol=1e-5)
for _name, _fn, _s, _op, _covers, _dom in [
    ("np.copy", q_copy, (3, 4), np.copy, [np.copy], REAL),
    ("np.nanmax(x, axis=1)", q_nanmax, (3, 4), lambda x: np.nanmax(x, axis=1), [np.nanmax], SPREAD),
    ("np.nanmin(x, axis=0, keepdims=True)", q_nanmin, (3, 4), lambda x: np.nanmin(x, axis=0, keepdims=True),
     [np.nanmin], SPREAD),
    ("x.take([2, 0, 2], axis=1)", q_take_method, (3, 4), lambda x: x.take([2, 0, 2], axis=1), [Method("take")],
     REAL),
    ("np.linalg.matrix_power(x, 3)", q_matrix_power, (2, 3, 3), lambda x: np.linalg.matrix_power(x, 3),
     [np.linalg.matrix_power], REAL),
    ("np.linalg.matrix_power(x, -2)", q_matrix_power_negative, (3, 3), lambda x: np.linalg.matrix_power(x, -2),
     [np.linalg.matrix_power], WELL_CONDITIONED),
    ("np.linalg.multi_dot([x[0], x, x.T, x])", q_multi_dot, (3, 3),
     lambda x: np.linalg.multi_dot([x[0], x, x.T, x]), [np.linalg.multi_dot], REAL),
]:
    case(f"{_name}[{_sname(_s)}]", _fn, _reduce_make(_dom, _s, _op), (0,), _covers)


def test_nanmax_gives_nan_elements_no_gradient() -> None:
    x = np.array([[1.0, np.nan, 3.0], [np.nan, -2.0, -5.0]])
    g = symdiff.grad(q_nanmax)(x, np.array([2.0, 4.0]))
    np.testing.assert_array_equal(g, [[0.0, 0.0, 2.0], [0.0, 4.0, 0.0]])


# ============================================================================ the parametrized checks


def _params():
    return [pytest.param(c, id=c.id, marks=[pytest.mark.xfail(strict=True, reason=XFAIL[c.id])] if c.id in XFAIL
                         else []) for c in CASES]


@pytest.mark.parametrize("case", _params())
def test_gradient_matches_finite_differences(case: Case) -> None:
    args = case.args()
    check_grad(case.fn, *args, argnums=case.argnums, rtol=case.rtol, atol=case.atol)


def _float32(args: tuple, argnums: tuple) -> tuple:
    return tuple(a.astype(np.float32) if isinstance(a, np.ndarray) and i in argnums else a
                 for i, a in enumerate(args))


F32_CASES = [c for c in CASES if any(isinstance(a, np.ndarray) for i, a in enumerate(c.args()) if i in c.argnums)]


@pytest.mark.parametrize("case", [p for p in _params() if p.values[0] in F32_CASES])
def test_float32_gradient(case: Case) -> None:
    """float32 arguments get float32 gradients, close to the float64 finite differences."""
    args = case.args()
    args32 = _float32(args, case.argnums)
    exact = tuple(a.astype(np.float64) if isinstance(a, np.ndarray) else a for a in args32)
    grads = symdiff.grad(case.fn, argnums=case.argnums)(*args32)
    for n, g in zip(case.argnums, grads):
        if isinstance(args32[n], np.ndarray):
            assert isinstance(g, np.ndarray) and g.dtype == np.float32, f"argument {n}: {getattr(g, 'dtype', g)}"
            assert g.shape == args32[n].shape
        want = numerical_grad(case.fn, list(exact), n)
        np.testing.assert_allclose(g, want, rtol=2e-3, atol=2e-3, err_msg=f"argument {n}")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_case_exercises_the_rules_it_claims(case: Case) -> None:
    called = _called(case.fn, case.args())
    for key in case.covers:
        assert _in(key, called), f"{case.id} claims to exercise {key!r}, but its IR calls {called}"


# ============================================================================ docs/numpy.md


def test_numpy_docs_are_up_to_date() -> None:
    """docs/numpy.md is generated from the rule table by scripts/gen_numpy_docs.py."""
    import importlib.util
    import pathlib

    if np.lib.NumpyVersion(np.__version__) < "2.0.0":
        pytest.skip("docs/numpy.md is generated with NumPy 2, where np.max and np.amax are distinct functions")
    root = pathlib.Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("gen_numpy_docs", root / "scripts" / "gen_numpy_docs.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    current = (root / "docs" / "numpy.md").read_text()
    assert current == gen.render(), "docs/numpy.md is stale: run python3 scripts/gen_numpy_docs.py"

