"""Timestamp-aligned consumption of a partition's input topics, decided by proof, not by time.

The SPEC's input topics (accounts, payments, collections, signals, clock) are five logs of one
stream: their order is the record timestamps the producer gave them. A consumer fetches each
topic-partition (a *lane*) in byte-bounded chunks and at its own pace, so a lane can always
still deliver a record earlier than what the others hold. :class:`Aligner` buffers the lanes
of every partition a worker owns and releases each partition's records in timestamp order,
only while no lane of that partition can still deliver an earlier one:

- a lane with a buffered record knows its next timestamp;
- an empty lane has a **bound**: the timestamp of its latest *mark* (a watermark record our
  producers write to every lane: "nothing stamped up to here is still to come") or of its
  latest record; a head no later than every empty lane's bound is safe.

The rule never reads a clock, so any speed of producer or consumer gives the same order. Only
a lane whose bound is behind and that the broker says is caught up (its end offset is the
consumer's position) may, after waiting ``max_idle`` seconds (``mark_max_idle`` for a lane that
has carried marks before: its producer is ours and only stopped), be given up on: that release
is *forced*, returned as such (the stage counts it, logs the lanes, and a Prometheus rule
alerts), and the lane is not waited for again until it delivers something. A lane whose end
offset is ahead of the consumer is waited for however long it takes.

Partitions are merged independently (a borrower's loans share one partition, so nothing
crosses them). ``unwaited`` topics (internal wall-clock ticks) join the merge by timestamp but
never block it, nor wait for proof themselves (the wall clock is timing by definition).
Framework-free: items are opaque; the stage adds records and marks, asks what is ready,
processes and acks exactly that.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

T = TypeVar("T")

#: ``caught_up(topic, partition, next_offset)``: the consumer knows of no record at or after
#: ``next_offset`` (``None``: nothing received since the partition was assigned).
CaughtUp = Callable[[str, int, "int | None"], bool]

NEVER = float("-inf")

#: What became of an offered record: buffered, already had (ignored), or after a gap (records
#: before it were never received): refused, or buffered when the stage accepts the gap.
Offered = Literal["added", "duplicate", "gap"]


@dataclass(slots=True)
class _Lane(Generic[T]):
    """One topic-partition: buffered records, what is proven of the next one, offsets."""

    rank: int
    unwaited: bool = False
    # (timestamp, offset, item, is_mark): marks wait in line so they are acked in offset order
    items: deque[tuple[float, int, T, bool]] = field(default_factory=deque)
    next_offset: int | None = None
    start: int | None = None  # the first offset expected after an assignment (the committed one)
    bound: float = NEVER  # the next record is later than this (a mark's or record's stamp)
    marked: bool = False  # has carried a mark: its producer writes them
    idle: bool = False  # given up on by a forced release, until it delivers something

    def blocks(self, stamp: float) -> bool:
        """Could this (empty) lane still deliver a record earlier than ``stamp``?"""
        return not (self.items or self.unwaited or self.idle or self.bound >= stamp)


@dataclass(slots=True)
class _Partition(Generic[T]):
    lanes: dict[str, _Lane[T]] = field(default_factory=dict)
    blocked_since: float | None = None


@dataclass(frozen=True, slots=True)
class Release(Generic[T]):
    """What may be processed now, in order per partition, and whether a wait was cut short."""

    items: list[T]
    forced: bool
    waited_for: tuple[tuple[str, int], ...] = ()  # the lanes a forced release gave up on
    more: bool = False  # stopped at the limit: more records may be ready at once
    # marks whose lane's earlier records are all released: ack them after those records (a
    # Faust commit takes the first run of acked offsets, so an ack ahead of a held record
    # would commit past it)
    marks: list[T] = field(default_factory=list)


class Aligner(Generic[T]):
    """Buffers of the owned input topic-partitions, released in timestamp order when proven."""

    def __init__(
        self,
        topics: Sequence[str],
        *,
        max_idle: float,
        mark_max_idle: float | None = None,
        unwaited: Iterable[str] = (),
    ) -> None:
        self.topics = tuple(topics)
        self.rank = {t: i for i, t in enumerate(self.topics)}  # tie-break: topic order
        self.unwaited = frozenset(unwaited)
        self.max_idle = max_idle
        self.mark_max_idle = mark_max_idle if mark_max_idle is not None else max_idle
        self.partitions: dict[int, _Partition[T]] = {}

    def __contains__(self, topic: str) -> bool:
        return topic in self.rank

    @property
    def lanes(self) -> dict[tuple[str, int], _Lane[T]]:
        return {
            (t, p): lane for p, part in self.partitions.items() for t, lane in part.lanes.items()
        }

    def lane(self, topic: str, partition: int) -> _Lane[T]:
        """A partition's lane; the first use of a partition tracks all its topics' lanes.

        The input topics are co-partitioned and assigned together: a lane that has sent
        nothing yet is waited for as much as one that has.
        """
        part = self.partitions.get(partition)
        if part is None:
            part = self.partitions[partition] = _Partition()
            for t in self.topics:
                part.lanes[t] = _Lane(self.rank[t], t in self.unwaited)
        return part.lanes[topic]

    def add(self, topic: str, partition: int, offset: int, timestamp: float, item: T) -> bool:
        """Buffer a record; False (and ignored) if this lane already had it since assigned.

        A consumer seek backwards (e.g. to the beginning of a partition with no committed
        offset) delivers records again that are buffered or already processed.
        """
        return self.offer(topic, partition, offset, timestamp, item, is_mark=False) == "added"

    def mark(self, topic: str, partition: int, offset: int, timestamp: float, item: T) -> bool:
        """A lane watermark: nothing stamped up to ``timestamp`` follows it on this lane.

        ``item`` comes back in :attr:`Release.marks` once the lane's earlier records are out.
        """
        return self.offer(topic, partition, offset, timestamp, item, is_mark=True) == "added"

    def expect(self, topic: str, partition: int, offset: int) -> None:
        """The lane's first record since the assignment must be at ``offset`` (the committed one).

        Without it the first record received starts the lane, whatever its offset.
        """
        lane = self.lane(topic, partition)
        if lane.next_offset is None:
            lane.start = offset

    def expected(self, topic: str, partition: int) -> int | None:
        """The offset the lane needs next (None: not known yet)."""
        lane = self.lane(topic, partition)
        return lane.next_offset if lane.next_offset is not None else lane.start

    def offer(
        self,
        topic: str,
        partition: int,
        offset: int,
        timestamp: float,
        item: T,
        *,
        is_mark: bool,
        accept_gap: bool = False,
    ) -> Offered:
        """Buffer a record (or a mark), or refuse it: ``"gap"`` if records before it never came.

        Our input topics have contiguous offsets (not compacted, no transactions), so a record
        after a gap means the consumer skipped some (records cleared from the stream queues
        when Faust resumes its flow after a rebalance, see ``faust_fixes.reseek_after_resume``).
        It is refused (not buffered: the lane keeps waiting for the offset it expects) unless
        ``accept_gap``; the ledger stage has the lane fetched again from the committed offset
        and accepts a gap only when fetches again bring nothing else (docs/design.md, rule 5).
        """
        lane = self.lane(topic, partition)
        expected = lane.next_offset if lane.next_offset is not None else lane.start
        found: Offered = "added"
        if expected is not None:
            if offset < expected:
                return "duplicate"
            if offset > expected:
                if not accept_gap:
                    return "gap"
                found = "gap"
        lane.items.append((timestamp, offset, item, is_mark))
        lane.next_offset = offset + 1
        lane.bound = max(lane.bound, timestamp)
        lane.marked = lane.marked or is_mark
        lane.idle = False
        return found

    def track(self, topic: str, partition: int) -> None:
        """Wait for this topic-partition too, even before it sends anything (it is assigned)."""
        self.lane(topic, partition)

    def buffered(self, topic: str, partition: int) -> int:
        part = self.partitions.get(partition)
        lane = part.lanes.get(topic) if part else None
        return len(lane.items) if lane else 0

    def held(self) -> int:
        return sum(
            len(lane.items) for part in self.partitions.values() for lane in part.lanes.values()
        )

    def release(self, caught_up: CaughtUp, now: float, limit: int | None = None) -> Release[T]:
        """Pop the records proven safe, per partition in timestamp order (at most ``limit``)."""
        out: list[T] = []
        marks: list[T] = []
        forced = False
        gave_up: list[tuple[str, int]] = []
        more = False
        for p in sorted(self.partitions):
            room = None if limit is None else limit - len(out)
            if room is not None and room <= 0:
                more = more or any(lane.items for lane in self.partitions[p].lanes.values())
                continue
            got, lanes, full = self._release_one(p, caught_up, now, room, marks)
            out.extend(got)
            if lanes:
                forced = True
                gave_up.extend(lanes)
            more = more or full
        return Release(out, forced, tuple(gave_up), more, marks)

    def _release_one(
        self, p: int, caught_up: CaughtUp, now: float, room: int | None, marks: list[T]
    ) -> tuple[list[T], list[tuple[str, int]], bool]:
        part = self.partitions[p]
        lanes = sorted(part.lanes.items(), key=lambda kv: kv[1].rank)
        out: list[T] = []
        gave_up: list[tuple[str, int]] = []
        while True:
            head: _Lane[T] | None = None
            for _, lane in lanes:
                while lane.items and lane.items[0][3]:  # a mark at the head: done with
                    marks.append(lane.items.popleft()[2])
                if lane.items and (
                    head is None or (lane.items[0][0], lane.rank) < (head.items[0][0], head.rank)
                ):
                    head = lane
            if head is None:
                part.blocked_since = None
                return out, gave_up, False
            stamp = head.items[0][0]
            # An unwaited lane's record (a wall-clock tick) is not part of the producers'
            # order: it goes as soon as it is the earliest known, never waiting for proof.
            blocking = [] if head.unwaited else [(t, ln) for t, ln in lanes if ln.blocks(stamp)]
            if blocking:
                if out:
                    part.blocked_since = now  # after progress the idle wait starts again
                    return out, gave_up, False
                since = part.blocked_since if part.blocked_since is not None else now
                part.blocked_since = since
                if not all(
                    self._may_give_up(t, p, lane, caught_up, now - since) for t, lane in blocking
                ):
                    return out, gave_up, False
                for t, lane in blocking:
                    lane.idle = True
                    gave_up.append((t, p))
                continue
            if room is not None and len(out) >= room:
                return out, gave_up, True
            out.append(head.items.popleft()[2])
            part.blocked_since = None

    def _may_give_up(
        self, topic: str, p: int, lane: _Lane[T], caught_up: CaughtUp, waited: float
    ) -> bool:
        patience = self.mark_max_idle if lane.marked else self.max_idle
        return waited >= patience and caught_up(topic, p, lane.next_offset)

    def blocked(self, now: float) -> dict[int, float]:
        """Seconds each partition holding records has waited for a lane (only waiting ones)."""
        return {
            p: now - part.blocked_since
            for p, part in self.partitions.items()
            if part.blocked_since is not None and any(lane.items for lane in part.lanes.values())
        }

    def drop(self, partitions: Iterable[int]) -> int:
        """Forget revoked partitions (their records are unacked: the next owner reads them)."""
        dropped = 0
        for p in set(partitions):
            part = self.partitions.pop(p, None)
            if part is not None:
                dropped += sum(len(lane.items) for lane in part.lanes.values())
        return dropped
