"""The report as one self-contained HTML page: tables and inline SVG charts, printable.

No script, no external file, no web font: the page opens offline and prints to PDF from any
browser (``@media print`` keeps each section on one page where it fits). The charts are
plain SVG written here, as the backtest report's are (no plotting dependency).
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from decimal import Decimal

from loanwatch.ledger.money import format_money
from loanwatch.metrics.portfolio import CLASSES
from loanwatch.report.figures import CLOSED, NEW, Cell, Figures

COLOURS = {
    "normal": "#2e7d32",
    "special_mention": "#f9a825",
    "substandard": "#ef6c00",
    "doubtful": "#c62828",
    "loss": "#4a148c",
    "1": "#2e7d32",
    "2": "#f9a825",
    "3": "#c62828",
}


def _pct(value: Decimal | None) -> str:
    return "n/a" if value is None else f"{value * 100:.2f} %"


def bars(title: str, items: Sequence[tuple[str, Decimal, str]]) -> str:
    """Horizontal bars (label, value, colour), the value printed beside each."""
    top = max((v for _, v, _ in items), default=Decimal(0)) or Decimal(1)
    bar, label_w, width = 22, 150, 420
    parts = [
        f'<svg class="chart" width="{label_w + width + 120}" '
        f'height="{len(items) * bar + 8}" role="img">'
    ]
    for i, (label, value, colour) in enumerate(items):
        y = 4 + i * bar
        w = float(value / top) * width
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">{html.escape(label)}</text>'
            f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar - 4}" fill="{colour}"/>'
            f'<text x="{label_w + w + 4:.1f}" y="{y + 15}">'
            f"{html.escape(format_money(value))}</text>"
        )
    parts.append("</svg>")
    return f"<h3>{html.escape(title)}</h3>" + "".join(parts)


def line(title: str, points: Sequence[tuple[str, Decimal | None]]) -> str:
    """A rate by business day (0..max), one dot per day that has it."""
    known = [(k, v) for k, v in points if v is not None]
    if not known:
        return f"<h3>{html.escape(title)}</h3><p>no business day with this rate yet</p>"
    top = max(v for _, v in known) or Decimal(1)
    w, h, left = 560, 160, 50
    step = w / max(len(points) - 1, 1)
    parts = [f'<svg class="chart" width="{w + left + 60}" height="{h + 40}" role="img">']
    parts.append(f'<line x1="{left}" y1="{h + 5}" x2="{left + w}" y2="{h + 5}" stroke="#888"/>')
    parts.append(f'<text x="{left - 4}" y="12" text-anchor="end">{_pct(top)}</text>')
    xy = []
    for i, (label, value) in enumerate(points):
        x = left + i * step
        if value is not None:
            y = 5 + h - float(value / top) * h
            xy.append(f"{x:.1f},{y:.1f}")
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#1565c0">'
                f"<title>{label}: {_pct(value)}</title></circle>"
            )
        if i == 0 or i == len(points) - 1:
            parts.append(f'<text x="{x:.1f}" y="{h + 22}" text-anchor="middle">{label}</text>')
    parts.append(f'<polyline points="{" ".join(xy)}" fill="none" stroke="#1565c0"/>')
    parts.append("</svg>")
    return f"<h3>{html.escape(title)}</h3>" + "".join(parts)


def _table(head: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in body
    )
    return f"<table><thead><tr>{th}</tr></thead><tbody>{rows}</tbody></table>"


def _counts_table(kind: str, cells: Mapping[str, Cell]) -> str:
    rows = [[k, str(c.loans), format_money(c.outstanding)] for k, c in cells.items()]
    return _table([kind, "loans", "outstanding principal"], rows)


def _cells(cells: dict[tuple[str, str], Cell], dim: str) -> str:
    names = sorted({k for k, _ in cells})
    body = []
    for name in names:
        row = [name]
        for c in CLASSES:
            cell = cells.get((name, c), Cell(0, Decimal(0)))
            row.append(f"{cell.loans} / {format_money(cell.outstanding)}")
        body.append(row)
    return _table([dim, *CLASSES], body)


def page(f: Figures, provenance: str) -> str:
    classes = [(k, c.outstanding, COLOURS.get(k, "#555")) for k, c in f.by_class.items()]
    stages = [(f"stage {k}", c.outstanding, COLOURS.get(k, "#555")) for k, c in f.by_stage.items()]
    rows_from = [*CLASSES, NEW]
    cols_to = [*CLASSES, CLOSED]
    matrix = [
        [a, *(str(f.migration[(a, b)].loans) if (a, b) in f.migration else "0" for b in cols_to)]
        for a in rows_from
    ]
    day = f.day
    rolls = (
        _table(
            ["from", "to", "loans at start", "moved", "roll rate"],
            [
                [a, b, str(day.at_start.get(a, 0)), str(n), _pct(day.rolls.get((a, b)))]
                for (a, b), n in sorted(day.transitions.items())
            ],
        )
        if day is not None and day.transitions
        else "<p>no loan changed bucket on this day</p>"
        if day is not None
        else "<p>no flows for this day (a partition did not begin it)</p>"
    )
    series = [(d.day.isoformat(), d.cure_rate) for d in f.days]
    forward = [(d.day.isoformat(), d.rolls.get(("M0", "M1"))) for d in f.days]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>loanwatch portfolio report {f.as_of.isoformat()}</title>
<style>
body {{ font-family: sans-serif; margin: 24px; color: #222; }}
h1 {{ font-size: 20px; }} h2 {{ font-size: 16px; margin-top: 26px; border-bottom: 1px solid #ccc; }}
h3 {{ font-size: 14px; }} svg text {{ font-size: 12px; }}
table {{ border-collapse: collapse; font-size: 12px; margin: 6px 0; }}
td, th {{ border: 1px solid #ccc; padding: 2px 6px; }} td:not(:first-child) {{ text-align: right; }}
.kpi {{ display: inline-block; margin-right: 28px; }} .kpi b {{ font-size: 18px; display: block; }}
.prov {{ font-size: 11px; color: #555; }}
@media print {{
  body {{ margin: 10mm; }} section {{ break-inside: avoid; page-break-inside: avoid; }}
  h2 {{ break-after: avoid; }} @page {{ size: A4; margin: 12mm; }}
}}
</style></head><body>
<h1>Portfolio report as of {f.as_of.isoformat()}</h1>
<p class="prov">{html.escape(provenance)}</p>
<section><h2>Key figures</h2>
<span class="kpi">active loans<b>{f.loans}</b></span>
<span class="kpi">outstanding principal<b>{format_money(f.outstanding)}</b></span>
<span class="kpi">PAR30<b>{_pct(f.par30)}</b></span>
<span class="kpi">PAR90<b>{_pct(f.par90)}</b></span>
<span class="kpi">NPL ratio<b>{_pct(f.npl)}</b></span>
<span class="kpi">cure rate (day)<b>{_pct(day.cure_rate if day else None)}</b></span>
</section>
<section><h2>Five-tier classification</h2>
{bars("Outstanding principal by class", classes)}
{_counts_table("class", f.by_class)}
<h3>By product (loans / outstanding)</h3>{_cells(f.by_product, "product")}
<h3>By region (loans / outstanding)</h3>{_cells(f.by_region, "region")}
</section>
<section><h2>IFRS 9 stages</h2>
{bars("Outstanding principal by stage", stages)}
{_counts_table("stage", f.by_stage)}
</section>
<section><h2>Class migration {f.month_start.isoformat()} → {f.as_of.isoformat()} (loans)</h2>
{_table(["start / end", *cols_to], matrix)}
</section>
<section><h2>Roll and cure rates of business day {f.as_of.isoformat()}</h2>
{rolls}
{line("Cure rate by business day", series)}
{line("Roll rate M0 → M1 by business day", forward)}
</section>
</body></html>
"""
