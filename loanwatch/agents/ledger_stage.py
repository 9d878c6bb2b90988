"""The ledger agent's loop: align the inputs, process what is ready, send, flush, then ack.

The agent hands every batch it takes to :meth:`LedgerStage.take`; a timer calls
:meth:`LedgerStage.wake` so records held for alignment are released even when no new record
arrives. One lock serialises both, so exactly one batch is in flight at a time:

1. input records go through the :class:`~loanwatch.agents.alignment.Aligner` and are processed
   per partition in timestamp order once every input topic of the partition is known up to
   them (a buffered head, or a bound: the lane's latest mark or record); lane watermarks
   (records with the ``loanwatch.mark`` header) only move bounds and are acked at once;
   internal wall-clock ticks join the merge by timestamp but are never waited for;
2. a forced release (a caught-up lane silent past its patience) is counted, logged with the
   lanes, and alerted on by a Prometheus rule (``LoanwatchForcedRelease``);
3. the tables' changelog records and the outputs are sent as one record batch per
   topic-partition (:mod:`~loanwatch.agents.bulk`) and awaited, then exactly the processed
   records are acked, so a crash re-reads from the first unprocessed one (at-least-once, ids
   are stable).

Records held across batches stay unacked; Faust must therefore not wait for every taken record
to be acked on a rebalance (``stream_wait_empty=False``): :meth:`revoke` waits for the batch in
flight, then forgets what the revoked partitions held (the next owner reads it again).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from faust.types import TP, EventT

from loanwatch.agents.alignment import Aligner
from loanwatch.agents.bulk import BulkProducer, OutputsNotAcknowledged
from loanwatch.agents.faust_fixes import never_committed, refetcher, request_reseek
from loanwatch.agents.faust_internals import (
    buffer_stopped,
    committed_offset,
    read_offset,
    set_current_event,
)
from loanwatch.agents.gaps import GapTracker
from loanwatch.agents.ledger import Inbound, Outbox
from loanwatch.audit.trail import AuditTrail, head_key
from loanwatch.streams.partitioning import MARK_HEADER

if TYPE_CHECKING:
    from loanwatch.agents.app import Worker

log = logging.getLogger("loanwatch.worker")

STALL_SECONDS = 30.0
GAP_LOG_SECONDS = 1.0
EXIT_OUTPUTS_LOST = 75  # EX_TEMPFAIL: restart me


def set_current(event: EventT[Any]) -> None:
    """Point Faust's table writes (store and changelog partition) at ``event``'s partition."""
    set_current_event(event)


def of_current_generation(app: Any, events: list[EventT[Any]]) -> list[EventT[Any]]:
    """The events fetched under the consumer's current group generation.

    After a rebalance, records fetched before it may still come out of the stream's buffer;
    their partition may have moved to another worker (which reads them again from the committed
    offset), or come back to this one (which seeks there too): either way they are not to be
    processed (nor acked) from here.
    """
    generation = app.consumer_generation_id
    return [e for e in events if e.message.generation_id == generation]


def inbound(event: EventT[Any]) -> Inbound:
    m = event.message
    return Inbound(m.topic, m.partition, m.offset, m.timestamp, m.key, m.value)


def _coordinates(event: EventT[Any]) -> tuple[str, int, int]:
    m = event.message
    return (m.topic, m.partition, m.offset)


def is_mark(event: EventT[Any]) -> bool:
    """Is this record a lane watermark (header ``loanwatch.mark``, no value) or an event?

    A record with the header and a payload is taken as an event: it is processed (or
    dead-lettered), never dropped for its header.
    """
    headers = event.message.headers
    if not headers or event.message.value:
        return False
    names = headers.keys() if isinstance(headers, dict) else (h[0] for h in headers)
    return any(name == MARK_HEADER for name in names)


def _highwater(consumer: Any, tp: TP) -> int | None:
    try:
        end = consumer.highwater(tp)
    except Exception:  # not assigned (any more)
        return None
    return int(end) if end is not None else None


class LedgerStage:
    def __init__(self, worker: Worker, bulk: BulkProducer, audit: AuditTrail | None = None) -> None:
        self.worker = worker
        self.audit = audit  # the auditor's trail (loanwatch.audit.trail), written with outputs
        self.bulk = bulk  # the tables' changelog records of a batch wait here, sent with outputs
        names = worker.names
        self.topic_names = (names.alerts, names.dead_letters, names.status)
        settings = worker.settings
        # Wall-clock ticks join the merge by their timestamp but are never waited for.
        self.commands = worker.names.commands
        self.aligner: Aligner[EventT[Any]] = Aligner(
            (*worker.names.inputs(), self.commands),
            max_idle=settings.align_max_idle,
            mark_max_idle=settings.align_mark_max_idle,
            unwaited=(self.commands,),
        )
        self.limit = settings.align_buffer
        self.release_limit: int = settings.batch_size  # records processed per turn of the loop
        self.lock = asyncio.Lock()
        self.stream: Any = None
        self.paused: set[TP] = set()
        self.gap_logged: dict[TP, float] = {}  # when a lane's last gap was logged
        self.gaps = GapTracker()

    # --- entry points ---

    async def take(self, stream: Any, events: list[EventT[Any]]) -> None:
        """A batch from the agent's stream: buffer it, process what is ready."""
        self.stream = stream
        self.worker.metrics.batch_size.observe(len(events))
        async with self.lock:
            # Records taken before a rebalance that dropped their partition's lanes are read
            # again from the committed offset; adding them would put them ahead of those.
            for event in of_current_generation(self.worker.app, events):
                self._offer(event)
            await self._run()

    def _offer(self, event: EventT[Any]) -> None:
        m = event.message
        self._expect_committed(m.topic, m.partition)
        expected = self.aligner.expected(m.topic, m.partition)
        mark = is_mark(event)
        offered = self.aligner.offer(
            m.topic, m.partition, m.offset, m.timestamp, event, is_mark=mark
        )
        tp = TP(m.topic, m.partition)
        if offered == "added":
            if tp in self.gaps.asked:
                self.gaps.filled(tp)
            return
        if offered != "gap" or expected is None:
            return
        seeks = refetcher(self.worker.app)
        action = self.gaps.on_gap(tp, expected, m.offset, seeks.done, seeks.pending)
        if action == "accept":
            self.aligner.offer(
                m.topic, m.partition, m.offset, m.timestamp, event, is_mark=mark, accept_gap=True
            )
            self.worker.metrics.gaps_accepted.inc()
            log.error(
                "input %s/%d: offsets %d..%d never came after %d fetches again from the "
                "committed offsets (gone from the broker?): processing on from %d (counted in "
                "loanwatch_alignment_gaps_accepted_total)",
                m.topic,
                m.partition,
                expected,
                m.offset - 1,
                self.gaps.max_refetches,
                m.offset,
            )
            return
        if action == "refetch":
            request_reseek(self.worker.app)
        self._gap(m.topic, m.partition, m.offset, expected)

    def _expect_committed(self, topic: str, partition: int) -> None:
        """A lane's first record since the assignment must be the committed offset's.

        A partition the group never committed is read from its beginning (faust_fixes), so
        its first record must be the earliest the broker keeps.
        """
        if topic not in self.aligner or self.aligner.expected(topic, partition) is not None:
            return
        tp = TP(topic, partition)
        committed = committed_offset(self.worker.app.consumer, tp)
        if committed is None:
            committed = never_committed(self.worker.app).get(tp)
        if committed is not None:
            self.aligner.expect(topic, partition, committed)

    def _gap(self, topic: str, partition: int, offset: int, expected: int) -> None:
        """A record arrived past a gap and was refused: count it, say so (once per lane a
        second); the lane is fetched again from the committed offset (``agents/gaps.py``)."""
        self.worker.metrics.gaps.inc()
        tp = TP(topic, partition)
        now = time.monotonic()
        last = self.gap_logged.get(tp)
        if last is not None and now - last < GAP_LOG_SECONDS:
            return
        self.gap_logged[tp] = now
        log.warning(
            "input %s/%d delivered offset %d where %d was expected: records skipped by the "
            "consumer; refused, the lane is fetched again (counted in "
            "loanwatch_alignment_gaps_total)",
            topic,
            partition,
            offset,
            expected,
        )

    async def wake(self) -> None:
        """Release held records whose wait ended without a new record (end offsets, idle)."""
        if self.stream is None or self.lock.locked() or not self.aligner.held():
            if not self.aligner.held():
                self.worker.ledger.stalled = ""
            return
        async with self.lock:
            await self._run()

    async def revoke(self, partitions: Iterable[int]) -> None:
        """Called on a rebalance: finish the batch in flight, drop what revoked partitions hold."""
        parts = set(partitions)
        async with self.lock:
            dropped = self.aligner.drop(parts)
            self.paused = {tp for tp in self.paused if tp.partition not in parts}
            self.gap_logged = {
                tp: t for tp, t in self.gap_logged.items() if tp.partition not in parts
            }
            self.gaps.drop(parts)
            self.worker.ledger.revoke(parts)
            if self.audit is not None:
                self.audit.revoke(sorted(parts))
            self.worker.metrics.held.set(self.aligner.held())
            if dropped:
                log.info("revoked partitions %s: %d held records left unacked", parts, dropped)

    # --- one batch ---

    async def _run(self) -> None:
        """Process what the aligner releases, a batch at a time, giving the loop a turn between.

        A backlog can make tens of thousands of held records ready at once; processed in one go
        they would keep the event loop (commits, /metrics) for seconds.
        """
        while True:
            per_partition, marks, more = self._release()
            if per_partition or marks:
                await self._process_and_send(per_partition, marks)
            if not more:
                break
            await asyncio.sleep(0)
        self._flow_control()
        self.worker.metrics.held.set(self.aligner.held())
        self._report_stalls()

    def _give_up(self, exc: BaseException) -> None:
        """Outputs the broker will not take: stop, storing and acking nothing of the batch.

        The engine in memory has applied the batch; it must not run ahead of what Kafka
        holds. The process exits, the group reassigns the partitions, and whoever takes
        them (this worker restarted, on the same data dir) reads the records again.
        """
        self.worker.ledger.stalled = f"outputs not acknowledged: {exc}"
        log.critical("outputs not acknowledged by the broker, exiting (nothing stored): %s", exc)
        logging.shutdown()
        os._exit(EXIT_OUTPUTS_LOST)

    def _report_stalls(self) -> None:
        """Partitions waiting for a lane longer than ``STALL_SECONDS`` make /healthz ``stalled``."""
        waiting = self.aligner.blocked(time.monotonic())
        long = sorted(p for p, seconds in waiting.items() if seconds >= STALL_SECONDS)
        self.worker.ledger.stalled = (
            f"partitions {long} hold records and wait for an input lane "
            f"for {STALL_SECONDS:.0f} s or more (see the worker log)"
            if long
            else ""
        )

    async def _process_and_send(
        self, per_partition: dict[int, list[EventT[Any]]], marks: list[EventT[Any]]
    ) -> None:
        """Process released records, send their table changes and outputs, then ack them."""
        if not per_partition and self.audit is None:  # only marks: nothing to send or store
            for mark in sorted(marks, key=_coordinates):
                await self.stream.ack(mark)
            return
        worker = self.worker
        started = time.monotonic()
        if self.audit is not None:  # marks too: the trail accounts for every offset
            await self._prepare_audit(self.audit, per_partition, marks)
        out = self._process(per_partition)
        if self.audit is not None:
            self._audit_marks(self.audit, per_partition, marks)
        bulk, (alerts, dead_letters, status) = self.bulk, self.topic_names
        for key, value in out.alerts:
            bulk.add_keyed(alerts, key.encode(), value)
        for dkey, value in out.dead_letters:
            bulk.add_keyed(dead_letters, dkey, value)
        for skey, value in out.status:
            bulk.add_keyed(status, skey.encode(), value)
        # Outputs before state: alerts, dead letters, status and the tables' changelog records
        # are acknowledged first; then the store takes the batch's writes; then the records
        # are acked. A crash at any instant loses no output (a re-read record's outputs are
        # sent again, same ids).
        try:
            await bulk.send()
        except OutputsNotAcknowledged as exc:
            self._give_up(exc)
        worker.ledger.commit_state()
        worker.ledger.outputs_flushed()
        # In offset order per topic-partition, marks included: Faust commits the first run of
        # acked offsets (and tolerates a gap of one after its committed offset), so an ack
        # ahead of an unacked record could commit past it.
        done = [e for items in per_partition.values() for e in items] + marks
        done.sort(key=_coordinates)
        for event in done:
            await self.stream.ack(event)
        worker.metrics.batch_seconds.observe(time.monotonic() - started)

    def _release(self) -> tuple[dict[int, list[EventT[Any]]], list[EventT[Any]], bool]:
        assigned = self.worker.app.consumer.assignment()  # a new set per call: once per batch
        for tp in assigned:
            if tp.topic in self.aligner:
                self.aligner.track(tp.topic, tp.partition)

        def caught_up(topic: str, partition: int, next_offset: int | None) -> bool:
            return self._caught_up(topic, partition, next_offset, assigned)

        release = self.aligner.release(caught_up, time.monotonic(), self.release_limit)
        if release.forced:
            self.worker.metrics.forced_releases.inc()
            consumer = self.worker.app.consumer
            lanes = [
                (t, p, self.aligner.lanes[(t, p)].next_offset, _highwater(consumer, TP(t, p)))
                for t, p in release.waited_for
            ]
            log.warning(
                "forced release: caught-up input topic-partitions sent no record nor mark "
                "for their patience (%.1f s, %.1f s if marked); processing %d held records "
                "without them: %s",
                self.aligner.max_idle,
                self.aligner.mark_max_idle,
                len(release.items),
                ", ".join(f"{t}/{p} next={n} end={e}" for t, p, n, e in lanes),
            )
        ready: dict[int, list[EventT[Any]]] = defaultdict(list)
        for event in release.items:
            ready[event.message.partition].append(event)
        return ready, release.marks, release.more

    def _process(self, per_partition: dict[int, list[EventT[Any]]]) -> Outbox:
        ledger, audit = self.worker.ledger, self.audit
        ledger.ensure(per_partition, lambda p: set_current(per_partition[p][0]))
        out = Outbox()
        for partition, items in per_partition.items():
            engine = ledger.runtimes[partition].engine if audit is not None else None
            for event in items:
                set_current(event)
                msg = inbound(event)
                alerts, letters = len(out.alerts), len(out.dead_letters)
                ledger.handle(msg, out)
                if audit is not None and engine is not None:
                    audit.record(msg, out.alerts[alerts:], out.dead_letters[letters:], engine)
            set_current(items[-1])
            ledger.flush(partition)
        return out

    async def _prepare_audit(
        self,
        audit: AuditTrail,
        per_partition: dict[int, list[EventT[Any]]],
        marks: list[EventT[Any]],
    ) -> None:
        """Load the chain heads of partitions seen for the first time (meta, topic tail)."""
        firsts = {m.message.partition: m for m in marks}
        firsts.update({p: items[0] for p, items in per_partition.items()})
        meta = self.worker.tables.meta
        for p, event in sorted(firsts.items()):
            if p in audit.chains:
                continue
            set_current(event)  # a table read goes to the current event's partition
            await audit.prepare(p, lambda p=p: meta.get(head_key(p)))  # type: ignore[misc]

    def _audit_marks(
        self,
        audit: AuditTrail,
        per_partition: dict[int, list[EventT[Any]]],
        marks: list[EventT[Any]],
    ) -> None:
        """The batch's marks into the trail, then every touched partition's records queued."""
        by_partition: dict[int, list[tuple[str, int]]] = defaultdict(list)
        for mark in marks:
            by_partition[mark.message.partition].append((mark.message.topic, mark.message.offset))
        for p, coordinates in by_partition.items():
            audit.marks(p, coordinates)
        for p in sorted({*per_partition, *by_partition}):
            audit.flush(p)

    def _caught_up(
        self, topic: str, partition: int, next_offset: int | None, assigned: set[TP]
    ) -> bool:
        """Does the consumer know of no record of ``topic``/``partition`` from ``next_offset``?"""
        if topic == self.commands:
            return True  # internal: consequences of processed records, never waited for
        consumer = self.worker.app.consumer
        tp = TP(topic, partition)
        if tp not in assigned:
            return True  # not ours (any more): nothing to wait for here
        end = _highwater(consumer, tp)
        if end is None:  # no fetch response for it yet
            return False
        if next_offset is None:
            # Nothing received since the assignment: the consumer reads from its read offset,
            # or else from the committed one it seeked to (a lane committed to its end after a
            # restart, its last mark consumed before); else from 0. A record still on its way
            # is below the end, so it is waited for.
            read = read_offset(consumer, tp)
            if read is None:
                read = committed_offset(consumer, tp)
            next_offset = read if read is not None else 0
        return bool(next_offset >= end)

    def _flow_control(self) -> None:
        """Stop fetching input partitions whose buffer is full; fetch again once half empty.

        Uses Faust's own buffer-pressure hooks, not ``pause_partitions``: a pause removes the
        partition from the set the fetcher is iterating, and records it has already taken from
        aiokafka are then skipped for good (later records make a gap that Faust commits over).
        ``on_buffer_full`` keeps delivering what was fetched and only stops new fetches.

        The aligner's buffers are the only thing that pauses input partitions: the worker's
        stream queues never report pressure (``faust_fixes.queues_wait_when_full``; a full
        queue makes the fetcher wait instead). The state is re-asserted after every batch, so
        a pause or resume from anywhere else (Faust ignores pauses during a table recovery)
        lasts one batch at most: a full lane is paused, a lane at half its limit or less is
        fetched, and a lane that holds nothing is always fetched (the merge may be waiting
        for it; ``loanwatch_alignment_resumed_total`` counts the times it had been paused by
        something else).
        """
        consumer = self.worker.app.consumer
        stopped = buffer_stopped(consumer)
        for topic, partition in list(self.aligner.lanes):
            if topic == self.commands:
                continue
            tp = TP(topic, partition)
            n = self.aligner.buffered(topic, partition)
            if n >= self.limit:
                if tp not in stopped:
                    consumer.on_buffer_full(tp)
                self.paused.add(tp)
            elif n <= self.limit // 2:
                if tp in stopped:
                    if n == 0 and tp not in self.paused:
                        self.worker.metrics.awaited_resumes.inc()
                    consumer.on_buffer_drop(tp)
                self.paused.discard(tp)
