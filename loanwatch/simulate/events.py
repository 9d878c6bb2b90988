"""Wire events as the simulator emits them: ids, RFC 3339 timestamps and a day's buffer.

An emitted item is either a ``dict`` (one JSON object, SPEC section 1) or ``bytes`` (a
deliberately malformed line). Every dict gets ``event_id``, ``type`` and ``occurred_at`` first.
Times are seconds since local midnight in the business timezone, Asia/Shanghai (a fixed +08:00:
China has had no daylight saving time since 1991).
"""

from __future__ import annotations

from random import Random
from typing import Any

from loanwatch.simulate.loans import Calendar

Event = dict[str, Any]
Emitted = Event | bytes
# (sort second within the day, emission sequence, item): the order the day is written in.
Item = tuple[int, int, Emitted]

DAY_SECONDS = 86_400
_SHANGHAI_OFFSET = 8 * 3_600


def hms(sec: int) -> str:
    return f"{sec // 3600:02d}:{sec // 60 % 60:02d}:{sec % 60:02d}"


class Emitter:
    """Builds events for the current day into a buffer, numbering ids across the whole run."""

    __slots__ = ("_n", "_seq", "buffer", "cal", "day", "late_rate", "prefix", "rng", "utc_share")

    def __init__(self, rng: Random, cal: Calendar, seed: int, utc_share: float,
                 late_rate: float) -> None:  # fmt: skip
        self.rng = rng
        self.cal = cal
        self.prefix = f"e{seed}-"
        self.utc_share = utc_share
        self.late_rate = late_rate
        self._seq = 0
        self._n = 0
        self.day = 0
        self.buffer: list[Item] = []

    def next_id(self) -> str:
        self._seq += 1
        return f"{self.prefix}{self._seq}"

    def next_seq(self) -> int:
        self._n += 1
        return self._n

    def stamp(self, day: int, sec: int) -> str:
        """``occurred_at`` for local second ``sec`` of ``day``: mostly +08:00, some in UTC."""
        u = self.rng.random()
        if u >= self.utc_share:
            return f"{self.cal.iso(day)}T{hms(sec)}+08:00"
        utc = sec - _SHANGHAI_OFFSET
        if utc < 0:  # the UTC wall date is the previous day
            utc += DAY_SECONDS
            day -= 1
        suffix = "Z" if u < self.utc_share * 0.6 else "+00:00"
        return f"{self.cal.iso(day)}T{hms(utc)}{suffix}"

    def make(self, etype: str, day: int, sec: int, fields: dict[str, Any]) -> Event:
        ev: Event = {"event_id": self.next_id(), "type": etype,
                     "occurred_at": self.stamp(day, sec)}  # fmt: skip
        ev.update(fields)
        return ev

    def emit(self, etype: str, sec: int, fields: dict[str, Any], *, late_after: int = -1) -> Event:
        """Buffer an event of today at local second ``sec``.

        ``late_after`` >= 0 allows a late arrival: with probability ``late_rate`` the event says
        it occurred one or two days earlier (never on or before day ``late_after``), while it
        still arrives at ``sec`` today.
        """
        day = self.day
        if late_after >= 0 and self.rng.random() < self.late_rate:
            back = self.rng.randint(1, 2)
            if day - back > late_after:
                day -= back
                ev = self.make(etype, day, self.rng.randrange(DAY_SECONDS), fields)
                self.buffer.append((sec, self.next_seq(), ev))
                return ev
        ev = self.make(etype, day, sec, fields)
        self.buffer.append((sec, self.next_seq(), ev))
        return ev

    def clock_tick(self) -> Event:
        return {"event_id": self.next_id(), "type": "clock_tick",
                "business_date": self.cal.iso(self.day)}  # fmt: skip


def event_key(item: Emitted) -> str | None:
    """The Kafka key of an emitted item: ``loan_id``, else ``borrower_id``, else none."""
    if isinstance(item, bytes):
        return None
    key = item.get("loan_id")
    if isinstance(key, str):
        return key
    key = item.get("borrower_id")
    return key if isinstance(key, str) else None
