"""Small stand-ins for ``autograd.misc`` (``flatten``, ``flatten_func``, ``adam``, ``sgd``), in NumPy.

The examples import these where autograd's import ``autograd.misc.flatten`` or
``autograd.misc.optimizers``; they follow autograd's signatures. ``flatten`` is written in
ordinary NumPy so that symdiff can differentiate through it (``l2_norm`` in ``neural_net.py``);
inside a differentiated function it takes lists and tuples of arrays, nested two deep (a branch on
``isinstance(value, dict)`` would have to be compiled for arguments of unknown type too, and
symdiff has no rule for iterating over a dict's keys there). Outside, dicts are fine as well.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np


def _leaves(value: Any) -> list:
    """The arrays and numbers inside a list or tuple of arrays and of lists or tuples of arrays
    (two levels: what the examples' parameters are; written without recursion, which symdiff
    differentiates only for functions returning arrays)."""
    if not isinstance(value, (list, tuple)):
        return [value]
    leaves = []
    for item in value:
        if isinstance(item, (list, tuple)):
            for leaf in item:
                leaves.append(leaf)
        else:
            leaves.append(item)
    return leaves


def _tree_leaves(value: Any) -> list:
    """The arrays and numbers inside nested lists, tuples and dicts (dicts by sorted key)."""
    if isinstance(value, dict):
        value = [value[key] for key in sorted(value)]
    if isinstance(value, (list, tuple)):
        return [leaf for item in value for leaf in _tree_leaves(item)]
    return [value]


def _unflatten(template: Any, vector: np.ndarray, start: int = 0) -> tuple[Any, int]:
    """A value of ``template``'s structure read from ``vector`` at ``start``, and where it ends."""
    if isinstance(template, dict):
        out = {}
        for key in sorted(template):
            out[key], start = _unflatten(template[key], vector, start)
        return out, start
    if isinstance(template, (list, tuple)):
        items = []
        for item in template:
            value, start = _unflatten(item, vector, start)
            items.append(value)
        return (tuple(items) if isinstance(template, tuple) else items), start
    size = int(np.size(template))
    return np.reshape(vector[start:start + size], np.shape(template)), start + size


class Unflatten:
    """The inverse of one ``flatten``: a flat vector back into the structure it was made from."""

    def __init__(self, template: Any) -> None:
        self.template = template

    def __call__(self, vector: np.ndarray) -> Any:
        """The value of the template's structure read from ``vector``."""
        return _unflatten(self.template, vector)[0]


def flatten(value: Any) -> tuple[np.ndarray, Unflatten]:
    """autograd's ``flatten``: all leaves of ``value`` as one vector, and the function undoing it."""
    flat = np.concatenate([np.ravel(leaf) for leaf in _leaves(value)])
    return flat, Unflatten(value)


def tree_flatten(value: Any) -> tuple[np.ndarray, Callable[[np.ndarray], Any]]:
    """``flatten`` for nested dicts too, called outside differentiated code (the optimisers,
    ``flatten_func``). Its ``unflatten`` is a closure, which symdiff inlines where a
    differentiated function calls it (it does not look into an object's ``__call__``)."""
    flat = np.concatenate([np.ravel(leaf) for leaf in _tree_leaves(value)])
    if isinstance(value, dict) and not any(isinstance(v, (dict, list, tuple)) for v in value.values()):
        return flat, _dict_unflatten(value)

    def unflatten(vector: np.ndarray) -> Any:
        return _unflatten(value, vector)[0]

    return flat, unflatten


def _dict_unflatten(template: dict) -> Callable[[np.ndarray], dict]:
    """``unflatten`` for a dict of arrays and numbers, written without recursion (symdiff
    differentiates a loop over constant slots; ``_unflatten`` returns ``(value, start)`` pairs from
    recursive calls building a dict, which it does not)."""
    slots, start = [], 0
    for key in sorted(template):
        size = int(np.size(template[key]))
        slots.append((key, start, start + size, np.shape(template[key])))
        start += size
    slots = tuple(slots)

    def unflatten(vector: np.ndarray) -> dict:
        out = {}
        for key, begin, end, shape in slots:
            out[key] = np.reshape(vector[begin:end], shape)
        return out

    return unflatten


def flatten_func(func: Callable, example: Any) -> tuple[Callable, Callable, np.ndarray]:
    """autograd's ``flatten_func`` for a function of one argument: ``func`` of a pytree as a
    function of one flat vector (autograd's passes further arguments on: ``*args``)."""
    flat, unflatten = tree_flatten(example)

    def flattened(vector: np.ndarray) -> Any:
        return func(unflatten(vector))

    return flattened, unflatten, flat


def adam(grad: Callable, x0: Any, callback: Callable | None = None, num_iters: int = 100,
         step_size: float = 0.001, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> Any:
    """autograd's ``adam``: ``grad(x, i)`` of a pytree ``x``; returns the final ``x``."""
    x, unflatten = tree_flatten(x0)
    m = np.zeros(len(x))
    v = np.zeros(len(x))
    for i in range(num_iters):
        g = tree_flatten(grad(unflatten(x), i))[0]
        if callback:
            callback(unflatten(x), i, unflatten(g))
        m = (1 - b1) * g + b1 * m
        v = (1 - b2) * (g ** 2) + b2 * v
        mhat = m / (1 - b1 ** (i + 1))
        vhat = v / (1 - b2 ** (i + 1))
        x = x - step_size * mhat / (np.sqrt(vhat) + eps)
    return unflatten(x)


def sgd(grad: Callable, x0: Any, callback: Callable | None = None, num_iters: int = 200,
        step_size: float = 0.1, mass: float = 0.9) -> Any:
    """autograd's ``sgd`` with momentum: ``grad(x, i)`` of a pytree ``x``; returns the final ``x``."""
    x, unflatten = tree_flatten(x0)
    velocity = np.zeros(len(x))
    for i in range(num_iters):
        g = tree_flatten(grad(unflatten(x), i))[0]
        if callback:
            callback(unflatten(x), i, unflatten(g))
        velocity = mass * velocity - (1.0 - mass) * g
        x = x + step_size * velocity
    return unflatten(x)
