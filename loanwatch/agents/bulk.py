"""Bulk output: a batch's records go to Kafka as one record batch per topic-partition.

Faust sends every record on its own (a ``FutureMessage``, its producer buffer, one aiokafka
``send`` with its own future and accumulator lookup, and for a table write a callback that puts
the changelog offset into RocksDB): about half of a drain's CPU went there. The ledger stage
knows every record of a batch before it sends any, so it builds aiokafka record batches itself
(``create_batch``/``send_batch``, the client's public batch API) and awaits them all at once.

What stays as Faust does it:

- a table write puts the same bytes into the table's store (RocksDB) that a ``table[key] =
  value`` would, and the same record into the table's changelog topic, on the partition of the
  event being processed; so Faust's recovery (changelog replay into RocksDB from the persisted
  offset) restores it unchanged;
- once a changelog batch is acknowledged its last offset is the table's persisted offset for
  that partition (what Faust's ``_on_changelog_sent`` records per message);
- keyed records go to the partition Kafka's default partitioner picks (murmur2 of the key over
  the topic's partitions), like ``topic.send(key=...)``; records keep their order per partition.

Crash safety comes from the order of the **phases**: the outputs (alerts, dead letters,
status) first, then each table's changelog in the order the ledger gives (loans, orphans,
seen ids, clock), each phase acknowledged before the next is sent. A crash at any instant
leaves a prefix of that sequence in Kafka; from any prefix, re-reading the unacked records
converges to the same state, and no output is lost (docs/design.md, "Outputs before state").
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aiokafka.partitioner import murmur2
from faust.types import TP
from rocksdict import WriteBatch

from loanwatch.agents.faust_internals import (
    batch_builder,
    is_rocksdb,
    kafka_producer,
    key_index,
    partition_db,
)

log = logging.getLogger("loanwatch.worker")

# Well below Kafka's default 1 MB message.max.bytes; a first record always fits, whatever its size.
BATCH_BYTES = 256 * 1024
METADATA_TIMEOUT = 30.0


class OutputsNotAcknowledged(RuntimeError):
    """The broker did not acknowledge a batch's records: nothing may be stored or acked."""


@dataclass(slots=True)
class _Pending:
    """Records of one topic-partition, in order: (key, value, timestamp in ms or None)."""

    records: list[tuple[bytes | None, bytes | None, int | None]] = field(default_factory=list)
    table: Any = None  # the table whose changelog this is (its persisted offset moves)
    phase: int = 0  # sent, and acknowledged, after every lower phase


class BulkProducer:
    """Collects a batch's records, then sends them as record batches and waits for every ack.

    One per agent: each sends (and waits for) exactly what its own batch queued.
    """

    def __init__(self, app: Any, *, batch_bytes: int = BATCH_BYTES, retries: int = 8) -> None:
        self.app = app
        self.retries = retries
        self.batch_bytes = batch_bytes
        self.pending: dict[tuple[str, int | None], _Pending] = {}
        self._keyed: dict[str, list[tuple[bytes | None, bytes | None, int | None]]] = {}
        self._round = 0
        self.sent_batches = 0

    def __len__(self) -> int:
        return sum(len(p.records) for p in self.pending.values()) + sum(
            len(v) for v in self._keyed.values()
        )

    def add(
        self,
        topic: str,
        partition: int,
        key: bytes | None,
        value: bytes | None,
        timestamp: float | None = None,
        *,
        table: Any = None,
        phase: int = 0,
    ) -> None:
        """Queue one record for ``topic``/``partition`` (timestamp in seconds, None: now).

        Records of a higher ``phase`` are sent only once every lower phase is acknowledged
        (keyed outputs are phase 0: outputs before state).
        """
        pending = self.pending.get((topic, partition))
        if pending is None:
            pending = self.pending[(topic, partition)] = _Pending(table=table, phase=phase)
        stamp = int(timestamp * 1000) if timestamp is not None else None
        pending.records.append((key, value, stamp))

    def add_keyed(
        self, topic: str, key: bytes | None, value: bytes | None, timestamp: float | None = None
    ) -> None:
        """Queue one record whose partition Kafka's default partitioner picks from ``key``.

        Without a key the records of a send go to one partition, chosen in turn per send.
        """
        stamp = int(timestamp * 1000) if timestamp is not None else None
        self._keyed.setdefault(topic, []).append((key, value, stamp))

    async def send(self) -> int:
        """Send everything queued, wait until Kafka has it all; return the records sent."""
        if not self.pending and not self._keyed:
            return 0
        producer = kafka_producer(self.app)
        # Take what is queued before the first await: records added meanwhile go next time.
        queued, keyed = self.pending, self._keyed
        self.pending, self._keyed = {}, {}
        for topic, records in keyed.items():
            partitions = sorted(await partitions_of(producer.client, topic))
            n = len(partitions)
            self._round += 1
            for key, value, stamp in records:
                if key is None:
                    p = partitions[self._round % n]
                else:
                    p = partitions[(murmur2(key) & 0x7FFFFFFF) % n]
                pending = queued.get((topic, p))
                if pending is None:
                    pending = queued[(topic, p)] = _Pending()
                pending.records.append((key, value, stamp))
        total = 0
        for (topic, partition), pending in queued.items():
            assert partition is not None
            await partitions_of(producer.client, topic)  # created, and known with partitions
            total += len(pending.records)
        for phase in sorted({p.phase for p in queued.values()}):
            await self._send_all(producer, {k: v for k, v in queued.items() if v.phase == phase})
        return total

    async def _send_all(
        self, producer: Any, queued: dict[tuple[str, int | None], _Pending]
    ) -> None:
        """Send every topic-partition's records; resend from a failed batch on, in order.

        A failed batch is sent again with every batch after it on the same topic-partition
        (a later batch may have succeeded: sending it again keeps the order, and a changelog
        record sent twice restores the same value), ``retries`` times with a backoff; then
        :class:`OutputsNotAcknowledged` (the caller must not store or ack anything).
        """
        todo = {tp: pending for tp, pending in queued.items() if pending.records}
        delay = 0.2
        for attempt in range(self.retries + 1):
            waits: list[tuple[tuple[str, int | None], int, int, asyncio.Future[Any]]] = []
            for key, pending in todo.items():
                topic, partition = key
                start = 0
                for count, batch in self._batches(producer, pending.records):
                    fut = await producer.send_batch(batch, topic, partition=partition)
                    waits.append((key, start, count, fut))
                    start += count
                    self.sent_batches += 1
            results = await asyncio.gather(*(w[3] for w in waits), return_exceptions=True)
            failed: dict[tuple[str, int | None], int] = {}
            errors: list[BaseException] = []
            for (key, start, count, _), meta in zip(waits, results, strict=True):
                if isinstance(meta, BaseException):
                    failed[key] = min(failed.get(key, start), start)
                    errors.append(meta)
                    continue
                pending = todo[key]
                if pending.table is not None and meta is not None and key not in failed:
                    # The changelog now holds the batch: recovery may start after it.
                    topic, partition = key
                    assert partition is not None
                    pending.table.data.set_persisted_offset(
                        TP(topic, partition), meta.offset + count - 1
                    )
            if not failed:
                return
            log.warning(
                "output batches not acknowledged (attempt %d of %d), sending again: %r",
                attempt + 1,
                self.retries + 1,
                errors[0],
            )
            todo = {
                key: _Pending(todo[key].records[start:], todo[key].table, todo[key].phase)
                for key, start in failed.items()
            }
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
        raise OutputsNotAcknowledged(
            f"{sum(len(p.records) for p in todo.values())} records to {sorted(todo)} not "
            f"acknowledged after {self.retries + 1} attempts"
        )

    def _batches(
        self, producer: Any, records: Iterable[tuple[bytes | None, bytes | None, int | None]]
    ) -> Iterable[tuple[int, Any]]:
        batch, count = None, 0
        for key, value, stamp in records:
            if batch is None:
                batch, count = self._new_batch(producer), 0
            if batch.append(key=key, value=value, timestamp=stamp) is None:
                yield count, batch  # full: the record starts the next one (a first always fits)
                batch, count = self._new_batch(producer), 0
                batch.append(key=key, value=value, timestamp=stamp)
            count += 1
        if batch is not None and count:
            yield count, batch

    def _new_batch(self, producer: Any) -> Any:
        return batch_builder(producer, self.batch_bytes)


async def partitions_of(client: Any, topic: str, timeout: float = METADATA_TIMEOUT) -> set[int]:
    """The topic's partitions from the client's metadata, refreshed until it has some.

    A topic created a moment ago can be listed with no partitions yet; sending then would fail.
    """
    found = client.cluster.partitions_for_topic(topic)
    if found:
        return set(found)
    client.add_topic(topic)
    deadline = time.monotonic() + timeout
    while True:
        await client.force_metadata_update()
        found = client.cluster.partitions_for_topic(topic)
        if found:
            return set(found)
        if time.monotonic() > deadline:
            raise TimeoutError(f"topic {topic!r} has no partitions in metadata after {timeout}s")
        log.info("waiting for the partitions of %s in the cluster metadata", topic)
        await asyncio.sleep(0.2)


class TableWriter:
    """Writes one Faust table: the store now, the changelog record into a :class:`BulkProducer`.

    Must be called while the current event belongs to ``partition`` (the store picks its
    RocksDB by the current event, as Faust's own table writes do). With ``batched`` the RocksDB
    writes of a flush are one ``WriteBatch`` per partition, applied by :meth:`commit` (call it
    before anything reads the table again); without it every write is applied at once.
    """

    def __init__(
        self, table: Any, bulk: BulkProducer, *, batched: bool = False, phase: int = 1
    ) -> None:
        self.table = table
        self.bulk = bulk
        self.phase = phase  # its changelog is sent after the lower phases are acknowledged
        self.topic: str = table.changelog_topic.get_topic_name()
        serializers = table.app.serializers
        self._dumps_key = serializers.dumps_key
        self._key_type, self._key_serializer = table.key_type, table.key_serializer
        self._dumps_value = serializers.dumps_value
        self._value_type, self._value_serializer = table.value_type, table.value_serializer
        self._rocksdb = is_rocksdb(table)
        self._batched = batched and self._rocksdb
        self._writes: dict[int, Any] = {}  # partition -> rocksdict.WriteBatch

    def set(self, partition: int, key: str, value: bytes) -> None:
        key_bytes = self._key(key)
        value_bytes = self._dumps_value(self._value_type, value, serializer=self._value_serializer)
        if self._rocksdb:
            # What RocksDB's Store._set does for a table write, without finding the partition
            # from the current event and serializing the key again: the same bytes, same DB.
            self._db(partition).put(key_bytes, value_bytes)
            key_index(self.table)[key_bytes] = partition
        else:
            self.table.data[key] = value
        self.bulk.add(
            self.topic, partition, key_bytes, value_bytes, table=self.table, phase=self.phase
        )

    def delete(self, partition: int, key: str) -> None:
        key_bytes = self._key(key)
        if self._rocksdb:
            self._db(partition).delete(key_bytes)
            key_index(self.table).pop(key_bytes, None)
        elif key in self.table.data:
            del self.table.data[key]
        # A tombstone, like Faust's ``del table[key]``.
        self.bulk.add(self.topic, partition, key_bytes, None, table=self.table, phase=self.phase)

    def commit(self) -> None:
        """Apply the batched RocksDB writes (no-op unless ``batched``)."""
        if self._writes:
            writes, self._writes = self._writes, {}
            for partition, batch in writes.items():
                partition_db(self.table, partition).write(batch)

    def _key(self, key: str) -> bytes:
        key_bytes: bytes = self._dumps_key(self._key_type, key, serializer=self._key_serializer)
        return key_bytes

    def _db(self, partition: int) -> Any:
        if not self._batched:
            return partition_db(self.table, partition)
        batch = self._writes.get(partition)
        if batch is None:
            batch = self._writes[partition] = WriteBatch(raw_mode=True)
        return batch
