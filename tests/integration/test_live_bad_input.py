"""Malformed messages on every topic the worker reads reach the dead letters with a reason,
their source and their original bytes, and the worker keeps processing what follows."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from loanwatch.streams.producer import ensure_topics
from loanwatch.streams.topics import TopicNames

from .live import PARTITIONS, WorkerProcess, loan_states, read_topic, wait_ready

OPEN = {
    "event_id": "ok-1",
    "type": "loan_opened",
    "occurred_at": "2026-01-01T09:00:00+08:00",
    "loan_id": "GOOD",
    "borrower_id": "B",
    "product": "consumer",
    "region": "east",
    "currency": "CNY",
    "principal": "100.00",
    "installments": [
        {"seq": 1, "due_date": "2026-02-01", "principal": "100.00", "interest": "0.00"}
    ],
}


async def test_bad_messages_on_every_topic_are_dead_lettered_and_the_worker_goes_on(
    kafka_bootstrap: str, unique_name: Any, tmp_path: Path
) -> None:
    prefix = unique_name("lwbad") + "."
    names = TopicNames().with_prefix(prefix)
    await ensure_topics(kafka_bootstrap, names, PARTITIONS)
    worker = WorkerProcess(app_id=prefix.rstrip("."), prefix=prefix, data_dir=tmp_path / "w")
    worker.start()
    bad: list[tuple[str, bytes | None]] = []
    for topic in (*names.inputs(), names.commands, names.exposures):
        bad += [
            (topic, b"{not json"),
            (topic, b"\xff\xfe\x00binary"),
            (topic, None),
            (topic, b"[1, 2, 3]"),
            (topic, b'{"type": "payment_received", "amount": 1}'),
        ]
    try:
        await wait_ready([worker])
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        await producer.start()
        try:
            for topic, value in bad:
                await producer.send_and_wait(topic, value, key=b"GOOD")
            await producer.send_and_wait(names.accounts, orjson.dumps(OPEN), key=b"GOOD")
        finally:
            await producer.stop()

        letters: list[dict[str, Any]] = []
        for _ in range(300):
            letters = await read_topic(kafka_bootstrap, names.dead_letters)
            if len(letters) >= len(bad):
                break
            await asyncio.sleep(0.2)
        assert len(letters) == len(bad)
        assert all(d.get("reason") and d.get("message") for d in letters)
        by_topic = {d["topic"] for d in letters}
        assert by_topic == {t for t, _ in bad}
        raw = [d for d in letters if d.get("raw_encoding") == "base64"]
        assert raw, "non-UTF-8 bytes are kept (base64)"
        assert worker.proc is not None and worker.proc.poll() is None  # still running
        states = await loan_states([worker], ["GOOD"])
        assert states[0]["outstanding_principal"] == "100.00"
    except BaseException:
        print(worker.log_tail())
        raise
    finally:
        worker.kill(signal.SIGTERM)
