"""Run the test suite on the oldest and the newest Python 3 available (3.9 or later).

    python3 scripts/test_pythons.py            # oldest and newest found: a venv each, the suite in each
    python3 scripts/test_pythons.py --list     # only say which interpreters were found
    python3 scripts/test_pythons.py --full     # also the reruns with the optimisations off
    python3 scripts/test_pythons.py --only 3.9 # just that version, if it is available

Interpreters are looked for among pyenv's versions (``$PYENV_ROOT/versions/3.X*``) and as
``python3.X`` on ``PATH``. For each of the two picked, a fresh virtual environment gets the
project with its ``test`` extra (``pip install -e '.[test]'``), then runs the default suite
without ``tests/test_passes_off.py``: that file reruns the whole suite once per optimisation
setting, which the README's CI block already does on the CI's own Python, and doing it again
twice would triple the CI's time (about twenty minutes each on two cores, against ten for the
rest of the suite). ``--full`` runs it too.

An interpreter that is missing (no Python 3.9+ at all, or only one version) is skipped with a
note, and so is one of the same version as the Python running this script, whose suite the
CI block runs on its own. Exits 1 when a suite (or an installation) fails.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
OLDEST_SUPPORTED = (3, 9)  # requires-python in pyproject.toml
SUITE = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"]
SLOW = ["--ignore=tests/test_passes_off.py"]


def version_of(executable: str) -> tuple[int, int] | None:
    """The (major, minor) version of the interpreter ``executable``, or None where it does not run."""
    try:
        done = subprocess.run([executable, "-c", "import sys; print(*sys.version_info[:2])"],
                              capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    parts = done.stdout.split()
    if done.returncode != 0 or len(parts) != 2:
        return None
    return int(parts[0]), int(parts[1])


def candidates() -> list[str]:
    """Interpreters that may be Python 3: pyenv's versions, then ``python3.X`` on PATH."""
    found = []
    root = os.environ.get("PYENV_ROOT") or str(pathlib.Path.home() / ".pyenv")
    for path in sorted(pathlib.Path(root, "versions").glob("3.*/bin/python3")):
        if re.fullmatch(r"3\.\d+(\.\d+)?", path.parent.parent.name):
            found.append(str(path))
    for minor in range(OLDEST_SUPPORTED[1], 40):
        path = shutil.which(f"python3.{minor}")
        if path:
            found.append(path)
    return found


def interpreters() -> dict[tuple[int, int], str]:
    """One working interpreter per Python version from 3.9 on, by version."""
    by_version: dict[tuple[int, int], str] = {}
    for executable in candidates():
        version = version_of(executable)
        if version is not None and version >= OLDEST_SUPPORTED and version not in by_version:
            by_version[version] = executable
    return by_version


def picked(by_version: dict[tuple[int, int], str]) -> list[tuple[tuple[int, int], str]]:
    """The oldest and the newest of ``by_version`` (one, if there is one version), with notes
    printed for what is missing or left to the CI's own run."""
    if not by_version:
        print("note: no Python 3.9+ interpreter found besides this one; nothing to run")
        return []
    versions = sorted(by_version)
    ends = [versions[0], versions[-1]] if len(versions) > 1 else versions
    if versions[0] > OLDEST_SUPPORTED:
        print(f"note: Python {_text(OLDEST_SUPPORTED)} (the oldest supported) is not available; "
              f"the oldest found is {_text(versions[0])}")
    if len(versions) == 1:
        print(f"note: only Python {_text(versions[0])} is available; no second interpreter to run")
    chosen = []
    for version in ends:
        if version == sys.version_info[:2]:
            print(f"note: skipping Python {_text(version)}: the same version as this interpreter, "
                  "on which the CI runs the suite itself")
            continue
        chosen.append((version, by_version[version]))
    return chosen


def _text(version: tuple[int, int]) -> str:
    return ".".join(map(str, version))


def run_suite(version: tuple[int, int], executable: str, full: bool) -> bool:
    """Make a venv with ``executable``, install the project with its test extra, run the suite."""
    print(f"== Python {_text(version)} ({executable})", flush=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    with tempfile.TemporaryDirectory(prefix=f"symdiff-py{version[0]}{version[1]}-") as scratch:
        venv = pathlib.Path(scratch, "venv")
        python = str(venv / "bin" / "python")
        steps = [
            [executable, "-m", "venv", str(venv)],
            [python, "-m", "pip", "install", "-q", "--upgrade", "pip"],
            [python, "-m", "pip", "install", "-q", "-e", ".[test]"],
        ]
        start = time.monotonic()
        for step in steps:
            if subprocess.run(step, cwd=ROOT, env=env).returncode != 0:
                print(f"FAILED: {' '.join(step)}", flush=True)
                return False
        installed = time.monotonic()
        print(f"   installed in {installed - start:.0f} s; running the suite", flush=True)
        done = subprocess.run([python, *SUITE, *([] if full else SLOW)], cwd=ROOT, env=env)
        print(f"   suite on Python {_text(version)}: {'passed' if done.returncode == 0 else 'FAILED'} "
              f"in {time.monotonic() - installed:.0f} s", flush=True)
        return done.returncode == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="only list the interpreters found and picked")
    parser.add_argument("--full", action="store_true", help="also run tests/test_passes_off.py")
    parser.add_argument("--only", metavar="X.Y", help="run this Python version only (skipped with a note if absent)")
    args = parser.parse_args(argv)
    by_version = interpreters()
    for version, executable in sorted(by_version.items()):
        print(f"found Python {_text(version)}: {executable}")
    if args.only:
        wanted = tuple(int(part) for part in args.only.split("."))
        chosen = [(wanted, by_version[wanted])] if wanted in by_version else []
        if not chosen:
            print(f"note: Python {args.only} is not available (or older than 3.9); skipped")
    else:
        chosen = picked(by_version)
    if args.list:
        for version, executable in chosen:
            print(f"would run Python {_text(version)}: {executable}")
        return 0
    results = [run_suite(version, executable, args.full) for version, executable in chosen]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
