"""The routing core stays pure: no Kafka, Redis, HTTP, SMTP or clock module in its imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROUTING = Path(__file__).parents[2] / "loanwatch" / "routing"
PURE = [
    "alert",
    "routes",
    "schedules",
    "compliance",
    "templates",
    "episodes",
    "durations",
    "validate",
    "notify/plan",
    "wire",
    "status",
    "health",
]
FORBIDDEN = ("aiokafka", "redis", "aiohttp", "smtplib", "faust", "socket", "time", "asyncio")


@pytest.mark.parametrize("module", PURE)
def test_pure_module_imports_no_io(module: str) -> None:
    tree = ast.parse((ROUTING / f"{module}.py").read_text(encoding="utf-8"))
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    bad = [n for n in names if n.split(".")[0] in FORBIDDEN]
    assert bad == [], f"{module} imports {bad}"
    source = (ROUTING / f"{module}.py").read_text(encoding="utf-8")
    assert "datetime.now(" not in source and "date.today(" not in source
