"""After an assignment, read back each input lane's last consumed record: its stamp is a bound.

The aligner learns a lane's bound from what it receives (a mark or a record). A worker that
takes over a partition whose lanes were committed to their end, last mark included, receives
nothing on them until the producers send again: without a bound, a record arriving on another
lane waits for the patience and is then released by force (counted and alerted on: a false
alarm after every restart).

The record just before the committed offset was processed (or acked, for a mark) before the
commit, and our producers stamp every lane in increasing order: whatever the consumer reads
from the committed offset on is stamped no earlier. That record's timestamp is therefore a
bound for the lane, proven by the log itself (nothing to store). Only the committed offset is
used, never the consumer's read offset: records between the two may still be on their way to
the stage and could be earlier than the read offset's predecessor.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from loanwatch.streams.kafka_security import KafkaSecurity

log = logging.getLogger("loanwatch.worker")

FETCH_TIMEOUT_MS = 2000


@dataclass(frozen=True, slots=True)
class LaneStamp:
    """The record at ``offset`` of a lane: its timestamp (seconds) and whether it is a mark."""

    topic: str
    partition: int
    offset: int
    timestamp: float
    is_mark: bool


def bootstrap_servers(broker_url: str) -> list[str]:
    """``kafka://h1:9092;kafka://h2:9092`` (Faust's broker setting) → ``["h1:9092", "h2:9092"]``."""
    servers = []
    for part in broker_url.replace(",", ";").split(";"):
        part = part.strip()
        if part:
            servers.append(part.split("://", 1)[-1])
    return servers


async def read_stamps(
    bootstrap: list[str], lanes: list[tuple[str, int, int]], mark_header: str
) -> list[LaneStamp]:
    """The records at the given (topic, partition, offset): the ones the broker still has.

    A lane whose record is gone (retention) or that does not answer in time gives nothing:
    it is then waited for as before, up to its patience.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="none",
        max_partition_fetch_bytes=64 * 1024,
        **KafkaSecurity().client_options(),
    )
    await consumer.start()
    found: list[LaneStamp] = []
    try:
        wanted = {TopicPartition(t, p): off for t, p, off in lanes}
        consumer.assign(list(wanted))
        for tp, offset in wanted.items():
            consumer.seek(tp, offset)
        pending = set(wanted)
        rounds = 0
        while pending and rounds < 3:
            rounds += 1
            try:
                batch = await consumer.getmany(*pending, timeout_ms=FETCH_TIMEOUT_MS)
            except Exception as exc:  # out of range (deleted) or a broker error: no bound
                log.info("lane read-back stopped: %r", exc)
                break
            for tp, records in batch.items():
                first = next((r for r in records if r.offset == wanted[tp]), None)
                pending.discard(tp)
                if first is None:
                    continue
                headers = first.headers or ()
                mark = first.value in (None, b"") and any(k == mark_header for k, _ in headers)
                found.append(
                    LaneStamp(tp.topic, tp.partition, first.offset, first.timestamp / 1000, mark)
                )
    finally:
        await consumer.stop()
    return found
