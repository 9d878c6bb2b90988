"""Helpers for tests that run real `loanwatch worker` processes against the real broker.

A worker runs as a subprocess on its own topics (a unique prefix), app id and data dir, with
the SPEC's default policy (no clock-jump guard, as the replay it is compared with). Logs are
produced the way users produce them: `loanwatch produce`'s publisher at full speed, no barrier
between events; the tests then wait until the workers have processed everything produced.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from loanwatch.stack import services
from loanwatch.stack import topics as scratch_topics
from loanwatch.stack.manager import StackInfo
from loanwatch.streams.producer import LogProducer, ensure_topics, read_progress, scan_directory
from loanwatch.streams.topics import TopicNames

from ..contract.scenario_compare import spec_config

REPO = Path(__file__).resolve().parents[2]
PARTITIONS = 8
log = logging.getLogger(__name__)


async def create_topics(bootstrap: str, *names: str, partitions: int = 1) -> None:
    """Declare topics as a deployment has them (the local broker creates none on its own)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, partitions, 1) for n in names])
    finally:
        await admin.close()


def delete_scratch_topics(prefixes: list[str]) -> None:
    """Delete a passed test's topics (best effort: a broker down or slow never fails it)."""
    bootstrap = StackInfo().kafka_bootstrap
    host, _, port = bootstrap.rpartition(":")
    if not services.port_open(int(port), host):
        return  # the test used no broker (its names were Redis keys or groups)
    try:
        scratch_topics.prune(bootstrap, scratch_topics.with_prefixes(prefixes), timeout_ms=15_000)
    except Exception as exc:
        log.warning("could not delete the test's topics: %r", exc)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class WorkerProcess:
    app_id: str
    prefix: str
    data_dir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    extra_args: tuple[str, ...] = ()
    extra_env: dict[str, str] = field(default_factory=dict)
    config_dir: Path | None = None  # None: the shipped policy with the SPEC defaults

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.config_dir or spec_config(self.data_dir / "config")
        self.log_path = self.data_dir / f"worker-{self.port}.log"
        env = {
            **os.environ,
            "LOANWATCH_BATCH_WITHIN": "0.002",
            "LOANWATCH_COMMIT_INTERVAL": "0.2",
            "LOANWATCH_SESSION_TIMEOUT": "8",
            **self.extra_env,
        }
        cmd = [
            sys.executable,
            "-m",
            "loanwatch.cli",
            "worker",
            "--app-id",
            self.app_id,
            "--topic-prefix",
            self.prefix,
            "--web-port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--partitions",
            str(PARTITIONS),
            "--config",
            str(config),
            "--loglevel",
            os.environ.get("LOANWATCH_TEST_WORKER_LOGLEVEL", "warning"),
            *self.extra_args,
        ]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
            )

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)

    def log_tail(self, lines: int = 60) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


async def wait_ready(workers: Iterable[WorkerProcess], timeout: float = 90) -> None:
    """Until every worker answers /healthz, owns partitions, and together they own them all."""
    deadline = time.monotonic() + timeout
    stable = 0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as session:
        while True:
            owned: set[str] = set()
            ok = True
            for w in workers:
                if w.proc is not None and w.proc.poll() is not None:
                    raise RuntimeError(f"worker exited:\n{w.log_tail()}")
                try:
                    async with session.get(f"{w.url}/healthz") as resp:
                        ok = ok and resp.status == 200
                        if resp.status == 200:
                            mine = set((await resp.json()).get("assigned", []))
                            ok = ok and bool(mine)
                            owned |= mine
                except aiohttp.ClientError:
                    ok = False
            stable = stable + 1 if ok and len(owned) >= PARTITIONS else 0
            if stable >= 3:  # the same full assignment seen three polls in a row
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    "workers not ready:\n" + "\n".join(w.log_tail() for w in workers)
                )
            await asyncio.sleep(0.3)


class Processed:
    """Waits until the workers processed what was produced (their /progress, or the group's
    committed offsets for a worker that died or lost the partition meanwhile)."""

    def __init__(self, bootstrap: str, workers: list[WorkerProcess]) -> None:
        self.workers = workers
        self.group = workers[0].app_id
        self.admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Processed:
        await self.admin.start()
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.admin.close()
        if self.session is not None:
            await self.session.close()

    async def __call__(self, produced: Mapping[tuple[str, int], int], timeout: float = 300) -> None:
        assert self.session is not None
        deadline = time.monotonic() + timeout
        polls = 0
        while True:
            seen: dict[tuple[str, int], int] = {}
            for w in self.workers:
                try:
                    for tp, off in (await read_progress(self.session, f"{w.url}/progress")).items():
                        seen[tp] = max(seen.get(tp, -1), off)
                except (aiohttp.ClientError, TimeoutError):
                    pass  # a restarting worker: keep waiting
            behind = {tp: off for tp, off in produced.items() if seen.get(tp, -1) < off}
            if behind and polls % 20 == 19:
                committed = await self.admin.list_consumer_group_offsets(self.group)
                done = {(tp.topic, tp.partition): meta.offset for tp, meta in committed.items()}
                behind = {tp: off for tp, off in behind.items() if done.get(tp, -1) <= off}
            if not behind:
                return
            polls += 1
            if time.monotonic() > deadline:
                raise TimeoutError(f"workers still behind on {behind}")
            await asyncio.sleep(0.05)


async def publish_log(
    bootstrap: str, names: TopicNames, lines: list[bytes], as_of: Any = None
) -> Mapping[tuple[str, int], int]:
    """`loanwatch produce`'s publisher at full speed (borrowers scanned first, lane marks)."""
    await ensure_topics(bootstrap, names, PARTITIONS)
    async with LogProducer(bootstrap, names) as producer:
        report = await producer.publish(lines, as_of=as_of, directory=scan_directory(lines))
    return dict(report.produced)


async def send_events(bootstrap: str, names: TopicNames, events: list[dict[str, Any]]) -> None:
    """A few events as our producers send them (borrower's partition, lane marks), no ticks."""
    async with LogProducer(bootstrap, names, sync_clock=False) as producer:
        await producer.publish(events)


async def mark_lanes(bootstrap: str, names: TopicNames) -> None:
    """A round of lane marks stamped now (what `simulate --live` sends every 0.1 s when idle)."""
    async with LogProducer(bootstrap, names) as producer:
        await producer.heartbeat()


async def produce_log(
    bootstrap: str,
    names: TopicNames,
    lines: list[bytes],
    workers: list[WorkerProcess],
    as_of: Any = None,
    timeout: float = 300,
) -> None:
    """Publish a log at full speed, then wait until the workers processed all of it."""
    produced = await publish_log(bootstrap, names, lines, as_of=as_of)
    async with Processed(bootstrap, workers) as processed:
        await processed(produced, timeout)


async def read_topic(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    """Every JSON value on a topic, from the beginning to its current end."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        out: list[dict[str, Any]] = []
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                out.extend(orjson.loads(r.value) for r in records)
        return out
    finally:
        await consumer.stop()


async def loan_states(workers: list[WorkerProcess], loan_ids: list[str]) -> list[dict[str, Any]]:
    """GET /loans/{id} for each loan, asking any worker (requests are routed to the owner)."""
    out = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        for i, loan_id in enumerate(loan_ids):
            worker = workers[i % len(workers)]
            async with session.get(f"{worker.url}/loans/{loan_id}") as resp:
                assert resp.status == 200, (loan_id, resp.status, await resp.text())
                out.append(await resp.json())
    return out


async def progress_of(worker: WorkerProcess) -> dict[tuple[str, int], int]:
    async with aiohttp.ClientSession() as session:
        return await read_progress(session, f"{worker.url}/progress")


def chaos_row(
    fault: str, events: int, counts: Counter[str], letters: Counter[str], recover_s: float
) -> None:
    """One row of `make chaos`'s table (printed; `bench/chaos_table.py` collects them).

    Only a run that passed prints: states equal replay and no alert lost are asserted first.
    """
    reasons = ",".join(f"{r}={n}" for r, n in sorted(letters.items()))
    print(
        f"CHAOS\t{fault}\t{events}\tyes\t0\t{counts['duplicate_alerts']}\t{reasons}"
        f"\t{recover_s:.1f}",
        flush=True,
    )


async def forced_releases(worker: WorkerProcess) -> float:
    """The worker's ``loanwatch_alignment_forced_total`` (the merge gave up on a lane)."""
    async with aiohttp.ClientSession() as session, session.get(f"{worker.url}/metrics") as resp:
        text = await resp.text()
    for line in text.splitlines():
        if line.startswith("loanwatch_alignment_forced_total "):
            return float(line.split()[1])
    raise AssertionError("no loanwatch_alignment_forced_total in /metrics")


async def assert_live_equals_replay(
    bootstrap: str, names: TopicNames, workers: list[WorkerProcess], expected: Any
) -> Counter[str]:
    """States, alerts (ids included) and dead letters of the workers are exactly replay's.

    A record processed again after a crash or rebalance writes its outputs again with the
    same ids and source: duplicates are folded (and their count returned), never missing.
    """
    from ..contract.scenario_compare import alert_mismatches

    letters = await read_topic(bootstrap, names.dead_letters)
    by_source = {
        (d["topic"], d["partition"], d["offset"], d["reason"], orjson.dumps(d.get("event")))
        for d in letters
    }
    got = Counter(key[3] for key in by_source)
    want = Counter(r.reason for r in expected.rejects)
    assert got == want, f"live, not replay: {got - want}; replay, not live: {want - got}"
    raw_alerts = await read_topic(bootstrap, names.alerts)
    alerts = list({a["alert_id"]: a for a in raw_alerts}.values())
    replayed = [a.to_json() for a in expected.alerts]
    mismatches = alert_mismatches(replayed, alerts)
    assert mismatches == [], "\n".join(mismatches[:20])
    assert sorted(a["alert_id"] for a in alerts) == sorted(a["alert_id"] for a in replayed)
    states = await loan_states(workers, [v.loan_id for v in expected.states])
    want_states = [v.to_json() for v in expected.states]
    wrong = [(s, w) for s, w in zip(states, want_states, strict=True) if s != w]
    assert not wrong, wrong[:5]
    return Counter({"duplicate_alerts": len(raw_alerts) - len(alerts)})


async def end_offsets(bootstrap: str, topics: tuple[str, ...]) -> dict[tuple[str, int], int]:
    """Last offset of every non-empty partition of ``topics``."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(PARTITIONS)]
        ends = await consumer.end_offsets(tps)
        return {(tp.topic, tp.partition): off - 1 for tp, off in ends.items() if off > 0}
    finally:
        await consumer.stop()


async def run_once_then_preload(
    worker: WorkerProcess, bootstrap: str, names: TopicNames, lines: list[bytes]
) -> None:
    """The deployment ran before a downtime (its tables' changelog topics exist); while it was
    down the whole log was published at full speed, with no barrier: a backlog."""
    worker.start()
    try:
        await wait_ready([worker])
    finally:
        worker.kill(signal.SIGTERM)
    kafka = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    async with LogProducer(bootstrap, names, kafka=kafka) as producer:
        await producer.publish(lines)
