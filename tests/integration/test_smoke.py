"""Smoke test of the local stack: the real broker, a real Faust worker, Redis, Prometheus.

Each test uses unique topics, groups and app ids, so it can run next to anything else on the
shared stack. Nothing is mocked.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from click.testing import CliRunner
from prometheus_client import CollectorRegistry, Counter, start_http_server

from loanwatch.cli import main
from loanwatch.stack.manager import StackInfo

from .live import create_topics

SMOKE_APP = Path(__file__).parent / "apps" / "smoke_app.py"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def read_json(
    bootstrap: str, topic: str, group: str, done: Callable[[list[Any]], bool], timeout: float
) -> list[Any]:
    """Consume topic from the beginning until ``done(values)`` or the timeout."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        value_deserializer=json.loads,
    )
    await consumer.start()
    values: list[Any] = []
    try:
        deadline = time.monotonic() + timeout
        while not done(values) and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            values += [rec.value for recs in batches.values() for rec in recs]
    finally:
        await consumer.stop()
    return values


async def test_kafka_produce_consume(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    topic = unique_name("smoke")
    await create_topics(kafka_bootstrap, topic, partitions=2)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(5):
            await producer.send_and_wait(topic, json.dumps({"i": i}).encode(), key=b"k")
    finally:
        await producer.stop()
    values = await read_json(
        kafka_bootstrap, topic, unique_name("group"), lambda v: len(v) >= 5, timeout=30
    )
    assert [v["i"] for v in values] == [0, 1, 2, 3, 4]


@pytest.fixture
def faust_worker(
    kafka_bootstrap: str, unique_name: Callable[[str], str], tmp_path: Path
) -> Iterator[dict[str, str]]:
    """A real ``faust worker`` subprocess running tests/integration/apps/smoke_app.py."""
    env = {
        "SMOKE_APP_ID": unique_name("smoke-app"),
        "SMOKE_BROKER": kafka_bootstrap,
        "SMOKE_IN_TOPIC": unique_name("smoke-in"),
        "SMOKE_OUT_TOPIC": unique_name("smoke-out"),
    }
    asyncio.run(create_topics(kafka_bootstrap, env["SMOKE_IN_TOPIC"], env["SMOKE_OUT_TOPIC"]))
    log_path = tmp_path / "worker.log"
    argv = [sys.executable, str(SMOKE_APP), "worker", "-l", "info"]
    argv += ["--web-port", str(free_port()), "--web-host", "127.0.0.1"]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            argv, cwd=tmp_path, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        yield env
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        print(f"--- faust worker log ({log_path}) ---\n" + log_path.read_text()[-4000:])


async def test_faust_worker_updates_table(
    faust_worker: dict[str, str], kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for key in ["a", "b", "a", "a", "b"]:
            payload = json.dumps({"key": key}).encode()
            await producer.send_and_wait(faust_worker["SMOKE_IN_TOPIC"], payload, key=key.encode())
    finally:
        await producer.stop()

    def final_counts(values: list[Any]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for v in values:
            counts[v["key"]] = max(counts.get(v["key"], 0), v["count"])
        return counts

    values = await read_json(
        kafka_bootstrap,
        faust_worker["SMOKE_OUT_TOPIC"],
        unique_name("reader"),
        lambda v: final_counts(v) == {"a": 3, "b": 2},
        timeout=90,
    )
    assert final_counts(values) == {"a": 3, "b": 2}


async def test_redis_ping(redis_url: str) -> None:
    client = aioredis.from_url(redis_url)
    try:
        assert await client.ping() is True
    finally:
        await client.aclose()


def _query(prometheus_url: str, promql: str) -> list[dict[str, Any]]:
    url = f"{prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as resp:
        body = json.load(resp)
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def test_prometheus_scrapes_registered_target(
    prometheus_url: str,
    prometheus_target: Callable[[str, dict[str, str]], None],
    unique_name: Callable[[str], str],
) -> None:
    registry = CollectorRegistry()
    Counter("loanwatch_smoke_events", "Events seen by the smoke test.", registry=registry).inc(3)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    smoke_id = unique_name("smoke")
    try:
        prometheus_target(f"127.0.0.1:{port}", {"smoke_id": smoke_id})
        selector = f'{{smoke_id="{smoke_id}"}}'
        up: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            up = _query(prometheus_url, f"up{selector} == 1")
            events = _query(prometheus_url, f"loanwatch_smoke_events_total{selector}")
            if up and events:
                break
            time.sleep(1)
        assert up, "Prometheus never scraped the registered target (up == 1)"
        assert events and float(events[0]["value"][1]) == 3.0
        assert events[0]["metric"]["job"] == "loanwatch"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_alertmanager_ready(alertmanager_url: str) -> None:
    with urllib.request.urlopen(f"{alertmanager_url}/-/ready", timeout=5) as resp:
        assert resp.status == 200


def test_stack_status_command(stack: StackInfo) -> None:
    result = CliRunner().invoke(main, ["stack", "status"], terminal_width=200)
    assert result.exit_code == 0, result.output
    for service in ("kafka", "redis", "prometheus", "alertmanager"):
        row = next(line for line in result.output.splitlines() if f" {service} " in line)
        assert " up " in row or " external " in row, row
