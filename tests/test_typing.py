"""The public API is typed (symdiff ships ``py.typed``): a user's script calling it passes
``mypy --strict``, and misuses of it are reported (skipped where mypy is not installed)."""

import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
TYPING = ROOT / "tests" / "typing"

pytest.importorskip("mypy")


def _mypy(path: pathlib.Path) -> subprocess.CompletedProcess:
    # --follow-imports=silent: the user's script is checked strictly against symdiff's signatures,
    # while symdiff's own modules are not held to --strict.
    return subprocess.run([sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent", "--no-incremental",
                           "--python-version", f"{sys.version_info.major}.{sys.version_info.minor}", str(path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_package_declares_itself_typed():
    assert (ROOT / "symdiff" / "py.typed").exists()
    assert re.search(r'symdiff = \["py.typed"\]', (ROOT / "pyproject.toml").read_text())


def test_a_user_script_passes_mypy_strict():
    done = _mypy(TYPING / "user_script.py")
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_reports_each_misuse_of_the_api():
    path = TYPING / "misuse.py"
    expected = {i for i, line in enumerate(path.read_text().splitlines(), 1) if line.endswith("# error")}
    done = _mypy(path)
    reported = {int(m.group(1)) for m in re.finditer(rf"{re.escape(path.name)}:(\d+): error", done.stdout)}
    assert reported == expected, done.stdout
