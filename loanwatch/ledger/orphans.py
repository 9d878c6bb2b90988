"""Orphans: loan events that arrived before their loan was opened (SPEC: parked, not rejected).

An event for an unknown loan waits here up to ``orphan_ttl_days`` business days; opening the
loan takes its orphans (applied in arrival order), and the business clock passing the TTL
expires them (the engine dead-letters them as ``unknown_loan``). The waiting events live in a
mapping (a dict in replay, a table-backed store live, so every change is a reassignment); the
expiry queue beside it is derived, rebuilt from the mapping after a restart.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from loanwatch.ledger.records import LoanEvent

#: Where a record came from (topic, partition, offset), opaque to the engine.
Source = tuple[str, int, int]


@dataclass(frozen=True, slots=True)
class Parked:
    obj: dict[str, Any]
    event: LoanEvent
    parked_on: date
    source: Source | None = None  # kept for the dead letter if it expires


class Orphans:
    """The parked events by loan id and the queue of the dates they expire on."""

    def __init__(self, ttl_days: int, waiting: MutableMapping[str, list[Parked]] | None = None):
        self.ttl = timedelta(days=ttl_days)
        self.waiting: MutableMapping[str, list[Parked]] = waiting if waiting is not None else {}
        self._expiry: list[tuple[date, int, str]] = []
        self._seq = 0

    def park(
        self, event: LoanEvent, obj: dict[str, Any], day: date, source: Source | None = None
    ) -> None:
        """Keep ``event`` (decoded from ``obj``) until its loan opens or ``day`` + TTL passes."""
        self.waiting[event.loan_id] = [
            *self.waiting.get(event.loan_id, []),
            Parked(obj, event, day, source),
        ]
        self._queue(event.loan_id, day)

    def holds(self, loan_id: str, event_id: str) -> bool:
        return any(p.obj.get("event_id") == event_id for p in self.waiting.get(loan_id, []))

    def take(self, loan_id: str) -> list[Parked]:
        """The orphans of a loan just opened, in arrival order; they wait no more."""
        return self.waiting.pop(loan_id, [])

    def next_expiry(self) -> date | None:
        """The first business date on which some orphan may expire."""
        return self._expiry[0][0] if self._expiry else None

    def expire(self, day: date) -> list[Parked]:
        """Drop and return the orphans older than the TTL on ``day``."""
        expired: list[Parked] = []
        while self._expiry and self._expiry[0][0] <= day:
            _, _, loan_id = heapq.heappop(self._expiry)
            waiting = self.waiting.get(loan_id, [])
            keep = [p for p in waiting if day - p.parked_on <= self.ttl]
            expired.extend(p for p in waiting if day - p.parked_on > self.ttl)
            if keep and len(keep) != len(waiting):
                self.waiting[loan_id] = keep
            elif not keep and loan_id in self.waiting:
                del self.waiting[loan_id]
        return expired

    def reindex(self, waiting: Iterable[tuple[str, list[date]]]) -> None:
        """Re-derive the expiry queue from what is parked (after a restart)."""
        self._expiry.clear()
        for loan_id, parked_on in waiting:
            for day in parked_on:
                self._queue(loan_id, day)

    def _queue(self, loan_id: str, parked_on: date) -> None:
        self._seq += 1
        heapq.heappush(self._expiry, (parked_on + self.ttl + timedelta(days=1), self._seq, loan_id))
