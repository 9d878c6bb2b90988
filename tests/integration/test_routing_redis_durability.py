"""Redis durability under the router: the stack's Redis keeps an append-only file under ``run/``,
and a router whose (private) Redis is SIGKILLed mid-way and restarted on the same data dir loses
no work item and never committed a Kafka offset past what Redis held.

The shared stack Redis is never stopped here (other tests use it): the restart test starts its
own ``redis-server`` on a free port and a temporary dir, and kills only that pid.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from loanwatch.routing.config import load_routing
from loanwatch.routing.deadletters import RecordingDeadLetters
from loanwatch.routing.router import Router
from loanwatch.routing.workitems import WorkItems, connect
from loanwatch.stack import packaged
from loanwatch.stack.paths import default_paths

from .test_routing_router import alert_doc, make_topic, produce

SETUP = load_routing()
REDIS_BIN = shutil.which("redis-server") or packaged.REDIS_BIN


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def conf_lines(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            out[key] = value.strip()
    return out


def test_stack_redis_appends_to_a_file_under_run() -> None:
    paths = default_paths()
    spec = packaged.redis_spec(paths)
    conf = paths.config / "redis" / "redis.conf"
    assert spec.argv[:2] == (packaged.REDIS_BIN, str(conf))
    data_dir = Path(spec.argv[spec.argv.index("--dir") + 1])
    assert data_dir == paths.run / "redis" / "data"  # the AOF dir is relative to --dir
    settings = conf_lines(conf)
    assert settings["appendonly"] == "yes"
    assert settings["appendfsync"] == "everysec"
    assert not Path(settings.get("appenddirname", '"appendonlydir"').strip('"')).is_absolute()


class PrivateRedis:
    """A redis-server of this test only: the stack's config file copied (so the stack never
    mistakes it for its own), on a free port and a temporary dir."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir / "data"
        self.dir.mkdir(parents=True)
        self.conf = workdir / "redis.conf"
        shutil.copyfile(default_paths().config / "redis" / "redis.conf", self.conf)
        self.port = free_port()
        self.log = workdir / "redis.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.extra_args: tuple[str, ...] = ()  # e.g. the stack's ``--include auth.conf``

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        argv = [REDIS_BIN, str(self.conf), "--port", str(self.port), "--dir", str(self.dir)]
        with self.log.open("ab") as sink:
            self.proc = subprocess.Popen([*argv, *self.extra_args], stdout=sink, stderr=sink)
        deadline = time.monotonic() + 30
        while not packaged.redis_answers(self.port):
            assert self.proc.poll() is None, self.log.read_text()[-2000:]
            assert time.monotonic() < deadline, "private redis did not start"
            time.sleep(0.05)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


async def committed(bootstrap: str, topic: str, group: str) -> int:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        return await consumer.committed(TopicPartition(topic, 0)) or 0
    finally:
        await consumer.stop()


async def wait_for(check: Callable[[], Any], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_redis_sigkill_and_restart_loses_no_work_item(
    kafka_bootstrap: str, private_redis: PrivateRedis, unique_name: Callable[[str], str]
) -> None:
    n = 1500
    alerts, group = unique_name("alerts"), unique_name("g")
    await make_topic(kafka_bootstrap, alerts, partitions=1)  # offset i holds alert al-i
    await produce(kafka_bootstrap, alerts, [alert_doc(i) for i in range(n)])
    client = connect(private_redis.url)
    check = connect(private_redis.url)
    prefix = "dur:"
    store = WorkItems(client, SETUP, prefix)
    sink = RecordingDeadLetters()
    router = Router(
        store, SETUP, lambda: datetime(2026, 3, 5, 2, tzinfo=UTC), alerts, dead_letters=sink
    )
    stop = asyncio.Event()
    task = asyncio.create_task(router.run(kafka_bootstrap, group, stop))

    async def seen() -> int:
        return len([k async for k in check.scan_iter(match=prefix + "seen:*", count=1000)])

    try:
        await wait_for(lambda: _at_least(seen, 100))
        await wait_for(lambda: _committed_some(kafka_bootstrap, alerts, group))
        private_redis.kill9()  # mid-way: the router is writing items as fast as it can
        await asyncio.sleep(1.0)  # the router retries; it cannot store, so it cannot commit
        held_back = await committed(kafka_bootstrap, alerts, group)
        await asyncio.sleep(0.5)
        assert await committed(kafka_bootstrap, alerts, group) == held_back
        assert 0 < held_back < n, held_back
        await check.aclose()
        private_redis.start()  # same port, same dir: Redis replays its append-only file
        check = connect(private_redis.url)
        # Every alert below the committed offset is in the restarted Redis. The router's
        # position is past them, so none of them can have been re-written after the restart:
        # they survived the SIGKILL.
        missing = [i for i in range(held_back) if not await check.exists(f"{prefix}seen:al-{i}")]
        assert missing == []
        await wait_for(lambda: _at_least(seen, n))
        await wait_for(lambda: _committed_all(kafka_bootstrap, alerts, group, n))
    except BaseException:
        print(private_redis.log.read_text()[-3000:])
        raise
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    assert await seen() == n
    assert sink.letters == []
    assert (await WorkItems(check, SETUP, prefix).open_counts())["consumer-early"] == n
    assert await check.xlen(prefix + "outbox") == 2 * n  # sms:borrower + webhook:crm, no dupes
    await check.aclose()
    await client.aclose()


async def _at_least(count: Callable[[], Any], n: int) -> bool:
    return bool(await count() >= n)


async def _committed_some(bootstrap: str, topic: str, group: str) -> bool:
    return await committed(bootstrap, topic, group) > 0


async def _committed_all(bootstrap: str, topic: str, group: str, n: int) -> bool:
    return await committed(bootstrap, topic, group) == n
