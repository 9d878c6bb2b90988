"""A worker restarted after some lanes were committed to their end waits for none of them.

A lane's mark is acked (and committed) as soon as the lane's earlier records are out, while
another lane may still hold records stamped before it, unprocessed. A worker that takes the
partition over then re-reads those records, but receives nothing on the lanes committed to
their end: without their bound, the records would wait for the lanes' patience and be released
by force (a false ``LoanwatchForcedRelease``, counted, after a plain restart). The worker reads
back each such lane's last committed record, whose stamp bounds the lane.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from loanwatch.replay.runner import iter_lines
from loanwatch.streams.partitioning import MARK_HEADER, partition_for
from loanwatch.streams.topics import TopicNames

from ..contract.scenario_compare import SCENARIOS
from .live import (
    PARTITIONS,
    Processed,
    WorkerProcess,
    forced_releases,
    produce_log,
    wait_ready,
)

PAYMENT = {
    "type": "payment_received",
    "loan_id": "L101-0045",
    "payment_id": "L101-0045-after-restart",
    "amount": "1.00",
    "channel": "bank",
    "event_id": "after-restart-1",
    "occurred_at": "2027-03-31T10:00:00+00:00",
}
BORROWER = "B101-030"  # L101-0045's


async def _committed(bootstrap: str, group: str, want: dict[tuple[str, int], int]) -> None:
    """Waits until the group committed at least ``want`` (next offsets) on those lanes."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        for _ in range(600):
            offsets = await admin.list_consumer_group_offsets(group)
            done = {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items()}
            if all(done.get(tp, -1) >= off for tp, off in want.items()):
                return
            await asyncio.sleep(0.1)
        raise TimeoutError(f"not committed: {want} (committed: {done})")
    finally:
        await admin.close()


async def test_a_restarted_worker_is_bounded_by_lanes_committed_to_their_end(
    kafka_bootstrap: str, unique_name: Any, tmp_path: Path
) -> None:
    prefix = unique_name("lwend") + "."
    names = TopicNames().with_prefix(prefix)
    lines = list(iter_lines(SCENARIOS / "portfolio-101" / "events.jsonl"))
    first = WorkerProcess(app_id=prefix.rstrip("."), prefix=prefix, data_dir=tmp_path / "w")
    second = WorkerProcess(app_id=prefix.rstrip("."), prefix=prefix, data_dir=tmp_path / "w")
    first.start()
    try:
        await wait_ready([first])
        await produce_log(kafka_bootstrap, names, lines, [first])  # end marks included
        partition = partition_for(BORROWER, PARTITIONS)
        now_ms = int(time.time() * 1000)
        others = [t for t in names.inputs() if t != names.payments]
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        await producer.start()
        try:
            # Every lane but payments is marked up to now + 5 s and committed to its end ...
            marks = [
                await producer.send_and_wait(
                    topic,
                    b"",
                    partition=partition,
                    timestamp_ms=now_ms + 5000,
                    headers=[(MARK_HEADER, b"1")],
                )
                for topic in others
            ]
            await _committed(
                kafka_bootstrap, first.app_id, {(m.topic, m.partition): m.offset + 1 for m in marks}
            )
            first.kill(signal.SIGKILL)
            # ... and a payment stamped before those marks reaches the payments lane, unread.
            sent = await producer.send_and_wait(
                names.payments,
                orjson.dumps(PAYMENT),
                key=PAYMENT["loan_id"].encode(),
                partition=partition,
                timestamp_ms=now_ms + 1000,
            )
        finally:
            await producer.stop()
        second.start()
        await wait_ready([second])
        async with Processed(kafka_bootstrap, [second]) as processed:
            await processed({(sent.topic, sent.partition): sent.offset}, timeout=60)
        assert await forced_releases(second) == 0, second.log_tail()
    except BaseException:
        print(first.log_tail(), second.log_tail())
        raise
    finally:
        second.kill(signal.SIGTERM)
