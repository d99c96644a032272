"""Rewrite the ``text`` blocks of docs/tutorial.md with what the ``python`` block before each prints.

    python3 scripts/update_tutorial.py

The tutorial runs as one script, each block at its own line (``tests/test_docs.py``), so the
line numbers in the generated code it shows are the tutorial's: after an edit that moves lines,
run this (it reruns until the output no longer moves) and review the diff.
"""

from __future__ import annotations

import importlib.util
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
TUTORIAL = ROOT / "docs" / "tutorial.md"


def _test_docs():
    spec = importlib.util.spec_from_file_location("test_docs", ROOT / "tests" / "test_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def updated(text: str, docs) -> str:
    """``text`` with each shown output replaced by what its block prints."""
    path = pathlib.Path(tempfile.mkdtemp()) / "tutorial.py"
    script, expected = docs.script_of(text)
    path.write_text(script)
    done = subprocess.run([sys.executable, str(path)], cwd=path.parent, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    printed = docs.printed_by_block(done.stdout, len(expected))
    lines, found, edits, n = text.splitlines(), docs.blocks(text), [], 0
    for i, (language, _, _) in enumerate(found):
        if language != "python":
            continue
        if expected[n] is not None:
            _, start, end = found[i + 1]
            edits.append((start, end, printed[n].splitlines()))
        n += 1
    for start, end, new in reversed(edits):
        lines[start:end] = new
    return "\n".join(lines) + "\n"


def main() -> int:
    docs = _test_docs()
    text = TUTORIAL.read_text()
    for _ in range(5):
        new = updated(text, docs)
        if new == text:
            break
        text = new
    TUTORIAL.write_text(text)
    print(f"wrote {TUTORIAL.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
