"""Bad input on every topic the worker reads: each message is one dead letter with a reason,
its source and its original bytes (bounded), and the worker keeps processing what follows.

The fuzz part draws messages from Hypothesis strategies (JSON values of every shape, events
with wrong field types, huge strings, deep nesting, random bytes, far-future and far-past
dates) and sends them at full speed onto every input topic of a running worker that uses the
shipped policy (clock-jump guard 31 days).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loanwatch.streams.producer import ensure_topics
from loanwatch.streams.topics import TopicNames

from .live import (
    PARTITIONS,
    REPO,
    Processed,
    WorkerProcess,
    chaos_row,
    end_offsets,
    loan_states,
    read_topic,
    send_events,
    wait_ready,
)

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
TICK = {"event_id": "t-0", "type": "clock_tick", "business_date": "2026-01-01"}
FUZZED = int(os.environ.get("LOANWATCH_FUZZ_MESSAGES", "10000"))
INTS = st.integers(-(2**63), 2**63 - 1)  # JSON integers orjson can write

json_values = st.recursive(
    st.none() | st.booleans() | INTS | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
far_dates = st.sampled_from(
    ["9999-12-31T23:59:59+08:00", "2999-01-01T00:00:00Z", "0001-01-01T00:00:00+00:00",
     "1900-02-28T10:00:00+08:00", "2026-13-40T10:00:00+08:00", "yesterday",
     "2062-01-06T10:00:00+08:00", "2026-03-15T10:00:00+08:00", "1950-06-01T10:00:00+08:00"]
)  # fmt: skip


@st.composite
def broken_events(draw: st.DrawFn) -> bytes:
    """An event of a real type with one thing wrong (never valid, so never applied)."""
    kind = draw(st.sampled_from(["payment_received", "promise_to_pay", "loan_opened"]))
    event: dict[str, Any] = {
        "event_id": f"fz-{draw(st.integers(0, 10**9))}",
        "type": kind,
        "occurred_at": draw(far_dates | st.just("2026-01-02T10:00:00+08:00")),
        "loan_id": draw(st.text(min_size=1, max_size=12)),
    }
    wrong = draw(st.sampled_from(["amount", "missing", "huge", "installments", "type"]))
    if wrong == "amount":
        event |= {"payment_id": "p", "amount": draw(INTS | st.floats() | st.just("-1"))}
    elif wrong == "huge":
        event |= {"payment_id": "p", "amount": "1" * draw(st.integers(1_000, 30_000))}
    elif wrong == "installments":
        event |= {"type": "loan_opened", "borrower_id": 7, "installments": draw(json_values)}
    elif wrong == "type":
        event["type"] = draw(st.text(max_size=10).filter(lambda t: t != "clock_tick"))
    return orjson.dumps(event)


bad_messages = st.one_of(
    json_values.filter(lambda v: not isinstance(v, dict)).map(orjson.dumps),
    st.dictionaries(st.text(max_size=8), json_values).map(orjson.dumps),  # no event_id/type
    st.binary(max_size=64).map(lambda b: b"\xff" + b),  # never UTF-8 JSON
    st.integers(1_000, 20_000).map(lambda n: b"[" * n + b"]" * n),  # deep nesting
    st.integers(20_000, 60_000).map(lambda n: b'"' + b"x" * n + b'"'),  # beyond RAW_LIMIT
    broken_events(),
)


def draw_bad_messages(count: int) -> list[bytes]:
    """``count`` messages drawn by Hypothesis, 50 per example."""
    drawn: list[bytes] = []

    @settings(
        max_examples=count // 50 + 1,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.lists(bad_messages, min_size=50, max_size=50))
    def collect(batch: list[bytes]) -> None:
        drawn.extend(batch)

    collect()
    # and one near the broker's 1 MB limit
    return [b'{"event_id":"big","detail":"' + b"y" * 900_000 + b'"}', *drawn[: count - 1]]


async def _processed_to_end(bootstrap: str, names: TopicNames, worker: WorkerProcess) -> None:
    """Waits until the worker processed every input and command record sent so far (dead
    letters come first: the good event after them may still be in its lane)."""
    produced = await end_offsets(bootstrap, (*names.inputs(), names.commands))
    async with Processed(bootstrap, [worker]) as processed:
        await processed(produced)


async def _wait_letters(bootstrap: str, topic: str, want: int, worker: WorkerProcess) -> list[Any]:
    letters: list[dict[str, Any]] = []
    for _ in range(600):
        letters = await read_topic(bootstrap, topic)
        if len(letters) >= want:
            return letters
        assert worker.proc is not None and worker.proc.poll() is None, worker.log_tail()
        await asyncio.sleep(0.5)
    return letters


async def test_bad_messages_on_every_topic_are_dead_lettered_and_the_worker_goes_on(
    kafka_bootstrap: str, unique_name: Any, tmp_path: Path
) -> None:
    prefix = unique_name("lwbad") + "."
    names = TopicNames().with_prefix(prefix)
    await ensure_topics(kafka_bootstrap, names, PARTITIONS)
    worker = WorkerProcess(app_id=prefix.rstrip("."), prefix=prefix, data_dir=tmp_path / "w")
    worker.start()
    bad: list[tuple[str, bytes | None]] = []
    for topic in (*names.inputs(), names.commands):
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
        finally:
            await producer.stop()
        await send_events(kafka_bootstrap, names, [OPEN])  # placed, and marks every lane
        letters = await _wait_letters(kafka_bootstrap, names.dead_letters, len(bad), worker)
        assert len(letters) == len(bad)
        assert all(d.get("reason") and d.get("message") for d in letters)
        by_topic = {d["topic"] for d in letters}
        assert by_topic == {t for t, _ in bad}
        raw = [d for d in letters if d.get("raw_encoding") == "base64"]
        assert raw, "non-UTF-8 bytes are kept (base64)"
        assert worker.proc is not None and worker.proc.poll() is None  # still running
        await _processed_to_end(kafka_bootstrap, names, worker)
        states = await loan_states([worker], ["GOOD"])
        assert states[0]["outstanding_principal"] == "100.00"
    except BaseException:
        print(worker.log_tail())
        raise
    finally:
        worker.kill(signal.SIGTERM)


async def test_ten_thousand_fuzzed_messages_are_each_one_dead_letter(
    kafka_bootstrap: str, unique_name: Any, tmp_path: Path
) -> None:
    messages = draw_bad_messages(FUZZED)
    assert len(messages) == FUZZED
    prefix = unique_name("lwfuzz") + "."
    names = TopicNames().with_prefix(prefix)
    await ensure_topics(kafka_bootstrap, names, PARTITIONS)
    worker = WorkerProcess(
        app_id=prefix.rstrip("."),
        prefix=prefix,
        data_dir=tmp_path / "w",
        config_dir=REPO / "config",  # the shipped policy: far-future dates are future_date
    )
    worker.start()
    rnd = random.Random(3)
    try:
        await wait_ready([worker])
        await send_events(kafka_bootstrap, names, [TICK])  # the clock, so the guard measures
        producer = AIOKafkaProducer(
            bootstrap_servers=kafka_bootstrap, acks="all", max_request_size=4 * 1024 * 1024
        )
        await producer.start()
        try:
            sends = [
                await producer.send(
                    rnd.choice(names.inputs()),
                    value,
                    key=rnd.choice([None, b"GOOD", value[:8]]),
                    partition=rnd.randrange(PARTITIONS),
                )
                for value in messages
            ]
            await asyncio.gather(*sends)
        finally:
            await producer.stop()
        await send_events(kafka_bootstrap, names, [OPEN])  # then a good event, and marks
        sent = time.monotonic()
        letters = await _wait_letters(kafka_bootstrap, names.dead_letters, FUZZED, worker)
        took = time.monotonic() - sent
        assert len(letters) == FUZZED, worker.log_tail()
        assert all(d.get("reason") and d.get("message") for d in letters)
        assert all(len(orjson.dumps(d)) < 200_000 for d in letters)  # bounded, sendable
        assert {d["topic"] for d in letters} == set(names.inputs())
        reasons = {d["reason"] for d in letters}
        assert {"malformed_json", "future_date"} <= reasons, reasons
        await _processed_to_end(kafka_bootstrap, names, worker)
        states = await loan_states([worker], ["GOOD"])
        assert states[0]["outstanding_principal"] == "100.00"
        # the guard: no mistyped year aged the partition (the clock is still in January 2026)
        assert states[0]["as_of"].startswith("2026-01") and states[0]["dpd"] == 0, states[0]
        assert worker.proc is not None and worker.proc.poll() is None
        by_reason = Counter(d["reason"] for d in letters)
        chaos_row(f"{FUZZED} fuzzed messages", FUZZED, Counter(), by_reason, took)
    except BaseException:
        print(worker.log_tail())
        raise
    finally:
        worker.kill(signal.SIGTERM)
