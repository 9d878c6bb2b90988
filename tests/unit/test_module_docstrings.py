"""Module docstrings say what a module is for and what it must never do, not its history.

Incidents, measurements and commit hashes belong in commit messages and docs/benchmarks.md.
Checked for the packages outside the core (ledger, agents, replay, streams, routing keep theirs).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "loanwatch"
CHECKED = ["console", "dashboards", "metrics", "simulate", "stack"]
MODULES = sorted(
    [*PACKAGE.glob("*.py"), *(p for d in CHECKED for p in (PACKAGE / d).rglob("*.py"))]
)
COMMIT = re.compile(r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{7,40}\b")
MEASURED = re.compile(r"\d\s?%|\bmeasured\b|\bthis session\b|\bused to\b", re.IGNORECASE)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_docstring_states_purpose_without_history(path: Path) -> None:
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    assert doc, f"{path.name}: no module docstring"
    assert not COMMIT.search(doc), f"{path.name}: a commit hash in the docstring"
    assert not MEASURED.search(doc), f"{path.name}: a measurement or story in the docstring"
