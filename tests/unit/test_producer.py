"""The pure part of the producer: routing, broadcast ticks, sync-clock ticks, as-of, timestamps."""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from loanwatch.streams.producer import Step, Timestamps, plan, prefixed, topic_list
from loanwatch.streams.topics import TopicNames

TZ = ZoneInfo("Asia/Shanghai")
NAMES = TopicNames()
SCENARIO = (
    Path(__file__).parents[1]
    / "fixtures"
    / "scenarios"
    / "rules-allocation-reversal-promise"
    / "events.jsonl"
)


def ev(kind: str, at: str = "2026-01-01T09:00:00+08:00", **fields: Any) -> dict[str, Any]:
    return {"event_id": f"e-{kind}-{at}", "type": kind, "occurred_at": at, **fields}


def steps(items: list[Any], **kw: Any) -> list[Step]:
    options: dict[str, Any] = {"names": NAMES, "partitions": 4, "tz": TZ, "sync_clock": False}
    return list(plan(items, **(options | kw)))


@pytest.mark.parametrize(
    ("event", "topic", "key"),
    [
        (ev("loan_opened", loan_id="L1"), "loan.accounts", b"L1"),
        (ev("schedule_revised", loan_id="L1"), "loan.accounts", b"L1"),
        (ev("loan_closed", loan_id="L1"), "loan.accounts", b"L1"),
        (ev("payment_received", loan_id="L2"), "loan.payments", b"L2"),
        (ev("payment_reversed", loan_id="L2"), "loan.payments", b"L2"),
        (ev("promise_to_pay", loan_id="L3"), "loan.collections", b"L3"),
        (ev("contact_logged", loan_id="L3"), "loan.collections", b"L3"),
        (ev("risk_signal", loan_id="L4"), "loan.signals", b"L4"),
        (ev("risk_signal", borrower_id="B4"), "loan.signals", b"B4"),
        (ev("mystery", loan_id="L5"), "loan.accounts", b"L5"),
    ],
)
def test_every_type_goes_to_its_topic_with_its_key(
    event: dict[str, Any], topic: str, key: bytes
) -> None:
    (step,) = steps([event])
    (rec,) = step.records
    assert (rec.topic, rec.key, rec.partition) == (topic, key, None)
    assert json.loads(rec.value) == event


def test_a_clock_tick_goes_to_every_partition_explicitly() -> None:
    tick = b'{"event_id":"t1","type":"clock_tick","business_date":"2026-01-05"}'
    (step,) = steps([tick])
    assert [(r.topic, r.key, r.partition) for r in step.records] == [
        ("loan.clock", None, p) for p in range(4)
    ]
    assert all(r.value == tick for r in step.records)  # the original bytes, unchanged


def test_raw_lines_are_sent_unchanged_and_unkeyed_to_accounts() -> None:
    lines = [b"{not json", b"[1, 2]", b'"text"']
    out = steps(lines)
    assert [s.kind for s in out] == ["raw"] * 3
    assert [(s.records[0].topic, s.records[0].key, s.records[0].value) for s in out] == [
        ("loan.accounts", None, line) for line in lines
    ]


def test_prefixed_names_cover_every_topic() -> None:
    names = prefixed("x-")
    assert topic_list(names) == [f"x-{t}" for t in topic_list(NAMES)]
    assert len(topic_list(names)) == len(fields(NAMES))
    assert "x-loan.status" in topic_list(names)
    assert prefixed("") == NAMES


def test_sync_clock_ticks_every_partition_before_each_new_date() -> None:
    items = [
        ev("loan_opened", "2026-01-01T09:00:00+08:00", loan_id="A"),
        ev("payment_received", "2026-01-01T10:00:00+08:00", loan_id="A"),
        ev("payment_received", "2026-01-03T10:00:00+08:00", loan_id="A"),
        ev("payment_received", "2026-01-02T10:00:00+08:00", loan_id="A"),  # late: no tick
        ev("payment_received", "2026-01-02T18:00:00Z", loan_id="A"),  # 01-03 local: no tick
        ev("payment_received", "2026-01-04T00:00:00+08:00", loan_id="A"),
    ]
    out = steps(items, sync_clock=True)
    assert [(s.kind, s.business_date) for s in out] == [
        ("sync_tick", date(2026, 1, 1)),
        ("event", date(2026, 1, 1)),
        ("event", date(2026, 1, 1)),
        ("sync_tick", date(2026, 1, 3)),
        ("event", date(2026, 1, 3)),
        ("event", date(2026, 1, 2)),
        ("event", date(2026, 1, 3)),
        ("sync_tick", date(2026, 1, 4)),
        ("event", date(2026, 1, 4)),
    ]
    tick = out[3]
    assert [r.partition for r in tick.records] == [0, 1, 2, 3]
    assert json.loads(tick.records[0].value) == {
        "event_id": "sync-2026-01-03",
        "type": "clock_tick",
        "business_date": "2026-01-03",
    }
    assert [s.new_day for s in out] == [True, False, False, True, False, False, False, True, False]


def test_sync_clock_adds_no_tick_before_a_tick_nor_for_unreadable_dates() -> None:
    items: list[Any] = [
        {"event_id": "t", "type": "clock_tick", "business_date": "2026-01-05"},
        ev("payment_received", "not a time", loan_id="A"),
        ev("payment_received", "2026-01-05T10:00:00+08:00", loan_id="A"),
    ]
    out = steps(items, sync_clock=True)
    assert [s.kind for s in out] == ["event", "event", "event"]
    assert [s.new_day for s in out] == [True, False, False]


def test_as_of_stops_before_the_first_later_event_then_ticks_as_of() -> None:
    items = [
        ev("loan_opened", "2026-01-01T09:00:00+08:00", loan_id="A"),
        ev("payment_received", "2026-01-10T09:00:00+08:00", loan_id="A"),
        ev("payment_received", "2026-01-02T09:00:00+08:00", loan_id="A"),  # never reached
    ]
    out = steps(items, as_of=date(2026, 1, 5))
    assert [s.kind for s in out] == ["event", "as_of_tick"]
    last = out[-1]
    assert last.business_date == date(2026, 1, 5) and last.new_day
    assert [json.loads(r.value)["event_id"] for r in last.records] == ["as-of-2026-01-05"] * 4


def test_as_of_after_the_whole_log_still_ticks() -> None:
    out = steps([ev("loan_opened", loan_id="A")], as_of=date(2026, 3, 1), sync_clock=True)
    assert [s.kind for s in out] == ["sync_tick", "event", "as_of_tick"]


def test_the_shared_scenario_plans_as_expected() -> None:
    lines = SCENARIO.read_bytes().splitlines()
    out = steps(lines, sync_clock=True, partitions=3)
    events = [s for s in out if s.kind == "event"]
    assert len(events) == len(lines) == 10
    assert sum(s.kind == "sync_tick" for s in out) == 7
    assert [s.records[0].value for s in events] == lines  # log order, bytes unchanged
    assert len(events[-1].records) == 3  # h9 is a broadcast tick


def test_timestamps_strictly_increase_and_never_fall_behind_the_clock() -> None:
    now = [1000]
    stamps = Timestamps(lambda: now[0])
    first = [stamps.next() for _ in range(3)]
    assert first == [1000, 1001, 1002]
    now[0] = 5000
    assert stamps.next() == 5000
    now[0] = 10  # the wall clock stepping back never makes a stamp go back
    assert stamps.next() == 5001
