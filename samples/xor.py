"""A 2-2-1 sigmoid network learning XOR, trained with gradients from symdiff.

The loss is binary cross-entropy; the network is written inline in the loss function
(symdiff differentiates the function's own source, so no helper calls inside it).
Exits with status 1 if training does not reach a loss below 0.05.
"""

import sys

import numpy as np

import symdiff

X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
Y = np.array([0.0, 1.0, 1.0, 0.0])


def loss(W1, b1, W2, b2, X, Y):
    h = 1 / (1 + np.exp(-(X @ W1 + b1)))     # hidden layer, shape (4, 2)
    p = 1 / (1 + np.exp(-(h @ W2 + b2)))     # output probabilities, shape (4,)
    return -np.mean(Y * np.log(p) + (1 - Y) * np.log(1 - p))


def main():
    rng = np.random.default_rng(0)
    W1 = rng.normal(size=(2, 2))
    b1 = np.zeros(2)
    W2 = rng.normal(size=2)
    b2 = 0.0

    grads = symdiff.grad(loss, argnums=(0, 1, 2, 3))
    grads(W1, b1, W2, b2, X, Y)  # compile for these argument types
    print("Generated gradient code:\n" + grads.source)

    lr, momentum = 0.5, 0.9  # gradient descent with momentum
    velocity = [np.zeros_like(W1), np.zeros_like(b1), np.zeros_like(W2), 0.0]
    for step in range(3001):
        params = [W1, b1, W2, b2]
        if step % 500 == 0:
            print(f"step {step:4d}  loss {loss(*params, X, Y):.5f}")
        for i, g in enumerate(grads(*params, X, Y)):
            velocity[i] = momentum * velocity[i] - lr * g
        W1, b1, W2, b2 = [p + v for p, v in zip(params, velocity)]

    final = loss(W1, b1, W2, b2, X, Y)
    h = 1 / (1 + np.exp(-(X @ W1 + b1)))
    p = 1 / (1 + np.exp(-(h @ W2 + b2)))
    print(f"final loss {final:.5f}")
    for x, y, prob in zip(X, Y, p):
        print(f"  {x} -> {prob:.3f}  (target {y:.0f})")
    if not final < 0.05:
        sys.exit(f"XOR did not converge: final loss {final:.5f} >= 0.05")


if __name__ == "__main__":
    main()
