"""The start-up gate waits for the worker's topics in the clients' metadata (agents/topics_ready).

A fake aiokafka client stands in for the producer's and the consumer's: its metadata lists a
topic with no partitions (or not at all) until a given number of forced refreshes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import pytest

from loanwatch.agents.topics_ready import (
    ClientMetadata,
    ConsumerThreadMetadata,
    Expected,
    TopicsNotReady,
    TopicsReady,
    wait_for_metadata,
)


class _Cluster:
    def __init__(self, client: FakeClient) -> None:
        self.client = client

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return self.client.listing(topic)


class FakeClient:
    """``AIOKafkaClient``'s metadata API: a topic appears after ``after[topic]`` refreshes."""

    def __init__(
        self,
        after: dict[str, int],
        *,
        partitions: int = 8,
        before: set[int] | None = None,
    ) -> None:
        self.after = after  # refreshes until the topic is listed with its partitions
        self.partitions = partitions
        self.before = before  # listing until then: set() = "0 partitions", None = unknown
        self.refreshes = 0
        self.tracked: list[str] = []
        self.cluster = _Cluster(self)

    def listing(self, topic: str) -> set[int] | None:
        if topic not in self.after:
            return set(range(self.partitions))
        if self.refreshes >= self.after[topic]:
            return set(range(self.partitions))
        return None if self.before is None else set(self.before)

    def add_topic(self, topic: str) -> Awaitable[bool]:
        self.tracked.append(topic)
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        done.set_result(True)
        return done

    async def force_metadata_update(self) -> bool:
        await asyncio.sleep(0)
        self.refreshes += 1
        return True


CHANGELOG = "app-loans-changelog"


async def test_waits_and_refreshes_until_the_topic_has_its_partitions(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = FakeClient({CHANGELOG: 3}, before=set())  # listed with 0 partitions at first
    view = ClientMetadata("producer", client)
    with caplog.at_level(logging.INFO, logger="loanwatch.worker"):
        waited = await wait_for_metadata(
            [view], {"producer": {CHANGELOG: 8, "alerts": None}}, timeout=5, interval=0.001
        )
    assert client.refreshes == 3
    assert set(client.tracked) == {CHANGELOG}  # only what was missing is added to the metadata
    assert waited >= 0
    assert "worker topics ready" in caplog.text


async def test_ready_topics_need_no_refresh() -> None:
    client = FakeClient({})
    view = ClientMetadata("producer", client)
    await wait_for_metadata([view], {"producer": {CHANGELOG: 8}}, timeout=5, interval=0.001)
    assert client.refreshes == 0 and client.tracked == []


async def test_times_out_with_a_clear_error_when_the_topic_never_appears(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = FakeClient({CHANGELOG: 10**9}, before=set())
    view = ClientMetadata("producer", client)
    with (
        caplog.at_level(logging.INFO, logger="loanwatch.worker"),
        pytest.raises(TopicsNotReady) as failure,
    ):
        await wait_for_metadata(
            [view], {"producer": {CHANGELOG: 8}}, timeout=0.05, interval=0.005, log_every=0.01
        )
    message = str(failure.value)
    assert "not ready after" in message and f"producer: {CHANGELOG} (0 partitions)" in message
    assert client.refreshes > 1  # it kept refreshing until the deadline
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in errors] == [message]
    assert any(
        "waiting for the worker topics' partitions" in r.getMessage() for r in caplog.records
    )


async def test_an_unknown_topic_is_reported_as_unknown() -> None:
    client = FakeClient({CHANGELOG: 10**9}, before=None)
    with pytest.raises(TopicsNotReady, match=rf"{CHANGELOG} \(unknown\)"):
        await wait_for_metadata(
            [ClientMetadata("consumer", client)],
            {"consumer": {CHANGELOG: 8}},
            timeout=0.02,
            interval=0.005,
        )


async def test_another_partition_count_fails_after_one_refresh() -> None:
    client = FakeClient({}, partitions=4)
    view = ClientMetadata("producer", client)
    with pytest.raises(TopicsNotReady, match="4 partitions, expected 8"):
        await wait_for_metadata([view], {"producer": {CHANGELOG: 8}}, timeout=30, interval=0.001)
    assert client.refreshes == 1  # not a stale listing: fetched again, then failed at once


async def test_any_count_will_do_for_a_topic_expected_with_none() -> None:
    client = FakeClient({}, partitions=3)
    view = ClientMetadata("producer", client)
    await wait_for_metadata([view], {"producer": {"alerts": None}}, timeout=1, interval=0.001)


async def test_each_client_is_refreshed_for_its_own_topics() -> None:
    producer = FakeClient({"alerts": 2}, before=set())
    consumer = FakeClient({CHANGELOG: 4}, before=set())
    views = [ClientMetadata("producer", producer), ClientMetadata("consumer", consumer)]
    expected: dict[str, Expected] = {
        "producer": {CHANGELOG: 8, "alerts": None},
        "consumer": {CHANGELOG: 8},
    }
    await wait_for_metadata(views, expected, timeout=5, interval=0.001)
    assert producer.refreshes == 2 and set(producer.tracked) == {"alerts"}
    assert consumer.refreshes == 4 and set(consumer.tracked) == {CHANGELOG}


class FakeThread:
    """Faust's consumer thread: runs a coroutine function on its loop (here: the same one)."""

    def __init__(self) -> None:
        self.calls = 0

    async def call_thread(self, fun: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        self.calls += 1
        return await fun(*args)


async def test_the_consumer_client_is_refreshed_on_its_own_thread() -> None:
    client = FakeClient({CHANGELOG: 2}, before=set())
    thread = FakeThread()
    view = ConsumerThreadMetadata("consumer", thread, client)
    await wait_for_metadata([view], {"consumer": {CHANGELOG: 8}}, timeout=5, interval=0.001)
    assert thread.calls == 2 == client.refreshes


class FakeTopic:
    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log

    async def maybe_declare(self) -> None:
        self.log.append(f"declare {self.name}")


async def test_the_gate_declares_then_waits_once_for_every_waiter() -> None:
    log: list[str] = []
    results: list[BaseException | None] = [TopicsNotReady("not yet"), None]

    async def wait(
        app: Any,
        topics: Expected,
        *,
        consumer_topics: Iterable[str],
        timeout: float,
        interval: float,
    ) -> float:
        log.append(f"wait {sorted(topics)} {sorted(consumer_topics)}")
        await asyncio.sleep(0.01)
        outcome = results.pop(0)
        if outcome is not None:
            raise outcome
        return 0.5

    gate = TopicsReady(
        object(),
        declare=lambda: [FakeTopic("changelog", log), FakeTopic("alerts", log)],
        topics=lambda: {"changelog": 8, "alerts": None},
        consumer_topics=lambda: ["changelog"],
        wait=wait,
    )
    with pytest.raises(TopicsNotReady):  # a failure reaches the waiter, and is not kept
        await gate.wait()
    assert not gate.ready
    await asyncio.gather(*(gate.wait() for _ in range(5)))  # one check for all of them
    await gate.wait()
    assert gate.ready and gate.waited == 0.5
    attempt = ["declare changelog", "declare alerts", "wait ['alerts', 'changelog'] ['changelog']"]
    assert log == attempt + attempt
