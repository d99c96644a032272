"""Refusals name the callee as the user spells it and say what to write instead."""

import numpy as np
import pytest

import symdiff

special = pytest.importorskip("scipy.special")


def unknown_attribute(x):
    return np.sum(x.foo)


def through_tolist(x):
    return sum(v * v for v in x.tolist())


def through_fft(x):
    return np.sum(np.abs(np.fft.fft(x)))


def through_scipy_ufunc(x):
    return np.sum(special.expit(x))


def test_an_attribute_without_a_rule_is_named_as_an_attribute_with_advice():
    with pytest.raises(symdiff.NoRuleError, match=r"for the attribute \.foo; write it with NumPy functions") as info:
        symdiff.grad(unknown_attribute)(np.ones(2))
    assert "defvjp(the" not in str(info.value) and "GetAttr" not in str(info.value)


def test_a_method_without_a_rule_gets_no_impossible_defvjp_suggestion():
    with pytest.raises(symdiff.NoRuleError, match=r"the method \.tolist\(\); write it") as info:
        symdiff.grad(through_tolist)(np.ones(2))
    assert "defvjp(the method" not in str(info.value)


@pytest.mark.parametrize("fn, name", [(through_fft, "np.fft.fft"), (through_scipy_ufunc, "scipy.special.expit")])
def test_a_function_without_a_rule_is_named_by_its_public_path(fn, name):
    if name.startswith("scipy") and symdiff.primitives.lookup(special.expit).vjps is not None:
        pytest.skip("scipy.special.expit has a rule")
    with pytest.raises(symdiff.NoRuleError, match=rf"no derivative rule for {name}; register one with "
                                                  rf"symdiff.defvjp\({name}, "):
        symdiff.grad(fn)(np.ones(2))
