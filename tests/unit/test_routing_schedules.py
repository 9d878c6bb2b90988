"""On-call schedules: daily and weekly handoffs in local time, hour-restricted layers, overrides."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from loanwatch.routing.config import load_routing
from loanwatch.routing.errors import ConfigError
from loanwatch.routing.schedules import oncall_at, parse_team

SH = ZoneInfo("Asia/Shanghai")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_daily_rotation_hands_off_at_local_time() -> None:
    team = load_routing().teams["consumer-early"]  # c-li, c-wang, c-zhao daily 09:00 from Jan 5
    assert oncall_at(team, at("2026-01-05T09:00:00+08:00")) == "c-li"
    assert oncall_at(team, at("2026-01-06T08:59:59+08:00")) == "c-li"
    assert oncall_at(team, at("2026-01-06T09:00:00+08:00")) == "c-wang"
    assert oncall_at(team, at("2026-01-07T12:00:00+08:00")) == "c-zhao"
    assert oncall_at(team, at("2026-01-08T12:00:00+08:00")) == "c-li"
    # The same instant written in UTC resolves the same way (01:00Z = 09:00 Shanghai).
    assert oncall_at(team, datetime(2026, 1, 6, 0, 59, tzinfo=UTC)) == "c-li"
    assert oncall_at(team, datetime(2026, 1, 6, 1, 0, tzinfo=UTC)) == "c-wang"


def test_weekly_rotation_across_the_monday_handoff() -> None:
    team = load_routing().teams["sme-collections"]  # s-chen, s-liu weekly Mon 09:00
    assert oncall_at(team, at("2026-01-11T23:00:00+08:00")) == "s-chen"  # Sunday
    assert oncall_at(team, at("2026-01-12T08:59:00+08:00")) == "s-chen"  # Monday before handoff
    assert oncall_at(team, at("2026-01-12T09:00:00+08:00")) == "s-liu"
    assert oncall_at(team, at("2026-01-19T09:00:00+08:00")) == "s-chen"


def test_hours_layer_and_fallback() -> None:
    team = load_routing().teams["late-stage"]  # business hours 08:30-20:00, else night desk
    assert oncall_at(team, at("2026-01-06T10:00:00+08:00")) == "l-zhou"
    assert oncall_at(team, at("2026-01-06T21:00:00+08:00")) == "l-night-desk"
    assert oncall_at(team, at("2026-01-13T10:00:00+08:00")) == "l-sun"


def test_dst_zone_keeps_local_handoff() -> None:
    team = parse_team(
        "us",
        {
            "timezone": "America/New_York",
            "rotations": [
                {
                    "members": ["a", "b"],
                    "period": "daily",
                    "handoff": "09:00",
                    "start": "2026-03-07",
                }
            ],
        },
    )
    # 2026-03-08 is the spring-forward day: 09:00 EDT is 13:00Z, not 14:00Z.
    assert oncall_at(team, datetime(2026, 3, 8, 12, 59, tzinfo=UTC)) == "a"
    assert oncall_at(team, datetime(2026, 3, 8, 13, 0, tzinfo=UTC)) == "b"


def test_override_replaces_member_for_its_range_only() -> None:
    team = parse_team(
        "t",
        {
            "timezone": "Asia/Shanghai",
            "rotations": [
                {
                    "members": ["a", "b"],
                    "period": "daily",
                    "handoff": "09:00",
                    "start": "2026-01-05",
                }
            ],
            "overrides": [
                {
                    "start": "2026-01-05T12:00",
                    "end": "2026-01-05T18:00",
                    "member": "sub",
                    "replaces": "a",
                },
                {
                    "start": "2026-01-06T12:00",
                    "end": "2026-01-06T13:00",
                    "member": "sub2",
                    "replaces": "a",
                },
                {
                    "start": "2026-01-07T00:00+08:00",
                    "end": "2026-01-07T01:00+08:00",
                    "member": "all",
                },
            ],
        },
    )
    assert oncall_at(team, at("2026-01-05T11:59:00+08:00")) == "a"
    assert oncall_at(team, at("2026-01-05T12:00:00+08:00")) == "sub"
    assert oncall_at(team, at("2026-01-05T18:00:00+08:00")) == "a"  # end is exclusive
    assert oncall_at(team, at("2026-01-06T12:30:00+08:00")) == "b"  # replaces a, but b is on
    assert oncall_at(team, at("2026-01-07T00:30:00+08:00")) == "all"


def test_naive_instant_is_refused() -> None:
    team = load_routing().teams["ops"]
    with pytest.raises(ValueError, match="aware"):
        oncall_at(team, datetime(2026, 1, 1))


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"timezone": "Mars/Olympus", "fallback": "x"}, "unknown timezone 'Mars/Olympus'"),
        ({"rotations": [{"members": [], "start": "2026-01-05"}]}, "at least one member"),
        ({"rotations": [{"members": ["a"], "start": "2026-01-05", "period": "hourly"}]}, "period"),
        (
            {"rotations": [{"members": ["a"], "start": "2026-01-05", "weekday": "funday"}]},
            "weekday",
        ),
        ({"rotations": [{"members": ["a"], "start": "soon"}]}, "start: expected a date"),
        ({"rotations": [{"members": ["a"], "start": "2026-01-05", "handoff": "25:00"}]}, "handoff"),
        (
            {
                "fallback": "x",
                "overrides": [
                    {"start": "2026-01-02T00:00", "end": "2026-01-01T00:00", "member": "y"}
                ],
            },
            "must be after start",
        ),
        ({}, "needs rotations or a fallback"),
    ],
)
def test_schedule_validation(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_team("t", raw)
