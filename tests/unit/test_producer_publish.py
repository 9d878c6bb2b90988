"""LogProducer.publish against a recording fake of the Kafka client: order, stamps, barriers."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from loanwatch.streams.producer import LogProducer, Produced, Step, Timestamps
from loanwatch.streams.topics import TopicNames

SCENARIO = (
    Path(__file__).parents[1]
    / "fixtures"
    / "scenarios"
    / "rules-allocation-reversal-promise"
    / "events.jsonl"
)


@dataclass(frozen=True)
class Meta:
    topic: str
    partition: int
    offset: int


@dataclass
class FakeKafka:
    """Records every send; offsets count per partition; unkeyed non-tick records go to 0."""

    partitions: int = 3
    sent: list[tuple[str, bytes | None, int, int | None, bytes | None]] = field(
        default_factory=list
    )
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    # (records sent before it, topic, partition, timestamp) of every mark
    marks: list[tuple[int, str, int, int]] = field(default_factory=list)

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(self.partitions))

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[Any]:
        part = partition if partition is not None else (len(key or b"") % self.partitions)
        if headers:  # a lane watermark: kept apart, in the order sent among the records
            assert partition is not None and timestamp_ms is not None and value == b""
            self.marks.append((len(self.sent), topic, part, timestamp_ms))
            done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            done.set_result(Meta(topic, part, -1))
            return done
        offset = self.offsets.get((topic, part), -1) + 1
        self.offsets[(topic, part)] = offset
        assert timestamp_ms is not None
        self.sent.append((topic, key, part, timestamp_ms, value))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(Meta(topic, part, offset))
        return future


def producer(kafka: FakeKafka, **kw: Any) -> LogProducer:
    clock = [1_000]
    return LogProducer(
        "unused:9092",
        TopicNames(),
        tz=ZoneInfo("Asia/Shanghai"),
        timestamps=Timestamps(lambda: clock[0]),
        kafka=kafka,
        **kw,
    )


async def test_publish_sends_in_log_order_with_increasing_stamps() -> None:
    kafka = FakeKafka()
    async with producer(kafka) as out:
        report = await out.publish(SCENARIO.read_bytes().splitlines())
    stamps = [s[3] for s in kafka.sent]
    assert stamps == sorted(stamps)
    # one stamp per logical event: the copies of a broadcast tick share theirs
    assert len(set(stamps)) == 10 + 7
    assert report.counts["loan.clock"] == (7 + 1) * 3
    assert report.events == 10 and report.sync_ticks == 7
    assert report.produced == {tp: off for tp, off in kafka.offsets.items()}


async def test_barrier_every_day_waits_before_each_new_day_and_at_the_end() -> None:
    kafka = FakeKafka()
    calls: list[tuple[int, Produced]] = []

    async def barrier(produced: Produced) -> None:
        calls.append((len(kafka.sent), produced))

    async with producer(kafka, barrier=barrier, barrier_every="day") as out:
        await out.publish(SCENARIO.read_bytes().splitlines(), as_of=date(2026, 2, 20))
    # 7 dates before as-of, then the as-of tick (a new day), then the final flush
    assert len(calls) == 7 + 1
    sent_before = [n for n, _ in calls]
    assert sent_before == sorted(sent_before)
    for n, produced in calls:
        for tp, offset in produced.items():
            assert sum(1 for s in kafka.sent[:n] if (s[0], s[2]) == tp) == offset + 1
    assert calls[-1][0] == len(kafka.sent)


async def test_barrier_every_event() -> None:
    kafka = FakeKafka()
    calls: list[int] = []

    async def barrier(produced: Produced) -> None:
        calls.append(len(kafka.sent))

    async with producer(kafka, barrier=barrier, sync_clock=False) as out:
        await out.publish(SCENARIO.read_bytes().splitlines())
    assert len(calls) == 10 + 1  # after each event, then the final flush


def lanes_of(kafka: FakeKafka) -> set[tuple[str, int]]:
    return {(t, p) for t in TopicNames().inputs() for p in range(kafka.partitions)}


async def test_every_lane_ends_with_a_mark_no_earlier_than_any_record_sent_to_it() -> None:
    kafka = FakeKafka()
    async with producer(kafka, mark_every=4) as out:
        report = await out.publish(SCENARIO.read_bytes().splitlines())
    assert report.marks == len(kafka.marks) > 0
    lanes = lanes_of(kafka)
    # a mark proves its lane holds nothing earlier still to come
    for before, _topic, _part, stamp in kafka.marks:
        assert stamp >= max(s[3] for s in kafka.sent[:before])
        assert all(s[3] > stamp for s in kafka.sent[before:])
    last_round = {(t, p) for b, t, p, _ in kafka.marks if b == len(kafka.sent)}
    assert last_round == lanes
    # every 4 steps a round: more than the final one
    assert len({b for b, *_ in kafka.marks}) > 2
    assert report.produced == {tp: off for tp, off in kafka.offsets.items()}


async def test_a_pace_that_holds_a_step_sends_marks_meanwhile() -> None:
    kafka = FakeKafka()
    held = 0
    sent_when_held = -1

    async def pace(step: Step) -> None:
        nonlocal held, sent_when_held
        held += 1
        if held == 3:
            sent_when_held = len(kafka.sent)
            await asyncio.sleep(0.05)

    async with producer(kafka, mark_every=10_000, mark_interval=0.01) as out:
        await out.publish(SCENARIO.read_bytes().splitlines(), pace=pace)
    rounds = {b for b, *_ in kafka.marks}
    assert {sent_when_held, len(kafka.sent)} <= rounds
    held_round = [m for m in kafka.marks if m[0] == sent_when_held]
    assert len(held_round) == len(lanes_of(kafka))  # the stamp did not move: one round


async def test_marks_also_go_every_mark_interval_while_sending() -> None:
    """A lane with no record of its own waits for a bound at most about mark_interval."""
    kafka = FakeKafka()
    clock = [0.0]

    async def pace(step: Step) -> None:
        clock[0] += 0.03  # 30 ms between steps, each far below mark_every

    import loanwatch.streams.producer as producer_module

    real = producer_module.time.monotonic
    producer_module.time.monotonic = lambda: clock[0]  # type: ignore[assignment]
    try:
        async with producer(kafka, mark_every=10_000, mark_interval=0.1) as out:
            await out.publish(SCENARIO.read_bytes().splitlines(), pace=pace)
    finally:
        producer_module.time.monotonic = real  # type: ignore[assignment]
    rounds = sorted({b for b, *_ in kafka.marks})
    assert len(rounds) >= 4  # about every fourth step of 17, and the final round
