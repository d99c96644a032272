#!/usr/bin/env python3
"""Benchmark suite: forward pass vs hand-written NumPy gradient vs ``symdiff.grad`` (and
autograd / JAX when they are importable), on scalar, small-array, large-array and loop
workloads.

For each workload this script, in one process:

1. checks (untimed) that every gradient -- symdiff's, autograd's, JAX's -- matches the
   hand-written one (``np.testing.assert_allclose``, rtol=1e-6); a symdiff failure (an error,
   a wrong gradient, no gradient within ``--compile-timeout``) marks its row FAILED and the
   run goes on;
2. times every implementation with ``timeit``: each gets its own loop count N, chosen so one
   repeat takes about 0.15 s; the repeats of all implementations are interleaved (rotating
   order) and the best (min) repeat is kept;
3. times "time to first gradient": a fresh ``symdiff.grad(...)`` plus its first call (parse,
   IR, reverse mode, codegen, ``compile``, one evaluation), and JAX's ``jit`` compile time.

It prints Markdown tables and writes them with a machine header to ``--output`` (default
``benchmarks/RESULTS.md`` for a full run; nothing for ``--quick`` or ``--only`` runs).

    python benchmarks/bench_suite.py                  # full run (a few minutes), writes RESULTS.md
    python benchmarks/bench_suite.py --quick          # smoke test (~1 min), writes nothing
    python benchmarks/bench_suite.py --only rnn-small,loop-10   # some workloads
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import datetime
import importlib.metadata
import math
import os
import platform
import shlex
import signal
import subprocess
import sys
import time
import timeit
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

import symdiff

try:
    import autograd
    import autograd.numpy as anp
except ImportError:  # optional: pip install -e '.[bench]'
    autograd = None
try:
    import jax

    jax.config.update("jax_enable_x64", True)  # compare in float64, like the NumPy code
    import jax.numpy as jnp
    from jax import lax
except ImportError:
    jax = None

HERE = Path(__file__).resolve().parent
DEFAULT_OUTPUT = HERE / "RESULTS.md"
RTOL = 1e-6
TARGETS = {"scalar": 1.5, "small": 1.3, "large": 1.1}  # symdiff / hand-written
FORWARD_TARGET = 3.0  # symdiff / forward, tracked where hand-written / forward <= 3
FIRST_TARGET = 20e-3  # time to first gradient, seconds

# ============================================================================ workloads
# The loss functions are what symdiff differentiates (it reads their source, so they stay
# plain top-level functions in this file), written as a user would. Each ``*_hand`` is the
# gradient as a careful person writes it in NumPy: one forward pass keeping what the
# backward pass needs, the usual closed forms, no loss value computed, no ``out=`` tricks.
# autograd and JAX differentiate the *same* functions with ``np`` rebound to autograd.numpy
# / jax.numpy (see ``rebind``).


# ---- Rosenbrock on Python floats

def rosenbrock(x, y):
    return (1 - x) ** 2 + 100 * (y - x ** 2) ** 2


def rosenbrock_hand(x, y):
    t = 200.0 * (y - x * x)
    return -2.0 * (1.0 - x) - 2.0 * x * t, t


# ---- n-dimensional Rosenbrock

def rosen_nd(x):
    return np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def rosen_nd_hand(x):
    xm = x[:-1]
    t = 200.0 * (x[1:] - xm * xm)
    g = np.zeros_like(x)
    g[:-1] = 2.0 * (xm - 1.0) - 2.0 * xm * t
    g[1:] += t
    return g


def make_rosen_nd(n: int) -> Callable:
    return lambda rng: (rng.uniform(-2.0, 2.0, size=n),)


# ---- logistic regression, L2-regularised; labels y in {-1, 1}

def logreg(w, X, y, lam):
    return np.mean(np.log1p(np.exp(-y * (X @ w)))) + lam * np.sum(w * w)


def logreg_hand(w, X, y, lam):
    e = np.exp(-y * (X @ w))
    return ((-y / X.shape[0]) * (e / (1.0 + e))) @ X + (2.0 * lam) * w


def make_logreg(n: int, d: int) -> Callable:
    def make(rng: np.random.Generator) -> tuple:
        X = rng.normal(size=(n, d))
        w_true = rng.normal(size=d)
        y = np.where(X @ w_true + rng.normal(size=n) > 0, 1.0, -1.0)
        return rng.normal(size=d) * 0.1, X, y, 0.01
    return make


# ---- XOR: 2-2-1 sigmoid MLP, binary cross-entropy on the 4 XOR points

def xor_loss(W1, b1, W2, b2, X, y):
    h = 1.0 / (1.0 + np.exp(-(X @ W1 + b1)))
    p = 1.0 / (1.0 + np.exp(-(h @ W2 + b2)))
    return -np.mean(y * np.log(p) + (1.0 - y) * np.log(1.0 - p))


def xor_hand(W1, b1, W2, b2, X, y):
    h = 1.0 / (1.0 + np.exp(-(X @ W1 + b1)))
    p = 1.0 / (1.0 + np.exp(-(h @ W2 + b2)))
    dz2 = (p - y) / y.shape[0]                   # d loss / d output logit
    dz1 = (dz2[:, None] * W2) * (h * (1.0 - h))  # back through W2 and the hidden sigmoid
    return X.T @ dz1, dz1.sum(axis=0), dz2 @ h, dz2.sum(keepdims=True)


def make_xor(rng: np.random.Generator) -> tuple:
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = np.array([0.0, 1.0, 1.0, 0.0])
    return rng.normal(size=(2, 2)), rng.normal(size=2) * 0.1, rng.normal(size=2), np.array([0.1]), X, y


# ---- MLP 4096x256 -> 512 (tanh or ReLU) -> 10, softmax cross-entropy with one-hot labels
# The log-softmax is the stable one, shifted by the row maximum, as users write it; the
# hand-written gradient shifts too, and leaves out the shift's own derivative (it cancels).

def mlp_loss(W1, b1, W2, b2, X, Y):
    h = np.tanh(X @ W1 + b1)
    z = h @ W2 + b2
    z = z - np.max(z, axis=1, keepdims=True)
    logp = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    return -np.sum(Y * logp) / X.shape[0]


def mlp_hand(W1, b1, W2, b2, X, Y):
    h = np.tanh(X @ W1 + b1)
    z = h @ W2 + b2
    e = np.exp(z - z.max(axis=1, keepdims=True))
    dz = (e / e.sum(axis=1, keepdims=True) - Y) / X.shape[0]  # (softmax - Y) / n
    da = (dz @ W2.T) * (1.0 - h * h)                           # back through tanh
    return X.T @ da, da.sum(axis=0), h.T @ dz, dz.sum(axis=0)


def mlp_relu_loss(W1, b1, W2, b2, X, Y):
    h = np.maximum(X @ W1 + b1, 0.0)
    z = h @ W2 + b2
    z = z - np.max(z, axis=1, keepdims=True)
    logp = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    return -np.sum(Y * logp) / X.shape[0]


def mlp_relu_hand(W1, b1, W2, b2, X, Y):
    h = np.maximum(X @ W1 + b1, 0.0)
    z = h @ W2 + b2
    e = np.exp(z - z.max(axis=1, keepdims=True))
    dz = (e / e.sum(axis=1, keepdims=True) - Y) / X.shape[0]
    da = (dz @ W2.T) * (h > 0.0)
    return X.T @ da, da.sum(axis=0), h.T @ dz, dz.sum(axis=0)


def make_mlp(rng: np.random.Generator, n: int = 4096, d: int = 256, hidden: int = 512,
             classes: int = 10) -> tuple:
    X = rng.normal(size=(n, d))
    Y = np.eye(classes)[rng.integers(0, classes, size=n)]  # one-hot, (n, classes)
    W1 = rng.normal(size=(d, hidden)) / math.sqrt(d)
    W2 = rng.normal(size=(hidden, classes)) / math.sqrt(hidden)
    return W1, rng.normal(size=hidden) * 0.01, W2, rng.normal(size=classes) * 0.01, X, Y


# ---- RNN unrolled by a Python for loop; gradient with respect to Wx and Wh

def rnn_loss(Wx, Wh, xs):
    h = np.zeros(Wh.shape[0])
    for t in range(xs.shape[0]):
        h = np.tanh(Wx @ xs[t] + Wh @ h)
    return np.sum(h ** 2)


def rnn_hand(Wx, Wh, xs):
    """Backpropagation through time: keep the states, walk back collecting each step's
    pre-activation cotangent, then form both weight gradients with one matmul each."""
    T, H = xs.shape[0], Wh.shape[0]
    hs = np.zeros((T + 1, H))                # hs[t + 1] is h after step t
    for t in range(T):
        hs[t + 1] = np.tanh(Wx @ xs[t] + Wh @ hs[t])
    da = np.empty((T, H))
    dh = 2.0 * hs[T]
    for t in range(T - 1, -1, -1):
        da[t] = dh * (1.0 - hs[t + 1] * hs[t + 1])
        dh = da[t] @ Wh
    return da.T @ xs, da.T @ hs[:-1]


def make_rnn(T: int, H: int, D: int) -> Callable:
    def make(rng: np.random.Generator) -> tuple:
        return (rng.normal(size=(H, D)) / math.sqrt(D), rng.normal(size=(H, H)) / math.sqrt(H),
                rng.normal(size=(T, D)))
    return make


# ---- scalar loop with a data-dependent branch, on Python floats

def branchy(x, n):
    s = x
    for _ in range(n):
        if s > 1.0:
            s = s * 0.9 + math.sin(x)
        else:
            s = s * 1.1 + x * 0.01
    return s


def branchy_hand(x, n):
    """Forward mode: carry ds/dx along with s (sin x and its derivative are loop-invariant)."""
    sin_x, cos_x = math.sin(x), math.cos(x)
    s, ds = x, 1.0
    for _ in range(n):
        if s > 1.0:
            s, ds = s * 0.9 + sin_x, ds * 0.9 + cos_x
        else:
            s, ds = s * 1.1 + x * 0.01, ds * 1.1 + 0.01
    return ds


def branchy_lax(x, n):
    """``branchy`` as a JAX user writes it for ``jax.jit`` (a Python ``if`` on a traced value
    does not trace): ``lax.fori_loop`` and ``lax.cond``; ``n`` is static."""
    def body(i, s):
        return lax.cond(s > 1.0, lambda s: s * 0.9 + jnp.sin(x), lambda s: s * 1.1 + x * 0.01, s)
    return lax.fori_loop(0, n, body, x)


# ---- piecewise: where and maximum (ReLU-like kinks)

def piecewise(x, w):
    return np.sum(np.where(x > 0, x * x, 0.5 * x) + np.maximum(x, 0.1) * w)


def piecewise_hand(x, w):
    return np.where(x > 0, 2.0 * x, 0.5) + np.where(x > 0.1, w, 0.0), np.maximum(x, 0.1)


def make_piecewise(n: int) -> Callable:
    return lambda rng: (rng.normal(size=n), rng.normal(size=n))



# ============================================================================ other writing styles
# The same workloads written the other ways people write them: an element loop instead of
# slices, helpers instead of one expression, globals instead of arguments, iteration over an
# array's rows instead of an index, a while loop, a fill loop. Each is compared with a
# hand-written gradient in the same style (a loop written by hand where the user wrote a loop),
# and the targets are the same.

def rosen_loop(x):
    s = 0.0
    for i in range(x.shape[0] - 1):
        s = s + 100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2
    return s


def rosen_loop_hand(x):
    g = np.zeros_like(x)
    for i in range(x.shape[0] - 1):
        xi = x[i]
        t = 200.0 * (x[i + 1] - xi * xi)
        g[i] += -2.0 * (1.0 - xi) - 2.0 * xi * t
        g[i + 1] += t
    return g


# ---- scalar code on the elements of a state vector: x[0], x[1] and math

def pendulum(q):
    theta = q[0]
    omega = q[1]
    return 0.5 * omega * omega - math.cos(theta) + 0.1 * math.sin(theta) * omega


def pendulum_hand(q):
    theta = q[0]
    omega = q[1]
    s, c = math.sin(theta), math.cos(theta)
    return np.array([s + 0.1 * c * omega, omega + 0.1 * s])


# ---- logistic regression reading its data from module globals

X_TRAIN = y_TRAIN = None
LAM = 0.01


def logreg_globals(w):
    return np.mean(np.log1p(np.exp(-y_TRAIN * (X_TRAIN @ w)))) + LAM * np.sum(w * w)


def logreg_globals_hand(w):
    return logreg_hand(w, X_TRAIN, y_TRAIN, LAM)


def make_logreg_globals(n: int, d: int) -> Callable:
    def make(rng: np.random.Generator) -> tuple:
        global X_TRAIN, y_TRAIN
        w, X_TRAIN, y_TRAIN, _ = make_logreg(n, d)(rng)
        return (w,)
    return make


# ---- logistic regression and the MLPs written with small helpers

def log_loss(margin):
    return np.log1p(np.exp(-margin))


def l2(w):
    return np.sum(w * w)


def logreg_helpers(w, X, y, lam):
    return np.mean(log_loss(y * (X @ w))) + lam * l2(w)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def xor_helpers(W1, b1, W2, b2, X, y):
    h = sigmoid(X @ W1 + b1)
    p = sigmoid(h @ W2 + b2)
    return -np.mean(y * np.log(p) + (1.0 - y) * np.log(1.0 - p))


def dense(x, W, b):
    return x @ W + b


def log_softmax(z):
    z = z - np.max(z, axis=1, keepdims=True)
    return z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))


def mlp_helpers(W1, b1, W2, b2, X, Y):
    h = np.tanh(dense(X, W1, b1))
    return -np.sum(Y * log_softmax(dense(h, W2, b2))) / X.shape[0]


def mlp_relu_where(W1, b1, W2, b2, X, Y):
    a = X @ W1 + b1
    h = np.where(a > 0.0, a, 0.0)
    z = h @ W2 + b2
    z = z - np.max(z, axis=1, keepdims=True)
    logp = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    return -np.sum(Y * logp) / X.shape[0]


def mlp_relu_where_hand(W1, b1, W2, b2, X, Y):
    """As mlp_relu_hand, in the same style as the loss: the ReLU and its mask with np.where."""
    a = X @ W1 + b1
    positive = a > 0.0
    h = np.where(positive, a, 0.0)
    z = h @ W2 + b2
    e = np.exp(z - z.max(axis=1, keepdims=True))
    dz = (e / e.sum(axis=1, keepdims=True) - Y) / X.shape[0]
    da = np.where(positive, dz @ W2.T, 0.0)
    return X.T @ da, da.sum(axis=0), h.T @ dz, dz.sum(axis=0)


# ---- the RNN iterating over the rows of xs

def rnn_rows(Wx, Wh, xs):
    h = np.zeros(Wh.shape[0])
    for x_t in xs:
        h = np.tanh(Wx @ x_t + Wh @ h)
    return np.sum(h ** 2)


# ---- the scalar loop with a branch as a while loop

def branchy_while(x, n):
    s = x
    i = 0
    while i < n:
        if s > 1.0:
            s = s * 0.9 + math.sin(x)
        else:
            s = s * 1.1 + x * 0.01
        i += 1
    return s


# ---- a 1,000-step scalar loop on an element of a vector

def element_loop(x):
    s = 0.0
    for i in range(1000):
        s = s + math.sin(x[0] * i) * 0.001
    return s


def element_loop_hand(x):
    x0 = x[0]
    d = 0.0
    for i in range(1000):
        d += math.cos(x0 * i) * (0.001 * i)
    g = np.zeros_like(x)
    g[0] = d
    return g


# ---- the piecewise function as an element loop with the builtin max

def piecewise_loop(x, w):
    s = 0.0
    for i in range(x.shape[0]):
        xi = x[i]
        if xi > 0:
            s = s + xi * xi
        else:
            s = s + 0.5 * xi
        s = s + max(xi, 0.1) * w[i]
    return s


def piecewise_loop_hand(x, w):
    dx = np.empty_like(x)
    dw = np.empty_like(w)
    for i in range(x.shape[0]):
        xi = x[i]
        d = 2.0 * xi if xi > 0 else 0.5
        if xi > 0.1:
            d += w[i]
        dx[i] = d
        dw[i] = max(xi, 0.1)
    return dx, dw


# ---- a 3-point stencil: a fill loop, and vectorised with slices

def stencil_loop(x):
    n = x.shape[0]
    y = np.zeros(n)
    for i in range(1, n - 1):
        y[i] = 0.25 * x[i - 1] + 0.5 * x[i] + 0.25 * x[i + 1]
    return np.sum(y * y)


def stencil_loop_hand(x):
    n = x.shape[0]
    y = np.zeros(n)
    for i in range(1, n - 1):
        y[i] = 0.25 * x[i - 1] + 0.5 * x[i] + 0.25 * x[i + 1]
    dx = np.zeros(n)
    for i in range(n - 2, 0, -1):
        dyi = 2.0 * y[i]
        dx[i - 1] += 0.25 * dyi
        dx[i] += 0.5 * dyi
        dx[i + 1] += 0.25 * dyi
    return dx


def stencil_vec(x):
    y = 0.25 * x[:-2] + 0.5 * x[1:-1] + 0.25 * x[2:]
    return np.sum(y * y)


def stencil_vec_hand(x):
    dy = 2.0 * (0.25 * x[:-2] + 0.5 * x[1:-1] + 0.25 * x[2:])
    dx = np.zeros_like(x)
    dx[:-2] = 0.25 * dy
    dx[1:-1] += 0.5 * dy
    dx[2:] += 0.25 * dy
    return dx


def make_vector(n: int) -> Callable:
    return lambda rng: (rng.normal(size=n),)

@dataclass
class Workload:
    key: str
    name: str
    kind: str  # "scalar", "small" or "large": which symdiff/hand-written target applies
    loss: Callable
    hand: Callable
    argnums: int | tuple
    make_args: Callable[[np.random.Generator], tuple]
    jax_jit_loss: Callable | None = None  # what jax.jit differentiates, if not ``loss``

    @property
    def target(self) -> float:
        return TARGETS[self.kind]

    @property
    def slow(self) -> bool:  # tens of ms per call: fewer, longer repeats
        return self.kind == "large"


WORKLOADS = [
    Workload("rosen-scalar", "Rosenbrock, 2 Python floats", "scalar", rosenbrock, rosenbrock_hand,
             (0, 1), lambda rng: (-1.2, 1.0)),
    Workload("rosen-10", "Rosenbrock n-dim, n=10", "small", rosen_nd, rosen_nd_hand, 0, make_rosen_nd(10)),
    Workload("rosen-1e5", "Rosenbrock n-dim, n=100,000", "large", rosen_nd, rosen_nd_hand, 0,
             make_rosen_nd(100_000)),
    Workload("logreg-small", "logistic regression + L2, X 64×8", "small", logreg, logreg_hand, 0,
             make_logreg(64, 8)),
    Workload("logreg-large", "logistic regression + L2, X 100,000×50", "large", logreg, logreg_hand, 0,
             make_logreg(100_000, 50)),
    Workload("xor", "XOR MLP 2-2-1 sigmoid, BCE", "small", xor_loss, xor_hand, (0, 1, 2, 3), make_xor),
    Workload("mlp", "MLP 4096×256-512(tanh)-10, softmax CE", "large", mlp_loss, mlp_hand, (0, 1, 2, 3),
             make_mlp),
    Workload("mlp-relu", "MLP 4096×256-512(ReLU)-10, softmax CE", "large", mlp_relu_loss, mlp_relu_hand,
             (0, 1, 2, 3), make_mlp),
    Workload("rnn-small", "RNN loop T=10, H=8 (D=4), grad Wx, Wh", "small", rnn_loss, rnn_hand, (0, 1),
             make_rnn(10, 8, 4)),
    Workload("rnn-large", "RNN loop T=200, H=128 (D=64), grad Wx, Wh", "large", rnn_loss, rnn_hand, (0, 1),
             make_rnn(200, 128, 64)),
    Workload("loop-10", "scalar loop + branch on floats, n=10", "scalar", branchy, branchy_hand, 0,
             lambda rng: (0.5, 10), branchy_lax),
    Workload("loop-1000", "scalar loop + branch on floats, n=1000", "scalar", branchy, branchy_hand, 0,
             lambda rng: (0.5, 1000), branchy_lax),
    Workload("where-1e3", "where/maximum, n=1,000", "small", piecewise, piecewise_hand, (0, 1),
             make_piecewise(1_000)),
    Workload("where-1e6", "where/maximum, n=1,000,000", "large", piecewise, piecewise_hand, (0, 1),
             make_piecewise(1_000_000)),
    # the same workloads in other writing styles
    Workload("rosen-loop-10", "Rosenbrock n=10 as an element loop", "scalar", rosen_loop, rosen_loop_hand, 0,
             make_rosen_nd(10)),
    Workload("pendulum-x0", "scalar math on x[0], x[1] of a vector", "scalar", pendulum, pendulum_hand, 0,
             lambda rng: (np.array([0.3, -1.2]),)),
    Workload("logreg-small-globals", "logistic regression 64×8, data in globals", "small", logreg_globals,
             logreg_globals_hand, 0, make_logreg_globals(64, 8)),
    Workload("logreg-large-helpers", "logistic regression 100,000×50, with helpers", "large", logreg_helpers,
             logreg_hand, 0, make_logreg(100_000, 50)),
    Workload("xor-helpers", "XOR MLP with a sigmoid helper", "small", xor_helpers, xor_hand, (0, 1, 2, 3),
             make_xor),
    Workload("mlp-helpers", "MLP (tanh) with dense/log_softmax helpers", "large", mlp_helpers, mlp_hand,
             (0, 1, 2, 3), make_mlp),
    Workload("mlp-relu-where", "MLP (ReLU as np.where)", "large", mlp_relu_where, mlp_relu_where_hand, (0, 1, 2, 3),
             make_mlp),
    Workload("rnn-rows-small", "RNN T=10, H=8 over the rows of xs", "small", rnn_rows, rnn_hand, (0, 1),
             make_rnn(10, 8, 4)),
    Workload("rnn-rows-large", "RNN T=200, H=128 over the rows of xs", "large", rnn_rows, rnn_hand, (0, 1),
             make_rnn(200, 128, 64)),
    Workload("while-1000", "scalar while loop + branch, n=1000", "scalar", branchy_while, branchy_hand, 0,
             lambda rng: (0.5, 1000), branchy_lax),
    Workload("element-loop-1000", "1,000-step scalar loop on x[0]", "scalar", element_loop, element_loop_hand, 0,
             lambda rng: (np.array([0.3, 1.0]),)),
    Workload("where-loop-1e3", "where/max as an element loop, n=1,000", "scalar", piecewise_loop,
             piecewise_loop_hand, (0, 1), make_piecewise(1_000)),
    Workload("stencil-loop-1e4", "3-point stencil fill loop, n=10,000", "scalar", stencil_loop,
             stencil_loop_hand, 0, make_vector(10_000)),
    Workload("stencil-vec-1e6", "3-point stencil with slices, n=1,000,000", "large", stencil_vec,
             stencil_vec_hand, 0, make_vector(1_000_000)),
]

# ============================================================================ other AD tools


class _MathVia:
    """Stands in for ``math`` in a rebound function: ``math.sin`` -> ``xnp.sin`` (autograd and
    JAX users write ``np.sin`` on traced scalars)."""

    def __init__(self, xnp: Any):
        self._xnp = xnp

    def __getattr__(self, name: str) -> Any:
        return getattr(self._xnp, name)


def rebind(fn: Callable, xnp: Any) -> Callable:
    """``fn`` with its globals ``np`` and ``math`` bound to ``xnp`` (autograd.numpy, jax.numpy),
    and so are the helpers of this module that it calls (``sigmoid``, ``dense``)."""
    namespace = dict(fn.__globals__, np=xnp, math=_MathVia(xnp))

    def moved(f: types.FunctionType) -> types.FunctionType:
        return types.FunctionType(f.__code__, namespace, f.__name__, f.__defaults__, f.__closure__)
    for name, value in fn.__globals__.items():
        if isinstance(value, types.FunctionType) and value.__globals__ is fn.__globals__:
            namespace[name] = moved(value)
    return moved(fn)


def blocking(fn: Callable) -> Callable:
    """JAX dispatches asynchronously: a timed call must wait for its result."""
    def call(*args: Any) -> Any:
        return jax.block_until_ready(fn(*args))
    return call


def other_tools(w: Workload, args: tuple) -> dict[str, tuple[Callable, tuple]]:
    """The gradient functions of autograd / JAX for ``w``, each with the arguments to time
    it on (JAX gets its arrays as device arrays up front, as a JAX user keeps them)."""
    tools: dict[str, tuple[Callable, tuple]] = {}
    if autograd is not None:
        tools["autograd"] = (autograd.grad(rebind(w.loss, anp), w.argnums), args)
    if jax is not None:
        jargs = tuple(jnp.asarray(a) if isinstance(a, np.ndarray) else a for a in args)
        static = tuple(i for i, a in enumerate(args) if type(a) is int)
        tools["jax"] = (blocking(jax.grad(rebind(w.loss, jnp), w.argnums)), jargs)
        jit_loss = w.jax_jit_loss or rebind(w.loss, jnp)
        tools["jax-jit"] = (blocking(jax.jit(jax.grad(jit_loss, w.argnums), static_argnums=static)), jargs)
    return tools


def tool_versions() -> dict[str, str]:
    versions = {}
    for name, module in (("autograd", autograd), ("jax", jax)):
        if module is None:
            versions[name] = "not installed"
            continue
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = getattr(module, "__version__", "?")
        if name == "jax":
            versions[name] += f" (jaxlib {importlib.metadata.version('jaxlib')}, x64, {jax.default_backend()})"
    return versions


# ============================================================================ timing


def make_timer(fn: Callable, args: tuple) -> timeit.Timer:
    """A Timer for ``fn(a0, a1, ...)`` with the arguments as globals (no ``*args`` or lambda
    overhead, which would blur the comparison on sub-microsecond workloads)."""
    names = [f"a{i}" for i in range(len(args))]
    namespace: dict[str, Any] = dict(zip(names, args))
    namespace["fn"] = fn
    return timeit.Timer(f"fn({', '.join(names)})", globals=namespace)


def calibrate(timer: timeit.Timer, target: float, min_number: int = 1) -> int:
    """Loop count N (at least ``min_number``) so that one repeat of N calls takes about
    ``target`` seconds."""
    timer.timeit(1)  # warm-up (first-touch allocations, caches)
    n = 1
    while True:
        t = timer.timeit(n)
        if t >= target / 5:
            return max(min_number, round(n * target / t))
        n *= 2 if t <= 0 else min(10, max(2, math.ceil(target / 5 / t)))


def measure(timers: dict[str, timeit.Timer], repeats: int, target: float,
            min_number: int = 1) -> tuple[dict, dict]:
    """Best seconds per call of each timer; the repeats of all timers are interleaved, in an
    order that rotates every repeat."""
    numbers = {k: calibrate(t, target, min_number) for k, t in timers.items()}
    best = {k: math.inf for k in timers}
    keys = list(timers)
    for r in range(repeats):
        shift = r % len(keys)
        for k in keys[shift:] + keys[:shift]:
            best[k] = min(best[k], timers[k].timeit(numbers[k]) / numbers[k])
    return best, numbers


def first_gradient(w: Workload, args: tuple) -> tuple[float, Any, Any]:
    """Seconds to construct a fresh ``symdiff.grad`` and make its first call."""
    t0 = time.perf_counter()
    g = symdiff.grad(w.loss, argnums=w.argnums)
    out = g(*args)
    return time.perf_counter() - t0, g, out


class CompileTimeout(Exception):
    pass


def with_timeout(seconds: float, fn: Callable, *args: Any) -> Any:
    """``fn(*args)``, raising CompileTimeout after ``seconds`` (SIGALRM; no limit where that is
    unavailable). Keeps a symdiff that loops while compiling from hanging the whole run."""
    if seconds <= 0 or not hasattr(signal, "setitimer"):
        return fn(*args)

    def expire(signum: int, frame: Any) -> None:
        raise CompileTimeout(f"no gradient after {seconds:g} s (symdiff.grad + first call); "
                             "stopped (see --compile-timeout)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return fn(*args)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def pin_malloc() -> str:
    """Make glibc's malloc keep freed memory for reuse (mmap threshold 32 MiB, trim threshold
    1 GiB). By default it maps large temporaries fresh and hands them back, and how often it
    does depends on the process's allocation history (importing JAX changes it): each call then
    pays page faults for every large temporary, and the same code times 1x-5x apart from run to
    run. Pinned, the timings measure the arithmetic and memory traffic of the code itself.
    Returns what was done, for the header."""
    if not sys.platform.startswith("linux"):
        return "the platform's default"
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        ok = libc.mallopt(m_mmap_threshold, 32 << 20) == 1 and libc.mallopt(m_trim_threshold, 1 << 30) == 1
    except (OSError, AttributeError):
        return "the platform's default (no mallopt)"
    if not ok:
        return "the platform's default (mallopt refused)"
    return ("glibc, pinned: `mallopt(M_MMAP_THRESHOLD, 32 MiB)`, `mallopt(M_TRIM_THRESHOLD, 1 GiB)` "
            "(freed large temporaries are reused, not page-faulted in afresh each call; "
            "`--default-malloc` turns this off)")


# ============================================================================ checking


def as_tuple(grads: Any, argnums: int | tuple) -> tuple:
    return (grads,) if isinstance(argnums, int) else grads


def check_gradients(got: Any, expected: Any, args: tuple, argnums: int | tuple, strict: bool) -> None:
    """``got`` equals the hand-written ``expected`` (rtol 1e-6); ``strict`` (symdiff): each
    gradient also has its argument's type (float for a Python float, an ndarray of its shape)."""
    nums = (argnums,) if isinstance(argnums, int) else argnums
    expected = as_tuple(expected, argnums)
    if isinstance(argnums, tuple) and (not isinstance(got, tuple) or len(got) != len(nums)):
        raise AssertionError(f"expected a tuple of {len(nums)} gradients, got {type(got).__name__}")
    for i, (g, e, argnum) in enumerate(zip(as_tuple(got, argnums), expected, nums)):
        arg = args[argnum]
        if strict and isinstance(arg, np.ndarray):
            if not isinstance(g, np.ndarray) or g.shape != arg.shape:
                raise AssertionError(f"gradient {i}: expected ndarray of shape {arg.shape}, got "
                                     f"{type(g).__name__} {np.shape(g)}")
        elif strict and type(g) is not type(arg):
            raise AssertionError(f"gradient {i}: expected {type(arg).__name__}, got {type(g).__name__}")
        np.testing.assert_allclose(np.asarray(g), e, rtol=RTOL, err_msg=f"gradient {i} (argnum {argnum})")


def _same(fn: Callable, args: tuple, reference: Any) -> bool:
    try:
        out = fn(*args)
        return all(np.array_equal(a, b) for a, b in zip(out, reference)) if isinstance(out, tuple) \
            else np.array_equal(out, reference)
    except Exception:  # noqa: BLE001 - diagnostic only
        return False


def one_line(exc: BaseException, limit: int = 300) -> str:
    text = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ============================================================================ running


@dataclass
class Row:
    workload: Workload
    times: dict = field(default_factory=dict)  # implementation -> best seconds per call
    loops: dict = field(default_factory=dict)  # implementation -> (N, R)
    first: float = math.nan  # symdiff time to first gradient: median over fresh grad objects
    first_cold: float = math.nan  # the very first grad object for this workload in the process
    compile: float = math.nan  # compile share of the first gradient: median over fresh objects
    jit_first: float = math.nan  # JAX jit: first call of a fresh jax.jit(jax.grad(...))
    error: str | None = None  # symdiff failure
    tool_errors: dict = field(default_factory=dict)  # autograd / JAX failures

    def t(self, key: str) -> float:
        return self.times.get(key, math.nan)


def run_workload(w: Workload, quick: bool, rng: np.random.Generator, compile_timeout: float) -> Row:
    row = Row(w)
    args = w.make_args(rng)
    if quick:
        repeats, target, first_repeats, min_number = 2, 0.01, 1, 1
    elif w.slow:  # ~1-100 ms per gradient: 9 repeats of a few (>= 3) calls
        repeats, target, first_repeats, min_number = 9, 0.15, 5, 3
    else:
        repeats, target, first_repeats, min_number = 9, 0.15, 5, 1

    # Correctness first, untimed (apart from the cold first gradients it yields).
    value = w.loss(*args)
    if not np.isfinite(value):
        raise RuntimeError(f"{w.name}: the loss is not finite ({value})")
    expected = w.hand(*args)
    timers = {"forward": make_timer(w.loss, args), "hand": make_timer(w.hand, args)}
    try:
        row.first_cold, g, got = with_timeout(compile_timeout, first_gradient, w, args)
        check_gradients(got, expected, args, w.argnums, strict=True)
        timers["symdiff"] = make_timer(g, args)
        direct = _compiled_function(g, w.loss)
        if direct is not None and _same(direct, args, got):
            timers["direct"] = make_timer(direct, args)
    except Exception as exc:  # noqa: BLE001 - report any failure in the table, keep going
        row.error = one_line(exc)
    for name, (fn, targs) in other_tools(w, args).items():
        try:
            t0 = time.perf_counter()
            out = fn(*targs)
            if name == "jax-jit":
                row.jit_first = time.perf_counter() - t0
            out = tuple(np.asarray(o) for o in out) if isinstance(out, tuple) else np.asarray(out)
            check_gradients(out, expected, args, w.argnums, strict=False)
            timers[name] = make_timer(fn, targs)
        except Exception as exc:  # noqa: BLE001
            row.tool_errors[name] = one_line(exc, 160)

    row.times, numbers = measure(timers, repeats, target, min_number)
    row.loops = {k: (n, repeats) for k, n in numbers.items()}
    if row.error is None:
        # Compile share: each fresh object's first call minus its own second call (paired, so
        # that drift in a large workload's call time does not count as compiling).
        firsts, shares = [], []
        for _ in range(first_repeats):
            first, g, _ = first_gradient(w, args)
            t0 = time.perf_counter()
            g(*args)
            firsts.append(first)
            shares.append(first - (time.perf_counter() - t0))
        row.first, row.compile = float(np.median(firsts)), float(np.median(shares))
    return row


def _compiled_function(g: Any, loss: Callable) -> Callable | None:
    """The generated gradient as a plain function, rebuilt from the public ``g.source`` (for the
    dispatch-overhead diagnostic); None if that is not possible."""
    source = getattr(g, "source", None)
    if not isinstance(source, str):
        return None
    try:
        namespace = dict(loss.__globals__)  # names the source lists as "from your code"
        exec(compile(source, "<symdiff source>", "exec"), namespace)  # noqa: S102 - symdiff's own code
        fn = namespace.get(getattr(g, "__name__", None)) or namespace.get(f"grad_{loss.__name__}")
        return fn if callable(fn) else None
    except Exception:  # noqa: BLE001 - diagnostic only
        return None


# ============================================================================ reporting


def fmt_time(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "—"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if seconds >= scale or unit == "ns":
            value = seconds / scale
            return f"{value:.3g} {unit}" if value < 100 else f"{value:.0f} {unit}"
    raise AssertionError


def fmt_share(seconds: float) -> str:
    return fmt_time(seconds) if seconds > 0 else "within noise"


def fmt_ratio(ratio: float) -> str:
    if not math.isfinite(ratio):
        return "—"
    return f"{ratio:.2f}x" if ratio < 10 else f"{ratio:.1f}x" if ratio < 100 else f"{ratio:,.0f}x"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "**MISS**"


def first_cell(r: Row) -> str:
    """Time to first gradient (compile share) against the 20 ms target. Where one steady-state
    call alone takes half of that or more, the target is judged on the compile share."""
    text = f"{fmt_time(r.first)} (compile {fmt_share(r.compile)})"
    if r.t("symdiff") >= FIRST_TARGET / 2:
        return f"{text} {verdict(r.compile <= FIRST_TARGET)}†"
    return f"{text} {verdict(r.first <= FIRST_TARGET)}"


def main_table(rows: list[Row]) -> str:
    lines = ["| workload | kind | forward | hand-written grad | symdiff grad | symdiff / hand-written "
             "| symdiff / forward (hand / forward) | time to first grad (compile share) |",
             "|---|---|---:|---:|---:|---|---|---|"]
    for r in rows:
        w = r.workload
        cells = [w.name, w.kind, fmt_time(r.t("forward")), fmt_time(r.t("hand"))]
        if r.error is not None:
            cells += ["FAILED: " + r.error.replace("|", "\\|"), "FAILED", "—", "—"]
        else:
            ratio, fwd, hand_fwd = r.t("symdiff") / r.t("hand"), r.t("symdiff") / r.t("forward"), \
                r.t("hand") / r.t("forward")
            fwd_cell = f"{fwd:.2f}x (hand {hand_fwd:.2f}x)"
            fwd_cell += f" {verdict(fwd <= FORWARD_TARGET)}" if hand_fwd <= FORWARD_TARGET else " n/a"
            cells += [fmt_time(r.t("symdiff")), f"{ratio:.2f}x {verdict(ratio <= w.target)} (≤ {w.target}x)",
                      fwd_cell, first_cell(r)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def tool_cell(r: Row, key: str) -> str:
    """Time per call of implementation ``key`` and its ratio to the hand-written gradient."""
    if key in r.tool_errors:
        return "FAILED: " + r.tool_errors[key].replace("|", "\\|")
    if key == "symdiff" and r.error is not None:
        return "FAILED"
    return f"{fmt_time(r.t(key))} ({fmt_ratio(r.t(key) / r.t('hand'))})"


def tools_table(rows: list, titles: dict | None = None, hand: str = "hand-written grad",
                mine: str = "symdiff grad") -> str:
    """Per workload: hand-written, symdiff and each installed AD tool (``titles``: key -> column
    title), each with its ratio to the hand-written one, and JAX's jit compile time."""
    titles = titles or {"autograd": "autograd grad", "jax": "JAX grad, eager (no jit)", "jax-jit": "JAX jit(grad)"}
    installed = {"autograd": autograd, "jax": jax, "jax-jit": jax}
    tools = [k for k in titles if installed[k] is not None]
    lines = [f"| workload | {hand} | {mine} | " + " | ".join(titles[k] for k in tools)
             + (" | JAX jit compile |" if jax is not None else " |"),
             "|---|" + "---:|" * (2 + len(tools) + (jax is not None))]
    for r in rows:
        cells = [r.workload.name, fmt_time(r.t("hand"))] + [tool_cell(r, k) for k in ("symdiff", *tools)]
        if jax is not None:
            cells.append(fmt_share(r.jit_first - r.t("jax-jit")) if "jax-jit" not in r.tool_errors else "—")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def notes(rows: list[Row], quick: bool) -> str:
    order = ("forward", "hand", "symdiff", "direct", "autograd", "jax", "jax-jit")
    out = [
        "Notes:",
        "- Kinds and targets: symdiff / hand-written ≤ 1.5x on scalar (Python float) workloads, ≤ 1.3x "
        "on small-array, ≤ 1.1x on large-array ones; symdiff / forward ≤ 3x where the hand-written "
        "gradient itself is within 3x of the forward pass (n/a elsewhere); time to first gradient "
        "≤ 20 ms (†: one steady-state gradient call alone takes ≥ 10 ms there, so the compile share "
        "is judged instead).",
        "- Times are per call: best of R repeats of N calls each (`timeit`, the repeats of all "
        "implementations interleaved, rotating order). N×R ("
        + " / ".join(k for k in order) + "): "
        + "; ".join(f"{r.workload.key}: " + " / ".join(f"{r.loops[k][0]}×{r.loops[k][1]}"
                                                      for k in order if k in r.loops) for r in rows) + ".",
        f"- Every gradient (symdiff, autograd, JAX) was checked against the hand-written one "
        f"(`assert_allclose`, rtol={RTOL:g}) before timing; symdiff's also for type and shape. "
        "A FAILED cell did not pass (or raised); its message is shown.",
        "- Time to first grad: a fresh `symdiff.grad(loss, argnums=...)` plus its first call (parse, "
        "IR, reverse mode, codegen, `compile`, one evaluation), median of 5 fresh objects; compile "
        "share = median over them of that minus the same object's second call. Cold (the first "
        "object for the workload in the process, which also pays first-touch page faults): "
        + "; ".join(f"{r.workload.key}: {fmt_time(r.first_cold)}" for r in rows if r.error is None) + ".",
        "- The symdiff column calls what `symdiff.grad` returns (argument-type dispatch, then the "
        "generated code). The generated function alone (`.source` compiled and called directly): "
        + "; ".join(f"{r.workload.key}: {fmt_time(r.t('direct'))} ({r.t('direct') / r.t('hand'):.2f}x "
                    "hand-written)" for r in rows if math.isfinite(r.t("direct"))) + ".",
    ]
    if autograd is not None or jax is not None:
        out.append(
            "- autograd and JAX differentiate the same loss functions with `np` (and `math`) rebound to "
            "`autograd.numpy` / `jax.numpy`. JAX runs in float64 (`jax_enable_x64`) on device arrays "
            "made up front, and every timed JAX call ends in `block_until_ready`. JAX jit: steady-state "
            "time of `jax.jit(jax.grad(loss))` (Python ints static); its compile time is the first call "
            "minus a steady-state call. The scalar loop with a branch cannot be traced by `jax.jit` as "
            "written (a Python `if` on a traced value), so its jit column differentiates the "
            "`lax.fori_loop` + `lax.cond` version a JAX user would write. Ratios in parentheses are to "
            "the hand-written gradient.")
    if quick:
        out.append("- QUICK MODE (--quick): few, short repeats; numbers are noisy, for smoke testing only.")
    return "\n".join(out)


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return -1.0


LOAD_AT_START = _load()


def git_state() -> str:
    """The commit of the checkout symdiff is imported from, and whether symdiff/ has changes."""
    where = Path(symdiff.__file__).resolve().parent
    try:
        def git(*a: str) -> str:
            return subprocess.run(["git", "-C", str(where), *a], capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        commit = git("rev-parse", "HEAD")
        if not commit:
            return "not a git checkout"
        dirty = git("status", "--porcelain", "--", ".")
        return commit + (" + uncommitted changes in symdiff/" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine_header(title: str, malloc: str) -> str:
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    blas = "unknown"
    try:
        info = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{info.get('name')} {info.get('version')}"
    except Exception:  # noqa: BLE001 - older NumPy: leave it out
        pass
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load = f"{LOAD_AT_START:.2f} at start, {_load():.2f} at end" if LOAD_AT_START >= 0 else "unknown"
    versions = tool_versions()
    return "\n".join([
        f"# {title}",
        "",
        f"- date: {now}",
        f"- machine: {platform.platform()} ({platform.machine()}), CPU: {cpu or 'unknown'}",
        f"- cores: {os.cpu_count()} (usable by this process: {usable}); 1-minute load average: {load}",
        f"- Python: {platform.python_implementation()} {platform.python_version()}",
        f"- NumPy: {np.__version__} (BLAS: {blas}); allocator: {malloc}",
        f"- symdiff: {getattr(symdiff, '__version__', '?')}, git commit {git_state()}",
        f"- autograd: {versions['autograd']}; JAX: {versions['jax']}",
        f"- command: `{shlex.join(['python', sys.argv[0], *sys.argv[1:]])}`",
    ])


def section_markers(script: str) -> tuple[str, str]:
    """The marker comments around the section of RESULTS.md that ``script`` writes."""
    return f"<!-- {script}: begin -->", f"<!-- {script}: end -->"


KEPT_SECTIONS = ("bench_hessian.py", "compile_scaling.py", "bench_dask.py")  # the other scripts' sections of RESULTS.md


def write_section(path: Path, script: str, section: str) -> None:
    """Put ``section`` into ``path`` between ``script``'s markers, in place of what was there
    (appended if there is none); this script keeps it when it rewrites the file."""
    begin_marker, end_marker = section_markers(script)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    block = f"{begin_marker}\n{section}\n{end_marker}"
    begin, end = text.find(begin_marker), text.find(end_marker)
    if 0 <= begin < end:
        text = text[:begin] + block + text[end + len(end_marker):]
    else:
        text = (text.rstrip("\n") + "\n\n" if text else "") + block + "\n"
    path.write_text(text, encoding="utf-8")


def kept_section(path: Path) -> str:
    """The sections the other scripts (KEPT_SECTIONS) wrote into ``path``, each between its
    markers and preceded by a blank line, in the order of KEPT_SECTIONS, or "" if there are
    none: rewriting the file keeps them."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return ""
    kept = ""
    for script in KEPT_SECTIONS:
        begin_marker, end_marker = section_markers(script)
        begin, end = text.find(begin_marker), text.find(end_marker)
        if 0 <= begin < end:
            kept += "\n" + text[begin:end + len(end_marker)] + "\n"
    return kept


def main(argv: list[str] | None = None, title: str = "symdiff benchmark suite") -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="few short repeats (smoke test); writes no file unless --output is given")
    parser.add_argument("--only", metavar="KEYS", default=None,
                        help="comma-separated workload keys (" + ", ".join(w.key for w in WORKLOADS)
                             + "); writes no file unless --output is given")
    parser.add_argument("--output", metavar="PATH", type=Path, default=None,
                        help=f"write the tables with a machine header here (default for a full run: "
                             f"{DEFAULT_OUTPUT.relative_to(HERE.parent)})")
    parser.add_argument("--seed", type=int, default=0, help="random seed for the workloads' data")
    parser.add_argument("--default-malloc", action="store_true",
                        help="leave glibc's malloc thresholds alone (see pin_malloc: noisier large-array timings)")
    parser.add_argument("--compile-timeout", type=float, default=30.0, metavar="SECONDS",
                        help="mark a workload FAILED if symdiff.grad + its first call take longer "
                             "(default 30; 0 = no limit)")
    opts = parser.parse_args(argv)
    workloads = WORKLOADS
    if opts.only:
        keys = opts.only.split(",")
        unknown = set(keys) - {w.key for w in WORKLOADS}
        if unknown:
            parser.error(f"unknown workload(s): {', '.join(sorted(unknown))}")
        workloads = [w for w in WORKLOADS if w.key in keys]
    malloc = "the platform's default (--default-malloc)" if opts.default_malloc else pin_malloc()
    output = opts.output
    if output is None and not opts.quick and not opts.only:
        output = DEFAULT_OUTPUT

    if LOAD_AT_START > 0.5 * (os.cpu_count() or 1):
        print(f"warning: the machine is busy (load average {LOAD_AT_START:.2f}); timings will be noisy",
              file=sys.stderr)
    rows = []
    start = time.perf_counter()
    for w in workloads:
        print(f"running {w.key}: {w.name} ...", file=sys.stderr, flush=True)
        # Each workload gets its own generator, so --only reproduces the full run's data.
        rng = np.random.default_rng([opts.seed, WORKLOADS.index(w)])
        rows.append(run_workload(w, opts.quick, rng, opts.compile_timeout))
    print(f"done in {time.perf_counter() - start:.0f} s", file=sys.stderr)

    text = main_table(rows)
    if autograd is not None or jax is not None:
        text += "\n\nOther AD tools (times per gradient call; ratio to the hand-written gradient):\n\n" \
                + tools_table(rows)
    text += "\n\n" + notes(rows, opts.quick)
    print(text)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        kept = kept_section(output)  # bench_hessian.py's and compile_scaling.py's, measured in their own runs
        output.write_text(machine_header(title, malloc) + "\n\n" + text + "\n" + kept, encoding="utf-8")
        print(f"\nwrote {output}", file=sys.stderr)
    return 1 if any(r.error for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
