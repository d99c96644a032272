"""Forward mode rule by rule: ``symdiff.jvp`` of every case of the rule tables against central
finite differences along a random tangent (float64), and against reverse mode
(``<u, J v> == <J^T u, v>`` with ``symdiff.vjp``).

The cases are those of ``tests/test_rules.py`` and ``tests/test_numpy_rules.py`` (scalar functions
``sum(op(x) * w)``; here ``w`` gets a tangent too when it is differentiated) and of
``tests/test_numpy_systematic.py`` (the expression itself, of any output shape: the tangent of
each output element is compared). Non-differentiated arguments (ints, axes, index arrays) get zero
tangents, as ``jvp`` needs one per primal.

Where forward mode refuses a case, the refusal must be one that ``docs/numpy.md`` documents
("Without a forward-mode rule", generated from the primitive table by
``scripts/gen_numpy_docs.py``): a rule that stops working fails here.

By default a fixed third of the systematic cases runs (all of the others do);
``SYMDIFF_FULL_SWEEP=1 python3 -m pytest -q tests/test_jvp_systematic.py`` runs every case.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import re
import zlib

import numpy as np
import pytest
import test_numpy_rules
import test_numpy_systematic as systematic
import test_rules
from jvpcheck import check_jvp, dot, flat, refused_primitive

import symdiff
from symdiff import NoRuleError, primitives

FULL = os.environ.get("SYMDIFF_FULL_SWEEP") == "1"
ROOT = pathlib.Path(__file__).resolve().parent.parent


def _docs_generator():
    spec = importlib.util.spec_from_file_location("gen_numpy_docs", ROOT / "scripts" / "gen_numpy_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


DOCS = _docs_generator()
WITHOUT_RULE = {primitives.spelling(s) for r in DOCS.without_forward_rule() for s in primitives.spellings(r)}


def documented_refusal(error: NoRuleError) -> bool:
    """Whether forward mode refused for a reason docs/numpy.md gives."""
    named = refused_primitive(error)
    if named is not None:
        return named in WITHOUT_RULE
    message = str(error)
    if "derivatives of second order through" in message:  # custom rules and checkpoints: docs/transformations.md
        return True
    return any(re.search(rf"(forward mode through {re.escape(name)} |forward-mode rule for argument .* of "
                         rf"{re.escape(name)}\b)", message) for name in DOCS.FORWARD_PARTIAL)


def run(f, args, differentiated, seed_text: str, rtol: float, atol: float) -> None:
    rng = np.random.default_rng(zlib.crc32(seed_text.encode()))
    adjoint = len(differentiated) == len(args)  # (vjp differentiates every argument)
    try:
        check_jvp(f, args, differentiated, rng, rtol=max(rtol, 1e-5), atol=max(atol, 1e-6), adjoint=adjoint)
    except NoRuleError as error:
        assert documented_refusal(error), f"forward mode refused, for a reason docs/numpy.md does not give: {error}"


# ---------------------------------------------------------------------------- the rule tables

# Known gaps (tests/test_regressions_forward.py pins them down).
KNOWN: set[str] = set()


def _marked(case_id: str) -> list:
    return [pytest.mark.xfail(strict=True, reason="known forward-mode gap")] if case_id in KNOWN else []


FLOAT64 = [c for c in systematic.CASES if c.dtype == "float64"]
SYSTEMATIC = FLOAT64 if FULL else FLOAT64[::3]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=_marked(c.id)) for c in SYSTEMATIC])
def test_jvp_of_each_systematic_case_matches_finite_differences(case) -> None:
    _, value = systematic.functions(case)
    args = systematic.arguments(case)[:-1]
    run(value, args, case.argnums, case.id, case.rtol, case.atol)


RULE_CASES = test_rules.CASES + test_numpy_rules.CASES


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=_marked(c.id)) for c in RULE_CASES])
def test_jvp_of_each_rule_case_matches_finite_differences(case) -> None:
    run(case.fn, case.args(), case.argnums, case.id, case.rtol, case.atol)


def test_the_documented_refusals_are_primitives_with_vjps() -> None:
    """Every primitive docs/numpy.md lists without a forward-mode rule does have a VJP (else the
    list would hide a typo), and none of them has a JVP."""
    for record in DOCS.without_forward_rule():
        assert record.vjps is not None and record.jvps is None, primitives.spelling(record.fn)
    for name in DOCS.FORWARD_PARTIAL:
        assert any(DOCS.display(r.fn) == name and r.jvps is not None for r in primitives.with_rules()), name


# ---------------------------------------------------------------------------- large shapes


def mlp(W1, W2, X):
    H = np.tanh(W1 @ X)
    return np.tanh(W2 @ H) * H[:3].sum(axis=0)


def test_jvp_and_vjp_agree_on_random_projections_of_a_large_chain() -> None:
    rng = np.random.default_rng(0)
    W1, W2 = rng.standard_normal((200, 300)) / 20, rng.standard_normal((50, 200)) / 15
    X = rng.standard_normal((300, 40))
    tangents = tuple(rng.standard_normal(a.shape) for a in (W1, W2, X))
    out, t_out = symdiff.jvp(mlp, (W1, W2, X), tangents)
    np.testing.assert_allclose(out, mlp(W1, W2, X), rtol=1e-12, atol=1e-12)
    _, pullback = symdiff.vjp(mlp, W1, W2, X)
    for _ in range(3):
        u = rng.standard_normal(out.shape)
        cotangents = pullback(u)
        lhs, rhs = dot(u, t_out), sum(dot(c, t) for c, t in zip(cotangents, tangents))
        assert lhs == pytest.approx(rhs, rel=1e-10)
    eps = 1e-6
    fd = (mlp(*(a + eps * t for a, t in zip((W1, W2, X), tangents)))
          - mlp(*(a - eps * t for a, t in zip((W1, W2, X), tangents)))) / (2 * eps)
    np.testing.assert_allclose(flat(t_out), flat(fd), rtol=1e-5, atol=1e-6 * (1 + np.abs(fd).max()))


def test_linearize_and_jacfwd_agree_with_jvp_and_jacrev() -> None:
    rng = np.random.default_rng(1)
    W1, W2, X = rng.standard_normal((6, 5)), rng.standard_normal((4, 6)), rng.standard_normal((5, 3))
    tangents = tuple(rng.standard_normal(a.shape) for a in (W1, W2, X))
    out, f_jvp = symdiff.linearize(mlp, W1, W2, X)
    np.testing.assert_allclose(f_jvp(*tangents), symdiff.jvp(mlp, (W1, W2, X), tangents)[1], rtol=1e-12)
    np.testing.assert_allclose(symdiff.jacfwd(mlp, argnums=(0, 2))(W1, W2, X)[1],
                               symdiff.jacrev(mlp, argnums=(0, 2))(W1, W2, X)[1], rtol=1e-10, atol=1e-12)
