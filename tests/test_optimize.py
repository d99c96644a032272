"""The whole-function passes (copy propagation, CSE, dead code) and the gradient-type fixes
that came with them: each pins down what the generated code computes, and checks the
gradient against finite differences."""

import math
import re

import numpy as np
import pytest
from fd import check_grad

import symdiff
from symdiff import frontend, ir, lower, optimize, passes


def code_of(g) -> str:
    """The generated source of gradient ``g`` without its comment lines."""
    return "\n".join(line for line in g.source.splitlines() if not line.lstrip().startswith("#"))


def rosen(x):
    return np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def test_cse_merges_repeated_pure_expressions_of_the_same_values():
    primal = lower.lower(frontend.parse_function(rosen), [(False,)])
    optimize.eliminate_common_subexpressions(primal)
    optimize.propagate_copies(primal)
    passes.eliminate_dead_code(primal)
    slices = [op for op, _ in ir.walk(primal.body) if op.kind == "call" and op.fn.__name__ == "getitem"]
    assert len(slices) == 2  # x[1:] and one x[:-1]
    ir.verify(primal)


@pytest.mark.optimized_source
def test_generated_code_slices_once_per_distinct_slice():
    g = symdiff.grad(rosen)
    x = np.linspace(-1.0, 1.5, 7)
    g(x)
    assert len(re.findall(r"(?<!\w)x\[:-1\]", code_of(g))) == 1
    check_grad(rosen, x)


BYTES = np.array([200, 100], dtype=np.uint8)


def test_cse_keeps_constants_of_different_types_apart():
    """``BYTES + 100`` wraps around in uint8 and ``BYTES + 100.0`` does not: merging the two
    equal constants would change both the value and the gradient."""
    def f(x):
        return np.sum(x * (BYTES + 100)) + np.sum(x * (BYTES + 100.0)) + np.sum(x * (BYTES + True))

    x = np.array([0.5, -2.0])
    g = symdiff.grad(f)(x)
    np.testing.assert_array_equal(g, (BYTES + 100) + (BYTES + 100.0) + (BYTES + True))
    check_grad(f, x)


def test_cse_does_not_merge_two_accumulators_the_loop_adds_into():
    """``a`` and ``b`` have one shape, so their gradients' zero accumulators are the same
    expression; the backward loop adds into each in place, so they must stay two arrays."""
    def f(x):
        a = x * 1.0
        b = x * 2.0
        s = 0.0
        for i in range(3):
            s = s + a[i] * b[i] + a[i]
        return s

    check_grad(f, np.array([0.5, -1.0, 2.0]))


def test_cse_does_not_merge_arrays_the_backward_sweep_updates_in_place():
    def f(x, y):
        a = x[0] * y[1] + x[1] * y[0]  # two cotangents added into fresh zeros in place
        b = x[0] + y[1]
        return a * b + np.sum(np.zeros(2) + x) + np.sum(np.zeros(2) * y)

    check_grad(f, np.array([0.5, -2.0]), np.array([1.5, 0.25]))


def test_cse_does_not_merge_lists_built_in_the_function():
    def f(x):
        a, b = [], []
        a.append(x)
        b.append(2.0 * x)
        return np.sum(np.stack(a) * np.stack(b))

    check_grad(f, np.array([0.5, -2.0]))


@pytest.mark.optimized_source
def test_loop_values_that_only_feed_themselves_are_dead():
    def f(x, n):
        unused = 0.0
        total = 0.0
        for i in range(n):
            unused = unused * 2.0 + x
            total = total + x * i
        return total

    g = symdiff.grad(f)
    assert g(2.0, 4) == 6.0
    assert "unused" not in g.source and "total = total" not in g.source  # only the derivative is carried


@pytest.mark.optimized_source
def test_a_cotangent_carried_unchanged_through_a_loop_is_its_constant():
    def f(x, y, n):
        total = 0.0
        for i in range(n):
            total = total + x * i + y
        return total

    g = symdiff.grad(f, argnums=(0, 1))  # two inputs: reverse mode
    assert g(2.0, 1.0, 4) == (6.0, 4.0)
    assert "dtotal" not in g.source and "1.0 *" not in g.source


def test_the_gradient_of_a_float_is_a_float_when_the_cotangent_is_an_int_argument():
    def f(x, n):
        return x * n

    def h(x, flag):
        return x * flag + x * 0

    g = symdiff.grad(f)(2.0, 3)
    assert type(g) is float and g == 3.0
    got = symdiff.grad(h)(2.0, True)
    assert type(got) is float and got == 1.0


def test_two_gradients_are_never_the_same_array():
    def f(x, y):
        return np.sum(x + y)

    gx, gy = symdiff.grad(f, argnums=(0, 1))(np.ones(3), np.ones(3))
    assert not np.shares_memory(gx, gy)
    gx *= 5.0
    np.testing.assert_array_equal(gy, np.ones(3))


def piecewise(x, w):
    return np.sum(np.where(x > 0, x * x, 0.5 * x) + np.maximum(x, 0.1) * w)


@pytest.mark.optimized_source
def test_axes_broadcast_together_in_straight_line_code_are_known_equal():
    g = symdiff.grad(piecewise, argnums=(0, 1))
    x, w = np.array([-1.0, -0.3, 0.05, 0.6, 1.2]), np.linspace(0.5, 2.0, 5)  # off the kinks
    g(x, w)
    assert "unbroadcast" not in g.source and "np.full" not in g.source
    code = code_of(g)
    assert re.findall(r"[\w.]+ \* x\b", code) == ["2.0 * x"]  # x * x: one doubled product, not two
    check_grad(piecewise, x, w)


def only_one_arm_broadcasts(x, w):
    if x.shape[0] == w.shape[0]:
        return np.sum(x * w)
    return np.sum(np.outer(x, w) * x[:, None]) + np.sum(w * w)


def test_axes_broadcast_in_one_arm_only_are_not_assumed_equal():
    check_grad(only_one_arm_broadcasts, np.array([0.5, -1.0, 2.0]), np.array([1.5, 0.25]))
    check_grad(only_one_arm_broadcasts, np.array([0.5, -1.0]), np.array([1.5, 0.25]))


def test_an_operand_used_twice_gets_both_contributions():
    def f(x, y):
        return np.sum(x * x) + np.sum(np.where(y > 0, y * y, -y)) + np.sum(np.hypot(x, x))

    check_grad(f, np.array([0.5, -1.0, 2.0]), np.array([1.5, -0.25, 0.75]))
    check_grad(lambda s: s * s * s, 1.5)


def doubling(x, c):
    y = x
    while y < 100.0:
        y = y * 2.0 + math.exp(-x) * c
    return y


def test_a_loop_value_read_by_an_inlined_yield_keeps_its_own_name():
    # the backward loop computes dx from the old dy and the new dy in one iteration: the new dy
    # must not overwrite the name the yield expression still reads
    check_grad(doubling, 1.7, 0.5)


def guarded(x, n):
    s = x
    for i in range(n):
        if x > 0:
            s = s + math.log(x) * i  # invariant, and it raises for x <= 0, where it never runs
        else:
            s = s - x * math.exp(x)
    return s


@pytest.mark.parametrize("x, n", [(-1.0, 3), (2.0, 3), (2.0, 0), (0.0, 0)])
def test_loop_invariants_are_computed_once_and_only_where_the_loop_reaches_them(x, n):
    check_grad(guarded, x, n, argnums=0)
    check_grad(guarded, x, n, argnums=(0,))


def sqrt_loop(x, n):
    s = 0.0
    for i in range(n):
        s = s + math.sqrt(x) * i
    return s


@pytest.mark.optimized_source
def test_loop_invariants_are_hoisted_or_computed_on_first_use():
    g = symdiff.grad(guarded)
    g(2.0, 3)
    before, body = g.source.split("\n    for ")
    assert "x > 0" in before and "x > 0" not in body  # cannot raise: hoisted
    assert "if ratio is None:" in body and body.count("1.0 / x") == 1  # d log(x): on first use


def test_a_loop_invariant_raises_where_the_original_does_and_only_there():
    with pytest.raises(ValueError):
        sqrt_loop(-1.0, 2)
    with pytest.raises(ValueError):
        symdiff.grad(sqrt_loop)(-1.0, 2)
    assert symdiff.grad(sqrt_loop)(-1.0, 0) == 0.0
    check_grad(sqrt_loop, 4.0, 3, argnums=0)


def rnn(Wx, Wh, xs):
    h = np.zeros(Wh.shape[0])
    for t in range(xs.shape[0]):
        h = np.tanh(Wx @ xs[t] + Wh @ h)
    return np.sum(h ** 2) + np.sum(Wh * Wh)  # Wh's cotangent does not start at zero


def batched_rnn(Wx, Wh, xs):
    h = np.zeros((xs.shape[1], Wh.shape[0]))
    for t in range(xs.shape[0]):
        h = np.tanh(xs[t] @ Wx + h @ Wh)
    return np.sum(h ** 2)


def accumulates_outer_products(us, vs):
    acc = np.zeros((us.shape[1], vs.shape[1]))
    for t in range(us.shape[0]):
        acc = acc + np.outer(np.sin(us[t]), vs[t])
    return np.sum(acc * acc)


@pytest.mark.parametrize("T", [0, 1, 4])
def test_loops_summing_outer_products_form_them_after_the_loop(T):
    r = np.random.default_rng(T)
    Wx, Wh, xs = r.normal(size=(3, 2)) * 0.5, r.normal(size=(3, 3)) * 0.5, r.normal(size=(T, 2))
    check_grad(rnn, Wx, Wh, xs, argnums=(0, 1, 2))
    check_grad(batched_rnn, Wx.T, Wh, r.normal(size=(T, 5, 2)), argnums=(0, 1, 2))
    check_grad(accumulates_outer_products, r.normal(size=(T, 3)), r.normal(size=(T, 2)))


@pytest.mark.optimized_source
def test_an_rnn_gradient_does_one_matrix_product_per_weight():
    g = symdiff.grad(rnn, argnums=(0, 1))
    r = np.random.default_rng(0)
    g(r.normal(size=(3, 2)), r.normal(size=(3, 3)), r.normal(size=(4, 2)))
    backward = g.source.split("reversed(")[1]
    assert "np.outer" not in backward and "add_into" not in backward
    assert g.source.count("sum_of_outer(") == 2


def rosenbrock(x, y):
    return (1 - x) ** 2 + 100 * (y - x ** 2) ** 2


@pytest.mark.optimized_source
def test_float_code_squares_by_multiplying_and_subtracts_from_float_constants():
    g = symdiff.grad(rosenbrock, argnums=(0, 1))
    assert g(-1.2, 1.0) == pytest.approx((-215.6, -88.0))
    code = code_of(g)
    assert "x * x" in code and "x ** 2" not in code and "1.0 - x" in code
    check_grad(rosenbrock, -1.2, 1.0)
    gi = symdiff.grad(rosenbrock, argnums=(0, 1))
    assert gi(2, 3) == (802.0, -200.0)  # int arguments: int arithmetic, float gradients
    assert all(type(d) is float for d in gi(2, 3))


@pytest.mark.optimized_source
def test_scatters_into_the_gradient_are_item_assignments_for_basic_indices():
    def f(x, idx):
        return np.sum(x[1:] * x[:-1]) + x[0, 1] * 3.0 + np.sum(x[idx] ** 2)

    g = symdiff.grad(f)
    x, idx = np.arange(12.0).reshape(4, 3) / 7.0, np.array([0, 0, 2])
    g(x, idx)
    assert "dx[0, 1] += 3.0" in g.source and "dx[1:] += " in g.source
    assert "getitem_vjp(" in g.source  # the fancy index x[idx] repeats rows: np.add.at
    check_grad(f, x, idx, argnums=0)


def test_constant_masks_absorb_constant_factors_exactly():
    def f(x):
        return np.sum(np.where(x > 0, x * x, -0.5 * x)) + 3.0 * np.sum(np.where(x > 1.0, x, 0.25 * x))

    x = np.array([-1.5, -0.2, 0.3, 1.7, 2.5])
    check_grad(f, x)
    got = symdiff.grad(f)(x)
    want = np.where(x > 0, 2.0 * x, -0.5) + 3.0 * np.where(x > 1.0, 1.0, 0.25)
    np.testing.assert_array_equal(got, want)  # bit for bit


def xor_like(W, b, X):
    h = np.tanh(X @ W + b)
    return np.sum(h * h)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, ">f8"])
def test_specialisations_by_dtype_give_gradients_of_the_arguments_dtype(dtype):
    r = np.random.default_rng(1)
    W, b, X = (r.normal(size=s).astype(dtype) for s in ((3, 2), (2,), (4, 3)))
    g = symdiff.grad(xor_like, argnums=(0, 1))
    for _ in range(2):  # the second call goes through the dispatcher's guards
        dW, db = g(W, b, X)
        assert dW.dtype == W.dtype and db.dtype == b.dtype and dW.shape == W.shape
        assert not np.shares_memory(dW, W) and dW.flags.writeable
    check_grad(xor_like, W.astype(np.float64), b.astype(np.float64), X.astype(np.float64), argnums=(0, 1))


@pytest.mark.optimized_source
def test_float64_gradients_of_known_shape_are_returned_without_a_check():
    g = symdiff.grad(xor_like, argnums=(0, 1))
    r = np.random.default_rng(1)
    g(r.normal(size=(3, 2)), r.normal(size=2), r.normal(size=(4, 3)))
    assert "as_grad" not in g.source and "grad_like" not in g.source
    g(r.normal(size=(3, 2)).astype(np.float32), r.normal(size=2), r.normal(size=(4, 3)))
    assert "as_grad(dW, W)" in g.source  # float32: converted


@pytest.mark.optimized_source
def test_contributions_are_added_into_the_sweeps_own_arrays_in_place():
    g = symdiff.grad(piecewise, argnums=(0, 1))
    x, w = np.array([-1.0, -0.3, 0.05, 0.6, 1.2]), np.linspace(0.5, 2.0, 5)
    before = x.copy()
    gx, gw = g(x, w)
    assert "dx += " in g.source
    np.testing.assert_array_equal(x, before)
    np.testing.assert_array_equal(gw, np.maximum(x, 0.1))
    check_grad(piecewise, x, w)


@pytest.mark.optimized_source
def test_new_axes_have_static_shapes():
    def f(x, y):
        return np.sum(np.tanh(x[:, None] * y[None, :] + x[:, None]))

    g = symdiff.grad(f, argnums=(0, 1))
    x, y = np.array([0.5, -1.0, 2.0]), np.array([1.5, 0.25])
    g(x, y)
    assert "unbroadcast" not in g.source
    check_grad(f, x, y)


@pytest.mark.optimized_source
def test_a_loop_invariant_is_not_recorded_for_the_backward_sweep():
    g = symdiff.grad(doubling, argnums=(0, 1))  # two inputs: reverse mode
    g(1.7, 0.5)
    assert "_stack" not in g.source and "is None" in g.source
    check_grad(doubling, 1.7, 0.5)
    check_grad(doubling, 150.0, 0.5)  # no iteration: the invariant is never computed


def two_branches_one_mask(x):
    c = x > 0.5
    return np.sum(np.where(c, x * x, np.sin(x)) + np.where(c, np.exp(x), x ** 3))


def one_side_twice(x):
    c = x > 0
    return np.sum(np.tanh(x) + np.where(c, x * x, 0.0) + np.where(c, np.sin(x), 0.0))


def same_side_around_another_term(x):  # (tanh' + where(c, 2x, 0)) + where(c, cos, 0): not exact to merge
    c = x > 0
    return np.sum(np.where(c, np.sin(x), 0.0) + np.where(c, x * x, 0.0) + np.tanh(x))


def other_side_around_another_term(x):  # (where(c, 0, 2x) + tanh') + where(c, cos, 0): exact
    c = x > 0
    return np.sum(np.where(c, np.sin(x), 0.0) + np.tanh(x) + np.where(c, 0.0, x * x))


def row_mask(x, y):
    return np.sum(np.where(x > y, x * y, 2.0 * x) + np.where(x > y, 0.0, np.cos(y)))


def masked_in_loop(x, n):
    s = 0.0
    for i in range(n):
        s = s + np.sum(np.where(x > i * 0.1, x * x, 2.0 * x))
    return s


MASKED_SUMS = [  # (f, its arguments, argnums, merged into fewer wheres)
    (piecewise, lambda r: (r.normal(size=1000), r.normal(size=1000)), (0, 1), True),
    (two_branches_one_mask, lambda r: (r.normal(size=1000),), (0,), True),
    (one_side_twice, lambda r: (r.normal(size=1000),), (0,), True),
    (other_side_around_another_term, lambda r: (r.normal(size=1000),), (0,), True),
    (same_side_around_another_term, lambda r: (r.normal(size=1000),), (0,), False),
    (row_mask, lambda r: (r.normal(size=(30, 40)), r.normal(size=40)), (0,), True),  # y broadcast in the where
    (masked_in_loop, lambda r: (r.normal(size=1000), 4), (0,), True),
]


@pytest.mark.optimized_source
@pytest.mark.parametrize("f, make, argnums, fewer", MASKED_SUMS, ids=[case[0].__name__ for case in MASKED_SUMS])
def test_masked_cotangents_are_summed_in_one_where_with_the_same_numbers(f, make, argnums, fewer, monkeypatch):
    args = make(np.random.default_rng(3))
    merged = symdiff.grad(f, argnums=argnums)
    got = merged(*args)
    monkeypatch.setattr(passes, "DISABLED", {"masks"})
    unmerged = symdiff.grad(f, argnums=argnums)
    want = unmerged(*args)
    wheres = code_of(merged).count("np.where("), code_of(unmerged).count("np.where(")
    assert wheres[0] < wheres[1] if fewer else wheres[0] == wheres[1]
    for a, b in zip(got, want):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)  # bit for bit: the same sums in the same order
    small = [a[:5] if isinstance(a, np.ndarray) and a.ndim == 1 else a[:3, :5] if isinstance(a, np.ndarray) else a
             for a in args]
    if f is row_mask:
        small = [args[0][:3, :5], args[1][:5]]
    check_grad(f, *small, argnums=argnums)


@pytest.mark.optimized_source
def test_the_derivative_of_where_is_one_where_like_the_hand_written_one():
    g = symdiff.grad(piecewise, argnums=(0, 1))
    x, w = np.array([-1.0, -0.3, 0.05, 0.6, 1.2]), np.linspace(0.5, 2.0, 5)
    gx, gw = g(x, w)
    assert code_of(g).count("np.where(") == 1 and "np.where(x > 0, 2.0 * x, 0.5)" in g.source
    np.testing.assert_array_equal(gx, w * (x > 0.1) + np.where(x > 0, 2.0 * x, 0.5))


@pytest.mark.optimized_source
def test_a_branch_not_taken_adds_no_nan_to_a_merged_where():
    def f(x):
        return np.sum(np.where(x > 0, np.sqrt(x), 0.5 * x))

    with np.errstate(invalid="ignore"):  # np.sqrt of the negative elements, as in f itself
        got = symdiff.grad(f)(np.array([-1.0, 4.0]))
    np.testing.assert_array_equal(got, [0.5, 0.25])


def test_masked_sums_of_float32_arrays_keep_their_dtype():
    x = np.random.default_rng(4).normal(size=6).astype(np.float32)
    g = symdiff.grad(two_branches_one_mask)(x)
    assert g.dtype == np.float32
    check_grad(two_branches_one_mask, x.astype(np.float64))


def log_softmax_loss(z, Y):
    z = z - np.max(z, axis=1, keepdims=True)
    logp = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    return -np.sum(Y * logp) / z.shape[0]


@pytest.mark.optimized_source
def test_a_row_cotangent_broadcast_to_a_matrix_is_absorbed_by_the_product_that_broadcasts_it():
    r = np.random.default_rng(5)
    z, Y = r.normal(size=(6, 4)), np.eye(4)[r.integers(0, 4, size=6)]
    g = symdiff.grad(log_softmax_loss)
    g(z, Y)
    assert "broadcast_to" not in g.source
    check_grad(log_softmax_loss, z, Y, argnums=0)


@pytest.mark.parametrize("fn", [
    lambda b: np.sum(np.minimum(b - b, np.where(b > 0.0, b, b))),
    lambda x: np.sum(x - np.maximum(2, np.where(x > -0.2, x, x))),
    lambda x: np.sum(np.clip(x - x[::-1], -0.5, 0.6)),
], ids=["minimum-of-a-difference", "maximum-subtracted", "clip-of-a-difference"])
def test_unit_cotangent_times_a_winner_mask_stays_a_float_array(fn):
    # with no ties the mask is boolean: dropping `1.0 *` would make `mask - mask` a bool error
    check_grad(fn, np.array([[0.5], [-0.3], [2.5]]))


def shared_index_cotangent(A, u, t):
    v = np.cos(u)
    u = u - (v + (t - u))  # the new u's cotangent is also, unchanged, a part of the old u's
    a = A * 1.0
    b = a
    b += u[:, None]
    return np.sum(a)


def test_an_index_cotangent_that_is_also_another_values_is_not_added_into_in_place():
    rng = np.random.RandomState(0)
    check_grad(shared_index_cotangent, rng.randn(4, 5), rng.randn(4), -0.06)


def sin_plus_cos_squared(x, z):
    return np.sum((np.sin(x) + np.cos(z)) ** 2)


def test_a_float64_argument_gets_a_float64_gradient_beside_a_longdouble_one():
    x, z = np.array([0.3, -1.2, 0.8]), np.array([0.5, 0.1, -0.4], dtype=np.longdouble)
    gx, gz = symdiff.grad(sin_plus_cos_squared, argnums=(0, 1))(x, z)
    assert gx.dtype == np.float64 and gz.dtype == np.longdouble
    check_grad(sin_plus_cos_squared, x, z.astype(np.float64), argnums=(0, 1))


def loop_meeting_a_longdouble(x, z):
    h = x * 1.0
    for _ in range(2):
        h = h * z + x
    return np.sum(h * h)


def test_a_loop_that_turns_a_float64_value_longdouble_does_not_claim_it_stays_float64():
    x, z = np.array([0.3, -1.2, 0.8]), np.array([0.5, 0.1, -0.4], dtype=np.longdouble)
    gx, gz = symdiff.grad(loop_meeting_a_longdouble, argnums=(0, 1))(x, z)
    assert gx.dtype == np.float64 and gz.dtype == np.longdouble
    check_grad(loop_meeting_a_longdouble, x, z.astype(np.float64), argnums=(0, 1))
