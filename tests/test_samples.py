"""The samples run and reach what they promise (each exits non-zero otherwise)."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

SAMPLES = sorted((Path(__file__).parent.parent / "samples").glob("*.py"))
OPTIONAL = {"newton_logreg.py": "scipy"}  # samples that need a package symdiff does not


@pytest.mark.parametrize("script", SAMPLES, ids=lambda p: p.name)
def test_sample_runs_to_its_goal(script):
    needs = OPTIONAL.get(script.name)
    if needs is not None and importlib.util.find_spec(needs) is None:
        pytest.skip(f"{script.name} needs {needs}")
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
