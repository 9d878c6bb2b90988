"""On-call schedules: who in a team is on call at a given instant.

A team has ordered rotations (members taking turns, handing off daily or weekly at a local
time, optionally only during some local hours) and overrides (a substitute for a time range).
:func:`oncall_at` answers for an aware instant. Pure: the instant is passed in, never read
from a clock; timezones come from zoneinfo.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from loanwatch.routing import validate as v
from loanwatch.routing.errors import ConfigError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class Rotation:
    """Members take turns; ``members[0]`` holds the first shift starting at ``start``."""

    name: str
    members: tuple[str, ...]
    period: Literal["daily", "weekly"]
    handoff: time
    weekday: int  # 0 = Monday; used by weekly rotations
    start: date
    hours: tuple[time, time] | None = None  # restrict to local [from, to); may wrap midnight

    def first_shift(self) -> date:
        if self.period == "daily":
            return self.start
        return self.start + timedelta(days=(self.weekday - self.start.weekday()) % 7)

    def covers(self, local: datetime) -> bool:
        if self.hours is None:
            return True
        begin, end = self.hours
        now = local.time()
        return begin <= now < end if begin < end else (now >= begin or now < end)

    def member_at(self, local: datetime) -> str:
        shift = local.date() if local.time() >= self.handoff else local.date() - timedelta(days=1)
        if self.period == "weekly":
            shift -= timedelta(days=(shift.weekday() - self.weekday) % 7)
            index = (shift - self.first_shift()).days // 7
        else:
            index = (shift - self.first_shift()).days
        return self.members[index % len(self.members)]


@dataclass(frozen=True, slots=True)
class Override:
    """``member`` is on call in [start, end), for ``replaces`` only, or for everyone."""

    start: datetime
    end: datetime
    member: str
    replaces: str | None = None


@dataclass(frozen=True, slots=True)
class TeamSchedule:
    team: str
    timezone: ZoneInfo
    rotations: tuple[Rotation, ...]
    overrides: tuple[Override, ...] = ()
    fallback: str | None = None  # when no rotation covers the instant


def oncall_at(schedule: TeamSchedule, instant: datetime) -> str | None:
    """The collector on call for ``schedule.team`` at the aware ``instant`` (None: nobody)."""
    if instant.tzinfo is None:
        raise ValueError("oncall_at needs an aware datetime")
    local = instant.astimezone(schedule.timezone)
    scheduled = next(
        (r.member_at(local) for r in schedule.rotations if r.covers(local)), schedule.fallback
    )
    for override in reversed(schedule.overrides):  # the last one written wins
        if override.start <= instant < override.end and override.replaces in (None, scheduled):
            return override.member
    return scheduled


def _aware(value: object, path: str, tz: ZoneInfo) -> datetime:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError as exc:
            raise ConfigError(f"{path}: expected an ISO timestamp, got {value!r}") from exc
    else:
        raise ConfigError(f"{path}: expected an ISO timestamp, got {value!r}")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)


def _start_date(value: object, path: str) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise ConfigError(f"{path}: expected a date YYYY-MM-DD, got {value!r}") from exc


def parse_rotation(raw: object, path: str) -> Rotation:
    data = v.mapping(raw, path)
    keys = {"name", "members", "period", "handoff", "weekday", "start", "hours"}
    v.only_keys(data, keys, path)
    members = tuple(str(m) for m in v.seq(data.get("members"), f"{path}.members"))
    if not members:
        raise ConfigError(f"{path}.members: a rotation needs at least one member")
    period = data.get("period", "weekly")
    if period not in ("daily", "weekly"):
        raise ConfigError(f"{path}.period: expected 'daily' or 'weekly', got {period!r}")
    weekday = str(data.get("weekday", "mon")).lower()
    if weekday not in WEEKDAYS:
        raise ConfigError(f"{path}.weekday: expected one of {WEEKDAYS}, got {weekday!r}")
    hours = None
    if "hours" in data:
        span = v.seq(data["hours"], f"{path}.hours")
        if len(span) != 2:
            raise ConfigError(f"{path}.hours: expected [from, to], got {span!r}")
        hours = (
            v.clock_time(span[0], f"{path}.hours[0]"),
            v.clock_time(span[1], f"{path}.hours[1]"),
        )
    return Rotation(
        name=v.string(data, "name", path, "default"),
        members=members,
        period=period,
        handoff=v.clock_time(data.get("handoff", "09:00"), f"{path}.handoff"),
        weekday=WEEKDAYS.index(weekday),
        start=_start_date(data.get("start"), f"{path}.start"),
        hours=hours,
    )


def parse_override(raw: object, path: str, tz: ZoneInfo) -> Override:
    data = v.mapping(raw, path)
    v.only_keys(data, {"start", "end", "member", "replaces"}, path)
    start, end = (
        _aware(data.get("start"), f"{path}.start", tz),
        _aware(data.get("end"), f"{path}.end", tz),
    )
    if end <= start:
        raise ConfigError(f"{path}.end: must be after start ({start.isoformat()})")
    replaces = data.get("replaces")
    return Override(start, end, v.string(data, "member", path), str(replaces) if replaces else None)


def parse_team(name: str, raw: object) -> TeamSchedule:
    path = f"teams.{name}"
    data = v.mapping(raw, path)
    v.only_keys(data, {"timezone", "rotations", "overrides", "fallback"}, path)
    tz_name = v.string(data, "timezone", path, "Asia/Shanghai")
    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"{path}.timezone: unknown timezone {tz_name!r}") from exc
    rotations = tuple(
        parse_rotation(r, f"{path}.rotations[{i}]")
        for i, r in enumerate(v.seq(data.get("rotations", []), f"{path}.rotations"))
    )
    overrides = tuple(
        parse_override(o, f"{path}.overrides[{i}]", tz)
        for i, o in enumerate(v.seq(data.get("overrides", []), f"{path}.overrides"))
    )
    fallback = data.get("fallback")
    if fallback is not None and (not isinstance(fallback, str) or not fallback):
        raise ConfigError(f"{path}.fallback: expected a collector id, got {fallback!r}")
    if not rotations and not fallback:
        raise ConfigError(f"{path}: needs rotations or a fallback collector")
    return TeamSchedule(name, tz, rotations, overrides, str(fallback) if fallback else None)


def parse_teams(doc: Mapping[str, Any]) -> dict[str, TeamSchedule]:
    teams = v.mapping(doc.get("teams"), "teams")
    return {str(name): parse_team(str(name), raw) for name, raw in teams.items()}
