"""The live audit trail: the hook the ledger stage calls around each partition's batch.

For each processed input the stage calls :meth:`AuditTrail.record` (after the ledger handled
it), for the lane marks it consumed :meth:`AuditTrail.marks`, and then :meth:`AuditTrail.flush`,
which queues the partition's new audit records with the batch's **outputs** (phase 0: they
are acknowledged before any state is sent) and the chain head into the ``meta`` table beside
the partition's clock record (the last phase). So no crash leaves a stored state without its
audit record.

Crash re-reads never fork the chain. The chain head (in ``meta``) keeps, per input lane, the
next offset not yet recorded (a lane is read in offset order, so everything below it is in
the chain as an input or a mark). Before its first batch on a partition (after a start or a
rebalance) the trail reads that head and then the audit topic from the head's offset to its
end (records acknowledged by a batch whose state may not be stored) and follows them. An input
or mark read again below those offsets (offsets are committed later than the state) gets no
second record: the first one describes what was really sent, and the ledger's merge positions
make the re-read a no-op wherever its effect was stored, an exact re-run where it was not.

Never decides anything the ledger does; never touches Faust (the stage passes what it needs).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from loanwatch.audit.chain import Chain, ChainHead, canonical, follow
from loanwatch.audit.keys import Signer
from loanwatch.audit.state_hash import state_hash, view_hash
from loanwatch.ledger.policy import Policy
from loanwatch.metrics.catalog import PipelineMetrics

log = logging.getLogger("loanwatch.audit")

KINDS = frozenset({"input", "marks", "checkpoint"})  # the ``kind`` label's values
MAX_DECODE = 1 << 20  # an input larger than this names no loan here (it is a dead letter)


def head_key(partition: int) -> str:
    """The chain head's key in the ``meta`` table (beside ``partition/<n>``)."""
    return f"audit/{partition}"


class TailReader(Protocol):
    async def read(self, partition: int, start: int) -> tuple[list[bytes], int]:
        """The audit partition's record values from offset ``start``, and its end offset."""
        ...


class RecordSink(Protocol):
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
    ) -> None: ...


class HeadSink(Protocol):
    def set(self, partition: int, key: str, value: bytes) -> None: ...


class LedgerView(Protocol):
    """What the trail reads of a partition's engine after a record."""

    clock: Any
    loans: Any
    views: Any  # loanwatch.ledger.loan.LoanViews


class Source(Protocol):
    """One processed input record (the ledger's ``Inbound``)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> float: ...  # seconds
    @property
    def value(self) -> bytes | None: ...


class AuditTrail:
    def __init__(
        self,
        topic: str,
        signer: Signer,
        policy: Policy,
        *,
        outputs: RecordSink,
        heads: HeadSink,
        tail: TailReader,
        checkpoint_every: int = 1000,
        metrics: PipelineMetrics | None = None,
    ) -> None:
        self.topic = topic
        self.metrics = metrics  # counted at each flush (cheap per record: plain ints here)
        self._seconds = 0.0  # time spent since the last flush
        self._skipped_counted = 0
        self.signer = signer
        self.policy = policy
        self.outputs = outputs
        self.heads = heads
        self.tail = tail
        self.checkpoint_every = checkpoint_every
        self.chains: dict[int, Chain] = {}
        # Per partition, the lanes' recorded offsets as of the batch's start: a re-read is
        # below them. (Within a batch, marks are recorded after the inputs, so the head's own
        # lanes may already be past a mark of the same batch.)
        self.floors: dict[int, dict[str, int]] = {}
        self.skipped = 0  # re-read inputs and marks already in the trail
        self.forks = 0  # tail records that did not continue the stored head (logged)
        self._dirty: set[int] = set()

    # --- partitions ---

    async def prepare(self, partition: int, read_head: Callable[[], bytes | None]) -> None:
        """Load a partition's chain head and what its audit topic holds past it (once)."""
        if partition in self.chains:
            return
        started = time.perf_counter()
        raw = read_head()
        head = (
            ChainHead.from_json(partition, orjson.loads(raw))
            if raw is not None
            else ChainHead(partition)
        )
        values, end = await self.tail.read(partition, head.next_offset)
        for value in values:
            record = orjson.loads(value)
            seq = record.get("seq")
            if isinstance(seq, int) and seq < head.count:
                continue  # before the stored head (a resend, or a conservative offset)
            if seq != head.count or record.get("prev") != head.head:
                self.forks += 1
                if self.metrics is not None:
                    self.metrics.audit_forks.inc()
                log.error(
                    "audit partition %d: record seq %r does not continue the stored head "
                    "(seq %d); continuing from the topic's last record (audit verify names it)",
                    partition,
                    seq,
                    head.count,
                )
            follow(head, value)
        head.next_offset = max(head.next_offset, end)
        self.chains[partition] = Chain(head, self.signer, self.checkpoint_every)
        self.floors[partition] = dict(head.lanes)
        self._seconds += time.perf_counter() - started

    def revoke(self, partitions: Sequence[int]) -> None:
        for p in partitions:
            self.chains.pop(p, None)
            self.floors.pop(p, None)
            self._dirty.discard(p)

    # --- records ---

    def record(
        self,
        source: Source,
        alerts: Sequence[tuple[Any, bytes]],
        dead_letters: Sequence[tuple[Any, bytes]],
        engine: LedgerView,
    ) -> None:
        """One processed input: what it produced and its loan's state hash after it."""
        p = source.partition
        if self._already(p, (source.topic, source.offset)):
            return
        started = time.perf_counter()
        seen = outcome(source.value, alerts, dead_letters, engine, self.policy, reuse_views=True)
        self.chains[p].input(
            topic=source.topic,
            offset=source.offset,
            ts=round((source.timestamp or 0.0) * 1000),
            value=source.value,
            loan_id=seen.loan_id,
            state_sha256=seen.state_sha256,
            alerts=seen.alerts,
            dead_letters=seen.dead_letters,
            business_date=seen.business_date,
        )
        self._dirty.add(p)
        self._seconds += time.perf_counter() - started

    def marks(self, partition: int, coordinates: Sequence[tuple[str, int]]) -> None:
        """Lane marks of ``partition`` consumed by this batch (every offset accounted for)."""
        fresh = [c for c in coordinates if not self._already(partition, c)]
        if fresh:
            self.chains[partition].marks(fresh)
            self._dirty.add(partition)

    def flush(self, partition: int) -> int:
        """Queue the partition's new records (phase 0) and its chain head (with ``meta``)."""
        if partition not in self._dirty:
            return 0
        started = time.perf_counter()
        self._dirty.discard(partition)
        chain = self.chains[partition]
        records = chain.take()
        for value in records:
            self.outputs.add(self.topic, partition, None, value, phase=0)
        self.heads.set(partition, head_key(partition), canonical(chain.head.to_json()))
        self.floors[partition] = dict(chain.head.lanes)
        self._count(chain, records, time.perf_counter() - started)
        return len(records)

    def _count(self, chain: Chain, records: list[bytes], seconds: float) -> None:
        counts, chain.counts = chain.counts, {}
        m = self.metrics
        if m is None:
            return
        for kind, n in counts.items():
            m.audit_records.labels(kind if kind in KINDS else "other").inc(n)
        m.audit_bytes.inc(sum(len(v) for v in records))
        m.audit_seconds.inc(self._seconds + seconds)
        self._seconds = 0.0
        if self.skipped > self._skipped_counted:
            m.audit_skipped.inc(self.skipped - self._skipped_counted)
            self._skipped_counted = self.skipped

    def _already(self, partition: int, coordinate: tuple[str, int]) -> bool:
        """Is this input or mark in the chain already (read again after a crash)?"""
        topic, offset = coordinate
        if offset < self.floors[partition].get(topic, 0):
            self.skipped += 1
            return True
        return False


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an input record did, as its audit record states it (live and in replay)."""

    loan_id: str | None
    state_sha256: str | None
    alerts: list[str]
    dead_letters: list[str]
    business_date: str | None


def outcome(
    value: bytes | None,
    alerts: Sequence[tuple[Any, bytes]],
    dead_letters: Sequence[tuple[Any, bytes]],
    engine: LedgerView,
    policy: Policy,
    *,
    reuse_views: bool = False,
) -> Outcome:
    """The loan an input names, its state hash after it, its alert ids and dead-letter reasons.

    ``reuse_views`` (the live trail): hash the engine's own view of the loan when its last step
    noted this very loan on the clock's day (the view ``state_hash`` would make, already made
    for the metrics, or kept for them); replay and tests leave it off, so ``audit replay``
    checks the live hashes against views made from scratch.
    """
    loan_id = _loan_id(value)
    digest = None
    clock = engine.clock
    if loan_id is not None and clock is not None:
        loan = engine.loans.get(loan_id)
        if loan is not None:
            made = engine.views.current(loan_id, loan, clock) if reuse_views else None
            digest = view_hash(made) if made is not None else state_hash(loan, clock, policy)
    return Outcome(
        loan_id=loan_id,
        state_sha256=digest,
        alerts=[str(orjson.loads(v).get("alert_id")) for _, v in alerts],
        dead_letters=[str(orjson.loads(v).get("reason")) for _, v in dead_letters],
        business_date=clock.isoformat() if clock is not None else None,
    )


def _loan_id(value: bytes | None) -> str | None:
    if not value or len(value) > MAX_DECODE:
        return None
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    loan_id = obj.get("loan_id") if isinstance(obj, dict) else None
    return loan_id if isinstance(loan_id, str) and loan_id else None
