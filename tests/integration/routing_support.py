"""Helpers of the routing integration tests: reading a whole topic, the router's dead letters,
waiting for a condition, a ``routes serve`` subprocess and the env it needs, a movable clock and
a local HTTP receiver (the SMS gateway or a webhook's CRM)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from .live import free_port

REPO = Path(__file__).resolve().parents[2]


async def read_all(bootstrap: str, topic: str) -> list[tuple[bytes | None, bytes | None]]:
    """Every (key, value) on ``topic``, from the beginning to its current end."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        parts = await producer.partitions_for(topic)  # waits for the topic's metadata
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        out: list[tuple[bytes | None, bytes | None]] = []
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                out.extend((r.key, r.value) for r in records)
        return out
    finally:
        await consumer.stop()


async def dead_letters(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    return [orjson.loads(value or b"") for _key, value in await read_all(bootstrap, topic)]


async def produce_raw(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    """Publish (key, value) pairs as they are (no JSON encoding: they may be garbage)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=4 << 20)
    await producer.start()
    try:
        for key, value in records:
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


async def wait_until(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        assert time.monotonic() < deadline, f"not in time: {what}"
        await asyncio.sleep(0.1)


class ServeProcess:
    """``loanwatch routes serve`` as a subprocess, its output in a file (never a pipe)."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as sink:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "loanwatch.cli", "routes", "serve"],
                cwd=REPO,
                env=os.environ | self.env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    def tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


#: What ``routes serve`` refuses to start without (test values, never a deployment's).
SERVE_SECRETS = {
    "LOANWATCH_WEBHOOK_SECRET": "test-webhook-secret-0123456789",
    "LOANWATCH_CONTACT_KEY_SECRET": "test-contact-key-secret-0123456789",
}


class FixedClock:
    """The business instant a router, notifier or API is given; the test moves ``now``."""

    def __init__(self, at: str) -> None:
        self.now = datetime.fromisoformat(at)

    def __call__(self) -> datetime:
        return self.now


@asynccontextmanager
async def http_receiver(
    posts: Mapping[str, Callable[[web.Request], Awaitable[web.StreamResponse]]],
) -> AsyncIterator[str]:
    """A local aiohttp server answering POSTs on ``posts``' paths; yields its base URL."""
    app = web.Application()
    for path, handler in posts.items():
        app.router.add_post(path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
