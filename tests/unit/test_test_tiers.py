"""Every test tier declared in pyproject.toml is a folder of tests, and every folder a tier.

A declared marker with no test behind it promises coverage that does not exist.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from tests.conftest import TIER_BY_FOLDER

ROOT = Path(__file__).resolve().parents[2]


def _declared_markers() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    markers = config["tool"]["pytest"]["ini_options"]["markers"]
    return {line.split(":", 1)[0].strip() for line in markers}


def test_declared_markers_are_the_folder_tiers() -> None:
    assert _declared_markers() == set(TIER_BY_FOLDER.values())


def test_every_tier_folder_holds_tests() -> None:
    for folder in TIER_BY_FOLDER:
        tests = sorted((ROOT / "tests" / folder).glob("test_*.py"))
        assert tests, f"tier {folder!r} is declared but tests/{folder}/ holds no test"
