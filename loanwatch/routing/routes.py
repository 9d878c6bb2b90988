"""Routes: which team, priority, channels and escalation policy an alert gets.

An ordered list of routes, each a set of matchers on alert fields (``kind = overdue``,
``product =~ "sme|corp"``, ``overdue_amount >= 10000``); the first matching route wins unless
it says ``continue: true``; an alert nothing matches takes the ``default`` route, so every
alert is routed. Pure: no I/O, no clock; amounts compare as Decimal, never float.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from loanwatch.routing import validate as v
from loanwatch.routing.alert import KINDS, LABEL_FIELDS, NUMERIC_FIELDS, SEVERITIES, AlertRecord
from loanwatch.routing.durations import parse_duration
from loanwatch.routing.errors import ConfigError

ChannelKind = Literal["sms", "email", "webhook", "alertmanager"]
CHANNEL_KINDS: tuple[ChannelKind, ...] = ("sms", "email", "webhook", "alertmanager")
PRIORITIES = ("P1", "P2", "P3", "P4")
_MATCHER = re.compile(r"^\s*([a-z_0-9]+)\s*(=~|!~|!=|>=|<=|=|>|<)\s*(.*?)\s*$")
_NUMERIC_OPS = frozenset({">=", "<=", ">", "<"})


@dataclass(frozen=True, slots=True)
class Matcher:
    """One condition on an alert field, e.g. ``bucket =~ "M[4-7].*"``."""

    field: str
    op: str
    value: str
    pattern: re.Pattern[str] | None = None
    number: Decimal | None = None

    def matches(self, alert: AlertRecord) -> bool:
        if self.number is not None:
            actual = alert.number(self.field)
            if actual is None:
                return False
            return {
                ">=": actual >= self.number,
                "<=": actual <= self.number,
                ">": actual > self.number,
                "<": actual < self.number,
                "=": actual == self.number,
                "!=": actual != self.number,
            }[self.op]
        label = alert.label(self.field) or ""
        if self.pattern is not None:
            found = self.pattern.fullmatch(label) is not None
            return found if self.op == "=~" else not found
        return (label == self.value) if self.op == "=" else (label != self.value)

    def __str__(self) -> str:
        return f'{self.field}{self.op}"{self.value}"'


@dataclass(frozen=True, slots=True)
class Channel:
    """A notification channel and its recipient: ``sms:borrower``, ``webhook:crm``."""

    kind: ChannelKind
    target: str

    def __str__(self) -> str:
        return self.kind if self.kind == "alertmanager" else f"{self.kind}:{self.target}"


@dataclass(frozen=True, slots=True)
class EscalationLevel:
    """Who is paged at this level and how long they have to acknowledge before the next."""

    notify: str  # "oncall" (the route's team), "oncall:<team>" or a collector id
    ack_timeout: timedelta | None  # None on the last level: it never escalates further


@dataclass(frozen=True, slots=True)
class EscalationPolicy:
    name: str
    levels: tuple[EscalationLevel, ...]

    def timeout(self, level: int) -> timedelta | None:
        """Ack timeout of ``level`` (0-based), None when it is the last level."""
        if level + 1 >= len(self.levels):
            return None
        return self.levels[level].ack_timeout


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    matchers: tuple[Matcher, ...]
    team: str
    priority: str
    channels: tuple[Channel, ...]
    escalation: str
    continue_: bool = False
    work_item: bool = True  # False: notify only (e.g. info alerts), no item in the queue

    def matches(self, alert: AlertRecord) -> bool:
        return all(m.matches(alert) for m in self.matchers)


@dataclass(frozen=True, slots=True)
class RouteTable:
    routes: tuple[Route, ...]
    default: Route
    policies: Mapping[str, EscalationPolicy]

    def policy(self, route: Route) -> EscalationPolicy:
        return self.policies[route.escalation]


def match(table: RouteTable, alert: AlertRecord) -> tuple[Route, ...]:
    """The routes an alert takes, in order: first match, plus those after a ``continue``."""
    chosen: list[Route] = []
    for route in table.routes:
        if route.matches(alert):
            chosen.append(route)
            if not route.continue_:
                break
    if not chosen or chosen[-1].continue_:
        chosen.append(table.default)
    return tuple(chosen)


def owner(routes: tuple[Route, ...]) -> Route | None:
    """The route that owns the work item: the first one that keeps an item."""
    return next((r for r in routes if r.work_item), None)


def parse_matcher(text: object, path: str) -> Matcher:
    if not isinstance(text, str) or not (m := _MATCHER.match(text)):
        raise ConfigError(f"{path}: expected a matcher like 'bucket = M2', got {text!r}")
    name, op, raw = m.group(1), m.group(2), m.group(3).strip('"').strip("'")
    if name not in LABEL_FIELDS | NUMERIC_FIELDS:
        raise ConfigError(f"{path}: unknown alert field {name!r} in {text!r}")
    if name in NUMERIC_FIELDS and op not in ("=~", "!~"):
        try:
            number = Decimal(raw)
        except InvalidOperation as exc:
            raise ConfigError(f"{path}: {name!r} needs a number, got {raw!r}") from exc
        return Matcher(name, op, raw, number=number)
    if op in _NUMERIC_OPS:
        raise ConfigError(f"{path}: {op!r} only applies to amounts and dpd, not {name!r}")
    if op in ("=~", "!~"):
        try:
            return Matcher(name, op, raw, pattern=re.compile(raw))
        except re.error as exc:
            raise ConfigError(f"{path}: bad regex {raw!r}: {exc}") from exc
    if name == "kind" and raw not in KINDS:
        raise ConfigError(f"{path}: unknown alert kind {raw!r} (known: {sorted(KINDS)})")
    if name == "severity" and raw not in SEVERITIES:
        raise ConfigError(f"{path}: unknown severity {raw!r} (known: {list(SEVERITIES)})")
    return Matcher(name, op, raw)


def parse_channel(text: object, path: str) -> Channel:
    if not isinstance(text, str):
        raise ConfigError(f"{path}: expected 'kind:target', got {text!r}")
    kind, _, target = text.partition(":")
    if kind not in CHANNEL_KINDS:
        raise ConfigError(f"{path}: unknown channel {kind!r} (known: {list(CHANNEL_KINDS)})")
    if kind in ("sms", "email") and target not in ("borrower", "oncall"):
        raise ConfigError(f"{path}: {kind} goes to 'borrower' or 'oncall', got {target!r}")
    if kind == "webhook" and not target:
        raise ConfigError(f"{path}: webhook needs a name from 'webhooks', got {text!r}")
    return Channel(kind, target or "default")


def parse_policy(name: str, raw: object, path: str) -> EscalationPolicy:
    levels: list[EscalationLevel] = []
    for i, item in enumerate(v.seq(v.mapping(raw, path).get("levels"), f"{path}.levels")):
        lpath = f"{path}.levels[{i}]"
        level = v.mapping(item, lpath)
        v.only_keys(level, {"notify", "ack_timeout"}, lpath)
        timeout = level.get("ack_timeout")
        try:
            delay = None if timeout is None else parse_duration(timeout, f"{lpath}.ack_timeout")
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        levels.append(EscalationLevel(v.string(level, "notify", lpath), delay))
    if not levels:
        raise ConfigError(f"{path}.levels: an escalation policy needs at least one level")
    for i, lvl in enumerate(levels[:-1]):
        if lvl.ack_timeout is None:
            raise ConfigError(f"{path}.levels[{i}].ack_timeout: required on all but the last level")
    return EscalationPolicy(name, tuple(levels))


def parse_route(raw: object, path: str, policies: Mapping[str, Any], teams: set[str]) -> Route:
    data = v.mapping(raw, path)
    allowed = {"name", "match", "team", "priority", "channels", "escalation", "continue"}
    v.only_keys(data, allowed | {"work_item"}, path)
    team = v.string(data, "team", path)
    if team not in teams:
        raise ConfigError(f"{path}.team: unknown team {team!r} (defined: {sorted(teams)})")
    priority = v.string(data, "priority", path, "P3")
    if priority not in PRIORITIES:
        raise ConfigError(f"{path}.priority: expected one of {PRIORITIES}, got {priority!r}")
    escalation = v.string(data, "escalation", path)
    if escalation not in policies:
        raise ConfigError(f"{path}.escalation: unknown policy {escalation!r}")
    matchers = tuple(
        parse_matcher(m, f"{path}.match[{i}]")
        for i, m in enumerate(v.seq(data.get("match", []), f"{path}.match"))
    )
    channels = tuple(
        parse_channel(c, f"{path}.channels[{i}]")
        for i, c in enumerate(v.seq(data.get("channels", []), f"{path}.channels"))
    )
    return Route(
        name=v.string(data, "name", path),
        matchers=matchers,
        team=team,
        priority=priority,
        channels=channels,
        escalation=escalation,
        continue_=v.boolean(data, "continue", path, False),
        work_item=v.boolean(data, "work_item", path, True),
    )


def parse_route_table(doc: Mapping[str, Any], teams: set[str]) -> RouteTable:
    """Build the route table from the ``routes``, ``default`` and ``escalation_policies`` keys."""
    raw_policies = v.mapping(doc.get("escalation_policies"), "escalation_policies")
    policies = {
        str(name): parse_policy(str(name), raw, f"escalation_policies.{name}")
        for name, raw in raw_policies.items()
    }
    routes = tuple(
        parse_route(r, f"routes[{i}]", policies, teams)
        for i, r in enumerate(v.seq(doc.get("routes", []), "routes"))
    )
    names = [r.name for r in routes]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"routes: duplicate route name {dupes[0]!r}")
    default = parse_route(doc.get("default"), "default", policies, teams)
    if default.matchers:
        raise ConfigError("default.match: the default route matches everything; remove 'match'")
    return RouteTable(routes, default, policies)
