"""Shared test configuration."""

import pytest

from symdiff import passes


def pytest_collection_modifyitems(config, items):
    """With SYMDIFF_OPTIMIZE=0, tests about the optimised source do not apply."""
    if passes.OPTIMIZE:
        return
    skip = pytest.mark.skip(reason="checks optimised generated code; optimisations are off")
    for item in items:
        if "optimized_source" in item.keywords:
            item.add_marker(skip)
