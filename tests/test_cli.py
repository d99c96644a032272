"""python -m symdiff: the exported gradient on stdout or in a file, the IR of each stage, and
errors as one message on stderr."""

import importlib.util
import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import symdiff

ROOT = pathlib.Path(__file__).resolve().parent.parent

LOSS = textwrap.dedent("""\
    import numpy as np


    def loss(w, b, X):
        h = np.tanh(X @ w + b)
        return np.sum(h ** 2)


    def examples():
        return (np.ones((3, 2)), np.ones(2), np.ones((4, 3)))


    def not_a_tuple():
        return 3


    def unsupported(x):
        try:
            return x
        except ValueError:
            return x
""")


def _symdiff(*args, cwd=None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "symdiff", *map(str, args)], capture_output=True, text=True,
                          timeout=120, env=env, cwd=cwd)


@pytest.fixture
def loss_file(tmp_path):
    path = tmp_path / "model.py"
    path.write_text(LOSS)
    return path


def _load(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _arrays():
    r = np.random.default_rng(0)
    return r.normal(size=(3, 2)), r.normal(size=2), r.normal(size=(4, 3))


def test_cli_prints_the_exported_gradient(loss_file):
    done = _symdiff(f"{loss_file}:loss", "--argnums", "0,1")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert "def grad_loss(w, b, X):" in done.stdout
    assert "with respect to w, b" in done.stdout
    compile(done.stdout, "<printed>", "exec")


def test_cli_writes_the_module_that_computes_the_gradient(loss_file, tmp_path):
    out = tmp_path / "grad_model.py"
    done = _symdiff(f"{loss_file}:loss", "--argnums", "0,1", "--out", out)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    module = _load(out)
    args = _arrays()
    model = _load(loss_file)
    got = module.grad_loss(*args)
    want = symdiff.grad(model.loss, argnums=(0, 1))(*args)
    assert len(got) == 2
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12)


def test_cli_single_argnum_gives_one_gradient(loss_file, tmp_path):
    out = tmp_path / "grad_w.py"
    assert _symdiff(f"{loss_file}:loss", "--out", out).returncode == 0
    w, b, X = _arrays()
    got = _load(out).grad_loss(w, b, X)
    np.testing.assert_allclose(got, symdiff.grad(_load(loss_file).loss)(w, b, X), rtol=1e-12)


def test_cli_value_and_grad(loss_file):
    done = _symdiff(f"{loss_file}:loss", "--transform", "value_and_grad")
    assert done.returncode == 0, done.stderr
    assert "def value_and_grad_loss(w, b, X):" in done.stdout


def test_cli_example_args_specialise_the_code(loss_file):
    done = _symdiff(f"{loss_file}:loss", "--example-args", f"{loss_file}:examples")
    assert done.returncode == 0, done.stderr
    assert "specialised on example arguments" in done.stdout
    assert "w: float64 array of shape (*, *)" in done.stdout


def test_cli_example_args_from_an_importable_module(loss_file):
    done = _symdiff("model:loss", "--example-args", "model:examples", cwd=loss_file.parent)
    assert done.returncode == 0, done.stderr
    assert "X: float64 array of shape (*, *)" in done.stdout


def test_cli_ir_prints_each_stage_before_the_module(loss_file):
    done = _symdiff(f"{loss_file}:loss", "--ir")
    assert done.returncode == 0, done.stderr
    text = done.stdout
    stages = ["# ---- IR lowered", "# ---- IR optimized", "# ---- IR differentiated (reverse mode) and optimized",
              "# ---- generated module"]
    positions = [text.index(stage) for stage in stages]
    assert positions == sorted(positions)
    assert "func loss(" in text and "tanh(" in text
    assert text.index("def grad_loss(") > positions[-1]


@pytest.mark.parametrize("make_args, message", [
    (lambda f: [f"{f.parent / 'missing.py'}:loss"], "missing.py: no such file"),
    (lambda f: [str(f)], "expected path/to/file.py:name or package.module:name"),
    (lambda f: [f"{f}:nothing"], "defines no 'nothing'"),
    (lambda f: ["no_such_module_anywhere:loss"], "no_such_module_anywhere: no such file or importable module"),
    (lambda f: [f"{f}:loss", "--argnums", "x"], "--argnums 'x': expected integers"),
    (lambda f: [f"{f}:loss", "--example-args", f"{f}:not_a_tuple"], "returned int; it must return a tuple"),
    (lambda f: [f"{f}:loss", "--argnums", "7"], "argnums 7 is out of range"),
    (lambda f: [f"{f}:unsupported"], "try statement"),
])
def test_cli_errors_are_one_message_without_a_traceback(loss_file, make_args, message):
    done = _symdiff(*make_args(loss_file))
    assert done.returncode != 0
    assert done.stderr.startswith("symdiff: error: ")
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_cli_error_raised_while_importing_the_file_names_its_line(tmp_path):
    path = tmp_path / "broken.py"
    path.write_text("import numpy as np\n\nraise RuntimeError('no data')\n")
    done = _symdiff(f"{path}:loss")
    assert done.returncode != 0
    assert "importing" in done.stderr and "RuntimeError: no data" in done.stderr and f"{path}:3" in done.stderr
    assert "Traceback" not in done.stderr
