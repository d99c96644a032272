"""docs/api.md is generated from the docstrings by scripts/gen_api_docs.py, and covers the API."""

import importlib.util
import pathlib

import symdiff

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _generator():
    spec = importlib.util.spec_from_file_location("gen_api_docs", ROOT / "scripts" / "gen_api_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_api_docs_are_up_to_date():
    current = (ROOT / "docs" / "api.md").read_text()
    assert current == _generator().render(), "docs/api.md is stale: run python3 scripts/gen_api_docs.py"


def test_api_docs_have_a_section_for_every_public_name():
    text = (ROOT / "docs" / "api.md").read_text()
    for name in symdiff.__all__:
        assert f"### `{name}`" in text, name
