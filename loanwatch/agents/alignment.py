"""Timestamp-aligned consumption of the input topics (Kafka Streams' task synchronisation).

The SPEC's input topics (accounts, payments, collections, signals, clock) are five logs of one
stream: their order is the record timestamps the producer gave them. A consumer fetches each
topic-partition in byte-bounded chunks, so on a backlog the small records (ticks, payments)
arrive far ahead of the large ones (openings with long schedules). Merging inside a batch is
then not enough: a payment would meet no loan, a tick would age a partition past events still
on the broker.

:class:`Aligner` buffers the records of every input topic-partition a worker owns (a *lane*)
and releases them in timestamp order, but only while it *knows* the next record: the smallest
head is released when every lane either has a buffered head (so its next timestamp is known)
or is caught up (nothing more on the broker, as far as the consumer's last fetch knows). This
is what Kafka Streams does per task (``max.task.idle.ms``, KIP-695); here all the worker's
partitions form one merge, so they advance together in the producer's order, which also keeps
the borrower round trip between partitions short. A merge waiting longer than ``max_idle`` for
a lane that is neither buffered nor caught up is released anyway (counted as *forced*) and that
lane is not waited for again until it sends a record, so an unknown end offset never stalls.

Framework-free: the Faust agent adds what it takes from the stream, asks for what is ready,
processes and acks exactly that, and pauses topic-partitions whose buffer is full (so the
consumer fetches the lagging ones). Items are opaque; the aligner only reads the coordinates
it is given.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")

#: ``caught_up(topic, partition, next_offset)``: the consumer knows of no record at or after
#: ``next_offset`` (``None``: nothing received since the partition was assigned).
CaughtUp = Callable[[str, int, "int | None"], bool]


@dataclass(slots=True)
class _Lane(Generic[T]):
    """One topic-partition: buffered records and the next offset expected from the consumer."""

    items: deque[tuple[float, int, T]] = field(default_factory=deque)
    next_offset: int | None = None
    idle: bool = False  # waited for in vain (``max_idle``): not waited for until a record comes


@dataclass(frozen=True, slots=True)
class Release(Generic[T]):
    """What may be processed now, in order, and whether a wait was cut short."""

    items: list[T]
    forced: bool
    waited_for: tuple[tuple[str, int], ...] = ()  # the lanes a forced release gave up on
    more: bool = False  # stopped at the limit: more records may be ready at once


class Aligner(Generic[T]):
    """Buffers of the owned input topic-partitions, released in timestamp order when safe."""

    def __init__(self, topics: Sequence[str], *, max_idle: float) -> None:
        self.topics = tuple(topics)
        self.rank = {t: i for i, t in enumerate(self.topics)}  # tie-break: topic order
        self.max_idle = max_idle
        self.lanes: dict[tuple[str, int], _Lane[T]] = {}
        self.blocked_since: float | None = None

    def __contains__(self, topic: str) -> bool:
        return topic in self.rank

    def add(self, topic: str, partition: int, offset: int, timestamp: float, item: T) -> bool:
        """Buffer a record; False (and ignored) if this lane already had it since assigned.

        A consumer seek backwards (e.g. to the beginning of a partition with no committed
        offset) delivers records again that are buffered or already processed.
        """
        lane = self._lane(topic, partition)
        if lane.next_offset is not None and offset < lane.next_offset:
            return False
        lane.items.append((timestamp, offset, item))
        lane.next_offset = offset + 1
        lane.idle = False
        return True

    def track(self, topic: str, partition: int) -> None:
        """Wait for this topic-partition too, even before it sends anything (it is assigned)."""
        self._lane(topic, partition)

    def buffered(self, topic: str, partition: int) -> int:
        lane = self.lanes.get((topic, partition))
        return len(lane.items) if lane else 0

    def held(self) -> int:
        return sum(len(lane.items) for lane in self.lanes.values())

    def release(self, caught_up: CaughtUp, now: float, limit: int | None = None) -> Release[T]:
        """Pop the records that are safe to process, in timestamp order across all lanes.

        At most ``limit`` (None: all); ``more`` then says whether to ask again at once.
        """
        keys = sorted(self.lanes, key=lambda k: (k[1], self.rank[k[0]]))
        lanes = [self.lanes[k] for k in keys]
        waiting = [
            not lane.items and not lane.idle and not caught_up(t, p, lane.next_offset)
            for (t, p), lane in zip(keys, lanes, strict=True)
        ]
        forced = False
        gave_up: tuple[tuple[str, int], ...] = ()
        if any(waiting) and any(lane.items for lane in lanes):
            since = self.blocked_since if self.blocked_since is not None else now
            self.blocked_since = since
            forced = now - since >= self.max_idle
            if forced:
                gave_up = tuple(k for k, wait in zip(keys, waiting, strict=True) if wait)
                for i, wait in enumerate(waiting):
                    lanes[i].idle = lanes[i].idle or wait
        out: list[T] = []
        # Ties (equal timestamps) keep the topic order, then the partition order.
        heap = [
            (lane.items[0][0], self.rank[keys[i][0]], keys[i][1], i)
            for i, lane in enumerate(lanes)
            if lane.items
        ]
        heapq.heapify(heap)
        more = False
        while heap and (forced or not any(waiting)):
            if limit is not None and len(out) >= limit:
                more = True
                break
            _, rank, partition, i = heapq.heappop(heap)
            lane = lanes[i]
            out.append(lane.items.popleft()[2])
            if lane.items:
                heapq.heappush(heap, (lane.items[0][0], rank, partition, i))
            elif not forced and not lane.idle:
                # The lane just emptied: its next record may be earlier than any other head
                # unless the consumer knows there is none.
                waiting[i] = not caught_up(keys[i][0], partition, lane.next_offset)
        if forced or not any(waiting) or not heap:
            self.blocked_since = None
        elif out:
            self.blocked_since = now  # progress: the idle wait starts again
        return Release(out, forced, gave_up, more)

    def drop(self, partitions: Iterable[int]) -> int:
        """Forget revoked partitions (their records are unacked: the next owner reads them)."""
        gone = set(partitions)
        dropped = 0
        for key in [k for k in self.lanes if k[1] in gone]:
            dropped += len(self.lanes.pop(key).items)
        if not self.held():
            self.blocked_since = None
        return dropped

    def _lane(self, topic: str, partition: int) -> _Lane[T]:
        lane = self.lanes.get((topic, partition))
        if lane is None:
            lane = self.lanes[(topic, partition)] = _Lane()
        return lane
