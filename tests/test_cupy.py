"""Gradients on CuPy arrays (GPU): CuPy results, the same numbers as on NumPy arrays
(docs/scale-out.md). Skipped where CuPy or a GPU is missing."""

import numpy as np
import pytest

import symdiff
from symdiff import api

cp = pytest.importorskip("cupy", reason="CuPy is not installed (pip install cupy-cuda12x; needs an NVIDIA GPU)")


def _gpu_count():
    try:
        return cp.cuda.runtime.getDeviceCount()
    except Exception:  # noqa: BLE001 -- no driver, no device: CuPy raises its own errors
        return 0


pytestmark = pytest.mark.skipif(_gpu_count() == 0, reason="CuPy is installed but no GPU (CUDA device) is available")


def logistic_loss(w, b, X, y):
    z = X @ w + b
    return np.mean(np.logaddexp(0.0, z) - y * z)


def mlp_loss(W1, b1, w2, X, y):
    h = np.tanh(X @ W1 + b1)
    p = h @ w2
    return np.sum((p - y) ** 2) / X.shape[0]


def _data(rows=4000, cols=8):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((rows, cols))
    y = (rng.standard_normal(rows) > 0).astype(float)
    return X, y


def test_logistic_gradient_on_cupy_is_cupy_and_matches_numpy():
    X, y = _data()
    w, b = np.linspace(-0.5, 0.5, 8), 0.1
    grad = symdiff.grad(logistic_loss, argnums=(0, 1))
    dw, db = grad(cp.asarray(w), b, cp.asarray(X), cp.asarray(y))
    assert isinstance(dw, cp.ndarray) and isinstance(db, cp.ndarray)
    want_dw, want_db = grad(w, b, X, y)
    np.testing.assert_allclose(cp.asnumpy(dw), want_dw, rtol=1e-10)
    np.testing.assert_allclose(float(db), want_db, rtol=1e-10)


def test_mlp_gradient_on_cupy_matches_numpy():
    X, y = _data()
    rng = np.random.default_rng(1)
    params = rng.standard_normal((8, 16)) * 0.3, rng.standard_normal(16) * 0.1, rng.standard_normal(16)
    grad = symdiff.grad(mlp_loss, argnums=(0, 1, 2))
    got = grad(*(cp.asarray(p) for p in params), cp.asarray(X), cp.asarray(y))
    assert all(isinstance(g, cp.ndarray) for g in got)
    for g, want in zip(got, grad(*params, X, y)):
        np.testing.assert_allclose(cp.asnumpy(g), want, rtol=1e-10)


def test_created_arrays_follow_the_cupy_argument():
    x = np.arange(12.0).reshape(3, 4) / 10.0

    def f(x):
        acc = np.zeros(x.shape) + np.ones(x.shape) * np.sin(x)
        out = np.zeros(x.shape[1])
        for i in range(x.shape[0]):
            out = out + acc[i] * x[i]
        return np.sum(out)

    dx = symdiff.grad(f)(cp.asarray(x))
    assert isinstance(dx, cp.ndarray)
    np.testing.assert_allclose(cp.asnumpy(dx), np.sin(x) + x * np.cos(x), rtol=1e-12)


def test_value_and_grad_vjp_and_jvp_on_cupy_match_numpy():
    X, y = _data()
    w, b = np.linspace(-0.5, 0.5, 8), 0.1
    value, dw = symdiff.value_and_grad(logistic_loss)(cp.asarray(w), b, cp.asarray(X), cp.asarray(y))
    want_value, want_dw = symdiff.value_and_grad(logistic_loss)(w, b, X, y)
    np.testing.assert_allclose(float(value), want_value, rtol=1e-12)
    np.testing.assert_allclose(cp.asnumpy(dw), want_dw, rtol=1e-10)

    def f(X, w):
        return np.tanh(X @ w)

    _, pullback = symdiff.vjp(f, cp.asarray(X), cp.asarray(w))
    _, numpy_pullback = symdiff.vjp(f, X, w)
    for got, want in zip(pullback(cp.ones(len(X))), numpy_pullback(np.ones(len(X)))):
        np.testing.assert_allclose(cp.asnumpy(got), want, rtol=1e-10)
    _, tangent = symdiff.jvp(f, (cp.asarray(X), cp.asarray(w)), (cp.zeros_like(cp.asarray(X)), cp.ones(8)))
    _, want_tangent = symdiff.jvp(f, (X, w), (np.zeros_like(X), np.ones(8)))
    np.testing.assert_allclose(cp.asnumpy(tangent), want_tangent, rtol=1e-10)


def test_a_cupy_array_has_a_specialisation_of_its_own():
    X, y = _data()
    key = api._guard_key(cp.asarray(X))
    assert key.type is cp.ndarray and key.ones == (False, False)
    grad = symdiff.grad(logistic_loss)
    grad(cp.zeros(8), 0.0, cp.asarray(X), cp.asarray(y))  # (CuPy refuses NumPy operands)
    assert "cupy" in grad.source.splitlines()[1]
