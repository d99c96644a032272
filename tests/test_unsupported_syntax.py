"""Unsupported constructs and unusable inputs are reported as symdiff errors pointing at the user's code.

Every function below is only parsed by symdiff, never run. The offending line of each carries a
``# MARK: <name>`` comment; the expected line number is looked up from that marker, so the
tests do not depend on line numbers in this file.
"""

import contextlib
import inspect
import linecache
import math
import os
import re
import sys

import numpy as np
import pytest

import symdiff

HEADER = re.compile(r"^(?P<file>.*):(?P<line>\d+):(?P<col>\d+): (?P<text>.*)$")


def marked_line(fn, marker):
    """The absolute line number, in ``fn``'s file, of the one line of ``fn`` containing ``marker``."""
    lines, first = inspect.getsourcelines(fn)
    tag = f"# MARK: {marker}"
    hits = [first + i for i, text in enumerate(lines) if tag in text]
    assert len(hits) == 1, f"marker {tag!r} found {len(hits)} times in {fn.__name__}"
    return hits[0]


def check_located(message, filename, line, col_required=True):
    """Assert ``message`` is ``file:line:col: text`` + source line + caret; return ``text``."""
    header, *rest = message.splitlines()
    m = HEADER.match(header)
    assert m is not None, f"message does not start with file:line:col: {message!r}"
    assert os.path.basename(m["file"]) == os.path.basename(filename), message
    assert int(m["line"]) == line, f"expected line {line}: {message}"
    source_line = linecache.getline(filename, line)
    assert rest, f"message does not quote the source line: {message!r}"
    assert rest[0].strip() == source_line.strip(), message
    if col_required:
        assert len(rest) >= 2 and rest[1].strip() == "^", f"no caret line: {message!r}"
        caret = rest[1].index("^")
        assert caret < len(rest[0]) and not rest[0][caret].isspace(), \
            f"caret does not point at code: {message!r}"
        assert caret - rest[0].index(rest[0].strip()[0]) == \
            int(m["col"]) - 1 - (len(source_line) - len(source_line.lstrip())), message
    return m["text"]


def assert_unsupported(fn, marker, *construct, args=(1.0,), filename=__file__):
    """``grad(fn)(*args)`` raises UnsupportedSyntaxError at the marked line, naming ``construct``."""
    line = marked_line(fn, marker)
    with pytest.raises(symdiff.UnsupportedSyntaxError) as info:
        symdiff.grad(fn)(*args)
    assert isinstance(info.value, symdiff.SymdiffError)
    text = check_located(str(info.value), filename, line)
    for word in construct:
        assert word in text, f"{word!r} not in {text!r}"
    assert "not supported" in text, text
    return text


# ---------------------------------------------------------------------- statements


def uses_try(x):
    try:  # MARK: try
        y = x * 2.0
    except ValueError:
        y = x
    return y


def test_try_statement_is_rejected_at_its_line():
    assert_unsupported(uses_try, "try", "try")


def test_unsupported_syntax_is_also_reported_when_reading_source_before_any_call():
    line = marked_line(uses_try, "try")
    with pytest.raises(symdiff.UnsupportedSyntaxError) as info:
        _ = symdiff.grad(uses_try).source
    check_located(str(info.value), __file__, line)


def uses_with(x):
    with contextlib.nullcontext():  # MARK: with
        y = np.log(x)
    return y


def test_with_statement_of_an_unknown_manager_is_rejected_at_its_line():
    assert_unsupported(uses_with, "with", "context manager", "np.errstate", "move the `with` block")


def uses_yield(x):
    yield x * 2.0  # MARK: yield


def test_differentiating_a_generator_itself_is_rejected_at_its_yield():
    assert_unsupported(uses_yield, "yield", "generator", "sum(uses_yield(x))")


def uses_yield_from(x):
    yield from [x, x]  # MARK: yield from


def test_yield_from_is_rejected_at_its_line():
    assert_unsupported(uses_yield_from, "yield from", "yield from", "for item in")


async def async_function(x):  # MARK: async def
    return x * 2.0


def test_async_function_is_rejected_at_its_def_line():
    assert_unsupported(async_function, "async def", "async")


G = 3.0


def uses_global(x):
    global G  # MARK: global
    return x * G


def test_global_statement_is_rejected_at_its_line():
    assert_unsupported(uses_global, "global", "global")


def make_nonlocal_user():
    scale = 2.0

    def uses_nonlocal(x):
        nonlocal scale  # MARK: nonlocal
        return x * scale

    return uses_nonlocal


def test_nonlocal_statement_in_differentiated_closure_is_rejected_at_its_line():
    assert_unsupported(make_nonlocal_user(), "nonlocal", "nonlocal")


def uses_del(x):
    y = x * 2.0
    del y  # MARK: del
    return x


def test_del_statement_is_rejected_at_its_line():
    assert_unsupported(uses_del, "del", "del")


def uses_class(x):
    class Box:  # MARK: class
        value = 1.0
    return x * 2.0


def test_nested_class_definition_is_rejected_at_its_line():
    assert_unsupported(uses_class, "class", "class")


def uses_raise_from(x):
    if x < 0:
        raise ValueError("negative") from None  # MARK: raise
    return x * 2.0


def test_raise_from_is_rejected_at_its_line():
    assert_unsupported(uses_raise_from, "raise", "raise ... from", "drop the `from`")


def uses_bare_raise(x):
    if x < 0:
        raise  # MARK: bare raise
    return x * 2.0


def test_bare_raise_is_rejected_at_its_line():
    assert_unsupported(uses_bare_raise, "bare raise", "bare `raise`", "ValueError")


def uses_import(x):
    import math  # MARK: import
    return math.sin(x)


def test_import_inside_function_is_rejected_at_its_line():
    assert_unsupported(uses_import, "import", "import")


def uses_from_import(x):
    from math import sin  # MARK: from import
    return sin(x)


def test_from_import_inside_function_is_rejected_at_its_line():
    assert_unsupported(uses_from_import, "from import", "import")


def uses_assert_with_walrus(x):
    assert (y := x) > 0  # MARK: assert
    return y * 2.0


def test_assert_with_an_unsupported_expression_is_rejected_at_its_line():
    assert_unsupported(uses_assert_with_walrus, "assert", "assignment expression")


class _Box:
    value = 0.0


BOX = _Box()


def uses_attribute_assignment(x):
    BOX.value = x  # MARK: attribute assignment
    return x * 2.0


def test_attribute_assignment_is_rejected_at_its_line():
    assert_unsupported(uses_attribute_assignment, "attribute assignment", "Attribute")


def uses_for_else(x):
    y = x
    for _ in range(3):  # MARK: for else
        y = y * x
    else:
        y = y + 1.0
    return y


def test_for_else_is_rejected_at_the_for_line():
    text = assert_unsupported(uses_for_else, "for else", "for")
    assert "else" in text


def uses_while_else(x):
    y = x
    while y < 10.0:  # MARK: while else
        y = y * 2.0
    else:
        y = y + 1.0
    return y


def test_while_else_is_rejected_at_the_while_line():
    text = assert_unsupported(uses_while_else, "while else", "while")
    assert "else" in text


@pytest.mark.skipif(sys.version_info < (3, 10), reason="match needs Python >= 3.10")
def test_match_statement_is_rejected_at_its_line():
    import _match_cases  # tests/ is on sys.path under pytest; only parses where match exists

    assert_unsupported(_match_cases.uses_match, "match", "match", filename=_match_cases.__file__)


# ---------------------------------------------------------------------- calls and signatures


def uses_star_args_of_unknown_length_in_call(x, xs):
    return np.multiply(x, *xs)  # MARK: star call


def test_star_args_of_unknown_length_in_a_call_are_rejected_at_their_line():
    assert_unsupported(uses_star_args_of_unknown_length_in_call, "star call", "*xs", "length",
                       "items one by one", args=(1.0, None))


def uses_double_star_kwargs_only(x, options):
    return np.sum(x, **options)  # MARK: double star call


def test_double_star_kwargs_in_a_call_are_rejected_at_their_line():
    assert_unsupported(uses_double_star_kwargs_only, "double star call", "**options", "keys",
                       "keywords one by one", args=(np.ones(3), None))


def star_args_signature(x, *rest):  # MARK: star signature
    return x * 2.0


def test_star_args_in_the_differentiated_signature_are_rejected_at_the_def_line():
    assert_unsupported(star_args_signature, "star signature", "*args", "name each parameter")


def double_star_signature(x, **options):  # MARK: double star signature
    return x * 2.0


def test_double_star_kwargs_in_the_differentiated_signature_are_rejected_at_the_def_line():
    assert_unsupported(double_star_signature, "double star signature", "**kwargs", "name each parameter")


# ---------------------------------------------------------------------- expressions


def uses_recursive_nested_function(x):
    def power(t, n):
        return 1.0 if n == 0 else t * power(t, n - 1)  # MARK: recursive nested
    return power(x, 2)


def test_recursive_nested_function_is_rejected_at_its_line():
    assert_unsupported(uses_recursive_nested_function, "recursive nested", "recursive", "nested function")


def imports_inside(x):
    import math  # MARK: import
    return math.sin(x)


def test_an_import_inside_the_function_says_to_import_at_module_level():
    text = assert_unsupported(imports_inside, "import", "import statement")
    assert "import at the top of the module" in text


def uses_set_comprehension(x):
    ys = {x * i for i in range(3)}  # MARK: set comprehension
    return len(ys) * x


def test_set_comprehension_is_rejected_at_its_line():
    assert_unsupported(uses_set_comprehension, "set comprehension", "set comprehension")


def uses_dict_display_with_computed_keys(x):
    d = {str(x): x}  # MARK: computed keys
    return d[str(x)] * 2.0


def test_dict_display_with_computed_keys_is_rejected_at_its_line():
    assert_unsupported(uses_dict_display_with_computed_keys, "computed keys", "dict display", "constants")


def uses_fstring(x):
    label = f"x={x}"  # MARK: f-string
    return x * len(label)


def test_fstring_is_rejected_at_its_line():
    assert_unsupported(uses_fstring, "f-string", "f-string")


def uses_walrus(x):
    if (y := x * 2.0) > 1.0:  # MARK: walrus
        return y
    return x


def test_walrus_assignment_expression_is_rejected_at_its_line():
    assert_unsupported(uses_walrus, "walrus", ":=")


# ---------------------------------------------------------------------- functions symdiff cannot read


def test_function_defined_through_exec_has_no_source_and_raises_symdiff_error():
    namespace = {}
    exec("def from_exec(x):\n    return x * x\n", namespace)
    with pytest.raises(symdiff.SymdiffError) as info:
        symdiff.grad(namespace["from_exec"])(1.0)
    assert "source" in str(info.value)
    assert "from_exec" in str(info.value)


def test_numpy_ufunc_is_not_a_python_function_and_raises_symdiff_error():
    with pytest.raises(symdiff.SymdiffError):
        symdiff.grad(np.sin)(1.0)


def test_math_c_builtin_is_not_a_python_function_and_raises_symdiff_error():
    with pytest.raises(symdiff.SymdiffError):
        symdiff.grad(math.sin)(1.0)


# ---------------------------------------------------------------------- calls without derivative rules


def calls_i0(x):
    return np.sum(np.i0(x))  # MARK: i0


def test_active_call_without_rule_raises_no_rule_error_naming_function_and_defvjp():
    line = marked_line(calls_i0, "i0")
    with pytest.raises(symdiff.NoRuleError) as info:
        symdiff.grad(calls_i0)(np.array([0.5, 1.0, 2.0]))
    assert isinstance(info.value, symdiff.SymdiffError)
    message = str(info.value)
    assert "i0" in message
    assert "symdiff.defvjp" in message
    assert f"{os.path.basename(__file__)}:{line}" in message


def recursive_power(t, n):
    if n == 0:
        return 1.0
    return t * recursive_power(t, n=n - 1)  # MARK: recursive call with a keyword


def calls_recursive_helper(x):
    return recursive_power(x, 3) + 1.0


def test_recursive_call_with_keyword_arguments_raises_no_rule_error_naming_it_and_defvjp():
    line = marked_line(recursive_power, "recursive call with a keyword")
    with pytest.raises(symdiff.NoRuleError) as info:
        symdiff.grad(calls_recursive_helper)(1.5)
    message = str(info.value)
    assert "recursive_power" in message
    assert "recursive" in message
    assert "symdiff.defvjp" in message
    assert f"{os.path.basename(__file__)}:{line}" in message


def test_inactive_call_without_rule_is_fine():
    def f(x, n):
        return x * np.i0(n)  # the call does not depend on x

    got = symdiff.grad(f)(1.5, 2.0)
    assert got == pytest.approx(float(np.i0(2.0)))


# ---------------------------------------------------------------------- names


def uses_undefined_name(x):
    return x * name_that_is_not_defined_anywhere  # MARK: undefined  # noqa: F821


def test_undefined_name_raises_symdiff_error_naming_it_at_its_line():
    line = marked_line(uses_undefined_name, "undefined")
    with pytest.raises(symdiff.SymdiffError) as info:
        symdiff.grad(uses_undefined_name)(1.0)
    message = str(info.value)
    assert "name_that_is_not_defined_anywhere" in message
    check_located(message, __file__, line)


def pads_with_a_ramp(x):
    return np.sum(np.pad(x, 1, mode="linear_ramp"))  # MARK: ramp pad


def test_rule_that_does_not_cover_its_arguments_raises_located_no_rule_error():
    line = marked_line(pads_with_a_ramp, "ramp pad")
    with pytest.raises(symdiff.NoRuleError) as info:
        symdiff.grad(pads_with_a_ramp)(np.ones(3))
    assert f"{os.path.basename(__file__)}:{line}" in str(info.value)
    assert "linear_ramp" in str(info.value) and "np.pad" in str(info.value)


def uses_tensorinv(a):
    return np.sum(np.linalg.tensorinv(a, ind=1))  # MARK: tensorinv


def test_missing_linalg_rule_names_the_function_with_its_module():
    with pytest.raises(symdiff.NoRuleError, match=r"np\.linalg\.tensorinv"):
        symdiff.grad(uses_tensorinv)(np.eye(2))
