"""Generated code is printed by astor where it works and by ``ast.unparse`` otherwise
(``codegen.PRINTER``): both printers give code that compiles and computes the same gradients,
and importing symdiff and computing a gradient raises no warning on this Python."""

import ast
import math
import subprocess
import sys

import numpy as np
import pytest

import symdiff
from symdiff import codegen


def mlp(W, b, x):
    h = np.tanh(W @ x + b)
    return np.sum(h * -1.5) + 0.5 * np.sum(W ** 2)


def control(x, n):
    s = 0.0
    i = 0
    while i < n:
        if x[i] > 0.0:
            s = s + x[i] ** 2
        else:
            s = s - 2.0 * x[i]
        i += 1
    for j in range(n):
        s = s + math.exp(-x[j]) if j % 2 else s * 1.0
    return s


def scalar_loop(x):
    s = x
    for _ in range(4):
        s = -s * math.sin(s) + x ** -2
    return s


def containers(params, x):
    h = np.tanh(params["W"] @ x)
    return np.sum(h ** 2) + params["scale"][0] * np.sum(x)


RNG = np.random.default_rng(3)
PRIMAL = RNG.normal(size=3)
CASES = [
    ("mlp", lambda: symdiff.grad(mlp, argnums=(0, 1)),
     (RNG.normal(size=(3, 2)), RNG.normal(size=3), RNG.normal(size=2))),
    ("control", lambda: symdiff.grad(control), (RNG.normal(size=4), 4)),
    ("scalar_loop", lambda: symdiff.grad(scalar_loop), (0.7,)),
    ("containers", lambda: symdiff.grad(containers), ({"W": RNG.normal(size=(2, 2)), "scale": np.array([2.0])},
                                                     RNG.normal(size=2))),
    ("hvp", lambda: symdiff.hvp(mlp), (RNG.normal(size=(3, 2)), RNG.normal(size=3), RNG.normal(size=2),
                                      RNG.normal(size=(3, 2)))),
    ("vjp", lambda: symdiff.vjp(lambda x: np.tanh(x) * x[0], PRIMAL)[1], (np.array([1.0, -2.0, 0.5]),)),
]


def _made_with(printer: str, monkeypatch: pytest.MonkeyPatch, make, args):
    monkeypatch.setattr(codegen, "PRINTER", printer)
    made = make()
    result = made(*args)
    return result, made.source


def _leaves(x):
    if isinstance(x, dict):
        return [leaf for k in sorted(x) for leaf in _leaves(x[k])]
    if isinstance(x, (tuple, list)):
        return [leaf for item in x for leaf in _leaves(item)]
    return [x]


@pytest.mark.skipif(codegen._ASTOR is None, reason="astor does not work on this Python")
@pytest.mark.parametrize("name, make, args", CASES, ids=[c[0] for c in CASES])
def test_astor_and_unparse_print_code_that_computes_the_same_gradients(name, make, args, monkeypatch):
    by_astor, astor_source = _made_with("astor", monkeypatch, make, args)
    by_unparse, unparse_source = _made_with("unparse", monkeypatch, make, args)
    for a, u in zip(_leaves(by_astor), _leaves(by_unparse)):
        np.testing.assert_array_equal(a, u)
    # The same code (only the spelling of expressions may differ: parentheses) and comments.
    assert ast.dump(ast.parse(astor_source)) == ast.dump(ast.parse(unparse_source))
    assert _comments(astor_source) == _comments(unparse_source)


def _comments(source: str) -> list[str]:
    return [line.strip() for line in source.splitlines() if line.strip().startswith("#")]


def test_unparse_writes_comments_as_comment_lines(monkeypatch):
    monkeypatch.setattr(codegen, "PRINTER", "unparse")
    source = symdiff.grad(mlp).source
    assert "# line" in source
    assert codegen._COMMENT_MARK not in source
    compile(source, "mlp", "exec")


SCRIPT = """
import numpy as np
import symdiff

def loss(w, x):
    return np.sum(np.tanh(x @ w) ** 2) + abs(w[0])

gradient = symdiff.grad(loss)
print(gradient(np.array([0.5, -1.0]), np.eye(2)))
print(symdiff.hvp(loss)(np.array([0.5, -1.0]), np.eye(2), np.ones(2)))
print(symdiff.grad(lambda s: s ** 3 * 2.0)(1.5))
print(gradient.source)
"""


def test_importing_and_computing_a_gradient_warns_of_nothing(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    done = subprocess.run([sys.executable, "-W", "error", str(script)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "def grad_loss(w, x):" in done.stdout
