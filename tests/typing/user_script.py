"""A user's script calling symdiff's public API: ``mypy --strict`` must accept it as written
(tests/test_typing.py), so the public signatures say what each function takes and gives."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

import symdiff

Array = npt.NDArray[np.float64]


def loss(w: Array, X: Array, y: Array) -> Any:
    """Mean squared error of a one-layer tanh model."""
    return np.mean((np.tanh(X @ w) - y) ** 2)


def scalar(x: float) -> float:
    return x ** 3 + 2.0 * x


def layer(x: Array) -> Array:
    return np.tanh(x) * 2.0


@symdiff.grad
def decorated(x: float) -> float:
    return x * x


@symdiff.grad(argnums=(0, 1))
def both(x: float, y: float) -> float:
    return x * y


@symdiff.custom_vjp
def log1pexp(x: float) -> float:
    return float(np.log1p(np.exp(x)))


def log1pexp_fwd(x: float) -> tuple[float, float]:
    return log1pexp(x), x


def log1pexp_bwd(x: float, g: float) -> tuple[float]:
    return (g / (1.0 + float(np.exp(-x))),)


log1pexp.defvjp(log1pexp_fwd, log1pexp_bwd)


@symdiff.custom_jvp
def square(x: float) -> float:
    return x * x


@square.defjvp
def square_jvp(primals: tuple[float], tangents: tuple[float]) -> tuple[float, float]:
    return square(primals[0]), 2.0 * primals[0] * tangents[0]


def softplus(x: float) -> float:
    return float(np.log1p(np.exp(x)))


def main() -> None:
    w, X, y = np.array([0.1, 0.2]), np.eye(2), np.array([1.0, -1.0])
    gradient = symdiff.grad(loss)
    dw = gradient(w, X, y)
    source: str | None = gradient.source
    print(dw, source)
    value, dx = symdiff.value_and_grad(scalar)(1.5)
    print(value, dx, decorated(2.0), both(1.0, 2.0))
    out, pullback = symdiff.vjp(layer, w)
    cotangents: tuple[Any, ...] = pullback(np.ones(2))
    print(out, cotangents, pullback.source)
    total, pullback, aux = symdiff.vjp(lambda v: (np.sum(v), 1), w, has_aux=True)
    primal_out, tangent_out = symdiff.jvp(scalar, (1.0,), (1.0,))
    line_out, f_jvp = symdiff.linearize(scalar, 1.0)
    print(total, aux, primal_out, tangent_out, line_out, f_jvp(1.0), f_jvp.source)
    for made in (symdiff.jacrev(layer), symdiff.jacfwd(layer), symdiff.hessian(scalar),
                 symdiff.elementwise_grad(layer), symdiff.hvp(scalar)):
        text: str | None = made.source
        print(text)
    print(symdiff.hvp(scalar, (1.0,), (1.0,)))
    symdiff.defvjp(softplus, lambda g, ans, x: g * (1.0 - np.exp(-ans)))
    symdiff.defjvp(softplus, lambda t, ans, x: t * (1.0 - np.exp(-ans)))
    symdiff.defnondiff(round)
    kept: float = symdiff.stop_gradient(1.0)
    block = symdiff.checkpoint(layer)
    print(kept, block(w), log1pexp(0.5), square(2.0), symdiff.grad(lambda v: softplus(v))(0.5))
    try:
        symdiff.grad(lambda v: v)(w)
    except symdiff.NoRuleError as error:
        print(error)
    except symdiff.SymdiffError as error:
        print(type(error).__name__, error)


if __name__ == "__main__":
    main()
