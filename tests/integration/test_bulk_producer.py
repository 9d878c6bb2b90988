"""The ledger's bulk output against the real broker: partitions, order, batches, table offsets.

The worker tests show the pipeline's answers do not change; these pin what ``bulk.py``
promises on its own: keyed records land where Kafka's default partitioner (and so
``topic.send(key=...)``) puts them, order per partition is kept across batch splits, records
larger than a batch still go, timestamps are kept, a table write reaches the store and the
changelog with Faust's bytes, and the table's persisted offset is the changelog's last offset.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import faust
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner
from faust.types import TP

from loanwatch.agents.bulk import BulkProducer, TableWriter

from .live import create_topics

pytestmark = pytest.mark.integration

BOOTSTRAP = "127.0.0.1:9092"


class _FaustProducer:
    """What BulkProducer uses of Faust's producer: the started aiokafka client."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer

    def _ensure_producer(self) -> AIOKafkaProducer:
        return self.producer


class _App:
    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = _FaustProducer(producer)


class _Store(dict[Any, bytes]):
    def __init__(self) -> None:
        super().__init__()
        self.persisted: dict[Any, int] = {}

    def set_persisted_offset(self, tp: Any, offset: int) -> None:
        self.persisted[tp] = offset


class _Serializers:
    def dumps_key(self, typ: Any, key: str, serializer: Any = None) -> bytes:
        return f'"{key}"'.encode()  # Faust's json key serializer for a str

    def dumps_value(self, typ: Any, value: bytes, serializer: Any = None) -> bytes:
        return value


class _ChangelogTopic:
    def __init__(self, name: str) -> None:
        self.name = name

    def get_topic_name(self) -> str:
        return self.name


class _Table:
    def __init__(self, changelog: str) -> None:
        self.data = _Store()
        self.changelog_topic = _ChangelogTopic(changelog)
        self.app = type("A", (), {"serializers": _Serializers()})()
        self.key_type, self.key_serializer = str, "json"
        self.value_type, self.value_serializer = bytes, "raw"


async def _read(topic: str, partitions: int) -> dict[int, list[Any]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        out: dict[int, list[Any]] = {p: [] for p in range(partitions)}
        deadline = time.monotonic() + 30
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            assert time.monotonic() < deadline, "topic not read to its end in 30 s"
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                out[tp.partition] += records
        return out
    finally:
        await consumer.stop()


async def test_keyed_records_land_where_kafka_puts_them_in_order_across_batches(
    unique_name: Callable[[str], str],
) -> None:
    topic = unique_name("bulk") + "-out"
    await create_topics(BOOTSTRAP, topic, partitions=4)
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
    await producer.start()
    try:
        bulk = BulkProducer(_App(producer), batch_bytes=2048)  # small: forces batch splits
        keys = [f"L{i % 13}".encode() for i in range(300)]
        for i, key in enumerate(keys):
            bulk.add_keyed(topic, key, f"{i}".encode() * (1 if i != 7 else 3000), 1_700_000_000.5)
        bulk.add_keyed(topic, None, b"no-key-1")
        bulk.add_keyed(topic, None, b"no-key-2")
        assert len(bulk) == 302
        assert await bulk.send() == 302
        assert bulk.sent_batches > 4  # split (one record of ~3-9 KB is larger than a batch)
    finally:
        await producer.stop()

    got = await _read(topic, 4)
    partitioner = DefaultPartitioner()
    expected: dict[int, list[bytes]] = {p: [] for p in range(4)}
    for i, key in enumerate(keys):
        p = partitioner(key, [0, 1, 2, 3], [0, 1, 2, 3])
        expected[p].append(f"{i}".encode() * (1 if i != 7 else 3000))
    for p in range(4):
        keyed = [r.value for r in got[p] if r.key is not None]
        assert keyed == expected[p], f"partition {p}: wrong records or order"
        assert all(r.timestamp == 1_700_000_000_500 for r in got[p] if r.key is not None)
    unkeyed = [(p, r.value) for p in range(4) for r in got[p] if r.key is None]
    assert sorted(v for _, v in unkeyed) == [b"no-key-1", b"no-key-2"]
    assert len({p for p, _ in unkeyed}) == 1  # one send's unkeyed records stay together


async def test_a_table_write_reaches_store_and_changelog_and_moves_the_persisted_offset(
    unique_name: Callable[[str], str],
) -> None:
    changelog = unique_name("bulk") + "-app-loans-changelog"
    await create_topics(BOOTSTRAP, changelog, partitions=2)
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
    await producer.start()
    try:
        bulk = BulkProducer(_App(producer))
        table = _Table(changelog)
        writer = TableWriter(table, bulk)
        writer.set(1, "L1", b"v1")
        writer.set(1, "L2", b"v2")
        writer.set(1, "L1", b"v1b")
        writer.delete(1, "L2")
        assert table.data == {"L1": b"v1b"}  # the store is written at once
        assert await bulk.send() == 4
        first = dict(table.data.persisted)
        writer.set(1, "L3", b"v3")
        await bulk.send()
    finally:
        await producer.stop()

    got = await _read(changelog, 2)
    assert got[0] == []
    assert [(r.key, r.value) for r in got[1]] == [
        (b'"L1"', b"v1"),
        (b'"L2"', b"v2"),
        (b'"L1"', b"v1b"),
        (b'"L2"', None),  # a tombstone
        (b'"L3"', b"v3"),
    ]
    (tp,) = first
    assert (tp.topic, tp.partition) == (changelog, 1)
    assert first[tp] == got[1][3].offset  # the last record of the first send
    assert table.data.persisted[tp] == got[1][4].offset


async def test_rocksdb_writes_are_batched_per_partition_until_commit(
    tmp_path: Any, unique_name: Callable[[str], str]
) -> None:
    app_id = unique_name("bulk") + "-app"
    app = faust.App(app_id, store="rocksdb://", datadir=str(tmp_path))
    table = app.Table("loans", default=None, partitions=2, key_type=str, value_type=bytes)
    changelog = table.changelog_topic.get_topic_name()
    await create_topics(BOOTSTRAP, changelog, partitions=2)
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
    await producer.start()
    try:
        bulk = BulkProducer(_App(producer))
        writer = TableWriter(table, bulk, batched=True)
        db = table.data._db_for_partition(1)
        writer.set(1, "L1", b"v1")
        writer.set(1, "L2", b"v2")
        writer.delete(1, "L2")
        assert db.get(b'"L1"') is None  # batched: not applied before commit
        writer.commit()
        assert db.get(b'"L1"') == b"v1"
        assert db.get(b'"L2"') is None  # put then delete, in order
        assert table.data._db_for_partition(0).get(b'"L1"') is None  # the partition's own DB
        assert await bulk.send() == 3
        tp = TP(changelog, 1)
        assert table.data.persisted_offset(tp) == 2  # the third record of the changelog
    finally:
        await producer.stop()
    got = await _read(changelog, 2)
    assert [(r.key, r.value) for r in got[1]] == [
        (b'"L1"', b"v1"),
        (b'"L2"', b"v2"),
        (b'"L2"', None),
    ]
