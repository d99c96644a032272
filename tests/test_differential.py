"""Differential testing in CI: a fixed set of random programs (tests/difftest.py) in the
constructs the README lists as supported, each compiled with symdiff.grad and compared with
finite differences. Every program must pass or be refused with a SymdiffError.

The long run is ``python3 scripts/difftest.py --count 20000``; this file runs seeds
0..SEEDS_PER_FAMILY-1 of every family, in chunks, so that a failure shows its programs.
"""

from __future__ import annotations

from dataclasses import replace

import difftest
import numpy as np
import pytest
from difftest import Leaf, Program, check, generate, minimise, validate

import symdiff
from symdiff import passes, primitives

# tests/test_passes_off.py reruns the corpus once per optimisation turned off: there, the
# first ten seeds of every family (the long runs cover the rest)
SEEDS_PER_FAMILY = 40 if passes.OPTIMIZE else 10
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
        namespace = {}
        exec(compile(program.source, "<program>", "exec"), namespace)  # noqa: S102
        value = difftest.target(namespace, program.name)(*program.make_args())
        if program.aux:
            value = value[0]
        assert np.isfinite(value)


def test_generated_programs_use_the_constructs_of_their_family():
    """The families exist to generate these constructs: each shows up in a few seeds."""
    wanted = {
        "objects": ["self.", "def loss(self", "self.hidden(", "self.penalty("],
        "helpers": ["def even(", "def odd(", "weight=", "global SCALE"],
        "lists": ["[-1] = ", ".append(", "['a'] "],
        "aliases": ["[1:3]", " = a"],
        "numpy": ["np.linalg.", "axis="],
        "control": ["elif ", "%"],
        "nesting": ["for other in ", "again = ", "score(X", "= unpack(params)", "zip(*", "pairs", " for s in ",
                    "[i - 1]", "for third in "],
    }
    for family, needles in wanted.items():
        sources = "\n".join(generate(seed, family).source for seed in range(12))
        missing = [n for n in needles if n not in sources]
        assert not missing, (family, missing)
    kinds = {leaf.kind for seed in range(12) for leaf in difftest._spec_leaves(generate(seed, "dtypes").spec)}
    assert {"a32", "s64", "s32"} <= kinds


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
    monkeypatch.setattr(primitives.lookup(np.sin), "vjps", (lambda g, ans, x: g * np.cos(x) * 1.5,))
    outcome = check(_sin_program(SIN_SOURCE))
    assert outcome.cls == "wrong", outcome
    assert "finite differences" in outcome.detail


def test_minimise_keeps_the_failure_and_drops_the_rest(monkeypatch):
    monkeypatch.setattr(primitives.lookup(np.sin), "vjps", (lambda g, ans, x: g * np.cos(x) * 1.5,))
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


METHOD_SOURCE = '''import numpy as np


class Model:
    def __init__(self, scale):
        self.scale = scale

    def features(self, x):
        return np.sin(x) * self.scale

    def loss(self, x, t):
        return np.sum(self.features(x) * t) + t * t


model = Model(1.5)


def retune():
    model.scale = -0.5
'''


def test_a_method_is_differentiated_and_attributes_changed_between_calls_are_checked(monkeypatch):
    program = replace(_sin_program(METHOD_SOURCE), name="model.loss", between="retune")
    assert check(program).cls == "pass"
    real_grad = symdiff.grad

    def first_compiled(fn, argnums=0):  # a gradient that ignores the attribute's new value
        g = real_grad(fn, argnums=argnums)
        frozen = {}

        def call(*args):
            if "scale" not in frozen:
                frozen["scale"] = fn.__self__.scale
            old, fn.__self__.scale = fn.__self__.scale, frozen["scale"]
            try:
                return g(*args)
            finally:
                fn.__self__.scale = old
        return call

    monkeypatch.setattr(symdiff, "grad", first_compiled)
    outcome = check(program)
    assert outcome.cls == "wrong" and outcome.stage == "second call, other shapes", outcome


def test_float32_arguments_need_float32_gradients(monkeypatch):
    program = replace(_sin_program(SIN_SOURCE), spec=[Leaf("a32", ("N",)), Leaf("s64")])
    args = program.make_args()
    assert args[0].dtype == np.float32 and type(args[1]) is np.float64
    assert program.make_args(as64=True)[0].dtype == np.float64
    assert check(program).cls == "pass"
    real_grad = symdiff.grad

    def in_float64(fn, argnums=0):
        g = real_grad(fn, argnums=argnums)
        return lambda *a: tuple(np.asarray(v, dtype=np.float64) for v in g(*a))

    monkeypatch.setattr(symdiff, "grad", in_float64)
    outcome = check(program)
    assert outcome.cls == "wrong" and "dtype float64" in outcome.detail, outcome


AUX_SOURCE = '''import numpy as np


def f(x, t):
    h = np.sin(x) * t
    return np.sum(h) + t * t, {"h": h, "n": 2}
'''


def test_aux_outputs_are_compared_with_the_function_s_own(monkeypatch):
    program = replace(_sin_program(AUX_SOURCE), aux=True)
    assert check(program).cls == "pass"
    real = symdiff.value_and_grad

    def bad_aux(fn, argnums=0, has_aux=False):
        vg = real(fn, argnums=argnums, has_aux=has_aux)

        def call(*args):
            (value, aux), grads = vg(*args)
            return (value, {"h": aux["h"] * 2.0, "n": aux["n"]}), grads
        return call

    monkeypatch.setattr(symdiff, "value_and_grad", bad_aux)
    outcome = check(program)
    assert outcome.cls == "wrong" and outcome.detail.startswith("aux"), outcome


def test_an_exception_in_symdiff_is_internal_and_a_symdiff_error_is_refused(monkeypatch):
    def broken(g, ans, x):
        raise KeyError("boom")

    monkeypatch.setattr(primitives.lookup(np.sin), "vjps", (broken,))
    assert check(_sin_program(SIN_SOURCE)).cls == "internal"
    source = SIN_SOURCE.replace("return np.sum", "u = t\n    del u\n    return np.sum")
    assert check(_sin_program(source)).cls == "refused"


def test_a_program_whose_intermediates_swamp_its_result_is_not_valid():
    # s - x + x with x ~ 1e31: the result is 0.0 at every step, so finite differences see 0
    source = '''import numpy as np


def f(x, t):
    s = t
    u = t
    for _ in range(7):
        u = u * u + 1.5
    s = s - u
    return s + u + np.sum(x)
'''
    program = _sin_program(source)
    assert validate(program) is not None
    assert validate(_sin_program(source.replace("range(7)", "range(2)"))) is None
