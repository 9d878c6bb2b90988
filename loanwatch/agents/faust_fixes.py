"""Fixes for faust-streaming/aiokafka, all applied by the worker: two record losses, commits that
stopped after a seek (``seeks_keep_commits``), the records a resume of the flow cleared
(``reseek_after_resume``), two per-message costs (``eager_message_delivery``,
``fewer_stream_yields``) and the per-partition pauses of Faust's queue pressure
(``queues_wait_when_full``), which fought the ledger stage's alignment.

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

import asyncio
import functools
import logging
from collections import defaultdict
from collections.abc import Coroutine, Iterator, Mapping
from typing import Any

from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import TP
from mode.services import WaitResults
from mode.utils.queues import ThrowableQueue

from loanwatch.agents.faust_internals import set_committed_offsets, set_read_offsets

log = logging.getLogger("loanwatch.worker")

_PATCHED = "_loanwatch_rewinds_uncommitted"
_REREADS = "_loanwatch_delivers_rereads"


class _ReadOffsets(dict[TP, "int | None"]):
    """Faust's read offsets, never used to drop or skip a fetched record.

    Faust's fetch loop reads ``_read_offset[tp]`` (``__getitem__``) to drop a record below the
    last one it delivered and to record an offset jump as a *gap* it later commits over.
    After a rebalance it seeks to the committed offset, but records fetched under the old
    generation still come out of the loop and move that read offset past what is committed;
    the ledger stage drops those (stale generation) and Faust then drops their re-fetched
    copies: the lane goes on without them (openings never applied, a later crash takes them
    for done). Reading None here delivers every fetched record and records no gap; the
    ledger stage already keeps each lane to its next offset (a copy it had is a duplicate).
    Everything else reads the real values (``get``, ``update``, ``__setitem__``).
    """

    def __getitem__(self, tp: TP) -> int | None:
        return None

    def __missing__(self, tp: TP) -> int | None:
        return None


def deliver_rereads() -> None:
    """Patch ``Consumer.__init__`` so that its read offsets never drop a record (idempotent)."""
    if getattr(Consumer, _REREADS, False):
        return
    original = Consumer.__init__

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        set_read_offsets(self, _ReadOffsets())

    Consumer.__init__ = __init__  # type: ignore[method-assign]
    setattr(Consumer, _REREADS, True)


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
        registry = never_committed(self.app)
        for tp, offset in committed.items():
            if offset:
                registry.pop(tp, None)
        if uncommitted:
            log.info(
                "no committed offset for %d partitions: reading them from the beginning: %s",
                len(uncommitted),
                ", ".join(f"{tp.topic}/{tp.partition}" for tp in uncommitted),
            )
            # To the offsets themselves: aiokafka's seek_to_beginning leaves the position
            # unknown until a reset request returns, and Faust's livelock check asserts it.
            for tp, offset in (await self.earliest_offsets(*uncommitted)).items():
                self.seek(tp, offset)
                registry[tp] = offset
        return committed

    AIOKafkaConsumerThread.seek_to_committed = seek_to_committed  # type: ignore[method-assign]
    setattr(AIOKafkaConsumerThread, _PATCHED, True)


_UNCOMMITTED = "_loanwatch_never_committed"


def never_committed(app: Any) -> dict[TP, int]:
    """Stream partitions the last seek found without a committed offset -> where it read them
    from (their earliest offset)."""
    found: dict[TP, int] | None = getattr(app, _UNCOMMITTED, None)
    if found is None:
        found = {}
        setattr(app, _UNCOMMITTED, found)
    return found


# --- records cleared by a resume of the flow are read again ---------------------------------


def reseek_after_resume(app: Any) -> None:
    """After Faust resumes its flow, seek the stream partitions to their committed offsets again.

    ``FlowControlEvent.resume`` clears every stream queue (``clear_on_resume``: to drop what
    was fetched under the previous generation). At the end of a table recovery Faust resumes
    the stream partitions, seeks them to the committed offsets and only then resumes the
    flow: whatever was fetched after the seek and before the resume is cleared, and the fetch
    position has moved past it. A worker taking over a SIGKILLed one's partitions received
    every input lane from some records past the committed offset (``test_sigkill_mid_run``;
    the gaps ``loanwatch_alignment_gaps_total`` counted). The seek after the resume makes the
    consumer fetch those records again. Records fetched between the resume and that seek still
    come first (past the gap): the ledger stage refuses them (``agents/gaps.py``), and they
    come again after the seek.
    """
    flow = app.flow_control
    if getattr(flow, _RESEEK, False):
        return
    original = flow.resume

    def resume() -> None:
        original()  # clears the stream queues
        consumer = app.consumer
        try:
            assigned = consumer.assignment()
        except Exception:  # not started
            return
        if assigned:
            request_reseek(app)

    flow.resume = resume
    setattr(flow, _RESEEK, True)


_RESEEK = "_loanwatch_reseeks_after_resume"
_REFETCHER = "_loanwatch_refetcher"


class Refetcher:
    """Seeks the consumer's partitions to their committed offsets, once per batch of requests.

    Through Faust's ``perform_seek``: it runs aiokafka's seek in the consumer's own thread and
    sets Faust's read offsets to the committed ones (a plain ``Consumer.seek`` calls aiokafka
    from the worker's thread). A request made while a seek runs gets another seek after it, so
    every request is followed by a seek that started after it.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.task: asyncio.Future[None] | None = None
        self.again = False
        self.done = 0  # seeks completed (the gap tracker counts re-fetches by it)

    @property
    def pending(self) -> bool:
        return self.task is not None and not self.task.done()

    def request(self) -> None:
        if self.pending:
            self.again = True
            return
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            self.again = False
            try:
                await self.app.consumer.perform_seek()
            except Exception as exc:  # a rebalance under way: its own seek follows
                log.info("seek to the committed offsets not done (%s): the rebalance seeks", exc)
            else:
                self.done += 1
            if not self.again:
                return


class _CommittedOffsets(defaultdict[TP, "int | None"]):
    """Faust's committed offsets, which an update never moves back (a pop forgets one)."""

    def __init__(self) -> None:
        super().__init__(lambda: None)

    def __setitem__(self, tp: TP, offset: int | None) -> None:
        now = self.get(tp)
        if now is None or (offset is not None and offset > now):
            super().__setitem__(tp, offset)

    def update(self, *args: Any, **kwargs: Any) -> None:
        for tp, offset in dict(*args, **kwargs).items():
            self[tp] = offset


def seeks_keep_commits() -> None:
    """Patch ``Consumer.__init__``: its committed offsets never go back (idempotent).

    ``perform_seek`` reads the group's committed offsets from the broker and writes them into
    Faust's own. A read made while a commit was completing left them below what Faust had
    already removed from its acked offsets, and Faust never committed that partition again
    (its acked offsets started more than one past the committed one): the kill loop hung at
    the end of its backlog with every record processed and commits stuck mid-log, 3 runs in
    5, once the ledger stage's re-fetches (and the seek after every resume) ran while
    commits did. Faust forgets a partition's offset when it is revoked (``pop``), so a
    partition assigned again starts from the broker's value.
    """
    if getattr(Consumer, _KEEPS_COMMITS, False):
        return
    original = Consumer.__init__

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        set_committed_offsets(self, _CommittedOffsets())

    Consumer.__init__ = __init__  # type: ignore[method-assign]
    setattr(Consumer, _KEEPS_COMMITS, True)


_KEEPS_COMMITS = "_loanwatch_seeks_keep_commits"


def refetcher(app: Any) -> Refetcher:
    found: Refetcher | None = getattr(app, _REFETCHER, None)
    if found is None:
        found = Refetcher(app)
        setattr(app, _REFETCHER, found)
    return found


def request_reseek(app: Any) -> None:
    """Have the consumer fetch every partition again from its committed offset (coalesced)."""
    refetcher(app).request()


# --- eager delivery ---------------------------------------------------------------------------


async def _drive(coro: Coroutine[Any, Any, Any], yielded: Any) -> Any:
    """Go on running ``coro``, suspended on ``yielded``, as a task would.

    For :func:`eager_message_delivery`. Cancelled, it cancels what ``coro`` waits for and throws
    the cancellation into it (its ``except``/``finally`` blocks run, as in a cancelled task).
    """
    while True:
        try:
            if yielded is None:  # a bare yield (asyncio.sleep(0)): give the loop one turn
                await asyncio.sleep(0)
            else:  # the future it awaits: wait for it, then resume; it reads the outcome itself
                yielded._asyncio_future_blocking = False
                await asyncio.wait([yielded])
        except asyncio.CancelledError:
            if yielded is not None:
                yielded.cancel()
            try:
                coro.throw(asyncio.CancelledError())
            except (asyncio.CancelledError, StopIteration):
                pass
            else:  # it went on waiting: it is not resumed again
                coro.close()
            raise
        try:
            yielded = coro.send(None)
        except StopIteration as stop:
            return stop.value


_EAGER = "_loanwatch_eager_delivery"


def eager_message_delivery() -> None:
    """Deliver each fetched message without three tasks and an ``asyncio.wait`` (idempotent).

    Faust's fetch loop (``Consumer._drain_messages``, the consumer's only caller of
    ``wait_first``) hands every message to the conductor with ``await self.wait_first(
    callback(message), self.suspend_flow.wait())``: four tasks, an ``asyncio.wait`` and three
    cancellations per message, though the callback nearly always finishes without suspending
    (it puts the event on the agent's queue). The patched ``Consumer.wait_first`` runs its first
    coroutine in place: if it finishes, that is the result (the others are closed, never
    started); if it suspends (a full queue, flow control during a rebalance), it goes on under
    Faust's own ``wait_first`` with the same other arguments, so a suspended flow, a stop or a
    crash still interrupts it. Faust's no-op drain: 1.5x faster (``bench/pipeline_drain.py``).

    With it (and :func:`fewer_stream_yields`) the agent's queue fills faster than the ledger
    empties it; Faust's queue-pressure pauses then starved the input partition the aligner
    waited for (the 1.05M drain diverged from replay after a forced release), which is why the
    worker also applies :func:`queues_wait_when_full` (docs/design.md).
    """
    if getattr(Consumer, _EAGER, False):
        return
    original = Consumer.wait_first

    async def wait_first(self: Any, *coros: Any, timeout: Any = None) -> WaitResults:
        first, rest = coros[0], coros[1:]
        if not asyncio.iscoroutine(first) or self.should_stop:
            return await original(self, *coros, timeout=timeout)
        try:
            yielded = first.send(None)
        except StopIteration as done:
            _close(rest)
            return WaitResults([first], [done.value], False)
        except BaseException:
            _close(rest)
            raise
        return await original(self, _drive(first, yielded), *rest, timeout=timeout)

    Consumer.wait_first = wait_first  # type: ignore[method-assign]
    setattr(Consumer, _EAGER, True)


def _close(coros: tuple[Any, ...]) -> None:
    for coro in coros:
        if asyncio.iscoroutine(coro):
            coro.close()  # never started: no "was never awaited" warning


# --- fewer yields per streamed event ------------------------------------------------------------


class _Ready:
    """An awaitable that completes at once: no turn of the event loop."""

    __slots__ = ()

    def __await__(self) -> Iterator[None]:
        return iter(())


_READY = _Ready()
_FEWER = "_loanwatch_fewer_yields"


def fewer_stream_yields(every: int = 64) -> bool:
    """Let a stream give the event loop a turn every ``every`` events, not before each one.

    Faust's stream iterator (the compiled ``faust._cython.streams.StreamIterator.next``, used
    whenever it is installed) awaits ``asyncio.sleep(0)`` before taking each event off the
    channel's queue: one full turn of the event loop (its selector poll included) per event.
    With this, ``sleep(0)`` there completes in place except every ``every``-th call. A stream
    whose queue is empty still waits on it (and yields); other tasks (the fetcher, timers, web
    requests) get a turn at least every ``every`` events. Returns False (and changes nothing)
    without the compiled iterator.
    """
    try:
        from faust._cython import streams as compiled
    except ImportError:
        return False
    if getattr(compiled, _FEWER, False):
        return True
    original = compiled.sleep
    count = 0

    def sleep(delay: float, result: Any = None) -> Any:
        nonlocal count
        if delay == 0 and result is None:
            count += 1
            if count < every:
                return _READY
            count = 0
        return original(delay, result)

    compiled.sleep = sleep
    setattr(compiled, _FEWER, True)
    return True


# --- no per-partition pauses from Faust's queue pressure ----------------------------------------


class WaitWhenFullQueue(ThrowableQueue):  # type: ignore[type-arg]
    """A stream queue that never reports "pressure": a full queue makes the fetcher wait.

    Faust's conductor, before it puts a message on an agent's queue, asks the queue whether it
    is under pressure (``qsize >= maxsize / 1.25``); if so it pauses the message's partition
    (``Consumer.on_buffer_full``) and resumes it when the queue falls to 40 % of ``maxsize``,
    one paused partition per taken event. Those pauses fight the ledger stage's own flow
    control, which pauses the lanes its aligner holds too much of and needs the lane it waits
    for to keep coming: the partition of whichever record reached the queue last, the laggard
    included, was paused, and resumed only when the partitions ahead let the queue drain. With
    this queue the conductor pauses nothing; a queue that is full makes it wait (its
    ``queue.full()`` path: ``await put``) until the agent takes events, which bounds memory the
    same way without singling out a partition.
    """

    def in_pressure_high_state(self, callback: Any) -> bool:
        return False


def queues_wait_when_full(app: Any) -> None:
    """Make ``app`` create :class:`WaitWhenFullQueue` stream queues (call before it starts)."""

    def flow_control_queue(
        maxsize: int | None = None, *, clear_on_resume: bool = False
    ) -> WaitWhenFullQueue:
        return WaitWhenFullQueue(
            maxsize=maxsize, flow_control=app.flow_control, clear_on_resume=clear_on_resume
        )

    app.FlowControlQueue = flow_control_queue
