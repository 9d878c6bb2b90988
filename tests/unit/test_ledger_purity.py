"""The engine is a pure core: no I/O, framework or wall-clock imports in loanwatch/ledger/."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

LEDGER = Path(__file__).resolve().parents[2] / "loanwatch" / "ledger"
FORBIDDEN = (
    "faust",
    "aiokafka",
    "kafka",
    "redis",
    "prometheus_client",
    "aiohttp",
    "socket",
    "loanwatch.agents",
    "loanwatch.streams",
    "loanwatch.routing",
    "loanwatch.metrics",
)


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted(LEDGER.glob("*.py")), ids=lambda p: p.name)
def test_ledger_module_imports_no_io(path: Path) -> None:
    bad = {n for n in _imports(path) if n.split(".")[0] in FORBIDDEN or n.startswith(FORBIDDEN)}
    assert bad == set()


@pytest.mark.parametrize("path", sorted(LEDGER.glob("*.py")), ids=lambda p: p.name)
def test_ledger_never_reads_the_wall_clock(path: Path) -> None:
    text = path.read_text()
    for call in ("datetime.now(", "date.today(", "time.time(", "os.environ"):
        assert call not in text, f"{path.name} calls {call}"
