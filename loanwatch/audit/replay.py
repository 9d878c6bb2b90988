"""``audit replay``: each partition's recorded inputs through the ledger again, checked.

For every ``input`` record of a chain, in chain order, the input's bytes are fetched from
where they are kept (the input topics, or the archive), their SHA-256 compared with the
record's, and the record run through a fresh :class:`~loanwatch.agents.ledger.LedgerProcessor`
over in-memory tables: the worker's own processing (the same engine ``loanwatch replay``
uses, the same misplaced-record and command handling, the same merge positions). The loan's
state hash, the alert ids, the dead-letter reasons and the business date after it must be
the record's; the first divergence of each partition is reported.

Pure apart from what it is handed: no Kafka here (``kafka_io`` and ``archive`` read).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from prometheus_client import CollectorRegistry

from loanwatch.agents.ledger import Inbound, LedgerProcessor, Outbox
from loanwatch.audit.chain import sha256_hex
from loanwatch.audit.kafka_io import Stored
from loanwatch.audit.trail import outcome
from loanwatch.early_warning.config import EarlyWarningPolicy
from loanwatch.ledger.policy import Policy
from loanwatch.metrics.catalog import register_pipeline_metrics
from loanwatch.streams.topics import TopicNames

FLUSH_EVERY = 1000

#: (topic, offset) -> the stored input record of one partition
Inputs = Mapping[tuple[str, int], Stored]


@dataclass(slots=True)
class _Tables:
    loans: dict[str, bytes] = field(default_factory=dict)
    seen: dict[str, bytes] = field(default_factory=dict)
    meta: dict[str, bytes] = field(default_factory=dict)
    orphans: dict[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Divergence:
    partition: int
    seq: int
    topic: str
    offset: int
    field: str
    recorded: Any
    replayed: Any

    def __str__(self) -> str:
        return (
            f"partition {self.partition} seq {self.seq} ({self.topic}@{self.offset}): "
            f"{self.field} recorded {self.recorded!r}, replayed {self.replayed!r}"
        )


@dataclass(slots=True)
class ReplayReport:
    inputs: int = 0
    alerts: int = 0
    states: int = 0
    divergences: list[Divergence] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.divergences


def replay_partition(
    partition: int,
    records: Sequence[dict[str, Any]],
    inputs: Inputs,
    policy: Policy,
    names: TopicNames,
    partitions: int,
    report: ReplayReport,
    *,
    on_step: Callable[[LedgerProcessor, Inbound], None] | None = None,
    processor: LedgerProcessor | None = None,
    on_record: Callable[[dict[str, Any], Outbox, LedgerProcessor], None] | None = None,
    early_warning: EarlyWarningPolicy | None = None,
) -> LedgerProcessor:
    """Re-run one partition's chain; the first divergence (if any) goes into ``report``.

    ``processor``: go on with one a previous call returned (a chain replayed in pieces).
    ``on_record``: called with each input record, its replayed outputs and the processor,
    once checked (a diverging record ends the replay first).
    ``early_warning``: the worker's early-warning file, loaded (its ``pre_due_risk`` alert ids
    are in the chain).
    """
    if processor is None:
        processor = new_processor(partition, policy, names, partitions, early_warning)
    engine = processor.runtimes[partition].engine
    for rec in records:
        if rec.get("kind") != "input":
            continue
        topic, offset, seq = str(rec["topic"]), int(rec["offset"]), int(rec["seq"])

        def diverge(name: str, recorded: Any, replayed: Any) -> None:
            report.divergences.append(
                Divergence(partition, seq, topic, offset, name, recorded, replayed)  # noqa: B023
            )

        stored = inputs.get((topic, offset))
        if stored is None:
            diverge("input", "present", "not found in the inputs read")
            break
        if sha256_hex(stored.value or b"") != rec["input_sha256"]:
            diverge("input_sha256", rec["input_sha256"], sha256_hex(stored.value or b""))
            break
        msg = Inbound(topic, partition, offset, stored.timestamp / 1000, stored.key, stored.value)
        out = Outbox()
        processor.handle(msg, out)
        report.inputs += 1
        if report.inputs % FLUSH_EVERY == 0:
            processor.flush(partition)  # as the worker flushes a batch (bounds the cache)
        if on_step is not None:
            on_step(processor, msg)
        got = outcome(stored.value, out.alerts, out.dead_letters, engine, policy)
        report.alerts += len(got.alerts)
        report.states += got.state_sha256 is not None
        for name in ("state_sha256", "alerts", "dead_letters", "business_date", "loan_id"):
            if rec.get(name) != getattr(got, name):
                diverge(name, rec.get(name), getattr(got, name))
                break
        else:
            if rec.get("ts") != stored.timestamp:
                diverge("ts", rec.get("ts"), stored.timestamp)
        if report.divergences and report.divergences[-1].partition == partition:
            break
        if on_record is not None:
            on_record(rec, out, processor)
    return processor


def new_processor(
    partition: int,
    policy: Policy,
    names: TopicNames,
    partitions: int,
    early_warning: EarlyWarningPolicy | None = None,
) -> LedgerProcessor:
    """The worker's ledger processor for one partition, on fresh in-memory tables (with the
    early-warning layer when given; its states stay in memory)."""
    processor = LedgerProcessor(
        policy,
        names,
        _Tables(),
        register_pipeline_metrics(CollectorRegistry()),
        partitions=partitions,
        clock_follows_events=policy.clock == "event",
        early_warning=early_warning,
    )
    processor.ensure([partition])
    return processor


def decode_records(stored: Sequence[Stored]) -> list[dict[str, Any]]:
    """A partition's audit records in seq order, retried copies dropped."""
    by_seq: dict[int, dict[str, Any]] = {}
    for item in stored:
        if item.value is None:
            continue
        rec = orjson.loads(item.value)
        by_seq.setdefault(int(rec["seq"]), rec)
    return [by_seq[k] for k in sorted(by_seq)]
