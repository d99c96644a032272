"""Checking forward mode: a Jacobian-vector product against central finite differences along
the tangent, and against reverse mode (``<u, J v> == <J^T u, v>``). Shared by the forward-mode
tests (``tests/test_jvp_systematic.py``, ``tests/test_hessian.py``) and the differential tester."""

from __future__ import annotations

import re
from typing import Any, Callable, Sequence

import numpy as np

import symdiff
from symdiff import primitives, runtime

EPS = 1e-6


def random_like(rng: np.random.Generator, x: Any) -> Any:
    """A random tangent (or cotangent) of ``x``'s structure: float64 arrays of its shapes, floats
    for numbers."""
    if isinstance(x, (tuple, list)):
        return type(x)(random_like(rng, v) for v in x)
    if isinstance(x, dict):
        return {k: random_like(rng, v) for k, v in x.items()}
    if isinstance(x, np.ndarray):
        return np.asarray(rng.standard_normal(x.shape))
    return float(rng.standard_normal())


def zero_like(x: Any) -> Any:
    """The tangent of a non-differentiated argument: zeros of its structure (None for a string)."""
    if isinstance(x, str) or x is None:
        return None
    return runtime.zeros_of(x)


def moved(x: Any, t: Any, step: float) -> Any:
    """``x + step * t``, item by item in containers; a non-differentiated ``x`` (None tangent) stays."""
    if t is None:
        return x
    if isinstance(x, (tuple, list)):
        return type(x)(moved(a, b, step) for a, b in zip(x, t))
    if isinstance(x, dict):
        return {k: moved(x[k], t[k], step) for k in x}
    if isinstance(x, np.ndarray):
        return x + step * np.asarray(t, dtype=x.dtype) if np.issubdtype(x.dtype, np.inexact) else x
    if isinstance(x, (bool, int, np.integer, np.bool_)):
        return x
    return type(x)(x + step * t) if isinstance(x, np.generic) else x + step * t


def flat(x: Any) -> np.ndarray:
    """All the numbers of ``x`` (nested containers too), in order, as one float64 vector."""
    if isinstance(x, (tuple, list)):
        parts = [flat(v) for v in x]
        return np.concatenate(parts) if parts else np.zeros(0)
    if isinstance(x, dict):
        return flat([x[k] for k in sorted(x, key=repr)])
    if x is None or isinstance(x, str):
        return np.zeros(0)
    return np.ravel(np.asarray(x, dtype=np.float64))


def directional_fd(f: Callable, args: Sequence, tangents: Sequence, eps: float = EPS) -> np.ndarray:
    """The derivative of ``f`` at ``args`` along ``tangents`` by central differences, flattened."""
    plus = f(*[moved(a, t, eps) for a, t in zip(args, tangents)])
    minus = f(*[moved(a, t, -eps) for a, t in zip(args, tangents)])
    return (flat(plus) - flat(minus)) / (2 * eps)


def dot(a: Any, b: Any) -> float:
    """The inner product of two values of one structure."""
    return float(np.dot(flat(a), flat(b)))


def assert_close(got: Any, want: np.ndarray, rtol: float, atol: float, what: str) -> None:
    got = flat(got)
    assert got.shape == want.shape, f"{what}: {got.size} numbers, finite differences give {want.size}"
    scale = 1.0 + float(np.max(np.abs(want), initial=0.0))
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol * scale, err_msg=what)


def check_jvp(f: Callable, args: Sequence, differentiated: Sequence[int], rng: np.random.Generator,
              rtol: float = 1e-5, atol: float = 1e-6, adjoint: bool = True) -> None:
    """``symdiff.jvp`` of ``f`` along a random tangent of the ``differentiated`` arguments (zeros for
    the others): its value is ``f(*args)``, its tangent is finite differences along the tangent,
    and ``<u, J v> == <J^T u, v>`` with ``symdiff.vjp`` for a random ``u``."""
    tangents = [random_like(rng, a) if i in differentiated else zero_like(a) for i, a in enumerate(args)]
    want_out = f(*args)
    out, t_out = symdiff.jvp(f, tuple(args), tuple(tangents))
    np.testing.assert_allclose(flat(out), flat(want_out), rtol=1e-12, atol=1e-12, err_msg="jvp's primal output")
    assert np.shape(t_out) == np.shape(out), f"tangent shape {np.shape(t_out)} != output shape {np.shape(out)}"
    assert_close(t_out, directional_fd(f, args, tangents), rtol, atol, "jvp vs finite differences")
    if not adjoint:
        return
    out, pullback = symdiff.vjp(f, *args)
    u = random_like(rng, out)
    cotangents = pullback(u)
    lhs = dot(u, t_out)
    rhs = sum(dot(cotangents[i], tangents[i]) for i in differentiated)
    scale = np.linalg.norm(flat(u)) * np.linalg.norm(flat(t_out)) + sum(
        np.linalg.norm(flat(cotangents[i])) * np.linalg.norm(flat(tangents[i])) for i in differentiated)
    assert abs(lhs - rhs) <= 1e-9 * (1.0 + scale), f"<u, J v> = {lhs} but <J^T u, v> = {rhs}"


_NO_RULE = re.compile(r"no forward-mode \(JVP\) rule for (\S+?);")


def refused_primitive(error: Exception) -> str | None:
    """The primitive a forward-mode refusal names (``np.linalg.qr``), or None for another error."""
    m = _NO_RULE.search(str(error))
    return m.group(1) if m else None


def spelling(record: primitives.Primitive) -> str:
    """How refusals name a primitive."""
    return primitives.spelling(record.fn)
