"""grad(obj.method): `self` is the object; its attributes are read when the gradient runs."""

import numpy as np
from fd import check_grad

import symdiff


class Model:
    def __init__(self, W, scale):
        self.W = W
        self.scale = scale

    def predict(self, x):
        return np.tanh(x @ self.W) * self.scale

    def loss(self, x):
        return np.sum(self.predict(x) ** 2) + self.penalty(x)

    def penalty(self, x, weight=0.1):
        return weight * np.sum(x * x)


def test_gradient_of_a_bound_method_calling_other_methods():
    model = Model(np.array([[0.5, -1.0], [0.3, 0.8]]), 2.0)
    check_grad(model.loss, np.array([[0.2, -0.4], [1.0, 0.5]]))


def test_attributes_are_read_when_the_gradient_runs():
    model = Model(np.eye(2), 1.0)
    g = symdiff.grad(model.loss)
    x = np.array([[0.2, -0.4]])
    first = g(x)
    model.scale = 3.0
    assert not np.allclose(g(x), first)
    check_grad(model.loss, x)
