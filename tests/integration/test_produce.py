"""``loanwatch produce`` and LogProducer against the real broker, on unique topics.

Reads every topic back and checks keys, partitions (a tick on every partition), order and count.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from click.testing import CliRunner

from loanwatch.cli import main
from loanwatch.streams.partitioning import MARK_HEADER, partition_for
from loanwatch.streams.producer import (
    LogProducer,
    ProgressTimeout,
    ensure_topics,
    prefixed,
    scan_directory,
    topic_list,
    wait_processed,
)
from loanwatch.streams.topics import TopicNames

SCENARIO = (
    Path(__file__).parents[1]
    / "fixtures"
    / "scenarios"
    / "rules-allocation-reversal-promise"
    / "events.jsonl"
)
PARTITIONS = 3


async def read_all(bootstrap: str, topics: list[str]) -> list[ConsumerRecord[bytes, bytes]]:
    """Every event record of ``topics`` up to their end offsets (no group, no commit).

    Lane marks (header ``loanwatch.mark``, empty value) are left out: they carry no event.
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = [TopicPartition(t, p) for t in topics for p in range(PARTITIONS)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        out: list[ConsumerRecord[bytes, bytes]] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            positions = [await consumer.position(tp) for tp in parts]
            if all(pos >= ends[tp] for pos, tp in zip(positions, parts, strict=True)):
                break
            batches = await consumer.getmany(timeout_ms=300)
            out += [rec for recs in batches.values() for rec in recs if not _is_mark(rec)]
        return out
    finally:
        await consumer.stop()


def _is_mark(rec: ConsumerRecord[bytes, bytes]) -> bool:
    return any(name == MARK_HEADER for name, _ in rec.headers or ())


def check_log(records: list[ConsumerRecord[bytes, bytes]], names: TopicNames) -> None:
    lines = SCENARIO.read_bytes().splitlines()
    borrowers = scan_directory(lines)
    by_time = sorted(records, key=lambda r: (r.timestamp, r.topic, r.partition))
    clock = [r for r in by_time if r.topic == names.clock]
    events = [r for r in by_time if r.topic != names.clock or b"sync-" not in r.value]
    # every line once (the h9 tick once per partition), in log order by timestamp
    seen: list[bytes] = []
    for rec in events:
        if not seen or seen[-1] != rec.value or rec.topic != names.clock:
            seen.append(rec.value)
    assert seen == lines
    stamps = [r.timestamp for r in by_time]
    assert stamps == sorted(stamps)
    for rec in events:
        obj = json.loads(rec.value)
        if obj["type"] == "clock_tick":
            assert rec.key is None
            continue
        assert rec.key == obj["loan_id"].encode()
        # keyed by loan, on the borrower's partition (the log's loans all have borrower B1..)
        assert rec.partition == partition_for(borrowers[obj["loan_id"]], PARTITIONS)
        topic = {"loan_opened": names.accounts, "promise_to_pay": names.collections}
        assert rec.topic == topic.get(obj["type"], names.payments)
    # 7 sync ticks + the log's own tick, each on every partition, sharing one stamp
    ticks: dict[str, set[int]] = {}
    for rec in clock:
        ticks.setdefault(json.loads(rec.value)["event_id"], set()).add(rec.partition)
    assert len(ticks) == 8
    assert all(parts == set(range(PARTITIONS)) for parts in ticks.values())
    # a sync tick precedes the first event of its date on the same timeline
    first_open = next(r for r in by_time if r.topic == names.accounts)
    assert min(r.timestamp for r in clock) < first_open.timestamp


async def test_produce_cli_round_trip(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    prefix = unique_name("prod") + "."
    names = prefixed(prefix)
    args = ["produce", str(SCENARIO), "--bootstrap", kafka_bootstrap, "--topic-prefix", prefix]
    args += ["--partitions", str(PARTITIONS), "--no-progress"]
    result = await asyncio.to_thread(CliRunner().invoke, main, args)
    assert result.exit_code == 0, result.output
    assert f"{names.clock}\t{8 * PARTITIONS}" in result.output
    records = await read_all(kafka_bootstrap, list(names.inputs()))
    assert len(records) == 10 - 1 + 8 * PARTITIONS
    check_log(records, names)


async def test_ensure_topics_is_idempotent(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    names = prefixed(unique_name("ens") + ".")
    assert sorted(await ensure_topics(kafka_bootstrap, names, PARTITIONS)) == sorted(
        topic_list(names)
    )
    assert await ensure_topics(kafka_bootstrap, names, PARTITIONS) == []


async def test_new_topics_are_served_when_ensure_topics_returns(
    kafka_bootstrap: str, unique_name: Callable[[str], str], caplog: pytest.LogCaptureFixture
) -> None:
    """A producer sending to every partition at once meets no NotLeaderForPartition retry."""
    names = prefixed(unique_name("served") + ".")
    await ensure_topics(kafka_bootstrap, names, PARTITIONS)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        with caplog.at_level(logging.WARNING, logger="aiokafka"):
            for topic in topic_list(names):
                for partition in range(PARTITIONS):
                    await producer.send(topic, b"{}", partition=partition)
            await producer.flush()
    finally:
        await producer.stop()
    retries = [r.getMessage() for r in caplog.records if "NotLeader" in r.getMessage()]
    assert retries == []


async def test_as_of_and_raw_lines_and_barrier_with_progress(
    kafka_bootstrap: str, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    names = prefixed(unique_name("asof") + ".")
    await ensure_topics(kafka_bootstrap, names, PARTITIONS)
    # a fake worker's /progress that reports whatever the test says it processed
    processed: dict[str, int] = {}

    async def progress(_: web.Request) -> web.Response:
        return web.json_response({"offsets": processed})

    app = web.Application()
    app.router.add_get("/progress", progress)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}/progress"
    barriers: list[dict[tuple[str, int], int]] = []

    async def barrier(produced: dict[tuple[str, int], int]) -> None:
        with pytest.raises(ProgressTimeout):
            await wait_processed([url], produced, timeout=0.3)
        processed.update({f"{t}:{p}": off for (t, p), off in produced.items()})
        await wait_processed([url], produced, timeout=5)
        barriers.append(produced)

    lines: list[Any] = [b"{broken", *SCENARIO.read_bytes().splitlines()]
    try:
        async with LogProducer(kafka_bootstrap, names, barrier=barrier, barrier_every="day") as out:
            report = await out.publish(lines, as_of=date(2026, 2, 14))
    finally:
        await runner.cleanup()
    assert report.raw == 1 and report.as_of_tick
    # before each of the 5 dates up to as-of (the raw line came first), then at the end; the
    # as-of tick (02-14, a date already seen) opens no new day
    assert len(barriers) == 5 + 1
    records = await read_all(kafka_bootstrap, list(names.inputs()))
    raw = [r for r in records if r.value == b"{broken"]
    assert len(raw) == 1 and raw[0].key is None and raw[0].topic == names.accounts
    last = max(records, key=lambda r: r.timestamp)
    assert json.loads(last.value)["event_id"] == "as-of-2026-02-14"
    assert len([r for r in records if b"as-of-" in r.value]) == PARTITIONS
    assert not any(b'"h7"' in r.value for r in records)  # 02-15: after as-of


async def test_a_later_log_finds_the_borrower_of_a_loan_opened_by_an_earlier_one(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    """Two files, two runs: the payment of the second lands on the borrower's partition,
    learnt from the loan.directory topic the first run wrote."""
    from loanwatch.streams.partitioning import partition_for

    names = prefixed(unique_name("dir") + ".")
    await ensure_topics(kafka_bootstrap, names, PARTITIONS)
    opening = {
        "event_id": "d-1",
        "type": "loan_opened",
        "occurred_at": "2026-01-01T09:00:00+08:00",
        "loan_id": "LD-1",
        "borrower_id": "BD-7",
    }
    payment = {
        "event_id": "d-2",
        "type": "payment_received",
        "occurred_at": "2026-01-02T09:00:00+08:00",
        "loan_id": "LD-1",
        "payment_id": "p",
        "amount": "1.00",
    }
    want = partition_for("BD-7", PARTITIONS)
    assert want != partition_for("LD-1", PARTITIONS)  # else this proves nothing
    for item in (opening, payment):  # a new producer each time: nothing kept in memory
        async with LogProducer(kafka_bootstrap, names) as out:
            await out.publish([item])
    records = await read_all(kafka_bootstrap, [names.accounts, names.payments])
    assert {(r.topic, r.partition) for r in records} == {
        (names.accounts, want),
        (names.payments, want),
    }
