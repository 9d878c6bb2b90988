"""The report as one self-contained HTML page: tables and inline SVG charts, printable.

No script, no external file, no web font: the page opens offline and prints to PDF from any
browser. The charts, tables and style are :mod:`loanwatch.report.svg`'s, shared with the model
report (plain SVG, no plotting dependency).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal

from loanwatch.ledger.money import format_money
from loanwatch.metrics.portfolio import CLASSES
from loanwatch.report import svg
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


def _money(value: svg.Number) -> str:
    return format_money(Decimal(value))


def line(title: str, points: Sequence[tuple[str, Decimal | None]]) -> str:
    """A rate by business day (0..max), one dot per day that has it."""
    known = [(i, k, v) for i, (k, v) in enumerate(points) if v is not None]
    if not known:
        return f"<h3>{svg.esc(title)}</h3><p>no business day with this rate yet</p>"
    top = svg.nice_max(float(max(v for _, _, v in known)))
    last = max(len(points) - 1, 1)
    series = svg.Series(
        title,
        [(float(i), float(v)) for i, _, v in known],
        "#1565c0",
        labels=[f"{k}: {_pct(v)}" for _, k, v in known],
    )
    ticks = [(0.0, points[0][0]), (float(last), points[-1][0])]
    return svg.plot(title, [series], svg.Axes(last, top, ticks, lambda v: f"{v * 100:.1f} %"))


def _counts_table(kind: str, cells: Mapping[str, Cell]) -> str:
    rows = [[k, str(c.loans), format_money(c.outstanding)] for k, c in cells.items()]
    return svg.table([kind, "loans", "outstanding principal"], rows)


def _cells(cells: dict[tuple[str, str], Cell], dim: str) -> str:
    names = sorted({k for k, _ in cells})
    body = []
    for name in names:
        row = [name]
        for c in CLASSES:
            cell = cells.get((name, c), Cell(0, Decimal(0)))
            row.append(f"{cell.loans} / {format_money(cell.outstanding)}")
        body.append(row)
    return svg.table([dim, *CLASSES], body)


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
        svg.table(
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
    body = f"""<h1>Portfolio report as of {f.as_of.isoformat()}</h1>
<p class="prov">{svg.esc(provenance)}</p>
<section><h2>Key figures</h2>
<span class="kpi">active loans<b>{f.loans}</b></span>
<span class="kpi">outstanding principal<b>{format_money(f.outstanding)}</b></span>
<span class="kpi">PAR30<b>{_pct(f.par30)}</b></span>
<span class="kpi">PAR90<b>{_pct(f.par90)}</b></span>
<span class="kpi">NPL ratio<b>{_pct(f.npl)}</b></span>
<span class="kpi">cure rate (day)<b>{_pct(day.cure_rate if day else None)}</b></span>
</section>
<section><h2>Five-tier classification</h2>
{svg.bars("Outstanding principal by class", classes, _money)}
{_counts_table("class", f.by_class)}
<h3>By product (loans / outstanding)</h3>{_cells(f.by_product, "product")}
<h3>By region (loans / outstanding)</h3>{_cells(f.by_region, "region")}
</section>
<section><h2>IFRS 9 stages</h2>
{svg.bars("Outstanding principal by stage", stages, _money)}
{_counts_table("stage", f.by_stage)}
</section>
<section><h2>Class migration {f.month_start.isoformat()} → {f.as_of.isoformat()} (loans)</h2>
{svg.table(["start / end", *cols_to], matrix)}
</section>
<section><h2>Roll and cure rates of business day {f.as_of.isoformat()}</h2>
{rolls}
{line("Cure rate by business day", series)}
{line("Roll rate M0 → M1 by business day", forward)}
</section>"""
    return svg.page(f"loanwatch portfolio report {f.as_of.isoformat()}", body)
