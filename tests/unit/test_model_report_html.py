"""`loanwatch model report --out`: the HTML page's charts and tables hold the report's figures."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from loanwatch.early_warning import evaluate as ev
from loanwatch.early_warning.cli import model
from loanwatch.report.svg import nice_max
from loanwatch.simulate.cli import simulate

pytestmark = pytest.mark.unit

MODEL = Path(__file__).resolve().parents[2] / "config" / "model.json"
#: One chart each: ROC, KS, calibration, lift, capture, PSI by book, vintages, thresholds.
MODEL_CHARTS = 8


def held_out_logs(folder: Path) -> list[Path]:
    """Two small simulated books (seeds the shipped model was not trained on)."""
    logs = []
    for seed in (31, 41):
        out = folder / f"seed{seed}.jsonl"
        args = ["--loans", "300", "--days", "120", "--seed", str(seed), "--out", str(out)]
        result = CliRunner().invoke(simulate, [*args, "--no-progress"])
        assert result.exit_code == 0, result.output
        logs.append(out)
    return logs


def write_model_report(folder: Path) -> tuple[Path, str]:
    """The HTML page and the text report of the shipped model over :func:`held_out_logs`."""
    logs = held_out_logs(folder)
    page = folder / "model-report.html"
    args = ["report", "--model", str(MODEL), *map(str, logs), "--out", str(page)]
    result = CliRunner().invoke(model, args)
    assert result.exit_code == 0, result.output
    return page, result.output


def test_the_page_is_self_contained_and_holds_the_printed_figures(tmp_path: Path) -> None:
    page, text = write_model_report(tmp_path)
    doc = page.read_text(encoding="utf-8")
    assert doc.count('<svg class="chart"') == MODEL_CHARTS
    assert "<script" not in doc and "http" not in doc and "@media print" in doc
    auc = re.search(r"^AUC (\S+)$", text, re.M)
    lift = re.search(r"^top-decile lift (\S+)$", text, re.M)
    assert auc and lift
    assert f"ROC curve (AUC {auc[1]})" in doc and f"<b>{lift[1]}</b>" in doc
    # every decile row and every threshold row of the text report is in the page's tables
    deciles = re.findall(r"^\s+(\d+)\s+(\d+)" + r"\s+([\d.]+)" * 4 + "$", text, re.M)
    assert len(deciles) == 10
    for row in deciles:
        assert "".join(f"<td>{c}</td>" for c in row) in doc
    thresholds = re.findall(r"^\s+(0\.\d\d)\s+(\d+)\s+[\d.]+\s+[\d.]+\s+[\d.]+$", text, re.M)
    assert len(thresholds) == 4
    for threshold, alerts in thresholds:
        assert f"<td>{threshold}</td><td>{int(alerts):,}</td>" in doc
    # the ROC polyline runs from (0, 0) to (1, 1) in the plot's pixels
    roc = re.search(r'ROC curve.*?<polyline points="([^"]+)"', doc, re.S)
    assert roc
    xy = [tuple(map(float, p.split(","))) for p in roc[1].split()]
    assert len(xy) > 20 and xy[0][0] < xy[-1][0] and xy[0][1] > xy[-1][1]


def test_roc_curve_points() -> None:
    probs = [0.9, 0.8, 0.8, 0.3, 0.2]
    targets = [1, 1, 0, 0, 0]
    pts = ev.curve(probs, targets)
    assert [(c.population, c.bads, c.goods) for c in pts] == [
        (0.0, 0.0, 0.0),
        (0.2, 0.5, 0.0),
        (0.6, 1.0, 1 / 3),  # the tie at 0.8 is one cut
        (0.8, 1.0, 2 / 3),
        (1.0, 1.0, 1.0),
    ]
    assert max(c.bads - c.goods for c in pts) == pytest.approx(ev.ks(probs, targets))
    assert len(ev.curve([i / 1000 for i in range(1000)], [i % 2 for i in range(1000)], 50)) == 51


def test_axis_tops_are_round() -> None:
    assert [nice_max(v) for v in (0.654, 3.68, 4.24, 0.011, 0.0)] == pytest.approx(
        [0.8, 4.0, 6.0, 0.012, 1.0]
    )
