"""Lists and tuples built inside the function: append, comprehensions, stacking, iteration."""

import numpy as np
from fd import check_grad

import symdiff

RNG = np.random.default_rng(11)
WH = RNG.uniform(-0.5, 0.5, (3, 3))
WX = RNG.uniform(-0.5, 0.5, (3, 2))
XS = RNG.uniform(-1.0, 1.0, (5, 2))


def rnn_stacked(Wh, Wx, xs):
    h = np.zeros(3)
    hs = []
    for t in range(xs.shape[0]):
        h = np.tanh(Wh @ h + Wx @ xs[t])
        hs.append(h)
    H = np.stack(hs)  # (T, 3)
    return np.sum(H ** 2) + np.sum(hs[-1] * hs[0])


def test_rnn_appending_hidden_states_and_stacking_them():
    check_grad(rnn_stacked, WH, WX, XS, argnums=(0, 1, 2))


def reads_while_growing(x):
    hs = [x]
    for t in range(4):
        hs.append(np.sin(hs[t]) + hs[-1] * 0.5)
    return np.sum(np.array(hs) ** 2)


def test_indexing_a_list_while_it_grows():
    check_grad(reads_while_growing, np.array([0.3, -0.8]))


def comprehension_and_generator(x):
    rows = [np.tanh(x * k) for k in range(1, 4)]
    return np.sum(np.stack(rows)) + sum(np.sum(r * r) for r in rows if r is not None)


def test_list_comprehension_and_generator_expression():
    check_grad(comprehension_and_generator, np.array([0.4, -0.2, 0.9]))


def iterate_helpers(x, y):
    items = [x, 2.0 * y, x * y]
    s = 0.0
    for i, v in enumerate(items):
        s = s + np.sum(v) * (i + 1.0)
    for a, b in zip(items, reversed(items)):
        s = s + np.sum(a * b)
    for v in reversed(items):
        s = s * 0.5 + np.sum(np.cos(v))
    return s + len(items)


def test_enumerate_zip_and_reversed():
    check_grad(iterate_helpers, np.array([0.3, 0.7]), np.array([-0.5, 1.2]))


def list_argument_indexed_in_a_loop(weights, x):
    h = x
    for i in range(len(weights)):
        h = np.tanh(weights[i] @ h)
    return np.sum(h)


def test_container_argument_indexed_by_a_loop_variable():
    weights = [RNG.normal(size=(2, 2)) for _ in range(3)]
    x = np.array([0.5, -1.0])
    got = symdiff.grad(list_argument_indexed_in_a_loop)(weights, x)
    eps = 1e-6
    for i, W in enumerate(weights):
        for index in np.ndindex(W.shape):
            plus = [w.copy() for w in weights]
            minus = [w.copy() for w in weights]
            plus[i][index] += eps
            minus[i][index] -= eps
            want = (list_argument_indexed_in_a_loop(plus, x) - list_argument_indexed_in_a_loop(minus, x)) / (2 * eps)
            np.testing.assert_allclose(got[i][index], want, rtol=1e-5, atol=1e-7)


def test_lists_built_in_the_function_leave_caller_data_alone():
    x = np.array([0.3, -0.8])
    before = x.copy()
    symdiff.grad(reads_while_growing)(x)
    np.testing.assert_array_equal(x, before)


def test_item_assignment_on_a_list_growing_in_a_loop():
    def f(v):
        hs = [v]
        for _ in range(3):
            hs.append(np.sin(hs[-1]))
            hs[-1] = hs[-1] + 0.5 * hs[-2]
        return np.sum(hs[-1] ** 2)

    check_grad(f, np.array([0.3, -0.7, 1.1, 0.5]))


def test_item_assignment_on_a_list_display_that_then_grows():
    def f(v):
        hs = [v, v * 2.0]
        hs[0] = hs[1] * hs[0]
        hs.append(hs[0] + 1.0)
        hs[-1] = np.sin(hs[-1])
        return np.sum(hs[-1] ** 2) + np.sum(hs[0])

    check_grad(f, np.array([0.3, -0.7, 1.1, 0.5]))


def test_slices_of_a_list_that_grew_by_appending():
    def f(x):
        hs = [x]
        for _ in range(3):
            hs.append(np.tanh(hs[-1]))
        total = sum(np.sum(h) for h in hs[1:])
        for h in hs[-2::-1]:
            total = total + np.sum(h * h)
        return total + np.sum(np.stack(hs[1:3]) ** 2)

    check_grad(f, np.array([0.3, -0.4, 0.8]))


def indexes_a_copied_nested_display_twice(x):
    listed = list(((x * x, 2.0), (x, 4.0)))
    rows = tuple([[np.sin(x), x], (3.0 * x, 1.0)])
    return np.sum(listed[0][0] * listed[0][1] + listed[1][0] * listed[1][1]) \
        + np.sum(rows[0][0] * rows[0][1] + rows[1][0] * rows[0][1])


def test_cotangents_of_nested_sequences_reached_twice_add_item_by_item():
    check_grad(indexes_a_copied_nested_display_twice, np.array([0.3, -0.7, 1.2]))


def stacks_a_nested_display_and_indexes_a_copy_of_its_row(x):
    grid = [[x, x * 2.0], [np.sin(x), x]]
    return np.sum(np.array(grid) ** 2) + np.sum(list(grid[0])[1] * x)


def stacks_a_list_of_pairs_and_unpacks_one(x):
    pairs = [(x * x, np.cos(x)), (x, x * 3.0)]
    (a, b), _ = pairs
    return np.sum(np.stack(pairs[0]) * 2.0) + np.sum(np.array(pairs)) + np.sum(a * b)


def test_a_stacked_and_an_item_by_item_cotangent_of_one_nested_sequence_add():
    """np.array(grid) gives grid's rows their cotangents stacked in arrays, list(grid[0])[1] one
    item by item: the two add."""
    x = np.array([0.3, -0.7, 1.2])
    check_grad(stacks_a_nested_display_and_indexes_a_copy_of_its_row, x)
    check_grad(stacks_a_list_of_pairs_and_unpacks_one, x)


def pairs_rows_in_one_comprehension(X):
    return sum([np.sum(q * np.sin(s)) for q in X for s in X])


def flattens_a_grid_and_filters_both_clauses(X):
    q = 0.5  # the comprehension's q is its own
    grid = [[row, row * 2.0] for row in X]
    flat = [t * q for part in grid if np.sum(part[0]) > -9.0 for t in part if np.sum(t) < 9.0]
    return sum(np.sum(t ** 2) for t in flat) + sum(np.sum(a - b) for a in X for b in X[1:]) + q


def test_comprehensions_with_several_for_clauses_nest_their_loops():
    X = np.array([[0.3, -0.5, 0.8], [0.1, 0.9, -1.1], [0.7, 0.2, -0.4]])
    check_grad(pairs_rows_in_one_comprehension, X)
    check_grad(flattens_a_grid_and_filters_both_clauses, X)
