"""Every read of a private attribute of Faust, aiokafka or prometheus_client, in one place.

The worker needs a few things these libraries do not expose: the aiokafka producer behind
Faust's (to send whole record batches), a table's per-partition RocksDB and key index (to write
a batch's rows as one ``WriteBatch``), the consumer's read offsets and the set of partitions
Faust stopped for buffer pressure (for the aligner), the current-event context variable (so
table reads and writes go to the right partition), the clients' metadata (start-up gate), a
metric's name and help text. Nothing else in loanwatch may touch a private name of them
(``tests/unit/test_faust_internals.py`` checks each one exists in the pinned versions, so an
upgrade that moves one fails loudly, and the patches themselves live in ``faust_fixes``).
"""

from __future__ import annotations

import weakref
from typing import Any

from faust.streams import _current_event
from faust.types import TP, EventT


def set_current_event(event: EventT[Any]) -> None:
    """Point Faust's table reads and writes (store and changelog partition) at ``event``."""
    _current_event.set(weakref.ref(event))


def kafka_producer(app: Any) -> Any:
    """The started aiokafka producer behind a Faust app's producer."""
    return app.producer._ensure_producer()


def batch_builder(producer: Any, batch_bytes: int) -> Any:
    """A new aiokafka record-batch builder of ``batch_bytes`` (the producer's compression)."""
    acc = producer._message_accumulator
    builder = acc.create_builder()
    if batch_bytes != acc._batch_size:  # larger batches than Faust's per-message ones
        builder = type(builder)(batch_bytes, acc._compression_type)
    return builder


def is_rocksdb(table: Any) -> bool:
    """Is the table's store Faust's RocksDB store (per-partition databases, a key index)?"""
    return hasattr(table.data, "_db_for_partition") and hasattr(table.data, "_key_index")


def partition_db(table: Any, partition: int) -> Any:
    """The RocksDB database of one partition of a table (opened if needed)."""
    return table.data._db_for_partition(partition)


def key_index(table: Any) -> dict[bytes, int]:
    """The store's key -> partition index (Faust's lookups without a current event use it)."""
    index: dict[bytes, int] = table.data._key_index
    return index


def read_offset(consumer: Any, tp: TP) -> int | None:
    """The offset Faust's consumer will read next on ``tp`` (None: not known)."""
    found = getattr(consumer, "_read_offset", {}).get(tp)
    return int(found) if found is not None else None


def committed_offset(consumer: Any, tp: TP) -> int | None:
    """The group's committed offset of ``tp`` as Faust's consumer last read or wrote it."""
    found = getattr(consumer, "_committed_offset", {}).get(tp)
    return int(found) if found is not None else None


def buffer_stopped(consumer: Any) -> set[TP]:
    """The partitions Faust's consumer stopped fetching for buffer pressure."""
    stopped: set[TP] = getattr(consumer, "_buffered_partitions", set())
    return stopped


def consumer_client(app: Any) -> tuple[Any, Any] | None:
    """(consumer thread, its aiokafka client) once the consumer is started, else None."""
    thread = getattr(app.consumer, "_thread", None)
    consumer = getattr(thread, "_consumer", None)
    if thread is None or consumer is None:
        return None
    return thread, consumer._client


def metric_name_and_help(metric: Any) -> tuple[str, str]:
    """A prometheus_client metric's name and documentation (to declare a twin)."""
    return str(metric._name), str(metric._documentation)


def set_read_offsets(consumer: Any, offsets: Any) -> None:
    """Replace the mapping of a Faust consumer's read offsets (before its fetch loop starts)."""
    offsets.update(consumer._read_offset)
    consumer._read_offset = offsets


def set_committed_offsets(consumer: Any, offsets: Any) -> None:
    """Replace the mapping of a Faust consumer's committed offsets (keeping its values)."""
    offsets.update(consumer._committed_offset)
    consumer._committed_offset = offsets
