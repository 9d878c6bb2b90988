"""BulkProducer: a batch the broker does not acknowledge is sent again, in order, or the send
fails as a whole (the stage then stores and acks nothing)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from loanwatch.agents.bulk import BulkProducer, OutputsNotAcknowledged

pytestmark = pytest.mark.unit


class Builder:
    """aiokafka's batch builder, by record count: full after ``size`` records."""

    def __init__(self, size: int, *_: Any) -> None:
        self.size = size
        self.records: list[bytes | None] = []

    def append(self, key: Any, value: bytes | None, timestamp: Any) -> object | None:
        if len(self.records) >= self.size:
            return None
        self.records.append(value)
        return object()


@dataclass
class FakeProducer:
    fail_first: int = 0  # this many sends fail
    log: list[tuple[str, int, list[bytes | None]]] = field(default_factory=list)
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        acc = SimpleNamespace(create_builder=lambda: Builder(2), _batch_size=2)
        acc._compression_type = None
        self._message_accumulator = acc
        self.client = SimpleNamespace(cluster=SimpleNamespace(partitions_for_topic=lambda t: {0}))

    def _ensure_producer(self) -> FakeProducer:
        return self

    async def send_batch(self, batch: Builder, topic: str, partition: int) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.fail_first > 0:
            self.fail_first -= 1
            fut.set_exception(ConnectionError("broker away"))
            return fut
        base = self.offsets.get((topic, partition), 0)
        self.offsets[(topic, partition)] = base + len(batch.records)
        self.log.append((topic, partition, list(batch.records)))
        fut.set_result(SimpleNamespace(offset=base))
        return fut


def bulk(producer: FakeProducer, retries: int = 3) -> BulkProducer:
    app = SimpleNamespace(producer=producer)
    out = BulkProducer(app, batch_bytes=2, retries=retries)
    out._new_batch = lambda p: Builder(2)  # type: ignore[method-assign]
    return out


async def test_a_failed_batch_is_sent_again_with_the_ones_after_it_in_order() -> None:
    producer = FakeProducer(fail_first=1)  # the first batch of the partition fails once
    out = bulk(producer)
    for i in range(5):
        out.add("t", 0, None, b"r%d" % i)
    assert await out.send() == 5
    delivered = [r for _, _, recs in producer.log for r in recs]
    # the later batches went through the first time, then again after the failed one
    assert delivered[-5:] == [b"r0", b"r1", b"r2", b"r3", b"r4"]


async def test_outputs_never_acknowledged_raise_after_the_retries() -> None:
    producer = FakeProducer(fail_first=10_000)
    out = bulk(producer, retries=2)
    out.add("t", 0, None, b"x")
    with pytest.raises(OutputsNotAcknowledged, match="after 3 attempts"):
        await out.send()
    assert producer.log == []


async def test_state_phases_go_only_after_the_outputs_are_acknowledged() -> None:
    producer = FakeProducer()
    out = bulk(producer)
    out.add("changelog-meta", 0, None, b"clock", phase=4)
    out.add("changelog-loans", 0, None, b"loan", phase=1)
    out.add_keyed("alerts", None, b"alert")
    assert await out.send() == 3
    assert [topic for topic, _, _ in producer.log] == [
        "alerts",
        "changelog-loans",
        "changelog-meta",
    ]


async def test_no_state_is_sent_when_the_outputs_are_not_acknowledged() -> None:
    producer = FakeProducer(fail_first=10_000)
    out = bulk(producer, retries=1)
    out.add("changelog-loans", 0, None, b"loan", phase=1)
    out.add_keyed("alerts", None, b"alert")
    with pytest.raises(OutputsNotAcknowledged):
        await out.send()
    assert producer.log == []  # the changelog was never even tried
