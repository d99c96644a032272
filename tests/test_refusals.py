"""What symdiff cannot compile faithfully is refused with a located error and advice, never
differentiated wrongly: in-place methods and functions, decorators, nested gradients. And
functions reached through namespace objects (``xp.sum``) are the functions, not methods."""

import functools
import heapq
import inspect
import random
import types

import numpy as np
import pytest
from fd import check_grad

import symdiff

X = np.array([0.3, -0.8, 1.1, 0.5])
W = np.array([1.0, 3.0, 0.5, 2.0])
RNG = np.random.default_rng(0)
LOG = []

# ---------------------------------------------------------------------- in-place methods and functions


def sort_method(x):
    y = x * W
    y.sort()
    return np.sum(y * np.arange(4.0))


def fill_method(x):
    y = x * 1.0
    y.fill(2.0)
    return np.sum(y * x)


def multiply_out(x):
    y = x * 1.0
    np.multiply(y, 3.0, out=y)
    return np.sum(y * y)


def exp_out(x):
    y = x * 1.0
    np.exp(x, out=y)
    return np.sum(y * y)


def multiply_positional_out(x):
    y = x * 1.0
    np.multiply(y, 3.0, y)
    return np.sum(y * y)


def method_out(x):
    y = np.zeros(())
    x.sum(out=y)
    return y * 2.0


def resize_method(x):
    y = x * 1.0
    y.resize(2)
    return np.sum(y * y)


def put_method(x):
    y = x * 1.0
    y.put([0], 5.0)
    return np.sum(y * y)


def partition_method(x):
    y = x * W
    y.partition(1)
    return np.sum(y * np.arange(4.0))


def itemset_method(x):
    y = x * 1.0
    y.itemset(0, 5.0)
    return np.sum(y * y)


def setfield_method(x):
    y = x * 1.0
    y.setfield(2.0, np.float64)
    return np.sum(y * y)


def setflags_method(x):
    y = x * 1.0
    y.setflags(write=False)
    return np.sum(y * y)


def byteswap_in_place(x):
    y = x * 1.0
    y.byteswap(inplace=True)
    return np.sum(y)


def copyto_function(x):
    y = x * 1.0
    np.copyto(y, 2.0)
    return np.sum(y * x)


def put_function(x):
    y = x * 1.0
    np.put(y, [0], 5.0)
    return np.sum(y * y)


def place_function(x):
    y = x * 1.0
    np.place(y, y > 0, 5.0)
    return np.sum(y * y)


def putmask_function(x):
    y = x * 1.0
    np.putmask(y, y > 0, 5.0)
    return np.sum(y * y)


def put_along_axis_function(x):
    y = x * 1.0
    np.put_along_axis(y, np.array([0]), 5.0, axis=0)
    return np.sum(y * y)


def fill_diagonal_function(x):
    y = np.outer(x, x)
    np.fill_diagonal(y, 0.0)
    return np.sum(y)


def random_shuffle(x):
    y = x * 1.0
    np.random.shuffle(y)
    return np.sum(y * np.arange(4.0))


def generator_shuffle(x):
    y = x * 1.0
    RNG.shuffle(y)
    return np.sum(y * np.arange(4.0))


def local_generator_shuffle(x):
    y = x * 1.0
    np.random.default_rng(0).shuffle(y)
    return np.sum(y * np.arange(4.0))


def python_random_shuffle(x):
    xs = [x[0] * 1.0, x[1] * 2.0]
    random.shuffle(xs)
    return xs[0] * 3.0


def heap_push(x):
    xs = [x[0] * 1.0]
    heapq.heappush(xs, x[1])
    return xs[0] * 3.0


def unbound_sort(x):
    y = x * W
    np.ndarray.sort(y)
    return np.sum(y * np.arange(4.0))


def unbound_list_sort(x):
    xs = [x[0] * 1.0, x[1] * 1.0]
    list.sort(xs)
    return xs[0] * 3.0


def dunder_setitem(x):
    y = x * 1.0
    y.__setitem__(0, 5.0)
    return np.sum(y * y)


def dunder_iadd(x):
    y = x * 1.0
    y.__iadd__(x)
    return np.sum(y * y)


def ufunc_at(x):
    y = x * 1.0
    np.add.at(y, [0, 0], x[1])
    return np.sum(y * y)


def ufunc_where(x):
    return np.sum(np.exp(x, where=x > 0))


def reduction_where(x):
    return np.sum(x * x, where=x > 0)


def list_sort(x):
    xs = [x[0] * 1.0, x[1] * 1.0, x[2]]
    xs.sort()
    return xs[0] * 2.0 + xs[1]


def list_reverse(x):
    xs = [x[0] * 1.0, x[1] * 3.0]
    xs.reverse()
    return xs[0] * 2.0 + xs[1]


def list_insert(x):
    xs = [x[0] * 1.0, x[1] * 3.0]
    xs.insert(0, x[2])
    return xs[0] * 2.0 + xs[1]


def list_pop(x):
    xs = [x[0] * 1.0, x[1] * 3.0]
    xs.pop(0)
    return xs[0] * 2.0


def list_extend(x):
    xs = [x[0] * 1.0]
    xs.extend([x[1], x[2]])
    return xs[0] + xs[2] * 2.0


def list_remove(x):
    xs = [x[0] * 1.0, 2.0]
    xs.remove(2.0)
    return xs[0] * 2.0


def list_clear(x):
    xs = [x[0] * 1.0]
    xs.clear()
    xs.append(x[1])
    return xs[0] * 2.0


def sort_of_appended_list(x):
    xs = []
    for i in range(3):
        xs.append(x[i] * x[i])
    xs.sort()
    return xs[0] + 2.0 * xs[2]


def dict_update(x):
    d = {"a": x[0] * 1.0}
    d.update({"a": x[1]})
    return d["a"] * 2.0


def dict_pop(x):
    d = {"a": x[0] * 1.0, "b": x[1]}
    d.pop("a")
    return d["b"] * 3.0


def dict_setdefault(x):
    d = {"a": x[0] * 1.0}
    v = d.setdefault("b", x[1])
    return v * 3.0 + d["a"]


def dict_clear(x):
    d = {"a": x[0] * 1.0}
    d.clear()
    d["a"] = x[1]
    return d["a"] * 2.0


def append_to_an_item(x):
    d = {"a": [x[0]]}
    d["a"].append(x[1] * 3.0)
    return d["a"][1] * 2.0


def append_as_an_expression(x):
    xs = [x[0]]
    n = xs.append(x[1])  # noqa: F841
    return xs[1] * 2.0


def append_to_a_global_list(x):
    LOG.append(x[0])
    return x[0] * 2.0


REFUSED = [
    (sort_method, "in-place y.sort() is not supported: write y = np.sort(y)", 'y.sort()'),
    (fill_method, "in-place y.fill() is not supported: write y = np.full(y.shape, 2.0)", 'y.fill(2.0)'),
    (multiply_out, "out= is not supported: write y = np.multiply(y, 3.0)", 'out=y'),
    (exp_out, "out= is not supported: write y = np.exp(x)", 'out=y'),
    (multiply_positional_out, "out= is not supported: write y = np.multiply(y, 3.0)", 'np.multiply(y, 3.0, y)'),
    (method_out, "out= is not supported: write y = x.sum()", 'x.sum(out=y)'),
    (resize_method, "in-place y.resize() is not supported", 'y.resize(2)'),
    (put_method, "in-place y.put() is not supported: use item assignment", 'y.put('),
    (partition_method, "in-place y.partition() is not supported: write y = np.partition(y, 1)", 'y.partition(1)'),
    (itemset_method, "in-place y.itemset() is not supported: use item assignment", 'y.itemset('),
    (setfield_method, "in-place y.setfield() is not supported", 'y.setfield('),
    (setflags_method, "y.setflags() changes the array in place", 'y.setflags('),
    (byteswap_in_place, "in-place y.byteswap(inplace=True) is not supported: write y = y.byteswap()", 'y.byteswap('),
    (copyto_function, "np.copyto writes into its argument", 'np.copyto('),
    (put_function, "np.put writes into its argument: use item assignment", 'np.put('),
    (place_function, "np.place writes into its argument: write y = np.where(mask, values, y)", 'np.place('),
    (putmask_function, "np.putmask writes into its argument: write y = np.where(mask, values, y)", 'np.putmask('),
    (put_along_axis_function, "np.put_along_axis writes into its argument", 'np.put_along_axis('),
    (fill_diagonal_function, "np.fill_diagonal writes into its argument: build the array with np.where "
                             "or item assignment", 'np.fill_diagonal('),
    (random_shuffle, "np.random.shuffle shuffles its argument in place", 'np.random.shuffle('),
    (generator_shuffle, "RNG.shuffle shuffles its argument in place", 'RNG.shuffle('),
    (local_generator_shuffle, "np.random.default_rng(0).shuffle() shuffles its argument in place", '.shuffle(y)'),
    (python_random_shuffle, "random.shuffle shuffles its argument in place", 'random.shuffle('),
    (heap_push, "heapq.heappush changes its list argument in place", 'heapq.heappush('),
    (unbound_sort, "in-place y.sort() is not supported: write y = np.sort(y)", 'np.ndarray.sort('),
    (unbound_list_sort, "in-place xs.sort() is not supported", 'list.sort('),
    (dunder_setitem, "calling y.__setitem__() directly is not supported: write the operator", '__setitem__'),
    (dunder_iadd, "calling y.__iadd__() directly is not supported: write the operator", '__iadd__'),
    (ufunc_at, "np.add.at updates its first argument in place", 'np.add.at('),
    (ufunc_where, "where= on a ufunc leaves the other entries unspecified", 'where='),
    (reduction_where, "where= is not supported: mask the input instead, np.sum(np.where(x > 0, x * x, 0.0))", 'where='),
    (list_sort, "in-place xs.sort() is not supported", 'xs.sort()'),
    (list_reverse, "in-place xs.reverse() is not supported: write xs = xs[::-1]", 'xs.reverse()'),
    (list_insert, "in-place xs.insert() is not supported", 'xs.insert('),
    (list_pop, "in-place xs.pop() is not supported: read the item, xs[0]", 'xs.pop(0)'),
    (list_extend, "in-place xs.extend() is not supported: append the items one by one", 'xs.extend('),
    (list_remove, "in-place xs.remove() is not supported", 'xs.remove('),
    (list_clear, "in-place xs.clear() is not supported: write xs = []", 'xs.clear()'),
    (sort_of_appended_list, "in-place xs.sort() is not supported", 'xs.sort()'),
    (dict_update, "in-place d.update() is not supported: assign the keys one by one", 'd.update('),
    (dict_pop, "in-place d.pop() is not supported", 'd.pop('),
    (dict_setdefault, "in-place d.setdefault() is not supported", 'd.setdefault('),
    (dict_clear, "in-place d.clear() is not supported: write d = {}", 'd.clear()'),
    (append_to_an_item, "append() is supported only as a statement on a list variable", 'd["a"].append('),
    (append_as_an_expression, "append() is supported only as a statement on a list variable", 'n = xs.append('),
    (append_to_a_global_list, "append() is supported only as a statement on a list variable", 'LOG.append('),
]


@pytest.mark.parametrize("fn, message, at", REFUSED, ids=[case[0].__name__ for case in REFUSED])
def test_in_place_calls_are_refused_where_they_are_written_with_advice(fn, message, at):
    with pytest.raises(symdiff.MutationError) as info:
        symdiff.grad(fn)(X.copy())
    text = str(info.value)
    assert message in text
    lines, first = inspect.getsourcelines(fn)
    line = first + next(i for i, src in enumerate(lines) if at in src)
    assert text.startswith(f"{__file__}:{line}:")
    assert not LOG  # the global list was not appended to


def deletes_an_item(x):
    xs = [x[0] * 1.0, x[1]]
    del xs[0]
    return xs[0] * 2.0


def test_del_is_refused_with_advice():
    with pytest.raises(symdiff.UnsupportedSyntaxError, match="del statement is not supported by symdiff: "
                       "build a new list or dict without the item") as info:
        symdiff.grad(deletes_an_item)(X.copy())
    assert f"{__file__}:{deletes_an_item.__code__.co_firstlineno + 2}:" in str(info.value)


def test_a_mutation_error_is_a_symdiff_error():
    assert issubclass(symdiff.MutationError, symdiff.SymdiffError)


def pure_methods(x):
    y = x.reshape(2, 2).copy().astype(np.float64)
    t = (1.0, 2.0)
    return y.sum() + np.sum(np.argsort(x) * x) + np.sum(x.argsort() * x) + t.index(2.0) * np.sum(x * x)


def byteswap_not_in_place(x):
    return np.sum(x * x) + 0.0 * x.byteswap(inplace=False).shape[0]


def out_and_where_spelt_as_their_defaults(x):
    return np.sum(np.exp(x, out=None) * np.sin(x, where=True))


@pytest.mark.parametrize("fn", [pure_methods, byteswap_not_in_place, out_and_where_spelt_as_their_defaults])
def test_pure_methods_still_differentiate(fn):
    check_grad(fn, X.copy())


def advised_sort(x):
    y = x * W
    y = np.sort(y)
    return np.sum(y * np.arange(4.0))


def advised_fill(x):
    y = x * 1.0
    y = np.full(y.shape, 2.0)
    return np.sum(y * x)


def advised_out(x):
    y = x * 1.0
    y = np.multiply(y, 3.0)
    return np.sum(y * y)


def advised_fill_diagonal(x):
    y = np.outer(x, x)
    y = np.where(np.eye(4, dtype=bool), 0.0, y)
    return np.sum(y)


def advised_add_at(x):
    y = x * 1.0
    y = y + np.eye(4)[np.array([0, 0])].T @ (x[1] * np.ones(2))
    return np.sum(y * y)


def advised_where(x):
    return np.sum(np.where(x > 0, x * x, 0.0)) + np.sum(np.where(x > 0, np.exp(x), 0.0))


def advised_shuffle(x):
    y = x * 1.0
    y = y[np.random.default_rng(0).permutation(len(y))]
    return np.sum(y * np.arange(4.0))


def advised_list_sort(x):
    xs = [x[0] * 1.0, x[1] * 1.0, x[2]]
    xs = list(np.sort(np.array(xs)))
    return xs[0] * 2.0 + xs[1]


def advised_list_reverse_and_pop(x):
    xs = [x[0] * 1.0, x[1] * 3.0, x[2]]
    xs = xs[::-1]
    last = xs[-1]
    xs = xs[:-1]
    return xs[0] * 2.0 + xs[1] + last * last


def advised_list_extend(x):
    xs = [x[0] * 1.0]
    for item in [x[1], x[2]]:
        xs.append(item)
    return xs[0] + xs[2] * 2.0


@pytest.mark.parametrize("fn", [advised_sort, advised_fill, advised_out, advised_fill_diagonal, advised_add_at,
                                advised_where, advised_shuffle, advised_list_sort, advised_list_reverse_and_pop,
                                advised_list_extend])
def test_the_advised_rewrites_differentiate_correctly(fn):
    check_grad(fn, X.copy())


# ---------------------------------------------------------------------- decorators


def scaled(c):
    def decorator(f):
        @functools.wraps(f)
        def wrapper(*args):
            return c * f(*args)
        return wrapper
    return decorator


@scaled(10.0)
def scaled_square(x):
    return np.sum(x * x)


def calls_a_decorated_function(x):
    return scaled_square(x)


REGISTRY = []


def register(f):
    REGISTRY.append(f)
    return f


@register
def registered(x):
    return np.sum(np.sin(x) * x)


def test_a_function_wrapped_by_a_decorator_is_refused_at_the_decorator():
    with pytest.raises(symdiff.SymdiffError, match="apply symdiff to the undecorated function") as info:
        symdiff.grad(scaled_square)
    first = str(info.value).splitlines()[0]
    assert f"{__file__}:{scaled_square.__wrapped__.__code__.co_firstlineno}:" in first
    assert "@scaled(10.0)" in str(info.value)


def test_the_undecorated_function_of_a_decorator_is_refused_too():
    with pytest.raises(symdiff.SymdiffError, match=r"decorator @scaled\(10.0\), which symdiff does not know"):
        symdiff.grad(scaled_square.__wrapped__)


def test_calling_a_decorated_function_is_never_differentiated_as_the_undecorated_one():
    with pytest.raises(symdiff.SymdiffError, match="wrapped by a decorator"):
        symdiff.grad(calls_a_decorated_function)(X.copy())


def test_a_decorator_that_returns_the_function_itself_is_differentiated():
    check_grad(registered, X.copy())


def test_a_gradient_has_no_wrapped_attribute_but_keeps_the_signature():
    g = symdiff.grad(registered)
    assert not hasattr(g, "__wrapped__")
    assert inspect.unwrap(g) is g
    assert list(inspect.signature(g).parameters) == ["x"]


def scale_sum(x, c):
    return c * np.sum(x * x)


PARTIAL = functools.partial(scale_sum, c=2.0)
POSITIONAL_PARTIAL = functools.partial(scale_sum, W)


def calls_a_partial(x):
    return PARTIAL(x) + POSITIONAL_PARTIAL(x[0])


def test_a_partial_is_refused_with_a_lambda_to_write_instead():
    with pytest.raises(symdiff.SymdiffError, match=r"functools.partial is not supported: write a lambda .* "
                       r"symdiff.grad\(lambda x: scale_sum\(x, ...\)\)"):
        symdiff.grad(PARTIAL)(X.copy())
    check_grad(lambda x: scale_sum(x, c=2.0), X.copy())


def test_a_partial_called_inside_is_inlined_with_its_fixed_arguments():
    check_grad(calls_a_partial, X.copy())


class Model:
    def __init__(self):
        self.w = W.copy()

    def loss(self, x):
        return np.sum(self.w * x * x)

    @scaled(2.0)
    def scaled_loss(self, x):
        return np.sum(self.w * x * x)

    @staticmethod
    def static_loss(x):
        return np.sum(np.tanh(x))


def test_bound_methods_and_staticmethods_are_differentiated():
    check_grad(Model().loss, X.copy())
    check_grad(Model.static_loss, X.copy())


def test_a_bound_method_wrapped_by_a_decorator_is_refused():
    with pytest.raises(symdiff.SymdiffError, match="wrapped by a decorator"):
        symdiff.grad(Model().scaled_loss)


# ---------------------------------------------------------------------- nested gradients

CUBE_GRAD = symdiff.grad(lambda x: x ** 3)


CUBE_VALUE_AND_GRAD = symdiff.value_and_grad(lambda x: x ** 3)


def calls_a_value_and_grad(x):
    return CUBE_VALUE_AND_GRAD(x)[1] + x


def test_differentiating_a_value_and_grad_is_refused():
    with pytest.raises(symdiff.SymdiffError, match="cannot be differentiated again"):
        symdiff.grad(symdiff.value_and_grad(lambda x: x ** 3))(3.0)
    with pytest.raises(symdiff.SymdiffError, match="cannot be differentiated again") as info:
        symdiff.grad(calls_a_value_and_grad)(3.0)
    assert f"{__file__}:{calls_a_value_and_grad.__code__.co_firstlineno + 1}:" in str(info.value)


def test_a_partial_of_a_gradient_is_refused():
    fixed = functools.partial(CUBE_GRAD)
    with pytest.raises(symdiff.SymdiffError, match="functools.partial of grad_lambda, a function symdiff made"):
        symdiff.grad(lambda x: fixed(x) * x)(3.0)


def test_running_a_gradient_is_unaffected():
    assert CUBE_GRAD(3.0) == 27.0


# ---------------------------------------------------------------------- namespace objects

XP = types.SimpleNamespace(sum=np.sum, exp=np.exp, mean=np.mean)


def through_a_namespace(x):
    return XP.sum(XP.exp(x) * x)


class Backend:
    sum = staticmethod(np.sum)

    def __init__(self):
        self.tanh = np.tanh
        self.square = lambda v: v * v


BACKEND = Backend()


def through_an_object(x):
    return BACKEND.sum(BACKEND.tanh(x) * BACKEND.square(x))


LINALG = np.linalg
HOLDS_A_METHOD = types.SimpleNamespace(loss=Model().loss)


def through_a_held_bound_method(x):
    return HOLDS_A_METHOD.loss(x) * 2.0


def through_a_submodule(x):
    return LINALG.norm(x) + np.linalg.norm(x * 2.0)


@pytest.mark.parametrize("fn", [through_a_namespace, through_an_object, through_a_submodule,
                                through_a_held_bound_method])
def test_functions_held_by_namespace_objects_are_the_functions(fn):
    check_grad(fn, X.copy())


def test_rebinding_a_namespace_function_recompiles():
    ns = types.SimpleNamespace(reduce=np.sum)
    g = symdiff.grad(lambda x: ns.reduce(x * x))
    np.testing.assert_allclose(g(X.copy()), 2.0 * X)
    ns.reduce = np.mean
    np.testing.assert_allclose(g(X.copy()), 2.0 * X / len(X))
