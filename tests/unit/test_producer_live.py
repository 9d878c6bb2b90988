"""The live simulator's pacing: speed parsing, day-start ticks, the accelerated clock."""

from __future__ import annotations

import json
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from loanwatch.simulate.live import Pacer, SpeedError, parse_speed, with_day_ticks
from loanwatch.streams.producer import LogProducer, Timestamps
from loanwatch.streams.topics import TopicNames
from tests.unit.test_producer_publish import FakeKafka

TZ = ZoneInfo("Asia/Shanghai")


def ev(at: str, loan: str = "A") -> dict[str, Any]:
    return {"event_id": f"{loan}-{at}", "type": "payment_received", "occurred_at": at,
            "loan_id": loan, "payment_id": at, "amount": "1.00"}  # fmt: skip


@pytest.mark.parametrize(
    ("text", "speed"),
    [("1d/s", 86400.0), ("6h/s", 21600.0), ("30m/s", 1800.0), ("1d/2s", 43200.0), ("2s/s", 2.0)],
)
def test_parse_speed(text: str, speed: float) -> None:
    assert parse_speed(text) == speed


@pytest.mark.parametrize("text", ["", "1d", "fast", "0d/s", "1w/s", "-1d/s"])
def test_parse_speed_rejects(text: str) -> None:
    with pytest.raises(SpeedError):
        parse_speed(text)


def test_a_tick_starts_every_day_including_empty_ones() -> None:
    events: list[Any] = [
        ev("2026-01-01T09:00:00+08:00"),
        ev("2026-01-01T10:00:00+08:00"),
        ev("2026-01-03T23:30:00+08:00"),
        ev("2026-01-02T10:00:00+08:00"),  # late: no tick, never reordered
        ev("2026-01-03T16:30:00Z"),  # 01-04 00:30 local
        "{broken",  # a simulator's deliberately bad line passes through
        json.dumps(ev("2026-01-05T08:00:00+08:00")),  # a wire line is read for its date
    ]
    out = list(with_day_ticks(events, TZ))
    kinds = [e if isinstance(e, str) else e.get("business_date") or e["event_id"] for e in out]
    assert kinds == [
        "2026-01-01",
        events[0]["event_id"],
        events[1]["event_id"],
        "2026-01-02",
        "2026-01-03",
        events[2]["event_id"],
        events[3]["event_id"],
        "2026-01-04",
        events[4]["event_id"],
        "{broken",
        "2026-01-05",
        events[6],
    ]
    assert out[0] == {"event_id": "live-2026-01-01", "type": "clock_tick",
                      "business_date": "2026-01-01"}  # fmt: skip


def test_a_day_the_source_opens_with_its_own_tick_gets_no_second_one() -> None:
    own = {"event_id": "s1", "type": "clock_tick", "business_date": "2026-01-03"}
    out = list(with_day_ticks([ev("2026-01-01T09:00:00+08:00"), own], TZ))
    assert [e["event_id"] for e in out] == [  # type: ignore[index]
        "live-2026-01-01",
        out[1]["event_id"],  # type: ignore[index]
        "live-2026-01-02",
        "s1",
    ]


async def test_pacer_maps_one_day_to_one_second_and_never_waits_for_the_past() -> None:
    now = [100.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(round(seconds, 6))
        now[0] += seconds

    pacer = Pacer(86400.0, TZ, monotonic=lambda: now[0], sleep=sleep)
    kafka = FakeKafka(partitions=2)
    events = [
        ev("2026-01-01T06:00:00+08:00"),
        ev("2026-01-01T18:00:00+08:00"),
        ev("2026-01-03T12:00:00+08:00"),
        ev("2026-01-02T12:00:00+08:00"),  # late: published at once
    ]
    async with LogProducer(
        "unused:9092", TopicNames(), tz=TZ, timestamps=Timestamps(lambda: 1), kafka=kafka
    ) as out:
        report = await out.publish(with_day_ticks(events, TZ), pace=pacer.wait)
    # midnight 01-01 is the origin: 0.25 s, +0.5 s, ticks at 1.0 and 2.0, the event at 2.5
    assert slept == [0.25, 0.5, 0.25, 1.0, 0.5]
    assert now[0] == pytest.approx(102.5)
    assert report.events == 4 + 3  # three day ticks are events of the live log
    assert report.sync_ticks == 0  # every new day already starts with a tick
    ticks = [json.loads(s[4]) for s in kafka.sent if s[0] == "loan.clock"]
    assert [t["business_date"] for t in ticks] == [
        str(date(2026, 1, d)) for d in (1, 1, 2, 2, 3, 3)
    ]
