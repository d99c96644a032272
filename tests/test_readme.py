"""The README's map of the code matches the code."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _listed_modules() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## How it works", 1)[1]
    block = section.split("```", 2)[1]
    return sorted(m.group(1) for m in re.finditer(r"^\s+(\w+\.py)\s", block, re.M))


def test_how_it_works_lists_every_module_of_the_package():
    modules = sorted(p.name for p in (ROOT / "symdiff").glob("*.py") if p.name != "__init__.py")
    assert _listed_modules() == modules
