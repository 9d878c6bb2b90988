"""Delete the local broker's topics by name prefix: what tests and benchmarks leave behind.

Every integration test and benchmark run creates its own topics (a unique prefix, plus Faust's
changelog and repartition topics named after its app id). Left on the local broker they pile up
(thousands of partitions after a few days of runs), and the broker's start-up, which loads every
partition's log, outgrows ``loanwatch stack up``'s readiness wait. Tests delete their topics
when they pass (a failed test's are kept to look at); ``loanwatch stack prune-topics`` clears
the rest.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterable, Sequence

from aiokafka.admin import AIOKafkaAdminClient

log = logging.getLogger(__name__)

#: Names only tests and benchmarks make, and what follows them (``.`` topic prefix, ``-``
#: Faust changelogs): ``<word>-test-<test name>-<12 hex>`` (the ``unique_name`` fixture),
#: ``lwm-<12 hex>`` (the live metrics module) and ``bench-<YYYYmmddHHMMSS>`` (benchmark runs).
SCRATCH = re.compile(
    r"^(?:[A-Za-z0-9_]+-test-[A-Za-z0-9-]*-[0-9a-f]{12}|lwm-[0-9a-f]{12}|bench-\d{14})(?:[.-]|$)"
)

Selector = Callable[[str], bool]


def with_prefixes(prefixes: Sequence[str]) -> Selector:
    """Names starting with one of ``prefixes`` (none given: nothing)."""
    wanted = tuple(p for p in prefixes if p)
    return lambda name: bool(wanted) and name.startswith(wanted)


def scratch(name: str) -> bool:
    """A name only this repository's tests and benchmarks make."""
    return SCRATCH.match(name) is not None


def matching(names: Iterable[str], selector: Selector) -> list[str]:
    """The names ``selector`` picks, sorted; Kafka's internal ``__`` topics never."""
    return sorted(n for n in names if not n.startswith("__") and selector(n))


async def list_matching(
    bootstrap: str, selector: Selector, *, timeout_ms: int = 60_000
) -> list[str]:
    """The broker's topics ``selector`` picks."""
    admin = _admin(bootstrap, timeout_ms)
    await admin.start()
    try:
        return matching(await admin.list_topics(), selector)
    finally:
        await admin.close()


async def delete_topics(
    bootstrap: str, selector: Selector, *, chunk: int = 200, timeout_ms: int = 60_000
) -> list[str]:
    """Delete every topic ``selector`` picks; return their names."""
    admin = _admin(bootstrap, timeout_ms)
    await admin.start()
    try:
        doomed = matching(await admin.list_topics(), selector)
        for start in range(0, len(doomed), chunk):
            await admin.delete_topics(doomed[start : start + chunk], timeout_ms=timeout_ms)
    finally:
        await admin.close()
    if doomed:
        log.info("deleted topics", extra={"count": len(doomed)})
    return doomed


def _admin(bootstrap: str, timeout_ms: int) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, client_id="loanwatch-prune", request_timeout_ms=timeout_ms
    )


def prune(bootstrap: str, selector: Selector, *, timeout_ms: int = 60_000) -> list[str]:
    """Blocking :func:`delete_topics` (for the CLI command and test teardowns)."""
    return asyncio.run(delete_topics(bootstrap, selector, timeout_ms=timeout_ms))
