"""Validate dashboards: structure offline, and every panel's query against a live Prometheus.

Offline it checks what Grafana cannot tell you until someone opens the page: unique uids,
panels that do not overlap and fit the 24-column grid, every panel and target on the
``${datasource}`` variable, and a non-empty ``expr`` in every target. Online it substitutes
the template variables (``$product`` -> ``.*``, ``$__rate_interval`` -> a window, ...), runs
each query as an instant query and reports those that return no series.

This module must never change a dashboard or write to Prometheus; it only reads.
"""

from __future__ import annotations

import json
import math
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from loanwatch.dashboards.model import DATASOURCE, GRID_WIDTH, Json

# $name, ${name} and [[name]]; Grafana's built-ins start with "__".
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding, printed as ``dashboard / panel: message``."""

    dashboard: str
    panel: str
    message: str

    def __str__(self) -> str:
        return f"{self.dashboard} / {self.panel}: {self.message}"


@dataclass(frozen=True, slots=True)
class Query:
    dashboard: str
    panel: str
    ref_id: str
    expr: str


def panels(board: Json) -> Iterator[Json]:
    """Every panel, including those nested in collapsed rows."""
    for item in board.get("panels", []):
        yield item
        yield from item.get("panels", [])


def validate(boards: Mapping[str, Json]) -> list[Problem]:
    """Structural problems of every dashboard (an empty list means valid)."""
    problems: list[Problem] = []
    seen_uids: dict[str, str] = {}
    for name, board in boards.items():
        uid = board.get("uid")
        if not uid:
            problems.append(Problem(name, "-", "dashboard has no uid"))
        elif uid in seen_uids:
            problems.append(Problem(name, "-", f"uid {uid!r} also used by {seen_uids[uid]}"))
        else:
            seen_uids[uid] = name
        problems += _check_variables(name, board)
        problems += _check_panels(name, board)
    return problems


def _check_variables(name: str, board: Json) -> list[Problem]:
    variables = board.get("templating", {}).get("list", [])
    if not any(v.get("name") == "datasource" and v.get("type") == "datasource" for v in variables):
        return [Problem(name, "-", "no `datasource` variable of type datasource")]
    return []


def _check_panels(name: str, board: Json) -> list[Problem]:
    problems: list[Problem] = []
    all_panels = list(panels(board))
    ids = [p.get("id") for p in all_panels]
    for dup in sorted({i for i in ids if ids.count(i) > 1}, key=str):
        problems.append(Problem(name, "-", f"panel id {dup} used more than once"))
    for p in all_panels:
        title = p.get("title") or f"panel {p.get('id')}"
        pos = p.get("gridPos", {})
        if pos.get("x", 0) < 0 or pos.get("x", 0) + pos.get("w", 0) > GRID_WIDTH:
            problems.append(Problem(name, title, f"gridPos {pos} exceeds the 24-column grid"))
        if p.get("type") == "row":
            continue
        if p.get("datasource") != DATASOURCE:
            problems.append(Problem(name, title, "panel datasource is not ${datasource}"))
        targets = p.get("targets") or []
        if not targets:
            problems.append(Problem(name, title, "panel has no target"))
        for t in targets:
            if not str(t.get("expr", "")).strip():
                problems.append(Problem(name, title, f"target {t.get('refId')} has no expr"))
            if t.get("datasource") != DATASOURCE:
                problems.append(
                    Problem(
                        name, title, f"target {t.get('refId')} datasource is not ${{datasource}}"
                    )
                )
    for a, b in combinations(all_panels, 2):
        if _overlap(a["gridPos"], b["gridPos"]):
            problems.append(Problem(name, a.get("title", "?"), f"overlaps {b.get('title')!r}"))
    return problems


def _overlap(a: Json, b: Json) -> bool:
    return bool(
        a["x"] < b["x"] + b["w"]
        and b["x"] < a["x"] + a["w"]
        and a["y"] < b["y"] + b["h"]
        and b["y"] < a["y"] + a["h"]
    )


def queries(name: str, board: Json) -> Iterator[Query]:
    for p in panels(board):
        for t in p.get("targets", []):
            yield Query(name, p.get("title", "?"), t.get("refId", "?"), t.get("expr", ""))


def substitute(expr: str, variables: Mapping[str, str]) -> str:
    """Replace template and built-in variables; an unknown one raises ``KeyError``."""

    def repl(match: re.Match[str]) -> str:
        var = next(g for g in match.groups() if g)
        return variables[var]

    return _VARIABLE.sub(repl, expr)


def substitutions(board: Json, window: str = "5m", range_: str = "1h") -> dict[str, str]:
    """Values for every variable a query of ``board`` may use: "All" for template variables."""
    values = {
        "__rate_interval": window,
        "__interval": window,
        "__range": range_,
        "__range_s": str(_seconds(range_)),
        "__range_ms": str(_seconds(range_) * 1000),
        "__interval_ms": str(_seconds(window) * 1000),
    }
    for variable in board.get("templating", {}).get("list", []):
        if variable.get("type") != "datasource":
            values[variable["name"]] = variable.get("allValue") or ".*"
    return values


def _seconds(duration: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    match = re.fullmatch(r"(\d+)([smhdw])", duration)
    if not match:
        raise ValueError(f"duration {duration!r} is not like 30s, 5m, 1h, 7d")
    return int(match.group(1)) * units[match.group(2)]


def run_queries(
    boards: Mapping[str, Json],
    prometheus_url: str,
    window: str = "5m",
    range_: str = "1h",
    overrides: Mapping[str, str] | None = None,
) -> tuple[int, list[Problem]]:
    """Run every target as an instant query; return (queries run, problems).

    Template variables are "All" (``.*``) unless ``overrides`` gives a value (a regex).
    """
    problems: list[Problem] = []
    count = 0
    for name, board in boards.items():
        values = {**substitutions(board, window, range_), **(overrides or {})}
        for q in queries(name, board):
            count += 1
            where = f"{q.panel} [{q.ref_id}]"
            try:
                expr = substitute(q.expr, values)
            except KeyError as exc:
                problems.append(Problem(name, where, f"unknown variable {exc.args[0]!r}"))
                continue
            error, series = instant_query(prometheus_url, expr)
            if error:
                problems.append(Problem(name, where, f"query failed: {error} ({expr})"))
            elif series == 0:
                problems.append(Problem(name, where, f"no data: {expr}"))
    return count, problems


def instant_query(prometheus_url: str, expr: str, timeout: float = 10.0) -> tuple[str, int]:
    """(error message or "", number of series with a number) of an instant query.

    A series whose value is NaN (a quantile of a histogram that saw nothing, a ratio of zero
    to zero) shows nothing on a panel, so it does not count as data.
    """
    url = f"{prometheus_url.rstrip('/')}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            body = json.load(resp)
    except urllib.error.HTTPError as exc:
        body = json.loads(exc.read() or b"{}")
        return str(body.get("error") or exc), 0
    except (urllib.error.URLError, OSError) as exc:
        return f"cannot reach {prometheus_url}: {exc}", 0
    if body.get("status") != "success":
        return str(body.get("error", body)), 0
    result = body["data"]["result"]
    if not isinstance(result, list):  # a scalar or a string
        return "", 1
    return "", sum(1 for series in result if _has_number(series))


def _has_number(series: dict[str, Any]) -> bool:
    value = series.get("value") or (series.get("values") or [[None, "NaN"]])[-1]
    try:
        return not math.isnan(float(value[1]))
    except (TypeError, ValueError, IndexError):
        return False
