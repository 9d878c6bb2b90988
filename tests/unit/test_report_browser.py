"""The HTML reports opened in headless Chromium: every chart is laid out and drawn.

Issue 14 (portfolio report) and issue 17 (model report). The page is rendered by the real
browser; each ``<svg class="chart">``'s box is cut out of the screenshot and must hold drawn
marks (rects, lines, dots in the DOM) and coloured pixels (the data: axes and text are grey), so
an empty, collapsed or off-page chart fails. Skips, with the reason, without ``chromium``.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from loanwatch.audit.archive import write_archive
from loanwatch.report.cli import report

from ..audit_log import audited
from ..browser import WIDTH, Rendered, chromium, coloured_pixels, distinct_colours, render
from .test_model_report_html import MODEL_CHARTS, write_model_report

pytestmark = pytest.mark.unit

LOG = Path(__file__).resolve().parents[1] / "fixtures" / "scenarios" / "portfolio-101"
PORTFOLIO_CHARTS = 4  # classes, stages, cure rate, roll rate M0 -> M1


def _check(page: Rendered, charts: int) -> None:
    from PIL import Image

    assert len(page.charts) == charts
    with Image.open(page.screenshot) as img:
        shot = img.convert("RGB")
    assert shot.size == (WIDTH, page.height)
    for c in page.charts:
        left, top, right, bottom = c.box
        assert right - left > 200 and bottom - top > 40, f"{c.title}: collapsed {c.box}"
        assert right <= WIDTH and bottom <= page.height, f"{c.title}: off the page {c.box}"
        assert c.marks > 0, f"{c.title}: nothing drawn"
        region = shot.crop(c.box)
        colours = distinct_colours(region)
        drawn = coloured_pixels(region)
        # a chart's data covers at least ~0.3 % of its box in colour, with many shades
        assert drawn >= (right - left) * (bottom - top) // 300, f"{c.title}: {drawn} px drawn"
        assert colours >= 8, f"{c.title}: {colours} colours"


def test_the_portfolio_report_draws_every_chart(tmp_path: Path) -> None:
    chromium()
    lines = (LOG / "events.jsonl").read_bytes().splitlines()
    chains, inputs = audited(lines)
    write_archive(tmp_path / "archive", chains, inputs)
    out = tmp_path / "out"
    args = ["portfolio", "--as-of", date(2026, 6, 15).isoformat(), "--archive",
            str(tmp_path / "archive"), "--out-dir", str(out)]  # fmt: skip
    result = CliRunner().invoke(report, args)
    assert result.exit_code == 0, result.output
    _check(render(out / "report.html", tmp_path), PORTFOLIO_CHARTS)


def test_the_model_report_draws_every_chart(tmp_path: Path) -> None:
    chromium()
    page, _ = write_model_report(tmp_path)
    _check(render(page, tmp_path), MODEL_CHARTS)
