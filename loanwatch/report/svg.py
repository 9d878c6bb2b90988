"""Inline SVG charts, tables and the page shell shared by the HTML reports.

Used by the portfolio report (:mod:`loanwatch.report.html`) and the model report
(:mod:`loanwatch.early_warning.html`). Every chart is one ``<svg class="chart">`` with a title
above it; no script, no external file, no web font, so a page opens offline and prints to PDF
from any browser (``@media print`` keeps each section on one page where it fits). Pure: strings in,
strings out.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

Number = float | Decimal
PALETTE = ("#1565c0", "#ef6c00", "#2e7d32", "#c62828", "#6a1b9a", "#00838f")

CSS = """
body { font-family: sans-serif; margin: 24px; color: #222; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 26px; border-bottom: 1px solid #ccc; }
h3 { font-size: 14px; } svg text { font-size: 12px; } svg .axis { font-size: 11px; fill: #555; }
table { border-collapse: collapse; font-size: 12px; margin: 6px 0; }
td, th { border: 1px solid #ccc; padding: 2px 6px; } td:not(:first-child) { text-align: right; }
.kpi { display: inline-block; margin-right: 28px; } .kpi b { font-size: 18px; display: block; }
.prov { font-size: 11px; color: #555; } .legend { font-size: 12px; margin: 2px 0; }
.key { display: inline-block; width: 12px; height: 12px; margin: 0 4px 0 12px; }
.pair { display: flex; flex-wrap: wrap; gap: 0 32px; align-items: flex-end; }
@media print {
  body { margin: 10mm; } section { break-inside: avoid; page-break-inside: avoid; }
  h2 { break-after: avoid; } @page { size: A4; margin: 12mm; }
}
"""


def nice_max(value: float, ticks: int = 4) -> float:
    """The smallest round top (``ticks`` equal round steps) >= value."""
    if value <= 0 or math.isnan(value):
        return 1.0
    power = 10.0 ** math.floor(math.log10(value / ticks))
    step = next(
        m * power
        for m in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10)
        if m * power * ticks >= value * (1 - 1e-9)
    )
    return step * ticks


def esc(text: object) -> str:
    return html.escape(str(text))


def page(title: str, body: str) -> str:
    """The whole document: ``body`` (already HTML) under the shared style."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{esc(title)}</title>
<style>{CSS}</style></head><body>
{body}
</body></html>
"""


def table(head: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    th = "".join(f"<th>{esc(h)}</th>" for h in head)
    rows = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in body)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{rows}</tbody></table>"


def _titled(title: str, svg: Sequence[str], legend: str = "") -> str:
    return f"<div><h3>{esc(title)}</h3>{legend}{''.join(svg)}</div>"


def legend(names: Sequence[tuple[str, str]]) -> str:
    """A key line of (name, colour) pairs, above a chart."""
    keys = "".join(f'<span class="key" style="background:{c}"></span>{esc(n)} ' for n, c in names)
    return f'<p class="legend">{keys}</p>'


def bars(title: str, items: Sequence[tuple[str, Number, str]], fmt: Callable[[Number], str]) -> str:
    """Horizontal bars (label, value, colour), the value printed beside each with ``fmt``."""
    top = max((v for _, v, _ in items), default=0) or 1
    bar, label_w, width = 22, 150, 420
    parts = [
        f'<svg class="chart" width="{label_w + width + 120}" '
        f'height="{len(items) * bar + 8}" role="img">'
    ]
    for i, (label, value, colour) in enumerate(items):
        y = 4 + i * bar
        w = float(value) / float(top) * width
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">{esc(label)}</text>'
            f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar - 4}" fill="{colour}"/>'
            f'<text x="{label_w + w + 4:.1f}" y="{y + 15}">{esc(fmt(value))}</text>'
        )
    parts.append("</svg>")
    return _titled(title, parts)


@dataclass(frozen=True, slots=True)
class Series:
    """One line of a :func:`plot`: points (x, y), drawn as a polyline, with dots if ``dots``."""

    name: str
    points: Sequence[tuple[float, float]]
    colour: str
    dots: bool = True
    dashed: bool = False
    labels: Sequence[str] = ()  # a tooltip per point (defaults to "name: x, y")


@dataclass(frozen=True, slots=True)
class Axes:
    x_max: float
    y_max: float
    x_ticks: Sequence[tuple[float, str]]
    y_fmt: Callable[[float], str]
    x_label: str = ""
    y_label: str = ""
    y_ticks: int = 4  # gridlines above zero


_W, _H, _LEFT, _TOP, _BOTTOM, _RIGHT = 520, 200, 56, 10, 40, 44


def _frame(ax: Axes) -> tuple[list[str], Callable[[float], float], Callable[[float], float]]:
    """The svg head, gridlines and axes of a chart; the x and y pixel functions."""

    def px(x: float) -> float:
        return _LEFT + (x / ax.x_max if ax.x_max else 0.0) * _W

    def py(y: float) -> float:
        return _TOP + _H - (min(y, ax.y_max) / ax.y_max if ax.y_max else 0.0) * _H

    parts = [
        f'<svg class="chart" width="{_LEFT + _W + _RIGHT}" height="{_TOP + _H + _BOTTOM}" '
        'role="img">'
    ]
    for k in range(ax.y_ticks + 1):
        v = ax.y_max * k / ax.y_ticks
        y = py(v)
        parts.append(
            f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{_LEFT + _W}" y2="{y:.1f}" '
            f'stroke="{"#888" if k == 0 else "#e3e3e3"}"/>'
            f'<text class="axis" x="{_LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">'
            f"{esc(ax.y_fmt(v))}</text>"
        )
    parts.append(f'<line x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{_TOP + _H}" stroke="#888"/>')
    for x, label in ax.x_ticks:
        parts.append(
            f'<text class="axis" x="{px(x):.1f}" y="{_TOP + _H + 15}" text-anchor="middle">'
            f"{esc(label)}</text>"
        )
    if ax.x_label:
        parts.append(
            f'<text class="axis" x="{_LEFT + _W / 2}" y="{_TOP + _H + 33}" '
            f'text-anchor="middle">{esc(ax.x_label)}</text>'
        )
    if ax.y_label:
        parts.append(
            f'<text class="axis" transform="translate(12 {_TOP + _H / 2}) rotate(-90)" '
            f'text-anchor="middle">{esc(ax.y_label)}</text>'
        )
    return parts, px, py


def plot(title: str, series: Sequence[Series], ax: Axes, diagonal: bool = False) -> str:
    """Lines on shared axes from (0, 0) to (x_max, y_max); ``diagonal`` draws y = x dashed."""
    if not any(s.points for s in series):
        return f"<div><h3>{esc(title)}</h3><p>no data for this chart</p></div>"
    parts, px, py = _frame(ax)
    if diagonal:
        end = min(ax.x_max, ax.y_max)
        parts.append(
            f'<line x1="{px(0):.1f}" y1="{py(0):.1f}" x2="{px(end):.1f}" y2="{py(end):.1f}" '
            'stroke="#999" stroke-dasharray="4 3"/>'
        )
    for s in series:
        xy = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in s.points)
        dash = ' stroke-dasharray="6 3"' if s.dashed else ""
        parts.append(
            f'<polyline points="{xy}" fill="none" stroke="{s.colour}" stroke-width="2"{dash}/>'
        )
        if s.dots:
            for i, (x, y) in enumerate(s.points):
                tip = s.labels[i] if i < len(s.labels) else f"{s.name}: {x:g}, {ax.y_fmt(y)}"
                parts.append(
                    f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{s.colour}">'
                    f"<title>{esc(tip)}</title></circle>"
                )
    parts.append("</svg>")
    keys = legend([(s.name, s.colour) for s in series]) if len(series) > 1 else ""
    return _titled(title, parts, keys)


def columns(
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float], str]],
    ax: Axes,
    marks: Sequence[tuple[float, str]] = (),
) -> str:
    """Grouped vertical bars: one group per label, one bar per series (name, values, colour);
    ``marks`` are dashed horizontal reference lines (value, caption). ``ax.x_ticks`` is unused
    (the labels are the ticks)."""
    if not labels or not series:
        return f"<div><h3>{esc(title)}</h3><p>no data for this chart</p></div>"
    frame = Axes(len(labels), ax.y_max, [], ax.y_fmt, ax.x_label, ax.y_label, ax.y_ticks)
    parts, px, py = _frame(frame)
    slot = _W / len(labels)
    bar = slot * 0.8 / len(series)
    for i, label in enumerate(labels):
        parts.append(
            f'<text class="axis" x="{px(i + 0.5):.1f}" y="{_TOP + _H + 15}" '
            f'text-anchor="middle">{esc(label)}</text>'
        )
        for j, (name, values, colour) in enumerate(series):
            v = values[i]
            x = px(i) + slot * 0.1 + j * bar
            top = py(max(v, 0.0))
            parts.append(
                f'<rect x="{x:.1f}" y="{top:.1f}" width="{bar - 1:.1f}" '
                f'height="{py(0) - top:.1f}" fill="{colour}">'
                f"<title>{esc(name)} {esc(label)}: {esc(ax.y_fmt(v))}</title></rect>"
            )
    for value, caption in marks:
        y = py(value)
        parts.append(
            f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{_LEFT + _W}" y2="{y:.1f}" stroke="#c62828" '
            f'stroke-dasharray="5 3"/><text class="axis" x="{_LEFT + _W - 2}" y="{y - 3:.1f}" '
            'text-anchor="end" paint-order="stroke" stroke="#fff" stroke-width="3">'
            f"{esc(caption)}</text>"
        )
    parts.append("</svg>")
    keys = legend([(n, c) for n, _, c in series]) if len(series) > 1 else ""
    return _titled(title, parts, keys)
