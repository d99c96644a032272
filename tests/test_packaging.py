"""The distribution is published as ``symdiff-ad`` (``symdiff`` on PyPI is an unrelated
project, which ``pip install -U symdiff`` would put in its place); the import name is symdiff."""

import importlib.metadata
import pathlib
import re

import pytest

import symdiff

ROOT = pathlib.Path(__file__).resolve().parent.parent
DISTRIBUTION = "symdiff-ad"


def _project_field(name: str) -> str:
    text = (ROOT / "pyproject.toml").read_text()
    return re.search(rf'^{name} = "([^"]+)"', text, re.M).group(1)


def test_the_distribution_name_is_not_the_unrelated_projects():
    assert _project_field("name") == DISTRIBUTION
    assert _project_field("version") == symdiff.__version__


def test_the_installed_distribution_is_this_version():
    try:
        version = importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(f"{DISTRIBUTION} is not installed (symdiff is imported from the source tree)")
    assert version == symdiff.__version__


def test_the_readme_installs_and_names_the_distribution():
    readme = (ROOT / "README.md").read_text()
    assert f"`{DISTRIBUTION}`" in readme
