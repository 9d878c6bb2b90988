"""The closed-loop comparison's outputs: a text table and the backtest page's charts.

Pure formatting of :class:`loanwatch.backtest.closed.Comparison`: inline SVG, no script, so the
page stays one self-contained file (checked in headless Chromium, docs/strategies.md).
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from loanwatch.backtest.bootstrap import Interval
from loanwatch.backtest.closed import Comparison
from loanwatch.backtest.outcomes import KPIS
from loanwatch.backtest.report import COLOURS


def _cell(value: Interval | None, kpi: str) -> str:
    if value is None:
        return "-"
    return value.text(0 if kpi == "recovered" else 4 if "rate" in kpi or kpi == "PAR30" else 2)


def text_table(cmp: Comparison) -> str:
    head = ["group", "KPI", *cmp.names, "difference (last - first)"]
    body = [
        [r.group, r.kpi, *(_cell(v, r.kpi) for v in r.values), _cell(r.difference, r.kpi)]
        for r in cmp.rows
    ]
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(head, widths, strict=True))]
    lines.append("-" * len(lines[0]))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in body]
    note = f"mean over seeds {cmp.seeds[0]}..{cmp.seeds[-1]} [95 % bootstrap interval]"
    return "\n".join([note, *lines])


def _interval_chart(title: str, labels: Sequence[str], cells: Sequence[Interval | None]) -> str:
    """Horizontal bars (mean) with a whisker for the interval; a zero line when it is crossed."""
    shown = [(lbl, c) for lbl, c in zip(labels, cells, strict=True) if c is not None]
    if not shown:
        return ""
    lo = min(0.0, *(c.low for _, c in shown))
    hi = max(0.0, *(c.high for _, c in shown))
    span = (hi - lo) or 1.0
    label_w, width, bar = 300, 420, 18

    def x(v: float) -> float:
        return label_w + width * (v - lo) / span

    parts = [f'<svg width="{label_w + width + 200}" height="{len(shown) * (bar + 8) + 10}">']
    parts.append(f'<line x1="{x(0):.1f}" y1="0" x2="{x(0):.1f}" y2="{len(shown) * (bar + 8) + 10}"'
                 ' stroke="#888"/>')  # fmt: skip
    for i, (label, c) in enumerate(shown):
        y = 5 + i * (bar + 8)
        left, right = sorted((x(0), x(c.mean)))
        colour = COLOURS[i % len(COLOURS)]
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end">{html.escape(label)}</text>'
            f'<rect x="{left:.1f}" y="{y}" width="{right - left:.1f}" height="{bar}" '
            f'fill="{colour}" opacity="0.75"/>'
            f'<line x1="{x(c.low):.1f}" y1="{y + bar / 2}" x2="{x(c.high):.1f}" '
            f'y2="{y + bar / 2}" stroke="#222" stroke-width="2"/>'
            f'<line x1="{x(c.low):.1f}" y1="{y + 3}" x2="{x(c.low):.1f}" y2="{y + bar - 3}" '
            f'stroke="#222" stroke-width="2"/>'
            f'<line x1="{x(c.high):.1f}" y1="{y + 3}" x2="{x(c.high):.1f}" y2="{y + bar - 3}" '
            f'stroke="#222" stroke-width="2"/>'
            f'<text x="{max(x(c.high), right) + 6:.1f}" y="{y + 13}">'
            f"{html.escape(c.text(4 if abs(c.mean) < 10 else 0))}</text>"
        )
    parts.append("</svg>")
    return f"<h3>{html.escape(title)}</h3>" + "".join(parts)


def html_section(cmp: Comparison) -> str:
    """The closed-loop part of the backtest page: per KPI, each folder's and arm's mean with
    its interval, then the differences with theirs."""
    out = [
        f"<h2>Closed loop: responding borrowers, seeds {cmp.seeds[0]}..{cmp.seeds[-1]}</h2>",
        "<p>Bars: mean over the seeds; whiskers: 95 % bootstrap interval.</p>",
    ]
    for kpi in KPIS:
        labels: list[str] = []
        cells: list[Interval | None] = []
        diffs: list[str] = []
        diff_cells: list[Interval | None] = []
        for row in (r for r in cmp.rows if r.kpi == kpi):
            for name, value in zip(cmp.names, row.values, strict=True):
                labels.append(f"{name} · {row.group}")
                cells.append(value)
            diffs.append(row.group if row.values[0] is None else f"{cmp.names[-1]} - "
                         f"{cmp.names[0]} · {row.group}")  # fmt: skip
            diff_cells.append(row.difference)
        out.append(_interval_chart(kpi, labels, cells))
        out.append(_interval_chart(f"{kpi}: difference", diffs, diff_cells))
    table = "".join(
        f"<tr><td>{html.escape(r.group)}</td><td>{html.escape(r.kpi)}</td>"
        + "".join(f"<td>{_cell(v, r.kpi)}</td>" for v in r.values)
        + f"<td>{_cell(r.difference, r.kpi)}</td></tr>"
        for r in cmp.rows
    )
    heads = "".join(f"<th>{html.escape(n)}</th>" for n in cmp.names)
    out.append(f"<h3>All closed-loop figures</h3><table><tr><th>group</th><th>KPI</th>{heads}"
               f"<th>difference</th></tr>{table}</table>")  # fmt: skip
    return "".join(out)


def _json(value: Interval | None) -> dict[str, float] | None:
    return None if value is None else {"mean": value.mean, "low": value.low, "high": value.high}


def closed_json(cmp: Comparison) -> dict[str, object]:
    return {
        "seeds": list(cmp.seeds),
        "runs": {name: list(runs) for name, runs in zip(cmp.names, cmp.runs, strict=True)},
        "rows": [
            {
                "group": r.group,
                "kpi": r.kpi,
                "values": [_json(v) for v in r.values],
                "difference": _json(r.difference),
            }
            for r in cmp.rows
        ],
    }
