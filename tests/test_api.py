"""The user-facing API: grad / value_and_grad, argnums, result types, .source, caching, aliasing."""

import ast
import re

import numpy as np
import pytest
from fd import check_grad, numerical_grad

import symdiff
import symdiff.lower

# ---------------------------------------------------------------------- functions under test


def product(x, y):
    return x * y * y


def three(a, b, c):
    return a * b + np.sin(c)


def layer(x, W):
    h = np.tanh(x @ W)
    return np.sum(h ** 2)


def weighted(x, W):
    return np.sum(x * W)


def only_first(x, y):
    return x * 3.0


def only_first_array(x, y):
    return np.sum(x ** 2)


def summed_product(x, y):
    return np.sum(x * y * y)


def vector_valued(x):
    return x * 2.0


def rosenbrock(x):
    return np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


SCALE = np.array([1.0, 2.0, 3.0])


def uses_module_global(x):
    z = np.exp(x) * SCALE
    return np.sum(z * z)


def branchy(x, y):
    if x > 0:
        z = x * y
    else:
        z = y - x
    return z * z


def looping(x, n):
    total = 0.0
    for i in range(n):
        total = total + x * i
    return total


def rng():
    return np.random.default_rng(0)


# ---------------------------------------------------------------------- argnums


def test_int_argnums_returns_a_single_gradient_not_a_tuple():
    g = symdiff.grad(product, argnums=1)(2.0, 3.0)
    assert type(g) is float
    assert g == pytest.approx(2 * 2.0 * 3.0)


def test_default_argnums_is_the_first_argument():
    assert symdiff.grad(product)(2.0, 3.0) == pytest.approx(9.0)


def test_tuple_argnums_returns_a_tuple_of_gradients_in_that_order():
    g = symdiff.grad(three, argnums=(2, 0))(2.0, 3.0, 0.5)
    assert isinstance(g, tuple) and len(g) == 2
    assert g[0] == pytest.approx(np.cos(0.5))
    assert g[1] == pytest.approx(3.0)


def test_one_element_tuple_argnums_returns_a_one_tuple():
    g = symdiff.grad(product, argnums=(1,))(2.0, 3.0)
    assert isinstance(g, tuple) and len(g) == 1
    assert g[0] == pytest.approx(12.0)


def test_list_argnums_behaves_like_a_tuple():
    g = symdiff.grad(product, argnums=[0, 1])(2.0, 3.0)
    assert len(g) == 2
    assert g[0] == pytest.approx(9.0) and g[1] == pytest.approx(12.0)


def test_negative_argnums_count_from_the_last_argument():
    assert symdiff.grad(three, argnums=-1)(2.0, 3.0, 0.5) == pytest.approx(np.cos(0.5))
    g = symdiff.grad(three, argnums=(-3, -2))(2.0, 3.0, 0.5)
    assert g[0] == pytest.approx(3.0) and g[1] == pytest.approx(2.0)


@pytest.mark.parametrize("argnums", [2, -3, (0, 5), (3,)])
def test_out_of_range_argnums_raise_symdiff_error(argnums):
    with pytest.raises(symdiff.SymdiffError, match="argnums"):
        symdiff.grad(product, argnums=argnums)(2.0, 3.0)


def test_wrong_number_of_arguments_raises_symdiff_error():
    with pytest.raises((symdiff.SymdiffError, TypeError)):
        symdiff.grad(product)(2.0)


# ---------------------------------------------------------------------- decorator forms


def test_bare_grad_decorator():
    @symdiff.grad
    def square(x):
        return x * x

    assert square(3.0) == pytest.approx(6.0)


def test_grad_decorator_with_argnums():
    @symdiff.grad(argnums=1)
    def f(x, y):
        return x * y * y

    assert f(2.0, 3.0) == pytest.approx(12.0)


def test_value_and_grad_decorator_forms():
    @symdiff.value_and_grad
    def f(x):
        return x * x

    @symdiff.value_and_grad(argnums=(0, 1))
    def g(x, y):
        return x * y

    assert f(3.0) == (pytest.approx(9.0), pytest.approx(6.0))
    value, (gx, gy) = g(2.0, 5.0)
    assert value == pytest.approx(10.0) and gx == pytest.approx(5.0) and gy == pytest.approx(2.0)


def test_decorated_gradient_keeps_the_docstring_and_module():
    @symdiff.grad
    def documented(x):
        """Doc of documented."""
        return x * x

    assert documented.__doc__ == "Doc of documented."
    assert documented.__module__ == __name__


# ---------------------------------------------------------------------- value_and_grad


def test_value_and_grad_returns_value_equal_to_calling_the_function_and_the_gradient():
    r = rng()
    x, W = r.standard_normal(3), r.standard_normal((3, 2))
    value, grads = symdiff.value_and_grad(layer, argnums=(0, 1))(x, W)
    assert value == pytest.approx(layer(x, W), rel=1e-12)
    want = symdiff.grad(layer, argnums=(0, 1))(x, W)
    np.testing.assert_allclose(grads[0], want[0])
    np.testing.assert_allclose(grads[1], want[1])


def test_value_and_grad_with_int_argnums_returns_a_pair():
    out = symdiff.value_and_grad(product, argnums=1)(2.0, 3.0)
    assert isinstance(out, tuple) and len(out) == 2
    assert out[0] == pytest.approx(product(2.0, 3.0))
    assert out[1] == pytest.approx(12.0)


# ---------------------------------------------------------------------- types, shapes, dtypes


def test_float_argument_gets_a_gradient_of_type_exactly_float():
    g = symdiff.grad(product, argnums=(0, 1))(2.0, 3.0)
    assert type(g[0]) is float and type(g[1]) is float


def test_float_gradient_matches_finite_differences():
    check_grad(product, 2.0, 3.0)
    check_grad(branchy, 0.7, -1.3)
    check_grad(branchy, -0.7, 1.3)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_array_argument_gets_an_ndarray_gradient_of_the_same_shape_and_dtype(dtype):
    r = rng()
    x = r.standard_normal(3).astype(dtype)
    W = r.standard_normal((3, 2)).astype(dtype)
    gx, gW = symdiff.grad(layer, argnums=(0, 1))(x, W)
    for g, a in ((gx, x), (gW, W)):
        assert type(g) is np.ndarray
        assert g.shape == a.shape
        assert g.dtype == a.dtype
    want = numerical_grad(layer, [x.astype(np.float64), W.astype(np.float64)], 1)
    np.testing.assert_allclose(gW, want, rtol=1e-3 if dtype == np.float32 else 1e-5, atol=1e-4)


def test_array_gradients_match_finite_differences():
    r = rng()
    check_grad(layer, r.standard_normal(3), r.standard_normal((3, 2)))
    check_grad(weighted, r.standard_normal((2, 3)), r.standard_normal((2, 3)))
    check_grad(rosenbrock, r.standard_normal(5))


def test_argument_the_output_does_not_depend_on_gets_a_zero_float_gradient():
    g = symdiff.grad(only_first, argnums=1)(2.0, 5.0)
    assert type(g) is float and g == 0.0


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_argument_the_output_does_not_depend_on_gets_a_zero_array_of_its_shape_and_dtype(dtype):
    x = np.ones(4, dtype=dtype)
    y = np.ones((2, 3), dtype=dtype)
    gx, gy = symdiff.grad(only_first_array, argnums=(0, 1))(x, y)
    assert type(gy) is np.ndarray and gy.shape == (2, 3) and gy.dtype == dtype
    assert not np.any(gy)
    np.testing.assert_allclose(gx, 2 * x)


def test_non_scalar_output_raises_symdiff_error_mentioning_scalar():
    with pytest.raises(symdiff.SymdiffError, match="scalar"):
        symdiff.grad(vector_valued)(np.ones(3))


# ---------------------------------------------------------------------- .source


def test_source_is_a_string_defining_grad_of_the_function_name():
    g = symdiff.grad(layer, argnums=1)
    assert isinstance(g.source, str)
    assert "def grad_layer(" in g.source
    g(np.ones(3), np.ones((3, 2)))
    assert isinstance(g.source, str) and "def grad_layer(" in g.source


def test_value_and_grad_source_defines_value_and_grad_of_the_function_name():
    g = symdiff.value_and_grad(layer, argnums=1)
    g(np.ones(3), np.ones((3, 2)))
    assert "def value_and_grad_layer(" in g.source


def test_source_uses_the_users_variable_names_for_adjoints():
    g = symdiff.grad(layer, argnums=(0, 1))
    g(np.ones(3), 0.1 * np.ones((3, 2)))
    assert re.search(r"\bdh\b", g.source) or re.search(r"\bdW\b", g.source), g.source


def _all_sources():
    r = rng()
    cases = [
        (layer, (0, 1), (r.standard_normal(3), r.standard_normal((3, 2)))),
        (product, (0, 1), (2.0, 3.0)),
        (three, (0, 1, 2), (2.0, 3.0, 0.5)),
        (weighted, 0, (r.standard_normal(3), r.standard_normal(3))),
        (branchy, (0, 1), (0.5, 2.0)),
        (looping, 0, (1.5, 4)),
        (rosenbrock, 0, (r.standard_normal(4),)),
    ]
    for fn, argnums, args in cases:
        for make in (symdiff.grad, symdiff.value_and_grad):
            g = make(fn, argnums=argnums)
            g(*args)
            yield fn.__name__, g.source


ADDS_ZERO = re.compile(r"(?<![\w.])0(\.0*)?\s*\+|\+\s*0(\.0*)?(?![\w.])")
TIMES_ONE = re.compile(r"\*\s*1\.0(?![\d])|(?<![\w.])1\.0\s*\*")


@pytest.mark.optimized_source
@pytest.mark.parametrize("name, source", list(_all_sources()), ids=lambda v: v if "\n" not in v else "")
def test_source_has_no_additions_of_zero_or_multiplications_by_one(name, source):
    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith("#"))
    assert not ADDS_ZERO.search(code), f"adds zero in generated code of {name}:\n{source}"
    assert not TIMES_ONE.search(code), f"multiplies by 1.0 in generated code of {name}:\n{source}"


def _exec_source(source, user_module_globals):
    """Run ``source`` in a fresh namespace holding only the user globals it mentions."""
    names = {n.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name)}
    namespace = {k: v for k, v in user_module_globals.items() if k in names}
    exec(compile(source, "<pasted>", "exec"), namespace)
    fname = re.search(r"^def (\w+)\(", source, re.M).group(1)
    return namespace[fname]


def test_source_pasted_into_a_fresh_namespace_gives_the_same_gradient():
    r = rng()
    x, W = r.standard_normal(3), r.standard_normal((3, 2))
    g = symdiff.grad(layer, argnums=(0, 1))
    want = g(x, W)
    pasted = _exec_source(g.source, {})
    got = pasted(x, W)
    np.testing.assert_allclose(got[0], want[0])
    np.testing.assert_allclose(got[1], want[1])


def test_source_of_a_scalar_specialisation_pasted_gives_the_same_float_gradient():
    g = symdiff.grad(branchy, argnums=(0, 1))
    want = g(0.5, 2.0)
    got = _exec_source(g.source, {})(0.5, 2.0)
    assert got == pytest.approx(want)
    assert type(got[0]) is float


def test_source_referencing_a_user_global_runs_with_that_global_supplied():
    x = np.array([0.1, -0.2, 0.3])
    g = symdiff.grad(uses_module_global)
    want = g(x)
    got = _exec_source(g.source, globals())(x)
    np.testing.assert_allclose(got, want)
    np.testing.assert_allclose(want, numerical_grad(uses_module_global, [x], 0), rtol=1e-6)


def test_source_of_value_and_grad_pasted_gives_the_same_value_and_gradient():
    x = np.array([0.5, 1.5, -0.5, 2.0])
    g = symdiff.value_and_grad(rosenbrock)
    value, grad = g(x)
    value2, grad2 = _exec_source(g.source, {})(x)
    assert value2 == pytest.approx(value)
    np.testing.assert_allclose(grad2, grad)


# ---------------------------------------------------------------------- no mutation, no aliasing


def test_gradient_never_mutates_its_inputs():
    r = rng()
    x, W = r.standard_normal(3), r.standard_normal((3, 2))
    x0, W0 = x.copy(), W.copy()
    symdiff.grad(layer, argnums=(0, 1))(x, W)
    symdiff.value_and_grad(layer, argnums=(0, 1))(x, W)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(W, W0)
    y = r.standard_normal(6)
    y0 = y.copy()
    symdiff.grad(rosenbrock)(y)
    np.testing.assert_array_equal(y, y0)


def test_gradient_that_equals_another_input_is_a_fresh_array_not_an_alias():
    x = np.array([1.0, 2.0, 3.0])
    W = np.array([4.0, 5.0, 6.0])
    W0 = W.copy()
    gx = symdiff.grad(weighted, argnums=0)(x, W)
    np.testing.assert_array_equal(gx, W)
    assert gx is not W and gx is not x
    assert not np.shares_memory(gx, W) and not np.shares_memory(gx, x)
    gx += 100.0  # modifying the returned gradient in place must not touch the inputs
    np.testing.assert_array_equal(W, W0)
    np.testing.assert_array_equal(x, [1.0, 2.0, 3.0])


def test_gradient_of_an_identity_like_function_does_not_alias_or_mutate_input():
    def plain_sum(x):
        return np.sum(x)

    x = np.array([1.0, 2.0, 3.0])
    g = symdiff.grad(plain_sum)(x)
    assert g.flags.writeable
    assert not np.shares_memory(g, x)
    g *= 7.0
    np.testing.assert_array_equal(x, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(symdiff.grad(plain_sum)(x), np.ones(3))


def test_tuple_gradients_do_not_share_memory_with_each_other_or_inputs():
    x = np.array([1.0, 2.0, 3.0])
    W = np.array([4.0, 5.0, 6.0])
    gx, gW = symdiff.grad(weighted, argnums=(0, 1))(x, W)
    for g in (gx, gW):
        for a in (x, W):
            assert not np.shares_memory(g, a)
    assert not np.shares_memory(gx, gW)
    gx[:] = 0.0
    gW[:] = 0.0
    np.testing.assert_array_equal(x, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(W, [4.0, 5.0, 6.0])


# ---------------------------------------------------------------------- compilation cache


@pytest.fixture
def lowering_count(monkeypatch):
    """How many times symdiff has lowered (i.e. compiled) a function since the fixture started."""
    calls = []
    real = symdiff.lower.lower

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(symdiff.lower, "lower", counting)
    return calls


def test_repeated_calls_reuse_the_compiled_gradient(lowering_count):
    g = symdiff.grad(product)
    g(2.0, 3.0)
    after_first = len(lowering_count)
    assert after_first >= 1
    for _ in range(5):
        assert g(2.0, 3.0) == pytest.approx(9.0)
        assert g(-1.0, 0.5) == pytest.approx(0.25)
    assert len(lowering_count) == after_first


def test_float_and_array_arguments_compile_separate_specialisations_once_each(lowering_count):
    g = symdiff.grad(rosenbrock)
    x = np.array([0.5, 1.5, -0.5])
    g(x)
    after_array = len(lowering_count)
    g(np.array([1.0, 2.0, 3.0, 4.0]))  # same ndim, different length: same specialisation
    g(x)
    assert len(lowering_count) == after_array

    h = symdiff.grad(summed_product)
    assert h(2.0, 3.0) == pytest.approx(9.0)
    after_float = len(lowering_count)
    got = h(np.array([2.0, 1.0]), np.array([3.0, 2.0]))
    np.testing.assert_allclose(got, [9.0, 4.0])
    assert type(got) is np.ndarray
    assert len(lowering_count) == after_float + 1  # a new specialisation for arrays
    assert type(h(2.0, 3.0)) is float  # the float one is still used for floats
    h(np.array([2.0, 1.0]), np.array([3.0, 2.0]))
    assert len(lowering_count) == after_float + 1


# ---------------------------------------------------------------------- scipy


def test_gradient_works_as_jac_in_scipy_minimize_on_rosenbrock():
    optimize = pytest.importorskip("scipy.optimize")
    x0 = np.array([-1.2, 1.0, -0.5, 0.8, 1.3])
    jac = symdiff.grad(rosenbrock)
    np.testing.assert_allclose(jac(x0), optimize.rosen_der(x0), rtol=1e-10)
    result = optimize.minimize(rosenbrock, x0, jac=jac, method="BFGS", options={"gtol": 1e-8})
    assert result.success, result.message
    np.testing.assert_allclose(result.x, np.ones(5), atol=1e-5)
    result = optimize.minimize(rosenbrock, x0, jac=jac, method="L-BFGS-B")
    np.testing.assert_allclose(result.x, np.ones(5), atol=1e-3)


@pytest.mark.parametrize("scalar_type", [np.float64, np.float32])
def test_numpy_scalar_argument_gets_a_numpy_scalar_gradient_of_its_type(scalar_type):
    def f(x):
        return x * x * 3.0

    g = symdiff.grad(f)(scalar_type(2.0))
    assert type(g) is scalar_type
    assert g == pytest.approx(12.0)
