"""Refusals name the callee as the user spells it and say what to write instead."""

import ast
import math
import re

import numpy as np
import pytest

import symdiff

try:
    import scipy.special as special
    import scipy.stats as stats
except ImportError:  # (SciPy is optional: its cases are skipped)
    special = stats = None
needs_scipy = pytest.mark.skipif(special is None, reason="SciPy is not installed")


def unknown_attribute(x):
    return np.sum(x.foo)


def through_tolist(x):
    return sum(v * v for v in x.tolist())


def through_fft(x):
    return np.sum(np.abs(np.fft.fft(x)))


def through_scipy_ufunc(x):
    return np.sum(special.erfcx(x))


def test_an_attribute_without_a_rule_is_named_as_an_attribute_with_advice():
    with pytest.raises(symdiff.NoRuleError, match=r"for x\.foo; instead, write it with NumPy functions") as info:
        symdiff.grad(unknown_attribute)(np.ones(2))
    assert "defvjp(the" not in str(info.value) and "GetAttr" not in str(info.value)


def test_a_method_without_a_rule_gets_no_impossible_defvjp_suggestion():
    with pytest.raises(symdiff.NoRuleError, match=r"for x\.tolist\(\); instead, write list\(x\)") as info:
        symdiff.grad(through_tolist)(np.ones(2))
    assert "defvjp(" not in str(info.value) and "the method" not in str(info.value)


@pytest.mark.parametrize("fn, name", [(through_fft, "np.fft.fft"),
                                      pytest.param(through_scipy_ufunc, "scipy.special.erfcx", marks=needs_scipy)])
def test_a_function_without_a_rule_is_named_by_its_public_path(fn, name):
    with pytest.raises(symdiff.NoRuleError, match=rf"no derivative rule for {name}; register one with "
                                                  rf"symdiff.defvjp\({name}, "):
        symdiff.grad(fn)(np.ones(2))


def through_erfcx(x):
    return np.sum(special.erfcx(x))


def through_expon(x):
    return np.sum(stats.expon.logpdf(x))


def through_math_gamma(x):
    return math.gamma(x[0]) + np.sum(x)


SUGGESTED = [(through_fft, "np.fft.fft", lambda: np.fft.fft, None),
             pytest.param(through_erfcx, "scipy.special.erfcx", lambda: special.erfcx, [3.0, 3.0], marks=needs_scipy),
             pytest.param(through_expon, "scipy.stats.expon.logpdf", lambda: stats.expon.logpdf, [3.0, 3.0],
                          marks=needs_scipy),
             (through_math_gamma, "math.gamma", lambda: math.gamma, [4.0, 1.0])]


def _resolve(dotted: str) -> object:
    obj = _namespace()[dotted.split(".")[0]]
    for part in dotted.split(".")[1:]:
        obj = getattr(obj, part)
    return obj


@pytest.mark.parametrize("fn, name, called, with_rule", SUGGESTED,
                         ids=["np.fft.fft", "scipy.special.erfcx", "scipy.stats.expon.logpdf", "math.gamma"])
def test_a_suggested_defvjp_line_is_valid_python_naming_the_function(fn, name, called, with_rule):
    with pytest.raises(symdiff.NoRuleError) as info:
        symdiff.grad(fn)(np.ones(2))
    message = str(info.value)
    line = re.search(r"symdiff\.defvjp\(.*?: \.\.\.\)", message)
    assert line is not None, message
    call = ast.parse(line.group(0), mode="eval").body  # valid Python
    assert ast.unparse(call.args[0]) == name
    assert _resolve(name) == called()  # (a bound method is made afresh at each read: equal, not the same)
    if with_rule is None:
        return
    with symdiff.primitives.restored():  # pasted (with a body of its own), it takes effect
        exec(line.group(0).replace("...", "g * 3.0"), {"symdiff": symdiff, **_namespace()})  # noqa: S102

        def again(x):
            return fn(x)

        np.testing.assert_allclose(symdiff.grad(again)(np.array([1.0, 2.0])), with_rule)


def _namespace() -> dict:
    names = {"np": np, "math": math}
    if special is not None:
        import scipy
        names["scipy"] = scipy
    return names


def through_item(x):
    return x.item() * 2.0


def through_flat(x):
    return np.sum(x.flat[0])


@pytest.mark.parametrize("fn, named, instead", [(through_item, "x.item()", "float(x)"),
                                                 (through_flat, "x.flat", "np.ravel(x)")])
def test_a_method_or_attribute_without_a_rule_says_what_to_write_instead(fn, named, instead):
    with pytest.raises(symdiff.NoRuleError) as info:
        symdiff.grad(fn)(np.ones(1))
    message = str(info.value)
    assert f"no derivative rule for {named}; instead, write {instead}" in message
    assert "defvjp" not in message and "GetAttr" not in message and "Method(" not in message


def loss_and_aux(x):
    return np.sum(x ** 2), x


@pytest.mark.parametrize("transform", [symdiff.grad, symdiff.value_and_grad])
def test_a_pair_returned_without_has_aux_asks_about_has_aux(transform):
    with pytest.raises(symdiff.SymdiffError, match=r"did you mean has_aux=True\?"):
        transform(loss_and_aux)(np.ones(2))
    np.testing.assert_allclose(symdiff.value_and_grad(loss_and_aux, has_aux=True)(np.ones(2))[1], [2.0, 2.0])
    np.testing.assert_allclose(symdiff.grad(loss_and_aux, has_aux=True)(np.ones(2))[0], [2.0, 2.0])


def frozen_in_a_variable(x, loc):
    dist = stats.norm(loc, 2.0)
    return np.sum(dist.logpdf(x))


@needs_scipy
@pytest.mark.parametrize("transform", ["grad", "jvp"])
def test_a_frozen_distribution_in_a_variable_is_refused_with_the_call_that_has_a_rule(transform):
    with pytest.raises(symdiff.NoRuleError, match=r"scipy\.stats\.norm\.logpdf\(x, \*params, \*\*kw\)"):
        if transform == "grad":
            symdiff.grad(frozen_in_a_variable, argnums=1)(np.ones(2), 0.5)
        else:
            symdiff.jvp(frozen_in_a_variable, (np.ones(2), 0.5), (np.ones(2), 1.0))
