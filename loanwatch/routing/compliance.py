"""Contact compliance: may we contact this debtor on this channel now, and if not, when?

Rule sets per jurisdiction (``config/compliance.yaml``): quiet hours in the borrower's local
time, caps on contacts in a calendar day or a rolling window (per debtor, phone number or debt),
cool-offs after a conversation, and do-not-contact flags. :func:`check` returns
:class:`Allowed` or :class:`Deferred` with the next allowed instant and the reason: a blocked
contact is postponed, never dropped (only a do-not-contact flag defers it with no end, until the
flag is lifted). Pure: ``now`` and the history are passed in; nothing here reads a clock, Redis
or the network, and nothing here sees a name or phone number in clear (``number`` is a key).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from loanwatch.ledger.contact_outcomes import CONTACT_OUTCOMES, is_known_outcome
from loanwatch.routing import validate as v
from loanwatch.routing.errors import ConfigError

Scope = Literal["debtor", "number", "debt"]
CHANNELS = frozenset({"sms", "call", "email", "visit", "letter"})
_MAX_STEPS = 64  # rules push the candidate forward; they settle in a few steps


@dataclass(frozen=True, slots=True)
class ContactRequest:
    loan_id: str
    debtor_id: str
    channel: str
    number: str | None = None  # a stable key of the phone number or address (may be a hash)
    jurisdiction: str | None = None
    timezone: str | None = None  # the borrower's local zone; the rule set's when unknown
    do_not_contact: frozenset[str] = frozenset()  # channels flagged, or "all"


@dataclass(frozen=True, slots=True)
class ContactRecord:
    """A past contact (ours or logged by a collector) with its outcome."""

    at: datetime
    loan_id: str
    debtor_id: str
    channel: str
    outcome: str
    number: str | None = None


@dataclass(frozen=True, slots=True)
class Allowed:
    at: datetime


@dataclass(frozen=True, slots=True)
class Deferred:
    until: datetime | None  # None: held until the do-not-contact flag is lifted
    reason: str
    rule: str


Decision = Allowed | Deferred


@dataclass(frozen=True, slots=True)
class QuietHours:
    name: str
    start: time  # contact forbidden from start (inclusive) ...
    end: time  # ... to end (exclusive), local; may wrap midnight
    channels: frozenset[str]

    def next_allowed(self, at: datetime, tz: ZoneInfo) -> datetime | None:
        local = at.astimezone(tz)
        now = local.time()
        wraps = self.start > self.end
        inside = (now >= self.start or now < self.end) if wraps else self.start <= now < self.end
        if not inside:
            return None
        day = local.date() + timedelta(days=1) if wraps and now >= self.start else local.date()
        return datetime.combine(day, self.end, tzinfo=tz)


@dataclass(frozen=True, slots=True)
class Cap:
    """At most ``limit`` matching contacts per calendar day or rolling ``window``."""

    name: str
    channels: frozenset[str]
    outcomes: frozenset[str] | None  # None counts every attempt
    scope: Scope
    limit: int
    window: timedelta | None  # None: the borrower's local calendar day

    def next_allowed(
        self, at: datetime, tz: ZoneInfo, past: list[ContactRecord]
    ) -> datetime | None:
        counted = [r for r in past if self.outcomes is None or r.outcome in self.outcomes]
        if self.window is None:
            local = at.astimezone(tz)
            today = [
                r for r in counted if r.at.astimezone(tz).date() == local.date() and r.at <= at
            ]
            if len(today) < self.limit:
                return None
            return datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=tz)
        inside = sorted(r.at for r in counted if at - self.window < r.at <= at)
        if len(inside) < self.limit:
            return None
        return inside[len(inside) - self.limit] + self.window


@dataclass(frozen=True, slots=True)
class CoolOff:
    """No contact within ``period`` after a contact with one of ``outcomes`` (a conversation)."""

    name: str
    channels: frozenset[str]
    outcomes: frozenset[str]
    scope: Scope
    period: timedelta

    def next_allowed(self, at: datetime, past: list[ContactRecord]) -> datetime | None:
        ends = [r.at + self.period for r in past if r.outcome in self.outcomes and r.at <= at]
        latest = max(ends, default=None)
        return latest if latest is not None and latest > at else None


@dataclass(frozen=True, slots=True)
class RuleSet:
    jurisdiction: str
    timezone: ZoneInfo
    quiet_hours: tuple[QuietHours, ...] = ()
    caps: tuple[Cap, ...] = ()
    cool_offs: tuple[CoolOff, ...] = ()


@dataclass(frozen=True, slots=True)
class ComplianceConfig:
    rule_sets: Mapping[str, RuleSet]
    default_jurisdiction: str

    def rule_set(self, jurisdiction: str | None) -> RuleSet:
        return self.rule_sets.get(jurisdiction or "", self.rule_sets[self.default_jurisdiction])


def _in_scope(
    rec: ContactRecord, req: ContactRequest, scope: Scope, channels: frozenset[str]
) -> bool:
    if rec.channel not in channels:
        return False
    if scope == "debtor":
        return rec.debtor_id == req.debtor_id
    if scope == "number":
        return req.number is not None and rec.number == req.number
    return rec.loan_id == req.loan_id


def _zone(rules: RuleSet, req: ContactRequest) -> ZoneInfo:
    try:
        return ZoneInfo(req.timezone) if req.timezone else rules.timezone
    except (ZoneInfoNotFoundError, ValueError):
        return rules.timezone  # an unknown zone falls back to the jurisdiction's, never to UTC


def _blocking(
    rules: RuleSet, req: ContactRequest, past: list[ContactRecord], at: datetime, tz: ZoneInfo
) -> tuple[datetime, str, str] | None:
    """The first rule that blocks a contact at ``at``: (next try, reason, rule name)."""
    for q in rules.quiet_hours:
        if req.channel in q.channels and (until := q.next_allowed(at, tz)):
            return until, f"quiet hours {q.start:%H:%M}-{q.end:%H:%M} local", q.name
    for cap in rules.caps:
        if req.channel in cap.channels:
            mine = [r for r in past if _in_scope(r, req, cap.scope, cap.channels)]
            if until := cap.next_allowed(at, tz, mine):
                span = "day" if cap.window is None else f"{cap.window.days} days"
                return until, f"cap of {cap.limit} per {cap.scope} per {span} reached", cap.name
    for cool in rules.cool_offs:
        if req.channel in cool.channels:
            mine = [r for r in past if _in_scope(r, req, cool.scope, cool.channels)]
            if until := cool.next_allowed(at, mine):
                return until, f"within {cool.period.days} days after a conversation", cool.name
    return None


def check(
    config: ComplianceConfig,
    request: ContactRequest,
    history: Iterable[ContactRecord],
    now: datetime,
) -> Decision:
    """Allowed now, or Deferred to the earliest instant all rules allow, with the first reason."""
    if now.tzinfo is None:
        raise ValueError("check needs an aware 'now'")
    if request.do_not_contact & {"all", request.channel}:
        return Deferred(None, f"do-not-contact flag on {request.channel}", "do_not_contact")
    rules = config.rule_set(request.jurisdiction)
    tz = _zone(rules, request)
    past = list(history)
    candidate, first = now, None
    for _ in range(_MAX_STEPS):
        blocked = _blocking(rules, request, past, candidate, tz)
        if blocked is None:
            break
        candidate = blocked[0]
        first = first or blocked
    else:
        raise RuntimeError(f"compliance rules of {rules.jurisdiction} do not settle")
    if first is None:
        return Allowed(now)
    return Deferred(candidate, first[1], first[2])


def _channels(data: Mapping[str, Any], path: str, default: Iterable[str]) -> frozenset[str]:
    chans = frozenset(
        str(c) for c in v.seq(data.get("channels", list(default)), f"{path}.channels")
    )
    if bad := sorted(chans - CHANNELS):
        raise ConfigError(
            f"{path}.channels: unknown channel {bad[0]!r} (known: {sorted(CHANNELS)})"
        )
    return chans


def _scope(data: Mapping[str, Any], path: str) -> Scope:
    scope = data.get("per")
    if scope not in ("debtor", "number", "debt"):
        raise ConfigError(f"{path}.per: expected 'debtor', 'number' or 'debt', got {scope!r}")
    return scope  # type: ignore[no-any-return]


def _outcomes(data: Mapping[str, Any], path: str) -> frozenset[str] | None:
    """The outcomes a rule counts: each one of the vocabulary (a misspelt one never matches)."""
    raw = data.get("outcomes")
    if raw is None:
        return None
    out = []
    for i, outcome in enumerate(v.seq(raw, f"{path}.outcomes")):
        if not isinstance(outcome, str) or not is_known_outcome(outcome):
            raise ConfigError(
                f"{path}.outcomes[{i}]: unknown contact outcome {outcome!r} "
                f"(known: {', '.join(sorted(CONTACT_OUTCOMES))})"
            )
        out.append(outcome)
    return frozenset(out)


def parse_rule_set(name: str, raw: object) -> RuleSet:
    path = f"jurisdictions.{name}"
    data = v.mapping(raw, path)
    v.only_keys(data, {"timezone", "quiet_hours", "caps", "cool_offs"}, path)
    tz_name = v.string(data, "timezone", path)
    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"{path}.timezone: unknown timezone {tz_name!r}") from exc
    quiet, caps, cools = [], [], []
    for i, item in enumerate(v.seq(data.get("quiet_hours", []), f"{path}.quiet_hours")):
        p = f"{path}.quiet_hours[{i}]"
        q = v.mapping(item, p)
        v.only_keys(q, {"name", "from", "to", "channels"}, p)
        start, end = v.clock_time(q.get("from"), f"{p}.from"), v.clock_time(q.get("to"), f"{p}.to")
        quiet.append(
            QuietHours(v.string(q, "name", p, "quiet_hours"), start, end, _channels(q, p, CHANNELS))
        )
    for i, item in enumerate(v.seq(data.get("caps", []), f"{path}.caps")):
        p = f"{path}.caps[{i}]"
        c = v.mapping(item, p)
        v.only_keys(c, {"name", "channels", "outcomes", "per", "max", "window_days"}, p)
        days = c.get("window_days")
        window = None if days is None else timedelta(days=v.integer(c, "window_days", p, 1))
        caps.append(
            Cap(
                v.string(c, "name", p),
                _channels(c, p, ["call"]),
                _outcomes(c, p),
                _scope(c, p),
                v.integer(c, "max", p, 1),
                window,
            )
        )
    for i, item in enumerate(v.seq(data.get("cool_offs", []), f"{path}.cool_offs")):
        p = f"{path}.cool_offs[{i}]"
        c = v.mapping(item, p)
        v.only_keys(c, {"name", "channels", "outcomes", "per", "days"}, p)
        outcomes = _outcomes(c, p)
        if not outcomes:
            raise ConfigError(f"{p}.outcomes: list the outcomes that start the cool-off")
        cools.append(
            CoolOff(
                v.string(c, "name", p),
                _channels(c, p, ["call"]),
                outcomes,
                _scope(c, p),
                timedelta(days=v.integer(c, "days", p, 1)),
            )
        )
    return RuleSet(name, tz, tuple(quiet), tuple(caps), tuple(cools))


def parse_compliance(doc: Mapping[str, Any]) -> ComplianceConfig:
    v.only_keys(doc, {"default_jurisdiction", "jurisdictions"}, "compliance")
    sets = {
        str(name): parse_rule_set(str(name), raw)
        for name, raw in v.mapping(doc.get("jurisdictions"), "jurisdictions").items()
    }
    default = v.string(doc, "default_jurisdiction", "compliance")
    if default not in sets:
        raise ConfigError(f"default_jurisdiction: {default!r} is not under 'jurisdictions'")
    return ComplianceConfig(sets, default)
