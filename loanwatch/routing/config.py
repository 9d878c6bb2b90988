"""Load ``config/routing.yaml`` and ``config/compliance.yaml`` into frozen records.

The only module of the routing core that reads files. Every check runs at load time and a
problem raises :class:`ConfigError` naming the file, key and value; :func:`verify_receivers`
lists channels that could not be delivered (like ``amtool``'s receiver check).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from loanwatch.routing import validate as v
from loanwatch.routing.alert import AlertRecord
from loanwatch.routing.compliance import ComplianceConfig, parse_compliance
from loanwatch.routing.errors import ConfigError
from loanwatch.routing.routes import Route, RouteTable, match, parse_route_table
from loanwatch.routing.schedules import TeamSchedule, oncall_at, parse_teams
from loanwatch.routing.templates import LOCALES

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
DEFAULT_ROUTING = CONFIG_DIR / "routing.yaml"
DEFAULT_COMPLIANCE = CONFIG_DIR / "compliance.yaml"


@dataclass(frozen=True, slots=True)
class Collector:
    collector_id: str
    email: str | None = None
    phone: str | None = None
    locale: str = "zh-CN"


@dataclass(frozen=True, slots=True)
class RoutingSetup:
    """Everything routing.yaml declares: routes, escalation policies, teams, receivers."""

    table: RouteTable
    teams: Mapping[str, TeamSchedule]
    collectors: Mapping[str, Collector] = field(default_factory=dict)
    webhooks: Mapping[str, str] = field(default_factory=dict)  # name -> URL

    def routes_for(self, alert: AlertRecord) -> tuple[Route, ...]:
        return match(self.table, alert)

    def resolve(self, target: str, team: str, instant: datetime) -> str | None:
        """An escalation target (``oncall``, ``oncall:<team>``, a collector id) -> collector."""
        if target == "oncall":
            return oncall_at(self.teams[team], instant)
        if target.startswith("oncall:"):
            return oncall_at(self.teams[target.removeprefix("oncall:")], instant)
        return target


_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_PHONE = re.compile(r"\+[1-9][0-9]{6,14}")  # E.164


def _optional(
    data: Mapping[str, Any], key: str, path: str, pattern: re.Pattern[str], what: str
) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ConfigError(f"{path}.{key}: expected {what}, got {value!r}")
    return value


def _collectors(doc: Mapping[str, Any]) -> dict[str, Collector]:
    out = {}
    for cid, raw in v.mapping(doc.get("collectors", {}), "collectors").items():
        path = f"collectors.{cid}"
        data = v.mapping(raw, path)
        v.only_keys(data, {"email", "phone", "locale"}, path)
        email = _optional(data, "email", path, _EMAIL, "an email address (name@domain.tld)")
        phone = _optional(data, "phone", path, _PHONE, "an E.164 phone number (+8613800000000)")
        locale = data.get("locale", "zh-CN")
        if locale not in LOCALES:
            raise ConfigError(
                f"{path}.locale: expected one of {', '.join(LOCALES)} (the templates' "
                f"languages), got {locale!r}"
            )
        out[str(cid)] = Collector(str(cid), email, phone, str(locale))
    return out


def _webhooks(doc: Mapping[str, Any]) -> dict[str, str]:
    out = {}
    for name, raw in v.mapping(doc.get("webhooks", {}), "webhooks").items():
        data = v.mapping(raw, f"webhooks.{name}")
        v.only_keys(data, {"url"}, f"webhooks.{name}")
        url = v.string(data, "url", f"webhooks.{name}")
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"webhooks.{name}.url: expected an http(s) URL, got {url!r}")
        out[str(name)] = url
    return out


def routing_from_mapping(doc: Mapping[str, Any]) -> RoutingSetup:
    v.only_keys(
        doc,
        {"teams", "collectors", "webhooks", "escalation_policies", "routes", "default"},
        "routing",
    )
    teams = parse_teams(doc)
    table = parse_route_table(doc, set(teams))
    collectors = _collectors(doc)
    known = set(collectors)
    for team in teams.values():
        if known and team.fallback and team.fallback not in known:
            raise ConfigError(
                f"teams.{team.team}.fallback: {team.fallback!r} is not under 'collectors'"
            )
        members = {m for r in team.rotations for m in r.members} | {
            o.member for o in team.overrides
        }
        if known and (missing := sorted(members - known)):
            raise ConfigError(f"teams.{team.team}: member {missing[0]!r} is not under 'collectors'")
    for policy in table.policies.values():
        for i, level in enumerate(policy.levels):
            target = level.notify
            path = f"escalation_policies.{policy.name}.levels[{i}].notify"
            if target.startswith("oncall:") and target.removeprefix("oncall:") not in teams:
                raise ConfigError(f"{path}: unknown team in {target!r}")
            if (
                target != "oncall"
                and not target.startswith("oncall:")
                and known
                and target not in known
            ):
                raise ConfigError(f"{path}: {target!r} is not under 'collectors'")
    return RoutingSetup(table, teams, collectors, _webhooks(doc))


def _read(path: Path) -> Mapping[str, Any]:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    return v.mapping(doc, str(path))


def load_routing(path: Path = DEFAULT_ROUTING) -> RoutingSetup:
    try:
        return routing_from_mapping(_read(path))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def load_compliance(path: Path = DEFAULT_COMPLIANCE) -> ComplianceConfig:
    try:
        return parse_compliance(_read(path))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def verify_receivers(setup: RoutingSetup, alertmanager_url: str | None) -> list[tuple[str, str]]:
    """(route name, problem) pairs that would make a channel undeliverable (empty: all good)."""
    problems: list[tuple[str, str]] = []
    for route in (*setup.table.routes, setup.table.default):
        team = setup.teams[route.team]
        members = {m for r in team.rotations for m in r.members} | (
            {team.fallback} if team.fallback else set()
        )
        for ch in route.channels:
            where = f"route {route.name!r} channel {ch}"
            if ch.kind == "webhook" and ch.target not in setup.webhooks:
                problems.append(
                    (route.name, f"{where}: no webhook named {ch.target!r} under 'webhooks'")
                )
            if ch.kind == "alertmanager" and not alertmanager_url:
                problems.append((route.name, f"{where}: LOANWATCH_ALERTMANAGER_URL is not set"))
            if ch.kind in ("email", "sms") and ch.target == "oncall":
                attr = "email" if ch.kind == "email" else "phone"
                for m in sorted(members):
                    c = setup.collectors.get(m)
                    if c is None or getattr(c, attr) is None:
                        problems.append((route.name, f"{where}: collector {m!r} has no {attr}"))
    return problems
