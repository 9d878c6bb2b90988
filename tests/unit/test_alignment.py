"""Timestamp alignment of a partition's input topics (loanwatch.agents.alignment).

For any interleaving of a producer still writing and a consumer fetching, the aligner must give
back each partition's records in the producer's order. It releases a record only when every
other lane of its partition has a buffered head or a bound (a mark or a record) at least as
late; being caught up with the broker is never proof, and only a caught-up lane may be given
up on, after ``max_idle``, as a counted forced release.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loanwatch.agents.alignment import Aligner

pytestmark = pytest.mark.unit

TOPICS = ("accounts", "payments", "clock")
PARTS = 3
LANES = [(t, p) for t in TOPICS for p in range(PARTS)]


class Broker:
    """Per-lane logs growing while the consumer reads: records (stamp) and marks (stamp, None)."""

    def __init__(self) -> None:
        self.logs: dict[tuple[str, int], list[tuple[float, bool]]] = {k: [] for k in LANES}
        self.fetched = dict.fromkeys(LANES, 0)
        self.known_end: dict[tuple[str, int], int | None] = dict.fromkeys(LANES)

    def caught_up(self, topic: str, partition: int, next_offset: int | None) -> bool:
        end = self.known_end[(topic, partition)]
        return end is not None and (next_offset or 0) >= end

    def fetch(self, aligner: Aligner[float], key: tuple[str, int], most: int) -> None:
        log = self.logs[key]
        start = self.fetched[key]
        for offset in range(start, min(start + most, len(log))):
            stamp, is_mark = log[offset]
            if is_mark:
                aligner.mark(key[0], key[1], offset, stamp, -stamp - 1)
            else:
                aligner.add(key[0], key[1], offset, stamp, stamp)
            self.fetched[key] = offset + 1
        self.known_end[key] = len(log)


def drain(aligner: Aligner[float], broker: Broker, now: float, limit: int | None) -> list[float]:
    out: list[float] = []
    while True:
        release = aligner.release(broker.caught_up, now=now, limit=limit)
        assert not release.forced
        assert limit is None or len(release.items) <= limit
        out += release.items
        if not release.more:
            return out


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(1, 80),
    seed=st.integers(0, 100_000),
    chunk=st.integers(1, 7),
    mark_every=st.integers(1, 20),
    limit=st.one_of(st.none(), st.integers(1, 5)),
)
def test_a_producer_writing_while_the_consumer_reads_gives_the_producer_order(
    n: int, seed: int, chunk: int, mark_every: int, limit: int | None
) -> None:
    """The producer writes a record, sometimes a round of marks; the consumer fetches random
    chunks of random lanes in between, for ever as long as time does not pass."""
    rnd = random.Random(seed)
    broker = Broker()
    aligner: Aligner[float] = Aligner(TOPICS, max_idle=1.0, mark_max_idle=1.0)
    for t, p in LANES:
        aligner.track(t, p)
    out: list[float] = []
    written: list[tuple[int, float]] = []
    for i in range(n):
        p = rnd.randrange(PARTS)
        broker.logs[(rnd.choice(TOPICS), p)].append((float(i), False))
        written.append((p, float(i)))
        if i % mark_every == mark_every - 1 or i == n - 1:
            for key in LANES:
                broker.logs[key].append((float(i), True))
        for _ in range(rnd.randint(0, 3)):
            broker.fetch(aligner, rnd.choice(LANES), rnd.randint(1, chunk))
            out += drain(aligner, broker, now=0.0, limit=limit)
    while any(broker.fetched[k] < len(broker.logs[k]) for k in LANES):
        broker.fetch(aligner, rnd.choice(LANES), rnd.randint(1, chunk))
        out += drain(aligner, broker, now=0.0, limit=limit)
    # complete, and in the producer's order within every partition
    assert sorted(out) == [s for _, s in written]
    for p in range(PARTS):
        mine = {s for q, s in written if q == p}
        assert [s for s in out if s in mine] == sorted(mine)
    assert aligner.held() == 0


def test_a_caught_up_lane_without_a_mark_is_no_proof() -> None:
    """The bug this module fixes: the broker's end offset says nothing of a record on its way."""
    aligner: Aligner[str] = Aligner(TOPICS, max_idle=5.0)
    for t in TOPICS:
        aligner.track(t, 0)
    aligner.add("payments", 0, 0, 20.0, "payment@20")
    everything_caught_up = lambda t, p, n: True  # noqa: E731
    assert aligner.release(everything_caught_up, now=0.0).items == []
    assert aligner.release(everything_caught_up, now=4.9).items == []
    # the opening stamped 10 arrives late on its lane: still first
    aligner.add("accounts", 0, 0, 10.0, "opening@10")
    aligner.mark("accounts", 0, 1, 30.0, -1.0)
    aligner.mark("clock", 0, 0, 30.0, -1.0)
    assert aligner.release(everything_caught_up, now=5.0).items == ["opening@10", "payment@20"]


def test_marks_release_without_waiting_and_a_lane_behind_its_end_is_never_given_up() -> None:
    aligner: Aligner[str] = Aligner(TOPICS, max_idle=1.0)
    aligner.add("payments", 0, 0, 20.0, "p20")
    aligner.mark("accounts", 0, 0, 25.0, -1.0)
    behind = lambda t, p, n: t != "clock"  # noqa: E731  # the clock lane has records to fetch
    for now in (0.0, 10.0, 1e6):
        release = aligner.release(behind, now=now)
        assert release.items == [] and not release.forced
    aligner.mark("clock", 0, 0, 20.0, -1.0)  # a bound equal to the head is enough (stamps increase)
    assert aligner.release(behind, now=1e6).items == ["p20"]


def test_a_silent_caught_up_lane_is_given_up_after_max_idle_as_a_forced_release() -> None:
    aligner: Aligner[str] = Aligner(TOPICS, max_idle=2.0, mark_max_idle=60.0)
    aligner.add("payments", 0, 0, 20.0, "p20")
    aligner.mark("accounts", 0, 0, 10.0, -1.0)  # marked, behind the head: 60 s of patience
    up = lambda t, p, n: True  # noqa: E731
    assert aligner.release(up, now=0.0).items == []
    assert aligner.release(up, now=2.0).items == []  # clock (unmarked) could go, accounts not
    aligner.mark("accounts", 0, 1, 40.0, -1.0)
    release = aligner.release(up, now=2.5)
    assert release.items == ["p20"] and release.forced
    assert release.waited_for == (("clock", 0),)
    # the given-up lane is not waited for until it delivers; then it is again
    aligner.add("payments", 0, 1, 30.0, "p30")
    assert aligner.release(up, now=2.5).items == ["p30"]
    aligner.add("clock", 0, 0, 35.0, "c35")
    aligner.add("payments", 0, 2, 45.0, "p45")
    assert aligner.release(up, now=3.0).items == ["c35"]  # clock (bound 35) blocks p45 again


def test_a_marked_lane_gets_the_long_patience() -> None:
    aligner: Aligner[str] = Aligner(TOPICS, max_idle=2.0, mark_max_idle=60.0)
    aligner.mark("clock", 0, 0, 5.0, -1.0)
    aligner.mark("accounts", 0, 0, 5.0, -1.0)
    aligner.add("payments", 0, 0, 20.0, "p20")
    up = lambda t, p, n: True  # noqa: E731
    assert aligner.release(up, now=0.0).items == []
    assert aligner.release(up, now=59.0).items == []
    release = aligner.release(up, now=60.0)
    assert release.items == ["p20"] and release.forced
    assert set(release.waited_for) == {("clock", 0), ("accounts", 0)}


def test_progress_restarts_the_idle_wait() -> None:
    aligner: Aligner[str] = Aligner(TOPICS, max_idle=2.0)
    up = lambda t, p, n: True  # noqa: E731
    aligner.mark("accounts", 0, 0, 100.0, -1.0)
    aligner.add("payments", 0, 0, 10.0, "p10")
    aligner.add("payments", 0, 1, 30.0, "p30")
    aligner.add("clock", 0, 0, 15.0, "c15")
    assert aligner.release(up, now=0.0).items == ["p10", "c15"]
    assert aligner.release(up, now=1.5).items == []  # clock blocks p30 since 0.0
    assert aligner.release(up, now=2.0).forced


def test_partitions_are_merged_independently_and_drop_forgets_them() -> None:
    aligner: Aligner[str] = Aligner(TOPICS, max_idle=1e9)
    up = lambda t, p, n: True  # noqa: E731
    for t in TOPICS:
        aligner.mark(t, 1, 0, 100.0, -1.0)
    aligner.add("payments", 1, 1, 50.0, "p1")
    aligner.add("payments", 0, 0, 10.0, "p0")  # partition 0 waits for its other lanes
    assert aligner.release(up, now=0.0).items == ["p1"]
    assert aligner.held() == 1
    assert aligner.drop([0]) == 1
    assert aligner.held() == 0


def test_unwaited_lanes_join_by_timestamp_but_never_block() -> None:
    aligner: Aligner[str] = Aligner((*TOPICS, "commands"), max_idle=1e9, unwaited=["commands"])
    up = lambda t, p, n: True  # noqa: E731
    for t in TOPICS:
        aligner.mark(t, 0, 0, 50.0, -1.0)
    aligner.add("commands", 0, 0, 40.0, "tick40")
    aligner.add("payments", 0, 1, 30.0, "p30")
    assert aligner.release(up, now=0.0).items == ["p30", "tick40"]
    # a tick later than every lane's proof still goes (the wall clock is not the log's order)
    aligner.add("commands", 0, 1, 90.0, "tick90")
    assert aligner.release(up, now=0.0).items == ["tick90"]


def test_equal_timestamps_keep_the_topic_order() -> None:
    aligner: Aligner[str] = Aligner(TOPICS, max_idle=1e9)
    up = lambda t, p, n: True  # noqa: E731
    aligner.add("clock", 0, 0, 5.0, "c")
    aligner.add("payments", 0, 0, 5.0, "p")
    aligner.add("accounts", 0, 0, 5.0, "a")
    assert aligner.release(up, now=0.0).items == ["a", "p", "c"]


def test_a_record_or_mark_delivered_again_is_ignored() -> None:
    aligner: Aligner[str] = Aligner(TOPICS, max_idle=1e9)
    assert aligner.add("payments", 0, 3, 5.0, "x")
    assert not aligner.add("payments", 0, 3, 5.0, "x")
    assert not aligner.mark("payments", 0, 2, 9.0, -1.0)
    assert aligner.buffered("payments", 0) == 1


def test_a_capped_release_says_more() -> None:
    aligner: Aligner[int] = Aligner(TOPICS, max_idle=1e9)
    up = lambda t, p, n: True  # noqa: E731
    for t in TOPICS:
        aligner.mark(t, 0, 0, 100.0, -1.0)
    for i in range(5):
        aligner.add("payments", 0, i + 1, float(i), i)
    first = aligner.release(up, now=0.0, limit=3)
    assert first.items == [0, 1, 2] and first.more
    second = aligner.release(up, now=0.0, limit=3)
    assert second.items == [3, 4] and not second.more


def test_a_mark_comes_out_only_after_the_earlier_records_of_its_lane() -> None:
    """Faust commits the first run of acked offsets: a mark acked ahead of a held record
    would commit past that record (a rebalance or a crash would then skip it)."""
    aligner: Aligner[str] = Aligner(TOPICS, max_idle=1e9)
    up = lambda t, p, n: True  # noqa: E731
    aligner.add("payments", 0, 0, 10.0, "p10")
    aligner.mark("payments", 0, 1, 12.0, "mark@1")
    first = aligner.release(up, now=0.0)
    assert first.items == [] and first.marks == []  # p10 waits for accounts and clock
    aligner.mark("accounts", 0, 0, 20.0, "a-mark")
    aligner.mark("clock", 0, 0, 20.0, "c-mark")
    second = aligner.release(up, now=0.0)
    assert second.items == ["p10"]
    assert sorted(second.marks) == ["a-mark", "c-mark", "mark@1"]


def test_a_record_after_a_gap_is_refused_unless_the_gap_is_accepted() -> None:
    aligner: Aligner[str] = Aligner(("accounts", "payments"), max_idle=10)
    aligner.expect("payments", 0, 10)
    assert aligner.offer("payments", 0, 9, 1.0, "p9", is_mark=False) == "duplicate"
    assert aligner.offer("payments", 0, 12, 1.0, "p12", is_mark=False) == "gap"  # 10, 11 lost
    assert aligner.expected("payments", 0) == 10  # still waiting for 10
    assert aligner.buffered("payments", 0) == 0
    assert aligner.offer("payments", 0, 10, 1.0, "p10", is_mark=False) == "added"
    assert aligner.offer("payments", 0, 11, 1.0, "m11", is_mark=True) == "added"
    got = aligner.offer("payments", 0, 15, 1.0, "p15", is_mark=False, accept_gap=True)
    assert got == "gap"  # accepted: buffered past it
    aligner.expect("payments", 0, 0)  # once the lane has records, they say where it is
    assert aligner.expected("payments", 0) == 16
    assert aligner.buffered("payments", 0) == 3
    # without an expected start, the first record starts the lane
    assert aligner.offer("accounts", 0, 42, 1.0, "a42", is_mark=False) == "added"
