"""Every optimisation preserves gradients: the whole test corpus (finite-difference checks of
every rule and construct) also passes with all the optimisations off, and with each one off
on its own (so that no pass hides a bug of another)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from symdiff import passes

SETTINGS = ["0"] + [f"-{name}" for name in passes.PASSES]


@pytest.mark.skipif(not passes.OPTIMIZE, reason="this is a run with optimisations off")
@pytest.mark.parametrize("setting", SETTINGS)
def test_the_whole_corpus_passes_with_optimisations_off(setting):
    tests = Path(__file__).parent
    env = dict(os.environ, SYMDIFF_OPTIMIZE=setting)
    this = f"{Path(__file__).relative_to(tests.parent)}::test_the_whole_corpus_passes_with_optimisations_off"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", str(tests), "--deselect", this],
        cwd=tests.parent, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


def test_an_unknown_pass_name_is_refused():
    with pytest.raises(ValueError, match="unknown pass"):
        passes._disabled("-no-such-pass")
    assert passes._disabled("-cse,-dce") == {"cse", "dce"}
    assert passes._disabled("0") == set(passes.PASSES) and passes._disabled("1") == set()
