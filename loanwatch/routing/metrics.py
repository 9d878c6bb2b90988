"""The router service's own Prometheus metrics, served on the collector API's ``/metrics``.

Created on a registry the composition root passes in (tests use a fresh ``CollectorRegistry``);
nothing is created at import time. Queue depths are read from Redis at scrape time, so every
router instance (and a restarted one) reports the same numbers. Labels: ``team`` only (a
closed set from ``config/routing.yaml``), never a loan, borrower or collector id.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge, generate_latest

from loanwatch.routing.workitems import WORKITEMS_OPEN_METRIC, WorkItems


class RouterMetrics:
    def __init__(self, registry: CollectorRegistry, store: WorkItems) -> None:
        self.registry, self.store = registry, store
        self.workitems_open = Gauge(
            WORKITEMS_OPEN_METRIC,
            "Open work items (triggered or acknowledged), by owning team.",
            ["team"],
            registry=registry,
        )

    async def refresh(self) -> None:
        for team, count in (await self.store.open_counts()).items():
            self.workitems_open.labels(team=team).set(count)

    async def exposition(self) -> bytes:
        """The registry in Prometheus' text format, queue depths read just now."""
        await self.refresh()
        return generate_latest(self.registry)
