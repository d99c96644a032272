"""Statements and call forms of real numeric code: assert, raise, with np.errstate, star-arguments,
*args/**kwargs/keyword-only parameters, map/filter, dict(...), loops over arrays' rows and
generator helpers -- each differentiated end to end against central finite differences, its
rewrite checked where one happens, and the variants that stay unsupported refused with a
message that points at the line and says what to write."""

from __future__ import annotations

import ast
import builtins
import contextlib
import os
import textwrap
import warnings

import numpy as np
import pytest
from fd import check_grad, numerical_grad
from jvpcheck import check_jvp

import symdiff
from symdiff import api, desugar, frontend, ir, lower, runtime

X3 = np.array([0.3, -0.7, 1.1])
P3 = np.array([0.4, 1.3, 2.2])
RNG = np.random.default_rng(401)


def check_all(f, *args, differentiated=(0,)):
    """``grad`` against finite differences, ``jvp`` (and its adjoint identity with ``vjp``), and
    one Hessian-vector product of a scalar function against finite differences of its gradient."""
    check_grad(f, *args, argnums=differentiated)
    check_jvp(f, list(args), differentiated, RNG)
    n = differentiated[0]
    v = np.ones_like(args[n]) if isinstance(args[n], np.ndarray) else 1.0
    grad = symdiff.grad(f, argnums=n)

    def along(*a):
        return np.sum(np.asarray(grad(*a)) * v)
    want = numerical_grad(along, list(args), n)
    got = symdiff.hvp(f, argnums=n)(*args, v)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def located_error(fn, *args, cls=symdiff.SymdiffError):
    """The message of the error ``grad(fn)(*args)`` raises; it names this file."""
    with pytest.raises(cls) as info:
        symdiff.grad(fn)(*args)
    message = str(info.value)
    assert os.path.basename(__file__) in message.splitlines()[0], message
    return message


def statements(text: str):
    """The def in ``text`` after :func:`desugar.statements`, the builtins being the builtins."""
    tree = ast.parse(textwrap.dedent(text)).body[0]
    return desugar.statements(tree, lambda name: getattr(builtins, name, None), desugar.Namer(tree))


def unparsed(tree) -> str:
    class Named(ast.NodeTransformer):
        def visit_Constant(self, c: ast.Constant) -> ast.AST:
            if getattr(builtins, getattr(c.value, "__name__", ""), None) is c.value:
                return ast.Name(c.value.__name__, ast.Load())
            return c
    return ast.unparse(Named().visit(tree))


def canonical(source: str) -> str:
    """``source`` as this Python's ``ast.unparse`` writes it (3.9 puts tuple targets in parentheses)."""
    return ast.unparse(ast.parse(source))


# ---------------------------------------------------------------------- assert


def asserts_positive(x):
    assert np.all(x > 0), "needs positive entries"
    return np.sum(np.log(x) * x)


def test_assert_is_differentiated_through_and_checked_on_the_input():
    check_all(asserts_positive, P3)
    with pytest.raises(AssertionError, match="needs positive entries"):
        symdiff.grad(asserts_positive)(X3)


def test_the_gradient_code_keeps_the_assert_as_a_raise():
    g = symdiff.grad(asserts_positive)
    g(P3)
    assert "raise" in g.source and "needs positive entries" in g.source


def test_assert_becomes_an_if_that_raises_assertion_error():
    tree = statements("""
        def f(x):
            assert x > 0, "m"
            return x
    """)
    assert unparsed(tree.body[0]) == "if not x > 0:\n    raise AssertionError('m')"


def asserts_on_a_shape_in_a_helper(x):
    return np.sum(_checked_square(x))


def _checked_square(u):
    assert u.ndim == 1
    return u * u


def test_assert_in_a_helper_runs_where_it_is_inlined():
    check_grad(asserts_on_a_shape_in_a_helper, X3)
    with pytest.raises(AssertionError):
        symdiff.grad(asserts_on_a_shape_in_a_helper)(np.ones((2, 2)))


# ---------------------------------------------------------------------- the IR of raise and with


def primal_ir(fn, *example_args):
    return lower.lower(frontend.parse_function(fn), [api._guard_key(a) for a in example_args])


def calls_in_order(fn_ir) -> list:
    """The callees of the function's calls, in program order, regions included."""
    return [op.fn for op, _ in ir.walk(fn_ir.body) if op.kind is ir.OpKind.CALL]


def test_raise_lowers_to_an_effect_in_its_branch_and_ends_the_block():
    fn_ir = primal_ir(raises_in_one_arm_and_assigns_in_the_other, X3, 1)
    throws = [(op, region) for op, region in ir.walk(fn_ir.body) if op.kind is ir.OpKind.CALL
              and op.fn is runtime.throw]
    assert len(throws) == 1
    op, region = throws[0]
    assert op.effect and region is not fn_ir.body
    assert region.ops[-1] is op  # nothing after the raise in its arm


def test_with_lowers_to_enter_and_exit_around_the_body_in_order():
    fn_ir = primal_ir(log_without_warnings, P3)
    callees = calls_in_order(fn_ir)
    enter, exit_ = callees.index(runtime.enter_context), callees.index(runtime.exit_context)
    assert enter < callees.index(np.log) < exit_
    assert callees.index(np.errstate) < enter


# ---------------------------------------------------------------------- raise


def raises_when_empty(x):
    if x.shape[0] == 0:
        raise ValueError("empty input")
    s = 0.0
    for v in x:
        if v > 5.0:
            raise ValueError("too large")
        s = s + np.sin(v) * v
    return s


def test_raise_in_a_branch_runs_as_written_and_the_gradient_raises_the_same():
    check_all(raises_when_empty, X3)
    g = symdiff.grad(raises_when_empty)
    with pytest.raises(ValueError, match="empty input"):
        g(np.zeros(0))
    with pytest.raises(ValueError, match="too large"):
        g(np.array([1.0, 6.0]))
    with pytest.raises(ValueError, match="too large"):
        symdiff.jvp(raises_when_empty, (np.array([1.0, 6.0]),), (np.ones(2),))


def raises_in_one_arm_and_assigns_in_the_other(x, k):
    if k < 0:
        y = x * 2.0
        raise ValueError("negative k")
    else:
        y = x ** 3
    return np.sum(y)


def test_values_assigned_before_a_raise_do_not_reach_the_rest():
    check_grad(raises_in_one_arm_and_assigns_in_the_other, X3, 1, argnums=0)
    with pytest.raises(ValueError, match="negative k"):
        symdiff.grad(raises_in_one_arm_and_assigns_in_the_other)(X3, -1)


def returns_or_raises(x):
    if np.sum(x) > -10.0:
        return np.sum(np.sin(x) * x)
    else:
        raise ValueError("far too negative")


def assigns_or_raises(x):
    if x > 0:
        y = x * 2.0
    else:
        raise ValueError("not positive")
    return y * y


def test_a_raise_in_the_other_arm_of_a_return_or_an_assignment():
    check_all(returns_or_raises, X3)
    check_all(assigns_or_raises, 1.5)
    with pytest.raises(ValueError, match="far too negative"):
        symdiff.grad(returns_or_raises)(np.full(3, -5.0))
    with pytest.raises(ValueError, match="not positive"):
        symdiff.hvp(assigns_or_raises)(-1.0, 1.0)


def test_the_gradient_code_raises_with_a_raise_statement():
    g = symdiff.grad(raises_when_empty)
    g(X3)
    assert "raise ValueError" in g.source or "= ValueError(" in g.source


def raises_from(x):
    if x < 0:
        raise ValueError("negative") from None
    return x


def test_raise_from_is_refused_with_advice():
    message = located_error(raises_from, 1.0)
    assert "from" in message and "drop" in message


# ---------------------------------------------------------------------- with


def log_without_warnings(x):
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.log(x)
    return np.sum(np.maximum(y, -50.0) * x)


def test_errstate_body_is_differentiated():
    check_all(log_without_warnings, P3)


def test_errstate_stays_in_the_forward_and_backward_code():
    g = symdiff.grad(log_without_warnings)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        log_without_warnings(np.array([0.0, 1.0]))  # the function itself warns nowhere,
        got = g(np.array([0.0, 1.0]))  # nor does its gradient: 0 / 0 is in the errstate again
    assert got[1] == pytest.approx(1.0)
    assert g.source.count("np.errstate(divide='ignore', invalid='ignore')") == 2


def quiet_filter(x):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y = np.tanh(x) * x
    return np.sum(y)


def test_catch_warnings_body_is_differentiated():
    check_all(quiet_filter, X3)
    g = symdiff.grad(quiet_filter)
    g(X3)
    assert "catch_warnings()" in g.source and "simplefilter('ignore')" in g.source


def errstate_in_a_loop(x):
    s = 0.0
    for i in range(3):
        with np.errstate(over="ignore"):
            s = s + np.sum(np.exp(x * i))
    return s


def test_errstate_inside_a_loop():
    check_all(errstate_in_a_loop, X3)


def raises_inside_errstate(x):
    with np.errstate(divide="ignore"):
        y = np.log(x)
        if np.any(y > 1.5):
            raise ValueError("too large")
    return np.sum(y)


def test_a_raise_inside_errstate_leaves_it_first():
    check_grad(raises_inside_errstate, P3)
    before = np.geterr()
    with pytest.raises(ValueError, match="too large"):
        symdiff.grad(raises_inside_errstate)(np.array([1.0, 6.0]))
    assert np.geterr() == before


def returns_from_a_loop_inside_with(x):
    with np.errstate(all="ignore"):
        for i in range(3):
            if i == 1:
                return x * i
    return x


def test_return_from_a_loop_inside_with_is_refused():
    message = located_error(returns_from_a_loop_inside_with, 1.0)
    assert "`return` inside a `with` block" in message


def other_manager(x):
    with contextlib.suppress(ValueError):
        x = x * 2.0
    return x


def test_another_context_manager_is_refused_with_advice():
    message = located_error(other_manager, 1.0)
    assert "contextlib.suppress(ValueError)" in message and "np.errstate" in message


def returns_inside_with(x):
    with np.errstate(all="ignore"):
        return np.log(x)


def test_return_inside_with_is_refused_with_advice():
    message = located_error(returns_inside_with, 1.0)
    assert "`return` inside a `with` block" in message and "return (or break) after it" in message


def with_as(x):
    with np.errstate(all="ignore") as state:
        y = np.log(x) + 0.0 * len(str(state))
    return y


def test_with_as_is_refused_with_advice():
    message = located_error(with_as, 1.0)
    assert "with ... as" in message


# ---------------------------------------------------------------------- star-arguments, *args, **kwargs


def _product(*factors, scale=1.0, **named):
    out = scale
    for f in factors:
        out = out * f
    return out * named.get("extra", 1.0) if named else out


def _affine(u, weight=1.0, bias=0.0):
    return u * weight + bias


def uses_star_forms(x):
    shape = (2, 3)
    pair = (x, np.sin(x))
    opts = {"weight": 2.0, "bias": 0.5}
    a = np.sum(_product(*pair, scale=0.5, extra=3.0))
    b = np.sum(_affine(*[x], **opts) ** 2)
    c = np.sum(np.ones(*[shape])) * np.sum(x) + np.sum(np.zeros(shape))
    d = np.sum(_product(x, x, x))
    return a + b + c + d


def test_star_arguments_and_star_parameters():
    check_all(uses_star_forms, X3)


def zips_star_pairs(x):
    pairs = [(x, 1.0), (2.0 * x, 3.0)]
    s = 0.0
    for a, b in zip(*pairs):
        s = s + np.sum(a * b)
    for a, b in zip(*[(x, x * x), (x, 1.0)]):
        s = s + np.sum(a * b)
    return s


def test_zip_of_a_spread_list_of_known_length():
    check_all(zips_star_pairs, X3)


def transposes_pairs_with_zip(x):
    pairs = [(x, 1.0), (2.0 * x, 3.0), (np.sin(x), 0.5)]
    values, weights = zip(*pairs)
    listed = list(zip([x * x, x], [2.0, 4.0]))
    return np.sum(values[0] * weights[0] + values[1] * weights[1] + values[2] * weights[2]) \
        + np.sum(listed[0][0] * listed[0][1] + listed[1][0] * listed[1][1])


def test_zip_as_a_value_is_the_tuple_of_its_rows():
    check_all(transposes_pairs_with_zip, X3)


def zips_an_array_outside_a_loop(x):
    return np.sum(list(zip(x, x))[0][0])


def indexes_a_zip_object(x):
    rows = zip(*[(x, 1.0), (x, 2.0)])
    return np.sum(rows[0][0])


def test_zip_of_values_differentiated_in_a_zip_object_says_how_to_write_it():
    message = located_error(indexes_a_zip_object, X3, cls=symdiff.NoRuleError)
    assert "a, b = zip(*pairs)" in message and "list(zip(...))" in message and "defvjp" not in message


def test_zip_of_sequences_of_unknown_length_outside_a_loop_says_how_to_write_it():
    message = located_error(zips_an_array_outside_a_loop, X3, cls=symdiff.NoRuleError)
    assert "for a, b in zip(xs, ys)" in message and "defvjp" not in message


def zips_constants_of_unknown_length(x, names, sizes):
    total = 0.0
    for _name, size in list(zip(names, sizes)):
        total = total + size * np.sum(x)
    return total


def test_zip_of_values_not_differentiated_runs_as_written():
    check_grad(zips_constants_of_unknown_length, X3, ["a", "b"], [1.0, 2.0], argnums=0)


def _forwards(*a, **kw):
    return _affine(*a, **kw)


def forwards_star_parameters(x, pairs):
    s = np.sum(_forwards(x, weight=3.0) * _forwards(x, 2.0, bias=1.0))
    for a, b in zip(*pairs):
        s = s + a * b * np.sum(x)
    stacked = np.stack([*[x, 2.0 * x], x * x])
    return s + np.sum(stacked ** 2)


def test_star_parameters_forwarded_spread_arguments_and_displays():
    pairs = [(1.0, 2.0), (3.0, 4.0)]
    check_grad(forwards_star_parameters, X3, pairs, argnums=(0, 1))


def star_of_unknown_length(x, xs):
    return np.multiply(x, *xs)


def test_star_of_a_value_of_unknown_length_is_refused_with_advice():
    message = located_error(star_of_unknown_length, 1.0, None)
    assert "*xs" in message and "items one by one" in message


# ---------------------------------------------------------------------- keyword-only parameters


def _power(u, *, p=3.0, c):
    return c * u ** p


def keyword_only(x, *, k=2.0):
    return np.sum(_power(x, p=2.0, c=k) + _power(x, c=0.5))


def test_keyword_only_parameters_of_the_function_and_of_helpers():
    check_all(keyword_only, X3)


def keyword_only_without_default(x, *, k):
    return x * k


def test_a_keyword_only_parameter_without_default_is_refused_with_advice():
    message = located_error(keyword_only_without_default, 1.0)
    assert "'k'" in message and "give it one" in message


def local_keyword_only(x):
    def scaled(u, *, by=2.0, **rest):
        return u * by + rest.get("shift", 0.0)
    return np.sum(scaled(x) * scaled(x, by=3.0, shift=1.0))


def test_keyword_only_and_kwargs_of_a_local_function():
    check_all(local_keyword_only, X3)


# ---------------------------------------------------------------------- map and filter


def maps_and_filters(x):
    doubled = list(map(lambda t: t * 2.0, [x, np.sin(x)]))
    summed = sum(map(np.sum, doubled))
    pairs = list(map(lambda a, b: np.sum(a * b), [x, x], [x * x, 1.0]))
    kept = list(filter(lambda t: np.sum(t) > 0, [x, -x, x * x]))
    return summed + sum(pairs) + sum(np.sum(k) for k in kept)


def test_map_and_filter_with_lambdas_and_named_functions():
    check_all(maps_and_filters, X3)
    check_all(maps_and_filters, P3)


def test_map_and_filter_become_list_comprehensions():
    tree = statements("""
        def f(x):
            a = map(g, s)
            b = map(lambda u, v: u * v, s, t)
            c = filter(None, s)
    """)
    assert [unparsed(s.value) for s in tree.body] == [canonical(expected) for expected in (
        "[g(_item) for _item in s]",
        "[(lambda u, v: u * v)(_item_1, _item_2) for _item_1, _item_2 in zip(s, t)]",
        "[_item_3 for _item_3 in s if _item_3]",
    )]


def test_a_map_the_function_binds_is_not_the_builtin():
    tree = statements("""
        def f(x, map):
            return map(g, s)
    """)
    assert unparsed(tree.body[0]) == "return map(g, s)"


# ---------------------------------------------------------------------- dict(...)


def builds_dicts(x):
    d = dict(a=x, b=2.0 * x)
    e = dict(d, c=3.0)
    f = dict(zip(("p", "q"), (x * x, np.sin(x))))
    g = dict([("r", x), ("s", 1.0)])
    return np.sum(d["a"] * e["b"] * e["c"] + f["p"] * f["q"] + g["r"] * g["s"])


def test_dict_constructor_of_keywords_dicts_pairs_and_zip():
    check_all(builds_dicts, X3)


def dict_of_unknown_items(x, pairs):
    return dict(pairs)["a"] * x


def test_dict_of_items_unknown_at_compile_time_is_refused_with_advice():
    message = located_error(dict_of_unknown_items, 1.0, None)
    assert "dict(...)" in message and "dict(a=x" in message


# ---------------------------------------------------------------------- isinstance, rows of an array


def rows_and_isinstance(x, m):
    s = 0.0
    for r in m:
        s = s + r.sum() * np.sum(x)
        s = s + (r * x).max()
    if isinstance(x, np.ndarray):
        s = s * 2.0
    if isinstance(m, float):
        s = s * 100.0
    return s


def test_methods_on_loop_variables_and_isinstance_in_branches():
    m = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])
    check_all(rows_and_isinstance, X3, m, differentiated=(0, 1))


# ---------------------------------------------------------------------- generators


def _powers(u, n):
    for i in range(n):
        yield u ** i


def _odd_terms(u):
    k = 0
    while True:
        k = k + 1
        if k > 4:
            return
        if k % 2 == 1:
            yield np.sin(u * k)


def consumes_generators(x):
    s = 0.0
    for v in _powers(x, 3):
        s = s + np.sum(v)
    listed = list(_odd_terms(x))
    return s + sum(np.sum(t) for t in listed) + np.sum(sum(_powers(x, 4)))


def test_generator_helpers_are_inlined_as_the_list_of_what_they_yield():
    check_all(consumes_generators, X3)


def test_a_generator_function_becomes_one_returning_its_list():
    tree = statements("""
        def gen(x):
            for i in range(3):
                yield x * i
            return
    """)
    assert unparsed(tree) == textwrap.dedent("""\
        def gen(x):
            _yielded = []
            for i in range(3):
                _yielded.append(x * i)
            return _yielded
            return _yielded""")


def a_generator(x):
    yield x * 2.0


def test_differentiating_a_generator_itself_is_refused_with_advice():
    message = located_error(a_generator, 1.0)
    assert "generator" in message and "sum(a_generator(x))" in message


def _yields_a_value_used(u):
    got = yield u
    yield got


def uses_yield_as_a_value(x):
    return sum(_yields_a_value_used(x))


def test_yield_used_as_a_value_is_refused():
    message = located_error(uses_yield_as_a_value, 1.0)
    assert "yield used as a value" in message


# ---------------------------------------------------------------------- what stays refused


def star_assignment(x):
    a, *rest = (x, x, x)
    return a * len(rest)


def test_star_assignment_is_refused_with_advice():
    message = located_error(star_assignment, 1.0)
    assert "star-unpacking" in message and "t[1:]" in message


def test_star_args_of_the_differentiated_function_are_refused_with_advice():
    def f(*xs):
        return xs[0]
    with pytest.raises(symdiff.SymdiffError) as info:
        symdiff.grad(f)(1.0)
    message = str(info.value)
    assert "*args" in message and "name each parameter" in message


def _columns(x):
    return x, 2.0 * x, np.cos(x)


def zips_a_spread_call(x):
    s = 0.0
    for a, b, c in zip(*_columns(x)):
        s = s + a * b * c
    return s


def test_zip_of_a_spread_call_result_walks_its_items_once():
    check_all(zips_a_spread_call, X3)
