"""The orphan park: unknown loans' events wait their TTL, go with the opening, or expire."""

from __future__ import annotations

from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from loanwatch.ledger.orphans import Orphans
from loanwatch.ledger.parse import parse_event
from loanwatch.ledger.records import LoanEvent


def _payment(event_id: str, loan_id: str) -> tuple[LoanEvent, dict[str, Any]]:
    obj = {
        "event_id": event_id,
        "type": "payment_received",
        "occurred_at": "2026-01-05T10:00:00Z",
        "loan_id": loan_id,
        "payment_id": f"p-{event_id}",
        "amount": "10.00",
    }
    event = parse_event(obj, ZoneInfo("UTC"))
    assert isinstance(event, LoanEvent), event
    return event, obj


def test_an_orphan_expires_the_day_after_its_ttl_and_not_before() -> None:
    park = Orphans(ttl_days=3)
    park.park(*_payment("e1", "L1"), date(2026, 1, 5))
    assert park.next_expiry() == date(2026, 1, 9)
    assert park.expire(date(2026, 1, 8)) == []
    assert park.holds("L1", "e1")
    gone = park.expire(date(2026, 1, 9))
    assert [p.obj["event_id"] for p in gone] == ["e1"]
    assert dict(park.waiting) == {} and park.next_expiry() is None


def test_only_the_old_orphans_of_a_loan_expire() -> None:
    park = Orphans(ttl_days=2)
    park.park(*_payment("old", "L1"), date(2026, 1, 1))
    park.park(*_payment("new", "L1"), date(2026, 1, 3))
    gone = park.expire(date(2026, 1, 4))
    assert [p.obj["event_id"] for p in gone] == ["old"]
    assert [p.obj["event_id"] for p in park.waiting["L1"]] == ["new"]


def test_opening_takes_the_orphans_in_arrival_order_and_they_never_expire() -> None:
    park = Orphans(ttl_days=1)
    park.park(*_payment("a", "L1"), date(2026, 1, 1))
    park.park(*_payment("b", "L1"), date(2026, 1, 1))
    assert [p.obj["event_id"] for p in park.take("L1")] == ["a", "b"]
    assert park.expire(date(2026, 2, 1)) == []
    assert not park.holds("L1", "a")


def test_reindex_rebuilds_the_expiry_queue_from_what_is_parked() -> None:
    park = Orphans(ttl_days=3)
    park.park(*_payment("e1", "L1"), date(2026, 1, 5))
    restarted = Orphans(ttl_days=3, waiting=dict(park.waiting))
    assert restarted.next_expiry() is None
    restarted.reindex([("L1", [date(2026, 1, 5)])])
    assert restarted.next_expiry() == date(2026, 1, 9)
    assert [p.obj["event_id"] for p in restarted.expire(date(2026, 1, 9))] == ["e1"]
