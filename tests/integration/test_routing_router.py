"""The router against the real broker and Redis: alerts from a unique topic become work items,
only the ledger's verdicts on ``loan.status`` resolve them (a raw or malformed closure leaves
the item open and is dead-lettered), offsets are committed only after Redis has the item, and a
SIGKILL mid-way loses nothing."""

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
from loanwatch.routing.deadletters import KafkaDeadLetters
from loanwatch.routing.router import Router
from loanwatch.routing.workitems import WorkItems, connect

from .routing_support import SERVE_SECRETS, dead_letters

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


def closed_verdict(loan_id: str, **changes: Any) -> dict[str, Any]:
    """What the worker publishes on loan.status once the ledger accepted a closure."""
    doc: dict[str, Any] = {
        "kind": "loan_closed",
        "event_id": f"ev-close-{loan_id}",
        "loan_id": loan_id,
        "borrower_id": f"B{loan_id.removeprefix('L')}",
        "status": "closed",
        "reason": "repaid",
        "business_date": "2026-03-05",
    }
    return {k: v for k, v in (doc | changes).items() if v is not None}


async def test_router_routes_alerts_and_resolves_only_on_the_ledgers_verdict(
    kafka_bootstrap: str, redis_and_prefix: tuple[Any, str], unique_name: Callable[[str], str]
) -> None:
    client, prefix = redis_and_prefix
    alerts, status, accounts = unique_name("alerts"), unique_name("status"), unique_name("acc")
    dead, group = unique_name("dead"), unique_name("g")
    for topic in (alerts, status, accounts, dead):
        await make_topic(kafka_bootstrap, topic)
    store = WorkItems(client, SETUP, prefix)
    clock = lambda: datetime(2026, 3, 5, 2, 0, tzinfo=UTC)  # noqa: E731
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    router = Router(
        store, SETUP, clock, alerts, status, dead_letters=KafkaDeadLetters(producer, dead)
    )
    docs = [alert_doc(i) for i in range(5)] + [alert_doc(0)]  # a re-fired alert
    await produce(kafka_bootstrap, alerts, [*docs, {"not": "an alert"}])
    stop = asyncio.Event()
    task = asyncio.create_task(router.run(kafka_bootstrap, group, stop))
    try:
        await wait_for(lambda: _count(store, 5))
        # A raw loan_closed the ledger would reject (no such reason), on loan.accounts, and
        # verdict-shaped records that are not valid verdicts: none of them closes anything.
        raw = {"type": "loan_closed", "loan_id": "L2", "reason": "bogus", "event_id": "x"}
        await produce(kafka_bootstrap, accounts, [raw])
        invalid = [
            raw,  # the raw event on the status topic
            closed_verdict("L2", status="repaid"),  # not a status the ledger gives
            closed_verdict("L3", kind="loan_opened"),
            closed_verdict("L4", business_date="05/03/2026"),
            closed_verdict("L4", event_id=None),
        ]
        await produce(kafka_bootstrap, status, [*invalid, closed_verdict("L1")])
        await wait_for(lambda: _resolved(store, "wi-L1-al-1"))
        await wait_for(lambda: _count(store, 4))
        await wait_for(lambda: _committed(kafka_bootstrap, alerts, group, 7))
        await wait_for(lambda: _committed(kafka_bootstrap, status, group, 6))
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await producer.stop()
    assert await seen_count(client, prefix) == 5
    assert await client.xlen(prefix + "outbox") == 5 * 2  # sms:borrower + webhook:crm, no dupes
    for loan in ("L2", "L3", "L4"):
        assert (await store.get(f"wi-{loan}-al-{loan[1:]}"))["state"] == "triggered"
    assert (await store.get("wi-L1-al-1"))["resolution"] == "loan_closed:repaid"
    letters = await dead_letters(kafka_bootstrap, dead)
    assert sorted((d["source"], d["reason"]) for d in letters) == [
        ("alerts", "bad_alert"),
        ("status", "bad_status"),
        ("status", "bad_status"),
        ("status", "bad_status"),
        ("status", "unknown_status_kind"),
        ("status", "unknown_status_kind"),
    ]
    assert all(d["payload"] and d["error"] for d in letters)


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
        "LOANWATCH_STATUS_TOPIC": "",
        "LOANWATCH_ROUTER_DEAD_LETTER_TOPIC": unique_name("dead"),
        "LOANWATCH_CONSUMER_GROUP": group,
        "LOANWATCH_REDIS_URL": redis_url,
        "LOANWATCH_REDIS_PREFIX": prefix,
        "LOANWATCH_API_PORT": str(free_port()),
        "LOANWATCH_NOTIFY_MAX_ATTEMPTS": "1",
        "LOANWATCH_NOTIFY_BACKOFF_SECONDS": "0.01",
        "LOANWATCH_ARCHIVE_TOPIC": unique_name("archive"),
        **SERVE_SECRETS,
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
