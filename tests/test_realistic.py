"""Gradients of code as people write it: softmax cross-entropy with the max shift, batch
normalisation, Huber loss, Newton iterations, array-valued while conditions, attention,
a 1-D convolution built with append, a Gaussian mixture, a polynomial over enumerate."""

import math

import numpy as np
import pytest
from fd import check_grad

rng = np.random.default_rng(1)
X = rng.normal(size=(6, 4)); Y = np.eye(3)[rng.integers(0, 3, 6)]
def softmax_ce(W, b):
    z = X @ W + b
    z = z - np.max(z, axis=1, keepdims=True)
    logp = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    return -np.mean(np.sum(Y * logp, axis=1))
def norm_layer(x):
    mu = x.mean(axis=0)
    var = x.var(axis=0)
    return np.sum(((x - mu) / np.sqrt(var + 1e-5)) ** 3)
def huber(x):
    a = np.abs(x)
    return np.sum(np.where(a < 1.0, 0.5 * x ** 2, a - 0.5))
def newton_sqrt(a):
    x = a
    for _ in range(20):
        x = 0.5 * (x + a / x)
    return x
def while_arr(x):
    y = x
    k = 0
    while np.sum(y * y) < 10.0 and k < 50:
        y = y * 1.3 + 0.1
        k += 1
    return np.sum(y)
def attn(Q, K):
    s = Q @ K.T / math.sqrt(Q.shape[1])
    s = s - s.max(axis=-1, keepdims=True)
    p = np.exp(s); p = p / p.sum(axis=-1, keepdims=True)
    return np.sum(p @ K)
def conv1d(x, w):
    out = []
    for i in range(len(x) - len(w) + 1):
        out.append(np.dot(x[i:i + len(w)], w))
    return np.sum(np.array(out) ** 2)
def gmm(x, mus):
    return -np.sum(np.log(np.sum(np.exp(-0.5 * (x[:, None] - mus[None, :]) ** 2), axis=1)))
def poly(c, x):
    acc = 0.0
    for k, ck in enumerate(c):
        acc = acc + ck * x ** k
    return acc
cases = [(softmax_ce, (rng.normal(size=(4,3)), rng.normal(size=3))), (norm_layer, (rng.normal(size=(5,3)),)),
         (huber, (rng.normal(size=7)*2,)), (newton_sqrt, (2.5,)), (while_arr, (rng.normal(size=3)*0.3,)),
         (attn, (rng.normal(size=(3,4)), rng.normal(size=(5,4)))), (conv1d, (rng.normal(size=8), rng.normal(size=3))),
         (gmm, (rng.normal(size=6), rng.normal(size=3))), (poly, (rng.normal(size=4), 0.7))]


@pytest.mark.parametrize("fn, args", cases, ids=[c[0].__name__ for c in cases])
def test_realistic_code_matches_finite_differences(fn, args):
    check_grad(fn, *args)
