"""HIPS/autograd's examples (samples/autograd_examples), differentiated by symdiff: each example's
``main()`` checks its gradient against central finite differences and exits non-zero otherwise.

``GAPS`` lists the examples that do not run yet, each with what stops it (a fragment of the error
it raises) and its kind: ``construct`` (Python that symdiff does not compile yet), ``scipy`` (a SciPy
function without a derivative rule), ``refused`` (code symdiff refuses by design, with a message
saying what to write), ``api`` (an autograd feature symdiff's API lacks). Each is a strict xfail:
when support lands the test passes, pytest reports XPASS as a failure, and the row is to be
deleted. An example that fails with another error than its row's fails the test.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
FOLDER = ROOT / "samples" / "autograd_examples"

# example -> (kind, fragment of the error it raises today)
GAPS = {
    # autograd accepts any size-1 output; symdiff, like JAX, asks for a scalar
    "bayesian_optimization": ("api", "needs a real scalar output, got an array of shape (1,)"),
    "fluidsim": ("refused", "project() updates 'vx' in place"),
}

HELPERS = {"data.py"}  # modules the examples import, not examples themselves
EXAMPLES = sorted(p.stem for p in FOLDER.glob("*.py") if not p.name.startswith("_") and p.name not in HELPERS)


class ExampleFailed(Exception):
    """An example exited non-zero with the error its GAPS row names."""


def run_example(name: str) -> subprocess.CompletedProcess:
    """Run ``samples/autograd_examples/<name>.py`` with this checkout's symdiff first on the path."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, str(FOLDER / f"{name}.py")], capture_output=True, text=True,
                          timeout=120, env=env, cwd=ROOT)


def _marks(name: str) -> list:
    if name not in GAPS:
        return []
    kind, fragment = GAPS[name]
    return [pytest.mark.xfail(reason=f"{kind}: {fragment}", strict=True, raises=ExampleFailed)]


@pytest.mark.parametrize("name", [pytest.param(n, marks=_marks(n)) for n in EXAMPLES])
def test_example_gradient_matches_finite_differences(name):
    result = run_example(name)
    output = result.stdout[-2000:] + result.stderr[-3000:]
    if result.returncode == 0:
        assert "gradient matches central differences" in result.stdout, output
        return
    if name in GAPS and GAPS[name][1] in result.stderr:
        raise ExampleFailed(GAPS[name][1])
    pytest.fail(f"{name} failed with an unexpected error:\n{output}")


def test_every_gap_names_an_example():
    assert set(GAPS) <= set(EXAMPLES)
