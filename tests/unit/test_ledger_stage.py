"""The ledger stage's rebalance promises, with a fake consumer (no broker, no Faust app).

- records fetched under an older consumer generation are neither buffered nor processed (nor
  acked): the partition's next owner, or this worker after a seek, reads them again;
- a revoke drops what the revoked partitions hold, keeps the others' held records, and tells
  the ledger to forget the revoked partitions' engines;
- lane watermarks are acked at once and only move what the aligner may release.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP
from prometheus_client import CollectorRegistry

from loanwatch.agents.faust_fixes import never_committed, refetcher
from loanwatch.agents.ledger_stage import LedgerStage, of_current_generation
from loanwatch.metrics.catalog import register_pipeline_metrics
from loanwatch.streams.topics import TopicNames

pytestmark = pytest.mark.unit

NAMES = TopicNames()


@dataclass
class FakeConsumer:
    assigned: set[TP]
    highwaters: dict[TP, int] = field(default_factory=dict)
    full: list[TP] = field(default_factory=list)
    dropped: list[TP] = field(default_factory=list)
    _buffered_partitions: set[TP] = field(default_factory=set)  # Faust's paused-by-pressure set
    _committed_offset: dict[TP, int] = field(default_factory=dict)
    seeks: list[tuple[TP, int]] = field(default_factory=list)

    def assignment(self) -> set[TP]:
        return set(self.assigned)

    def highwater(self, tp: TP) -> int:
        return self.highwaters.get(tp, 10_000)  # far ahead: nothing is caught up

    def on_buffer_full(self, tp: TP) -> None:
        self.full.append(tp)
        self._buffered_partitions.add(tp)

    def on_buffer_drop(self, tp: TP) -> None:
        self.dropped.append(tp)
        self._buffered_partitions.discard(tp)

    async def seek(self, tp: TP, offset: int) -> None:
        self.seeks.append((tp, offset))

    async def perform_seek(self) -> None:  # Faust's: every partition to its committed offset
        self.seeks.append((TP("*", -1), -1))


@dataclass
class FakeLedger:
    revoked: list[set[int]] = field(default_factory=list)
    handled: list[Any] = field(default_factory=list)

    def revoke(self, partitions: set[int]) -> None:
        self.revoked.append(set(partitions))


class FakeStream:
    def __init__(self) -> None:
        self.acked: list[Any] = []

    async def ack(self, event: Any) -> None:
        self.acked.append(event)


def event(topic: str, partition: int, offset: int, generation: int) -> Any:
    message = SimpleNamespace(
        topic=topic,
        partition=partition,
        offset=offset,
        timestamp=1000.0 + offset,
        generation_id=generation,
        key=b"k",
        value=b"{}",
        headers=None,
    )
    return FakeEvent(message)


def mark(topic: str, partition: int, offset: int, stamp: float, generation: int = 7) -> Any:
    found = event(topic, partition, offset, generation)
    found.message.timestamp = stamp
    found.message.value = b""
    found.message.headers = [("loanwatch.mark", b"1")]
    return found


class FakeEvent:
    """A taken event (weak-referenceable, as Faust's current event must be)."""

    def __init__(self, message: Any) -> None:
        self.message = message


def stage(generation: int = 7) -> tuple[LedgerStage, FakeConsumer, FakeLedger]:
    inputs = [TP(t, p) for t in NAMES.inputs() for p in (0, 1)]
    consumer = FakeConsumer(set(inputs))
    app = SimpleNamespace(consumer=consumer, consumer_generation_id=generation)
    ledger = FakeLedger()
    worker = SimpleNamespace(
        app=app,
        names=NAMES,
        settings=SimpleNamespace(
            align_max_idle=60.0, align_mark_max_idle=60.0, align_buffer=1000, batch_size=1000
        ),
        metrics=register_pipeline_metrics(CollectorRegistry()),
        ledger=ledger,
    )
    return LedgerStage(worker, bulk=SimpleNamespace()), consumer, ledger  # type: ignore[arg-type]


def test_only_events_of_the_current_generation_pass() -> None:
    app = SimpleNamespace(consumer_generation_id=3)
    old, new = event(NAMES.payments, 0, 1, 2), event(NAMES.payments, 0, 2, 3)
    assert of_current_generation(app, [old, new, old]) == [new]


async def test_stale_records_are_not_buffered_and_never_acked() -> None:
    s, _consumer, _ledger = stage(generation=7)
    stream = FakeStream()
    stale = [event(NAMES.payments, 0, i, 6) for i in range(3)]
    fresh = [event(NAMES.payments, 0, i, 7) for i in range(3, 5)]
    await s.take(stream, stale + fresh)
    # Lanes of other topics are not caught up (high watermark far ahead): everything is held.
    assert s.aligner.held() == 2
    assert s.aligner.buffered(NAMES.payments, 0) == 2
    assert stream.acked == []


async def test_revoke_drops_the_revoked_partitions_held_records_only() -> None:
    s, _consumer, ledger = stage()
    stream = FakeStream()
    batch = [event(NAMES.payments, p, i, 7) for p in (0, 1) for i in range(4)]
    batch += [event(NAMES.accounts, 1, 0, 7)]
    await s.take(stream, batch)
    assert s.aligner.held() == 9
    await s.revoke({1})
    assert s.aligner.held() == 4
    assert s.aligner.buffered(NAMES.payments, 0) == 4
    assert s.aligner.buffered(NAMES.payments, 1) == 0
    assert s.aligner.buffered(NAMES.accounts, 1) == 0
    assert ledger.revoked == [{1}]
    assert s.worker.metrics.held._value.get() == 4
    assert stream.acked == []  # dropped, not acked: the next owner reads them again


class FakeBulk:
    def __init__(self) -> None:
        self.keyed: list[tuple[str, bytes | None, bytes | None]] = []

    def add_keyed(self, topic: str, key: bytes | None, value: bytes | None, *_: Any) -> None:
        self.keyed.append((topic, key, value))

    async def send(self) -> int:
        return len(self.keyed)


async def test_marks_release_the_records_they_prove_safe_and_are_acked_after_them() -> None:
    s, _consumer, _ = stage()
    ledger = RecordingLedger()
    s.worker.ledger = ledger
    stream = FakeStream()
    s.bulk = CountingBulk(stream)  # type: ignore[assignment]
    records = [event(NAMES.payments, 0, i, 7) for i in range(3)]  # stamped 1000..1002
    await s.take(stream, records)
    assert ledger.handled == [] and stream.acked == []  # highwaters far ahead: no proof
    others = [t for t in (*NAMES.inputs(), NAMES.commands) if t != NAMES.payments]
    marks = [mark(t, 0, 0, 1001.0) for t in others if t != NAMES.commands]
    await s.take(stream, marks)
    assert ledger.handled == [0, 1]  # the third is later than the marks
    # acked together, in offset order per topic-partition
    assert {id(e) for e in stream.acked} == {id(e) for e in [*records[:2], *marks]}
    payments = [e.message.offset for e in stream.acked if e.message.topic == NAMES.payments]
    assert payments == [0, 1]
    late = mark(NAMES.payments, 0, 3, 5000.0)  # behind the held record at offset 2
    await s.take(stream, [late])
    assert late not in stream.acked  # acked now, Faust would commit past offset 2


async def test_a_lane_the_aligner_waits_for_is_fetched_even_if_faust_paused_it() -> None:
    """Something else paused the laggard; the partitions ahead are held behind it."""
    s, consumer, _ledger = stage()
    stream = FakeStream()
    laggard, ahead = TP(NAMES.accounts, 0), TP(NAMES.payments, 0)
    consumer._buffered_partitions = {laggard, ahead}
    await s.take(stream, [event(NAMES.payments, 0, i, 7) for i in range(3)])
    assert s.aligner.held() == 3  # all held: accounts/0 (and others) not known up to them
    assert laggard in consumer.dropped  # the empty lane it waits for is fetched again
    assert ahead in consumer.dropped  # 3 held, far below the limit: fetched too
    assert s.worker.metrics.awaited_resumes._value.get() == 1  # the empty lane only
    assert consumer._buffered_partitions == set()


async def test_the_aligner_pauses_a_full_lane_again_after_every_batch() -> None:
    """Its buffers are the only flow control: a resume from elsewhere lasts one batch."""
    s, consumer, _ledger = stage()
    s.limit = 4
    stream = FakeStream()
    ahead = TP(NAMES.payments, 0)
    await s.take(stream, [event(NAMES.payments, 0, i, 7) for i in range(5)])
    assert consumer.full == [ahead] and ahead in consumer._buffered_partitions
    consumer.on_buffer_drop(ahead)  # e.g. Faust resumed it
    await s.take(stream, [event(NAMES.payments, 0, 5, 7)])
    assert consumer.full == [ahead, ahead] and ahead in consumer._buffered_partitions
    await s.take(stream, [])  # still full and still paused: not paused twice
    assert consumer.full == [ahead, ahead]


async def test_a_lane_at_half_its_limit_is_fetched_again() -> None:
    s, consumer, _ledger = stage()
    s.limit = 4
    stream = FakeStream()
    lane = TP(NAMES.payments, 0)
    await s.take(stream, [event(NAMES.payments, 0, i, 7) for i in range(4)])
    assert lane in consumer._buffered_partitions
    s.aligner.drop({0})  # what a release would do: the lane holds nothing now
    await s.take(stream, [])
    assert lane not in consumer._buffered_partitions and consumer.dropped == [lane]
    assert s.worker.metrics.awaited_resumes._value.get() == 0  # it was the aligner's pause


class RecordingLedger(FakeLedger):
    """Records the offsets it handles and the flushes (a stand-in for LedgerProcessor)."""

    def __init__(self) -> None:
        super().__init__()
        self.flushed_outputs = 0
        self.commits = []
        self.restored_under: list[tuple[int, int | None]] = []

    def ensure(self, partitions: Any, before_restore: Any = None) -> None:
        from faust.streams import current_event

        for p in partitions:
            if before_restore is not None:
                before_restore(p)
                found = current_event()
                self.restored_under.append((p, found.message.partition if found else None))

    def handle(self, msg: Any, out: Any) -> None:
        self.handled.append(msg.offset)

    def flush(self, partition: int) -> int:
        return 0

    def outputs_flushed(self) -> None:
        self.flushed_outputs += 1

    def commit_state(self) -> None:
        self.commits.append(self.stream_acked())

    commits: list[int]
    stream_acked: Any = staticmethod(lambda: -1)


class CountingBulk:
    def __init__(self, stream: FakeStream) -> None:
        self.stream = stream
        self.sends: list[int] = []  # acked records seen at each send

    def add_keyed(self, *args: Any) -> None:
        pass

    async def send(self) -> int:
        self.sends.append(len(self.stream.acked))
        return 0


async def test_a_large_release_is_processed_sent_and_acked_a_batch_at_a_time() -> None:
    """Thousands of records ready at once must not hold the event loop in one go."""
    s, _consumer, _ = stage()
    ledger = RecordingLedger()
    s.worker.ledger = ledger
    stream = FakeStream()
    bulk = CountingBulk(stream)
    s.bulk = bulk  # type: ignore[assignment]
    ledger.stream_acked = lambda: len(stream.acked)
    s.release_limit = 2
    marks = [mark(t, 0, 0, 2000.0) for t in NAMES.inputs() if t != NAMES.payments]
    await s.take(stream, marks)  # every other lane is proven later than the records
    stream.acked.clear()
    turns = 0

    async def count_turns() -> None:
        nonlocal turns
        while True:
            await asyncio.sleep(0)
            turns += 1

    counter = asyncio.ensure_future(count_turns())
    await s.take(stream, [event(NAMES.payments, 0, i, 7) for i in range(5)])
    counter.cancel()
    assert ledger.handled == [0, 1, 2, 3, 4]  # in order
    assert bulk.sends == [0, 2, 4]  # three sends, each before its own records' acks
    assert ledger.commits == [0, 2, 4]  # the store takes a batch after its send, before acks
    assert [e.message.offset for e in stream.acked] == [0, 1, 2, 3, 4]
    assert ledger.flushed_outputs == 3
    assert turns >= 1  # other tasks ran between the batches (none could without the yield)


async def test_each_partition_is_restored_under_its_own_current_event() -> None:
    """Faust reads a table at the current event's partition: a partition restored while the
    event of another one is current would read that one's clock record (or none)."""
    s, _consumer, _ = stage()
    ledger = RecordingLedger()
    s.worker.ledger = ledger
    stream = FakeStream()
    s.bulk = CountingBulk(stream)  # type: ignore[assignment]
    for p in (0, 1):
        await s.take(stream, [mark(t, p, 0, 5000.0) for t in NAMES.inputs() if t != NAMES.payments])
    await s.take(stream, [event(NAMES.payments, 1, 1, 7), event(NAMES.payments, 0, 1, 7)])
    assert sorted(ledger.restored_under) == [(0, 0), (1, 1)]


async def test_a_forced_release_is_counted_and_names_the_lanes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    s, consumer, _ = stage()
    ledger = RecordingLedger()
    s.worker.ledger = ledger
    stream = FakeStream()
    s.bulk = CountingBulk(stream)  # type: ignore[assignment]
    s.aligner.max_idle = s.aligner.mark_max_idle = 0.05
    consumer.highwaters = dict.fromkeys(consumer.assigned, 0)  # every lane caught up
    consumer.highwaters[TP(NAMES.payments, 0)] = 1
    await s.take(stream, [event(NAMES.payments, 0, 0, 7)])
    assert ledger.handled == []  # caught up is no proof
    await asyncio.sleep(0.06)
    await s.wake()
    assert ledger.handled == [0]
    assert s.worker.metrics.forced_releases._value.get() == 1
    assert "forced release" in caplog.text and f"{NAMES.accounts}/0" in caplog.text


async def test_a_record_with_the_mark_header_and_a_payload_is_an_event() -> None:
    marked = mark(NAMES.payments, 0, 0, 1000.0)
    marked.message.value = b"{not json"
    from loanwatch.agents.ledger_stage import is_mark

    assert not is_mark(marked)
    assert is_mark(mark(NAMES.payments, 0, 1, 1000.0))


async def test_a_lane_committed_to_its_end_before_a_restart_is_caught_up_not_behind() -> None:
    """Nothing received since the assignment, its last mark consumed by the previous owner:
    the lane is at its end (the committed offset), so the merge gives it up after its
    patience instead of waiting for ever for a record that is not on its way."""
    s, consumer, _ = stage()
    ledger = RecordingLedger()
    s.worker.ledger = ledger
    stream = FakeStream()
    s.bulk = CountingBulk(stream)  # type: ignore[assignment]
    s.aligner.max_idle = s.aligner.mark_max_idle = 0.05
    consumer.highwaters = dict.fromkeys(consumer.assigned, 40)
    consumer._committed_offset = dict.fromkeys(consumer.assigned, 40)
    consumer.highwaters[TP(NAMES.payments, 0)] = 41
    await s.take(stream, [event(NAMES.payments, 0, 40, 7)])
    await asyncio.sleep(0.06)
    await s.wake()
    assert ledger.handled == [40]
    assert s.worker.metrics.forced_releases._value.get() == 1


class RefusingBulk:
    """A bulk producer whose outputs the broker never acknowledges (retries exhausted)."""

    def add_keyed(self, *args: Any) -> None:
        pass

    async def send(self) -> int:
        from loanwatch.agents.bulk import OutputsNotAcknowledged

        raise OutputsNotAcknowledged("3 attempts: NotEnoughReplicas")


async def test_outputs_not_acknowledged_exit_75_storing_and_acking_nothing(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The engine in memory ran ahead of what Kafka holds: the process exits (EX_TEMPFAIL),
    before the store takes the batch and before any of its records is acked."""
    import loanwatch.agents.ledger_stage as module

    class Exited(Exception):
        pass

    codes: list[int] = []

    def fake_exit(code: int) -> None:
        codes.append(code)
        raise Exited

    monkeypatch.setattr(module.os, "_exit", fake_exit)
    monkeypatch.setattr(module.logging, "shutdown", lambda: None)  # keep pytest's handlers
    s, _consumer, _ = stage()
    ledger = RecordingLedger()
    s.worker.ledger = ledger
    stream = FakeStream()
    s.bulk = RefusingBulk()  # type: ignore[assignment]
    marks = [mark(t, 0, 0, 2000.0) for t in NAMES.inputs() if t != NAMES.payments]
    await s.take(stream, marks)
    stream.acked.clear()
    with pytest.raises(Exited):
        await s.take(stream, [event(NAMES.payments, 0, 1, 7)])
    assert codes == [module.EXIT_OUTPUTS_LOST] == [75]
    assert ledger.handled == [1]  # processed in memory ...
    assert ledger.commits == [] and ledger.flushed_outputs == 0  # ... never stored
    assert stream.acked == []  # ... never acked: the next owner reads it again
    assert "outputs not acknowledged" in ledger.stalled
    assert "exiting (nothing stored)" in caplog.text


async def test_a_record_after_a_gap_is_refused_and_the_lane_fetched_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Records the consumer skipped (cleared by a resume of Faust's flow) must not be lost:
    a record past the gap is refused, the consumer seeks to the committed offsets, and the
    records fetched again fill the lane in order (its refused copy comes again with them)."""
    s, consumer, _ = stage()
    ledger = RecordingLedger()
    s.worker.ledger = ledger
    stream = FakeStream()
    s.bulk = CountingBulk(stream)  # type: ignore[assignment]
    await s.take(stream, [mark(t, 0, 0, 5000.0) for t in NAMES.inputs() if t != NAMES.payments])
    consumer._committed_offset[TP(NAMES.payments, 0)] = 3  # the group's: 0..2 were processed
    await s.take(stream, [event(NAMES.payments, 0, i, 7) for i in (2, 5, 6)])
    assert ledger.handled == []  # 2 was committed (a duplicate); 5 and 6 are past the gap
    assert s.worker.metrics.gaps._value.get() == 2
    await asyncio.sleep(0)  # the seek runs as a task
    assert consumer.seeks == [(TP("*", -1), -1)]  # one seek for both refused records
    assert "delivered offset 5 where 3 was expected" in caplog.text
    assert caplog.text.count("records skipped by the consumer") == 1  # once a second per lane
    await s.take(stream, [event(NAMES.payments, 0, i, 7) for i in range(3, 8)])  # fetched again
    assert ledger.handled == [3, 4, 5, 6, 7]
    assert s.worker.metrics.gaps_accepted._value.get() == 0
    assert s.gaps.asked == {}  # the lane got what it waited for


async def test_a_gap_that_fetching_again_never_fills_is_accepted_counted_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Records gone from the broker never come: after the tracker's re-fetches the record past
    the gap is processed, and the loss is counted and logged as an error (not in time: in
    fetches)."""
    s, consumer, _ = stage()
    ledger = RecordingLedger()
    s.worker.ledger = ledger
    stream = FakeStream()
    s.bulk = CountingBulk(stream)  # type: ignore[assignment]
    await s.take(stream, [mark(t, 0, 0, 5000.0) for t in NAMES.inputs() if t != NAMES.payments])
    consumer._committed_offset[TP(NAMES.payments, 0)] = 3
    for _ in range(s.gaps.max_refetches):
        await s.take(stream, [event(NAMES.payments, 0, 9, 7)])  # each fetch again: 9 first
        await asyncio.sleep(0)
        assert ledger.handled == []
    assert len(consumer.seeks) == s.gaps.max_refetches
    await s.take(stream, [event(NAMES.payments, 0, 9, 7), event(NAMES.payments, 0, 10, 7)])
    assert ledger.handled == [9, 10]
    assert s.worker.metrics.gaps_accepted._value.get() == 1
    assert "offsets 3..8 never came" in caplog.text


async def test_a_request_during_a_seek_gets_a_seek_after_it() -> None:
    """A gap seen while a seek runs may come from a fetch after that seek: seek once more."""
    started, release = asyncio.Event(), asyncio.Event()
    calls: list[int] = []

    async def perform_seek() -> None:
        calls.append(len(calls))
        started.set()
        await release.wait()

    app = SimpleNamespace(consumer=SimpleNamespace(perform_seek=perform_seek))
    refetch = refetcher(app)
    refetch.request()
    await started.wait()
    refetch.request()
    refetch.request()  # coalesced with the one before
    assert refetch.pending
    release.set()
    while refetch.pending:
        await asyncio.sleep(0)
    assert calls == [0, 1] and refetch.done == 2


async def test_a_partition_never_committed_starts_at_the_earliest_offset() -> None:
    """A never-committed lane is read from its beginning: a first record past it is a gap."""
    s, _consumer, _ = stage()
    ledger = RecordingLedger()
    s.worker.ledger = ledger
    stream = FakeStream()
    s.bulk = CountingBulk(stream)  # type: ignore[assignment]
    await s.take(stream, [mark(t, 0, 0, 5000.0) for t in NAMES.inputs() if t != NAMES.payments])
    tp = TP(NAMES.payments, 0)
    never_committed(s.worker.app)[tp] = 2  # read from its earliest: retention removed 0, 1
    await s.take(stream, [event(NAMES.payments, 0, 4, 7)])
    assert ledger.handled == []  # refused: 2 and 3 never came
    assert s.worker.metrics.gaps._value.get() == 1
    await s.take(stream, [event(NAMES.payments, 0, i, 7) for i in (2, 3, 4)])
    assert ledger.handled == [2, 3, 4]


async def test_records_fetched_before_the_seek_wait_and_the_refetch_fills_the_lane() -> None:
    """After the seek, the rest of the fetch made before it (past the gap) still comes: it is
    refused without asking for more seeks, and the fetch after the seek fills the lane."""
    s, consumer, _ = stage()
    ledger = RecordingLedger()
    s.worker.ledger = ledger
    stream = FakeStream()
    s.bulk = CountingBulk(stream)  # type: ignore[assignment]
    await s.take(stream, [mark(t, 0, 0, 5000.0) for t in NAMES.inputs() if t != NAMES.payments])
    consumer._committed_offset[TP(NAMES.payments, 0)] = 3
    await s.take(stream, [event(NAMES.payments, 0, 5, 7)])
    await asyncio.sleep(0)  # the seek
    for _ in range(s.gaps.max_refetches + 2):  # more stale records than re-fetches allowed
        await s.take(stream, [event(NAMES.payments, 0, 6 + _, 7)])
        await asyncio.sleep(0)
    assert len(consumer.seeks) == 1 and ledger.handled == []
    assert s.worker.metrics.gaps_accepted._value.get() == 0
    await s.take(stream, [event(NAMES.payments, 0, i, 7) for i in range(3, 14)])
    assert ledger.handled == list(range(3, 14))
