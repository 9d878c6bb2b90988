"""Reading the audit topic and the input lanes from Kafka (aiokafka, no consumer group).

Read-only: nothing here commits offsets or writes a record.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from loanwatch.streams.kafka_security import KafkaSecurity

FETCH_TIMEOUT_MS = 500


def bootstrap_of(broker: str) -> str:
    """``kafka://h:p;kafka://h2:p2`` (Faust's URL form) -> ``h:p,h2:p2``."""
    hosts = [part.strip() for part in broker.replace(";", ",").split(",") if part.strip()]
    return ",".join(h.split("://", 1)[-1] for h in hosts)


@dataclass(frozen=True, slots=True)
class Stored:
    """One record as read back: its partition, offset, timestamp (ms), key and value."""

    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None


async def partitions_of(bootstrap: str, topic: str) -> set[int]:
    """The partitions of ``topic`` (none if it does not exist)."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, client_id="loanwatch-audit", **KafkaSecurity().client_options()
    )
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return {
        int(p["partition"]) for t in described if t.get("error_code") == 0 for p in t["partitions"]
    }


def _consumer(bootstrap: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        group_id=None,
        auto_offset_reset="earliest",
        client_id="loanwatch-audit",
        **KafkaSecurity().client_options(),
    )


async def _read(consumer: Any, tps: list[TopicPartition], starts: dict[Any, int]) -> list[Any]:
    ends = await consumer.end_offsets(tps)
    todo = []
    for tp in tps:
        start = starts.get(tp)
        if start is None:
            await consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, start)
        if ends[tp] > (start or 0):
            todo.append(tp)
    out: list[Any] = []
    while todo:
        got = await consumer.getmany(*todo, timeout_ms=FETCH_TIMEOUT_MS)
        for tp, records in got.items():
            out.extend(r for r in records if r.offset < ends[tp])
        todo = [tp for tp in todo if await consumer.position(tp) < ends[tp]]
    return out


async def read_topic(
    bootstrap: str, topic: str, partitions: Iterable[int] | None = None
) -> dict[int, list[Stored]]:
    """Every record of ``topic`` (or of some partitions) from the beginning to its end now."""
    consumer = _consumer(bootstrap)
    await consumer.start()
    try:
        found = await partitions_of(bootstrap, topic)
        parts = sorted(found) if partitions is None else sorted(set(partitions) & set(found))
        tps = [TopicPartition(topic, p) for p in parts]
        if not tps:
            return {}
        consumer.assign(tps)
        records = await _read(consumer, tps, {})
    finally:
        await consumer.stop()
    out: dict[int, list[Stored]] = {p: [] for p in parts}
    for r in records:
        out[r.partition].append(Stored(r.partition, r.offset, r.timestamp, r.key, r.value))
    for items in out.values():
        items.sort(key=lambda s: s.offset)
    return out


class KafkaTail:
    """The worker's reader of an audit partition's tail (one consumer, started on first use)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self._consumer: Any = None

    async def read(self, partition: int, start: int) -> tuple[list[bytes], int]:
        if self._consumer is None:
            consumer = _consumer(self.bootstrap)
            await consumer.start()  # kept only once started: a failed start is tried again
            self._consumer = consumer
        tp = TopicPartition(self.topic, partition)
        self._consumer.assign([tp])
        end = (await self._consumer.end_offsets([tp]))[tp]
        records = await _read(self._consumer, [tp], {tp: start}) if end > start else []
        records.sort(key=lambda r: r.offset)
        return [r.value for r in records if r.value is not None], int(end)

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None


async def end_offsets(
    bootstrap: str, topics: Iterable[str], partitions: Iterable[int]
) -> dict[tuple[str, int], int]:
    """The end offset of each topic-partition (the next offset to be written)."""
    consumer = _consumer(bootstrap)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in partitions]
        ends = await consumer.end_offsets(tps) if tps else {}
    finally:
        await consumer.stop()
    return {(tp.topic, tp.partition): int(end) for tp, end in ends.items()}


async def read_inputs(
    bootstrap: str, topics: Iterable[str], partition: int
) -> dict[tuple[str, int], Stored]:
    """Every record of one partition of each input lane, by (topic, offset)."""
    out: dict[tuple[str, int], Stored] = {}
    for topic in topics:
        for item in (await read_topic(bootstrap, topic, [partition])).get(partition, []):
            out[(topic, item.offset)] = item
    return out
