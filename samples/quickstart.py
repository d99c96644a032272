"""The README's quickstart: decorate a function, call its gradient, read the generated code."""

import numpy as np

import symdiff


@symdiff.grad
def loss(w, X, y):
    """Mean squared error of a one-layer tanh model."""
    pred = np.tanh(X @ w)
    err = pred - y
    return np.mean(err ** 2)


def main() -> None:
    rng = np.random.default_rng(0)
    X, y, w = rng.normal(size=(5, 3)), rng.normal(size=5), rng.normal(size=3)
    print(loss(w, X, y))
    print(loss.source)


if __name__ == "__main__":
    main()
