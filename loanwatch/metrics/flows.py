"""Roll and cure rates by business day, not by wall-clock window.

A roll rate is a share of the loans that were in a bucket when a business day began and moved
to another during that day; a cure rate the share of the delinquent (non-M0) ones that came
back to M0. Prometheus' ``increase(...[1d])`` measures a wall-clock day: with one business day
per second (the demo), or a backlog drained at once, it mixes hundreds of business days.
So each partition keeps, for its last business days, the loans per bucket at the start of the
day and the day's transitions and cures (from the ``overdue``, ``bucket_changed`` and
``cured`` alerts, by their business date), and a worker exposes them for the latest business
day every partition it owns has finished. The recording rules divide those gauges
(``config/prometheus/rules/loanwatch-portfolio.yml``): the same figures as a replay of the
log, whatever the speed.

:class:`FlowBook` is pure (one per partition, stored in the ``meta`` table beside the clock);
:class:`FlowCollector` is a scrape-time ``prometheus_client`` collector over the books of the
partitions a worker owns, with no state of its own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

#: business days kept per partition (a worker shows the latest one all its partitions finished)
KEEP_DAYS = 8


@dataclass(slots=True)
class DayFlows:
    """One business day of one partition: where its loans stood at its start, what moved."""

    day: date
    at_start: dict[str, int]  # active loans per bucket when the day began
    transitions: Counter[tuple[str, str]] = field(default_factory=Counter)
    cures: Counter[str] = field(default_factory=Counter)  # by the bucket cured from

    def to_json(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "at_start": dict(sorted(self.at_start.items())),
            "transitions": sorted([a, b, n] for (a, b), n in self.transitions.items()),
            "cures": dict(sorted(self.cures.items())),
        }

    @staticmethod
    def from_json(doc: Mapping[str, Any]) -> DayFlows:
        return DayFlows(
            date.fromisoformat(doc["day"]),
            {str(k): int(v) for k, v in doc["at_start"].items()},
            Counter({(str(a), str(b)): int(n) for a, b, n in doc["transitions"]}),
            Counter({str(k): int(v) for k, v in doc["cures"].items()}),
        )


class FlowBook:
    """A partition's flows of its last :data:`KEEP_DAYS` business days."""

    def __init__(self, days: Iterable[DayFlows] = ()) -> None:
        self.days: list[DayFlows] = sorted(days, key=lambda d: d.day)[-KEEP_DAYS:]

    def day_started(self, day: date, buckets: Iterable[str]) -> None:
        """The partition's clock reached ``day``; ``buckets``: its active loans' just before."""
        if self.days and self.days[-1].day >= day:
            return
        self.days.append(DayFlows(day, dict(Counter(buckets))))
        del self.days[:-KEEP_DAYS]

    def moved(self, day: date, from_bucket: str, to_bucket: str) -> None:
        """A transition of ``day`` (an alert's business date); a cure if it ends in M0."""
        found = self._day(day)
        if found is None:
            return  # a day this partition did not begin here (before its first record)
        found.transitions[(from_bucket, to_bucket)] += 1
        if to_bucket == "M0":
            found.cures[from_bucket] += 1

    def _day(self, day: date) -> DayFlows | None:
        for found in reversed(self.days):
            if found.day == day:
                return found
            if found.day < day:  # a day inside a clock jump: counted on the day it began in
                return found
        return None

    def on(self, day: date) -> DayFlows | None:
        return next((d for d in self.days if d.day == day), None)

    def to_json(self) -> list[dict[str, Any]]:
        return [d.to_json() for d in self.days]

    @staticmethod
    def from_json(doc: Iterable[Mapping[str, Any]]) -> FlowBook:
        return FlowBook(DayFlows.from_json(d) for d in doc)


def finished_day(clocks: Iterable[date | None]) -> date | None:
    """The latest business day every partition has finished (the day before the earliest
    clock); None while a partition has no clock yet."""
    days = list(clocks)
    if not days or any(d is None for d in days):
        return None
    return date.fromordinal(min(d for d in days if d is not None).toordinal() - 1)


@dataclass(frozen=True, slots=True)
class PartitionFlows:
    clock: date | None
    book: FlowBook


class FlowCollector(Collector):
    """Scrape-time gauges of the latest business day all owned partitions finished.

    Nothing is exposed for a day one of them did not begin itself (its clock jumped over it,
    or it was restored without that day's book): no sample rather than a partial one.
    """

    def __init__(
        self,
        partitions: Callable[[], Iterable[PartitionFlows]],
        tz: ZoneInfo,
        buckets: Iterable[str],
    ) -> None:
        self.partitions = partitions
        self.tz = tz
        self.buckets = tuple(buckets)

    def collect(self) -> Iterator[Metric]:
        parts = list(self.partitions())
        day = finished_day(p.clock for p in parts)
        stamp = GaugeMetricFamily(
            "loanwatch_flow_business_date",
            "The business day the flow gauges describe (start of day, epoch seconds): the "
            "latest one every partition of this worker has finished.",
        )
        at_start = GaugeMetricFamily(
            "loanwatch_flow_loans_at_start",
            "Active loans per bucket when that business day began.",
            labels=["bucket"],
        )
        moved = GaugeMetricFamily(
            "loanwatch_flow_transitions",
            "Loans that moved between buckets during that business day (cures: to M0).",
            labels=["from_bucket", "to_bucket"],
        )
        cured = GaugeMetricFamily(
            "loanwatch_flow_cures",
            "Loans cured (back to M0) during that business day, by the bucket cured from.",
            labels=["from_bucket"],
        )
        flows = [p.book.on(day) for p in parts] if day is not None else []
        if day is not None and parts and all(f is not None for f in flows):
            start = datetime.combine(day, time(), self.tz).timestamp()
            stamp.add_metric([], start)
            counts: Counter[str] = Counter()
            transitions: Counter[tuple[str, str]] = Counter()
            cures: Counter[str] = Counter()
            for f in flows:
                assert f is not None
                counts.update(f.at_start)
                transitions.update(f.transitions)
                cures.update(f.cures)
            for bucket in self.buckets:
                at_start.add_metric([bucket], counts.get(bucket, 0))
                cured.add_metric([bucket], cures.get(bucket, 0))
            for (a, b), n in sorted(transitions.items()):
                moved.add_metric([a, b], n)
        yield stamp
        yield at_start
        yield moved
        yield cured
