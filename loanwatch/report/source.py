"""Where an auditor's commands read a trail: the archive (Parquet) or Kafka.

:func:`load_chains` gives each partition's audit records as stored (for ``verify``) and
:func:`partition_inputs` its input records by (topic, offset) (for ``replay``, ``report``):
the one preamble every command shares. Read-only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loanwatch.audit.kafka_io import Stored
from loanwatch.streams.topics import TopicNames


@dataclass(frozen=True, slots=True)
class TrailSource:
    """An archive folder, or a broker with the topics named by ``names``."""

    names: TopicNames
    bootstrap: str = "127.0.0.1:9092"
    archive: Path | None = None
    audit_topic: str | None = None

    @property
    def topic(self) -> str:
        return self.audit_topic or self.names.audit

    @property
    def lanes(self) -> tuple[str, ...]:
        return (*self.names.inputs(), self.names.commands)


def load_chains(source: TrailSource) -> dict[int, list[Stored]]:
    """Every partition's audit records, in offset order."""
    if source.archive is not None:
        from loanwatch.audit.archive import read_audit

        return read_audit(source.archive)
    from loanwatch.audit import kafka_io

    return asyncio.run(kafka_io.read_topic(source.bootstrap, source.topic))


def partition_inputs(source: TrailSource, partition: int) -> dict[tuple[str, int], Stored]:
    """The input records of one partition, by (topic, offset)."""
    if source.archive is not None:
        from loanwatch.audit.archive import read_inputs

        return read_inputs(source.archive, partition)
    from loanwatch.audit import kafka_io

    return asyncio.run(kafka_io.read_inputs(source.bootstrap, source.lanes, partition))


def each_partition(
    source: TrailSource, chains: dict[int, list[Stored]]
) -> Iterator[tuple[int, list[dict[str, Any]], dict[tuple[str, int], Stored]]]:
    """(partition, its decoded records in seq order, its inputs), partition by partition."""
    from loanwatch.audit.replay import decode_records

    for p in sorted(chains):
        yield p, decode_records(chains[p]), partition_inputs(source, p)
