"""Small builders for Grafana dashboard JSON: panels, targets, template variables, layout.

Every builder returns a plain JSON-ready ``dict``; the dashboards in this package compose them.
Every panel and target points at the ``${datasource}`` variable, never at a fixed data source.

This module must never do I/O or know a metric name: it only shapes JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Json = dict[str, Any]

DATASOURCE: Json = {"type": "prometheus", "uid": "${datasource}"}
GRID_WIDTH = 24
SCHEMA_VERSION = 39

# Regexes reused in expressions; `\\+` is the PromQL string for a literal `+`.
DPD_OVER_30 = r"M2|M3|M4|M5|M6|M7\\+"
DPD_OVER_90 = r"M4|M5|M6|M7\\+"
NPL_CLASSES = "substandard|doubtful|loss"


def selector(*names: str, **fixed: str) -> str:
    """A label selector: ``portfolio=~"$portfolio"`` per variable name, then fixed matchers.

    A fixed value starting with ``~`` becomes a regex matcher (``bucket=~"M2|M3"``).
    """
    parts = [f'{name}=~"${name}"' for name in names]
    for key, value in fixed.items():
        parts.append(f'{key}=~"{value[1:]}"' if value.startswith("~") else f'{key}="{value}"')
    return "{" + ",".join(parts) + "}"


def target(expr: str, legend: str = "", *, instant: bool = False, table: bool = False) -> Json:
    """A Prometheus query; the refId is assigned by :func:`panel`."""
    return {
        "datasource": DATASOURCE,
        "expr": expr,
        "legendFormat": legend or "__auto",
        "instant": instant,
        "range": not instant,
        "format": "table" if table else "time_series",
    }


def panel(
    kind: str,
    title: str,
    targets: list[Json],
    *,
    description: str = "",
    unit: str = "short",
    width: int = 12,
    height: int = 8,
    options: Json | None = None,
    custom: Json | None = None,
    transformations: list[Json] | None = None,
    decimals: int | None = None,
) -> Json:
    """A panel without position; :class:`Layout` gives it ``id`` and ``gridPos``."""
    defaults: Json = {"unit": unit}
    if decimals is not None:
        defaults["decimals"] = decimals
    if custom:
        defaults["custom"] = custom
    result: Json = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": [{**t, "refId": chr(ord("A") + i)} for i, t in enumerate(targets)],
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options or {},
        "gridPos": {"x": 0, "y": 0, "w": width, "h": height},
    }
    if transformations:
        result["transformations"] = transformations
    return result


def timeseries(title: str, targets: list[Json], *, stacked: bool = False, **kw: Any) -> Json:
    custom = {"stacking": {"mode": "normal" if stacked else "none"}, "fillOpacity": 20}
    options = {"legend": {"displayMode": "table", "placement": "right", "showLegend": True}}
    return panel("timeseries", title, targets, custom=custom, options=options, **kw)


def stat(title: str, expr: str, **kw: Any) -> Json:
    options = {"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "value"}
    kw.setdefault("width", 4)
    kw.setdefault("height", 4)
    return panel("stat", title, [target(expr, instant=True)], options=options, **kw)


def bars(title: str, expr: str, legend: str, **kw: Any) -> Json:
    """A bar gauge of an instant query: one bar per series."""
    options = {"displayMode": "basic", "orientation": "horizontal", "showUnfilled": True}
    return panel("bargauge", title, [target(expr, legend, instant=True)], options=options, **kw)


def row(title: str) -> Json:
    return {
        "type": "row",
        "title": title,
        "collapsed": False,
        "panels": [],
        "gridPos": {"x": 0, "y": 0, "w": GRID_WIDTH, "h": 1},
    }


@dataclass
class Layout:
    """Places panels left to right, wrapping at 24 columns; a row starts a new line."""

    panels: list[Json] = field(default_factory=list)
    _x: int = 0
    _y: int = 0
    _line_height: int = 0

    def add(self, *items: Json) -> Layout:
        for item in items:
            pos = item["gridPos"]
            if item["type"] == "row" or self._x + pos["w"] > GRID_WIDTH:
                self._newline()
            pos["x"], pos["y"] = self._x, self._y
            item["id"] = len(self.panels) + 1
            self.panels.append(item)
            self._x += pos["w"]
            self._line_height = max(self._line_height, pos["h"])
            if item["type"] == "row":
                self._newline()
        return self

    def _newline(self) -> None:
        self._y += self._line_height
        self._x = 0
        self._line_height = 0


def query_variable(name: str, label: str, query: str) -> Json:
    """A multi-value label variable whose "All" is the regex ``.*``."""
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": query, "refId": f"{name}-values"},
        "definition": query,
        "refresh": 2,
        "includeAll": True,
        "allValue": ".*",
        "multi": True,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
        "hide": 0,
    }


def datasource_variable() -> Json:
    return {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
        "refresh": 1,
    }


def dashboard(
    uid: str, title: str, description: str, variables: list[Json], layout: Layout
) -> Json:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["loanwatch"],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": SCHEMA_VERSION,
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [datasource_variable(), *variables]},
        "annotations": {"list": []},
        "panels": layout.panels,
    }
