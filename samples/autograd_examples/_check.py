"""Checks a symdiff gradient against central finite differences along random directions.

Shared by the examples in this folder: every example's ``main()`` ends in one call of
:func:`check_grad`, which prints one line and raises ``AssertionError`` when the gradient is off.
"""

from __future__ import annotations

import itertools
from typing import Any, Callable

import numpy as np

if not hasattr(itertools, "pairwise"):  # Python 3.9: the examples call itertools.pairwise (3.10+)

    def _pairwise(iterable):
        """Successive overlapping pairs, as ``itertools.pairwise`` gives them from Python 3.10."""
        items = list(iterable)
        return zip(items[:-1], items[1:])

    itertools.pairwise = _pairwise


def _leaves(tree: Any) -> list:
    """The leaves of a pytree (arrays and floats inside lists, tuples and dicts), in a fixed order."""
    if isinstance(tree, dict):
        return [leaf for key in sorted(tree, key=str) for leaf in _leaves(tree[key])]
    if isinstance(tree, (list, tuple)):
        return [leaf for item in tree for leaf in _leaves(item)]
    return [tree]


def _rebuild(tree: Any, leaves: list) -> Any:
    """A pytree of ``tree``'s structure whose leaves are taken, in order, from ``leaves``."""
    if isinstance(tree, dict):
        return {key: _rebuild(tree[key], leaves) for key in sorted(tree, key=str)}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_rebuild(item, leaves) for item in tree)
    leaf = leaves.pop(0)
    return float(leaf) if isinstance(tree, float) else leaf


def _step(tree: Any, direction: list, eps: float) -> Any:
    """``tree + eps * direction``, leaf by leaf."""
    moved = [np.asarray(x, dtype=np.float64) + eps * d for x, d in zip(_leaves(tree), direction)]
    return _rebuild(tree, [m if np.ndim(m) else float(m) for m in moved])


def check_grad(name: str, f: Callable[[Any], float], gradient: Any, x: Any, *, directions: int = 3,
               eps: float = 1e-6, rtol: float = 1e-5, reset: Callable[[], None] | None = None,
               seed: int = 0) -> float:
    """Check ``gradient`` (of ``f`` at ``x``, a pytree) by central differences on random directions.

    ``reset`` (if given) is called before every evaluation of ``f``, for objectives that draw
    random numbers from a generator they share. Prints one line; returns the largest relative
    error; raises ``AssertionError`` when it exceeds ``rtol``.
    """
    rs = np.random.RandomState(seed)
    grads = [np.asarray(g, dtype=np.float64) for g in _leaves(gradient)]
    shapes = [np.shape(leaf) for leaf in _leaves(x)]
    assert [g.shape for g in grads] == shapes, f"{name}: gradient shapes {[g.shape for g in grads]} != {shapes}"

    def value(point: Any) -> float:
        if reset is not None:
            reset()
        return float(f(point))

    scale = 1.0 + abs(value(x))
    worst = 0.0
    for _ in range(directions):
        direction = [rs.randn(*shape) for shape in shapes]
        exact = sum(float(np.sum(g * d)) for g, d in zip(grads, direction))
        numeric = (value(_step(x, direction, eps)) - value(_step(x, direction, -eps))) / (2 * eps)
        error = abs(exact - numeric) / (abs(exact) + abs(numeric) + 1e-8 * scale)
        worst = max(worst, error)
    assert worst <= rtol, f"{name}: gradient differs from central differences (relative error {worst:.2e})"
    print(f"{name}: gradient matches central differences on {directions} directions "
          f"(largest relative error {worst:.1e})")
    return worst
