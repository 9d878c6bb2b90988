"""The pure part of the producer: routing, broadcast ticks, sync-clock ticks, as-of, timestamps."""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from loanwatch.streams.partitioning import partition_for
from loanwatch.streams.producer import (
    Step,
    Timestamps,
    looking_ahead,
    plan,
    prefixed,
    scan_directory,
    topic_list,
)
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
    # A borrower-keyed signal names its borrower: its partition is chosen, not the key's.
    part = partition_for(event["borrower_id"], 4) if "borrower_id" in event else None
    assert (rec.topic, rec.key, rec.partition) == (topic, key, part)
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


def test_loan_events_go_to_their_borrowers_partition_even_before_the_opening() -> None:
    opened = ev("loan_opened", "2026-01-02T09:00:00+08:00", loan_id="A", borrower_id="B-1")
    early = ev("payment_received", "2026-01-01T09:00:00+08:00", loan_id="A")  # an orphan
    later = ev("payment_received", "2026-01-03T09:00:00+08:00", loan_id="A")
    other = ev("payment_received", "2026-01-03T09:00:00+08:00", loan_id="never-opened")
    items = [early, opened, later, other]
    want = partition_for("B-1", 16)
    assert want != partition_for("A", 16)  # else the test proves nothing
    for directory in (scan_directory(items), None):
        source = items if directory is not None else looking_ahead(items, {}, 10)
        out = steps(list(source), partitions=16, directory=directory)
        parts = [s.records[0].partition for s in out]
        # without a scan, the plan learns the opening when it meets it: the orphan is late
        if directory is not None:
            assert parts == [want, want, want, None]
        else:
            assert parts[1:] == [want, want, None]


def test_looking_ahead_learns_openings_before_their_orphans_are_planned() -> None:
    opened = ev("loan_opened", "2026-01-02T09:00:00+08:00", loan_id="A", borrower_id="B-1")
    early = ev("payment_received", "2026-01-01T09:00:00+08:00", loan_id="A")
    directory: dict[str, str] = {}
    out = steps(
        list(looking_ahead([early, opened], directory, 5)), partitions=16, directory=directory
    )
    assert [s.records[0].partition for s in out] == [partition_for("B-1", 16)] * 2


def test_a_duplicate_opening_follows_the_first_borrower_so_the_worker_says_duplicate() -> None:
    first = ev("loan_opened", loan_id="A", borrower_id="B-1")
    again = {**ev("loan_opened", loan_id="A", borrower_id="B-2"), "event_id": "other"}
    out = steps([first, again], partitions=16)
    assert {s.records[0].partition for s in out} == {partition_for("B-1", 16)}


def test_the_clock_jump_guard_makes_no_sync_tick_for_a_mistyped_year() -> None:
    items = [
        ev("payment_received", "2026-01-01T10:00:00+08:00", loan_id="A"),
        ev("payment_received", "2062-01-01T10:00:00+08:00", loan_id="A"),  # mistyped
        ev("payment_received", "2026-01-20T10:00:00+08:00", loan_id="A"),
    ]
    out = steps(items, sync_clock=True, max_clock_jump_days=31)
    ticks = [s.business_date for s in out if s.kind == "sync_tick"]
    assert ticks == [date(2026, 1, 1), date(2026, 1, 20)]
    unguarded = steps(items, sync_clock=True)
    assert [s.business_date for s in unguarded if s.kind == "sync_tick"] == [
        date(2026, 1, 1),
        date(2062, 1, 1),
    ]


def test_a_clock_tick_is_never_guarded_and_a_duplicate_id_moves_no_clock() -> None:
    first = ev("payment_received", "2026-01-01T10:00:00+08:00", loan_id="A")
    dup = {**first, "occurred_at": "2026-01-05T10:00:00+08:00"}  # same id, later date
    tick = {"event_id": "t", "type": "clock_tick", "business_date": "2027-01-01"}
    out = steps([first, dup, tick], sync_clock=True, max_clock_jump_days=31)
    assert [s.business_date for s in out if s.kind == "sync_tick"] == [date(2026, 1, 1)]
    assert out[-1].new_day and out[-1].business_date == date(2027, 1, 1)
