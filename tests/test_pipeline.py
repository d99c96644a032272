"""The pipeline stages and behaviours that cut across them: IR printer and verifier, closures
and nested functions, inactive side effects, static shapes in generated code, errors."""

import ast
import re

import numpy as np
import pytest
from fd import check_grad

import symdiff
from symdiff import frontend, ir, lower, passes, reverse

W = np.array([[0.5, -1.0], [2.0, 0.25], [1.5, -0.5]])


def loop_with_branch(x, n):
    s = 0.0
    for i in range(n):
        if s < 2.0:
            s = s + x * i
        else:
            s = s * x
    return s


def test_ir_printer_shows_structured_control_flow():
    primal = lower.lower(frontend.parse_function(loop_with_branch), [float, int])
    text = ir.format_function(primal)
    assert text.startswith("func loop_with_branch(")
    assert " = for " in text and " = if " in text and "region 0" in text and "yield" in text


def test_verifier_accepts_lowered_and_differentiated_functions():
    primal = lower.lower(frontend.parse_function(loop_with_branch), [float, int])
    ir.verify(primal)
    ir.verify(reverse.reverse(primal, [0]))


def test_verifier_rejects_a_value_used_before_its_definition():
    x = ir.Value("x")
    late = ir.Value("late")
    body = ir.Region(params=[x], ops=[ir.Op("call", [x, late], [ir.Value("y")], fn=np.add),
                                      ir.Op("call", [x], [late], fn=np.negative)])
    body.yields = [body.ops[0].result]
    with pytest.raises(ir.IRError, match="before definition"):
        ir.verify(ir.Function("f", body))


def test_verifier_rejects_a_value_defined_twice():
    x = ir.Value("x")
    body = ir.Region(params=[x], ops=[ir.Op("call", [x], [x], fn=np.negative)], yields=[x])
    with pytest.raises(ir.IRError, match="defined twice"):
        ir.verify(ir.Function("f", body))


def test_nested_function_reading_closure_cells_is_differentiated():
    scale = 3.0

    def inner(x):
        return np.sum(np.tanh(x @ W) * scale)

    check_grad(inner, np.array([[0.3, -0.2, 0.8]]))


def test_default_arguments_apply_to_the_gradient_too():
    fns = []
    for k in (1.0, 2.0):
        def f(x, k=k):
            return x * k
        fns.append(f)
    assert symdiff.grad(fns[1])(3.0) == 2.0
    assert symdiff.grad(fns[1])(3.0, 5.0) == 5.0


def test_closure_cells_are_read_when_the_gradient_is_compiled():
    def make(k):
        def f(x):
            return x * k
        return f

    assert symdiff.grad(make(4.0))(1.0) == 4.0


def test_print_of_an_active_value_runs_and_needs_no_rule(capsys):
    def f(x):
        y = x * x
        print("y is", y)
        return y + 1.0

    assert symdiff.grad(f)(3.0) == 6.0
    assert "y is 9.0" in capsys.readouterr().out


def test_inactive_calls_run_as_written_and_need_no_rule():
    def f(x):
        n = len(x)
        z = np.zeros(n)
        for i in range(n):
            z = z + x * i
        return np.sum(z)

    check_grad(f, np.array([0.5, -1.0, 2.0]))


@pytest.mark.optimized_source
def test_broadcasting_of_array_arguments_is_undone_at_compile_time():
    def f(x, b):
        return np.sum(np.tanh(x @ W + b))

    g = symdiff.grad(f, argnums=(0, 1))
    x, b = np.ones((4, 3)), np.array([0.1, -0.2])
    g(x, b)
    assert "unbroadcast" not in g.source
    assert re.search(r"^    db = \w+\.sum\(axis=0\)$", g.source, re.MULTILINE), g.source
    check_grad(f, x, b)


def test_size_one_axes_get_their_own_specialisation():
    def f(x, b):
        return np.sum((x + b) ** 2)

    g = symdiff.grad(f, argnums=1)
    x = np.arange(6.0).reshape(2, 3)
    row, column = np.array([[1.0, 2.0, 3.0]]), np.array([[1.0], [2.0]])
    np.testing.assert_allclose(g(x, row), np.sum(2 * (x + row), axis=0, keepdims=True))
    np.testing.assert_allclose(g(x, column), np.sum(2 * (x + column), axis=1, keepdims=True))


def test_gradient_of_a_function_of_no_differentiated_input_is_zero():
    def f(x, y):
        return y * 2.0

    assert symdiff.grad(f)(1.0, 2.0) == 0.0


@pytest.mark.optimized_source
def test_loops_record_only_what_the_backward_sweep_reads():
    def f(x, n):
        s = 0.0
        for i in range(n):
            s = s + x * i  # the backward sweep needs neither s nor x * i
        return s

    g = symdiff.grad(f)
    assert g(2.0, 4) == 6.0
    assert "_stack" not in g.source


def test_while_loop_counts_iterations_for_the_backward_sweep():
    def f(x):
        y = x
        while y < 100.0:
            y = y * 2.0 + x
        return y

    check_grad(f, 1.7)
    assert "n_iter" in symdiff.grad(f).source


@symdiff.grad
def uses_a_global_defined_below(x):
    return np.sum(x * DEFINED_LATER)


DEFINED_LATER = np.array([2.0, -1.0])


def test_a_decorated_function_may_use_globals_defined_after_it():
    np.testing.assert_array_equal(uses_a_global_defined_below(np.ones(2)), DEFINED_LATER)


def test_inner_product_of_vectors_of_unknown_rank():
    def f(v, n):
        return v @ (v + np.zeros(n))

    np.testing.assert_allclose(symdiff.grad(f)(np.array([1.0, -2.0]), 2), [2.0, -4.0])


@pytest.mark.optimized_source
def test_sizes_read_off_argument_shapes_give_known_ranks():
    def rnn(Wh, xs):
        h = np.zeros(Wh.shape[0])
        for t in range(xs.shape[0]):
            h = np.tanh(Wh @ h + xs[t])
        return np.sum(h ** 2)

    Wh, xs = np.array([[0.5, -0.2], [0.1, 0.3]]), np.array([[0.2, 0.4], [-0.3, 0.1], [0.5, 0.5]])
    g = symdiff.grad(rnn)
    g(Wh, xs)
    assert "matmul_vjp" not in g.source and "scalar_seed" not in g.source
    check_grad(rnn, Wh, xs, argnums=(0, 1))


def slice_against_whole(x):
    return np.sum(x[1:] * x + x[:-1])  # x[1:] has length 1 when len(x) == 2: then it broadcasts


def slices_of_two_arrays(x, y):
    return np.sum((x[1:] - y[:-1]) ** 2)


def shrinking(x):
    s = 0.0
    for _ in range(2):
        x = x[1:] * 2.0
        s = s + np.sum(x * x)
    return s


@pytest.mark.parametrize("n", [2, 3, 5])
def test_slices_that_may_have_length_one_broadcast_correctly(n):
    x = np.linspace(-1.0, 1.5, n)
    if n == 2:
        check_grad(slice_against_whole, x)
    check_grad(slices_of_two_arrays, x, np.linspace(0.5, -0.5, n))
    check_grad(shrinking, np.linspace(-1.0, 1.5, n + 2))


@pytest.mark.optimized_source
def test_unit_step_slices_are_undone_at_compile_time():
    def rosen(x):
        return np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)

    g = symdiff.grad(rosen)
    g(np.linspace(-1.0, 1.0, 6))
    assert "unbroadcast" not in g.source and "scalar_seed" not in g.source
    check_grad(rosen, np.linspace(-1.0, 1.0, 6))


def test_comments_in_generated_code_keep_non_ascii_source_text():
    def f(x):
        y = np.tanh(x)  # café → tanh
        return np.sum(y)

    g = symdiff.grad(f)
    g(np.ones(2))
    assert "y = np.tanh(x)  # café → tanh" in g.source


def _comments(source):
    """``(indent, where, text, next_line)`` of each ``# line N: text`` / ``# file.py:N: text``
    comment in the body of generated ``source``."""
    lines = source.split("\n")
    body = lines[next(i for i, line in enumerate(lines) if line.startswith("def ")) + 1:]
    found = []
    for i, line in enumerate(body):
        match = re.fullmatch(r"( *)# (line \d+|[\w.]+:\d+): (.*)", line)
        if match:
            found.append((match.group(1), match.group(2), match.group(3), body[i + 1]))
    return found


def test_non_ascii_source_text_is_kept_in_comments_strings_and_names(capsys):
    def f(x):
        café = np.tanh(x)  # café → tanh
        print("naïve → ok")
        return np.sum(café * café)

    g = symdiff.grad(f)
    x = np.array([0.3, -0.2])
    np.testing.assert_allclose(g(x), 2.0 * np.tanh(x) * (1.0 - np.tanh(x) ** 2))
    assert "naïve → ok" in capsys.readouterr().out
    check_grad(f, x)
    first = f.__code__.co_firstlineno
    assert f"    # line {first + 1}: café = np.tanh(x)  # café → tanh\n" in g.source
    if passes.OPTIMIZE:  # (with passes off, the return's adjoint is folded into the line above's code)
        assert f"    # line {first + 3}: return np.sum(café * café)\n" in g.source
    assert "    print('naïve → ok')\n" in g.source
    tree = ast.parse(g.source)
    stored = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    assert "café" in stored
    if passes.OPTIMIZE:  # (the doubled product's adjoint is named after café; with passes off, after prod)
        assert "dcafé" in stored
    assert "Ã" not in g.source and "\\u" not in g.source and "\\x" not in g.source


def test_comments_quote_the_lines_they_point_at_indented_like_the_code_under_them():
    import linecache

    def f(x, W):
        h = np.tanh(W @ x)  # → hidden
        s = 0.0
        for i in range(3):
            if h[i] > 0.0:
                s = s + np.sum(h * x[i])
            else:
                s = s - h[i] ** 2
        return s ** 2

    g = symdiff.grad(f, argnums=(0, 1))
    x = np.array([0.5, -0.4, 0.3])
    g(x, np.eye(3) * 0.7)
    check_grad(f, x, np.eye(3) * 0.7)
    first, filename = f.__code__.co_firstlineno, f.__code__.co_filename
    comments = _comments(g.source)
    assert len(comments) >= 4
    for indent, where, text, after in comments:
        line = int(where.split()[1])
        assert first < line <= first + 8
        assert text == linecache.getline(filename, line).strip()
        assert after.startswith(indent) and after[len(indent)] != " "  # the comment heads its block
    quoted = {text for _, _, text, _ in comments}
    assert "h = np.tanh(W @ x)  # → hidden" in quoted and "s = s + np.sum(h * x[i])" in quoted


def test_a_comment_is_one_line_even_when_the_source_line_holds_line_separators(tmp_path, monkeypatch):
    # Python reads form feed and U+2028 inside a comment as part of it; str.splitlines() breaks there
    (tmp_path / "separators.py").write_text(
        "import numpy as np\n\n\ndef f(x):\n    y = np.tanh(x)  # a\u2028b \x0c c\n    return np.sum(y)\n",
        encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    import separators

    g = symdiff.grad(separators.f)
    x = np.array([0.1, 0.2])
    np.testing.assert_allclose(g(x), 1.0 - np.tanh(x) ** 2)
    assert "    # line 5: y = np.tanh(x)  # a b   c" in g.source.splitlines()


def test_generated_code_imports_the_modules_its_code_reads_not_those_its_comments_name():
    def f(x):
        return np.sum(x ** 2)  # math.exp(x) would do for one number

    g = symdiff.grad(f)
    generic = g.source  # then one specialised for float64 vectors
    g(np.array([0.5, -1.0, 2.0]))
    check_grad(f, np.array([0.5, -1.0, 2.0]))
    for source in (generic, g.source):
        assert f"# line {f.__code__.co_firstlineno + 1}: return np.sum(x ** 2)" in source
        code = [line for line in source.split("\n") if not line.lstrip().startswith("#")]
        reads = {m for line in code if not line.startswith("import")
                 for m in re.findall(r"\b(np|math)\.", line)}
        assert ("import numpy as np" in code) == ("np" in reads)
        assert ("import math" in code) == ("math" in reads)


def test_frontend_nodes_are_ast_walks_nodes_in_its_order():
    import inspect

    tree = ast.parse(inspect.getsource(lower))
    tree.body[0].extra = [ast.Name("not_a_field", ast.Load())]  # (ast.walk follows fields only)
    assert [id(n) for n in frontend.nodes(tree)] == [id(n) for n in ast.walk(tree)]
