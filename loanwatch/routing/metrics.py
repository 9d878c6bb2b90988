"""The router service's own Prometheus metrics, served on the collector API's ``/metrics``.

Created on a registry the composition root passes in (tests use a fresh ``CollectorRegistry``);
nothing is created at import time. Queue depths are read from Redis at scrape time, so every
router instance (and a restarted one) reports the same numbers; while Redis is unreachable the
last values read are served, so ``/metrics`` (and ``loanwatch_router_degraded``) stays up.
Labels are closed sets: ``team`` (from ``config/routing.yaml``), ``component`` (router,
notifier, timer), ``reason`` (:data:`loanwatch.routing.wire.REASONS`,
:data:`loanwatch.routing.faults.FAULT_REASONS`) and ``source``; never a loan, borrower or
collector id.
"""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from loanwatch.routing.faults import redis_fault
from loanwatch.routing.workitems import WORKITEMS_OPEN_METRIC, WorkItems

log = logging.getLogger("loanwatch.routing.metrics")
DEGRADED_METRIC = "loanwatch_router_degraded"
REDIS_FAULTS_METRIC = "loanwatch_router_redis_faults"
DEAD_LETTERS_METRIC = "loanwatch_router_dead_letters"
LOOP_ERRORS_METRIC = "loanwatch_router_loop_errors"


class RouterMetrics:
    def __init__(self, registry: CollectorRegistry, store: WorkItems) -> None:
        self.registry, self.store = registry, store
        self.workitems_open = Gauge(
            WORKITEMS_OPEN_METRIC,
            "Open work items (triggered or acknowledged), by owning team.",
            ["team"],
            registry=registry,
        )
        self.degraded = Gauge(
            DEGRADED_METRIC,
            "1 while the loop cannot use Redis (unreachable or refusing writes) and has stopped "
            "consuming; 0 when healthy.",
            ["component"],
            registry=registry,
        )
        self.redis_faults = Counter(
            REDIS_FAULTS_METRIC,
            "Redis commands that failed (unreachable, timeout, OOM, MISCONF, ...), by loop.",
            ["component", "reason"],
            registry=registry,
        )
        self.dead_letters = Counter(
            DEAD_LETTERS_METRIC,
            "Records and outbox entries the router could not act on, dead-lettered with a reason.",
            ["source", "reason"],
            registry=registry,
        )
        self.loop_errors = Counter(
            LOOP_ERRORS_METRIC,
            "Unexpected errors a supervised loop survived (it backs off and goes on).",
            ["loop"],
            registry=registry,
        )

    def set_degraded(self, component: str, degraded: bool) -> None:
        self.degraded.labels(component=component).set(1 if degraded else 0)

    def redis_fault(self, component: str, reason: str) -> None:
        self.redis_faults.labels(component=component, reason=reason).inc()

    def dead_letter(self, source: str, reason: str) -> None:
        self.dead_letters.labels(source=source, reason=reason).inc()

    def loop_error(self, loop: str) -> None:
        self.loop_errors.labels(loop=loop).inc()

    async def refresh(self) -> None:
        try:
            counts = await self.store.open_counts()
        except Exception as exc:
            if redis_fault(exc) is None:
                raise
            log.warning("queue depths not refreshed: redis unavailable", extra={"error": str(exc)})
            return
        for team, count in counts.items():
            self.workitems_open.labels(team=team).set(count)

    async def exposition(self) -> bytes:
        """The registry in Prometheus' text format, queue depths read just now."""
        await self.refresh()
        return generate_latest(self.registry)
