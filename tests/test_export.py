"""symdiff.export: a gradient written as a standalone module, run where symdiff cannot be imported."""

import importlib.util
import inspect
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import symdiff
from symdiff import codegen
from symdiff.export import runtime_helpers, undefined_names


def mlp_loss(W1, b1, W2, b2, X, labels):
    h = np.tanh(X @ W1 + b1)
    logits = h @ W2 + b2
    m = np.max(logits, axis=1, keepdims=True)
    z = logits - m
    logp = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    return -np.mean(np.sum(logp * labels, axis=1))


def mse_loss(W1, b1, W2, b2, X, y):
    h = np.tanh(X @ W1 + b1)
    out = h @ W2 + b2
    return np.mean((out - y) ** 2)


SCALE = np.array([0.5, 2.0, -1.5])
OFFSET = 0.25


def scaled(x):
    return np.sum(np.sin(x * SCALE) + OFFSET)


_opaque = eval("lambda n: n + 1.0")  # (no source to read: it stays a call in the generated code)


def calls_a_function_of_the_user(x):
    return np.sum(_opaque(3.0) * x)


# A script run by a bare interpreter (-I -S: no site-packages, no PYTHONPATH), with only the
# folder of the exported module and NumPy's folder on sys.path: it checks that symdiff cannot
# be imported, then the exported gradient against central differences of the loss.
_CHECK = r'''
import json, sys
sys.path[:0] = [EXPORTED_DIR, NUMPY_DIR]
try:
    import symdiff
except ImportError:
    pass
else:
    raise SystemExit("symdiff is importable: " + symdiff.__file__)
import numpy as np
import grad_mlp

LOSS_SOURCE

def central(f, args, i, h=1e-6):
    x = args[i]
    out = np.zeros(x.shape)
    for index in np.ndindex(*x.shape):
        up = [a.copy() for a in args]
        down = [a.copy() for a in args]
        up[i][index] += h
        down[i][index] -= h
        out[index] = (f(*up) - f(*down)) / (2 * h)
    return out

errors = []
for batch, n_in, hidden, n_out in SHAPES:
    rng = np.random.default_rng(batch * 100 + hidden)
    params = [rng.normal(size=(n_in, hidden)), rng.normal(size=hidden), rng.normal(size=(hidden, n_out)),
              rng.normal(size=n_out)]
    X = rng.normal(size=(batch, n_in))
    labels = np.eye(n_out)[rng.integers(0, n_out, size=batch)]
    args = params + [X, labels]
    grads = grad_mlp.grad_mlp_loss(*args)
    assert len(grads) == 4
    for i, g in enumerate(grads):
        assert g.shape == args[i].shape, (g.shape, args[i].shape)
        want = central(mlp_loss, args, i)
        errors.append(float(np.max(np.abs(g - want)) / (1e-8 + np.max(np.abs(want)) + 1.0)))
print(json.dumps({"errors": errors, "modules": sorted(m for m in sys.modules if m.split(".")[0] == "symdiff")}))
'''


def _run_bare(script: str) -> subprocess.CompletedProcess:
    """Run ``script`` in a fresh interpreter that sees neither site-packages nor PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    return subprocess.run([sys.executable, "-I", "-S", "-c", script], capture_output=True, text=True,
                          timeout=120, env=env)


def test_exported_mlp_gradient_runs_without_symdiff_and_matches_central_differences(tmp_path):
    path = tmp_path / "grad_mlp.py"
    text = symdiff.export(mlp_loss, path, argnums=(0, 1, 2, 3))
    assert path.read_text() == text
    assert not any(line.startswith(("from symdiff", "import symdiff")) for line in text.splitlines())
    numpy_dir = os.path.dirname(os.path.dirname(np.__file__))
    shapes = [(5, 3, 4, 2), (1, 2, 6, 3), (4, 1, 1, 3)]  # (batch, inputs, hidden, outputs): size-1 axes too
    script = (_CHECK.replace("EXPORTED_DIR", repr(str(tmp_path))).replace("NUMPY_DIR", repr(numpy_dir))
              .replace("LOSS_SOURCE", inspect.getsource(mlp_loss)).replace("SHAPES", repr(shapes)))
    done = _run_bare(script)
    assert done.returncode == 0, done.stderr + done.stdout
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["modules"] == []
    assert len(result["errors"]) == 4 * len(shapes)
    assert max(result["errors"]) < 1e-6


def test_a_bare_interpreter_cannot_import_symdiff():
    numpy_dir = os.path.dirname(os.path.dirname(np.__file__))
    done = _run_bare(f"import sys; sys.path[:0] = [{numpy_dir!r}]\nimport symdiff")
    assert done.returncode != 0 and "ModuleNotFoundError" in done.stderr


def _load(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_exported_value_and_grad_specialised_on_example_arguments_matches_symdiff(tmp_path):
    r = np.random.default_rng(3)
    args = [r.normal(size=(3, 4)), r.normal(size=4), r.normal(size=(4, 2)), r.normal(size=2),
            r.normal(size=(6, 3)), r.normal(size=(6, 2))]
    path = tmp_path / "vg.py"
    text = symdiff.export(mse_loss, path, argnums=(0, 1, 2, 3), transform="value_and_grad", example_args=args)
    module = _load(path)
    value, grads = module.value_and_grad_mse_loss(*args)
    want_value, want = symdiff.value_and_grad(mse_loss, argnums=(0, 1, 2, 3))(*args)
    assert value == pytest.approx(want_value, rel=1e-12)
    for g, w in zip(grads, want):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14)
    assert "specialised on example arguments" in text
    assert "W1: float64 array of shape (*, *)" in text


def test_export_header_names_the_function_the_transformation_and_the_assumptions(tmp_path):
    text = symdiff.export(mlp_loss, None, argnums=(0, 2))
    header = text.split("from __future__")[0]
    line = inspect.getsourcelines(mlp_loss)[1]
    assert f"{os.path.abspath(__file__)}:{line}" in header
    assert "grad of mlp_loss" in header and "with respect to W1, W2" in header
    assert f"symdiff {symdiff.__version__}" in header
    assert "Assumes: nothing of the arguments' shapes or dtypes (the generic version)" in header
    value_and_grad = symdiff.export(mlp_loss, None, transform="value_and_grad")
    assert "value_and_grad of mlp_loss" in value_and_grad and "def value_and_grad_mlp_loss(" in value_and_grad


def test_exported_module_imports_only_numpy(tmp_path):
    text = symdiff.export(mlp_loss, None, argnums=(0, 1, 2, 3))
    imports = [line for line in text.splitlines() if line.startswith(("import ", "from "))]
    assert imports == ["from __future__ import annotations", "import numpy as np"]


def test_exported_module_holds_the_constants_of_the_user_code(tmp_path):
    path = tmp_path / "scaled.py"
    symdiff.export(scaled, path)
    module = _load(path)
    x = np.array([0.1, -0.3, 2.0])
    np.testing.assert_allclose(module.grad_scaled(x), SCALE * np.cos(x * SCALE), rtol=1e-13)
    np.testing.assert_array_equal(module.SCALE, SCALE)


def test_export_refuses_a_function_of_the_user_it_cannot_copy():
    with pytest.raises(symdiff.SymdiffError,
                       match="the function <lambda> from your code, which cannot be written into a standalone module"):
        symdiff.export(calls_a_function_of_the_user, None)


def test_export_refuses_an_unknown_transform():
    with pytest.raises(symdiff.SymdiffError, match="transform must be one of 'grad', 'value_and_grad'"):
        symdiff.export(mse_loss, None, transform="hessian")


def test_export_refuses_a_wrong_number_of_example_arguments():
    with pytest.raises(symdiff.SymdiffError, match="takes 6 arguments, but 1 example arguments"):
        symdiff.export(mse_loss, None, example_args=(np.ones(3),))


@pytest.mark.parametrize("name", sorted(set(codegen.RUNTIME.values())))
def test_every_runtime_helper_is_copied_with_everything_it_reads(name):
    text, names = runtime_helpers({name})
    assert name in names
    module = "from __future__ import annotations\nimport math\nimport numpy as np\n\n" + text
    assert undefined_names(module) == set()
    namespace: dict = {}
    exec(compile(module, "<helpers>", "exec"), namespace)  # noqa: S102
    assert callable(namespace[name])


def test_undefined_names_finds_a_global_no_one_defines():
    module = textwrap.dedent("""
        import numpy as np

        def f(x: Any) -> Any:
            return helper(np.sum(x)) + len(x)
    """)
    assert undefined_names(module) == {"helper"}


def penalised(w, X, lam=0.1, power=2):
    return np.sum(np.tanh(X @ w) ** power) + lam * np.sum(w ** 2)


def test_exported_function_keeps_the_default_values_of_the_parameters(tmp_path):
    path = tmp_path / "penalised.py"
    text = symdiff.export(penalised, path)
    assert "def grad_penalised(w, X, lam=0.1, power=2):" in text
    module = _load(path)
    r = np.random.default_rng(5)
    w, X = r.normal(size=3), r.normal(size=(4, 3))
    np.testing.assert_allclose(module.grad_penalised(w, X), symdiff.grad(penalised)(w, X), rtol=1e-12)
    np.testing.assert_allclose(module.grad_penalised(w, X, 0.5, 3), symdiff.grad(penalised)(w, X, 0.5, 3),
                               rtol=1e-12)


def test_defaults_of_another_kind_than_the_specialisation_are_left_out():
    w, X = np.ones(3), np.ones((4, 3))
    same = symdiff.export(penalised, None, example_args=(w, X, 0.3, 2))
    assert "def grad_penalised(w, X, lam=0.1, power=2):" in same
    other = symdiff.export(penalised, None, example_args=(w, X, np.array([0.3, 0.2, 0.1]), 2))
    assert "def grad_penalised(w, X, lam, power):" in other
