"""The service's health: which loop is degraded, why and since when; served on ``/healthz``.

A loop that cannot reach Redis (or whose writes Redis refuses) calls :meth:`Health.degrade`,
and :meth:`Health.recover` once a write succeeds again. The state is mirrored in the metrics
(``loanwatch_router_degraded{component}``, ``loanwatch_router_redis_faults_total``) so the
``LoanwatchRouterDegraded`` alert fires. Never logs personal data; time comes from the clock
passed in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

log = logging.getLogger("loanwatch.routing.health")
COMPONENTS = (
    "router",
    "notifier",
    "timer",
    *(f"notify-{c}" for c in ("sms", "email", "webhook", "alertmanager", "other")),
)


class HealthMetrics(Protocol):
    def set_degraded(self, component: str, degraded: bool) -> None: ...

    def redis_fault(self, component: str, reason: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Fault:
    reason: str
    error: str
    since: datetime


class Health:
    def __init__(self, clock: Callable[[], datetime], metrics: HealthMetrics | None = None) -> None:
        self.clock, self.metrics = clock, metrics
        self.faults: dict[str, Fault] = {}
        if metrics is not None:
            for component in COMPONENTS:
                metrics.set_degraded(component, False)

    @property
    def ok(self) -> bool:
        return not self.faults

    def degrade(self, component: str, reason: str, error: BaseException | str) -> None:
        """``component`` cannot use Redis (``reason`` from :mod:`loanwatch.routing.faults`)."""
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        if self.metrics is not None:
            self.metrics.redis_fault(component, reason)
        previous = self.faults.get(component)
        if previous is not None and previous.reason == reason:
            return
        since = previous.since if previous else self.clock()
        self.faults[component] = Fault(reason, text[:300], since)
        if self.metrics is not None:
            self.metrics.set_degraded(component, True)
        log.warning(
            "degraded: redis refused or unreachable; consuming paused, retrying",
            extra={"component": component, "reason": reason, "error": text[:300]},
        )

    def recover(self, component: str) -> None:
        fault = self.faults.pop(component, None)
        if fault is None:
            return
        if self.metrics is not None:
            self.metrics.set_degraded(component, False)
        log.info(
            "recovered: redis takes writes again",
            extra={
                "component": component,
                "reason": fault.reason,
                "degraded_seconds": round((self.clock() - fault.since).total_seconds(), 3),
            },
        )

    def report(self) -> dict[str, Any]:
        """The ``/healthz`` body: ``status`` ok|degraded and each degraded loop's reason."""
        return {
            "status": "ok" if self.ok else "degraded",
            "degraded": {
                name: {"reason": f.reason, "error": f.error, "since": f.since.isoformat()}
                for name, f in sorted(self.faults.items())
            },
        }


class Backoff:
    """Exponential retry delays: ``initial``, doubling, capped at ``cap``; reset on success."""

    def __init__(self, initial: float, cap: float) -> None:
        self.initial, self.cap = initial, cap
        self.current = initial

    def next(self) -> float:
        delay = self.current
        self.current = min(self.cap, self.current * 2)
        return delay

    def reset(self) -> None:
        self.current = self.initial
