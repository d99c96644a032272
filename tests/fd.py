"""Central finite differences in float64, the reference every gradient test compares against."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np


def numerical_grad(f: Callable, args: list, argnum: int, eps: float = 1e-6) -> Any:
    """d f(*args) / d args[argnum] by central differences (float or ndarray argument)."""
    x = args[argnum]
    if isinstance(x, (int, float)):
        def at(v):
            a = list(args)
            a[argnum] = v
            return float(f(*a))
        return (at(x + eps) - at(x - eps)) / (2 * eps)
    x = np.asarray(x, dtype=np.float64)
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        a = list(args)
        plus, minus = x.copy(), x.copy()
        plus[i] += eps
        minus[i] -= eps
        a[argnum] = plus
        fp = float(f(*a))
        a[argnum] = minus
        fm = float(f(*a))
        grad[i] = (fp - fm) / (2 * eps)
    return grad


def check_grad(f: Callable, *args: Any, argnums: Any = None, rtol: float = 1e-5, atol: float = 1e-6) -> None:
    """Assert that symdiff's gradient of ``f`` matches finite differences in every argument."""
    import symdiff

    nums = tuple(range(len(args))) if argnums is None else argnums
    nums = (nums,) if isinstance(nums, int) else tuple(nums)
    before = [np.copy(a) if isinstance(a, np.ndarray) else a for a in args]
    got = symdiff.grad(f, argnums=nums)(*args)
    for a, b in zip(args, before):  # the gradient never mutates its inputs
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, b)
    for n, g in zip(nums, got):
        x = args[n]
        want = numerical_grad(f, list(args), n)
        if isinstance(x, np.ndarray):
            assert isinstance(g, np.ndarray), f"gradient of argument {n} is {type(g).__name__}, not ndarray"
            assert g.shape == x.shape, f"gradient shape {g.shape} != argument shape {x.shape}"
            assert g.dtype == x.dtype
        elif isinstance(x, float):
            assert type(g) is float, f"gradient of a float argument is {type(g).__name__}"
        np.testing.assert_allclose(g, want, rtol=rtol, atol=atol, err_msg=f"argument {n}")
