"""The samples run and reach what they promise (each exits non-zero otherwise)."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

SAMPLES = sorted((Path(__file__).parent.parent / "samples").glob("*.py"))
# samples that need packages symdiff does not
OPTIONAL = {"newton_logreg.py": ("scipy",), "distributed_logreg.py": ("dask", "distributed")}


def _missing(package):
    try:
        return importlib.util.find_spec(package) is None
    except ImportError:  # (a parent package missing)
        return True


@pytest.mark.parametrize("script", SAMPLES, ids=lambda p: p.name)
def test_sample_runs_to_its_goal(script):
    missing = [p for p in OPTIONAL.get(script.name, ()) if _missing(p)]
    if missing:
        pytest.skip(f"{script.name} needs {', '.join(missing)}")
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


def test_distributed_sample_without_dask_says_so_and_exits_cleanly(tmp_path):
    hide = tmp_path / "dask"  # a package named dask that fails to import hides the real one
    hide.mkdir()
    (hide / "__init__.py").write_text("raise ImportError('dask hidden for this test')\n")
    script = Path(__file__).parent.parent / "samples" / "distributed_logreg.py"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "needs dask" in result.stderr
