"""Linear regression by gradient descent, with the gradient of the MSE loss from symdiff.

Synthetic data y = X @ w_true + b_true + noise; we recover w and b by plain gradient
descent on the mean squared error, using ``symdiff.value_and_grad`` with tuple argnums.
"""

import numpy as np

import symdiff


def loss(w, b, X, y):
    residual = X @ w + b - y
    return np.mean(residual ** 2)


def main():
    rng = np.random.default_rng(0)
    n, d = 200, 3
    w_true = np.array([2.0, -3.0, 0.5])
    b_true = 1.5
    X = rng.normal(size=(n, d))
    y = X @ w_true + b_true + 0.1 * rng.normal(size=n)

    loss_and_grads = symdiff.value_and_grad(loss, argnums=(0, 1))
    w, b = np.zeros(d), 0.0
    loss_and_grads(w, b, X, y)  # compile for (array, float, array, array) arguments
    print("Generated gradient code:\n" + loss_and_grads.source)

    lr = 0.05
    for step in range(101):
        value, (dw, db) = loss_and_grads(w, b, X, y)
        if step % 10 == 0:
            print(f"step {step:3d}  loss {value:.6f}")
        w = w - lr * dw
        b = b - lr * db

    print("recovered w:", np.round(w, 3), " true w:", w_true)
    print(f"recovered b: {b:.3f}  true b: {b_true}")


if __name__ == "__main__":
    main()
