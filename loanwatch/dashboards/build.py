"""Render every dashboard to the reviewed JSON files under ``dashboards/``.

The JSON in git is generated: edit the builders, run ``loanwatch dashboards build``, review
the diff. A unit test fails when the committed files differ from the builders' output.

This module must never write anywhere but the folder it is given.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from loanwatch.dashboards import collections, pipeline, portfolio
from loanwatch.dashboards.model import Json

# file name -> builder; the order is the order of `build` and `check` output.
BUILDERS: dict[str, Callable[[], Json]] = {
    "portfolio-quality.json": portfolio.build,
    "collections.json": collections.build,
    "pipeline-health.json": pipeline.build,
}

# loanwatch/dashboards/build.py -> the checkout's dashboards/ folder.
DEFAULT_DIR = Path(__file__).resolve().parents[2] / "dashboards"


def render(board: Json) -> str:
    """Stable text for review: two-space indent, keys in builder order, final newline."""
    return json.dumps(board, indent=2, ensure_ascii=False) + "\n"


def rendered() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    return {name: render(build()) for name, build in BUILDERS.items()}


def write_all(directory: Path = DEFAULT_DIR) -> list[Path]:
    """Write every dashboard into ``directory``; return the paths whose content changed."""
    directory.mkdir(parents=True, exist_ok=True)
    changed = []
    for name, text in rendered().items():
        path = directory / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            changed.append(path)
    return changed


def load_all(directory: Path = DEFAULT_DIR) -> dict[str, Json]:
    """The dashboards as committed: file name -> parsed JSON."""
    return {path.name: json.loads(path.read_text()) for path in sorted(directory.glob("*.json"))}
