"""Retries with exponential backoff (base, doubling, capped). No I/O of its own."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from loanwatch.routing.errors import DeliveryError


def backoff_delays(attempts: int, base: float, cap: float) -> list[float]:
    """Delays between ``attempts`` tries: base, 2*base, 4*base, ... capped at ``cap``."""
    return [min(cap, base * 2**i) for i in range(max(0, attempts - 1))]


async def with_retries(
    send: Callable[[], Awaitable[None]],
    attempts: int,
    base: float,
    cap: float,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> tuple[bool, int, str]:
    """Try ``send`` up to ``attempts`` times; returns (delivered, tries, last error)."""
    delays = backoff_delays(attempts, base, cap)
    error = ""
    for i in range(attempts):
        try:
            await send()
            return True, i + 1, ""
        except (TimeoutError, DeliveryError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        if i < len(delays):
            await sleep(delays[i])
    return False, attempts, error
