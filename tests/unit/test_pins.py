"""Dependencies are pinned to exact versions, and the installed ones are those versions.

The worker touches Faust's and aiokafka's internals (agents/faust_fixes.py, agents/bulk.py):
an upgrade must be a deliberate change of a pin, re-tested, never a silent resolution.
"""

from __future__ import annotations

import importlib.metadata as md
import re
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def requirements() -> list[str]:
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    return [*project["dependencies"], *project["optional-dependencies"]["dev"]]


def test_every_dependency_is_pinned_exactly_and_installed_at_that_version() -> None:
    for req in requirements():
        found = re.fullmatch(r"([A-Za-z0-9_.-]+)==([A-Za-z0-9_.+-]+)", req)
        assert found, f"{req!r} is not pinned to one exact version"
        name, version = found.groups()
        assert md.version(name) == version, f"{name} installed {md.version(name)}, pinned {version}"
