"""Alert-latency helpers: probe events, a paced offered load, a raw aiokafka echo service.

Latency is measured from the wall time just before a send to the arrival of the matching
output record on a tail consumer (fetch wait 10 ms) assigned to every partition at its end.
"""

from __future__ import annotations

import asyncio
import math
import signal
import time
from datetime import date
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from benchkit.worker import BOOTSTRAP, PARTITIONS


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank]


def probe_loan(loan_id: str, day: date) -> dict[str, Any]:
    """A loan opened on ``day`` with one installment due a year later (nothing ages)."""
    due = date(day.year + 1, day.month, min(day.day, 28))
    return {
        "event_id": f"{loan_id}-open",
        "type": "loan_opened",
        "occurred_at": f"{day.isoformat()}T12:00:00+08:00",
        "loan_id": loan_id,
        "borrower_id": f"{loan_id}-B",
        "product": "consumer",
        "region": "north",
        "currency": "CNY",
        "principal": "1000.00",
        "installments": [
            {"seq": 1, "due_date": due.isoformat(), "principal": "1000.00", "interest": "10.00"}
        ],
    }


def probe_signal(loan_id: str, day: date) -> dict[str, Any]:
    """A low-severity risk signal: exactly one ``risk_signal`` alert, no state change."""
    return {
        "event_id": f"{loan_id}-probe",
        "type": "risk_signal",
        "occurred_at": f"{day.isoformat()}T12:00:01+08:00",
        "loan_id": loan_id,
        "signal": "bench_probe",
        "severity": "low",
    }


def latency_row(label: str, lat: list[float], sent: int) -> list[object]:
    """p50/p90/p99/max in ms, and the p50 of the first and last tenth of the sends (trend)."""
    if not lat:
        return [label, sent, 0, "-", "-", "-", "-", "-", "-"]
    ms = [x * 1e3 for x in lat]
    tenth = max(1, len(ms) // 10)
    return [label, sent, len(ms), f"{percentile(ms, 50):.1f}", f"{percentile(ms, 90):.1f}",
            f"{percentile(ms, 99):.1f}", f"{max(ms):.1f}", f"{percentile(ms[:tenth], 50):.1f}",
            f"{percentile(ms[-tenth:], 50):.1f}"]  # fmt: skip


async def tail_consumer(topic: str) -> AIOKafkaConsumer:
    """A consumer assigned to every partition of ``topic``, positioned at its end."""
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False,
                                fetch_max_wait_ms=10)  # fmt: skip
    await consumer.start()
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer.assign(tps)
    await consumer.seek_to_end(*tps)
    for tp in tps:
        await consumer.position(tp)
    return consumer


async def offered_load(
    producer: AIOKafkaProducer,
    consumer: AIOKafkaConsumer,
    sends: list[tuple[str, str, bytes]],
    rate: float,
    matches: Any,
    grace: float = 10.0,
    partition_of: Any = None,
) -> list[float]:
    """Send ``(topic, key, value)`` at ``rate``/s; latency of the first output per key.

    ``partition_of(key)``, when given, places each record (a loan on its borrower's partition).

    Latencies come back in send order, so a growing backlog shows as a rising trend.
    """
    sent: dict[str, float] = {}
    latencies: dict[str, float] = {}

    async def receive() -> None:
        while True:
            batch = await consumer.getmany(timeout_ms=50)
            now = time.time()
            for records in batch.values():
                for rec in records:
                    key = matches(rec)
                    if key in sent and key not in latencies:
                        latencies[key] = now - sent[key]

    reader = asyncio.create_task(receive())
    began = time.perf_counter()
    for i, (topic, key, value) in enumerate(sends):
        delay = began + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        sent[key] = time.time()
        part = partition_of(key) if partition_of is not None else None
        await producer.send(topic, value, key=key.encode(), partition=part)
    deadline = time.perf_counter() + grace
    while len(latencies) < len(sends) and time.perf_counter() < deadline:
        await asyncio.sleep(0.1)
    reader.cancel()
    await asyncio.gather(reader, return_exceptions=True)
    return [latencies[key] for _, key, _ in sends if key in latencies]  # in send order


async def create_topics(topics: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, PARTITIONS, 1) for t in topics])
    finally:
        await admin.close()


async def echo_service(source: str, sink: str) -> None:
    """Raw aiokafka echo: consume ``source`` from its end, produce each value to ``sink``."""
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False,
                                fetch_max_wait_ms=1500)  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=0)
    await consumer.start()
    await producer.start()
    tps = [TopicPartition(source, p) for p in range(PARTITIONS)]
    consumer.assign(tps)
    await consumer.seek_to_end(*tps)
    for tp in tps:
        await consumer.position(tp)
    print("READY", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=100, max_records=1000)
            for records in batch.values():
                for rec in records:
                    await producer.send(sink, rec.value, key=rec.key)
            if batch:
                await producer.flush()
    finally:
        await producer.stop()
        await consumer.stop()
