"""scripts/test_pythons.py picks the oldest and the newest Python, and skips with a note what
is not there (the CI runs it after the suite: it must not fail for a missing interpreter)."""

import importlib.util
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _script():
    spec = importlib.util.spec_from_file_location("test_pythons", ROOT / "scripts" / "test_pythons.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SCRIPT = _script()
THIS = sys.version_info[:2]


def test_the_oldest_and_the_newest_are_picked():
    found = {(3, 9): "py39", (3, 10): "py310", (3, 13): "py313", THIS: "this"}
    picked = SCRIPT.picked(found)
    ends = [v for v in (min(found), max(found)) if v != THIS]
    assert picked == [(v, found[v]) for v in ends]


def test_no_interpreter_is_a_note_not_a_failure(capsys):
    assert SCRIPT.picked({}) == []
    assert "note: no Python 3.9+ interpreter found" in capsys.readouterr().out


def test_a_missing_oldest_version_and_this_interpreter_are_noted(capsys):
    assert SCRIPT.picked({THIS: "this"}) == []
    out = capsys.readouterr().out
    assert "same version as this interpreter" in out
    if THIS > (3, 9):
        assert "3.9 (the oldest supported) is not available" in out


def test_an_interpreter_that_does_not_run_is_not_a_version():
    assert SCRIPT.version_of(str(ROOT / "no-such-python")) is None
    assert SCRIPT.version_of(sys.executable) == THIS


def test_only_a_missing_version_is_skipped_with_a_note(capsys):
    assert SCRIPT.main(["--only", "3.1", "--list"]) == 0
    assert "note: Python 3.1 is not available" in capsys.readouterr().out
