"""A small MLP whose parameters live in a dict, trained by gradient descent with symdiff.

The loss takes the whole dict; `symdiff.grad` returns a dict of gradients with the same
keys, so the update is one dict comprehension. A helper function (`forward`) is called
from the loss: symdiff differentiates through it by inlining it.
"""

import numpy as np

import symdiff


def forward(params, X):
    h = np.tanh(X @ params["W1"] + params["b1"])
    return h @ params["W2"] + params["b2"]


def loss(params, X, y):
    err = forward(params, X) - y
    return np.mean(err ** 2)


def main():
    rng = np.random.default_rng(0)
    X = rng.uniform(-2.0, 2.0, size=(200, 1))
    y = np.sin(2.0 * X[:, 0])  # learn a sine wave
    params = {"W1": rng.normal(size=(1, 16)), "b1": np.zeros(16),
              "W2": rng.normal(size=16) * 0.3, "b2": 0.0}

    grad = symdiff.grad(loss)
    print(f"initial loss {loss(params, X, y):.4f}")
    lr = 0.1
    for step in range(1, 3001):
        g = grad(params, X, y)
        params = {k: params[k] - lr * g[k] for k in params}
        if step % 500 == 0:
            print(f"step {step:4d}  loss {loss(params, X, y):.5f}")
    final = loss(params, X, y)
    print(f"final loss {final:.5f}")
    print("generated gradient code:\n" + grad.source)
    if final > 0.05:
        raise SystemExit(f"training did not converge: loss {final:.4f}")


if __name__ == "__main__":
    main()
