"""Every optimisation preserves gradients: the whole test corpus (finite-difference checks of
every rule and construct) also passes with the optimisations turned off."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from symdiff import passes


@pytest.mark.skipif(not passes.OPTIMIZE, reason="this is the run with optimisations off")
def test_the_whole_corpus_passes_with_optimisations_off():
    tests = Path(__file__).parent
    env = dict(os.environ, SYMDIFF_OPTIMIZE="0")
    this = f"{Path(__file__).relative_to(tests.parent)}::test_the_whole_corpus_passes_with_optimisations_off"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", str(tests), "--deselect", this],
        cwd=tests.parent, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
