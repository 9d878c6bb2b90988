"""Timestamp alignment of co-partitioned input topics (loanwatch.agents.alignment).

The aligner must give back, for any way a consumer can interleave its fetches of the input
topic-partitions, the producer's order: records sorted by timestamp across topics. It may hold
records while a topic is neither buffered nor caught up, and must let them go once it is, or
once ``max_idle`` has passed.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loanwatch.agents.alignment import Aligner

pytestmark = pytest.mark.unit

TOPICS = ("accounts", "payments", "clock")


class Broker:
    """Per topic-partition logs and how far the 'consumer' has fetched them."""

    def __init__(self, logs: dict[tuple[str, int], list[float]]) -> None:
        self.logs = logs
        self.fetched = {key: 0 for key in logs}
        self.known_end: dict[tuple[str, int], int | None] = {key: None for key in logs}

    def caught_up(self, topic: str, partition: int, next_offset: int | None) -> bool:
        end = self.known_end.get((topic, partition))
        if end is None:
            return (topic, partition) not in self.logs  # a topic with no log at all
        return (next_offset or 0) >= end


def producer_order(n: int, seed: int) -> dict[tuple[str, int], list[float]]:
    """``n`` records with increasing timestamps spread over the topics of three partitions."""
    rnd = random.Random(seed)
    logs: dict[tuple[str, int], list[float]] = {(t, p): [] for t in TOPICS for p in range(3)}
    for i in range(n):
        logs[(rnd.choice(TOPICS), rnd.randrange(3))].append(float(i))
    return logs


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(1, 60),
    seed=st.integers(0, 10_000),
    chunk=st.integers(1, 7),
    limit=st.one_of(st.none(), st.integers(1, 5)),
)
def test_any_fetch_interleaving_gives_the_producer_order(
    n: int, seed: int, chunk: int, limit: int | None
) -> None:
    """Also when each release is capped (``limit``) and asked again while it says ``more``."""
    logs = producer_order(n, seed)
    broker = Broker(logs)
    aligner: Aligner[float] = Aligner(TOPICS, max_idle=1e9)
    for topic, partition in logs:
        aligner.track(topic, partition)
    rnd = random.Random(seed + 1)
    out: list[float] = []
    while len(out) < n:
        # The consumer fetches a random chunk of a random topic-partition, learning its end.
        key = rnd.choice(list(logs))
        start = broker.fetched[key]
        for offset in range(start, min(start + rnd.randint(1, chunk), len(logs[key]))):
            aligner.add(key[0], key[1], offset, logs[key][offset], logs[key][offset])
            broker.fetched[key] = offset + 1
        broker.known_end[key] = len(logs[key])
        while True:
            release = aligner.release(broker.caught_up, now=0.0, limit=limit)
            assert limit is None or len(release.items) <= limit
            out += release.items
            if not release.more:
                break
    assert out == sorted(out)
    assert out == [float(i) for i in range(n)]
    assert aligner.held() == 0


def test_a_record_is_held_while_another_topic_has_records_on_the_broker() -> None:
    broker = Broker({("accounts", 0): [1.0], ("payments", 0): [2.0], ("clock", 0): []})
    broker.known_end = {("accounts", 0): 1, ("payments", 0): 1, ("clock", 0): 0}
    aligner: Aligner[str] = Aligner(TOPICS, max_idle=5.0)
    for topic in TOPICS:
        aligner.track(topic, 0)
    aligner.add("payments", 0, 0, 2.0, "payment")
    first = aligner.release(broker.caught_up, now=0.0)
    assert first.items == [] and not first.forced  # accounts offset 0 is still to come
    aligner.add("accounts", 0, 0, 1.0, "opening")
    second = aligner.release(broker.caught_up, now=0.1)
    assert second.items == ["opening", "payment"]


def test_caught_up_topics_are_not_waited_for() -> None:
    broker = Broker({("accounts", 0): [], ("payments", 0): [5.0], ("clock", 0): []})
    broker.known_end = {("accounts", 0): 0, ("payments", 0): 1, ("clock", 0): 0}
    aligner: Aligner[str] = Aligner(TOPICS, max_idle=5.0)
    aligner.add("payments", 0, 0, 5.0, "payment")
    assert aligner.release(broker.caught_up, now=0.0).items == ["payment"]


def test_a_silent_topic_is_waited_for_at_most_max_idle_then_treated_as_idle() -> None:
    broker = Broker({("accounts", 0): [], ("payments", 0): [], ("clock", 0): []})
    broker.known_end = {("accounts", 0): None, ("payments", 0): 3, ("clock", 0): 0}
    aligner: Aligner[str] = Aligner(TOPICS, max_idle=2.0)
    for topic in TOPICS:
        aligner.track(topic, 0)
    aligner.add("payments", 0, 0, 1.0, "a")
    assert aligner.release(broker.caught_up, now=10.0).items == []
    assert aligner.release(broker.caught_up, now=11.9).items == []
    forced = aligner.release(broker.caught_up, now=12.0)
    assert forced.items == ["a"] and forced.forced
    # The silent topic is not waited for again until it sends a record.
    aligner.add("payments", 0, 1, 2.0, "b")
    again = aligner.release(broker.caught_up, now=12.1)
    assert again.items == ["b"] and not again.forced
    aligner.add("accounts", 0, 0, 3.0, "c")
    aligner.add("payments", 0, 2, 4.0, "d")
    # accounts sent a record: it is waited for again (its end is still unknown) ...
    assert aligner.release(broker.caught_up, now=12.2).items == ["c"]
    broker.known_end[("accounts", 0)] = 1  # ... until the consumer knows it is at its end
    assert aligner.release(broker.caught_up, now=12.3).items == ["d"]


def test_progress_restarts_the_idle_wait() -> None:
    broker = Broker({("accounts", 0): [], ("payments", 0): [], ("clock", 0): []})
    broker.known_end = {("accounts", 0): 5, ("payments", 0): 5, ("clock", 0): 0}
    aligner: Aligner[str] = Aligner(TOPICS, max_idle=2.0)
    for topic in TOPICS:
        aligner.track(topic, 0)
    aligner.add("payments", 0, 0, 1.0, "p0")
    assert aligner.release(broker.caught_up, now=0.0).items == []
    aligner.add("accounts", 0, 0, 0.5, "a0")
    # a0 goes (payments has a head); then accounts is empty and not caught up: p0 waits.
    assert aligner.release(broker.caught_up, now=1.5).items == ["a0"]
    assert aligner.release(broker.caught_up, now=3.0).items == []  # 1.5 s since progress
    assert aligner.release(broker.caught_up, now=3.5).forced


def test_partitions_advance_together_and_drop_forgets_them() -> None:
    broker = Broker({(t, p): [] for t in TOPICS for p in (0, 1)})
    broker.known_end = {(t, p): (1 if (t, p) == ("accounts", 1) else 0) for t, p in broker.logs}
    aligner: Aligner[str] = Aligner(TOPICS, max_idle=5.0)
    for topic, partition in broker.logs:
        aligner.track(topic, partition)
    aligner.add("payments", 0, 0, 1.0, "p0")
    aligner.add("payments", 1, 0, 1.5, "p1")
    # accounts/1 has a record on the broker, not yet fetched: nothing may pass it.
    assert aligner.release(broker.caught_up, now=0.0).items == []
    aligner.add("accounts", 1, 0, 1.2, "a1")
    assert aligner.release(broker.caught_up, now=0.1).items == ["p0", "a1", "p1"]
    aligner.add("clock", 1, 0, 2.0, "c1")
    aligner.add("payments", 0, 1, 3.0, "late")
    broker.known_end[("payments", 0)] = 5  # more payments/0 on the broker than fetched
    assert aligner.release(broker.caught_up, now=0.2).items == ["c1", "late"]
    assert aligner.held() == 0
    aligner.add("payments", 0, 2, 4.0, "x")
    aligner.add("clock", 1, 1, 4.5, "y")
    assert aligner.buffered("clock", 1) == 1
    assert aligner.drop([1]) == 1
    assert aligner.held() == 1


def test_a_tracked_lane_that_never_sent_is_waited_for() -> None:
    broker = Broker({("accounts", 3): [1.0], ("payments", 0): [2.0]})
    broker.known_end = {("accounts", 3): 1, ("payments", 0): 1}
    aligner: Aligner[str] = Aligner(TOPICS, max_idle=5.0)
    aligner.track("accounts", 3)
    aligner.add("payments", 0, 0, 2.0, "payment")
    assert aligner.release(broker.caught_up, now=0.0).items == []
    aligner.add("accounts", 3, 0, 1.0, "opening")
    assert aligner.release(broker.caught_up, now=0.0).items == ["opening", "payment"]


def test_equal_timestamps_keep_the_topic_order() -> None:
    broker = Broker({(t, 0): [] for t in TOPICS})
    broker.known_end = {(t, 0): 1 for t in TOPICS}
    aligner: Aligner[str] = Aligner(TOPICS, max_idle=5.0)
    for topic in reversed(TOPICS):
        aligner.add(topic, 0, 0, 7.0, topic)
    assert aligner.release(broker.caught_up, now=0.0).items == list(TOPICS)


def test_a_record_delivered_again_is_ignored() -> None:
    aligner: Aligner[str] = Aligner(["a"], max_idle=10.0)
    assert aligner.add("a", 0, 5, 1.0, "a5")
    assert aligner.add("a", 0, 6, 2.0, "a6")
    assert not aligner.add("a", 0, 5, 1.0, "a5 again")  # a seek back: still buffered
    assert aligner.release(lambda t, p, n: True, 0.0).items == ["a5", "a6"]
    assert not aligner.add("a", 0, 6, 2.0, "a6 again")  # already released (processed)
    assert aligner.add("a", 0, 7, 3.0, "a7")
    assert aligner.release(lambda t, p, n: True, 0.0).items == ["a7"]
    aligner.drop([0])  # revoked: a new assignment starts from whatever the consumer sends
    assert aligner.add("a", 0, 3, 0.5, "a3")


def test_a_capped_release_says_more_and_a_forced_one_finishes_in_later_calls() -> None:
    broker = Broker({("accounts", 0): [], ("payments", 0): [], ("clock", 0): []})
    aligner: Aligner[str] = Aligner(TOPICS, max_idle=5.0)
    aligner.track("accounts", 0)  # silent, end unknown: waited for
    for i in range(5):
        aligner.add("payments", 0, i, float(i), f"p{i}")
    assert aligner.release(broker.caught_up, now=0.0, limit=2).items == []
    forced = aligner.release(broker.caught_up, now=6.0, limit=2)
    assert forced.forced and forced.more and forced.items == ["p0", "p1"]
    rest = aligner.release(broker.caught_up, now=6.0, limit=2)
    assert not rest.forced and rest.more and rest.items == ["p2", "p3"]
    last = aligner.release(broker.caught_up, now=6.0, limit=2)
    assert last.items == ["p4"] and not last.more and aligner.held() == 0
