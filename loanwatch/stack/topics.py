"""Delete the local broker's topics by name prefix: what tests and benchmarks leave behind.

Every integration test and benchmark run creates its own topics (a unique prefix, plus Faust's
changelog and repartition topics named after its app id); ``loanwatch stack prune-topics``
deletes those left behind, since a broker holding thousands of partitions starts slowly.

It must never delete a topic whose name a test or benchmark could not have made, unless the
operator names its prefix.
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
    """Delete every topic ``selector`` picks; return their names once the broker lists none.

    A DeleteTopics answer comes when the controller has recorded the deletion; a broker's
    metadata (what ``list_topics`` answers) catches up a moment later, and a topic created
    just before may still be settling. So refused deletions are asked again and the call
    returns only when no doomed name is listed any more (``TimeoutError`` past ``timeout_ms``).
    """
    admin = _admin(bootstrap, timeout_ms)
    await admin.start()
    try:
        doomed = matching(await admin.list_topics(), selector)
        deadline = asyncio.get_running_loop().time() + timeout_ms / 1000
        left = doomed
        while left:
            for start in range(0, len(left), chunk):
                answer = await admin.delete_topics(
                    left[start : start + chunk], timeout_ms=timeout_ms
                )
                for topic, code in answer.topic_error_codes:
                    if code not in (0, _UNKNOWN_TOPIC):
                        log.info("topic deletion refused", extra={"topic": topic, "code": code})
            left = await _still_listed(admin, set(doomed), deadline)
    finally:
        await admin.close()
    if doomed:
        log.info("deleted topics", extra={"count": len(doomed)})
    return doomed


#: Kafka's UNKNOWN_TOPIC_OR_PARTITION: the topic is already gone.
_UNKNOWN_TOPIC = 3


async def _still_listed(admin: AIOKafkaAdminClient, doomed: set[str], deadline: float) -> list[str]:
    """Wait (up to ``deadline``) until no name of ``doomed`` is listed; return those that are.

    An empty list: all gone. Names still listed after a few polls are returned, to be asked
    for again (a deletion refused while the topic settled).
    """
    loop = asyncio.get_running_loop()
    for _ in range(25):
        listed = sorted(doomed.intersection(await admin.list_topics()))
        if not listed:
            return []
        if loop.time() > deadline:
            raise TimeoutError(f"topics still listed after deletion: {listed[:5]}")
        await asyncio.sleep(0.2)
    return listed


def _admin(bootstrap: str, timeout_ms: int) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, client_id="loanwatch-prune", request_timeout_ms=timeout_ms
    )


def prune(bootstrap: str, selector: Selector, *, timeout_ms: int = 60_000) -> list[str]:
    """Blocking :func:`delete_topics` (for the CLI command and test teardowns)."""
    return asyncio.run(delete_topics(bootstrap, selector, timeout_ms=timeout_ms))
