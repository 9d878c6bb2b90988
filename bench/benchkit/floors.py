"""What any worker must at least do with the preloaded records, without Faust: the floors.

The issue's target compares the worker with a raw ``getmany`` that leaves the values untouched.
Two more drains of the same topics, in the same run, show where the per-record budget goes
before any framework, state store or output is involved:

- **parse floor**: ``getmany`` + ``orjson.loads`` of every value (the least a JSON worker does);
- **engine floor**: ``getmany`` of every record, then the records in timestamp order (the log's
  order: the producer stamps strictly increasing timestamps, a tick's copies share one) run
  through :func:`loanwatch.replay.runner.replay`: the ledger engine with its decoding and
  validation, no Faust, no tables, no changelogs, no outputs. Rate = messages / (fetch time +
  sort and engine time). No worker running this engine can drain faster than this.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from benchkit.worker import BOOTSTRAP, TP
from loanwatch.ledger.policy import Policy
from loanwatch.replay.runner import replay

Record = tuple[int, bytes]  # (timestamp ms, value)


async def drain(
    topics: Sequence[str],
    targets: Mapping[TP, int],
    group: str,
    work: Callable[[list[Any]], None] | None = None,
) -> dict[str, float]:
    """A fresh group reads ``topics`` to the ``targets`` offsets; ``work`` sees every batch."""
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=BOOTSTRAP,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    began = time.perf_counter()
    await consumer.start()
    remaining = dict(targets)
    first: float | None = None
    count = 0
    try:
        while remaining:
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for tp, records in batch.items():
                if not records:
                    continue
                if first is None:
                    first = time.perf_counter()
                count += len(records)
                if work is not None:
                    work(records)
                key = (tp.topic, tp.partition)
                if key in remaining and records[-1].offset >= remaining[key]:
                    del remaining[key]
        end = time.perf_counter()
    finally:
        await consumer.stop()
    if first is None:
        raise RuntimeError("nothing was fetched")
    return {"messages": count, "seconds": end - first, "rate": count / (end - first),
            "total_seconds": end - began}  # fmt: skip


def parse_values(records: list[Any]) -> None:
    """Decode every value as JSON (malformed ones count as parsed: the error is the answer)."""
    loads = orjson.loads
    for rec in records:
        try:  # noqa: SIM105 (contextlib.suppress costs a context manager per record)
            loads(rec.value)
        except orjson.JSONDecodeError:
            pass


async def parse_floor(
    topics: Sequence[str], targets: Mapping[TP, int], group: str
) -> dict[str, float]:
    return await drain(topics, targets, group, parse_values)


def log_order(records: list[Record]) -> list[bytes]:
    """The values in timestamp order, one per timestamp (a tick's copies share a stamp)."""
    records.sort(key=lambda rec: rec[0])
    out: list[bytes] = []
    last: int | None = None
    for stamp, value in records:
        if stamp != last:
            out.append(value)
            last = stamp
    return out


async def engine_floor(
    topics: Sequence[str], targets: Mapping[TP, int], group: str
) -> dict[str, float]:
    """Fetch everything, then replay it in log order through the engine; rate over both."""
    kept: list[Record] = []

    def keep(records: list[Any]) -> None:
        kept.extend((rec.timestamp, rec.value) for rec in records)

    fetched = await drain(topics, targets, group, keep)
    began = time.perf_counter()
    lines = log_order(kept)
    result = replay(lines, Policy(), on_alert=lambda _a: None, on_reject=lambda _r: None)
    engine_seconds = time.perf_counter() - began
    seconds = fetched["seconds"] + engine_seconds
    return {"messages": fetched["messages"], "seconds": seconds,
            "rate": fetched["messages"] / seconds, "events": result.events,
            "engine_seconds": engine_seconds}  # fmt: skip
