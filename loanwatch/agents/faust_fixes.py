"""Fixes for faust-streaming/aiokafka behaviour that loses records; applied once per process.

**Records fetched during recovery of a partition that has no committed offset are lost.**
While a worker restores its tables after an assignment, Faust takes the stream partitions out
of its active set but aiokafka keeps fetching them; Faust's ``getmany`` then drops what was
fetched for inactive partitions (aiokafka's position has already moved past it) and relies on
the "seek stream partitions to committed offsets" step that ends the recovery to read it again.
aiokafka's ``seek_to_committed`` only seeks when the committed offset is ``> 0``: a partition
nobody has committed yet (a new consumer group, or a partition whose first records a previous
owner never finished) keeps the advanced position, and its first records are never processed.
Seen with two workers on a preloaded backlog: the joining worker never saw the first 250-290
records of four small partitions (the whole partition) and the drain never ended.

The fix seeks such stream partitions to their beginning (what ``auto_offset_reset=earliest``
means for an uncommitted partition) right after Faust's seek to the committed offsets; records
of it the ledger stage already holds are not taken twice (``Aligner.add`` ignores offsets it
has had since the assignment).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import TP

log = logging.getLogger("loanwatch.worker")

_PATCHED = "_loanwatch_rewinds_uncommitted"


def rewind_uncommitted_partitions() -> None:
    """Patch ``AIOKafkaConsumerThread.seek_to_committed`` (idempotent)."""
    if getattr(AIOKafkaConsumerThread, _PATCHED, False):
        return
    original = AIOKafkaConsumerThread.seek_to_committed

    async def seek_to_committed(self: Any) -> Mapping[TP, int]:
        committed = await original(self)
        # Stream partitions only: table changelogs are never committed (their positions are
        # the recovery's and the standbys' business), nor is the assignor's leader topic.
        changelogs = set(self.app.tables.changelog_topics)
        uncommitted = sorted(
            tp
            for tp, offset in committed.items()
            if not offset and tp.topic not in changelogs and "__assignor" not in tp.topic
        )
        if uncommitted:
            log.info(
                "no committed offset for %d partitions: reading them from the beginning: %s",
                len(uncommitted),
                ", ".join(f"{tp.topic}/{tp.partition}" for tp in uncommitted),
            )
            await self.seek_to_beginning(*uncommitted)
        return committed

    AIOKafkaConsumerThread.seek_to_committed = seek_to_committed  # type: ignore[method-assign]
    setattr(AIOKafkaConsumerThread, _PATCHED, True)
