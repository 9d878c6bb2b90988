"""Supervision of the service's loops: one failing step never stops ``routes serve``.

:func:`supervise` runs a step again and again until ``stop``: a step that raises a Redis fault
marks its component degraded in :class:`Health` and is retried with exponential backoff; any
other error is logged with its traceback, counted (``loanwatch_router_loop_errors_total``) and
retried the same way. A step that succeeds clears the degraded state. Records that cannot be
handled are the steps' business (they dead-letter them); this module only keeps loops alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from loanwatch.routing.faults import redis_fault
from loanwatch.routing.health import Backoff, Health

log = logging.getLogger("loanwatch.routing.supervise")


class LoopMetrics(Protocol):
    def loop_error(self, loop: str) -> None: ...


async def pause(stop: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds`` or until ``stop`` is set, whichever comes first."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def supervise(
    name: str,
    step: Callable[[], Awaitable[object]],
    stop: asyncio.Event,
    health: Health,
    backoff: Backoff,
    metrics: LoopMetrics | None = None,
) -> None:
    """Run ``step`` until ``stop`` is set, surviving (and reporting) every error it raises."""
    while not stop.is_set():
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            reason = redis_fault(exc)
            if reason is not None:
                health.degrade(name, reason, exc)
            else:
                log.exception("loop step failed; retrying", extra={"loop": name})
                if metrics is not None:
                    metrics.loop_error(name)
            await pause(stop, backoff.next())
            continue
        health.recover(name)
        backoff.reset()
