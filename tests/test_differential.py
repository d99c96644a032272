"""Differential testing in CI: a fixed set of random programs (tests/difftest.py) in the
constructs the README lists as supported, each compiled with symdiff.grad and compared with
finite differences. Every program must pass or be refused with a SymdiffError.

The long run is ``python3 scripts/difftest.py --count 20000``; this file runs seeds
0..SEEDS_PER_FAMILY-1 of every family, in chunks, so that a failure shows its programs.
"""

from __future__ import annotations

import difftest
import numpy as np
import pytest
from difftest import Leaf, Program, check, generate, minimise, validate

from symdiff import rules

SEEDS_PER_FAMILY = 40
CHUNK = 10
CHUNKS = [(family, start) for family in difftest.FAMILIES for start in range(0, SEEDS_PER_FAMILY, CHUNK)]


@pytest.mark.parametrize(("family", "start"), CHUNKS, ids=[f"{f}-{s}" for f, s in CHUNKS])
def test_random_programs_pass_or_are_refused(family, start):
    failures = []
    for seed in range(start, start + CHUNK):
        program = generate(seed, family)
        outcome = check(program)
        if outcome.cls not in ("pass", "refused"):
            failures.append(f"--- {family} seed {seed}: {outcome.cls} at {outcome.stage}: {outcome.detail}\n"
                            f"argnums={program.argnums!r}\n{program.source}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("family", list(difftest.FAMILIES))
def test_generator_is_deterministic_per_seed(family):
    for seed in (3, 17):
        a, b = generate(seed, family), generate(seed, family)
        assert a.source == b.source
        assert a.argnums == b.argnums
        assert difftest.same_values(a.make_args(), b.make_args())
        assert difftest.same_values(a.make_args2(), b.make_args2())
    assert generate(3, family).source != generate(4, family).source


@pytest.mark.parametrize("family", list(difftest.FAMILIES))
def test_every_family_produces_valid_programs(family):
    for seed in range(5):
        program = generate(seed, family)
        assert validate(program) is None
        assert f"def {program.name}(" in program.source
        namespace = {}
        exec(compile(program.source, "<program>", "exec"), namespace)  # noqa: S102
        value = namespace[program.name](*program.make_args())
        assert np.isfinite(value)


def _sin_program(source: str) -> Program:
    return Program("manual", 0, source, "f", [Leaf("a", ("N",)), Leaf("f")], (0, 1), {"N": 4}, {"N": 6},
                   value_seed=1, value_seed2=2)


SIN_SOURCE = '''import numpy as np


def f(x, t):
    return np.sum(np.sin(x) * t) + t * t
'''


def test_a_correct_program_passes():
    assert check(_sin_program(SIN_SOURCE)).cls == "pass"


def test_a_broken_derivative_rule_is_classified_wrong(monkeypatch):
    monkeypatch.setitem(rules.VJPS, np.sin, (lambda g, ans, x: g * np.cos(x) * 1.5,))
    outcome = check(_sin_program(SIN_SOURCE))
    assert outcome.cls == "wrong", outcome
    assert "finite differences" in outcome.detail


def test_minimise_keeps_the_failure_and_drops_the_rest(monkeypatch):
    monkeypatch.setitem(rules.VJPS, np.sin, (lambda g, ans, x: g * np.cos(x) * 1.5,))
    source = '''import numpy as np


def f(x, t):
    a = np.tanh(x) * t
    b = np.sum(a ** 2)
    c = np.sum(np.sin(x))
    return b + c + t
'''
    small = minimise(_sin_program(source))
    assert check(small).cls == "wrong"
    assert "np.sin" in small.source and "np.tanh" not in small.source


def test_an_exception_in_symdiff_is_internal_and_a_symdiff_error_is_refused(monkeypatch):
    def broken(g, ans, x):
        raise KeyError("boom")

    monkeypatch.setitem(rules.VJPS, np.sin, (broken,))
    assert check(_sin_program(SIN_SOURCE)).cls == "internal"
    source = SIN_SOURCE.replace("return np.sum", "assert t < 10.0\n    return np.sum")
    assert check(_sin_program(source)).cls == "refused"
