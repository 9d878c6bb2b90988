"""Shared pytest configuration: the tier marker of every test comes from its folder.

tests/unit -> ``unit``, tests/contract -> ``contract``, tests/integration -> ``integration``;
select tiers with ``-m``. Fixtures that need the real stack live in tests/integration/conftest.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
TIER_BY_FOLDER = {
    "unit": "unit",
    "contract": "contract",
    "integration": "integration",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        try:
            folder = Path(str(item.path)).resolve().relative_to(TESTS_DIR).parts[0]
        except (ValueError, IndexError):
            continue
        marker = TIER_BY_FOLDER.get(folder)
        if marker is not None and item.get_closest_marker(marker) is None:
            item.add_marker(getattr(pytest.mark, marker))
