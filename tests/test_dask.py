"""Gradients on dask arrays: the same numbers as on NumPy arrays, lazy dask results, one task
graph per call, and nothing computed while the gradient is built (docs/scale-out.md)."""

import contextlib

import numpy as np
import pytest

import symdiff
from symdiff import api

dask = pytest.importorskip("dask", reason="dask is not installed (pip install 'dask[array,distributed]')")
da = pytest.importorskip("dask.array", reason="dask.array is not installed (pip install 'dask[array]')")


def _refuse_to_compute(*args, **kwargs):
    raise AssertionError("a dask graph was computed while the gradient was made")


@contextlib.contextmanager
def nothing_computed():
    """Within: any dask compute (np.asarray of a dask array, float() of one, .compute()) fails."""
    with dask.config.set(scheduler=_refuse_to_compute):
        yield


class ComputeCounter(dask.callbacks.Callback):
    """Counts the graphs dask computes (local schedulers)."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def _start(self, dsk):
        self.count += 1


def logistic_loss(w, b, X, y):
    z = X @ w + b
    return np.mean(np.logaddexp(0.0, z) - y * z)


def mlp_loss(W1, b1, w2, X, y):
    h = np.tanh(X @ W1 + b1)
    p = h @ w2
    return np.sum((p - y) ** 2) / X.shape[0]


def _data(rows=2000, cols=5, chunk=500, seed=0):
    rs = da.random.RandomState(seed)
    X = rs.standard_normal((rows, cols), chunks=(chunk, cols))
    y = (rs.standard_normal(rows, chunks=chunk) > 0).astype(float)
    return X, y


def _params(cols=5):
    rng = np.random.default_rng(1)
    return rng.standard_normal(cols) * 0.1, 0.2


# ------------------------------------------------------------------------------ lazy, typed results


def test_gradient_over_dask_data_is_lazy_dask_and_matches_numpy():
    X, y = _data()
    w, b = _params()
    grad = symdiff.grad(logistic_loss, argnums=(0, 1))
    with nothing_computed():
        dw, db = grad(w, b, X, y)
    assert isinstance(dw, da.Array) and isinstance(db, da.Array)
    assert dw.shape == w.shape and dw.dtype == np.float64 and db.shape == ()
    expected = grad(w, b, X.compute(), y.compute())
    np.testing.assert_allclose(dw.compute(), expected[0], rtol=1e-12)
    np.testing.assert_allclose(db.compute(), expected[1], rtol=1e-12)


def test_gradients_of_one_call_compute_as_one_graph():
    X, y = _data()
    w, b = _params()
    dw, db = symdiff.grad(logistic_loss, argnums=(0, 1))(w, b, X, y)
    counter = ComputeCounter()
    with counter:
        got = dask.compute(dw, db)
    assert counter.count == 1
    with counter:
        again = symdiff.compute((dw, db))
    assert counter.count == 2  # symdiff.compute: one more graph for both
    assert all(type(g) is not da.Array for g in again)
    np.testing.assert_allclose(again[0], got[0], rtol=0)


def test_compute_leaves_numpy_results_alone():
    w = np.ones(3)
    assert symdiff.compute(w) is w
    assert symdiff.compute(w, 2.0)[1] == 2.0


def test_gradient_with_respect_to_a_dask_array_is_a_dask_array_of_its_chunks():
    X, _ = _data()
    w, _ = _params()

    def f(X, w):
        return np.sum(np.tanh(X @ w) ** 2) + 0.5 * np.sum(X ** 2)

    with nothing_computed():
        dX = symdiff.grad(f)(X, w)
    assert isinstance(dX, da.Array) and dX.shape == X.shape
    Xn = X.compute()
    np.testing.assert_allclose(dX.compute(), symdiff.grad(f)(Xn, w), rtol=1e-12)
    t = np.tanh(Xn @ w)
    np.testing.assert_allclose(dX.compute(), np.outer(2 * t * (1 - t ** 2), w) + Xn, rtol=1e-12)


def test_created_arrays_follow_the_dask_argument():
    x = da.arange(12.0, chunks=4).reshape(3, 4) / 10.0

    def f(x):
        acc = np.zeros(x.shape)
        ones = np.ones(x.shape)
        acc = acc + ones * np.sin(x) + np.zeros_like(x) * x
        out = np.zeros(x.shape[1])
        for i in range(x.shape[0]):
            out = out + acc[i] * x[i]
        return np.sum(out)

    with nothing_computed():
        dx = symdiff.grad(f)(x)
    assert isinstance(dx, da.Array)
    xn = x.compute()
    np.testing.assert_allclose(dx.compute(), symdiff.grad(f)(xn), rtol=1e-12)
    np.testing.assert_allclose(dx.compute(), np.sin(xn) + xn * np.cos(xn), rtol=1e-12)


def test_an_element_of_a_dask_array_stays_lazy():
    x = da.from_array(np.array([0.3, -1.2, 2.0]), chunks=2)

    def f(x):
        return x[0] * x[1] + np.exp(x[2]) + np.sum(x[1:] ** 2)

    with nothing_computed():
        dx = symdiff.grad(f)(x)
    assert isinstance(dx, da.Array)
    np.testing.assert_allclose(dx.compute(), [-1.2, 0.3 - 2.4, np.exp(2.0) + 4.0], rtol=1e-12)


def test_zero_gradient_of_an_unused_dask_argument_is_dask_zeros():
    X, y = _data()
    w, b = _params()

    def f(w, X, y):
        return np.sum(w ** 2)

    with nothing_computed():
        dw, dX, dy = symdiff.grad(f, argnums=(0, 1, 2))(w, X, y)
    assert isinstance(dX, da.Array) and dX.shape == X.shape and dX.chunks == X.chunks
    assert float(np.abs(dX).max().compute()) == 0.0
    np.testing.assert_allclose(dw, 2 * w)


def test_mlp_gradient_over_dask_data_matches_numpy():
    X, y = _data(cols=6)
    rng = np.random.default_rng(2)
    W1, b1, w2 = rng.standard_normal((6, 4)) * 0.3, rng.standard_normal(4) * 0.1, rng.standard_normal(4)
    grad = symdiff.grad(mlp_loss, argnums=(0, 1, 2))
    with nothing_computed():
        lazy = grad(W1, b1, w2, X, y)
    assert all(isinstance(g, da.Array) for g in lazy)
    expected = grad(W1, b1, w2, X.compute(), y.compute())
    for got, want in zip(dask.compute(*lazy), expected):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_fancy_indices_on_dask_are_refused_clearly_not_computed():
    x = da.from_array(np.arange(6.0), chunks=2)

    def f(x):
        return np.sum(x[np.array([1, 1, 3])] ** 2)

    with nothing_computed(), pytest.raises(symdiff.SymdiffError, match=r"np\.add\.at.*dask\.array\.core\.Array"):
        symdiff.grad(f)(x)


# ------------------------------------------------------------------------------ other transformations


def test_value_and_grad_on_dask_is_lazy_and_matches_numpy():
    X, y = _data()
    w, b = _params()
    value_and_grad = symdiff.value_and_grad(logistic_loss)
    with nothing_computed():
        value, dw = value_and_grad(w, b, X, y)
    assert isinstance(value, da.Array) and isinstance(dw, da.Array)
    value, dw = dask.compute(value, dw)
    want_value, want_dw = value_and_grad(w, b, X.compute(), y.compute())
    np.testing.assert_allclose(value, want_value, rtol=1e-12)
    np.testing.assert_allclose(dw, want_dw, rtol=1e-12)


def test_vjp_on_dask_is_lazy_and_matches_numpy():
    X, _ = _data()
    w, _ = _params()

    def f(X, w):
        return np.tanh(X @ w)

    u = da.ones(X.shape[0], chunks=500)
    with nothing_computed():
        out, pullback = symdiff.vjp(f, X, w)
        dX, dw = pullback(u)
    assert isinstance(out, da.Array) and isinstance(dX, da.Array) and isinstance(dw, da.Array)
    Xn = X.compute()
    _, numpy_pullback = symdiff.vjp(f, Xn, w)
    for got, want in zip(dask.compute(dX, dw), numpy_pullback(np.ones(X.shape[0]))):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_jvp_on_dask_is_lazy_and_matches_numpy():
    X, _ = _data()
    w, _ = _params()

    def f(X, w):
        return np.sum(np.tanh(X @ w) ** 2)

    tX, tw = da.ones_like(X) * 0.01, np.arange(5.0)
    with nothing_computed():
        out, tangent = symdiff.jvp(f, (X, w), (tX, tw))
    assert isinstance(out, da.Array) and isinstance(tangent, da.Array)
    want = symdiff.jvp(f, (X.compute(), w), (tX.compute(), tw))
    for got, expected in zip(dask.compute(out, tangent), want):
        np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_hvp_on_dask_matches_numpy():
    X, y = _data()
    w, b = _params()
    v = np.linspace(-1.0, 1.0, 5)
    with nothing_computed():
        product = symdiff.hvp(logistic_loss)(w, b, X, y, v)
    want = symdiff.hvp(logistic_loss)(w, b, X.compute(), y.compute(), v)
    np.testing.assert_allclose(dask.compute(product)[0], want, rtol=1e-12)


# ------------------------------------------------------------------------------ specialisation


def test_a_dask_array_has_a_specialisation_key_of_its_own():
    X, _ = _data()
    key = api._guard_key(X)
    assert key.type is da.Array and key.ones == (False, False) and key.dtype == np.float64
    assert key != api._guard_key(X.compute())
    assert api._guard_key(X[:, :1]).ones == (False, True)


def test_dask_calls_run_a_dask_specialisation_not_the_generic_version():
    X, y = _data()
    w, b = _params()
    grad = symdiff.grad(logistic_loss)
    grad(w, b, X, y)
    assert "X: float64 dask.array.core.Array of shape (*, *)" in grad.source
    compiled = len(grad._symdiff.cache)
    X2, y2 = _data(rows=3000, seed=3)
    with nothing_computed():
        grad(w, b, X2, y2)  # the same kinds: the same specialisation
    assert len(grad._symdiff.cache) == compiled
    grad(w, b, X2.compute(), y2.compute())  # NumPy arrays: a specialisation of their own
    assert len(grad._symdiff.cache) == compiled + 1
    assert "X: float64 array of shape (*, *)" in grad.source


def test_dask_array_of_unknown_shape_is_refused():
    X, y = _data()
    w, b = _params()
    unknown = X[X[:, 0] > 0]
    with pytest.raises(symdiff.SymdiffError, match="compute_chunk_sizes"):
        symdiff.grad(logistic_loss)(w, b, unknown, y)


class _TensorLike:
    """Stands for a torch tensor: a shape, a dtype, __array__ and __dlpack__, no NumPy protocols."""

    shape = (3,)
    dtype = np.dtype(np.float64)

    def __array__(self, dtype=None, copy=None):
        return np.ones(3)

    def __dlpack__(self, stream=None):
        raise NotImplementedError


class _StandardOnly:
    """An array of the array API standard alone."""

    shape = (3,)
    dtype = np.dtype(np.float64)

    def __array_namespace__(self, api_version=None):
        raise NotImplementedError


@pytest.mark.parametrize("kind, words", [(_TensorLike, "implements neither"), (_StandardOnly, "array API standard")])
def test_array_types_numpy_cannot_hand_over_to_are_refused(kind, words):
    with pytest.raises(symdiff.SymdiffError, match=words):
        symdiff.grad(lambda x: np.sum(x ** 2))(kind())


def test_other_objects_still_get_the_generic_version():
    class Number:
        def __init__(self, v):
            self.v = v

        def __mul__(self, other):
            return Number(self.v * (other.v if isinstance(other, Number) else other))

        __rmul__ = __mul__

    assert symdiff.grad(lambda x, c: x * x * c.v, argnums=0)(3.0, Number(2.0)) == 12.0


# ------------------------------------------------------------------------------ dask.distributed


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("dask.distributed", reason="dask.distributed is not installed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) \
            as cluster, distributed.Client(cluster) as client:
        yield client


ROWS, COLS, CHUNK = 10 ** 6, 50, 10 ** 5


def _big_data():
    rs = da.random.RandomState(0)
    X = rs.standard_normal((ROWS, COLS), chunks=(CHUNK, COLS))
    y = (X[:, 0] + 0.5 * rs.standard_normal(ROWS, chunks=CHUNK) > 0).astype(float)
    return X, y


def test_logistic_regression_gradient_on_a_local_cluster_matches_numpy(client):
    X, y = _big_data()
    w, b = np.linspace(-0.5, 0.5, COLS), 0.1
    grad = symdiff.grad(logistic_loss, argnums=(0, 1))
    with nothing_computed():
        lazy = grad(w, b, X, y)
    dw, db = client.compute(lazy, sync=True)
    Xn, yn = client.compute((X, y), sync=True)
    want_dw, want_db = grad(w, b, Xn, yn)
    np.testing.assert_allclose(dw, want_dw, rtol=1e-10)
    np.testing.assert_allclose(db, want_db, rtol=1e-10)
    p = 1 / (1 + np.exp(-(Xn @ w + b)))
    np.testing.assert_allclose(dw, Xn.T @ (p - yn) / ROWS, rtol=1e-8)


def test_mlp_gradient_on_a_local_cluster_matches_numpy(client):
    X, y = _big_data()
    rng = np.random.default_rng(4)
    W1, b1, w2 = rng.standard_normal((COLS, 16)) * 0.1, rng.standard_normal(16) * 0.1, rng.standard_normal(16)
    grad = symdiff.grad(mlp_loss, argnums=(0, 1, 2))
    with nothing_computed():
        lazy = grad(W1, b1, w2, X, y)
    got = client.compute(lazy, sync=True)
    Xn, yn = client.compute((X, y), sync=True)
    for g, want in zip(got, grad(W1, b1, w2, Xn, yn)):
        np.testing.assert_allclose(g, want, rtol=1e-10)
