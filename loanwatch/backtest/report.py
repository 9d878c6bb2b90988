"""The backtest's two outputs: a side-by-side text table and an HTML page of bar charts.

Pure formatting of :class:`Figures`; the HTML is one self-contained file (inline SVG, no script,
no network), so it opens anywhere and renders the same in a headless browser.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal

from loanwatch.backtest.figures import Figures

COLOURS = ("#3b6ea8", "#d9822b", "#4f9a5d", "#a44a8f")


def _delta(values: Sequence[object]) -> str:
    try:
        first, last = Decimal(str(values[0])), Decimal(str(values[-1]))
    except ArithmeticError:
        return ""
    change = last - first
    return f"{change:+}" if change else "0"


def rows(names: Sequence[str], figures: Sequence[Figures]) -> list[tuple[str, list[str], str]]:
    """(label, value per folder, last - first) for every figure, headline first."""
    out: list[tuple[str, list[str], str]] = []
    heads = [f.headline() for f in figures]
    for key in heads[0]:
        values = [str(h[key]) for h in heads]
        out.append((key, values, _delta(values)))
    for title in figures[0].sections():
        counters = [f.sections()[title] for f in figures]
        keys = sorted(set().union(*counters))
        for key in keys:
            values = [str(c.get(key, 0)) for c in counters]
            out.append((f"{title}: {key}", values, _delta(values)))
    return out


def text_table(names: Sequence[str], figures: Sequence[Figures]) -> str:
    table = rows(names, figures)
    width = max(len(label) for label, _, _ in table)
    cols = [max(len(n), *(len(v[i]) for _, v, _ in table)) for i, n in enumerate(names)]
    head = "figure".ljust(width) + "".join(f"  {n:>{c}}" for n, c in zip(names, cols, strict=True))
    lines = [head + "  difference", "-" * (len(head) + 12)]
    for label, values, delta in table:
        cells = "".join(f"  {v:>{c}}" for v, c in zip(values, cols, strict=True))
        lines.append(f"{label.ljust(width)}{cells}  {delta:>10}")
    return "\n".join(lines)


def _chart(title: str, names: Sequence[str], counters: Sequence[Counter[str]]) -> str:
    keys = sorted(set().union(*counters))
    if not keys:
        return f"<h2>{html.escape(title)}</h2><p>none</p>"
    top = max(max(c.get(k, 0) for c in counters) for k in keys) or 1
    bar, gap, label_w, width = 14, 10, 260, 420
    height = len(keys) * (bar * len(counters) + gap) + 10
    parts = [f'<svg width="{label_w + width + 80}" height="{height}" role="img">']
    y = 5
    for key in keys:
        parts.append(
            f'<text x="{label_w - 6}" y="{y + bar * len(counters) / 2 + 4}" '
            f'text-anchor="end">{html.escape(key)}</text>'
        )
        for i, counter in enumerate(counters):
            value = counter.get(key, 0)
            w = width * value / top
            colour = COLOURS[i % len(COLOURS)]
            parts.append(
                f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar - 2}" fill="{colour}">'
                f"<title>{html.escape(names[i])}: {value}</title></rect>"
                f'<text x="{label_w + w + 4:.1f}" y="{y + bar - 4}">{value}</text>'
            )
            y += bar
        y += gap
    parts.append("</svg>")
    return f"<h2>{html.escape(title)}</h2>" + "".join(parts)


def html_page(
    log: str | None, names: Sequence[str], figures: Sequence[Figures], extra: str = ""
) -> str:
    """The page: the replay's charts and table (when a log was replayed), then ``extra``
    (the closed-loop section, :mod:`loanwatch.backtest.closed_report`)."""
    legend = "".join(
        f'<span class="key" style="background:{COLOURS[i % len(COLOURS)]}"></span>{html.escape(n)} '
        for i, n in enumerate(names)
    )
    body = _replay_body(names, figures) if figures else ""
    title = f"Backtest of {html.escape(log)}" if log else "Closed-loop backtest"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>loanwatch backtest</title>
<style>
body {{ font-family: sans-serif; margin: 24px; color: #222; }}
svg text {{ font-size: 12px; }} h2 {{ font-size: 16px; margin-top: 28px; }}
h3 {{ font-size: 14px; margin-top: 18px; }}
.key {{ display: inline-block; width: 12px; height: 12px; margin: 0 4px 0 12px; }}
table {{ border-collapse: collapse; font-size: 12px; }}
td, th {{ border: 1px solid #ccc; padding: 2px 6px; }}
td:not(:first-child) {{ text-align: right; }}
</style></head><body>
<h1>{title}</h1>
<p>{legend}</p>
{body}{extra}
</body></html>
"""


def _replay_body(names: Sequence[str], figures: Sequence[Figures]) -> str:
    charts = []
    for key in ("PAR30", "PAR90", "NPL ratio"):
        per = [Counter({key: int(Decimal(f.headline()[key]) * 10000)}) for f in figures]
        charts.append(_chart(f"{key} (basis points)", names, per))
    for title in figures[0].sections():
        charts.append(_chart(title, names, [f.sections()[title] for f in figures]))
    table = "".join(
        "<tr><td>" + html.escape(label) + "</td>"
        + "".join(f"<td>{html.escape(v)}</td>" for v in values)
        + f"<td>{html.escape(delta)}</td></tr>"
        for label, values, delta in rows(names, figures)
    )  # fmt: skip
    heads = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    return f"""{"".join(charts)}
<h2>All figures</h2>
<table><tr><th>figure</th>{heads}<th>difference</th></tr>{table}</table>
"""
