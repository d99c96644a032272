"""Every optimisation preserves gradients: the whole test corpus (finite-difference checks of
every rule and construct) also passes with all the optimisations off, and with each one off
on its own (so that no pass hides a bug of another)."""

import concurrent.futures
import os
import subprocess
import sys
from pathlib import Path

import pytest

from symdiff import passes

SETTINGS = ["0"] + [f"-{name}" for name in passes.PASSES]


TESTS = Path(__file__).parent
THIS = f"{Path(__file__).relative_to(TESTS.parent)}::test_the_whole_corpus_passes_with_optimisations_off"
_RUNS: dict[str, concurrent.futures.Future] = {}


def _rerun(setting: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, SYMDIFF_OPTIMIZE=setting)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", str(TESTS), "--deselect", THIS],
        cwd=TESTS.parent, env=env, capture_output=True, text=True, timeout=1800)


def _run_of(setting: str) -> concurrent.futures.Future:
    """The rerun with ``setting``; all of them are started at the first call, as many at a time as
    there are cores (each rerun is one process), so the reruns take a fraction of their sum."""
    if not _RUNS:
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1))
        _RUNS.update({s: pool.submit(_rerun, s) for s in SETTINGS})
        pool.shutdown(wait=False)
    return _RUNS[setting]


@pytest.mark.skipif(not passes.OPTIMIZE, reason="this is a run with optimisations off")
@pytest.mark.parametrize("setting", SETTINGS)
def test_the_whole_corpus_passes_with_optimisations_off(setting):
    result = _run_of(setting).result()
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


def test_an_unknown_pass_name_is_refused():
    with pytest.raises(ValueError, match="unknown pass"):
        passes._disabled("-no-such-pass")
    assert passes._disabled("-cse,-dce") == {"cse", "dce"}
    assert passes._disabled("0") == set(passes.PASSES) and passes._disabled("1") == set()
