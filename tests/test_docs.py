"""The tutorial's examples run and print what it shows; the docs index lists every page.

docs/tutorial.md is run as one script, its ``python`` blocks in order, each at the lines it
has in the tutorial (so that the ``# line N:`` comments of generated code it prints point into
the tutorial), and what each block prints is compared with the ``text`` block after it."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
MARK = "@@ end of block {} @@"
FENCE = re.compile(r"^```(\w*)\s*$")


def blocks(text: str) -> list[tuple[str, int, int]]:
    """The fenced blocks of ``text``: (language, first line, line after the last), 0-based."""
    found, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m and m.group(1):
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            found.append((m.group(1), i + 1, end))
            i = end
        i += 1
    return found


def script_of(text: str) -> tuple[str, list[str | None]]:
    """The tutorial as a script (its python lines where they are, blank lines elsewhere, and a
    mark printed at the end of each python block), and the expected output of each block."""
    lines = text.splitlines()
    script = [""] * len(lines)
    expected: list[str | None] = []
    found = blocks(text)
    for n, (language, start, end) in enumerate(found):
        if language != "python":
            continue
        script[start:end] = lines[start:end]
        script[end] = f"print({MARK.format(len(expected))!r})"
        after = found[n + 1] if n + 1 < len(found) else None
        shows = after is not None and after[0] == "text" and not any(lines[end + 1:after[1] - 1])
        expected.append("\n".join(lines[after[1]:after[2]]) if shows else None)
    return "\n".join(script) + "\n", expected


def run_tutorial(tmp_path: pathlib.Path) -> subprocess.CompletedProcess:
    script, _ = script_of((DOCS / "tutorial.md").read_text())
    path = tmp_path / "tutorial.py"
    path.write_text(script)
    return subprocess.run([sys.executable, str(path)], cwd=tmp_path, capture_output=True, text=True, timeout=600)


def printed_by_block(stdout: str, count: int) -> list[str]:
    outputs, rest = [], stdout
    for n in range(count):
        before, _, rest = rest.partition(MARK.format(n) + "\n")
        outputs.append(before.rstrip("\n"))
    return outputs


def test_every_tutorial_example_runs_and_prints_what_the_tutorial_shows(tmp_path):
    _, expected = script_of((DOCS / "tutorial.md").read_text())
    done = run_tutorial(tmp_path)
    assert done.returncode == 0, done.stderr
    for n, (printed, shown) in enumerate(zip(printed_by_block(done.stdout, len(expected)), expected)):
        if shown is not None:
            assert printed == shown, f"python block {n + 1} of docs/tutorial.md printed\n{printed}"


def test_the_tutorial_has_examples_and_they_are_python():
    text = (DOCS / "tutorial.md").read_text()
    languages = [language for language, _, _ in blocks(text)]
    assert languages.count("python") >= 8
    assert set(languages) <= {"python", "text", "sh"}


def test_the_docs_index_lists_every_page():
    index = (DOCS / "README.md").read_text()
    listed = set(re.findall(r"\(([\w-]+\.md)\)", index))
    pages = {p.name for p in DOCS.glob("*.md") if p.name != "README.md"}
    assert pages <= listed, f"docs/README.md does not list {sorted(pages - listed)}"


def test_no_page_links_outside_the_repository():
    for page in [ROOT / "README.md", *DOCS.glob("*.md")]:
        text = page.read_text()
        assert "http://" not in text and "https://" not in text, page.name
        assert "](../" not in text, page.name
