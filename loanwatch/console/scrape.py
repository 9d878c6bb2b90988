"""Read a worker's ``/metrics`` text into the few numbers the console shows.

Pure parsing (no HTTP here): portfolio loans by bucket and by class summed over product and
region, events and alerts counters. It must never invent a series that the worker did not expose.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from loanwatch.metrics.portfolio import BUCKETS, CLASSES


@dataclass(frozen=True, slots=True)
class Portfolio:
    """Active loans by bucket and by class, and the pipeline counters, from one scrape."""

    by_bucket: dict[str, int] = field(default_factory=dict)
    by_class: dict[str, int] = field(default_factory=dict)
    events_total: float = 0.0
    alerts_by_severity: dict[str, int] = field(default_factory=dict)
    dead_letters_total: float = 0.0

    @property
    def loans(self) -> int:
        return sum(self.by_bucket.values())


def _ordered(counts: Counter[str], known: tuple[str, ...]) -> dict[str, int]:
    """Known labels first in their natural order (zeros included), then any others."""
    out = {name: int(counts.get(name, 0)) for name in known}
    out.update({k: int(v) for k, v in sorted(counts.items()) if k not in out})
    return out


def parse_metrics(text: str) -> Portfolio:
    """Sum the worker's portfolio gauges over product and region; total the counters."""
    buckets: Counter[str] = Counter()
    classes: Counter[str] = Counter()
    alerts: Counter[str] = Counter()
    events = dead = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "loanwatch_portfolio_loans":
                buckets[sample.labels.get("bucket", "?")] += int(sample.value)
            elif sample.name == "loanwatch_portfolio_class_loans":
                classes[sample.labels.get("classification", "?")] += int(sample.value)
            elif sample.name == "loanwatch_events_total":
                events += sample.value
            elif sample.name == "loanwatch_alerts_total":
                alerts[sample.labels.get("severity", "?")] += int(sample.value)
            elif sample.name == "loanwatch_dead_letters_total":
                dead += sample.value
    return Portfolio(
        by_bucket=_ordered(buckets, BUCKETS),
        by_class=_ordered(classes, CLASSES),
        events_total=events,
        alerts_by_severity=dict(sorted(alerts.items())),
        dead_letters_total=dead,
    )


@dataclass(slots=True)
class RateMeter:
    """Events per second from successive counter readings (a restart resets it, never negative)."""

    last: tuple[float, float] | None = None  # (monotonic seconds, counter value)
    rate: float = 0.0

    def update(self, now: float, total: float) -> float:
        if self.last is not None and now > self.last[0]:
            delta = total - self.last[1]
            self.rate = max(delta, 0.0) / (now - self.last[0])
        self.last = (now, total)
        return self.rate
