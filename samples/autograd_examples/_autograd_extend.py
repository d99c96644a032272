"""A stand-in for ``autograd.extend``'s ``primitive`` and ``defvjp``, on top of ``symdiff.defvjp``.

autograd's ``defvjp(fun, vjpmaker)`` takes, per argument, a function ``vjpmaker(ans, *args)``
returning the VJP ``g -> cotangent``; symdiff's takes the VJP itself, ``(g, ans, *args) ->
cotangent``. symdiff runs the rule on symbols when it compiles a gradient and inlines what it
computes, so calling autograd's VJP maker there gives the same code (a rule that cannot run on
symbols, such as autograd's ``np.full(x.shape, g)``, is called on the values when the gradient
runs, as autograd calls it). ``primitive`` marks
nothing: a function with a registered rule is never looked into.
"""

from __future__ import annotations

from typing import Any, Callable

import symdiff


def primitive(fun: Callable) -> Callable:
    """autograd's ``@primitive``: here ``fun`` itself (its rule, once given, takes precedence)."""
    return fun


def _vjp_of(maker: Callable | None) -> Callable | None:
    """symdiff's spelling, ``(g, ans, *args) -> cotangent``, of autograd's VJP maker."""
    if maker is None:
        return None
    return lambda g, ans, *args: maker(ans, *args)(g)


def defvjp(fun: Callable, *vjpmakers: Any) -> None:
    """autograd's ``defvjp``: one VJP maker ``(ans, *args) -> (g -> cotangent)`` per argument."""
    symdiff.defvjp(fun, *(_vjp_of(maker) for maker in vjpmakers))
