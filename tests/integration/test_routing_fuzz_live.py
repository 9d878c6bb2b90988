"""10,000 fuzzed records on the alerts topic and 10,000 on the status topic, through the real
broker and Redis: the router stays alive, dead-letters every one of them (once, with a reason,
counted by ``loanwatch_router_dead_letters_total``) and still routes the valid alerts mixed in.

The records come from the Hypothesis strategies of ``tests/routing_fuzz.py`` (garbage bytes,
non-objects, nesting far past the limit, oversized, truncated, one field broken, raw
``loan_closed`` events on the status topic), each invalid by construction.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry

from loanwatch.routing.config import load_routing
from loanwatch.routing.deadletters import KafkaDeadLetters
from loanwatch.routing.metrics import RouterMetrics
from loanwatch.routing.router import Router
from loanwatch.routing.wire import REASONS, Limits
from loanwatch.routing.workitems import WorkItems, connect
from tests.routing_fuzz import bad_alert_records, bad_status_records, collect

from .routing_support import dead_letters, produce_raw, wait_until
from .test_routing_router import alert_doc, committed_total, make_topic

SETUP = load_routing()
PER_TOPIC = 10_000
MAX_BYTES = 4_096  # small, so the oversized records stay small on the shared broker
VALID = 20


@pytest.fixture
async def redis_and_prefix(
    redis_url: str, unique_name: Callable[[str], str]
) -> AsyncIterator[tuple[Any, str]]:
    client = connect(redis_url)
    prefix = unique_name("fz") + ":"
    yield client, prefix
    keys = [k async for k in client.scan_iter(match=prefix + "*", count=1000)]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def test_fuzzed_records_are_each_dead_lettered_and_the_router_lives(
    kafka_bootstrap: str, redis_and_prefix: tuple[Any, str], unique_name: Callable[[str], str]
) -> None:
    client, prefix = redis_and_prefix
    alerts, status, dead = unique_name("alerts"), unique_name("status"), unique_name("dead")
    for topic in (alerts, status, dead):
        await make_topic(kafka_bootstrap, topic, partitions=2)
    bad_alerts = collect(bad_alert_records(MAX_BYTES), PER_TOPIC, seed=13)
    bad_status = collect(bad_status_records(MAX_BYTES), PER_TOPIC, seed=31)
    assert len(bad_alerts) == len(bad_status) == PER_TOPIC
    good = [orjson.dumps(alert_doc(i)) for i in range(VALID)]
    # The valid alerts go in among the bad ones (every 500th record), not after them all.
    mixed: list[bytes] = []
    for i, record in enumerate(bad_alerts):
        if i % (PER_TOPIC // VALID) == 0:
            mixed.append(good[i // (PER_TOPIC // VALID)])
        mixed.append(record)
    store = WorkItems(client, SETUP, prefix)
    metrics = RouterMetrics(CollectorRegistry(), store)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    router = Router(
        store,
        SETUP,
        lambda: datetime(2026, 3, 5, 2, tzinfo=UTC),
        alerts,
        status,
        dead_letters=KafkaDeadLetters(producer, dead, MAX_BYTES),
        metrics=metrics,
        limits=Limits(max_bytes=MAX_BYTES, max_depth=16),
    )
    stop = asyncio.Event()
    group = unique_name("g")
    task = asyncio.create_task(router.run(kafka_bootstrap, group, stop))
    try:
        await produce_raw(kafka_bootstrap, alerts, [(b"k%d" % i, v) for i, v in enumerate(mixed)])
        await produce_raw(
            kafka_bootstrap, status, [(b"L%d" % i, v) for i, v in enumerate(bad_status)]
        )

        async def all_committed() -> bool:
            assert not task.done(), task.exception()
            done = await committed_total(kafka_bootstrap, alerts, group)
            done += await committed_total(kafka_bootstrap, status, group)
            return done == len(mixed) + len(bad_status)

        await wait_until(all_committed, "every fuzzed record consumed", timeout=600)
        assert not task.done()  # alive
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await producer.stop()
    letters = await dead_letters(kafka_bootstrap, dead)
    by_topic = Counter(d["topic"] for d in letters)
    assert by_topic == {alerts: PER_TOPIC, status: PER_TOPIC}
    # Each record once: no (topic, partition, offset) twice.
    assert len({(d["topic"], d["partition"], d["offset"]) for d in letters}) == 2 * PER_TOPIC
    assert {d["reason"] for d in letters} <= set(REASONS)
    assert all(d["error"] for d in letters)
    reasons = Counter(d["reason"] for d in letters)
    print("dead letters by reason:", dict(reasons))
    for reason in ("malformed_json", "too_deep", "too_large", "not_an_object", "bad_alert"):
        assert reasons[reason] > 0, reason  # the strategies reached every kind of refusal
    assert reasons["bad_status"] + reasons["unknown_status_kind"] > 0
    counted = sum(
        metrics.registry.get_sample_value(
            "loanwatch_router_dead_letters_total", {"source": s, "reason": r}
        )
        or 0.0
        for s in ("alerts", "status")
        for r in REASONS
    )
    assert counted == 2 * PER_TOPIC
    # The valid alerts among them were routed: one work item each, none dead-lettered.
    assert (await store.open_counts())["consumer-early"] == VALID
