"""Compiler bugs never reach users raw: an exception escaping the compiler is an
``InternalError`` located in the user's code, and generated code that raises where the user's
function does not is reported as one too. Errors that belong to the user's code stay theirs."""

import inspect

import numpy as np
import pytest

import symdiff
from symdiff import lower, runtime


def scaled_tanh(x):
    y = 2.0 * x
    return np.sum(np.tanh(y))


def _line_of(fn, text):
    lines, start = inspect.getsourcelines(fn)
    return start + next(i for i, line in enumerate(lines) if text in line)


def test_an_exception_in_the_lowering_is_an_internal_error_at_the_users_line(monkeypatch):
    def broken(self, node):
        raise KeyError("__expr0")

    monkeypatch.setattr(lower.Lowerer, "expr_BinOp", broken)
    with pytest.raises(symdiff.InternalError) as info:
        symdiff.grad(scaled_tanh)
    message = str(info.value)
    assert f"{__file__}:{_line_of(scaled_tanh, 'y = 2.0 * x')}" in message
    assert "KeyError" in message and "please report" in message
    assert "y = 2.0 * x" in message  # the source line is shown
    assert isinstance(info.value.__cause__, KeyError)


def test_an_internal_error_is_a_symdiff_error():
    assert issubclass(symdiff.InternalError, symdiff.SymdiffError)


def cube_root_ish(x):
    return np.sum(np.cbrt(x))


def test_generated_code_raising_where_the_function_does_not_is_an_internal_error(monkeypatch):
    def broken_as_grad(gradient, like):
        raise IndexError("tuple index out of range")

    monkeypatch.setattr(runtime, "as_grad", broken_as_grad)
    g = symdiff.grad(cube_root_ish)
    with pytest.raises(symdiff.InternalError, match="raised IndexError.*runs without error") as info:
        g(np.float64(8.0))  # no specialisation for NumPy scalars: the generic code runs
    assert isinstance(info.value.__cause__, IndexError)
    assert "please report" in str(info.value)


def halves(x, n):
    return x / n


def test_an_error_the_users_function_raises_too_is_raised_as_it_is():
    g = symdiff.grad(halves)
    with pytest.raises(ZeroDivisionError):
        g(1.0, 0.0)
    assert g(1.0, 2.0) == 0.5


def adds_one_in_place(x):
    x += 1.0  # in Python this changes the caller's array; symdiff's gradient never does
    return np.sum(np.cbrt(x))


def test_the_diagnosis_runs_the_function_on_copies_of_the_arguments(monkeypatch):
    def broken_as_grad(gradient, like):
        raise IndexError("tuple index out of range")

    monkeypatch.setattr(runtime, "as_grad", broken_as_grad)
    x = np.array([1.0, 7.0], dtype=np.float32)  # a float32 gradient goes through as_grad
    with pytest.raises(symdiff.InternalError):
        symdiff.grad(adds_one_in_place)(x)
    np.testing.assert_array_equal(x, [1.0, 7.0])


def square(x):
    return x * x


@pytest.mark.parametrize("arg", [1.0 + 2.0j, np.array([1.0 + 0.5j, 2.0]), np.complex128(1.0),
                                 {"w": np.array([1j])}, [np.ones(2), np.ones(2, dtype=np.complex64)]])
def test_complex_arguments_are_refused_with_a_clear_error(arg):
    with pytest.raises(symdiff.SymdiffError, match="'x' of square.. is complex.*real-valued"):
        symdiff.grad(square)(arg)


def test_source_header_says_what_the_specialisation_is_valid_for():
    def mse(w, X, y):
        return np.mean((X @ w - y) ** 2)

    g = symdiff.grad(mse)
    assert "valid for arguments of any type" in g.source
    g(np.ones(3), np.ones((1, 3)), np.ones(1))
    header = g.source.split("import")[0]
    assert ("specialised for w: float64 array of shape (*,); X: float64 array of shape (1, *); "
            "y: float64 array of shape (1,)") in header
    assert "valid only for arguments of these kinds" in header
    g(np.ones(3, dtype=np.float32), np.ones((4, 3)), np.ones(4))
    assert "w: float32 array of shape (*,); X: float64 array of shape (*, *)" in g.source


def test_the_source_of_a_size_one_specialisation_is_not_reused_for_other_sizes():
    """Code folded for one row (``1 / n`` with ``n = 1``) says so in its header, and the
    gradient object never runs it on five rows."""
    def mse(w, X, y):
        return np.mean((X @ w - y) ** 2)

    g = symdiff.grad(mse)
    rng = np.random.default_rng(0)
    w, X, y = rng.normal(size=3), rng.normal(size=(5, 3)), rng.normal(size=5)
    g(w, X[:1], y[:1])
    assert "X: float64 array of shape (1, *)" in g.source
    want = 2.0 / 5 * X.T @ (X @ w - y)
    np.testing.assert_allclose(g(w, X, y), want, rtol=1e-12)
