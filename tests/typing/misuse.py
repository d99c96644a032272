"""Calls of symdiff's API that a type checker must reject (tests/test_typing.py): each line
marked ``# error`` is one mypy reports, so the public signatures are not ``Any``."""

import symdiff


def f(x: float) -> float:
    return x * x


name = symdiff.grad(f).sauce  # error
count: int = symdiff.grad(f).source  # error
out, pullback, extra = symdiff.vjp(f, 1.0)  # error
out2, pullback2 = symdiff.vjp(f, 1.0, has_aux=True)  # error
symdiff.grad(f, argnums="x")  # error
other = symdiff.linearize(f, 1.0)[1].sauce  # error
number: int = symdiff.stop_gradient("text")  # error
