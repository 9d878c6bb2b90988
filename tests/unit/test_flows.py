"""Business-day flows (loanwatch.metrics.flows): the starting point and moves of each day."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from loanwatch.metrics.flows import KEEP_DAYS, FlowBook, FlowCollector, PartitionFlows, finished_day

pytestmark = pytest.mark.unit

D = date(2026, 3, 5)
TZ = ZoneInfo("Asia/Shanghai")
BUCKETS = ("M0", "M1", "M2")


def test_a_day_keeps_where_it_began_and_what_moved() -> None:
    book = FlowBook()
    book.day_started(D, ["M0", "M0", "M1"])
    book.day_started(D, ["M2"])  # the same day again (a second record of it): no new start
    book.moved(D, "M0", "M1")
    book.moved(D, "M1", "M0")
    day = book.on(D)
    assert day is not None and day.at_start == {"M0": 2, "M1": 1}
    assert day.transitions == {("M0", "M1"): 1, ("M1", "M0"): 1}
    assert day.cures == {"M1": 1}
    assert FlowBook.from_json(book.to_json()).to_json() == book.to_json()  # stored in meta


def test_moves_of_a_day_inside_a_clock_jump_count_on_the_day_it_began_in() -> None:
    book = FlowBook()
    book.moved(D, "M0", "M1")  # before the partition began any day here: nowhere to count
    assert book.days == []
    book.day_started(D, ["M0"])
    book.moved(date(2026, 3, 7), "M0", "M1")  # the clock jumped from the 5th to the 9th
    assert book.on(D) is not None and book.on(D).transitions[("M0", "M1")] == 1  # type: ignore[union-attr]


def test_only_the_last_days_are_kept() -> None:
    book = FlowBook()
    for i in range(KEEP_DAYS + 3):
        book.day_started(date.fromordinal(D.toordinal() + i), [])
    assert len(book.days) == KEEP_DAYS
    assert book.days[0].day == date.fromordinal(D.toordinal() + 3)


def test_the_worker_shows_the_latest_day_all_its_partitions_finished() -> None:
    assert finished_day([date(2026, 3, 7), date(2026, 3, 6)]) == D
    assert finished_day([D, None]) is None
    a, b = FlowBook(), FlowBook()
    for book, starts in ((a, ["M0", "M1"]), (b, ["M1", "M1"])):
        book.day_started(D, starts)
        book.day_started(date(2026, 3, 6), [])
    a.moved(D, "M1", "M2")
    b.moved(D, "M1", "M0")
    parts = [PartitionFlows(date(2026, 3, 6), a), PartitionFlows(date(2026, 3, 7), b)]
    registry = CollectorRegistry()
    registry.register(FlowCollector(lambda: parts, TZ, BUCKETS))
    text = generate_latest(registry).decode()
    assert "loanwatch_flow_business_date 1.77264e+09" in text  # 2026-03-05 00:00 +08:00
    assert 'loanwatch_flow_loans_at_start{bucket="M1"} 3.0' in text
    assert 'loanwatch_flow_transitions{from_bucket="M1",to_bucket="M2"} 1.0' in text
    assert 'loanwatch_flow_cures{from_bucket="M1"} 1.0' in text
    # a partition that did not begin that day itself: no sample rather than a partial one
    parts.append(PartitionFlows(date(2026, 3, 9), FlowBook()))
    text = generate_latest(registry).decode()
    assert "\nloanwatch_flow_business_date " not in text and "loanwatch_flow_cures{" not in text
