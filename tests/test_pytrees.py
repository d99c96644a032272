"""Containers as arguments (pytrees): the gradient has the argument's structure."""

import numpy as np
import pytest
from fd import check_grad

import symdiff

RNG = np.random.default_rng(7)
X = RNG.normal(size=(5, 3))
Y = RNG.normal(size=(5, 2))


def mlp(params, X, Y):
    h = np.tanh(X @ params["W1"] + params["b1"])
    out = h @ params["W2"] + params["b2"]
    return np.mean((out - Y) ** 2)


def init():
    return {"W1": RNG.normal(size=(3, 4)), "b1": np.zeros(4), "W2": RNG.normal(size=(4, 2)), "b2": 0.1}


def numerical(f, params, eps=1e-6):
    """Central differences of f at params (a pytree), leaf by leaf, element by element."""
    def replaced(tree, path, index, delta):
        """A copy of ``tree`` with ``delta`` added at leaf ``path`` (element ``index``)."""
        if not path:
            if isinstance(tree, np.ndarray):
                out = np.array(tree, dtype=float)
                out[index] += delta
                return out
            return float(tree) + delta
        key, rest = path[0], path[1:]
        if isinstance(tree, dict):
            return {k: replaced(v, rest, index, delta) if k == key else v for k, v in tree.items()}
        return type(tree)(replaced(v, rest, index, delta) if i == key else v for i, v in enumerate(tree))

    def derivative(path, index):
        return float(f(replaced(params, path, index, eps)) - f(replaced(params, path, index, -eps))) / (2 * eps)

    def walk(tree, path):
        if isinstance(tree, dict):
            return {k: walk(v, path + (k,)) for k, v in tree.items()}
        if isinstance(tree, (list, tuple)):
            return type(tree)(walk(v, path + (i,)) for i, v in enumerate(tree))
        if isinstance(tree, np.ndarray):
            out = np.zeros_like(tree)
            for i in np.ndindex(tree.shape):
                out[i] = derivative(path, i)
            return out
        return derivative(path, None)

    return walk(params, ())


def assert_tree_close(got, want):
    assert type(got) is type(want)
    if isinstance(want, dict):
        assert list(got) == list(want)
        for k in want:
            assert_tree_close(got[k], want[k])
    elif isinstance(want, (list, tuple)):
        assert len(got) == len(want)
        for a, b in zip(got, want):
            assert_tree_close(a, b)
    else:
        if isinstance(want, np.ndarray):
            assert got.shape == want.shape and got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


def test_dict_of_parameters_gets_a_dict_of_gradients():
    params = init()
    got = symdiff.grad(mlp)(params, X, Y)
    assert_tree_close(got, numerical(lambda p: mlp(p, X, Y), params))


def test_gradient_source_unpacks_the_dict_once_and_returns_a_dict():
    g = symdiff.grad(mlp)
    g(init(), X, Y)
    assert "W1 = params['W1']" in g.source
    assert "{'W1': " in g.source


def layers(weights, x):
    h = x
    for W, b in weights:  # unrolled: one copy of the body per layer
        h = np.tanh(h @ W + b)
    return np.sum(h ** 2)


def test_list_of_layer_tuples_nested_structure():
    weights = [(RNG.normal(size=(3, 3)), RNG.normal(size=3)) for _ in range(3)]
    got = symdiff.grad(layers)(weights, X)
    assert_tree_close(got, numerical(lambda w: layers(w, X), weights))


def scalar_and_array_leaves(p):
    return p[0] ** 2 * np.sum(p[1]["v"] * p[1]["v"]) + p[-1]


def test_tuple_with_floats_arrays_and_negative_indices():
    params = (1.5, {"v": np.array([0.5, -1.0])}, 2.0)
    got = symdiff.grad(scalar_and_array_leaves)(params)
    assert type(got[0]) is float and type(got[2]) is float
    assert_tree_close(got, numerical(scalar_and_array_leaves, params))


def loss_with_aux(w, X):
    pred = X @ w
    loss = np.sum(pred ** 2)
    return loss, {"pred": pred, "norm": np.sum(w * w)}


def test_value_and_grad_with_has_aux_returns_loss_aux_and_gradient():
    w = RNG.normal(size=3)
    (loss, aux), g = symdiff.value_and_grad(loss_with_aux, has_aux=True)(w, X)
    assert loss == pytest.approx(np.sum((X @ w) ** 2))
    np.testing.assert_allclose(aux["pred"], X @ w)
    np.testing.assert_allclose(g, 2 * X.T @ (X @ w))


def test_grad_with_has_aux_returns_the_gradient_and_aux():
    w = RNG.normal(size=3)
    g, aux = symdiff.grad(loss_with_aux, has_aux=True)(w, X)
    np.testing.assert_allclose(g, 2 * X.T @ (X @ w))
    np.testing.assert_allclose(aux["pred"], X @ w)
    assert aux["norm"] == pytest.approx(np.sum(w * w))
    (gw, gX), aux = symdiff.grad(loss_with_aux, argnums=(0, 1), has_aux=True)(w, X)
    np.testing.assert_allclose(gX, 2 * np.outer(X @ w, w))
    np.testing.assert_allclose(aux["pred"], X @ w)


def test_grad_with_has_aux_of_python_numbers():
    def f(x, n):
        return x ** 3, x * n

    got = symdiff.grad(f, has_aux=True)(2.0, 5)
    assert got == (12.0, 10.0)
    assert symdiff.grad(f, argnums=(0,), has_aux=True)(2.0, 5) == ((12.0,), 10.0)

    def nothing_of_x(x, y):
        return y * 2.0, y + 1.0  # (neither depends on x: the gradient is 0.0, aux is still returned)

    assert symdiff.grad(nothing_of_x, has_aux=True)(1.5, 2.0) == (0.0, 3.0)


def test_grad_with_has_aux_as_a_decorator_and_with_several_returns():
    @symdiff.grad(has_aux=True)
    def f(x):
        if x > 0.0:
            return x * x, "positive"
        return -x, "negative"

    assert f(3.0) == (6.0, "positive") and f(-2.0) == (-1.0, "negative")


@pytest.mark.parametrize("transform", [symdiff.grad, symdiff.value_and_grad])
def test_has_aux_without_a_pair_returned_is_a_clear_error(transform):
    def f(w):
        return np.sum(w)

    with pytest.raises(symdiff.SymdiffError, match="return loss, aux"):
        transform(f, has_aux=True)(np.ones(2))


def test_a_different_structure_compiles_its_own_specialisation():
    g = symdiff.grad(total_of_two)
    assert g({"a": 1.0, "b": 2.0}) == {"a": 1.0, "b": 1.0}
    got = g({"a": 3.0, "b": np.ones(2)})
    assert got["a"] == 1.0
    np.testing.assert_array_equal(got["b"], np.ones(2))


def total_of_two(p):
    return p["a"] + np.sum(p["b"])


def test_caller_containers_are_not_mutated():
    params = init()
    before = {k: np.copy(v) for k, v in params.items()}
    symdiff.grad(mlp)(params, X, Y)
    assert list(params) == list(before)
    for k in before:
        np.testing.assert_array_equal(params[k], before[k])


def aux_from_several_returns(x, t):
    if t > 0.0:
        return np.sum(x) * t, {"branch": 1.0}
    for i in range(3):
        if np.sum(x * i) > 5.0:
            return np.sum(np.sin(x * i)), {"branch": 2.0}
    return np.sum(x ** 2), {"branch": 3.0}


@pytest.mark.parametrize("x, t, branch", [(np.ones(3), 0.5, 1.0), (np.ones(3) * 2.0, -1.0, 2.0),
                                          (np.ones(3) * 0.1, -1.0, 3.0)])
def test_has_aux_with_several_returns(x, t, branch):
    (loss, aux), g = symdiff.value_and_grad(aux_from_several_returns, has_aux=True)(x, t)
    assert loss == pytest.approx(aux_from_several_returns(x, t)[0]) and aux == {"branch": branch}
    check_grad(lambda v: aux_from_several_returns(v, t)[0], x)
    np.testing.assert_allclose(g, symdiff.grad(lambda v: aux_from_several_returns(v, t)[0])(x))


def test_has_aux_needs_a_pair_at_run_time_too():
    def not_a_pair(x, t):
        if t > 0.0:
            return np.sum(x), 1.0
        return np.sum(x)

    with pytest.raises(symdiff.SymdiffError, match="needs the function to return a pair, `return loss, aux`; got"):
        symdiff.value_and_grad(not_a_pair, has_aux=True)(np.ones(2), -1.0)


def dict_aux_from_several_returns(x, t):
    if t > 0.0:
        return np.sum(x ** 2) * t, {"out": x, "scale": t}
    return np.sum(np.sin(x)), {"step": t, "count": 3}


@pytest.mark.parametrize("t", [0.5, -0.5])
def test_has_aux_with_dict_aux_from_several_returns(t):
    x = np.array([0.3, -0.2, 0.9])
    (loss, aux), g = symdiff.value_and_grad(dict_aux_from_several_returns, has_aux=True)(x, t)
    assert loss == pytest.approx(dict_aux_from_several_returns(x, t)[0])
    assert aux.keys() == dict_aux_from_several_returns(x, t)[1].keys()
    check_grad(lambda v: dict_aux_from_several_returns(v, t)[0], x)
    np.testing.assert_allclose(g, symdiff.grad(lambda v: dict_aux_from_several_returns(v, t)[0])(x))


def aux_of_mixed_containers(x, t):
    h = np.tanh(x)
    if t > 0.0:
        return np.sum(h) * t, [h, 2.0 * t]
    return np.sum(np.sin(x)), (h * 2.0, x)


@pytest.mark.parametrize("t", [0.5, -0.5])
def test_has_aux_with_a_list_in_one_return_and_a_tuple_in_another(t):
    x = np.array([0.3, -0.2, 0.9])
    (loss, aux), g = symdiff.value_and_grad(aux_of_mixed_containers, has_aux=True)(x, t)
    assert loss == pytest.approx(aux_of_mixed_containers(x, t)[0])
    check_grad(lambda v: aux_of_mixed_containers(v, t)[0], x)
    np.testing.assert_allclose(g, symdiff.grad(lambda v: aux_of_mixed_containers(v, t)[0])(x))


# ----------------------------------------------------------------------------- iterating dicts

LAYER_SCALE = {"W": 1.0, "b": 0.5}


def l2_over_values(p):
    return sum(np.sum(v ** 2) for v in p.values())


def scaled_over_items(p):
    total = 0.0
    for name, value in p.items():
        total = total + LAYER_SCALE[name] * np.sum(np.sin(value) * value)
    return total


def over_keys(p):
    return sum(np.sum(p[k] ** 3) for k in p) + sum(np.sum(p[k]) for k in p.keys() if k.startswith("W"))


def with_get_and_in(p):
    bias = p.get("b", 0.0) if "b" in p else 0.0
    extra = p.get("c", np.zeros(2))
    return np.sum(np.tanh(p["W"] @ np.ones(3)) + bias + extra) + ("c" not in p) * np.sum(p["W"])


def nested_values(p):
    return sum(np.sum(v * v) for v in p["layer"].values()) + p["rate"] ** 2


@pytest.mark.parametrize("f", [l2_over_values, scaled_over_items, over_keys, with_get_and_in])
def test_a_dict_argument_is_iterated_by_its_keys_values_and_items(f):
    params = {"W": RNG.normal(size=(2, 3)), "b": RNG.normal(size=2)}
    assert_tree_close(symdiff.grad(f)(params), numerical(f, params))


def test_the_values_of_a_nested_dict_are_differentiated():
    params = {"layer": {"a": RNG.normal(size=2), "b": 1.5}, "rate": 0.3}
    assert_tree_close(symdiff.grad(nested_values)(params), numerical(nested_values, params))


def test_a_loop_over_a_dict_binds_its_keys():
    def keys_in_order(p):
        seen = []
        for k in p:
            seen.append(k)
        return np.sum(p["b"]), seen

    g, seen = symdiff.grad(keys_in_order, has_aux=True)({"W": np.ones((2, 3)), "b": np.ones(2)})
    assert seen == ["W", "b"]
    np.testing.assert_array_equal(g["b"], np.ones(2))


def test_a_copy_of_a_dict_argument_is_updated_key_by_key():
    def doubled(p, x):
        q = dict(p)
        for k in q:
            q[k] = q[k] * 2.0
        return np.sum(q["a"] * x) + q["b"]

    params = {"a": RNG.normal(size=2), "b": 1.5}
    x = RNG.normal(size=2)
    assert_tree_close(symdiff.grad(doubled)(params, x), numerical(lambda p: doubled(p, x), params))


def test_sorted_items_and_keys_of_a_dict_are_sorted_by_their_keys():
    def ranked(p):
        by_items = sum(v * i for i, (k, v) in enumerate(sorted(p.items())))
        by_keys, weight = 0.0, 1.0
        for k in sorted(p):
            by_keys, weight = by_keys + p[k] * weight, weight + 1.0
        return by_items + 10.0 * by_keys

    params = {"b": 1.0, "c": 3.0, "a": 2.0}
    got = symdiff.grad(ranked)(params)
    assert list(got) == ["b", "c", "a"] and got == pytest.approx({"a": 10.0, "b": 21.0, "c": 32.0})


def test_dict_methods_wait_for_a_dict_argument_and_refuse_other_mappings():
    g = symdiff.grad(l2_over_values)  # (the version for arguments of any kind cannot know the keys)
    assert g.source is None
    got = g({"a": np.ones(2), "b": 3.0})
    np.testing.assert_array_equal(got["a"], 2.0 * np.ones(2)) and got["b"] == 6.0
    assert "def grad_l2_over_values(p)" in g.source

    class Bag:
        def values(self):
            return [np.ones(2)]

    with pytest.raises(symdiff.NoRuleError, match=r"p.values\(\.\.\.\) with p a dict: pass a dict as the argument"):
        g(Bag())


def test_a_list_built_by_appends_is_returned_as_a_list():
    def collected(ws):
        seen = []
        for w in ws:
            seen.append(w * 2.0)
        return ws[0] * 1.0, {"seen": seen, "pair": (seen, 1.0)}

    (value, aux), g = symdiff.value_and_grad(collected, has_aux=True)((1.0, 2.0))
    assert aux == {"seen": [2.0, 4.0], "pair": ([2.0, 4.0], 1.0)} and type(aux["seen"]) is list
    assert g == (1.0, 0.0)


# ----------------------------------------------------------------------------- dispatch on containers


def weighted(p):
    return p["a"] * np.sum(p["v"] ** 2) + np.sum(p["nested"][0] * p["nested"][1])


def test_containers_of_the_same_kinds_reach_their_version_without_the_slow_path(monkeypatch):
    g = symdiff.grad(weighted)
    params = {"a": 2.0, "v": np.ones(3), "nested": (np.ones(2), np.full(2, 3.0))}
    first = g(params)
    slow_calls = []
    real = g.__globals__["_compile"]  # (what the dispatcher calls when no guard matches)
    monkeypatch.setitem(g.__globals__, "_compile", lambda *a: slow_calls.append(a) or real(*a))
    again = g({"a": 2.0, "v": np.ones(3), "nested": (np.ones(2), np.full(2, 3.0))})
    assert not slow_calls
    assert_tree_close(again, first)


@pytest.mark.parametrize("params", [
    {"v": np.ones(3), "a": 2.0, "nested": (np.ones(2), np.full(2, 3.0))},  # the keys in another order
    {"a": 2, "v": np.ones(3), "nested": (np.ones(2), np.full(2, 3.0))},  # an int for a float
    {"a": 2.0, "v": np.ones(3, dtype=np.float32), "nested": (np.ones(2), np.full(2, 3.0))},
    {"a": 2.0, "v": np.ones((1, 3)), "nested": [np.ones(2), np.full(2, 3.0)]},  # a size-1 axis, a list
    {"a": 2.0, "v": np.ones(3), "nested": (np.ones(2), np.full(2, 3.0)), "extra": 1.0},
], ids=["key order", "int", "float32", "list and size-1 axis", "one more key"])
def test_a_container_of_other_kinds_gets_a_version_of_its_own(params):
    g = symdiff.grad(weighted)
    g({"a": 2.0, "v": np.ones(3), "nested": (np.ones(2), np.full(2, 3.0))})
    got = g(params)
    assert list(got) == list(params) and type(got["nested"]) is type(params["nested"])
    assert got["v"].dtype == params["v"].dtype and got["v"].shape == params["v"].shape
    want = numerical(weighted, {k: (np.asarray(v, dtype=float) if k == "v" else v) for k, v in params.items()})
    for k in params:
        np.testing.assert_allclose(np.asarray(got[k], dtype=float) if k != "nested" else np.stack(got[k]),
                                   np.asarray(want[k]) if k != "nested" else np.stack(want[k]), rtol=1e-5)


def test_dict_keys_other_than_strings_and_ints_still_dispatch():
    def by_pairs(p):
        return p[(0, 1)] * p[(1, 0)]

    g = symdiff.grad(by_pairs)
    assert g({(0, 1): 2.0, (1, 0): 3.0}) == {(0, 1): 3.0, (1, 0): 2.0}
    assert g({(0, 1): 5.0, (1, 0): 3.0}) == {(0, 1): 3.0, (1, 0): 5.0}
