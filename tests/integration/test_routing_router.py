"""The router against the real broker and Redis: alerts from a unique topic become work items,
offsets are committed only after Redis has the item, and a SIGKILL mid-way loses nothing."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from loanwatch.routing.config import load_routing
from loanwatch.routing.router import Router
from loanwatch.routing.workitems import WorkItems, connect

SETUP = load_routing()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def alert_doc(i: int, kind: str = "overdue") -> dict[str, Any]:
    return {
        "alert_id": f"al-{i}",
        "kind": kind,
        "severity": "warning",
        "loan_id": f"L{i}",
        "borrower_id": f"B{i}",
        "business_date": "2026-03-05",
        "bucket": "M1",
        "dpd": 1,
        "overdue_amount": "100.00",
        "product": "consumer",
        "region": "east",
        "due_date": "2026-03-04",
    }


async def make_topic(bootstrap: str, name: str, partitions: int = 2) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()


async def produce(bootstrap: str, topic: str, docs: list[dict[str, Any]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for doc in docs:
            await producer.send(
                topic, json.dumps(doc).encode(), key=str(doc.get("loan_id", "x")).encode()
            )
        await producer.flush()
    finally:
        await producer.stop()


async def committed_total(bootstrap: str, topic: str, group: str, partitions: int = 2) -> int:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        total = 0
        for p in range(partitions):
            total += await consumer.committed(TopicPartition(topic, p)) or 0
        return total
    finally:
        await consumer.stop()


@pytest.fixture
async def redis_and_prefix(
    redis_url: str, unique_name: Callable[[str], str]
) -> AsyncIterator[tuple[Any, str]]:
    client = connect(redis_url)
    prefix = unique_name("rt") + ":"
    yield client, prefix
    keys = [k async for k in client.scan_iter(match=prefix + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def seen_count(client: Any, prefix: str) -> int:
    return len([k async for k in client.scan_iter(match=prefix + "seen:*")])


async def wait_for(check: Callable[[], Any], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not met in time")


async def test_router_in_process_routes_and_resolves_closed_loans(
    kafka_bootstrap: str, redis_and_prefix: tuple[Any, str], unique_name: Callable[[str], str]
) -> None:
    client, prefix = redis_and_prefix
    alerts, accounts, group = unique_name("alerts"), unique_name("accounts"), unique_name("g")
    await make_topic(kafka_bootstrap, alerts)
    await make_topic(kafka_bootstrap, accounts)
    store = WorkItems(client, SETUP, prefix)
    clock = lambda: datetime(2026, 3, 5, 2, 0, tzinfo=UTC)  # noqa: E731
    router = Router(store, SETUP, clock, alerts, accounts)
    docs = [alert_doc(i) for i in range(5)] + [alert_doc(0)]  # a re-fired alert
    await produce(kafka_bootstrap, alerts, [*docs, {"not": "an alert"}])
    stop = asyncio.Event()
    task = asyncio.create_task(router.run(kafka_bootstrap, group, stop))
    try:
        await wait_for(lambda: _count(store, 5))
        closed = {"type": "loan_closed", "loan_id": "L1", "reason": "repaid", "event_id": "x"}
        await produce(kafka_bootstrap, accounts, [closed])
        await wait_for(lambda: _resolved(store, "wi-L1-al-1"))
        await wait_for(lambda: _count(store, 4))
        await wait_for(lambda: _committed(kafka_bootstrap, alerts, group, 7))
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert await seen_count(client, prefix) == 5
    assert await client.xlen(prefix + "outbox") == 5 * 2  # sms:borrower + webhook:crm, no dupes


async def _count(store: WorkItems, n: int) -> bool:
    return (await store.open_counts())["consumer-early"] == n


async def _resolved(store: WorkItems, item_id: str) -> bool:
    return (await store.get(item_id)).get("state") == "resolved"


def start_router(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as sink:  # a file, not a pipe: a full pipe would block the router
        return subprocess.Popen(
            [sys.executable, "-c", "from loanwatch.cli import main; main()", "routes", "serve"],
            env=os.environ | env,
            stdout=sink,
            stderr=sink,
        )


async def test_sigkill_mid_way_loses_nothing_and_commits_only_stored(
    kafka_bootstrap: str,
    redis_url: str,
    redis_and_prefix: tuple[Any, str],
    unique_name: Callable[[str], str],
    tmp_path: Path,
) -> None:
    client, prefix = redis_and_prefix
    log = tmp_path / "router.log"
    alerts, group = unique_name("alerts"), unique_name("g")
    await make_topic(kafka_bootstrap, alerts)
    n = 1000
    env = {
        "LOANWATCH_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "LOANWATCH_ALERTS_TOPIC": alerts,
        "LOANWATCH_ACCOUNTS_TOPIC": "",
        "LOANWATCH_CONSUMER_GROUP": group,
        "LOANWATCH_REDIS_URL": redis_url,
        "LOANWATCH_REDIS_PREFIX": prefix,
        "LOANWATCH_API_PORT": str(free_port()),
        "LOANWATCH_NOTIFY_MAX_ATTEMPTS": "1",
        "LOANWATCH_NOTIFY_BACKOFF_SECONDS": "0.01",
    }
    await produce(kafka_bootstrap, alerts, [alert_doc(i) for i in range(n)])
    proc = start_router(env, log)
    try:
        await wait_for(lambda: _at_least(client, prefix, 1), timeout=60)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        stored = await seen_count(client, prefix)
        committed = await committed_total(kafka_bootstrap, alerts, group)
        print(f"killed with {stored} stored, {committed} committed")
        assert committed <= stored < n  # killed mid-way; never committed past what Redis holds
        proc = start_router(env | {"LOANWATCH_API_PORT": str(free_port())}, log)
        await wait_for(lambda: _at_least(client, prefix, n), timeout=60)
    except AssertionError:
        print(log.read_text()[-3000:])
        raise
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    store = WorkItems(client, SETUP, prefix)
    assert await seen_count(client, prefix) == n
    assert (await store.open_counts())["consumer-early"] == n  # one item per loan, no duplicate
    await wait_for(lambda: _committed(kafka_bootstrap, alerts, group, n), timeout=30)


async def _at_least(client: Any, prefix: str, n: int) -> bool:
    return await seen_count(client, prefix) >= n


async def _committed(bootstrap: str, topic: str, group: str, n: int) -> bool:
    return await committed_total(bootstrap, topic, group) == n
