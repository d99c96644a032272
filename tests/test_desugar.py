"""The desugarings (symdiff/desugar.py), one at a time on small syntax trees, and the gradients
of functions that use the constructs they rewrite, against finite differences."""

from __future__ import annotations

import ast
import builtins
import copy
import textwrap

import astor
import numpy as np
import pytest
from fd import check_grad

import symdiff
from symdiff import desugar

X3 = np.array([0.3, -0.7, 1.1])
Y3 = np.array([1.5, 0.25, -0.4])


def parse(text: str) -> ast.FunctionDef:
    """The def in ``text`` (dedented)."""
    return ast.parse(textwrap.dedent(text)).body[0]


def source(node: ast.AST) -> str:
    """``node`` as source text, a builtin that a rewrite calls as a constant written by its name."""
    class Named(ast.NodeTransformer):
        def visit_Constant(self, c: ast.Constant) -> ast.AST:
            if getattr(builtins, getattr(c.value, "__name__", ""), None) is c.value:
                return ast.Name(c.value.__name__, ast.Load())
            return c
    return astor.to_source(Named().visit(copy.deepcopy(node))).strip()


def body_text(text: str) -> str:
    """The body of the def in ``text``, as :func:`source` writes it."""
    return "\n".join(source(s) for s in parse(text).body)


def index_loops(text: str, resolve=lambda name: getattr(builtins, name, None)) -> ast.FunctionDef:
    tree = parse(text)
    return desugar.index_loops(tree, resolve, desugar.Namer(tree))


def normalized(text: str) -> ast.FunctionDef:
    return desugar.normalize_jumps(parse(text))


def same_body(tree: ast.FunctionDef, want: str) -> None:
    """``tree``'s body reads as the statements ``want``."""
    want = "def f():\n" + textwrap.indent(textwrap.dedent(want), "    ")
    assert "\n".join(source(s) for s in tree.body) == body_text(want)


# ---------------------------------------------------------------------- index loops


def test_enumerate_of_a_name_becomes_a_loop_over_its_indices():
    same_body(index_loops("""
        def f(xs):
            for i, v in enumerate(xs):
                s = v * i
    """), """
        for _k in range(len(xs)):
            i, v = _k, xs[_k]
            s = v * i
    """)


def test_an_iterable_that_is_not_a_name_is_evaluated_once_before_the_loop():
    tree = index_loops("""
        def f(x):
            for i, v in enumerate(np.sin(x)):
                s = v * i
    """)
    same_body(tree, """
        _seq = np.sin(x)
        for _k in range(len(_seq)):
            i, v = _k, _seq[_k]
            s = v * i
    """)
    assert desugar.temporaries(tree.body[1]) == ("_seq",)


def test_a_name_the_loop_rebinds_is_read_once_before_it():
    same_body(index_loops("""
        def f(xs):
            for i, v in enumerate(xs):
                xs = xs * 2.0
    """), """
        _seq = xs
        for _k in range(len(_seq)):
            i, v = _k, _seq[_k]
            xs = xs * 2.0
    """)


def test_zip_stops_at_the_shortest_sequence():
    same_body(index_loops("""
        def f(a, b):
            for p, q in zip(a, b):
                s = p * q
    """), """
        for _k in range(min(len(a), len(b))):
            p, q = a[_k], b[_k]
            s = p * q
    """)


def test_reversed_counts_down():
    same_body(index_loops("""
        def f(a):
            for v in reversed(a):
                s = v
    """), """
        for _k in range(len(a) - 1, -1, -1):
            v = a[_k]
            s = v
    """)


def test_views_nest():
    same_body(index_loops("""
        def f(a, b):
            for i, (p, q) in enumerate(zip(reversed(a), b)):
                s = p * q * i
    """), """
        for _k in range(min(len(a), len(b))):
            i, (p, q) = _k, (a[len(a) - 1 - _k], b[_k])
            s = p * q * i
    """)


def test_loops_inside_loops_and_nested_functions_are_rewritten_too():
    tree = index_loops("""
        def f(a):
            for v in a:
                for i, w in enumerate(a):
                    s = v * w
            def g(b):
                for w in reversed(b):
                    t = w
    """)
    inner = tree.body[0].body[0]
    assert source(inner.iter) == "range(len(a))"
    assert source(tree.body[1].body[0].iter) == "range(len(b) - 1, -1, -1)"


@pytest.mark.parametrize("text", [
    "def f(xs, enumerate):\n    for i, v in enumerate(xs):\n        s = v\n",  # a parameter
    "def f(xs):\n    zip = g\n    for p, q in zip(xs, xs):\n        s = p\n",  # a local
    "def f(xs):\n    for i, v in enumerate(xs, 1):\n        s = v\n",  # a start the rewrite does not model
    "def f(xs):\n    for i, v in enumerate(xs):\n        s = v\n    else:\n        s = 0\n",  # for ... else
])
def test_what_is_not_a_builtin_view_or_not_a_plain_loop_is_left_alone(text):
    assert source(index_loops(text)) == source(parse(text))


def test_a_global_named_like_the_builtin_is_left_alone():
    text = "def f(xs):\n    for i, v in enumerate(xs):\n        s = v\n"
    assert source(index_loops(text, resolve=lambda name: len)) == source(parse(text))


def test_introduced_names_never_clash_with_the_functions_names():
    same_body(index_loops("""
        def f(_seq, _k):
            for i, v in enumerate(_seq + _k):
                s = v
    """), """
        _seq_1 = _seq + _k
        for _k_1 in range(len(_seq_1)):
            i, v = _k_1, _seq_1[_k_1]
            s = v
    """)


def test_made_nodes_carry_the_loops_position_and_the_users_keep_theirs():
    text = """
        def f(x):
            s = 0.0
            for i, v in enumerate(
                    np.sin(x)):
                s = s + v
    """
    loop = parse(text).body[1]
    prelude, new = index_loops(text).body[1:]
    for made in (prelude, prelude.targets[0], new, new.target, new.iter, new.body[0], new.body[0].value):
        assert (made.lineno, made.col_offset, made.end_lineno) == (loop.lineno, loop.col_offset, loop.end_lineno)
    assert prelude.value.lineno == 5  # np.sin(x), the user's own node
    assert new.body[1].lineno == 6


# ---------------------------------------------------------------------- jumps


def test_statements_after_an_arm_that_returns_move_into_the_other_arm():
    same_body(normalized("""
        def f(x):
            if x > 0:
                return x
            s = x * 2.0
            return s
    """), """
        if x > 0:
            return x
        else:
            s = x * 2.0
            return s
    """)


def test_statements_after_an_else_that_jumps_move_into_the_if_arm():
    same_body(normalized("""
        def f(x):
            for i in range(3):
                if x > i:
                    x = x * 2.0
                else:
                    continue
                x = x + 1.0
    """), """
        for i in range(3):
            if x > i:
                x = x * 2.0
                x = x + 1.0
            else:
                continue
    """)


def test_the_arm_that_receives_the_rest_is_normalised_again():
    same_body(normalized("""
        def f(x):
            if x > 2:
                return 2.0
            if x > 1:
                return 1.0
            return x
    """), """
        if x > 2:
            return 2.0
        else:
            if x > 1:
                return 1.0
            else:
                return x
    """)


def test_an_if_that_may_fall_through_stays_as_it_is():
    text = """
        def f(x):
            if x > 2:
                x = x * 2.0
            else:
                if x > 1:
                    return 1.0
            return x
    """
    assert source(normalized(text)) == source(parse(text))


def test_normalising_twice_changes_nothing():
    once = normalized("""
        def f(x):
            for i in range(3):
                if x > i:
                    break
                x = x + 1.0
            if x > 9:
                return 0.0
            return x
    """)
    assert source(desugar.normalize_jumps(copy.deepcopy(once))) == source(once)


@pytest.mark.parametrize("text, want", [
    ("return 1", True), ("x = 1", False), ("if c:\n    break\nelse:\n    continue", True),
    ("if c:\n    return 1", False), ("for i in r:\n    return i", False),
])
def test_always_jumps(text, want):
    assert desugar.always_jumps(ast.parse(text).body) is want


# ---------------------------------------------------------------------- comprehensions


def test_a_comprehension_becomes_a_loop_that_appends_to_a_list():
    node = ast.parse("[v * v for v in xs if v > 0 if v < 9]", mode="eval").body
    got = "\n".join(source(s) for s in desugar.comprehension_loop(node, "out"))
    assert got == body_text("""
        def f():
            out = []
            for v in xs:
                if v > 0:
                    if v < 9:
                        out.append(v * v)
    """)


def test_a_comprehension_with_several_for_clauses_nests_its_loops_first_outermost():
    node = ast.parse("[v * w for v in xs if v > 0 for w in v if w < v]", mode="eval").body
    got = "\n".join(source(s) for s in desugar.comprehension_loop(node, "out"))
    assert got == body_text("""
        def f():
            out = []
            for v in xs:
                if v > 0:
                    for w in v:
                        if w < v:
                            out.append(v * w)
    """)


def test_a_generator_expression_gives_the_same_loop():
    listcomp = ast.parse("[v for v in xs]", mode="eval").body
    genexp = ast.parse("(v for v in xs)", mode="eval").body
    assert [source(s) for s in desugar.comprehension_loop(genexp, "out")] == \
        [source(s) for s in desugar.comprehension_loop(listcomp, "out")]


def test_statements_made_while_lowering_are_desugared_like_the_function():
    tree = parse("def f(xs, _seq):\n    return [i * v for i, v in enumerate(xs * 2)]\n")
    namer = desugar.Namer(tree)
    node = tree.body[0].value
    stmts = desugar.desugar_statements(desugar.comprehension_loop(node, namer.fresh("_items")),
                                       lambda name: getattr(builtins, name, None), namer)
    assert "\n".join(source(s) for s in stmts) == body_text("""
        def f():
            _items = []
            _seq_1 = xs * 2
            for _k in range(len(_seq_1)):
                i, v = _k, _seq_1[_k]
                _items.append(i * v)
    """)


def test_statements_made_while_lowering_leave_what_the_function_binds_alone():
    tree = parse("def f(xs):\n    zip = g\n    h = lambda t: [p for p, q in zip(t, t)]\n")
    node = tree.body[1].value.body
    stmts = desugar.desugar_statements(desugar.comprehension_loop(node, "out"),
                                       lambda name: getattr(builtins, name, None), desugar.Namer(tree))
    assert source(stmts[1].iter) == "zip(t, t)"


# ---------------------------------------------------------------------- the whole function


def test_desugar_works_on_a_copy():
    tree = parse("""
        def f(xs):
            for i, v in enumerate(xs):
                if v > 0:
                    return v
                s = v
    """)
    before = ast.dump(tree, include_attributes=True)
    new = desugar.desugar(tree, lambda name: getattr(builtins, name, None))
    assert ast.dump(tree, include_attributes=True) == before
    assert source(new) != source(tree)
    assert source(new.body[0].iter) == "range(len(xs))"
    assert isinstance(new.body[0].body[1].orelse[0], ast.Assign)  # s = v, under the else


# ---------------------------------------------------------------------- gradients


def enumerate_of_an_expression(x):
    s = 0.0
    for i, v in enumerate(np.sin(x)):
        s = s + v * (i + 1.0)
    return s


def enumerate_over_an_array_updated_in_place(x):
    x = x.copy()
    s = 0.0
    for i, v in enumerate(x):
        if i + 1 < len(x):
            x[i + 1] += v * v  # enumerate sees the update, as in Python
        s = s + np.sin(v)
    return s


def zip_of_reversed_with_early_return(x, y):
    s = 0.0
    for a, b in zip(reversed(x), y):
        s = s + a * b
        if s > 1.0:
            return s * s
    return s


def comprehension_over_enumerate_in_a_lambda(x):
    weigh = lambda t: sum([i * w for i, w in enumerate(t) if w > -1.0])  # noqa: E731
    return weigh(x * x) + weigh(np.cos(x))


def comprehension_in_a_condition(x):
    s = 0.0
    k = 0
    while k < 4 and sum([v * k for v in x]) < 3.0:
        s = s + np.sum(x * k)
        k = k + 1
    return s


def comprehension_in_a_lambda_over_a_local_named_zip(x):
    zip = lambda a, b: [(a[0], b[1]), (a[2], b[0])]  # noqa: E731
    weigh = lambda t: sum([p * q for p, q in zip(t, t * t)])  # noqa: E731
    return weigh(x)


def nested_early_exits(x):
    s = 0.0
    for i in range(4):
        if i == 1:
            continue
        for v in x:
            if v > 1.0:
                break
            s = s + v * i
        if s > 2.0:
            return s * 3.0
    if s < -1.0:
        return -s
    return s


@pytest.mark.parametrize("fn, args", [
    pytest.param(enumerate_of_an_expression, (X3,), id="enumerate(np.sin(x))"),
    pytest.param(enumerate_over_an_array_updated_in_place, (X3,), id="enumerate of an array updated in place"),
    pytest.param(zip_of_reversed_with_early_return, (X3, Y3), id="zip(reversed(x), y) with return"),
    pytest.param(comprehension_over_enumerate_in_a_lambda, (X3,), id="comprehension over enumerate in a lambda"),
    pytest.param(comprehension_in_a_condition, (X3 * 0.2,), id="comprehension in a while test"),
    pytest.param(comprehension_in_a_lambda_over_a_local_named_zip, (X3,), id="a local named zip"),
    pytest.param(nested_early_exits, (X3,), id="continue, break and return"),
    pytest.param(nested_early_exits, (-X3 * 3.0,), id="continue, break and the last return"),
])
def test_desugared_constructs_match_finite_differences(fn, args):
    np.testing.assert_allclose(symdiff.value_and_grad(fn, argnums=tuple(range(len(args))))(*args)[0], fn(*args))
    check_grad(fn, *args)


def test_an_error_in_a_desugared_loop_points_at_the_users_line():
    def f(x):
        s = 0.0
        for i, v in enumerate(x):
            s = s + v.undefined_method_of_symdiff() * i
        return s

    with pytest.raises(symdiff.NoRuleError) as info:
        symdiff.grad(f)(X3)
    line = f.__code__.co_firstlineno + 3
    assert f":{line}" in str(info.value), str(info.value)


def test_copy_tree_is_a_deep_copy_like_deepcopys():
    tree = parse("""
        def f(x, ys):
            for i, y in enumerate(ys):
                x = x * y + i
            return [x ** 2 for _ in range(3)]
        """)
    shared = ast.Name("shared", ast.Load())
    tree.body[-1].value.elt = ast.BinOp(shared, ast.Add(), shared)  # one node reached twice
    tree.marker = {"kept": [1, (2.5, "three")]}  # an attribute other than the node's fields
    copied = desugar.copy_tree(tree)
    assert ast.dump(copied, include_attributes=True) == ast.dump(copy.deepcopy(tree), include_attributes=True)
    originals = {id(n) for n in ast.walk(tree)}
    assert not originals & {id(n) for n in ast.walk(copied)}  # no node of the original is in the copy
    elt = copied.body[-1].value.elt
    assert elt.left is elt.right  # sharing within the tree is kept, as deepcopy keeps it
    assert copied.marker == tree.marker and copied.marker is not tree.marker
    assert copied.marker["kept"] is not tree.marker["kept"]
